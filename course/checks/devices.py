"""Pretend accelerators, so that device code can be graded on a CPU-only machine.

``fake_accelerators(cuda=2, mps=False)`` makes ``torch.cuda`` report two GPUs
(and memory figures that differ per device), ``torch.backends.mps`` report no
MPS, and the device-agnostic ``torch.accelerator`` agree with both, for the
duration of a ``with`` block. Only the query functions are
replaced: no tensor is ever put on a fake device.
"""

from __future__ import annotations

import contextlib
from unittest import mock

import torch

_real_device = torch.device


def fake_memory(device_index: int) -> dict[str, int]:
    """The byte counts the fake CUDA reports for one device: distinct per device and key."""
    base = (device_index + 1) * 1_000_000
    return {"allocated": base + 1024, "reserved": base + 4096 * 1024, "max_allocated": base + 2048 * 1024}


@contextlib.contextmanager
def fake_accelerators(cuda: int = 0, mps: bool = False, current: int = 0):
    """``cuda``: how many CUDA devices to report (0: none); ``mps``: whether MPS is available."""

    def index(device=None) -> int:
        if device is None:
            return current
        if isinstance(device, int):
            return device
        d = _real_device(device)
        if d.type != "cuda":
            raise ValueError(f"Expected a cuda device, but got: {d}")
        return current if d.index is None else d.index

    def stat(key):
        def read(device=None):
            if not cuda:
                return 0
            return fake_memory(index(device))[key]
        return read

    def memory_stats(device=None):
        if not cuda:
            return {}
        m = fake_memory(index(device))
        return {
            "allocated_bytes.all.current": m["allocated"],
            "reserved_bytes.all.current": m["reserved"],
            "allocated_bytes.all.peak": m["max_allocated"],
        }

    patches = [
        mock.patch.object(torch.cuda, "is_available", lambda: cuda > 0),
        mock.patch.object(torch.cuda, "device_count", lambda: cuda),
        mock.patch.object(torch.cuda, "current_device", lambda: current),
        mock.patch.object(torch.cuda, "memory_allocated", stat("allocated")),
        mock.patch.object(torch.cuda, "memory_reserved", stat("reserved")),
        mock.patch.object(torch.cuda, "max_memory_allocated", stat("max_allocated")),
        mock.patch.object(torch.cuda, "memory_stats", memory_stats),
        mock.patch.object(torch.backends.mps, "is_available", lambda: mps),
    ]
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:  # torch.accelerator (2.6+): the one present, CUDA before MPS
        kind = "cuda" if cuda else ("mps" if mps else None)

        def current_accelerator(check_available: bool = False):
            return None if kind is None else _real_device(kind)

        def accelerator_stat(key):
            def read(device_index=None):
                if kind != "cuda":
                    return 0
                return fake_memory(current if device_index is None else index(device_index))[key]
            return read

        fakes = {
            "is_available": lambda: kind is not None,
            "current_accelerator": current_accelerator,
            "device_count": lambda: cuda if kind == "cuda" else int(kind == "mps"),
            "current_device_index": lambda: current if kind else -1,
            "current_device_idx": lambda: current if kind else -1,
            "memory_allocated": accelerator_stat("allocated"),
            "memory_reserved": accelerator_stat("reserved"),
            "max_memory_allocated": accelerator_stat("max_allocated"),
        }
        patches += [mock.patch.object(accelerator, name, fake) for name, fake in fakes.items()
                    if hasattr(accelerator, name)]
    if hasattr(torch, "mps") and hasattr(torch.mps, "is_available"):
        patches.append(mock.patch.object(torch.mps, "is_available", lambda: mps))
    with contextlib.ExitStack() as stack:
        for p in patches:
            stack.enter_context(p)
        yield
