"""What keeps a learner's cells from defeating the hidden tests (runs inside the sandbox).

Test cells call the course's checks (``course.checks``), which compare against
torch, numpy and the standard library. A learner's cells run in the same Python
process, so they could rebind what the tests rely on::

    torch.testing.assert_close = lambda *a, **k: None    # a library function
    import course.checks.compare as c
    c.compare_close = lambda *a, **k: None               # a course helper
    check_close = lambda *a, **k: None                   # a name the setup cell imported
    sys.modules["course.checks.tensors"] = fake_module   # a whole module

The design, in three layers:

1. **Trusted references, taken before any learner code runs.** The sandbox worker
   imports torch, numpy, hypothesis and the standard library before it forks a
   process per submission; ``Guard`` records the callables, classes and modules
   of the modules tests rely on (``PROTECTED``) at that point. Every ``course.*``
   module is imported through ``TrustedCourseImporter``: it is found only in the
   course's own package folder (a ``course/`` folder, ``sitecustomize.py`` or
   ``conftest.py`` next to the notebook never shadows it: the submission's folder
   is not on ``sys.path`` before the course, and the worker started long before),
   and recorded the moment its import finishes. Names that locked cells (the setup
   cell, test cells) bind to functions, classes or modules are recorded after
   those cells run.
2. **Restore before every test cell.** Every recorded module attribute, the
   ``sys.modules`` entries, ``sys.meta_path``, ``builtins``, the streams and
   trace hooks, and the notebook names bound by locked cells are put back, so a
   rebinding made by an answer cell is gone when the hidden tests run.
3. **Verify after every test cell.** A learner's function runs *during* the test
   (the test calls it); if it rebinds a trusted function while it runs, the
   change is found when the cell ends, undone, and the cell fails with a message
   that names what was changed.

Test cells themselves are run by the worker's own small runner (``compile`` and
``exec`` captured at start-up), not through IPython's input transformers or
display hooks, which learner code can reach and alter.

What this cannot stop: code that deliberately reaches into the grader's own frames
or memory (``gc``, ``ctypes``), or writes forged results to the worker's result
channel. Plain nbgrader has the same limit (a kernel runs the learner's code in the
process that reports results). The sandbox still confines such code (no network,
nothing of the course's files or other students readable), and the autograded
notebook keeps the code for the instructor to read.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.machinery
import os
import sys
import types

# Modules whose callables tests rely on (directly or through course.checks).
PROTECTED = (
    "builtins", "math", "cmath", "operator", "functools", "itertools", "inspect", "ast", "traceback",
    "types", "copy", "numbers",
    "torch", "torch.testing", "torch.testing._comparison", "torch.functional", "torch.nn",
    "torch.nn.functional", "torch.nn.init", "torch.nn.modules.module", "torch.autograd",
    "torch.autograd.gradcheck", "torch.autograd.functional", "torch.linalg", "torch._tensor",
    "torch.utils.data", "torch.random",
    "numpy", "numpy.testing", "numpy.testing._private.utils", "numpy.linalg", "numpy.random",
    "hypothesis", "hypothesis.core", "hypothesis.control", "hypothesis._settings",
    "hypothesis.strategies", "hypothesis.strategies._internal.core", "hypothesis.errors",
)
# Classes whose methods tests call on learner results.
PROTECTED_CLASSES = ("torch.Tensor", "torch._C.TensorBase", "torch.nn.Module", "torch.nn.Parameter",
                     "torch.Size", "torch.dtype", "torch.device")
TRUSTED_PACKAGE = "course"

_type = type
_id = id
_isinstance = isinstance
_callable = callable
_getattr = getattr
_setattr = setattr
_ModuleType = types.ModuleType


def _tracked(value) -> bool:
    """Values worth protecting: functions, classes, modules (not data, which legitimately changes)."""
    return _isinstance(value, (_ModuleType, _type)) or _callable(value)


def _resolve(dotted: str):
    head, _, rest = dotted.partition(".")
    obj = sys.modules.get(head)
    for part in rest.split(".") if rest else []:
        if obj is None:
            return None
        obj = _getattr(obj, part, None)
    return obj


class Guard:
    """Snapshots of trusted state; ``restore()`` before a test cell, ``verify()`` after."""

    def __init__(self, course_dir: str):
        self.course_dir = os.path.realpath(course_dir)  # the folder of the ``course`` package
        self.modules: dict[str, types.ModuleType] = {}  # name → the trusted module object
        self.attributes: dict[str, dict[str, object]] = {}  # module name → tracked attributes
        self.classes: dict[int, tuple[type, dict[str, object]]] = {}
        self.names: dict[str, object] = {}  # notebook names bound by locked cells
        self.meta_path = list(sys.meta_path)
        self.path_hooks = list(sys.path_hooks)
        self.builtins = builtins
        for name in PROTECTED:
            module = sys.modules.get(name)
            if module is not None:
                self.record_module(name, module)
        for dotted in PROTECTED_CLASSES:
            cls = _resolve(dotted)
            if _isinstance(cls, _type):
                self.classes[_id(cls)] = (cls, {k: v for k, v in cls.__dict__.items() if _tracked(v)})
        for name, module in list(sys.modules.items()):
            if name == TRUSTED_PACKAGE or name.startswith(TRUSTED_PACKAGE + "."):
                self.record_module(name, module)

    # -- recording -----------------------------------------------------------------

    def record_module(self, name: str, module) -> None:
        self.modules[name] = module
        self.attributes[name] = {k: v for k, v in vars(module).items() if _tracked(v)}

    def install_importer(self) -> None:
        """Put the trusted importer for ``course.*`` first on ``sys.meta_path``."""
        importer = TrustedCourseImporter(self)
        sys.meta_path.insert(0, importer)
        self.meta_path = list(sys.meta_path)

    def record_names(self, namespace: dict, before: dict) -> None:
        """After a locked cell: remember the functions, classes and modules it bound."""
        for key, value in namespace.items():
            if before.get(key, _MISSING) is not value and _tracked(value) and not key.startswith("_"):
                self.names[key] = value

    # -- restoring and verifying -----------------------------------------------------

    def restore(self, namespace: dict, streams: tuple) -> list[str]:
        """Undo every change to trusted state; returns what was changed."""
        changed = []
        sys.settrace(None)
        sys.setprofile(None)
        try:
            import threading
            threading.settrace(None)
            threading.setprofile(None)
        except Exception:
            pass
        sys.stdout, sys.stderr = streams
        sys.meta_path[:] = self.meta_path
        sys.path_hooks[:] = self.path_hooks
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                changed.append(f"sys.modules[{name!r}]")
        for name in [n for n in sys.modules if (n == TRUSTED_PACKAGE or n.startswith(TRUSTED_PACKAGE + "."))]:
            if name not in self.modules:
                del sys.modules[name]  # planted by the learner: the real one is imported again
                changed.append(f"sys.modules[{name!r}]")
        changed += self._restore_attributes(fix=True)
        if namespace.get("__builtins__") is not self.builtins:
            namespace["__builtins__"] = self.builtins
            changed.append("__builtins__")
        for key, value in self.names.items():
            if namespace.get(key, _MISSING) is not value:
                namespace[key] = value
                if _getattr(value, "__module__", None) != "__main__":  # an import, not a cell's own helper
                    changed.append(key)
        return changed

    def verify(self) -> list[str]:
        """After a test cell: what trusted state changed while it ran (and undo it)."""
        changed = [f"sys.modules[{n!r}]" for n, m in self.modules.items() if sys.modules.get(n) is not m]
        for name, module in self.modules.items():
            sys.modules[name] = module
        return changed + self._restore_attributes(fix=True)

    def _restore_attributes(self, fix: bool) -> list[str]:
        changed = []
        for name, attributes in self.attributes.items():
            module = self.modules[name]
            namespace = vars(module)
            for key, value in list(attributes.items()):
                current = namespace.get(key, _MISSING)
                if current is not value:
                    if _isinstance(current, _ModuleType) and current is sys.modules.get(f"{name}.{key}"):
                        attributes[key] = current  # importing a submodule binds it on its package
                        continue
                    if fix:
                        namespace[key] = value
                    changed.append(f"{name}.{key}")
        for cls, attributes in self.classes.values():
            for key, value in attributes.items():
                if cls.__dict__.get(key, _MISSING) is not value:
                    if fix:
                        try:
                            _setattr(cls, key, value)
                        except (TypeError, AttributeError):
                            continue
                    changed.append(f"{cls.__module__}.{cls.__qualname__}.{key}")
        return changed


class _Missing:
    __slots__ = ()


_MISSING = _Missing()


class TrustedCourseImporter(importlib.abc.MetaPathFinder):
    """Finds ``course`` and its submodules only in the course's own folder, and records
    each module in the guard as soon as its import completes."""

    def __init__(self, guard: Guard):
        self.guard = guard
        self.root = os.path.dirname(guard.course_dir)

    def find_spec(self, fullname, path=None, target=None):
        if fullname != TRUSTED_PACKAGE and not fullname.startswith(TRUSTED_PACKAGE + "."):
            return None
        parts = fullname.split(".")
        search = [os.path.join(self.root, *parts[:-1])]
        spec = importlib.machinery.PathFinder.find_spec(fullname, search)
        if spec is None or not spec.origin or not os.path.realpath(spec.origin).startswith(self.guard.course_dir + os.sep):
            raise ModuleNotFoundError(f"No module named {fullname!r} in the course package", name=fullname)
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RecordingLoader(spec.loader, self.guard)
        return spec


class _RecordingLoader(importlib.abc.Loader):
    def __init__(self, loader, guard: Guard):
        self.loader = loader
        self.guard = guard

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.guard.record_module(module.__name__, module)

    def __getattr__(self, name):  # get_source, get_filename, ... (inspect.getsource needs them)
        return _getattr(self.loader, name)
