"""Checks for the pooling exercises (07_pooling).

No exercise may call a function whose name contains ``pool`` (torch's
``F.max_pool2d``, ``nn.AvgPool2d``, ``torch.adaptive_avg_pool2d``, ...): the
check reads the syntax tree of the learner's function and of the notebook
helpers it uses, and also looks up the global names it uses, so that
``mp = F.max_pool2d`` in the answer cell does not hide the call. The learner's
own functions (``max_pool2d`` calling ``sum_pool2d``, say) are allowed: they
are checked in turn. Local variables (``pooled = ...``) are not calls.
"""

from __future__ import annotations

import ast
import builtins
import types

import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import strategies as st

from course.checks.compare import _signature, call, check, check_type, compare_close, describe
from course.checks.conv import check_grads, int_or_pair
from course.checks.forbid import _code_of
from course.checks.strategies import tensors

_max_pool2d = F.max_pool2d
_avg_pool2d = F.avg_pool2d
_lp_pool2d = F.lp_pool2d
_adaptive_avg_pool2d = F.adaptive_avg_pool2d
_grad = torch.autograd.grad
_isinstance = isinstance
_LIBRARIES = (torch, F, nn, torch.Tensor)


def _pair(v):
    return (v, v) if _isinstance(v, int) else tuple(v)


def _local_names(tree) -> set:
    """Names bound inside the function: parameters, assignments, loop targets, imports aside."""
    local = set()
    for node in ast.walk(tree):
        if _isinstance(node, ast.arg):
            local.add(node.arg)
        elif _isinstance(node, ast.Name) and _isinstance(node.ctx, (ast.Store, ast.Del)):
            local.add(node.id)
    return local


def _is_notebook_code(obj, module: str) -> bool:
    return _isinstance(obj, (types.FunctionType, type)) and getattr(obj, "__module__", None) == module


def _forbidden_uses(fn, tree, is_banned, own=lambda name: False):
    """(text, line) for each use in ``tree`` of something ``is_banned(name)`` says is forbidden."""
    local = _local_names(tree)
    for node in ast.walk(tree):
        if _isinstance(node, ast.Attribute) and is_banned(node.attr):
            yield ast.unparse(node), node.lineno
        elif _isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if any(is_banned(part) for part in alias.name.split(".")):
                    yield f"import of {alias.name}", node.lineno
            if _isinstance(node, ast.ImportFrom) and node.module and any(is_banned(p) for p in node.module.split(".")):
                yield f"import from {node.module}", node.lineno
        elif _isinstance(node, ast.Name) and _isinstance(node.ctx, ast.Load) and node.id not in local:
            if fn is None:  # read from the notebook's text: the notebook's own names are checked themselves
                if is_banned(node.id) and not own(node.id):
                    yield node.id, node.lineno
                continue
            target = fn.__globals__.get(node.id, getattr(builtins, node.id, None))
            if target is None or _is_notebook_code(target, fn.__module__):
                continue  # the learner's own helpers are checked themselves
            real = getattr(target, "__name__", "") or ""
            if is_banned(node.id) or (callable(target) and is_banned(real)):
                yield (node.id if real in ("", node.id) else f"{node.id} (which is {real})"), node.lineno
        elif _isinstance(node, ast.Constant) and _isinstance(node.value, str) and node.value.isidentifier():
            if is_banned(node.value) and any(hasattr(lib, node.value) for lib in _LIBRARIES):
                yield f'"{node.value}"', node.lineno  # getattr(F, "max_pool2d")


def _forbid(obj, is_banned, rule: str, what: str | None = None) -> None:
    what = what or getattr(obj, "__qualname__", repr(obj))
    for code in _code_of(obj, what):
        where = "" if code.fn is obj or code.name == getattr(obj, "__name__", None) else f" (in {code.label})"
        for text, line in _forbidden_uses(code.fn, code.tree, is_banned, code.own):
            raise AssertionError(f"{what} must not use `{text}`{where}, line {line} of its source: {rule}")


def forbid_pool(obj, what: str | None = None) -> None:
    """Fail if ``obj`` (or a notebook helper it uses) calls anything whose name contains ``pool``."""
    _forbid(obj, lambda name: "pool" in name.lower(),
            "no function whose name contains `pool` here; build the windows yourself "
            "(Tensor.unfold, slicing or loops)", what)


_AUTOGRAD = {"backward", "autograd", "grad", "vjp", "jvp", "jacrev", "jacfwd", "functorch", "func",
             "enable_grad", "requires_grad_", "retain_grad", "register_hook"}


def forbid_autograd(obj, what: str | None = None) -> None:
    """Fail if ``obj`` asks autograd for the gradient (``.backward()``, ``torch.autograd``, ``x.grad``, ``torch.func``)."""
    _forbid(obj, lambda name: name in _AUTOGRAD,
            "compute the gradient yourself, without autograd", what)


# ----------------------------------------------------------------------------- strategies


@st.composite
def pool_cases(draw, padding=True, max_extra=5, dtype=torch.float64, kernel_max=4, low=-10.0, high=10.0):
    """``(x, kwargs)`` for ``pool(x, **kwargs)``: ``kernel_size``, ``stride`` (absent, ``None``,
    smaller than, equal to or larger than the kernel) and ``padding`` as int or pair;
    odd and non-square sizes, batch of one, non-contiguous inputs."""
    kernel = draw(int_or_pair(1, kernel_max))
    kh, kw = _pair(kernel)
    kwargs = {"kernel_size": kernel}
    choice = draw(st.sampled_from(["absent", "None", "given"]))
    if choice == "None":
        kwargs["stride"] = None
    elif choice == "given":
        kwargs["stride"] = draw(int_or_pair(1, 5))
    if padding and draw(st.booleans()):
        kwargs["padding"] = draw(st.one_of(st.integers(0, min(kh, kw) // 2),
                                           st.tuples(st.integers(0, kh // 2), st.integers(0, kw // 2))))
    ph, pw = _pair(kwargs.get("padding", 0))
    h0, w0 = max(1, kh - 2 * ph), max(1, kw - 2 * pw)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)),
             draw(st.integers(h0, h0 + max_extra)), draw(st.integers(w0, w0 + max_extra)))
    return draw(tensors(shape=shape, dtype=dtype, low=low, high=high)), kwargs


# ----------------------------------------------------------------------------- comparisons


def check_pool(fn, reference, x, grad=False, **kwargs):
    """``fn(x, **kwargs)`` equals ``reference(x, **kwargs)``; with ``grad``, so do the
    gradients with respect to ``x``."""
    expected = reference(x, **kwargs)
    actual = call(fn, x, **kwargs)
    compare_close(actual, expected, _signature(fn, (x,), kwargs))
    if grad:
        check_grads(fn, reference, (x,), kwargs, wrt=(0,), names=["x"])


def max_pool2d_reference(x, kernel_size, stride=None, padding=0):
    return _max_pool2d(x, kernel_size, stride, padding)


def avg_pool2d_reference(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    return _avg_pool2d(x, kernel_size, stride, padding, count_include_pad=count_include_pad)


def sum_pool2d_reference(x, kernel_size, stride=None):
    return _lp_pool2d(x, 1, kernel_size, stride)


def adaptive_avg_pool2d_reference(x, output_size):
    return _adaptive_avg_pool2d(x, output_size)


def max_pool2d_backward_reference(x, grad_out, kernel_size, stride=None):
    leaf = x.detach().clone().requires_grad_(True)
    (g,) = _grad(_max_pool2d(leaf, kernel_size, stride), leaf, grad_out)
    return g


def check_max_pool2d_backward(fn, x, kernel_size, stride=None, seed=0, pass_stride=True):
    """Compare with autograd through ``F.max_pool2d`` (inputs without ties)."""
    out_shape = _max_pool2d(x, kernel_size, stride).shape
    grad_out = torch.randn(out_shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    expected = max_pool2d_backward_reference(x, grad_out, kernel_size, stride)
    args = (x, grad_out, kernel_size) + ((stride,) if pass_stride else ())
    actual = call(fn, *args)
    compare_close(actual, expected, _signature(fn, args, {}))


def check_backward_ties(fn, x, kernel_size):
    """Non-overlapping windows (stride = kernel) full of ties: each window's whole gradient
    must go to one of its maxima (any one), not be split between them or copied to each."""
    kh, kw = _pair(kernel_size)
    n, c, h, w = x.shape
    oh, ow = h // kh, w // kw
    grad_out = torch.arange(1.0, 1 + n * c * oh * ow, dtype=x.dtype).reshape(n, c, oh, ow)
    what = _signature(fn, (x, grad_out, kernel_size), {})
    result = call(fn, x, grad_out, kernel_size)
    check_type(result, torch.Tensor, what)
    check(tuple(result.shape) == tuple(x.shape), f"{what} returned shape {list(result.shape)}, expected {list(x.shape)}")
    windows = x[:, :, :oh * kh, :ow * kw].unfold(2, kh, kh).unfold(3, kw, kw)
    grads = result[:, :, :oh * kh, :ow * kw].unfold(2, kh, kh).unfold(3, kw, kw)
    is_max = windows == windows.amax(dim=(-2, -1), keepdim=True)
    received = grads != 0
    for index in torch.nonzero(torch.ones(n, c, oh, ow)).tolist():
        i = tuple(index)
        g, m, r = grads[i], is_max[i], received[i]
        where = f"window {list(i)} (values {describe(windows[i], 9)})"
        check(int(r.sum()) == 1 and bool(m[r].all()) and bool(torch.isclose(g[r].sum(), grad_out[i])),
              f"{what}: in {where} with tied maxima, the whole gradient {grad_out[i].item():g} must go to one "
              f"of the maxima (torch picks the first), got {describe(g, 9)}")
    outside = result.clone()
    outside[:, :, :oh * kh, :ow * kw] = 0
    check(not bool(outside.any()), f"{what}: rows or columns outside every window must get 0, got {describe(result)}")


def check_global_avg_pool(fn, x):
    expected = x.double().mean(dim=(-2, -1)).to(x.dtype)
    actual = call(fn, x)
    compare_close(actual, expected, _signature(fn, (x,), {}))


def pooled_sizes_reference(hw, pools):
    h, w = hw
    out = []
    for kernel, stride in pools:
        h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
        out.append((h, w))
    return out


def check_pooled_sizes(fn, hw, pools):
    expected = pooled_sizes_reference(hw, pools)
    what = f"{getattr(fn, '__name__', 'pooled_sizes')}({hw!r}, {pools!r})"
    result = call(fn, hw, pools)
    check_type(result, list, what)
    check(len(result) == len(expected), f"{what} returned {len(result)} sizes {result!r}, expected {len(expected)}: {expected}")
    for i, (got, want) in enumerate(zip(result, expected)):
        check(_isinstance(got, tuple) and all(type(s) is int for s in got),
              f"{what}[{i}] is {got!r}: each size must be a tuple (h, w) of ints; expected {expected}")
        check(got == want, f"{what}[{i}] (after pool {pools[i]}) is {got}, expected {want}; all: {expected}")


@st.composite
def pool_stacks(draw):
    """``(hw, pools)``: an image size and a stack of (kernel_size, stride) pools that fits in it."""
    hw = draw(st.integers(1, 300)), draw(st.integers(1, 300))
    h, w = hw
    pools = []
    for _ in range(draw(st.integers(0, 5))):
        kernel, stride = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        if kernel > min(h, w):
            break
        pools.append((kernel, stride))
        h, w = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    return hw, pools


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
