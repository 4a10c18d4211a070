"""Checks for the setup exercises (00_setup)."""

from __future__ import annotations

import platform

import torch
import torchvision

from course.checks.compare import call, call_probe, check, check_type, describe
from course.checks.devices import fake_accelerators, fake_memory

_isinstance = isinstance


def check_environment_report(fn) -> None:
    result = call(fn)
    check_type(result, dict, "environment_report()")
    expected = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count(),
    }
    kinds = {"python": str, "torch": str, "torchvision": str, "cuda_available": bool, "device_count": int}
    for key, value in expected.items():
        check(key in result, f"environment_report() has no key {key!r} (keys: {sorted(result)})")
        got = result[key]
        ok_type = _isinstance(got, kinds[key]) and not (kinds[key] is int and _isinstance(got, bool))
        check(ok_type and got == value,
              f"environment_report()[{key!r}] is {got!r} ({type(got).__name__}); expected {value!r} ({kinds[key].__name__})"
              + (" with this machine's devices" if key in ("cuda_available", "device_count") else ""))


def check_pick_device(fn, prefer, cuda: int, mps: bool, expected: str) -> None:
    setting = f"with {cuda} CUDA device(s) and MPS {'available' if mps else 'unavailable'}"
    result = call_probe("with_devices", fn, (prefer,), cuda, mps, 0)  # where fn runs: torch reports these devices
    check(_isinstance(result, torch.device),
          f"pick_device({prefer!r}) {setting} returned {describe(result)}; expected a torch.device")
    check(result.type == expected and result.index in (None, 0),
          f"pick_device({prefer!r}) {setting} returned {result}; expected device '{expected}'")


def _snapshot(obj):
    """(id, device) of every tensor reachable through containers, to spot in-place changes."""
    if _isinstance(obj, torch.Tensor):
        return [(id(obj), obj.device)]
    if _isinstance(obj, dict):
        return [(id(obj), len(obj))] + [s for k, v in obj.items() for s in [(k,)] + _snapshot(v)]
    if _isinstance(obj, (list, tuple)):
        return [(id(obj), len(obj))] + [s for v in obj for s in _snapshot(v)]
    return [id(obj)]


def _compare_moved(result, original, device: torch.device, path: str, same: list) -> None:
    """``same``: the paths where the result is the input's own object (seen where ``move_to`` ran)."""
    where = f"move_to(...){path}"
    if _isinstance(original, torch.Tensor):
        check(_isinstance(result, torch.Tensor), f"{where} is {describe(result)}; expected a tensor")
        check(result.device.type == device.type,
              f"{where} is on {result.device}; expected it moved to {device}")
        check(result.shape == original.shape and result.dtype == original.dtype,
              f"{where} is {describe(result)}; expected {original.dtype}{list(original.shape)} like the input")
        return
    if _isinstance(original, (dict, list, tuple)):
        check(type(result) is type(original),
              f"{where} is a {type(result).__name__}; expected a {type(original).__name__} like the input")
        check(len(result) == len(original), f"{where} has {len(result)} items; expected {len(original)}")
        if _isinstance(original, dict):
            check(list(result) == list(original), f"{where} has keys {list(result)}; expected {list(original)}")
            if original:
                check(path not in same, f"{where} is the input dict itself; return a new one")
            for key in original:
                _compare_moved(result[key], original[key], device, f"{path}[{key!r}]", same)
        else:
            if _isinstance(original, list) and original:
                check(path not in same, f"{where} is the input list itself; return a new one")
            for i, (r, o) in enumerate(zip(result, original)):
                _compare_moved(r, o, device, f"{path}[{i}]", same)
        return
    check(path in same, f"{where} is {describe(result)}; expected the input's {describe(original)} unchanged")


def check_move_to(fn, obj, device) -> None:
    # identity and in-place changes are seen where move_to runs (a probe); the verdict is made here
    result, same, unchanged = call_probe("moved", fn, obj, device)
    _compare_moved(result, obj, torch.device(device), "", same)
    check(unchanged, "move_to changed its input: it must return a copy and leave `obj` as it was")


def check_cuda_memory_report(fn, device, cuda: int, current: int = 0) -> None:
    setting = f"with {cuda} CUDA device(s)" + (f", current device {current}" if cuda else "")
    result = call_probe("with_devices", fn, (device,), cuda, False, current)
    with fake_accelerators(cuda=cuda, current=current):
        if cuda:
            d = device
            if d is None or (not _isinstance(d, int) and torch.device(d).index is None):
                index = current
            else:
                index = d if _isinstance(d, int) else torch.device(d).index
            expected = fake_memory(index)
        else:
            expected = {"allocated": 0, "reserved": 0, "max_allocated": 0}
    what = f"cuda_memory_report({device!r}) {setting}"
    check_type(result, dict, what)
    for key, value in expected.items():
        check(key in result, f"{what} has no key {key!r} (keys: {sorted(result)})")
        got = result[key]
        check(type(got) is int and got == value, f"{what}[{key!r}] is {got!r}; expected {value} (an int, in bytes)")
