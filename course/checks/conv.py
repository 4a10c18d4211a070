"""Checks for the convolution exercises (06_convolutions).

The torch references (``F.conv2d``, ``F.conv1d``, ...) are captured when this
module is imported, which the notebook's first, locked cell does before any of
the learner's code runs. Every failure names the call (input shapes and the
keyword arguments), what was expected and what came back.
"""

from __future__ import annotations

import ast
import copy
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st

from course.checks.compare import _signature, call, call_probe, check, check_type, compare_close, describe
from course.checks.strategies import tensors

_conv2d = F.conv2d
_conv1d = F.conv1d
_grad = torch.autograd.grad
_isinstance = isinstance
_empty = torch.empty

# Everything that computes a convolution for you: torch's functions, modules and their internals.
CONV_CALLS = [
    "conv1d", "conv2d", "conv3d", "Conv1d", "Conv2d", "Conv3d", "convolution", "_convolution",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "ConvTranspose2d", "LazyConv2d",
    "_conv_forward", "conv_tbc", "mkldnn_convolution", "cudnn_convolution", "thnn_conv2d",
    "slow_conv2d", "conv2d_input", "conv2d_weight", "fft_conv2d",
]


# ----------------------------------------------------------------------------- shapes


def conv_output_size_reference(size, kernel_size, stride=1, padding=0, dilation=1) -> int:
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def check_conv_output_size(fn, *args, **kwargs) -> None:
    expected = conv_output_size_reference(*args, **kwargs)
    what = _signature(fn, args, kwargs)
    result = call(fn, *args, **kwargs)
    check(type(result) is int, f"{what} returned {describe(result)} ({type(result).__name__}); expected the int {expected}")
    check(result == expected, f"{what} returned {result}, expected {expected}")


def _pair_of(value, n):
    return (value,) * n if _isinstance(value, int) else tuple(value)


def expected_output_shape(conv: nn.Module, input_shape) -> tuple:
    """What ``conv`` returns for an input of ``input_shape``, computed by running a copy
    on the meta device (no memory, no arithmetic)."""
    meta = copy.deepcopy(conv).to("meta")
    with warnings.catch_warnings():  # "same" padding with an even kernel warns about a copy
        warnings.simplefilter("ignore")
        return tuple(meta(_empty(tuple(input_shape), device="meta")).shape)


def _describe_conv(conv) -> str:
    return (f"{type(conv).__name__}({conv.in_channels}, {conv.out_channels}, kernel_size={conv.kernel_size}, "
            f"stride={conv.stride}, padding={conv.padding!r}, dilation={conv.dilation})")


def check_conv_output_shape(fn, conv, input_shape) -> None:
    """``fn(conv, input_shape)`` must equal the shape ``conv`` returns, without running ``conv``."""
    expected = expected_output_shape(conv, input_shape)
    what = f"{getattr(fn, '__name__', 'conv_output_shape')}({_describe_conv(conv)}, {tuple(input_shape)!r})"
    # where fn runs, on a copy of the layer whose forward refuses: the shape must be computed, not measured
    outcome, result = call_probe("sealed", fn, conv, tuple(input_shape))
    if outcome == "ran":
        raise AssertionError(
            f"{what} ran the layer: compute the shape from its kernel_size, stride, padding and dilation instead (E11)"
        )
    check(_isinstance(result, tuple),
          f"{what} returned a {type(result).__name__} {describe(result)}; expected the tuple {expected}")
    check(all(type(s) is int for s in result),
          f"{what} returned {result!r}: every size must be a Python int; expected {expected}")
    check(tuple(result) == expected, f"{what} returned {tuple(result)}, expected {expected}")


@st.composite
def conv_modules(draw):
    """(an ``nn.Conv1d/2d/3d``, a batched input shape it accepts)."""
    dims = draw(st.integers(1, 3))

    def per_dim(low, high):
        if draw(st.booleans()):
            return draw(st.integers(low, high))
        return tuple(draw(st.integers(low, high)) for _ in range(dims))

    kernel = per_dim(1, 5)
    dilation = per_dim(1, 3)
    stride = per_dim(1, 4)
    unit_stride = all(s == 1 for s in _pair_of(stride, dims))
    padding = draw(st.sampled_from(["int", "tuple", "valid"] + (["same"] if unit_stride else [])))
    if padding == "int":
        padding = draw(st.integers(0, 4))
    elif padding == "tuple":
        padding = tuple(draw(st.integers(0, 4)) for _ in range(dims))
    in_ch, out_ch = draw(st.integers(1, 8)), draw(st.integers(1, 16))
    kind = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    conv = kind(in_ch, out_ch, kernel, stride=stride, padding=padding, dilation=dilation,
                bias=draw(st.booleans()), device="meta")
    sizes = []
    for k, d, p in zip(_pair_of(kernel, dims), _pair_of(dilation, dims),
                       _pair_of(padding if _isinstance(padding, (int, tuple)) else 0, dims)):
        smallest = max(1, d * (k - 1) + 1 - 2 * p)
        sizes.append(draw(st.integers(smallest, smallest + 60)))
    return conv, (draw(st.integers(1, 64)), in_ch, *sizes)


# ----------------------------------------------------------------------------- conv2d / conv1d


def int_or_pair(low, high):
    """An int, or a pair of ints, in ``[low, high]``."""
    number = st.integers(low, high)
    return st.one_of(number, st.tuples(number, number))


@st.composite
def conv2d_cases(draw, max_extra=5, dtype=torch.float64):
    """``(x, weight, kwargs)`` for ``conv2d(x, weight, **kwargs)``: odd and non-square
    sizes, stride larger than the kernel, padding, dilation, groups, int or pair
    arguments (some left at their defaults), bias or none, non-contiguous inputs."""
    groups = draw(st.integers(1, 3))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kwargs = {}
    for name, low, high in (("stride", 1, 4), ("padding", 0, 2), ("dilation", 1, 3)):
        if draw(st.integers(0, 3)):  # mostly given, sometimes left to the default
            kwargs[name] = draw(int_or_pair(low, high))
    if groups > 1 or draw(st.booleans()):
        kwargs["groups"] = groups
    ph, pw = _pair_of(kwargs.get("padding", 0), 2)
    dh, dw = _pair_of(kwargs.get("dilation", 1), 2)
    h0, w0 = max(1, dh * (kh - 1) + 1 - 2 * ph), max(1, dw * (kw - 1) + 1 - 2 * pw)
    h, w = draw(st.integers(h0, h0 + max_extra)), draw(st.integers(w0, w0 + max_extra))
    n = draw(st.integers(1, 2))
    x = draw(tensors(shape=(n, c_in, h, w), dtype=dtype, low=-1, high=1))
    weight = draw(tensors(shape=(c_out, c_in // groups, kh, kw), dtype=dtype, low=-1, high=1))
    if draw(st.booleans()):
        kwargs["bias"] = draw(tensors(shape=(c_out,), dtype=dtype, low=-1, high=1))
    return x, weight, kwargs


def conv2d_reference(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``F.conv2d`` as it was when the notebook started."""
    return _conv2d(x, weight, bias, stride, padding, dilation, groups)


def conv1d_reference(x, weight, bias=None, stride=1, padding=0):
    """``F.conv1d`` as it was when the notebook started."""
    return _conv1d(x, weight, bias, stride, padding)


def check_conv2d(fn, x, weight, *args, rtol=None, atol=None, **kwargs) -> None:
    """``fn(x, weight, *args, **kwargs)`` equals ``F.conv2d`` (values, shape, dtype)."""
    expected = conv2d_reference(x, weight, *args, **kwargs)
    actual = call(fn, x, weight, *args, **kwargs)
    compare_close(actual, expected, _signature(fn, (x, weight, *args), kwargs), rtol=rtol, atol=atol)


def check_conv1d(fn, x, weight, *args, **kwargs) -> None:
    """``fn(x, weight, *args, **kwargs)`` equals ``F.conv1d``."""
    expected = conv1d_reference(x, weight, *args, **kwargs)
    actual = call(fn, x, weight, *args, **kwargs)
    compare_close(actual, expected, _signature(fn, (x, weight, *args), kwargs))


@st.composite
def conv1d_cases(draw, dtype=torch.float64):
    """``(x [N, C, L], weight [O, C, K], kwargs)`` with stride, padding (ints) and bias."""
    c_in, c_out, k = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 5))
    kwargs = {}
    if draw(st.integers(0, 3)):
        kwargs["stride"] = draw(st.integers(1, 4))
    if draw(st.integers(0, 3)):
        kwargs["padding"] = draw(st.integers(0, 3))
    length = draw(st.integers(max(1, k - 2 * kwargs.get("padding", 0)), 12))
    x = draw(tensors(shape=(draw(st.integers(1, 2)), c_in, length), dtype=dtype, low=-1, high=1))
    weight = draw(tensors(shape=(c_out, c_in, k), dtype=dtype, low=-1, high=1))
    if draw(st.booleans()):
        kwargs["bias"] = draw(tensors(shape=(c_out,), dtype=dtype, low=-1, high=1))
    return x, weight, kwargs


CONV_BACKWARD_BANS = ["backward", "autograd", "func", "vjp", "jacrev", "jacfwd", "conv2d_input", "conv2d_weight",
                      "conv2d_output", "convolution_backward", "requires_grad", "requires_grad_", "enable_grad",
                      "set_grad_enabled"]


def _conv2d_gradients(grad_out, x, weight, stride, padding):
    """Autograd's gradients of ``F.conv2d`` (with a bias), in float64."""
    xl = x.detach().double().requires_grad_(True)
    wl = weight.detach().double().requires_grad_(True)
    bl = torch.zeros(weight.shape[0], dtype=torch.float64, requires_grad=True)
    out = F.conv2d(xl, wl, bl, stride=stride, padding=padding)
    return torch.autograd.grad(out, (xl, wl, bl), grad_out.double())


@st.composite
def conv2d_backward_cases(draw, max_size=7):
    """(grad_out, x, weight, stride, padding): random shapes, strides and paddings (ints or pairs), float64."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, padding = draw(int_or_pair(1, 3)), draw(int_or_pair(0, 2))
    sh, sw = (stride, stride) if _isinstance(stride, int) else stride
    ph, pw = (padding, padding) if _isinstance(padding, int) else padding
    h = draw(st.integers(max(1, kh - 2 * ph), max_size))
    w = draw(st.integers(max(1, kw - 2 * pw), max_size))
    x = draw(tensors(shape=(n, c, h, w), dtype=torch.float64, low=-2, high=2))
    weight = draw(tensors(shape=(o, c, kh, kw), dtype=torch.float64, low=-2, high=2))
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    grad_out = draw(tensors(shape=(n, o, oh, ow), dtype=torch.float64, low=-2, high=2))
    return grad_out, x, weight, stride, padding


def check_conv2d_backward(fn, grad_out, x, weight, stride=1, padding=0) -> None:
    """``fn(grad_out, x, weight, stride, padding)`` returns autograd's ``(grad_x, grad_weight, grad_bias)``
    of ``F.conv2d``; it runs with gradient recording off, so autograd cannot do the work."""
    what = _signature(fn, (grad_out, x, weight), {"stride": stride, "padding": padding})
    want = _conv2d_gradients(grad_out, x, weight, stride, padding)
    with torch.no_grad():
        got = call(fn, grad_out, x, weight, stride=stride, padding=padding)
    check(_isinstance(got, tuple) and len(got) == 3,
          f"{what} must return a tuple (grad_x, grad_weight, grad_bias), got {describe(got)}")
    for name, mine, expected in zip(("grad_x", "grad_weight", "grad_bias"), got, want):
        check(_isinstance(mine, torch.Tensor), f"{what}: {name} is {describe(mine)}; expected a tensor")
        check(mine.shape == expected.shape,
              f"{what}: {name} has shape {list(mine.shape)}; expected {list(expected.shape)}")
        compare_close(mine.double(), expected, f"{what}: {name}")


def check_grads(fn, reference, args, kwargs=None, wrt=(0,), names=None, seed=0) -> None:
    """The gradients of ``fn(*args, **kwargs)`` with respect to ``args[i]`` (``i`` in
    ``wrt``, plus ``kwargs['bias']`` if given) equal those of ``reference``, for a
    random upstream gradient. Leaves keep the arguments' strides (non-contiguous stays so)."""
    kwargs = dict(kwargs or {})
    what = _signature(fn, args, kwargs)

    def run(f, learner):
        call_args, call_kwargs, leaves = list(args), dict(kwargs), []
        for i in wrt:
            call_args[i] = args[i].detach().clone().requires_grad_(True)
            leaves.append(call_args[i])
        if _isinstance(kwargs.get("bias"), torch.Tensor):
            call_kwargs["bias"] = kwargs["bias"].detach().clone().requires_grad_(True)
            leaves.append(call_kwargs["bias"])
        out = call(f, *call_args, **call_kwargs) if learner else f(*call_args, **call_kwargs)
        return out, leaves

    expected, ref_leaves = run(reference, False)
    upstream = torch.randn(expected.shape, generator=torch.Generator().manual_seed(seed), dtype=expected.dtype)
    ref_grads = _grad(expected, ref_leaves, upstream)
    keys = list(wrt) + (["bias"] if _isinstance(kwargs.get("bias"), torch.Tensor) else [])
    # autograd through the learner's code runs where that code is; the gradients come back as data
    actual, connected, grads, _ = call_probe("vjp", fn, list(args), kwargs, keys, upstream)
    leaves = keys
    check_type(actual, torch.Tensor, what)
    check(tuple(actual.shape) == tuple(expected.shape),
          f"{what} returned shape {list(actual.shape)}, expected {list(expected.shape)}")
    check(connected,
          f"{what}: the result is not connected to the inputs' autograd graph (no grad_fn), so no gradient "
          "can flow back; avoid .detach(), .item(), .numpy(), .data and torch.no_grad() in the computation")
    labels = names or [f"argument {i}" for i in wrt]
    if len(leaves) > len(wrt):
        labels = list(labels) + ["bias"]
    for label, got, want in zip(labels, grads, ref_grads):
        check(got is not None, f"{what}: no gradient reaches {label}; expected {describe(want)}")
        compare_close(got, want, f"the gradient with respect to {label} of {what}")


def check_calls_conv2d(conv1d_fn, x, weight, **kwargs) -> None:
    """``conv1d`` must compute through the notebook's ``conv2d`` (watched while it runs)
    and must not name torch's ``F.conv2d``."""
    name = getattr(conv1d_fn, "__name__", "conv1d")
    from course.checks.forbid import _code_of

    for code in _code_of(conv1d_fn, name):
        for node in ast.walk(code.tree):
            if _isinstance(node, ast.Attribute) and node.attr == "conv2d":
                raise AssertionError(f"{name} uses `{ast.unparse(node)}` (line {node.lineno}): call your own conv2d instead")
    # where conv1d runs: the notebook's conv2d is watched while it does
    _, calls, defined = call_probe("calls_of", conv1d_fn, "conv2d", (x, weight), kwargs)
    check(defined, f"{name} must call your conv2d, but the notebook defines no conv2d")
    check(calls, f"{_signature(conv1d_fn, (x, weight), kwargs)} did not call your conv2d: "
                 "treat the signal as an image of height 1 and use conv2d")


# ----------------------------------------------------------------------------- SmallCNN


def check_small_cnn(cls, max_parameters=100_000) -> None:
    """``cls()`` maps ``[N, 1, 28, 28]`` to logits ``[N, 10]`` with at least one
    ``nn.Conv2d`` that the forward pass uses, and at most ``max_parameters`` parameters."""
    g = torch.Generator().manual_seed(1)
    inputs = [torch.rand(n, 1, 28, 28, generator=g) for n in (2, 5, 2, 4)]
    # the model lives where the learner's class does: a probe looks at it there, the verdict is made here
    seen = call_probe("small_cnn", cls, inputs, inputs[-1][:1])
    check(seen.get("module") is True, f"SmallCNN(): expected an nn.Module, got a {seen.get('type', '?')}")
    check(seen.get("convs"), "SmallCNN() has no nn.Conv2d layer: a CNN needs at least one convolution")
    count = seen.get("parameters")
    check(type(count) is int and count <= max_parameters,
          f"SmallCNN() has {count:,} parameters, more than {max_parameters:,}: shrink the dense layer "
          "(downsample with stride or pooling before flattening)")
    outputs = seen.get("outputs") or []
    check(len(outputs) == 3, f"SmallCNN(): expected three outputs, got {describe(outputs)}")
    for x, out in zip(inputs[1:3], outputs[:2]):  # batch of one: in eval mode below (BatchNorm1d cannot train on one sample)
        n = x.shape[0]
        what = f"SmallCNN()(float32[{n}, 1, 28, 28])"
        check_type(out, torch.Tensor, what)
        check(tuple(out.shape) == (n, 10), f"{what} returned shape {list(out.shape)}, expected [{n}, 10]")
        check(out.dtype == torch.float32, f"{what} returned dtype {out.dtype}, expected torch.float32")
        check(bool(torch.isfinite(out).all()), f"{what} returned non-finite values: {describe(out)}")
        probabilities = bool((out >= 0).all()) and bool(torch.allclose(out.sum(1), torch.ones(n), atol=1e-4))
        check(not probabilities, f"{what} returns probabilities (rows are non-negative and sum to 1): "
                                 "return the logits, without softmax; the loss applies it")
    out = outputs[2]
    check_type(out, torch.Tensor, "SmallCNN()(float32[4, 1, 28, 28])")
    check(tuple(out.shape) == (4, 10), f"SmallCNN()(float32[4, 1, 28, 28]) returned shape {list(out.shape)}, expected [4, 10]")
    check(not torch.allclose(out[0], out[1]) or not torch.allclose(out[2], out[3]),
          f"SmallCNN() gives the same logits for different images: {describe(out)}")
    check(seen.get("conv_grad") is True,
          "SmallCNN(): no gradient reaches any nn.Conv2d weight: the forward pass must use the convolution")
    out = seen.get("eval")
    check_type(out, torch.Tensor, "SmallCNN() in eval mode, one image")
    check(tuple(out.shape) == (1, 10), f"SmallCNN() in eval mode returned shape {list(out.shape)} for one image, expected [1, 10]")


# ----------------------------------------------------------------------------- param_counts, sobel, receptive field


def param_counts_reference(in_hw, in_ch, out_ch, kernel_size) -> dict:
    conv = out_ch * in_ch * kernel_size * kernel_size + out_ch
    inputs, outputs = in_hw * in_hw * in_ch, in_hw * in_hw * out_ch
    return {"conv": conv, "dense": inputs * outputs + outputs}


def check_param_counts(fn, in_hw, in_ch, out_ch, kernel_size) -> None:
    expected = param_counts_reference(in_hw, in_ch, out_ch, kernel_size)
    what = f"{getattr(fn, '__name__', 'param_counts')}({in_hw}, {in_ch}, {out_ch}, {kernel_size})"
    result = call(fn, in_hw, in_ch, out_ch, kernel_size)
    check_type(result, dict, what)
    for key, want in expected.items():
        check(key in result, f"{what} has no key {key!r}; expected {expected}")
        got = result[key]
        check(type(got) is int, f"{what}[{key!r}] is {got!r} ({type(got).__name__}); expected the int {want}")
        check(got == want, f"{what}[{key!r}] is {got:,}, expected {want:,}")


SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]


def sobel_reference(img: torch.Tensor) -> None:
    kx = torch.tensor(SOBEL_X, dtype=torch.float64)
    kernels = torch.stack([kx, kx.T])[:, None]
    g = _conv2d(img.double()[None, None], kernels, padding=1)[0]
    return g.square().sum(0).sqrt().to(img.dtype)


def check_sobel(fn, img, atol=None, rtol=None) -> None:
    return compare_result(fn, (img,), sobel_reference(img), atol=atol, rtol=rtol)


def compare_result(fn, args, expected, atol=None, rtol=None):
    actual = call(fn, *args)
    compare_close(actual, expected, _signature(fn, args, {}), atol=atol, rtol=rtol)


def receptive_field_reference(layers) -> int:
    field, jump = 1, 1
    for kernel, stride in layers:
        field += (kernel - 1) * jump
        jump *= stride
    return field


def receptive_field_by_gradient(layers) -> int:
    """The receptive field measured: how many inputs change the centre output of a stack
    of 1-D convolutions with all-ones kernels (the gradient is non-zero there)."""
    size = receptive_field_reference(layers) * 2 + 8
    x = torch.zeros(1, 1, size, dtype=torch.float64, requires_grad=True)
    y = x
    for kernel, stride in layers:
        y = _conv1d(y, torch.ones(1, 1, kernel, dtype=torch.float64), stride=stride)
    (g,) = _grad(y[0, 0, y.shape[-1] // 2], x)
    return int((g != 0).sum())


def check_receptive_field(fn, layers) -> None:
    expected = receptive_field_reference(layers)
    what = f"{getattr(fn, '__name__', 'receptive_field')}({layers!r})"
    result = call(fn, layers)
    check(type(result) is int, f"{what} returned {describe(result)} ({type(result).__name__}); expected the int {expected}")
    check(result == expected, f"{what} returned {result}, expected {expected}")


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
