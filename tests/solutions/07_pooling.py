"""07_pooling: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    # The slowest plausible correct answer: plain Python loops over every output element.
    "max_pool2d": '''
def max_pool2d(x, kernel_size, stride=None, padding=0):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    if stride is None:
        stride = (kh, kw)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, w = x.shape
    padded = torch.full((n, c, h + 2 * ph, w + 2 * pw), float("-inf"), dtype=x.dtype)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    out_h = (h + 2 * ph - kh) // sh + 1
    out_w = (w + 2 * pw - kw) // sw + 1
    out = torch.empty(n, c, out_h, out_w, dtype=x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(out_h):
                for j in range(out_w):
                    out[b, ch, i, j] = padded[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw].max()
    return out
''',
    "avg_pool2d": '''
def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    kh, kw = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    ph, pw = (padding,) * 2 if isinstance(padding, int) else padding
    n, c, h, w = x.shape
    out_h = (h + 2 * ph - kh) // sh + 1
    out_w = (w + 2 * pw - kw) // sw + 1
    rows = []
    for i in range(out_h):
        top, bottom = i * sh - ph, i * sh - ph + kh          # window in unpadded coordinates
        row = []
        for j in range(out_w):
            left, right = j * sw - pw, j * sw - pw + kw
            t, b, l, r = max(top, 0), min(bottom, h), max(left, 0), min(right, w)
            total = x[:, :, t:b, l:r].sum(dim=(2, 3))
            count = kh * kw if count_include_pad else (b - t) * (r - l)
            row.append(total / count)
        rows.append(torch.stack(row, dim=-1))
    return torch.stack(rows, dim=-2)
''',
    "sum_pool2d": '''
def sum_pool2d(x, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    out_h = (x.shape[2] - kh) // sh + 1
    out_w = (x.shape[3] - kw) // sw + 1
    total = 0
    for a in range(kh):                       # add up the kernel's taps, each a strided slice
        for b in range(kw):
            total = total + x[:, :, a:a + sh * (out_h - 1) + 1:sh, b:b + sw * (out_w - 1) + 1:sw]
    return total
''',
    "max_pool2d_backward": '''
def max_pool2d_backward(x, grad_out, kernel_size, stride=None):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    sh, sw = (kh, kw) if stride is None else ((stride, stride) if isinstance(stride, int) else stride)
    n, c, out_h, out_w = grad_out.shape
    grad_x = torch.zeros_like(x, dtype=grad_out.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[b, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    r, q = divmod(int(torch.argmax(window)), kw)
                    grad_x[b, ch, i * sh + r, j * sw + q] += grad_out[b, ch, i, j]
    return grad_x
''',
    "adaptive_avg_pool2d": '''
import math

def adaptive_avg_pool2d(x, output_size):
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = output_size
    h, w = x.shape[-2:]
    rows = []
    for i in range(out_h):
        r0, r1 = math.floor(i * h / out_h), math.ceil((i + 1) * h / out_h)
        cells = []
        for j in range(out_w):
            c0, c1 = math.floor(j * w / out_w), math.ceil((j + 1) * w / out_w)
            cells.append(x[:, :, r0:r1, c0:c1].mean(dim=(-2, -1)))
        rows.append(torch.stack(cells, -1))
    return torch.stack(rows, -2)
''',
    "global_avg_pool": '''
def global_avg_pool(x):
    return adaptive_avg_pool2d(x, 1).flatten(1)
''',
    "pooled_sizes": '''
def pooled_sizes(hw, pools):
    out = []
    size = list(hw)
    for kernel, stride in pools:
        size = [len(range(0, s - kernel + 1, stride)) for s in size]   # count the window starts
        out.append(tuple(size))
    return out
''',
}

MUTANTS = {
    "max_pool2d": [
        '''
def max_pool2d(x, kernel_size, stride=None, padding=0):  # pads with zeros
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = (padding,) * 2 if isinstance(padding, int) else padding
    padded = F.pad(x, (p[1], p[1], p[0], p[0]))
    return padded.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).amax(dim=(-2, -1))
''',
        '''
def max_pool2d(x, kernel_size, stride=None, padding=0):  # stride defaults to 1
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = (1, 1) if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = (padding,) * 2 if isinstance(padding, int) else padding
    padded = F.pad(x, (p[1], p[1], p[0], p[0]), value=float("-inf"))
    return padded.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).amax(dim=(-2, -1))
''',
        '''
def max_pool2d(x, kernel_size, stride=None, padding=0):  # the forbidden shortcut
    return F.max_pool2d(x, kernel_size, stride, padding)
''',
    ],
    "avg_pool2d": [
        '''
def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):  # ignores count_include_pad
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = (padding,) * 2 if isinstance(padding, int) else padding
    return F.pad(x, (p[1], p[1], p[0], p[0])).unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).mean(dim=(-2, -1))
''',
        '''
def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):  # padding applied to the width only
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    p = padding if isinstance(padding, int) else padding[1]
    sums = F.pad(x, (p, p)).unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).sum(dim=(-2, -1))
    if count_include_pad:
        return sums / (k[0] * k[1])
    ones = F.pad(torch.ones_like(x), (p, p)).unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).sum(dim=(-2, -1))
    return sums / ones
''',
        '''
def avg_pool2d(x, kernel_size, stride=None, padding=0, count_include_pad=True):  # a pool by another name
    return F.lp_pool2d(F.pad(x, (padding,) * 4), 1, kernel_size, stride) / (kernel_size * kernel_size)
''',
    ],
    "sum_pool2d": [
        '''
def sum_pool2d(x, kernel_size, stride=None):  # the mean, not the sum
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    return x.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).mean(dim=(-2, -1))
''',
        '''
def sum_pool2d(x, kernel_size, stride=None):  # stride defaults to 1
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = (1, 1) if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    return x.unfold(2, k[0], s[0]).unfold(3, k[1], s[1]).sum(dim=(-2, -1))
''',
        '''
def sum_pool2d(x, kernel_size, stride=None):  # pair arguments: height and width swapped
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    return x.unfold(2, k[1], s[1]).unfold(3, k[0], s[0]).sum(dim=(-2, -1))
''',
    ],
    "max_pool2d_backward": [
        '''
def max_pool2d_backward(x, grad_out, kernel_size, stride=None):  # overwrites instead of accumulating
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    n, c, h, w = x.shape
    win = x.unfold(2, k[0], s[0]).unfold(3, k[1], s[1])
    oh, ow = win.shape[2:4]
    arg = win.reshape(n, c, oh, ow, -1).argmax(-1)
    rows = torch.arange(oh).view(-1, 1) * s[0] + arg // k[1]
    cols = torch.arange(ow).view(1, -1) * s[1] + arg % k[1]
    grad = torch.zeros(n, c, h * w, dtype=grad_out.dtype)
    grad.scatter_(2, (rows * w + cols).reshape(n, c, -1), grad_out.reshape(n, c, -1))
    return grad.view(n, c, h, w)
''',
        '''
def max_pool2d_backward(x, grad_out, kernel_size, stride=None):  # ties split between the maxima
    k = (kernel_size,) * 2 if isinstance(kernel_size, int) else kernel_size
    s = k if stride is None else ((stride,) * 2 if isinstance(stride, int) else stride)
    grad = torch.zeros_like(x, dtype=grad_out.dtype)
    n, c, oh, ow = grad_out.shape
    for i in range(oh):
        for j in range(ow):
            win = x[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]]
            mask = (win == win.amax(dim=(-2, -1), keepdim=True)).to(grad.dtype)
            share = mask / mask.sum(dim=(-2, -1), keepdim=True)
            grad[:, :, i * s[0]:i * s[0] + k[0], j * s[1]:j * s[1] + k[1]] += share * grad_out[:, :, i:i + 1, j:j + 1]
    return grad
''',
        '''
def max_pool2d_backward(x, grad_out, kernel_size, stride=None):  # asks autograd
    x = x.detach().requires_grad_(True)
    out = F.max_pool2d(x, kernel_size, stride)
    out.backward(grad_out)
    return x.grad
''',
    ],
    "adaptive_avg_pool2d": [
        '''
def adaptive_avg_pool2d(x, output_size):  # fixed windows of size H // out: right only when out divides H
    oh, ow = (output_size,) * 2 if isinstance(output_size, int) else output_size
    kh, kw = x.shape[2] // oh, x.shape[3] // ow
    return x.unfold(2, kh, kh).unfold(3, kw, kw).mean(dim=(-2, -1))[:, :, :oh, :ow]
''',
        '''
def adaptive_avg_pool2d(x, output_size):  # windows end at floor, not ceil
    oh, ow = (output_size,) * 2 if isinstance(output_size, int) else output_size
    h, w = x.shape[-2:]
    rows = []
    for i in range(oh):
        r0, r1 = i * h // oh, max((i + 1) * h // oh, i * h // oh + 1)
        rows.append(torch.stack([x[:, :, r0:r1, j * w // ow:max((j + 1) * w // ow, j * w // ow + 1)].mean((-2, -1))
                                 for j in range(ow)], -1))
    return torch.stack(rows, -2)
''',
        '''
def adaptive_avg_pool2d(x, output_size):  # an int output_size taken as the height only
    oh, ow = (output_size, x.shape[3]) if isinstance(output_size, int) else output_size
    h, w = x.shape[-2:]
    def matrix(size, out):
        i = torch.arange(out).view(-1, 1)
        pos = torch.arange(size).view(1, -1)
        m = ((pos >= i * size // out) & (pos < -((-(i + 1) * size) // out))).to(x.dtype)
        return m / m.sum(1, keepdim=True)
    return torch.einsum("ih,nchw,jw->ncij", matrix(h, oh), x, matrix(w, ow))
''',
    ],
    "global_avg_pool": [
        '''
def global_avg_pool(x):  # keeps the pooled dimensions: [N, C, 1, 1]
    return x.mean(dim=(2, 3), keepdim=True)
''',
        '''
def global_avg_pool(x):  # averages over channels and height
    return x.mean(dim=(1, 2))
''',
        '''
def global_avg_pool(x):  # torch's adaptive pooling is a pool call
    return F.adaptive_avg_pool2d(x, 1).flatten(1)
''',
    ],
    "pooled_sizes": [
        '''
import math

def pooled_sizes(hw, pools):  # rounds up (ceil mode)
    h, w = hw
    out = []
    for k, s in pools:
        h, w = math.ceil((h - k) / s) + 1, math.ceil((w - k) / s) + 1
        out.append((h, w))
    return out
''',
        '''
def pooled_sizes(hw, pools):  # every pool applied to the original size
    return [((hw[0] - k) // s + 1, (hw[1] - k) // s + 1) for k, s in pools]
''',
        '''
def pooled_sizes(hw, pools):  # divides by the stride, forgetting the kernel
    h, w = hw
    out = []
    for k, s in pools:
        h, w = h // s, w // s
        out.append((h, w))
    return out
''',
    ],
}


# Answers that delegate to the course's own reference implementation: each must lose the
# exercise's points (read from the answer's text, or refused at run time when the name is computed).

MUTANTS["max_pool2d"].append("""def max_pool2d(*args, **kwargs):
    from course.checks.pool import max_pool2d_reference
    return max_pool2d_reference(*args, **kwargs)""")
MUTANTS["avg_pool2d"].append("""import course.checks.pool as checks

def avg_pool2d(*args, **kwargs):
    return checks.avg_pool2d_reference(*args, **kwargs)""")
MUTANTS["sum_pool2d"].append("""import sys

def sum_pool2d(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.pool"]
    return getattr(module, "sum_pool2d" + "_reference")(*args, **kwargs)""")
MUTANTS["adaptive_avg_pool2d"].append("""def adaptive_avg_pool2d(*args, **kwargs):
    from course.checks.pool import adaptive_avg_pool2d_reference
    return adaptive_avg_pool2d_reference(*args, **kwargs)""")
MUTANTS["max_pool2d_backward"].append("""import course.checks.pool as checks

def max_pool2d_backward(*args, **kwargs):
    return checks.max_pool2d_backward_reference(*args, **kwargs)""")
MUTANTS["pooled_sizes"].append("""import sys

def pooled_sizes(*args, **kwargs):  # names computed at run time: only the run-time layer sees it
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.pool"]
    return getattr(module, "pooled_size" + "s_reference")(*args, **kwargs)""")
