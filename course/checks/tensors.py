"""Checks shared by the tensor exercises (01_tensors): each compares a learner's
result with the contract and names input, expected and actual on failure."""

from __future__ import annotations

import numpy as np
import torch

from course.checks.compare import call, call_probe, check, check_type, compare_close, describe

_isinstance = isinstance
_ATTRIBUTES = ("dtype", "device", "layout", "shape", "ndim", "requires_grad")


def check_attributes(fn, t) -> None:
    what = f"{fn.__name__}({describe(t, 3)})"
    result = call(fn, t)
    check_type(result, dict, what)
    check(set(result) == set(_ATTRIBUTES),
          f"{what} returned keys {sorted(result)}; expected exactly {sorted(_ATTRIBUTES)}")
    kinds = {"dtype": torch.dtype, "device": torch.device, "layout": torch.layout}
    for key, kind in kinds.items():
        value = result[key]
        check(_isinstance(value, kind) and value == getattr(t, key),
              f"{what}[{key!r}] is {value!r} ({type(value).__name__}); expected {getattr(t, key)!r}, a {kind.__name__}")
    shape = result["shape"]
    check(_isinstance(shape, tuple) and all(type(s) is int for s in shape) and tuple(shape) == tuple(t.shape),
          f"{what}['shape'] is {shape!r}; expected the tuple {tuple(t.shape)}")
    for key, kind in (("ndim", int), ("requires_grad", bool)):
        value = result[key]
        check(type(value) is kind and value == getattr(t, key),
              f"{what}[{key!r}] is {value!r} ({type(value).__name__}); expected {getattr(t, key)!r}, a {kind.__name__}")


def check_numpy_views(fn, a: np.ndarray) -> None:
    what = f"{fn.__name__}(ndarray {a.dtype}{list(a.shape)})"
    # sharing memory is seen only where the tensors live: a probe changes the array there
    result, got_shared, got_copied, changed, before = call_probe("numpy_views", fn, a)
    check(_isinstance(result, tuple) and len(result) == 2, f"{what} must return a pair (shared, copied), got {describe(result)}")
    expected = torch.from_numpy(a.copy())
    for name, t in zip(("shared", "copied"), result):
        check_type(t, torch.Tensor, f"{what}: {name}")
        check(t.dtype == expected.dtype, f"{what}: {name} has dtype {t.dtype}, expected {expected.dtype} (the array's)")
        compare_close(t, expected, f"{what}: {name}", rtol=0, atol=0)
    if a.size == 0:
        return
    check(got_shared == changed,
          f"{what}: `shared` does not share memory with the array: after setting a's first element to {changed}, shared holds {got_shared}")
    check(got_copied == before,
          f"{what}: `copied` shares memory with the array: after setting a's first element to {changed}, copied holds {got_copied}")


def check_to_layout(fn, t, layout) -> None:
    what = f"{fn.__name__}({describe(t, 3)}, {layout})"
    result = call(fn, t, layout)
    check_type(result, torch.Tensor, what)
    check(result.layout == layout, f"{what} returned layout {result.layout}, expected {layout}")
    check(result.dtype == t.dtype, f"{what} returned dtype {result.dtype}, expected {t.dtype}")
    if layout == torch.sparse_coo:
        check(result.is_coalesced(), f"{what} returned an uncoalesced sparse tensor: call .coalesce()")
    dense = result.to_dense() if result.layout != torch.strided else result
    compare_close(dense, t.to_dense() if t.layout != torch.strided else t, what, rtol=0, atol=0)


def check_mask(fn, n: int, expected) -> None:
    what = f"{fn.__name__}({n})"
    result = call(fn, n)
    check_type(result, torch.Tensor, what)
    check(tuple(result.shape) == (n, n), f"{what} has shape {list(result.shape)}, expected [{n}, {n}]")
    check(bool(((result == 0) | (result == 1)).all()), f"{what} holds values other than 0 and 1: {describe(result)}")
    compare_close((result != 0), (expected != 0), what, rtol=0, atol=0)
