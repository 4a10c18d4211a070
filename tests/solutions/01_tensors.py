"""01_tensors: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "tensor_attributes": '''
def tensor_attributes(t):
    names = ["dtype", "device", "layout", "requires_grad"]
    out = {name: getattr(t, name) for name in names}
    out["shape"] = tuple(int(s) for s in t.size())
    out["ndim"] = len(t.size())
    return out
''',
    "tensors_of_rank": '''
def tensors_of_rank():
    result = [torch.tensor(1.5)]
    for rank in range(1, 5):
        result.append(torch.rand(*([3] * rank)))
    return result
''',
    "numpy_views": '''
def numpy_views(a):
    shared = torch.as_tensor(a)
    copied = torch.from_numpy(a.copy())
    return shared, copied
''',
    "to_layout": '''
def to_layout(t, layout):
    if layout not in (torch.strided, torch.sparse_coo):
        raise ValueError("layout must be torch.strided or torch.sparse_coo")
    dense = t.to_dense() if t.is_sparse else t
    if layout is torch.strided:
        return dense
    return dense.to_sparse().coalesce()
''',
    "pairwise_sq_distances": '''
def pairwise_sq_distances(x, y):
    xx = (x * x).sum(1, keepdim=True)
    yy = (y * y).sum(1, keepdim=True).T
    cross = (x[:, None, :] * y[None, :, :]).sum(-1)
    return xx + yy - 2 * cross
''',
    "one_hot": '''
def one_hot(labels, num_classes):
    labels = labels.long()
    if ((labels < 0) | (labels >= num_classes)).any():
        raise ValueError("label out of range")
    out = torch.zeros(*labels.shape, num_classes)
    out.scatter_(-1, labels.unsqueeze(-1), 1.0)
    return out
''',
    "normalize_channels": '''
def normalize_channels(x, mean, std):
    mean = torch.tensor(list(map(float, mean)), dtype=x.dtype)[:, None, None]
    std = torch.tensor(list(map(float, std)), dtype=x.dtype)[:, None, None]
    return (x - mean) * (1.0 / std)
''',
    "batched_matmul": '''
def batched_matmul(a, b):
    # multiply a's rows with b's columns: [*, n, 1, k] * [*, 1, m, k], sum over k
    return (a.unsqueeze(-2) * b.transpose(-1, -2).unsqueeze(-3)).sum(-1)
''',
    "rotate_rank2": '''
def rotate_rank2(T, R):
    return torch.einsum("ia,ab,jb->ij", R, T, R)
''',
    "outer": '''
def outer(a, b):
    return a.reshape(-1, 1) * b.reshape(1, -1)
''',
    "diag": '''
def diag(a):
    n = a.shape[0]
    return a.reshape(-1)[torch.arange(n) * (n + 1)]
''',
    "eye": '''
def eye(n):
    mask = torch.arange(n).unsqueeze(1) - torch.arange(n).unsqueeze(0)
    return torch.where(mask == 0, 1.0, 0.0)
''',
    "triu": '''
def triu(n):
    r = torch.arange(n)
    return (r.reshape(1, -1) - r.reshape(-1, 1) >= 0).long()
''',
    "cumsum": '''
def cumsum(a):
    n = a.shape[0]
    idx = torch.arange(n)
    lower = (idx.reshape(-1, 1) >= idx.reshape(1, -1)).to(a.dtype)
    return (lower * a).sum(-1)
''',
    "flip": '''
def flip(a):
    n = a.shape[0]
    return a[n - 1 - torch.arange(n)]
''',
}

MUTANTS = {
    "tensor_attributes": [
        '''
def tensor_attributes(t):  # shape as a list, ndim counted wrongly for scalars
    return {"dtype": t.dtype, "device": t.device, "layout": t.layout,
            "shape": list(t.shape), "ndim": len(t.shape), "requires_grad": t.requires_grad}
''',
        '''
def tensor_attributes(t):  # strings instead of the torch objects
    return {"dtype": str(t.dtype), "device": str(t.device), "layout": str(t.layout),
            "shape": tuple(t.shape), "ndim": t.dim(), "requires_grad": t.requires_grad}
''',
        '''
def tensor_attributes(t):  # requires_grad guessed from .grad, an extra key
    return {"dtype": t.dtype, "device": t.device, "layout": t.layout, "shape": t.shape,
            "ndim": t.ndim, "requires_grad": t.grad is not None, "numel": t.numel()}
''',
    ],
    "tensors_of_rank": [
        '''
def tensors_of_rank():  # off by one: ranks 1..5
    return [torch.zeros((2,) * rank) for rank in range(1, 6)]
''',
        '''
def tensors_of_rank():  # a [1] tensor is not rank 0; numpy gives float64
    import numpy as np
    return [torch.tensor([0.0])] + [torch.from_numpy(np.zeros((2,) * r)) for r in range(1, 5)]
''',
    ],
    "numpy_views": [
        '''
def numpy_views(a):  # both share memory
    return torch.from_numpy(a), torch.as_tensor(a)
''',
        '''
def numpy_views(a):  # both copy
    return torch.tensor(a), torch.tensor(a)
''',
        '''
def numpy_views(a):  # the copy changes the dtype
    return torch.from_numpy(a), torch.tensor(a, dtype=torch.float32)
''',
    ],
    "to_layout": [
        '''
def to_layout(t, layout):  # sparse input stays uncoalesced
    if layout == torch.sparse_coo:
        return t if t.is_sparse else t.to_sparse()
    if layout == torch.strided:
        return t.to_dense()
    raise ValueError(layout)
''',
        '''
def to_layout(t, layout):  # no ValueError for other layouts
    if layout == torch.strided:
        return t.to_dense()
    if layout == torch.sparse_coo:
        return t.to_sparse().coalesce()
    return t.to_sparse_csr() if not t.is_sparse else t.to_dense().to_sparse_csr()
''',
    ],
    "pairwise_sq_distances": [
        '''
def pairwise_sq_distances(x, y):  # distances, not squared
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1).sqrt()
''',
        '''
def pairwise_sq_distances(x, y):  # the expansion with the wrong sign
    return (x * x).sum(1)[:, None] + (y * y).sum(1)[None, :] + 2 * (x[:, None] * y[None]).sum(-1)
''',
        '''
def pairwise_sq_distances(x, y):  # torch.cdist is forbidden
    return torch.cdist(x, y) ** 2
''',
    ],
    "one_hot": [
        '''
def one_hot(labels, num_classes):  # F.one_hot is forbidden
    return F.one_hot(labels, num_classes).float()
''',
        '''
def one_hot(labels, num_classes):  # integers, no range check
    return (labels[..., None] == torch.arange(num_classes)).long()
''',
        '''
def one_hot(labels, num_classes):  # forgets negative labels; flattens the shape
    if labels.numel() and labels.max() >= num_classes:
        raise ValueError("label too large")
    flat = labels.reshape(-1)
    return (flat[:, None] == torch.arange(num_classes)).float()
''',
    ],
    "normalize_channels": [
        '''
def normalize_channels(x, mean, std):  # statistics on the wrong axis (last)
    return (x - torch.tensor(mean, dtype=x.dtype)) / torch.tensor(std, dtype=x.dtype)
''',
        '''
def normalize_channels(x, mean, std):  # multiplies by std
    m = torch.as_tensor(mean, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) * s
''',
        '''
def normalize_channels(x, mean, std):  # the data's own statistics, ignoring mean and std
    return (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True)
''',
    ],
    "batched_matmul": [
        '''
def batched_matmul(a, b):  # the operator is forbidden
    return a @ b
''',
        '''
def batched_matmul(a, b):  # sums over the wrong axis
    return (a[..., :, :, None] * b[..., None, :, :]).sum(dim=-1)
''',
        '''
def batched_matmul(a, b):  # assumes exactly one batch dim
    return (a[:, :, :, None] * b[:, None, :, :]).sum(dim=2)
''',
    ],
    "rotate_rank2": [
        '''
def rotate_rank2(T, R):  # R^T T R
    return R.T @ T @ R
''',
        '''
def rotate_rank2(T, R):  # R T R^-1: equal only for orthogonal R
    return R @ T @ torch.linalg.inv(R)
''',
    ],
    "outer": [
        '''
def outer(a, b):  # torch.outer is forbidden
    return torch.outer(a, b)
''',
        '''
def outer(a, b):  # transposed
    return b[:, None] * a[None, :]
''',
    ],
    "diag": [
        '''
def diag(a):  # the anti-diagonal
    i = torch.arange(a.shape[0])
    return a[i, a.shape[0] - 1 - i]
''',
        '''
def diag(a):  # a loop
    return torch.stack([a[i, i] for i in range(a.shape[0])]) if a.shape[0] else a[0:0, 0]
''',
    ],
    "eye": [
        '''
def eye(n):  # bool, not float32
    i = torch.arange(n)
    return i[:, None] == i[None, :]
''',
        '''
def eye(n):  # torch.eye is forbidden
    return torch.eye(n)
''',
    ],
    "triu": [
        '''
def triu(n):  # excludes the diagonal
    i = torch.arange(n)
    return i[:, None] < i[None, :]
''',
        '''
def triu(n):  # lower triangle
    i = torch.arange(n)
    return i[:, None] >= i[None, :]
''',
    ],
    "cumsum": [
        '''
def cumsum(a):  # exclusive prefix sums
    i = torch.arange(a.shape[0])
    return (a[None, :] * (i[None, :] < i[:, None])).sum(1)
''',
        '''
def cumsum(a):  # recursion is a loop
    if a.shape[0] == 0:
        return a
    rest = cumsum(a[:-1])
    return torch.cat([rest, (a.sum()).reshape(1)])
''',
        '''
def cumsum(a):  # suffix sums
    i = torch.arange(a.shape[0])
    return (a[None, :] * (i[None, :] >= i[:, None])).sum(1)
''',
    ],
    "flip": [
        '''
def flip(a):  # torch.flip is forbidden
    return torch.flip(a, (0,))
''',
        '''
def flip(a):  # off by one: rotates instead of reversing
    n = a.shape[0]
    return a[(n - torch.arange(n)) % max(n, 1)]
''',
    ],
}


# Tensor operations only; a puzzle may use the learner's own earlier puzzles.
ALTERNATIVES["cumsum"] = """def cumsum(a):  # built on the learner's own triu
    mask = triu(a.shape[0]).to(a.dtype)       # mask[i, j] = 1 where j >= i
    return (a[:, None] * mask).sum(dim=0)"""
MUTANTS["outer"] += ["""def outer(a, b):  # through NumPy
    return torch.from_numpy(a.numpy()[:, None] * b.numpy()[None, :])"""]
MUTANTS["diag"] += ["""def diag(a):  # through a Python list
    n = a.shape[0]
    flat = a.reshape(-1).tolist()
    return torch.tensor(flat[::n + 1] if n else [], dtype=a.dtype)"""]
MUTANTS["eye"] += ["""def eye(n):  # a Python list of indices
    i = torch.tensor(list(range(n)))
    return (i[:, None] == i[None, :]).float()"""]
MUTANTS["triu"] += ["""def triu(n):  # NumPy does the work
    i = np.arange(n)
    return torch.from_numpy(i[:, None] <= i[None, :])"""]
MUTANTS["cumsum"] += ["""def triu(n):  # a helper named like the learner's puzzle, wrapping torch's
    return torch.triu(torch.ones(n, n))

def cumsum(a):
    return (a[:, None] * triu(a.shape[0]).to(a.dtype)).sum(dim=0)""",
                      """def cumsum(a):  # Python numbers: sums each prefix with item()
    n = a.shape[0]
    out = torch.zeros_like(a)
    out[torch.arange(n)] = (a[None, :] * (torch.arange(n)[None, :] <= torch.arange(n)[:, None])).sum(1)
    return out + 0 * a.sum().item()"""]
MUTANTS["flip"] += ["""def flip(a):  # through a Python list
    return torch.tensor(a.tolist()[::-1], dtype=a.dtype)"""]
