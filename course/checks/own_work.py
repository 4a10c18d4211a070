"""Answers are the learner's own work: they may not lean on the course's code.

The course's checks carry reference implementations (``reference_sigmoid``,
``conv2d_reference``, ...). An answer that delegates to one would pass every
test without doing the exercise. Two layers keep that from counting:

- the syntax tree of the answer cells (``leans_on_course``): an import from
  ``course``, a reference's name, or the usual ways of reaching a module's
  functions by computed names (``__import__``/``import_module`` of anything but a
  constant name outside the course, ``sys.modules``, ``__globals__``, frames, ``gc``); the grader applies it to the answer cells'
  text from the notebook (``violations``), a learner's kernel in ``call``;
- at run time, every reference implementation is wrapped (``course_only``): when
  a learner's code calls it while a test cell runs in the grader, the call
  raises instead of answering.

Standard library only: the grader imports this outside the sandbox too.
"""

from __future__ import annotations

import ast
import functools
import os
import re
import sys

# Identifiers that reach the course's code or any module's globals by computed names.
REACHING = {
    "__import__": "`__import__` of a computed name",
    "import_module": "`importlib.import_module` of a computed name",
    "__globals__": "a function's `__globals__`",
    "__builtins__": "`__builtins__`",
    "_getframe": "`sys._getframe`",
    "f_globals": "a frame's globals",
    "f_back": "the calling frame",
    "get_referrers": "`gc.get_referrers`",
    "get_referents": "`gc.get_referents`",
    "get_objects": "`gc.get_objects`",
}
# Reached by name, these run code or reach objects that no text check can follow.
DYNAMIC_NAMES = {"eval": "`eval`", "exec": "`exec`", "compile": "`compile`", "globals": "`globals()`",
                 "vars": "`vars()`", "locals": "`locals()`", "breakpoint": "`breakpoint()`"}
DYNAMIC_ATTRIBUTES = {"__dict__", "__getattribute__", "__code__", "__closure__", "__wrapped__", "__subclasses__"}
# What a module-like object may be asked for by a computed name: nothing.
MODULES = {"sys", "builtins", "importlib", "gc", "inspect", "os", "types", "operator"}
HIDDEN_MODULES = {"builtins", "importlib", "gc", "inspect"}  # no answer needs these by a constant __import__
SYS_ALLOWED = {"version", "version_info", "platform", "executable", "float_info", "maxsize", "byteorder",
               "implementation", "stdout", "stderr", "argv"}
REFERENCE_NAME = re.compile(r"(^|_)reference(_|$)")
_CHECKS_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1)
def reference_names() -> frozenset:
    """The names of the reference implementations in ``course/checks/`` (read from its files)."""
    names = set()
    for file in sorted(os.listdir(_CHECKS_DIR)):
        if file.endswith(".py") and file != "own_work.py":
            with open(os.path.join(_CHECKS_DIR, file), encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                    names.add(node.name)
                elif isinstance(node, ast.Assign):
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    names = {n for n in names if REFERENCE_NAME.search(n)}
    return frozenset(names)


def _problem(node) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name == "course" or alias.name.startswith("course."):
                return f"`import {alias.name}`"
            if alias.name in MODULES and alias.asname and alias.asname != alias.name:
                return f"`import {alias.name} as {alias.asname}`"
    elif isinstance(node, ast.ImportFrom):
        if node.module and (node.module == "course" or node.module.startswith("course.")):
            return f"`from {node.module} import ...`"
    elif isinstance(node, ast.alias) and node.name in reference_names():
        return f"the course's `{node.name}`"
    elif isinstance(node, ast.Name):
        if node.id == "course":
            return "the `course` package"
        if node.id in reference_names() and not isinstance(node.ctx, ast.Store):
            return f"the course's `{node.id}`"
        if node.id in REACHING:
            return REACHING[node.id]
        if node.id in DYNAMIC_NAMES and isinstance(node.ctx, ast.Load):
            return DYNAMIC_NAMES[node.id]
    elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
            and node.args[0].value in HIDDEN_MODULES and (
                (isinstance(node.func, ast.Name) and node.func.id in ("__import__", "import_module"))
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")):
        return f"`__import__({node.args[0].value!r})`"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr") \
            and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id in MODULES \
            and not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return f"`{node.func.id}({node.args[0].id}, ...)` with a computed name"
    elif isinstance(node, ast.Attribute):
        if node.attr in REACHING:
            return REACHING[node.attr]
        if node.attr in DYNAMIC_ATTRIBUTES:
            return f"`{node.attr}`"
        if node.attr not in SYS_ALLOWED and (
                (isinstance(node.value, ast.Name) and node.value.id == "sys")
                or (isinstance(node.value, ast.Call) and node.value.args
                    and isinstance(node.value.args[0], ast.Constant) and node.value.args[0].value == "sys")):
            return f"`sys.{node.attr}`"
        if node.attr in reference_names():
            return f"the course's `{node.attr}`"
        if node.attr == "modules" and isinstance(node.value, ast.Name) and node.value.id == "sys":
            return "`sys.modules`"
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        if re.search(r"\bcourse\b", node.value) and ("." in node.value or node.value == "course"):
            return f"the string {node.value[:40]!r}"
    return None


def _parse(code: str) -> ast.AST | None:
    try:
        return ast.parse(code)
    except (SyntaxError, ValueError):
        return None  # the cell fails on its own


def _plain_imports(tree: ast.AST) -> set[int]:
    """The ``__import__``/``import_module`` names of calls that import a module named by a
    constant outside the course (``__import__("sys")`` is fine; a computed name is not)."""
    plain = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str) and not node.args[0].value.startswith("course"):
            func = node.func
            if (isinstance(func, ast.Name) and func.id in ("__import__", "import_module")) or \
                    (isinstance(func, ast.Attribute) and func.attr == "import_module"):
                plain.add(id(func))
    return plain


def _problems(tree: ast.AST) -> list[tuple[int, str]]:
    plain = _plain_imports(tree)
    found = {(getattr(node, "lineno", 0), what) for node in ast.walk(tree)
             if id(node) not in plain and (what := _problem(node))}
    return sorted(found)


def leans_on_course(code: str) -> list[tuple[int, str]]:
    """(line, what) for every place in ``code`` that reaches the course's own code."""
    tree = _parse(code)
    return _problems(tree) if tree is not None else []


def bound_names(tree: ast.AST) -> set[str]:
    """Every name ``tree`` binds anywhere: definitions, assignments, imports, parameters."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def violations(cells: list[dict]) -> dict[str, str]:
    """Answer cell name → why it is not the learner's own work, for a notebook's code cells
    (dicts with ``source``, ``kind`` and ``name``, as the grader runs them).

    A cell the learner added (kind ``code``) that reaches the course taints the names it
    binds; an answer cell that uses a tainted name leans on the course too.

    Call it from one thread only: Python 3.11 converts syntax trees with interpreter-wide
    state, and two threads parsing at once fail ("AST constructor recursion depth mismatch")."""
    tainted: dict[str, tuple[int, str]] = {}
    answers = []
    for cell in cells:
        kind = cell.get("kind")
        if kind not in ("code", "answer"):
            continue
        tree = _parse(cell.get("source", ""))
        if tree is None:
            continue
        found = _problems(tree)
        if kind == "code" and found:
            for name in bound_names(tree):
                tainted.setdefault(name, found[0])
        elif kind == "answer" and cell.get("name"):
            answers.append((cell["name"], tree, found))
    out = {}
    for name, tree, found in answers:
        if found:
            line, what = found[0]
            out[name] = f"answer cell `{name}` uses {what} (line {line})"
            continue
        loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        used = sorted((loaded - bound_names(tree)) & set(tainted))  # the cell's own variables are its own
        if used:
            out[name] = (f"answer cell `{name}` uses `{used[0]}`, which another cell "
                         f"took from the course ({tainted[used[0]][1]})")
    return out


MESSAGE = "{why}: the exercise asks for your own code; the course's implementations are for checking it"


def check_own_work(fn, what: str | None = None) -> None:
    """In a learner's kernel: fail if ``fn``'s code (or a notebook helper it uses) reaches the course."""
    from course.checks.forbid import _reachable

    try:
        reachable = _reachable(fn)
    except Exception:  # source unreadable (a builtin, a lambda in a container): nothing to read
        return
    for tree in reachable.values():
        found = _problems(tree)
        if found:
            name = what or getattr(fn, "__qualname__", "your code")
            raise AssertionError(MESSAGE.format(why=f"{name} uses {found[0][1]} (line {found[0][0]})"))


# -- run time --------------------------------------------------------------------------

_COURSE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_LIBRARY_DIRS = tuple({os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
_getframe = sys._getframe


def _kind(filename: str) -> str:
    if filename.startswith("<test cell"):
        return "test"
    if filename.startswith(_COURSE_DIR + os.sep):
        return "course"
    if filename.startswith(_LIBRARY_DIRS) or filename.startswith("<frozen"):
        return "library"
    return "learner"


_LEARNER_PROCESS = []  # non-empty in the learner's process while a notebook is graded apart from its tests


def refuse_learner_calls() -> None:
    """From now on, in this process, references refuse every call that comes from learner code
    (the learner's process of a notebook whose tests run in the tester: they never need one)."""
    _LEARNER_PROCESS.append(True)


def _called_by_learner_in_a_test() -> bool:
    """Whether the nearest non-library caller is a learner's cell while the grader runs a
    test cell (a ``<test cell ...>`` frame further up). In a learner's own kernel test
    cells are ordinary cells, so nothing is refused there."""
    frame = _getframe(2)
    first = None
    while frame is not None:
        kind = _kind(frame.f_code.co_filename)
        if first is None and kind != "library":
            first = kind
            if first != "learner":
                return False
            if _LEARNER_PROCESS:
                return True
        if kind == "test":
            return first == "learner"
        frame = frame.f_back
    return False


def course_only(fn):
    """Wrap a reference implementation: it answers the course's checks, never a learner's
    code called by a test (there it raises ``AssertionError``)."""

    @functools.wraps(fn)
    def reference(*args, **kwargs):
        if _called_by_learner_in_a_test():
            raise AssertionError(MESSAGE.format(why=f"your code calls the course's `{fn.__name__}`"))
        return fn(*args, **kwargs)

    return reference


def wrap_references(namespace: dict) -> None:
    """Wrap every reference implementation a checks module defines (its last line calls this)."""
    for name, value in list(namespace.items()):
        if REFERENCE_NAME.search(name) and callable(value) and not isinstance(value, type):
            namespace[name] = course_only(value)
