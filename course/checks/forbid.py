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

from course.checks.own_work import DYNAMIC_ATTRIBUTES, DYNAMIC_NAMES, _plain_imports

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


class _Code:
    """One function or class of the learner's, as a syntax tree."""

    def __init__(self, label: str, name: str, tree: ast.AST, own, fn=None):
        self.label, self.name, self.tree, self.own, self.fn = label, name, tree, own, fn


def _code_of(obj, what: str) -> list[_Code]:
    """The code ``obj`` runs: its own and the notebook's functions and classes it names.
    A handle to the learner's process is read from the notebook's text."""
    from course.runner.tester import is_remote

    if is_remote(obj):
        return _code_in_text(obj, what)
    return [_Code(fn.__qualname__, fn.__name__, tree, lambda name, fn=fn: _own(fn, name), fn)
            for fn, tree in _reachable(obj).items()]


def _cell_tree(source: str) -> ast.Module | None:
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        source = TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - read the text as it is
        pass
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _code_in_text(obj, what: str) -> list[_Code]:
    """What the name a test cell read ``obj`` by is bound to in the notebook's cells (the last
    binding at the top level of a cell), and what that code names in turn."""
    bound: dict[str, ast.AST] = {}
    for source in obj._learner.sources:
        tree = _cell_tree(source)
        for statement in tree.body if tree is not None else ():
            for name in _top_level_names(statement):
                bound[name] = statement
    origin = obj._origin or obj.__name__
    if origin not in bound:
        raise AssertionError(f"cannot find where `{origin}` is defined in your cells: define it in its answer "
                             f"cell with `def {origin}(...)` (or `class {origin}`)")
    definitions = {n for n, s in bound.items() if _isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    # every top-level binding the code names is read too: `mp = F.max_pool2d` is seen where `mp` is used
    found, todo = {}, [origin]
    while todo:
        name = todo.pop()
        if name in found or name not in bound:
            continue
        found[name] = bound[name]
        todo += [n for n in _free_names(bound[name]) if n in bound]
    return [_Code(name, name, tree, lambda other: other in definitions) for name, tree in found.items()]


def _free_names(statement) -> set[str]:
    """The names a top-level statement reads from the notebook's globals: what it loads, less
    what a function or class binds itself (parameters, assignments, loop targets, imports)."""
    loads, local, declared = set(), set(), set()
    for node in ast.walk(statement):
        if _isinstance(node, ast.Name):
            (loads if _isinstance(node.ctx, ast.Load) else local).add(node.id)
        elif _isinstance(node, ast.arg):
            local.add(node.arg)
        elif _isinstance(node, (ast.Import, ast.ImportFrom)) and node is not statement:
            local |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif _isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not statement:
            local.add(node.name)
        elif _isinstance(node, ast.Global):
            declared |= set(node.names)
    if not _isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return loads  # a top-level assignment's names are the notebook's own
    return (loads - local) | (loads & declared)


def _top_level_names(statement) -> list[str]:
    if _isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [statement.name]
    if _isinstance(statement, (ast.Import, ast.ImportFrom)):
        return [(a.asname or a.name).split(".")[0] for a in statement.names]
    targets = []
    if _isinstance(statement, ast.Assign):
        targets = statement.targets
    elif _isinstance(statement, (ast.AnnAssign, ast.AugAssign)):
        targets = [statement.target]
    names = []
    for target in targets:
        names += [n.id for n in ast.walk(target) if _isinstance(n, ast.Name)]
    return names


# Ways to reach a function without naming it: a rule that forbids calls cannot see through them.
# The own-work rules' dynamic names, and every way of importing or fetching by a computed name.
COMPUTED_NAMES = set(DYNAMIC_NAMES) | {"__import__", "importlib", "import_module", "attrgetter", "methodcaller",
                                      "__builtins__", "builtins"}
COMPUTED_ATTRIBUTES = DYNAMIC_ATTRIBUTES | {"__globals__", "__builtins__", "import_module", "attrgetter", "methodcaller"}


def _computed_name(tree: ast.AST) -> tuple[str, int] | None:
    plain = _plain_imports(tree)  # `__import__("torch")`: a constant module name, read as usual from there on
    plain |= {id(n.value) for n in ast.walk(tree) if _isinstance(n, ast.Attribute) and id(n) in plain}
    for node in ast.walk(tree):
        if _isinstance(node, ast.Call) and _isinstance(node.func, ast.Name) and node.func.id in ("getattr", "setattr",
                                                                                                   "hasattr", "delattr"):
            if len(node.args) >= 2 and not (_isinstance(node.args[1], ast.Constant) and _isinstance(node.args[1].value, str)):
                return f"{node.func.id}(...) with a computed name", node.lineno
        if id(node) in plain:
            continue
        name = None
        if _isinstance(node, ast.Name) and node.id in COMPUTED_NAMES:
            name = node.id
        elif _isinstance(node, ast.Attribute) and node.attr in COMPUTED_ATTRIBUTES:
            name = node.attr
        elif _isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] + ([node.module] if _isinstance(node, ast.ImportFrom) and node.module else [])
            name = next((m for m in modules if m.split(".")[0] in ("importlib", "builtins", "operator")), None)
        if name is not None:
            return f"`{name}`", node.lineno
    return None


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
    for code in _code_of(obj, what):
        where = "" if code.name == getattr(obj, "__name__", None) else f" (in {code.label})"
        for name, line, node in _names_and_nodes(code.tree):
            if name not in banned or (allow_own and _isinstance(node, ast.Name) and code.own(name)):
                continue
            raise AssertionError(
                f"{what} must not use `{name}`{where}, line {line} of its source: write it with basic tensor operations"
            )
        for symbol, op in _OPERATORS.items():
            if symbol in banned and any(_isinstance(n, op) for n in ast.walk(code.tree)):
                raise AssertionError(f"{what} must not use the `{symbol}` operator{where}")
        computed = _computed_name(code.tree)
        if computed:
            raise AssertionError(f"{what} must not reach functions by computed names: it uses {computed[0]}{where}, "
                                 f"line {computed[1]}; call what you need by its name")


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
    for code in _code_of(obj, what):
        for node in ast.walk(code.tree):
            kind = loops.get(type(node))
            if kind:
                raise AssertionError(f"{what} must not loop: it uses {kind} (line {node.lineno}); use tensor operations")
            if (
                _isinstance(node, ast.Call)
                and _isinstance(node.func, ast.Name)
                and node.func.id == code.name
            ):
                raise AssertionError(f"{what} must not loop: {code.name} calls itself (line {node.lineno})")
        for name, _ in _names_used(code.tree):
            if name in ("map", "reduce", "accumulate", "apply_", "vmap"):
                raise AssertionError(f"{what} must not loop: it uses `{name}`; use tensor operations")
