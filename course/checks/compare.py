"""Comparisons with messages a learner can act on."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch
import torch.testing

from course.checks.own_work import check_own_work as _check_own

# Trusted copies, taken before any learner code runs (see course.checks).
_assert_close = torch.testing.assert_close
_is_tensor = torch.is_tensor
_isinstance = isinstance
_Tensor = torch.Tensor
_repr = repr

# The first assert_close call imports much of torch lazily (~2 s on a slow CPU): pay that
# here, in the notebook's setup cell, not inside the first test cell that compares.
_assert_close(torch.zeros(1), torch.zeros(1))


def describe(value, limit: int = 6) -> str:
    """A short, readable summary: ``float32[2, 3] [0.1, -2, ...]``."""
    if _isinstance(value, _Tensor):
        head = f"{str(value.dtype).removeprefix('torch.')}{list(value.shape)}"
        if value.layout != torch.strided:
            head += f" {str(value.layout).removeprefix('torch.')}"
            value = value.to_dense()
        if value.device.type != "cpu":
            head += f" on {value.device}"
        if value.device.type == "meta":
            return head
        flat = value.detach().reshape(-1)
        items = ", ".join(_fmt(x) for x in flat[:limit].tolist())
        more = ", ..." if flat.numel() > limit else ""
        return f"{head} [{items}{more}]"
    if _isinstance(value, np.ndarray):
        return f"ndarray {value.dtype}{list(value.shape)}"
    if _isinstance(value, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v, 3)}" for k, v in value.items()) + "}"
    if _isinstance(value, (list, tuple)) and any(_isinstance(v, _Tensor) for v in value):
        inner = ", ".join(describe(v, 3) for v in value[:limit])
        more = ", ..." if len(value) > limit else ""
        open_, close = ("[", "]") if _isinstance(value, list) else ("(", ")")
        return f"{open_}{inner}{more}{close}"
    text = _repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _fmt(x) -> str:
    if _isinstance(x, float):
        return f"{x:.4g}"
    return _repr(x)


def _signature(fn, args, kwargs) -> str:
    name = getattr(fn, "__name__", None) or _repr(fn)
    parts = [describe(a, 4) for a in args] + [f"{k}={describe(v, 4)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def fail(message: str):
    """Fail the check with ``message`` (used where no helper fits)."""
    raise AssertionError(message)


def check(condition, message: str) -> None:
    """``assert condition, message`` that cannot be switched off by ``python -O``."""
    if not condition:
        raise AssertionError(message)


_own_work_checked: dict[int, object] = {}


def _check_own_work(fn) -> None:
    """Once per function: its code must not lean on the course's (see ``own_work``). A handle
    to the learner's process is not read here: the grader reads the notebook's text."""
    from course.runner.tester import is_remote

    if id(fn) in _own_work_checked or is_remote(fn):
        return
    _check_own(fn)
    _own_work_checked[id(fn)] = fn  # kept alive, so the id is not reused


def call(fn, *args, **kwargs):
    """Call the learner's ``fn``; an exception becomes a message naming the call."""
    _check_own_work(fn)
    return _answer(fn, lambda: _signature(fn, args, kwargs), fn, args, kwargs)


def call_probe(probe: str, fn, *args, shown: tuple | None = None):
    """Run the course's ``probe`` on the learner's ``fn`` (``course.runner.probes``): where
    ``fn`` lives, so that what only that process can see (shared memory, autograd) is seen.
    An exception becomes a message naming the call of ``fn`` (with ``shown``'s (args, kwargs),
    when the probe's own arguments are not what ``fn`` was called with)."""
    from course.runner.tester import run_probe

    _check_own_work(fn)
    args_shown, kwargs_shown = shown if shown is not None else (args, {})
    return _answer(fn, lambda: _signature(fn, args_shown, kwargs_shown), run_probe, (probe, fn, *args), {})


def _answer(fn, signature, target, args, kwargs):
    try:
        return target(*args, **kwargs)
    except NotImplementedError as error:
        if str(error):  # raised by something inside the learner's code, not the stub
            raise AssertionError(f"{signature()} raised NotImplementedError: {error}") from error
        name = getattr(fn, "__name__", "this exercise")
        raise AssertionError(
            f"{name} is not implemented yet: replace `raise NotImplementedError()` in its cell with your code"
        ) from None
    except AssertionError:
        raise
    except Exception as error:  # the learner's code failed: say where and on what
        raise AssertionError(f"{signature()} raised {type(error).__name__}: {error}") from error


def check_type(value, types, what: str) -> None:
    if not _isinstance(value, types):
        names = types.__name__ if _isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise AssertionError(f"{what}: expected a {names}, got {type(value).__name__} {describe(value)}")


def check_close(fn, *args, expected, rtol=None, atol=None, equal_nan=False, check_dtype=True, **kwargs):
    """``fn(*args, **kwargs)`` must equal ``expected`` within ``torch.testing.assert_close``
    tolerances (tensors, numbers, or nested lists/tuples/dicts of them). Returns the result."""
    actual = call(fn, *args, **kwargs)
    compare_close(actual, expected, what=_signature(fn, args, kwargs), rtol=rtol, atol=atol,
                  equal_nan=equal_nan, check_dtype=check_dtype)
    return actual


def compare_close(actual, expected, what: str, rtol=None, atol=None, equal_nan=False, check_dtype=True):
    if _is_tensor(expected) and not _is_tensor(actual):
        raise AssertionError(
            f"{what} returned a {type(actual).__name__} ({describe(actual)}); expected a tensor {describe(expected)}"
        )
    if _is_tensor(expected) and tuple(actual.shape) != tuple(expected.shape):
        raise AssertionError(
            f"{what} returned shape {list(actual.shape)}, expected {list(expected.shape)}\n"
            f"  expected: {describe(expected)}\n  actual:   {describe(actual)}"
        )
    if _isinstance(expected, float) and _isinstance(actual, (int, float)) and not _isinstance(actual, bool):
        actual = float(actual)  # an int where a float is expected is still the right number
    try:
        _assert_close(actual, expected, rtol=rtol, atol=atol, equal_nan=equal_nan,
                      check_dtype=check_dtype, check_layout=False)
    except (AssertionError, TypeError, ValueError, RuntimeError) as error:
        detail = " ".join(str(error).split())
        raise AssertionError(
            f"{what} is wrong: {detail[:300]}\n  expected: {describe(expected)}\n  actual:   {describe(actual)}"
        ) from None


def check_equal(fn, *args, expected, **kwargs):
    """``fn(*args, **kwargs) == expected`` exactly (same type family, same values)."""
    actual = call(fn, *args, **kwargs)
    compare_equal(actual, expected, what=_signature(fn, args, kwargs))
    return actual


def compare_equal(actual, expected, what: str) -> None:
    if _is_tensor(expected) or _is_tensor(actual):
        compare_close(actual, expected, what, rtol=0, atol=0, equal_nan=True)
        return
    same = actual == expected
    if _isinstance(expected, float) and _isinstance(actual, float) and math.isnan(expected):
        same = math.isnan(actual)
    if not same:
        raise AssertionError(f"{what} returned {describe(actual)}, expected {describe(expected)}")


def check_raises(fn, *args, exception=ValueError, **kwargs) -> None:
    """``fn(*args, **kwargs)`` must raise ``exception``."""
    what = _signature(fn, args, kwargs)
    try:
        result = fn(*args, **kwargs)
    except NotImplementedError:
        call(fn, *args, **kwargs)  # reports "not implemented yet"
    except exception:
        return
    except Exception as error:
        raise AssertionError(
            f"{what} raised {type(error).__name__} ({error}); expected {exception.__name__}"
        ) from None
    else:
        raise AssertionError(f"{what} returned {describe(result)}; expected it to raise {exception.__name__}")
