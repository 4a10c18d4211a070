"""Checks for the setup exercises (00_setup)."""

from __future__ import annotations

import contextlib
import platform
from collections import OrderedDict, namedtuple

import torch
import torchvision

from course.checks.compare import call, call_probe, check, check_type, describe
from course.checks.devices import fake_accelerators, fake_memory

_isinstance = isinstance


def check_environment_report(fn, cuda: int | None = None) -> None:
    """``cuda``: the number of CUDA devices torch reports while ``fn`` runs (``None``: the machine's own)."""
    if cuda is None:
        result = call(fn)
    else:  # where fn runs, torch reports that many devices
        result = call_probe("with_devices", fn, (), cuda, False, 0)
    check_type(result, dict, "environment_report()")
    with fake_accelerators(cuda=cuda) if cuda is not None else contextlib.nullcontext():
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
    if _isinstance(obj, torch.nn.Module):
        return [id(obj)] + [(id(p), p.device) for p in obj.parameters()]
    return [id(obj)]


def shape_of(obj):
    """A plain description of a nested value: its kind, exact type, and for tensors their device,
    shape and dtype (what ``move_to``'s check compares; made where the value lives)."""
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    if _isinstance(obj, torch.Tensor):
        return ["tensor", name, obj.device.type, list(obj.shape), str(obj.dtype)]
    if _isinstance(obj, dict):
        return ["dict", name, [[repr(k), shape_of(v)] for k, v in obj.items()]]
    if _isinstance(obj, (list, tuple)):
        return ["list" if _isinstance(obj, list) else "tuple", name, [shape_of(v) for v in obj]]
    return ["other", name, describe(obj)]


def _compare_moved(result, original, device: torch.device, path: str, same: list) -> None:
    """``result`` and ``original``: ``shape_of`` descriptions; ``same``: the paths where the result
    is the input's own object (seen where ``move_to`` ran)."""
    where = f"move_to(...){path}"
    kind, name, *rest = original
    got_kind, got_name, *got = result
    if kind == "tensor":
        check(got_kind == "tensor", f"{where} is a {got_name}; expected a tensor")
        check(got[0] == device.type, f"{where} is on {got[0]}; expected it moved to {device}")
        check(got[1:] == rest[1:], f"{where} is {got[2]}{got[1]}; expected {rest[2]}{rest[1]} like the input")
        return
    if kind in ("dict", "list", "tuple"):
        short = name.rsplit(".", 1)[-1]
        check(got_name == name, f"{where} is a {got_name.rsplit('.', 1)[-1]}; expected a {short} like the input")
        items, got_items = rest[0], got[0]
        check(len(got_items) == len(items), f"{where} has {len(got_items)} items; expected {len(items)}")
        if kind == "dict":
            keys, got_keys = [k for k, _ in items], [k for k, _ in got_items]
            check(got_keys == keys, f"{where} has keys {', '.join(got_keys)}; expected {', '.join(keys)}")
            if items:
                check(path not in same, f"{where} is the input dict itself; return a new one")
            for (key, value), (_, got_value) in zip(items, got_items):
                _compare_moved(got_value, value, device, f"{path}[{key}]", same)
        else:
            if kind == "list" and items:
                check(path not in same, f"{where} is the input list itself; return a new one")
            for i, (value, got_value) in enumerate(zip(items, got_items)):
                _compare_moved(got_value, value, device, f"{path}[{i}]", same)
        return
    check(path in same, f"{where} is {got[0]}; expected the input's {rest[0]} unchanged")


def check_move_to(fn, obj, device) -> None:
    # what move_to returned, its identities and any in-place change are seen where it runs (a probe)
    result, same, unchanged = call_probe("moved", fn, obj, device)
    _compare_moved(result, shape_of(obj), torch.device(device), "", same)
    check(unchanged, "move_to changed its input: it must return a copy and leave `obj` as it was "
                     "(an nn.Module, and its parameters, are returned as they are)")


# the cases of move_to's hidden tests: classes of the course's, so that copies reach the learner's process
Batch = namedtuple("Batch", ["images", "labels", "ids"])


class Record(dict):
    pass


def move_to_cases():
    model = torch.nn.Linear(2, 2)
    return [
        torch.arange(4),
        Batch(torch.zeros(2, 3), torch.tensor([1, 0]), ["a", "b"]),
        OrderedDict(a=torch.ones(2), b=OrderedDict(c=torch.zeros(1))),
        Record(x=torch.ones(3), meta={"n": 3, "t": (torch.zeros(2), None)}),
        [Batch(torch.ones(1), torch.zeros(1), 0), (torch.ones(2), [torch.ones(3)])],
        {"model": model, "lr": 0.1, "inputs": torch.ones(4, 2)},
        [],
        (),
        {"nothing": None, "text": "hello", "number": 3.5},
    ]


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
