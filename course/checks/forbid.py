"""Forbidden calls, checked on the syntax tree of the learner's code.

``inspect.getsource`` works for functions and methods defined in a notebook
but not for classes (IPython raises ``OSError``), so a class is checked method
by method. Helper functions the learner's code calls that are defined in the
same notebook are checked too: moving a forbidden call into a helper does not
hide it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types

_getsource = inspect.getsource
_unwrap = inspect.unwrap
_isinstance = isinstance

_OPERATORS = {"@": ast.MatMult}

# Detours through Python or NumPy data: a tensor puzzle solved on lists or arrays is not solved.
# (NumPy's own functions go with the names `np`/`numpy`; `torch.Tensor` stays allowed in type hints.)
TENSOR_ONLY = ["tolist", "item", "numpy", "np", "from_numpy", "tensor", "as_tensor"]


def _functions_of(obj):
    """The plain functions that make up ``obj`` (a function, method or class)."""
    if _isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if hasattr(obj, "__wrapped__") and not _isinstance(obj, type):  # @functools.lru_cache, @torch.no_grad()
        obj = _unwrap(obj)
    if _isinstance(obj, property):
        return [f for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
    if _isinstance(obj, types.MethodType):
        return [obj.__func__]
    if _isinstance(obj, types.FunctionType):
        return [obj]
    if _isinstance(obj, type):
        found = []
        for klass in obj.__mro__:
            if klass.__module__ in ("builtins", "torch", "torch.nn.modules.module") or klass.__module__.startswith(
                ("torch.", "typing", "abc")
            ):
                continue
            for member in vars(klass).values():
                found += _functions_of(member)
        return found
    return []


def _source_tree(fn) -> ast.AST:
    try:
        source = textwrap.dedent(_getsource(fn))
    except (OSError, TypeError) as error:
        raise AssertionError(f"cannot read the source of {fn.__qualname__}: {error}") from None
    return ast.parse(source)


def _names_and_nodes(tree: ast.AST):
    """(name, line, node) for every name, attribute, import and getattr string in ``tree``."""
    for node in ast.walk(tree):
        if _isinstance(node, ast.Name):
            yield node.id, node.lineno, node
        elif _isinstance(node, ast.Attribute):
            yield node.attr, node.lineno, node
        elif _isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield alias.name.split(".")[-1], node.lineno, node
                if _isinstance(node, ast.ImportFrom) and node.module:
                    yield node.module.split(".")[-1], node.lineno, node
        elif _isinstance(node, ast.Constant) and _isinstance(node.value, str) and node.value.isidentifier():
            yield node.value, node.lineno, node  # getattr(torch, "cdist")


def _names_used(tree: ast.AST):
    """(name, line) for every name, attribute, import and getattr string in ``tree``."""
    for name, line, _ in _names_and_nodes(tree):
        yield name, line


def _reachable(obj):
    """``obj``'s functions plus the notebook-defined functions and classes they name."""
    todo = list(_functions_of(obj))
    seen = {}
    while todo:
        fn = _unwrap(todo.pop())  # a decorated function's helpers live in its own globals
        if fn in seen or fn.__module__ not in ("__main__", getattr(obj, "__module__", "__main__")):
            continue
        tree = _source_tree(fn)
        seen[fn] = tree
        for name, _ in _names_used(tree):
            target = fn.__globals__.get(name)
            if _isinstance(target, (types.FunctionType, type)) and getattr(target, "__module__", None) == fn.__module__:
                todo += _functions_of(target)
    return seen


def _own(fn, name: str) -> bool:
    """Whether ``name`` in ``fn``'s code refers to a function or class the learner defined."""
    target = fn.__globals__.get(name)
    return _isinstance(target, (types.FunctionType, type)) and getattr(target, "__module__", None) == fn.__module__


def forbid_calls(obj, names, what: str | None = None, *, allow_own: bool = False) -> None:
    """Fail if ``obj``'s code (or a notebook helper it uses) names any of ``names``.

    ``names`` are bare names (``"cdist"`` matches ``torch.cdist``, ``x.cdist``,
    ``from torch import cdist``); ``"@"`` forbids the matrix-multiply operator.
    With ``allow_own``, a bare name that refers to a function or class the learner
    defined in the notebook is allowed (``softmax`` may call *your* ``log_softmax``,
    ``SGD`` may name itself in ``super(SGD, self)``); attributes (``F.softmax``),
    imports and ``getattr`` strings of a forbidden name still fail.
    """
    what = what or getattr(obj, "__qualname__", repr(obj))
    banned = set(names)
    for fn, tree in _reachable(obj).items():
        where = "" if fn is obj else f" (in {fn.__qualname__})"
        for name, line, node in _names_and_nodes(tree):
            if name not in banned or (allow_own and _isinstance(node, ast.Name) and _own(fn, name)):
                continue
            raise AssertionError(
                f"{what} must not use `{name}`{where}, line {line} of its source: write it with basic tensor operations"
            )
        for symbol, op in _OPERATORS.items():
            if symbol in banned and any(_isinstance(n, op) for n in ast.walk(tree)):
                raise AssertionError(f"{what} must not use the `{symbol}` operator{where}")


def forbid_loops(obj, what: str | None = None) -> None:
    """Fail if ``obj``'s code (or a notebook helper it uses) loops: ``for``, ``while``,
    comprehensions, or recursion."""
    what = what or getattr(obj, "__qualname__", repr(obj))
    loops = {
        ast.For: "a for loop",
        ast.AsyncFor: "a for loop",
        ast.While: "a while loop",
        ast.ListComp: "a list comprehension",
        ast.SetComp: "a set comprehension",
        ast.DictComp: "a dict comprehension",
        ast.GeneratorExp: "a generator expression",
    }
    for fn, tree in _reachable(obj).items():
        for node in ast.walk(tree):
            kind = loops.get(type(node))
            if kind:
                raise AssertionError(f"{what} must not loop: it uses {kind} (line {node.lineno}); use tensor operations")
            if (
                _isinstance(node, ast.Call)
                and _isinstance(node.func, ast.Name)
                and node.func.id == fn.__name__
            ):
                raise AssertionError(f"{what} must not loop: {fn.__name__} calls itself (line {node.lineno})")
        for name, _ in _names_used(tree):
            if name in ("map", "reduce", "accumulate", "apply_", "vmap"):
                raise AssertionError(f"{what} must not loop: it uses `{name}`; use tensor operations")
