"""00_setup: alternative correct answers (full marks) and plausible mistakes (lose points)."""

ALTERNATIVES = {
    "environment_report": '''
def environment_report():
    import sys
    info = sys.version_info
    count = torch.cuda.device_count()
    return dict(
        python=f"{info.major}.{info.minor}.{info.micro}",
        torch=str(torch.__version__),
        torchvision=str(torchvision.__version__),
        cuda_available=bool(torch.cuda.is_available()),
        device_count=int(count),
    )
''',
    "pick_device": '''
def pick_device(prefer=None):
    backends = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available, "cpu": lambda: True}
    if prefer is not None and prefer not in backends:
        raise ValueError(prefer)
    if prefer is not None and backends[prefer]():
        return torch.device(prefer)
    # torch.accelerator (torch 2.6+) names the accelerator this machine has, whatever its kind
    if torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    return torch.device("cpu")
''',
    "move_to": '''
def move_to(obj, device):
    if torch.is_tensor(obj):
        return obj.to(device=device)
    if isinstance(obj, dict):
        out = type(obj).__new__(type(obj))
        out.__init__()
        for key in obj:
            out[key] = move_to(obj[key], device)
        return out
    if isinstance(obj, tuple) and hasattr(obj, "_make"):
        return obj._make(move_to(v, device) for v in obj)
    if isinstance(obj, tuple):
        return tuple(move_to(v, device) for v in obj)
    if isinstance(obj, list):
        return [move_to(v, device) for v in obj]
    return obj
''',
    "cuda_memory_report": '''
def cuda_memory_report(device=None):
    report = dict.fromkeys(["allocated", "reserved", "max_allocated"], 0)
    if torch.cuda.is_available():
        stats = torch.cuda.memory_stats(device)
        report["allocated"] = int(stats.get("allocated_bytes.all.current", 0))
        report["reserved"] = int(stats.get("reserved_bytes.all.current", 0))
        report["max_allocated"] = int(stats.get("allocated_bytes.all.peak", 0))
    return report
''',
}

MUTANTS = {
    "environment_report": [
        '''
def environment_report():  # the full sys.version string
    import sys
    return {"python": sys.version, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "cuda_available": torch.cuda.is_available(), "device_count": torch.cuda.device_count()}
''',
        '''
def environment_report():  # written for this laptop: no GPU, ever
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "cuda_available": False, "device_count": 0}
''',
        '''
def environment_report():  # availability as an int, count as a bool
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "cuda_available": torch.cuda.device_count(),
            "device_count": torch.cuda.is_available()}
''',
    ],
    "pick_device": [
        '''
def pick_device(prefer=None):  # ignores the preference
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
''',
        '''
def pick_device(prefer=None):  # trusts the preference even when it is unavailable
    if prefer is not None:
        if prefer not in ("cuda", "mps", "cpu"):
            raise ValueError(prefer)
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
''',
        '''
def pick_device(prefer=None):  # mps before cuda, unknown names silently become cpu
    for name in ([prefer] if prefer else []) + ["mps", "cuda"]:
        if name == "cuda" and torch.cuda.is_available():
            return torch.device("cuda")
        if name == "mps" and torch.backends.mps.is_available():
            return torch.device("mps")
    return torch.device("cpu")
''',
    ],
    "move_to": [
        '''
def move_to(obj, device):  # namedtuples and dict subclasses lose their type
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj) if type(obj) in (list, tuple) else tuple(move_to(v, device) for v in obj)
    return obj
''',
        '''
def move_to(obj, device):  # moves in place, and moves anything with a .to (modules too)
    if hasattr(obj, "to"):
        return obj.to(device)
    if isinstance(obj, dict):
        for k in obj:
            obj[k] = move_to(obj[k], device)
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = move_to(v, device)
        return obj
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(move_to(v, device) for v in obj))
    if isinstance(obj, tuple):
        return tuple(move_to(v, device) for v in obj)
    return obj
''',
    ],
    "cuda_memory_report": [
        '''
def cuda_memory_report(device=None):  # megabytes, as floats
    if not torch.cuda.is_available():
        return {"allocated": 0, "reserved": 0, "max_allocated": 0}
    mb = 1024 ** 2
    return {"allocated": torch.cuda.memory_allocated(device) / mb,
            "reserved": torch.cuda.memory_reserved(device) / mb,
            "max_allocated": torch.cuda.max_memory_allocated(device) / mb}
''',
        '''
def cuda_memory_report(device=None):  # ignores the device argument
    if not torch.cuda.is_available():
        return {"allocated": 0, "reserved": 0, "max_allocated": 0}
    return {"allocated": torch.cuda.memory_allocated(), "reserved": torch.cuda.memory_reserved(),
            "max_allocated": torch.cuda.max_memory_allocated()}
''',
        '''
def cuda_memory_report(device=None):  # peak reserved, not peak allocated
    if not torch.cuda.is_available():
        return {"allocated": 0, "reserved": 0, "max_allocated": 0}
    return {"allocated": torch.cuda.memory_allocated(device), "reserved": torch.cuda.memory_reserved(device),
            "max_allocated": torch.cuda.max_memory_reserved(device)}
''',
    ],
}

# Written answers (manually graded) for the complete example submission.
WRITTEN = {
    "anaconda_vs_miniconda": (
        "conda is a package and environment manager. Anaconda is a big distribution (conda, Python and "
        "hundreds of packages); Miniconda installs only conda and Python, and I add what a project needs. "
        "On a server or in CI I would use Miniconda to keep environments small."
    ),
    "install_commands": (
        "pip: `python3.11 -m venv .venv && .venv/bin/pip install -e .[test]`; conda: "
        "`conda env create -f environment.yml`. Check: `python -c 'import torch; print(torch.__version__)'`."
    ),
}
