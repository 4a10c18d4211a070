"""Checks for the neural-network exercises (03_neural_networks).

The torch references are captured when this module is imported (by the notebook's
first, locked cell), before any learner code runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

import course.checks.strategies  # noqa: F401 (warms hypothesis up)
from course.checks.compare import call, call_probe, check, compare_close, compare_equal, describe, fail
from course.checks.forbid import forbid_calls

_isinstance = isinstance
_issubclass = issubclass
_type = type
_sigmoid = torch.sigmoid
_softmax = torch.softmax
_log_softmax = torch.log_softmax
_relu = torch.relu
_leaky_relu = F.leaky_relu
_linear = F.linear
_cross_entropy = F.cross_entropy
_manual_seed = torch.manual_seed
_randn = torch.randn
_equal = torch.equal
_isfinite = torch.isfinite
_grad = torch.autograd.grad
_Linear, _Sequential, _Module = nn.Linear, nn.Sequential, nn.Module
_ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
_Tensor = torch.Tensor

# references for the test cells (captured now, so rebinding torch's names later changes nothing)
reference_sigmoid = _sigmoid
reference_relu = _relu


def reference_softmax(x, dim=-1):
    return _softmax(x, dim)


def reference_log_softmax(x, dim=-1):
    return _log_softmax(x, dim)


def reference_leaky_relu(x, negative_slope=0.01):
    return _leaky_relu(x, negative_slope)


SIGMOID_NAMES = ["sigmoid", "sigmoid_", "Sigmoid", "expit", "logsigmoid", "LogSigmoid", "logistic"]
SOFTMAX_NAMES = ["softmax", "log_softmax", "logsumexp", "Softmax", "LogSoftmax", "Softmax2d", "softmin", "Softmin",
                 "_softmax", "_log_softmax", "gumbel_softmax", "special"]
RELU_NAMES = ["relu", "relu_", "relu6", "ReLU", "ReLU6", "leaky_relu", "leaky_relu_", "LeakyReLU", "rrelu", "RReLU",
              "prelu", "PReLU"]
LINEAR_NAMES = ["Linear", "linear", "LazyLinear", "Bilinear", "bilinear"]

#: every ``torch.nn`` module class name: ``mlp_functional`` may use none of them
NN_MODULE_NAMES = sorted(n for n in dir(nn) if _isinstance(getattr(nn, n), type) and _issubclass(getattr(nn, n), nn.Module))

# Creating the first optimizer imports torch._dynamo (seconds on a loaded 2-core machine):
# do it now too, so that fit_xor's test cell measures training only.
import torch._dynamo  # noqa: E402,F401


# ----------------------------------------------------------------- forbidden calls
def forbid_foreign(obj, names, what: str | None = None) -> None:
    """``forbid_calls`` that lets a bare name refer to the learner's own functions and
    classes: ``softmax`` may call *your* ``log_softmax``, ``Linear`` may name itself in
    ``super(Linear, self)``; ``F.softmax``, ``nn.Linear`` and imports are always checked."""
    forbid_calls(obj, names, what, allow_own=True)


# --------------------------------------------------------------- activations
def check_activation(fn, reference, x, grad: bool = True, **kwargs) -> None:
    """``fn(x, **kwargs)`` matches ``reference(x, **kwargs)`` in value, dtype and shape,
    leaves ``x`` unchanged, and (for float64 ``x`` with ``grad``) in gradient."""
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"{fn.__name__}({describe(x, 4)}{kw})"
    before = x.clone()
    expected = reference(x.detach(), **kwargs)
    differentiate = grad and x.dtype == torch.float64 and x.numel()
    g = torch.linspace(-1.0, 1.0, expected.numel(), dtype=expected.dtype).reshape(expected.shape)
    # in the learner's process (autograd runs where the code is): the value, the gradient, x after
    result, connected, grads, (after,) = call_probe("vjp", fn, [x], kwargs, [0] if differentiate else [],
                                                     g if differentiate else None, True)
    check(_isinstance(result, _Tensor), f"{what} returned {describe(result)}; expected a tensor")
    check(result.dtype == expected.dtype,
          f"{what} returned dtype {result.dtype}; expected {expected.dtype}, the input's")
    compare_close(result.detach(), expected, what, equal_nan=True)
    check(_equal(after, before) and _equal(x.detach(), before),
          f"{what} changed its input x in place: it is now {describe(after)}; return a new tensor")
    if differentiate:
        check(connected, f"{what}: the output does not require grad; keep it differentiable "
                         "(no .detach(), .item() or .numpy())")
        ref_leaf = x.detach().clone().requires_grad_(True)
        (want,) = _grad(reference(ref_leaf, **kwargs), ref_leaf, g)
        compare_close(grads[0], want, f"the gradient of {what}")


def check_finite(fn, x, **kwargs) -> None:
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"{fn.__name__}({describe(x, 4)}{kw})"
    result = call(fn, x, **kwargs)
    check(_isinstance(result, _Tensor), f"{what} returned {describe(result)}; expected a tensor")
    bad = ~_isfinite(result)
    if bad.any():
        i = bad.reshape(-1).nonzero()[0].item()
        fail(f"{what} is not finite at flat index {i} (input {x.reshape(-1)[i].item():.6g}): {describe(result)}; "
             "avoid exponentiating large numbers (subtract the maximum, or use the other form for x < 0)")


def check_finite_gradient(fn, reference, x, **kwargs) -> None:
    """The gradient of ``fn(x).sum()`` is finite and matches the reference's: a stable
    activation is stable in its backward too (``torch.where`` does not shield a branch's
    ``inf`` from the chain rule: ``0 * inf`` is ``nan``)."""
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"{fn.__name__}({describe(x, 4)}{kw})"
    result, connected, (got,), _ = call_probe("vjp", fn, [x], kwargs, [0], None, True)
    check(_isinstance(result, _Tensor) and connected,
          f"{what}: the output does not require grad; keep it differentiable")
    bad = ~_isfinite(got)
    if bad.any():
        i = bad.reshape(-1).nonzero()[0].item()
        fail(f"the gradient of {what} is {got.reshape(-1)[i].item()} at input {x.reshape(-1)[i].item():.6g}: "
             "the forward is finite but the backward is not. In `torch.where(c, a, b)` both branches are "
             "computed and differentiated, and 0 * inf = nan; compute exp only of -|x| (finite everywhere)")
    ref_leaf = x.detach().clone().requires_grad_(True)
    (want,) = _grad(reference(ref_leaf, **kwargs).sum(), ref_leaf)
    compare_close(got, want, f"the gradient of {what}")


# ------------------------------------------------------------- collapse_linear
def _stack_forward(layers, x):
    for layer in layers:
        x = layer(x)
    return x


def check_collapse(fn, layers) -> None:
    sizes = " → ".join([str(layers[0].in_features)] + [str(l.out_features) for l in layers])
    biases = "".join("b" if l.bias is not None else "-" for l in layers)
    what = f"collapse_linear({type(layers).__name__} of Linear {sizes}, biases {biases})"
    first, last = layers[0], layers[-1]
    dtype = first.weight.dtype
    x = _randn(7, first.in_features, dtype=torch.float64, generator=torch.Generator().manual_seed(3)).to(dtype)
    seen = call_probe("collapse", fn, layers, x)  # the layers go to the learner's process as copies
    check(seen.get("linear") is True, f"{what} returned a {seen.get('type', '?')}; expected one nn.Linear")
    check((seen.get("in"), seen.get("out")) == (first.in_features, last.out_features),
          f"{what} returned Linear({seen.get('in')}, {seen.get('out')}); "
          f"expected Linear({first.in_features}, {last.out_features})")
    with torch.no_grad():
        expected = _stack_forward(layers, x)
    compare_close(seen.get("y"), expected, f"{what}(x) for x {describe(x, 4)} compared with the stack",
                  **({} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}))


# ------------------------------------------------------------- gradient_norms
def reference_gradient_norms(activation, depth, width=32, seed=0):
    _manual_seed(seed)
    layers = []
    for _ in range(depth):
        layers += [_Linear(width, width), _ACTIVATIONS[activation]()]
    model = _Sequential(*layers)
    x = _randn(64, width)
    model(x).sum().backward()
    return [m.weight.grad.norm().item() for m in model if _isinstance(m, _Linear)]


def check_gradient_norms(fn, activation, depth, **kwargs) -> None:
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"gradient_norms({activation!r}, {depth}{kw})"
    expected = reference_gradient_norms(activation, depth, **kwargs)
    result = call(fn, activation, depth, **kwargs)
    check(_isinstance(result, list), f"{what} returned {describe(result)}; expected a list of floats")
    check(len(result) == depth, f"{what} returned {len(result)} norms; expected {depth}, one per Linear")
    for i, r in enumerate(result):
        check(_isinstance(r, float), f"{what}[{i}] is {describe(r)} ({type(r).__name__}); expected a float (.item())")
    if result != expected:
        compare_close(result, expected, f"{what} (from the first layer to the last)", rtol=1e-4, atol=1e-12)


# ------------------------------------------------------------- perceptron_fit
def reference_perceptron(X, y, epochs=100, lr=1.0):
    X64 = X.to(torch.float64)
    w = torch.zeros(X.shape[1], dtype=torch.float64)
    b = 0.0
    labels = [float(v) for v in y.tolist()]
    for _ in range(epochs):
        mistakes = 0
        for xi, yi in zip(X64, labels):
            if yi * (float((w * xi).sum()) + b) <= 0:
                w = w + lr * yi * xi
                b += lr * yi
                mistakes += 1
        if mistakes == 0:
            break
    return w.to(X.dtype), float(b)


def check_perceptron(fn, X, y, **kwargs) -> None:
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"perceptron_fit({describe(X, 4)}, {describe(y, 6)}{kw})"
    w_ref, b_ref = reference_perceptron(X, y, **kwargs)
    result = call(fn, X.clone(), y.clone(), **kwargs)
    check(_isinstance(result, tuple) and len(result) == 2, f"{what} returned {describe(result)}; expected (w, b)")
    w, b = result
    check(_isinstance(w, _Tensor), f"{what}: w is {describe(w)}; expected a tensor")
    check(w.dtype == X.dtype, f"{what}: w has dtype {w.dtype}; expected {X.dtype}, X's dtype")
    check(_isinstance(b, float), f"{what}: b is {describe(b)} ({type(b).__name__}); expected a Python float")
    compare_close(w.detach(), w_ref, f"{what}: w")
    compare_close(b, b_ref, f"{what}: b")


# ---------------------------------------------------------------------- Linear
def check_linear(Linear, in_features, out_features, bias=True, batch=(4,), dtype=torch.float64) -> None:
    what = f"Linear({in_features}, {out_features}, bias={bias})"
    reference = _Linear(in_features, out_features, bias=bias).to(dtype)
    x = _randn(*batch, in_features, dtype=dtype, generator=torch.Generator().manual_seed(in_features))
    x_ref = x.clone().requires_grad_(True)
    expected = reference(x_ref)
    g = torch.linspace(-1, 1, expected.numel(), dtype=dtype).reshape(expected.shape)
    # the layer lives where the learner's class does: a probe builds, loads and runs it there
    seen = call_probe("linear_layer", Linear, in_features, out_features, bias,
                      dict(reference.state_dict()), x, g, dtype)
    check(seen.get("module") is True, f"{what} is a {seen.get('type', '?')}; expected an nn.Module")
    expected_shapes = {"weight": (out_features, in_features)}
    if bias:
        expected_shapes["bias"] = (out_features,)
    shapes = seen.get("shapes")
    check(shapes == expected_shapes, f"{what} has parameters {shapes}; expected {expected_shapes}")
    if "load_error" in seen:
        fail(f"{what}.load_state_dict(nn.Linear(...).state_dict()) raised {seen['load_error']}")
    tol = {} if dtype == torch.float64 else {"atol": 1e-5, "rtol": 1e-4}
    actual = seen.get("out")
    compare_close(actual, expected.detach(), f"{what} loaded from an nn.Linear, on x {describe(x, 4)}", **tol)
    (expected * g).sum().backward()
    grads = seen.get("grads") or {}
    for name in expected_shapes:
        want = getattr(reference, name).grad
        check(grads.get(name) is not None, f"{what}: {name}.grad is None after backward; is {name} used in forward?")
        compare_close(grads[name], want, f"{what}: the gradient {name}.grad", **tol)
    compare_close(seen.get("x_grad"), x_ref.grad, f"{what}: the gradient with respect to the input", **tol)


def check_linear_init(Linear, in_features, out_features) -> None:
    what = f"Linear({in_features}, {out_features})"
    seen = call_probe("linear_init", Linear, in_features * 1000 + out_features, in_features, out_features)
    bound = 1 / math.sqrt(in_features)
    for name, least in (("weight", 0.95), ("bias", 0.8)):
        is_parameter, values, requires_grad = seen.get(name, (False, None, False))
        check(is_parameter is True and _isinstance(values, _Tensor),
              f"{what}.{name} is {describe(values)}; expected an nn.Parameter")
        t = values.double()
        check(t.abs().max() <= bound * (1 + 1e-6),
              f"{what}.{name} has values up to {t.abs().max():.4g}; expected them within ±1/sqrt(in) = ±{bound:.4g}")
        check(t.abs().max() >= least * bound and t.min() < 0 < t.max(),
              f"{what}.{name} lies in [{t.min():.4g}, {t.max():.4g}]; expected it to fill ±{bound:.4g} "
              "(uniform in ±1/sqrt(in_features))")
        mean_abs = t.abs().mean().item()
        check(abs(mean_abs - bound / 2) < 0.1 * bound,
              f"{what}.{name}: mean |value| is {mean_abs:.4g}; a uniform ±{bound:.4g} gives about {bound / 2:.4g}")
        check(requires_grad is True, f"{what}.{name} does not require grad")


# ------------------------------------------------------------------------- MLP
def check_mlp(MLP, in_features, hidden, out_features, activation=None, batch=(5,)) -> None:
    kwargs = {} if activation is None else {"activation": activation}
    act_name = "" if activation is None else f", activation={getattr(activation, '__name__', activation)}"
    what = f"MLP({in_features}, {hidden}, {out_features}{act_name})"
    act_type = type((activation or nn.ReLU)())
    x = _randn(*batch, in_features, generator=torch.Generator().manual_seed(len(hidden)))
    # the model lives where the learner's class does: a probe describes it and runs it there
    seen = call_probe("mlp", MLP, (in_features, list(hidden), out_features), kwargs, x, act_type)
    check(seen.get("module") is True, f"{what} is a {seen.get('type', '?')}; expected an nn.Module")
    check(seen.get("sequential") is True, f"{what}.layers is a {seen.get('layers', '?')}; expected an nn.Sequential")
    layers = seen.get("layers") or []
    sizes = [in_features, *hidden, out_features]
    expected_len = 2 * len(hidden) + 1
    kinds = ", ".join(str(m[0]) for m in layers)
    check(len(layers) == expected_len,
          f"{what}.layers has {len(layers)} modules ({kinds}); expected {expected_len}: "
          "Linear, activation, ..., Linear (no activation after the last Linear)")
    rebuilt = []
    for i, (kind, first, second, weight, bias) in enumerate(layers):
        if i % 2 == 0:
            a, b = sizes[i // 2], sizes[i // 2 + 1]
            check(kind == "Linear", f"{what}.layers[{i}] is {kind}; expected nn.Linear({a}, {b})")
            check((first, second) == (a, b),
                  f"{what}.layers[{i}] is Linear({first}, {second}); expected Linear({a}, {b})")
            linear = _Linear(a, b, bias=bias is not None)
            with torch.no_grad():
                linear.weight.copy_(weight)
                if bias is not None:
                    linear.bias.copy_(bias)
            rebuilt.append(linear)
        else:
            check(first is True, f"{what}.layers[{i}] is {kind}; expected {act_type.__name__}")
            rebuilt.append((activation or nn.ReLU)())
    reference = _Sequential(*rebuilt)  # the learner's own weights, torch's layers
    with torch.no_grad():
        expected = reference(x)
    compare_close(seen.get("out"), expected, f"{what}(x) for x {describe(x, 4)}")


def check_mlp_functional(fn, sizes, activation=None, batch=(4,)) -> None:
    gen = torch.Generator().manual_seed(sum(sizes) + len(sizes))
    params = [(_randn(b, a, dtype=torch.float64, generator=gen).div(math.sqrt(a)).requires_grad_(True),
               _randn(b, dtype=torch.float64, generator=gen).mul(0.3).requires_grad_(True))
              for a, b in zip(sizes[:-1], sizes[1:])]
    x = _randn(*batch, sizes[0], dtype=torch.float64, generator=gen).requires_grad_(True)
    act = activation or _relu
    name = "" if activation is None else f", activation={getattr(activation, '__name__', activation)}"
    what = f"mlp_functional({describe(x, 3)}, [(weight, bias) for sizes {sizes}]{name})"

    h = x
    for i, (w, b) in enumerate(params):
        h = _linear(h, w, b)
        if i < len(params) - 1:
            h = act(h)
    kwargs = {} if activation is None else {"activation": activation}
    g = torch.linspace(-1, 1, h.numel(), dtype=h.dtype).reshape(h.shape)
    leaves = [x] + [t for p in params for t in p]
    want = _grad(h, leaves, g)
    wrt = [0] + [(1, i, j) for i in range(len(params)) for j in (0, 1)]
    plain = [(w.detach(), b.detach()) for w, b in params]
    result, connected, got, _ = call_probe("vjp", fn, [x.detach(), plain], kwargs, wrt, g, True)
    check(_isinstance(result, _Tensor), f"{what} returned {describe(result)}; expected a tensor")
    compare_close(result.detach(), h.detach(), what)
    check(connected, f"{what}: the output is not connected to the inputs' graph; keep it differentiable")
    labels = ["x"] + [f"{kind}{i}" for i in range(len(params)) for kind in ("weight", "bias")]
    for label, a, e in zip(labels, got, want):
        compare_close(a, e, f"the gradient of {what} with respect to {label}")


# ------------------------------------------------------------ count_parameters
class Tied(nn.Module):
    """A model whose decoder shares its weight with the embedding (one parameter, used twice);
    a class of the course, so that a copy of it can reach the learner's process."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.decode = nn.Linear(4, 10)
        self.decode.weight = self.embed.weight

    def forward(self, tokens):
        return self.decode(self.embed(tokens))


def check_count(fn, model, expected, **kwargs) -> None:
    kw = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"count_parameters({type(model).__name__}{kw})"
    result = call(fn, model, **kwargs)
    check(_isinstance(result, int) and not _isinstance(result, bool),
          f"{what} returned {describe(result)} ({type(result).__name__}); expected an int")
    check(result == expected, f"{what} returned {result}; expected {expected}")


# ---------------------------------------------------------- encode_categorical
def check_encode(fn, values) -> None:
    what = f"encode_categorical({describe(list(values))})"
    vocabulary = sorted(set(values))
    position = {v: i for i, v in enumerate(vocabulary)}
    expected = torch.tensor([position[v] for v in values], dtype=torch.long)
    result = call(fn, list(values))
    check(_isinstance(result, tuple) and len(result) == 2,
          f"{what} returned {describe(result)}; expected (indices, vocabulary)")
    indices, vocab = result
    check(_isinstance(vocab, list) and all(_isinstance(v, str) for v in vocab),
          f"{what}: vocabulary is {describe(vocab)}; expected a list of str")
    check(vocab == vocabulary, f"{what}: vocabulary is {describe(vocab)}; expected {describe(vocabulary)} "
                               "(each distinct value once, sorted)")
    check(_isinstance(indices, _Tensor), f"{what}: indices is {describe(indices)}; expected a LongTensor")
    check(indices.dtype == torch.long, f"{what}: indices has dtype {indices.dtype}; expected torch.int64 (long)")
    compare_equal(indices, expected, f"{what}: indices")


# --------------------------------------------------------------------- fit_xor
XOR_X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = torch.tensor([0, 1, 1, 0])


def check_xor(fn, **kwargs) -> None:
    kw = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    what = f"fit_xor({kw})"
    orders = ([0, 1, 2, 3], [3, 1, 0, 2])
    inputs = [XOR_X[order] for order in orders] + [XOR_X[i: i + 1] for i in range(4)]
    # trained where the learner's code is, seeded so that the grade does not depend on what ran before
    seen = call_probe("xor", fn, 1234 + sum(kwargs.values()), kwargs, inputs)
    check(seen.get("module") is True, f"{what} returned a {seen.get('type', '?')}; expected an nn.Module")
    outputs = seen.get("logits") or []
    check(len(outputs) == len(inputs), f"{what}: expected {len(inputs)} outputs, got {len(outputs)}")
    for order, logits in zip(orders, outputs):
        X, y = XOR_X[order], XOR_Y[order]
        check(_isinstance(logits, _Tensor) and tuple(logits.shape) == (4, 2),
              f"the model from {what} maps the 4 XOR points to {describe(logits)}; expected logits of shape [4, 2]")
        predicted = logits.argmax(dim=1)
        wrong = [tuple(X[i].tolist()) for i in range(4) if predicted[i] != y[i]]
        check(not wrong, f"the model from {what} misclassifies {wrong}: logits {describe(logits, 8)}, "
                         f"argmax {predicted.tolist()}, expected {y.tolist()}")
    for i, logits in enumerate(outputs[2:]):  # a batch of one
        check(_isinstance(logits, _Tensor) and tuple(logits.shape) == (1, 2) and logits.argmax(1).item() == XOR_Y[i].item(),
              f"the model from {what} on the single point {XOR_X[i].tolist()} gives {describe(logits)}; "
              f"expected class {XOR_Y[i].item()}")


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
