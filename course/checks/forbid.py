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
_isinstance = isinstance

_OPERATORS = {"@": ast.MatMult}


def _functions_of(obj):
    """The plain functions that make up ``obj`` (a function, method or class)."""
    if _isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
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


def _names_used(tree: ast.AST):
    """(name, line) for every name, attribute, import and getattr string in ``tree``."""
    for node in ast.walk(tree):
        if _isinstance(node, ast.Name):
            yield node.id, node.lineno
        elif _isinstance(node, ast.Attribute):
            yield node.attr, node.lineno
        elif _isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield alias.name.split(".")[-1], node.lineno
                if _isinstance(node, ast.ImportFrom) and node.module:
                    yield node.module.split(".")[-1], node.lineno
        elif _isinstance(node, ast.Constant) and _isinstance(node.value, str) and node.value.isidentifier():
            yield node.value, node.lineno  # getattr(torch, "cdist")


def _reachable(obj):
    """``obj``'s functions plus the notebook-defined functions and classes they name."""
    todo = list(_functions_of(obj))
    seen = {}
    while todo:
        fn = todo.pop()
        if fn in seen or fn.__module__ not in ("__main__", getattr(obj, "__module__", "__main__")):
            continue
        tree = _source_tree(fn)
        seen[fn] = tree
        for name, _ in _names_used(tree):
            target = fn.__globals__.get(name)
            if _isinstance(target, (types.FunctionType, type)) and getattr(target, "__module__", None) == fn.__module__:
                todo += _functions_of(target)
    return seen


def forbid_calls(obj, names, what: str | None = None) -> None:
    """Fail if ``obj``'s code (or a notebook helper it uses) names any of ``names``.

    ``names`` are bare names (``"cdist"`` matches ``torch.cdist``, ``x.cdist``,
    ``from torch import cdist``); ``"@"`` forbids the matrix-multiply operator.
    """
    what = what or getattr(obj, "__qualname__", repr(obj))
    banned = set(names)
    for fn, tree in _reachable(obj).items():
        where = "" if fn is obj else f" (in {fn.__qualname__})"
        for name, line in _names_used(tree):
            if name in banned:
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
