"""06_convolutions: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "conv_output_size": '''
import math

def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    span = dilation * (kernel_size - 1) + 1
    return math.floor((size + 2 * padding - span) / stride) + 1
''',
    # The slowest plausible correct answer: plain Python loops over every output element.
    "conv2d": '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    padded = torch.zeros(n, c, h + 2 * ph, w + 2 * pw, dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group = o // groups
    out = torch.zeros(n, o, out_h, out_w, dtype=x.dtype)
    for b in range(n):
        for k in range(o):
            g = k // per_group
            for i in range(out_h):
                for j in range(out_w):
                    window = padded[b, g * cg:(g + 1) * cg,
                                    i * sh:i * sh + dh * (kh - 1) + 1:dh,
                                    j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    value = (window * weight[k]).sum()
                    if bias is not None:
                        value = value + bias[k]
                    out[b, k, i, j] = value
    return out
''',
    "conv1d": '''
def conv1d(x, weight, bias=None, stride=1, padding=0):
    image = x[:, :, None, :]            # [N, C, 1, L]
    kernel = weight[:, :, None, :]      # [O, C, 1, k]
    return conv2d(image, kernel, bias=bias, stride=(1, stride), padding=(0, padding))[:, :, 0, :]
''',
    "conv_output_shape": '''
def conv_output_shape(conv, input_shape):
    batch, _, *spatial = [int(s) for s in input_shape]
    if isinstance(conv.padding, str):
        pads = [None] * len(spatial) if conv.padding == "same" else [0] * len(spatial)
    else:
        pads = list(conv.padding)
    sizes = []
    for size, k, s, p, d in zip(spatial, conv.kernel_size, conv.stride, pads, conv.dilation):
        sizes.append(size if p is None else (size + 2 * p - d * (k - 1) - 1) // s + 1)
    return tuple([batch, conv.out_channels] + sizes)
''',
    "SmallCNN": '''
class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc1 = nn.Linear(16 * 7 * 7, 64)
        self.bn2 = nn.BatchNorm1d(64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.bn2(self.fc1(torch.flatten(x, 1))))
        return self.fc2(x)
''',
    "param_counts": '''
def param_counts(in_hw, in_ch, out_ch, kernel_size):
    conv = nn.Conv2d(in_ch, out_ch, kernel_size, device="meta")
    n_conv = sum(p.numel() for p in conv.parameters())
    n_in = in_ch * in_hw ** 2
    n_out = out_ch * in_hw ** 2
    return {"dense": n_out * (n_in + 1), "conv": int(n_conv)}
''',
    "sobel_edges": '''
def sobel_edges(img):
    # true convolution (flipped kernels) with slices of a padded copy: the magnitude is the same
    h, w = img.shape
    p = torch.zeros(h + 2, w + 2, dtype=img.dtype)
    p[1:-1, 1:-1] = img
    def at(di, dj):
        return p[1 + di:1 + di + h, 1 + dj:1 + dj + w]
    gx = (at(-1, -1) + 2 * at(0, -1) + at(1, -1)) - (at(-1, 1) + 2 * at(0, 1) + at(1, 1))
    gy = (at(-1, -1) + 2 * at(-1, 0) + at(-1, 1)) - (at(1, -1) + 2 * at(1, 0) + at(1, 1))
    return torch.sqrt(gx * gx + gy * gy)
''',
    "receptive_field": '''
def receptive_field(layers):
    # walk down from one output: each layer maps a span of n positions to (n - 1) * s + k inputs
    span = 1
    for kernel, stride in reversed(list(layers)):
        span = (span - 1) * stride + kernel
    return span
''',
}

MUTANTS = {
    "conv_output_size": [
        '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):  # forgets dilation
    return (size + 2 * padding - kernel_size) // stride + 1
''',
        '''
def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):  # true division: a float
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1
''',
        '''
import math

def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):  # rounds up (ceil mode)
    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
''',
    ],
    "conv2d": [
        '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # kernel flipped
    def pair(v):
        return (v, v) if isinstance(v, int) else tuple(v)
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = F.unfold(x, (kh, kw), dilation=(dh, dw), padding=(ph, pw), stride=(sh, sw))
    cols = cols.view(n, groups, cg * kh * kw, oh * ow)
    kernels = weight.flip(-1, -2).reshape(groups, o // groups, cg * kh * kw)
    out = torch.einsum("gok,ngkl->ngol", kernels, cols).reshape(n, o, oh, ow)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
''',
        '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # pairs: only the first number used
    s = stride if isinstance(stride, int) else stride[0]
    p = padding if isinstance(padding, int) else padding[0]
    d = dilation if isinstance(dilation, int) else dilation[0]
    n, _, h, w = x.shape
    o, cg, kh, kw = weight.shape
    oh = (h + 2 * p - d * (kh - 1) - 1) // s + 1
    ow = (w + 2 * p - d * (kw - 1) - 1) // s + 1
    cols = F.unfold(x, (kh, kw), dilation=d, padding=p, stride=s).view(n, groups, cg * kh * kw, oh * ow)
    out = torch.einsum("gok,ngkl->ngol", weight.reshape(groups, o // groups, -1), cols).reshape(n, o, oh, ow)
    return out if bias is None else out + bias.view(1, -1, 1, 1)
''',
        '''
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):  # the forbidden shortcut
    return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
''',
    ],
    "conv1d": [
        '''
def conv1d(x, weight, bias=None, stride=1, padding=0):  # padding also pads the height
    return conv2d(x.unsqueeze(2), weight.unsqueeze(2), bias, stride, padding).squeeze(2)
''',
        '''
def conv1d(x, weight, bias=None, stride=1, padding=0):  # not built on conv2d
    return F.conv1d(x, weight, bias, stride, padding)
''',
        '''
def conv1d(x, weight, bias=None, stride=1, padding=0):  # the signal as a column, the kernel as a row
    out = conv2d(x.unsqueeze(-1), weight.unsqueeze(2), bias, stride=(stride, 1), padding=(padding, 0))
    return out.flatten(2)
''',
    ],
    "conv_output_shape": [
        '''
def conv_output_shape(conv, input_shape):  # forgets dilation
    n, _, *sizes = input_shape
    pad = [0] * len(sizes) if conv.padding == "valid" else conv.padding
    if conv.padding == "same":
        return (n, conv.out_channels, *sizes)
    return (n, conv.out_channels, *[(s + 2 * p - k) // st + 1
            for s, k, st, p in zip(sizes, conv.kernel_size, conv.stride, pad)])
''',
        '''
def conv_output_shape(conv, input_shape):  # padding strings not handled
    n, _, *sizes = input_shape
    return (n, conv.out_channels, *[(s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, k, st, p, d in zip(sizes, conv.kernel_size, conv.stride, conv.padding, conv.dilation)])
''',
        '''
def conv_output_shape(conv, input_shape):  # runs the layer
    return tuple(conv(torch.zeros(input_shape)).shape)
''',
    ],
    "SmallCNN": [
        '''
class SmallCNN(nn.Module):  # no downsampling: the dense layer is far too big (251,210 parameters)
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 28 * 28, 10)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).flatten(1))
''',
        '''
class SmallCNN(nn.Module):  # returns probabilities
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 14 * 14, 10)

    def forward(self, x):
        return torch.softmax(self.fc(F.relu(self.conv(x)).flatten(1)), dim=1)
''',
        '''
class SmallCNN(nn.Module):  # a convolution that is declared but never used
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)
''',
    ],
    "param_counts": [
        '''
def param_counts(in_hw, in_ch, out_ch, kernel_size):  # forgets the conv's bias
    inputs, outputs = in_hw * in_hw * in_ch, in_hw * in_hw * out_ch
    return {"conv": out_ch * in_ch * kernel_size ** 2, "dense": inputs * outputs + outputs}
''',
        '''
def param_counts(in_hw, in_ch, out_ch, kernel_size):  # dense output of out_ch units only
    return {"conv": out_ch * in_ch * kernel_size ** 2 + out_ch,
            "dense": in_hw * in_hw * in_ch * out_ch + out_ch}
''',
        '''
def param_counts(in_hw, in_ch, out_ch, kernel_size):  # floats
    inputs, outputs = in_hw ** 2 * in_ch, in_hw ** 2 * out_ch
    return {"conv": float(out_ch * (in_ch * kernel_size ** 2 + 1)), "dense": float(outputs * (inputs + 1))}
''',
    ],
    "sobel_edges": [
        '''
def sobel_edges(img):  # normalised kernels (divided by 8)
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=img.dtype) / 8
    g = F.conv2d(img[None, None], torch.stack([kx, kx.T])[:, None], padding=1)[0]
    return (g ** 2).sum(0).sqrt()
''',
        '''
def sobel_edges(img):  # replicate padding instead of zeros
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=img.dtype)
    padded = F.pad(img[None, None], (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(padded, torch.stack([kx, kx.T])[:, None])[0]
    return (g ** 2).sum(0).sqrt()
''',
        '''
def sobel_edges(img):  # |gx| + |gy|, the cheap approximation
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=img.dtype)
    g = F.conv2d(img[None, None], torch.stack([kx, kx.T])[:, None], padding=1)[0]
    return g.abs().sum(0)
''',
    ],
    "receptive_field": [
        '''
def receptive_field(layers):  # multiplies by the layer's own stride, not the product of those below
    field = 1
    for kernel, stride in layers:
        field += (kernel - 1) * stride
    return field
''',
        '''
def receptive_field(layers):  # ignores strides
    return 1 + sum(kernel - 1 for kernel, _ in layers)
''',
        '''
def receptive_field(layers):  # updates the jump before using it
    field, jump = 1, 1
    for kernel, stride in layers:
        jump *= stride
        field += (kernel - 1) * jump
    return field
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["conv_output_size"].append("""def conv_output_size(*args, **kwargs):
    from course.checks.conv import conv_output_size_reference
    return conv_output_size_reference(*args, **kwargs)""")
MUTANTS["conv2d"].append("""import course.checks.conv as checks

def conv2d(*args, **kwargs):
    return checks.conv2d_reference(*args, **kwargs)""")
MUTANTS["conv1d"].append("""import sys

def conv1d(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.conv"]
    return getattr(module, "conv1d_r" + "eference")(*args, **kwargs)""")
MUTANTS["param_counts"].append("""def param_counts(*args, **kwargs):
    from course.checks.conv import param_counts_reference
    return param_counts_reference(*args, **kwargs)""")
MUTANTS["sobel_edges"].append("""import course.checks.conv as checks

def sobel_edges(*args, **kwargs):
    return checks.sobel_reference(*args, **kwargs)""")
MUTANTS["receptive_field"].append("""import sys

def receptive_field(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.conv"]
    return getattr(module, "receptive_fi" + "eld_reference")(*args, **kwargs)""")


# conv2d_backward: the convolution's gradients without autograd.
ALTERNATIVES["conv2d_backward"] = '''
def conv2d_backward(grad_out, x, weight, stride=1, padding=0):
    # loops over kernel offsets: each offset is a strided slice of the padded input
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, w = x.shape
    o, _, kh, kw = weight.shape
    oh, ow = grad_out.shape[-2:]
    xp = torch.zeros(n, c, h + 2 * ph, w + 2 * pw, dtype=x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    grad_xp = torch.zeros_like(xp)
    grad_w = torch.zeros_like(weight)
    for p in range(kh):
        for q in range(kw):
            window = xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw]    # [n, c, oh, ow]
            grad_w[:, :, p, q] = (grad_out[:, :, None] * window[:, None]).sum(dim=(0, 3, 4))
            grad_xp[:, :, p:p + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw] += (
                grad_out[:, :, None] * weight[None, :, :, p, q, None, None]).sum(dim=1)
    return grad_xp[:, :, ph:ph + h, pw:pw + w], grad_w, grad_out.sum(dim=(0, 2, 3))
'''
MUTANTS["conv2d_backward"] = [
    ALTERNATIVES["conv2d_backward"].replace(
        "return grad_xp[:, :, ph:ph + h, pw:pw + w], grad_w, grad_out.sum(dim=(0, 2, 3))",
        "return grad_xp[:, :, :h, :w], grad_w, grad_out.sum(dim=(0, 2, 3))  # crops the wrong side of the padding"),
    ALTERNATIVES["conv2d_backward"].replace(
        "grad_w[:, :, p, q] = (grad_out[:, :, None] * window[:, None]).sum(dim=(0, 3, 4))",
        "grad_w[:, :, p, q] = (grad_out[:1, :, None] * window[:1, None]).sum(dim=(0, 3, 4))  # first sample only"),
    ALTERNATIVES["conv2d_backward"].replace(
        "weight[None, :, :, p, q, None, None]",
        "weight[None, :, :, kh - 1 - p, kw - 1 - q, None, None]"),  # the kernel flipped: a convolution, not a correlation
    ALTERNATIVES["conv2d_backward"].replace(
        "grad_out.sum(dim=(0, 2, 3))\n", "grad_out.mean(dim=(0, 2, 3))  # mean, not sum\n"),
    '''
def conv2d_backward(grad_out, x, weight, stride=1, padding=0):  # lets autograd do it
    with torch.enable_grad():
        xl = x.detach().requires_grad_(True)
        wl = weight.detach().requires_grad_(True)
        bl = torch.zeros(weight.shape[0], dtype=x.dtype, requires_grad=True)
        out = torch.nn.functional.conv2d(xl, wl, bl, stride=stride, padding=padding)
        return torch.autograd.grad(out, (xl, wl, bl), grad_out)
''',
    '''
def conv2d_backward(grad_out, x, weight, stride=1, padding=0):  # torch's gradient helpers
    import torch.nn.grad as G
    return (G.conv2d_input(x.shape, weight, grad_out, stride=stride, padding=padding),
            G.conv2d_weight(x, weight.shape, grad_out, stride=stride, padding=padding),
            grad_out.sum(dim=(0, 2, 3)))
''',
]
for _k, _m in enumerate(MUTANTS["conv2d_backward"][:4]):
    assert _m != ALTERNATIVES["conv2d_backward"], _k
