"""Checks and pictures for the autograd exercises (02_autograd).

The torch references every check compares with are captured when this module
is imported (by the notebook's first, locked cell), before any learner code runs.
"""

from __future__ import annotations

import math
import operator

import torch
import torch.autograd.functional
from hypothesis import assume
from hypothesis import strategies as st

import course.checks.strategies  # noqa: F401 (warms hypothesis up)
from course.checks.compare import call, call_probe, check, compare_close, describe, fail

_isinstance = isinstance
_grad = torch.autograd.grad
_gradcheck = torch.autograd.gradcheck
_jacobian = torch.autograd.functional.jacobian
_hvp = torch.autograd.functional.hvp
_sigmoid = torch.sigmoid
_tanh = torch.tanh
_round = torch.round
_equal = torch.equal
_is_grad_enabled = torch.is_grad_enabled
_Tensor = torch.Tensor
_index = operator.index


reference_sigmoid = _sigmoid


def straight_through_reference(x):
    """The straight-through reference: ``round(x)`` in value, ``x`` in gradient."""
    return x + (_round(x) - x).detach()


class Fn:
    """A named function of a tensor, so failure messages can say which one."""

    def __init__(self, text: str, f):
        self.text, self.f = text, f
        self.__name__ = text
        self.inputs: list = []  # what each call received: (is a leaf, requires grad)

    def __call__(self, *args):
        first = args[0] if args else None
        self.inputs.append((_isinstance(first, _Tensor) and first.is_leaf, _isinstance(first, _Tensor) and first.requires_grad))
        return self.f(*args)

    def fresh(self) -> "Fn":
        return Fn(self.text, self.f)

    def __repr__(self):
        return self.text


# --------------------------------------------------------------------- derivative
def check_derivative(fn, f: Fn, x0) -> None:
    what = f"derivative({f!r}, {x0!r})"
    x = torch.tensor(float(x0), dtype=torch.float64, requires_grad=True)
    (expected,) = _grad(f(x), x)
    expected = expected.item()
    result = call(fn, f, x0)
    check(_isinstance(result, float) and not _isinstance(result, bool),
          f"{what} returned {describe(result)} ({type(result).__name__}); expected a Python float (use .item())")
    compare_close(result, expected, what)


def check_derivative_uses_autograd(fn, x0=1.5) -> None:
    """``derivative`` calls ``f`` on a 0-d float64 tensor that requires grad (autograd, not
    finite differences); ``f`` records its inputs where ``derivative`` runs."""
    seen = call_probe("spied", fn, x0)
    check(any(tuple(s) == ("torch.float64", True, 0) for s in seen or []),
          f"derivative(f, {x0}) called f with {seen} (dtype, requires_grad, ndim); expected a 0-d float64 tensor "
          "that requires grad (use autograd, not finite differences)")


# --------------------------------------------------------------- elementwise_grad
def _grad_state(x):
    return None if x.grad is None else x.grad.clone()


def check_elementwise_grad(fn, f: Fn, x, preset_grad: bool = False) -> None:
    """``elementwise_grad(f, x)`` equals d f(x).sum() / dx and leaves ``x.grad`` as it was."""
    what = f"elementwise_grad({f!r}, {describe(x, 4)})"
    leaf = x.detach().clone().requires_grad_(True)
    (expected,) = _grad(f(leaf).sum(), leaf)
    if preset_grad:
        x.grad = torch.full_like(x, 7.0)
        what += " with x.grad already set"
    before = _grad_state(x)
    # where fn runs, x.grad starts as it is here; what it is after the call comes back
    result, after = call_probe("elementwise", fn, f, x, before)
    compare_close(result, expected.detach(), what)
    if before is None:
        check(after is None, f"{what} changed x.grad from None to {describe(after)}: use torch.autograd.grad, "
                             "or differentiate a detached copy of x")
    else:
        check(after is not None and _equal(after, before),
              f"{what} changed x.grad: it was {describe(before)}, now {describe(after)}")


# ----------------------------------------------------------------------- jacobian
def _one_call_on_a_leaf(f: Fn, what: str, how: str) -> None:
    """The lesson's point: one forward through ``f``, on a leaf that requires grad, and autograd
    does the rest (finite differences and one forward per row call ``f`` many times)."""
    calls = len(f.inputs)
    check(calls == 1, f"{what} called f {calls} times; call it once, on x made a leaf that requires grad, "
                      f"and get every derivative from that one graph with {how}")
    leaf, requires_grad = f.inputs[0]
    check(leaf and requires_grad, f"{what} called f on a tensor that is {'not a leaf' if not leaf else 'not requiring grad'}; "
                                  "call f on `x.detach().requires_grad_(True)` and differentiate with respect to it")


JACOBIAN_BANS = ["functional", "func", "jacrev", "jacfwd", "hessian", "vjp", "jvp", "vmap", "vhp", "hvp",
                 "linearize", "grad_and_value"]


def check_jacobian(fn, f: Fn, x) -> None:
    f = f.fresh()
    what = f"jacobian({f!r}, {describe(x, 4)})"
    expected = _jacobian(f.f, x.detach())
    if expected.ndim != 2:
        expected = expected.reshape(-1, x.numel())
    result, f.inputs = call_probe("counted", fn, f, x)  # f's calls are counted where fn runs
    compare_close(result, expected, what)
    _one_call_on_a_leaf(f, what, "`torch.autograd.grad(y[i], x, retain_graph=True)`")


def check_hvp(fn, f: Fn, x, v) -> None:
    f = f.fresh()
    what = f"hvp({f!r}, {describe(x, 4)}, {describe(v, 4)})"
    _, expected = _hvp(f.f, x.detach(), v)
    result, f.inputs = call_probe("counted", fn, f, x, v)
    compare_close(result, expected, what)
    _one_call_on_a_leaf(f, what, "`grad(f(x), x, create_graph=True)` and a second `grad`")


# ------------------------------------------------------------ autograd.Function

def check_function_against(cls, reference, x, grad_out=None) -> None:
    """``cls.apply(x)`` equals ``reference(x)``, and its backward (with ``grad_out``)
    equals the reference's backward."""
    name = cls.__name__
    what = f"{name}.apply({describe(x, 4)})"
    ref_leaf = x.detach().clone().requires_grad_(True)
    ref_out = reference(ref_leaf)
    if grad_out is None:
        gen = torch.Generator().manual_seed(x.numel())
        grad_out = torch.randn(ref_out.shape, generator=gen, dtype=torch.float64).to(ref_out.dtype)
    g = grad_out
    # the Function runs, and differentiates, where the learner's class is
    seen = call_probe("function_apply", cls, x, g)
    check(seen.get("apply") is True, f"{name} has no .apply: subclass torch.autograd.Function")
    out = seen.get("out")
    compare_close(out, ref_out.detach(), what)
    check(seen.get("connected") is True,
          f"{what}: the output has no grad_fn; return a tensor computed in forward, not a detached constant")
    (expected,) = _grad(ref_out, ref_leaf, g)
    if "grad_error" in seen:
        fail(f"backward of {what} with grad_output {describe(g, 4)} raised {seen['grad_error']}")
    compare_close(seen.get("grad"), expected, f"the gradient of {what} for grad_output {describe(g, 4)}")


def check_gradcheck(cls, x) -> None:
    what = f"torch.autograd.gradcheck({cls.__name__}.apply, {describe(x, 4)})"
    eps = 1e-6
    # what gradcheck compares, computed where the class is: the Jacobian backward gives, and the
    # forward around x; the comparison (central differences, atol 1e-5) is made here
    seen = call_probe("function_jacobians", cls, x.detach().to(torch.float64), eps)
    check(seen.get("connected") is True, f"{what} failed: the output does not require grad")
    analytical = seen.get("analytical")
    plus, minus = seen.get("plus") or [], seen.get("minus") or []
    check(_isinstance(analytical, _Tensor) and len(plus) == len(minus) == x.numel(),
          f"{what} failed: the Function did not give a Jacobian")
    numerical = torch.stack([(p - m) / (2 * eps) for p, m in zip(plus, minus)], dim=1) if plus else analytical
    check(analytical.shape == numerical.shape, f"{what} failed: Jacobian shapes {list(analytical.shape)} "
                                               f"(backward) and {list(numerical.shape)} (numerical) differ")
    bad = (analytical - numerical).abs() > 1e-5 + 1e-3 * numerical.abs()
    if bool(bad.any()):
        fail(f"{what} failed: Jacobian mismatch for output 0 with respect to input 0, "
             f"numerical: {describe(numerical)}, analytical: {describe(analytical)}")


def check_ste_chain(cls, w) -> None:
    """d/dw of ``sum(cls.apply(3w)²)`` is ``2·round(3w)·3``: the Function inside a longer graph."""
    got = call_probe("ste_chain", cls, w)  # the graph is built and run where the class is
    expected = 2 * torch.round(w.detach() * 3) * 3
    check(_isinstance(got, _Tensor) and got.shape == expected.shape and bool(torch.allclose(got, expected)),
          f"d/dw of sum(RoundSTE(3w)²) at w = {describe(w)} is {describe(got)}, expected {describe(expected)} (2·round(3w)·3)")


def check_saves_output(cls, x) -> None:
    """The forward saved its output (in ``ctx.save_for_backward`` or as a ctx attribute)."""
    out, saved = call_probe("saved_output", cls, x)  # the backward node lives where the class is
    check(_isinstance(out, _Tensor), f"{cls.__name__}.apply({describe(x, 4)}) returned {describe(out)}")
    same = [s for s in saved if s.shape == out.shape and s.dtype == out.dtype and _equal(s.detach(), out.detach())]
    check(same, f"{cls.__name__}.apply({describe(x, 4)}): forward must save its output sigmoid(x) for backward "
                f"(ctx.save_for_backward(out)); it saved {describe(saved) if saved else 'nothing'}")


# ------------------------------------------------------------------------ Value
# Expressions are written once, as code, and run twice: with the learner's Value
# and with float64 torch tensors (which support the same operators and methods).
_POWERS = {"pow": (2, 3), "powf": (0.5, -1.0, 1.5, -0.5, 2.5)}
OPS = ("add", "radd", "addc", "sub", "rsub", "subc", "mul", "rmul", "mulc", "div", "rdiv", "divc",
       "pow", "powf", "neg", "relu", "tanh", "exp", "square_self", "double_self")
_CONSTANTS = (-2.0, -0.5, 0.5, 1.5, 3.0, 2, -1)


def op_text(kind, a: str, b: str, c, k: int) -> str:
    power = _POWERS.get(kind, (0,))[k % len(_POWERS.get(kind, (0,)))]
    return {
        "add": f"{a} + {b}", "radd": f"{c} + {a}", "addc": f"{a} + {c}", "sub": f"{a} - {b}",
        "rsub": f"{c} - {a}", "subc": f"{a} - {c}", "mul": f"{a} * {b}", "rmul": f"{c} * {a}",
        "mulc": f"{a} * {c}", "div": f"{a} / ({b} * {b} + 1.0)", "rdiv": f"{c} / ({a} * {a} + 1.0)",
        "divc": f"{a} / {c}", "pow": f"{a} ** {power}", "powf": f"({a} * {a} + 0.5) ** {power}",
        "neg": f"-{a}", "relu": f"{a}.relu()", "tanh": f"{a}.tanh()", "exp": f"{a}.exp()",
        "square_self": f"{a} * {a}", "double_self": f"{a} + {a}",
    }[kind]


def _torch_leaf(v):
    return torch.tensor(float(v), dtype=torch.float64, requires_grad=True)


def _run(code: str, make):
    namespace = {"Value": make}
    exec(code, namespace)  # noqa: S102 (course-authored expressions)
    namespace.pop("Value")
    namespace.pop("__builtins__", None)
    return namespace


@st.composite
def value_programs(draw, max_leaves: int = 3, max_ops: int = 12):
    """Random expressions as code; nodes are reused (several lines read the same node)."""
    n_leaves = draw(st.integers(1, max_leaves))
    lines = []
    for i in range(n_leaves):
        v = draw(st.sampled_from([-1.75, -1.2, -0.8, -0.3, 0.25, 0.6, 0.9, 1.3, 2.0])) + draw(st.integers(0, 50)) / 997
        lines.append(f"n{i} = Value({v!r})")
    relu_inputs = []
    for _ in range(draw(st.integers(1, max_ops))):
        n = len(lines)
        # prefer the latest node (deep graphs) but reach back too (shared nodes)
        a = draw(st.one_of(st.just(n - 1), st.integers(0, n - 1)))
        b = draw(st.integers(0, n - 1))
        kind = draw(st.sampled_from(OPS))
        if kind == "relu":
            relu_inputs.append(f"n{a}")
        lines.append(f"n{n} = " + op_text(kind, f"n{a}", f"n{b}", draw(st.sampled_from(_CONSTANTS)),
                                          draw(st.integers(0, 4))))
    code = "\n".join(lines)
    try:
        nodes = _run(code, _torch_leaf)
    except (ZeroDivisionError, OverflowError, ValueError):
        assume(False)
    values = [t.item() for t in nodes.values()]
    assume(all(math.isfinite(v) and abs(v) < 1e6 for v in values))
    assume(all(abs(nodes[name].item()) > 1e-6 for name in relu_inputs))  # relu's kink
    for t in nodes.values():
        if not t.is_leaf:
            t.retain_grad()
    nodes[f"n{len(lines) - 1}"].backward()
    grads = [t.grad.item() for t in nodes.values() if t.grad is not None]
    assume(all(math.isfinite(g) and abs(g) < 1e8 for g in grads))
    return code


def _output_name(code: str) -> str:
    import ast

    for node in reversed(ast.parse(code).body):
        if _isinstance(node, (ast.Assign, ast.AugAssign)):
            target = node.targets[0] if _isinstance(node, ast.Assign) else node.target
            if _isinstance(target, ast.Name):
                return target.id
    raise ValueError("no assignment in the expression")


def _number(x):
    return _isinstance(x, (int, float)) and not _isinstance(x, bool)


def check_value_code(Value, code: str) -> None:
    """Run ``code`` (assignments building an expression from ``Value(...)`` leaves) with
    the learner's ``Value`` and with torch; call ``backward()`` on the last assigned
    name; every named node's ``data`` and ``grad`` must equal torch's."""
    code = "\n".join(line for line in code.strip().splitlines())
    output = _output_name(code)
    shown = "; ".join(ln.split("#")[0].strip() for ln in code.splitlines() if ln.split("#")[0].strip())
    shown = f"`{shown}; {output}.backward()`"
    expected = _run(code, _torch_leaf)
    for t in expected.values():
        if not t.is_leaf:
            t.retain_grad()
    expected[output].backward()

    seen = call_probe("value_code", Value, code, output)  # the learner's Value runs where it is defined
    error = seen.get("error")
    if error == "type":
        fail(f"running {shown}: {output} is a {seen.get('output')}, expected a Value")
    if error == "stub":
        if seen.get("message"):
            fail(f"running {shown} raised NotImplementedError: {seen['message']}")
        fail(f"running {shown}: {seen.get('method')} still raises NotImplementedError; write it")
    if error is not None:
        fail(f"running {shown} raised {seen.get('message')}")
    mine = seen.get("nodes") or {}
    for name, ref in expected.items():
        is_value, data, _ = mine.get(name, (False, "nothing", None))
        check(is_value is True, f"in {shown}: {name} is a {data}, expected a Value")
        check(_number(data), f"in {shown}: {name}.data is {describe(data)}; expected a Python float")
        compare_close(float(data), ref.item(), f"in {shown}: {name}.data", rtol=1e-6, atol=1e-9)
    for name, ref in expected.items():
        grad = mine[name][2]
        want = 0.0 if ref.grad is None else ref.grad.item()
        check(_number(grad), f"in {shown}: {name}.grad is {describe(grad)}; expected a Python float")
        compare_close(float(grad), want, f"in {shown}: the gradient {name}.grad (torch says {want:.6g})",
                      rtol=1e-6, atol=1e-9)


def _raising_method(error: BaseException, Value) -> str:
    """``Value.exp`` when ``error`` came out of the stub of Value's ``exp`` (its last frame in Value's code)."""
    own = {f.__code__: name for klass in Value.__mro__ if klass is not object
           for name, f in vars(klass).items() if hasattr(f, "__code__")}
    tb, found = error.__traceback__, None
    while tb is not None:
        found = own.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return f"Value.{found}" if found else "an operation of Value"


def compare_with_torch(Value, code: str):
    """Rows (name, Value's data, Value's grad, torch's data, torch's grad) for a side-by-side table."""
    output = _output_name(code)
    expected = _run(code, _torch_leaf)
    for t in expected.values():
        if not t.is_leaf:
            t.retain_grad()
    expected[output].backward()
    mine = _run(code, Value)
    mine[output].backward()
    return [(name, mine[name].data, mine[name].grad, ref.item(), 0.0 if ref.grad is None else ref.grad.item())
            for name, ref in expected.items()]


# -------------------------------------------------------------- dynamic_iterate
def reference_dynamic_iterate(x, w, tol=1e-3, max_steps=50):
    y, steps = x, 0
    while True:
        y_new = _tanh(w * y)
        steps += 1
        done = (y_new - y).abs().max() < tol
        y = y_new
        if done or steps >= max_steps:
            return y, steps


def check_dynamic_iterate(fn, x, w, **kwargs) -> None:
    w_is_tensor = _isinstance(w, _Tensor)
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"dynamic_iterate({describe(x, 4)}, {describe(w, 3)}{kw})"
    rx = x.detach().clone().requires_grad_(True)
    rw = w.detach().clone().requires_grad_(True) if w_is_tensor else w
    ref_y, ref_steps = reference_dynamic_iterate(rx, rw, **kwargs)
    ref_y.sum().backward()
    # the loop, and its backward, run where the learner's code is
    result, connected, x_grad, w_grad = call_probe("dynamic", fn, x, w, kwargs)
    check(_isinstance(result, tuple) and len(result) == 2, f"{what} returned {describe(result)}; expected (y, steps)")
    y, steps = result
    try:
        steps_value = _index(steps)
    except TypeError:
        fail(f"{what}: steps is {describe(steps)}; expected an int")
    check(steps_value == ref_steps, f"{what} made {steps_value} steps; expected {ref_steps} "
                                    "(count every update; stop when max |y_new - y| < tol or at max_steps)")
    compare_close(y.detach() if _isinstance(y, _Tensor) else y, ref_y.detach(), f"{what}: y")
    check(_isinstance(y, _Tensor) and connected,
          f"{what}: y has no grad_fn, so no gradient flows back to x and w (don't detach or use .item() in the loop)")
    grads = [("x", x_grad, rx.grad)] + ([("w", w_grad, rw.grad)] if w_is_tensor else [])
    for name, got, want in grads:
        check(got is not None, f"{what}: y.sum().backward() left {name}.grad None; expected {describe(want)}")
        compare_close(got, want, f"{what}: the gradient {name}.grad of y.sum()")


# -------------------------------------------------------------- no_grad_forward
def check_no_grad_forward(fn, model, x) -> None:
    what = f"no_grad_forward({type(model).__name__}, {describe(x, 4)})"
    with torch.no_grad():
        expected = model(x)
    check(_is_grad_enabled(), "internal: grad mode is off before the call")
    # a copy of the model goes where the learner's function is; its forwards are watched there
    seen = call_probe("no_grad_forward", fn, model, x)
    modes, saved, enabled = seen.get("seen") or [], seen.get("saved"), seen.get("enabled")
    check(not any(modes) and not saved,
          f"{what} ran the model's forward with gradient tracking on (a graph was built"
          f"{', then cut' if modes and any(modes) else ''}); the point is to never record it: "
          "run the forward inside `with torch.no_grad():`, detaching afterwards is too late")
    check(enabled is True, f"{what} left gradient tracking switched off for everything after it: "
                           "use `with torch.no_grad():`, which restores it")
    result = seen.get("result")
    compare_close(result, expected, what)
    check(seen.get("grad_fn") is None and seen.get("requires_grad") is False,
          f"{what}: the output has grad_fn {seen.get('grad_fn')} (requires_grad={seen.get('requires_grad')}); "
          "expected no graph at all")
    flags, now = seen.get("flags") or [], seen.get("flags_after") or []
    changed = [f"{n}: {a} → {b}" for (n, a), (_, b) in zip(flags, now) if a != b]
    check(not changed, f"{what} changed the model's requires_grad flags ({', '.join(changed)}); leave them as they were")


# ------------------------------------------------------------------- pictures
def grad_fn_lines(output, names=None):
    """The graph behind ``output`` as indented text, one node per line."""
    names = {id(t): n for n, t in (names or {}).items()}
    lines, seen = [], set()

    def visit(node, depth):
        if node is None:
            return
        label = type(node).__name__
        variable = getattr(node, "variable", None)
        if variable is not None:
            label += f"  ← leaf {names.get(id(variable), list(variable.shape))}"
        again = node in seen
        lines.append("    " * depth + label + ("  (seen above)" if again else ""))
        if again:
            return
        seen.add(node)
        for child, _ in node.next_functions:
            visit(child, depth + 1)

    visit(output.grad_fn, 0)
    return lines


def draw_graph(output, names=None, ax=None, title=None):
    """Draw the backward graph of ``output`` with matplotlib: leaves on the left,
    ``output``'s ``grad_fn`` on the right; arrows follow the forward direction."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch

    names = {id(t): n for n, t in (names or {}).items()}
    depth, edges, order = {}, [], []
    todo = [(output.grad_fn, 0)]
    while todo:  # longest distance from the output
        node, d = todo.pop()
        if node is None:
            continue
        if node not in depth:
            order.append(node)
        if depth.get(node, -1) >= d:
            continue
        depth[node] = d
        for child, _ in node.next_functions:
            if child is not None:
                edges.append((child, node))
                todo.append((child, d + 1))
    edges = list(dict.fromkeys(edges))
    levels = {}
    for node in order:
        levels.setdefault(depth[node], []).append(node)
    top = max(levels)
    pos = {}
    for d, nodes in levels.items():
        for i, node in enumerate(nodes):
            pos[node] = (top - d, (len(nodes) - 1) / 2 - i)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * (top + 1) + 1, 1.1 * max(len(v) for v in levels.values()) + 1))
    for child, parent in edges:
        ax.add_patch(FancyArrowPatch(pos[child], pos[parent], arrowstyle="-|>", mutation_scale=14,
                                     shrinkA=34, shrinkB=34, color="0.35"))
    for node, (px, py) in pos.items():
        variable = getattr(node, "variable", None)
        if variable is not None:
            label, color = f"leaf {names.get(id(variable), '')}".strip(), "#cfe8cf"
        else:
            label, color = type(node).__name__.removesuffix("0").removesuffix("Backward") + "\nBackward", "#dde6f5"
        ax.text(px, py, label, ha="center", va="center", fontsize=9,
                bbox=dict(boxstyle="round,pad=0.4", fc=color, ec="0.4"))
    ax.set_xlim(-0.7, top + 0.7)
    ys = [p[1] for p in pos.values()]
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title)
    return ax


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
