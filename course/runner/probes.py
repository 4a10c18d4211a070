"""Probes: fixed pieces of course code that run where the learner's objects live.

Some points of a lesson can only be observed in the process that holds the learner's
objects: whether a tensor shares memory with an array, what autograd computes through
the learner's code, what an optimizer does to parameters. A probe does that
observation and returns plain data; the tester judges the data. Probes are not secret
(they are public course code, and they hold no expected values): a learner who
tampers with one in their own process changes only the data it returns.
"""

from __future__ import annotations


def numpy_views(fn, a):
    """``fn(a)``, then whether its two tensors follow a change of ``a``'s first element:
    (result, shared's first element after, copied's first element after, the new value, the old value)."""
    import numpy as np

    result = fn(a)
    if a.size == 0 or not (isinstance(result, tuple) and len(result) == 2):
        return result, None, None, None, None
    shared, copied = result
    before = a.flat[0].item()
    a.flat[0] = (not before) if a.dtype == np.bool_ else before + 7
    changed = a.flat[0].item()  # as stored in the array's dtype
    try:
        got = tuple(t.reshape(-1)[0].item() for t in (shared, copied))
    except Exception:  # noqa: BLE001 - not tensors: the tester says so from the result
        got = (None, None)
    finally:
        a.flat[0] = before
    return result, got[0], got[1], changed, before


def vjp(fn, args, kwargs, wrt, upstream, materialize=False):
    """``fn(*args, **kwargs)`` with the arguments named in ``wrt`` (positions, or keyword
    names) as fresh leaves that require grad (strides kept); then the vector-Jacobian
    product with ``upstream`` (``None``: the gradient of ``out.sum()``).

    Returns ``(out, connected, grads, after)``: ``connected`` whether ``out`` is a tensor in
    the leaves' graph, ``grads`` one gradient per leaf (``None`` where none reaches it; all
    ``None`` when ``out`` is not connected or its shape is not ``upstream``'s) and ``after``
    the positional arguments as they are after the call (an in-place change shows there)."""
    import torch

    call_args, call_kwargs, leaves = list(args), dict(kwargs), []
    for key in wrt:
        holder = call_args if isinstance(key, int) else call_kwargs
        if isinstance(holder[key], torch.Tensor):
            holder[key] = holder[key].detach().clone().requires_grad_(True)
            leaves.append(holder[key])
    out = fn(*call_args, **call_kwargs)
    connected = type(out) is torch.Tensor and out.requires_grad and bool(leaves)
    grads = [None] * len(leaves)
    if connected and (upstream is None or tuple(upstream.shape) == tuple(out.shape)):
        target, vector = (out.sum(), None) if upstream is None else (out, upstream.to(out.dtype))
        grads = list(torch.autograd.grad(target, leaves, vector, allow_unused=True, materialize_grads=materialize))
    after = [a.detach() if isinstance(a, torch.Tensor) else a for a in call_args]
    return out, connected, grads, after


def with_devices(fn, args, cuda, mps, current):
    """``fn(*args)`` while ``torch`` reports the given accelerators (``course.checks.devices``)."""
    from course.checks.devices import fake_accelerators

    with fake_accelerators(cuda=cuda, mps=mps, current=current):
        return fn(*args)


def moved(fn, obj, device):
    """``fn(obj, device)``; the paths (``""``, ``"[1]"``, ``"['x']"``) where the result is the
    very object the input holds there; and whether the input is as it was."""
    from course.checks.setup import _snapshot

    before = _snapshot(obj)
    result = fn(obj, device)
    same = []

    def walk(r, o, path):
        if r is o:
            same.append(path)
        if isinstance(o, dict) and isinstance(r, dict):
            for key in o:
                if key in r:
                    walk(r[key], o[key], f"{path}[{key!r}]")
        elif isinstance(o, (list, tuple)) and isinstance(r, (list, tuple)):
            for i, (a, b) in enumerate(zip(r, o)):
                walk(a, b, f"{path}[{i}]")

    walk(result, obj, "")
    return result, same, _snapshot(obj) == before


PROBES = {"numpy_views": numpy_views, "vjp": vjp, "with_devices": with_devices, "moved": moved}
