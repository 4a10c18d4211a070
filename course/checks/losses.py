"""Checks for the loss-function exercises (04_losses).

The torch references are captured when this module is first imported (by the
notebook's locked setup cell, before any learner code runs), so a learner who
rebinds ``F.cross_entropy`` changes nothing here. Every check names the call,
the input, what was expected and what came back.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn.functional as _functional

from course.checks.compare import call, call_probe, check, check_type, compare_close, describe
from course.checks.forbid import forbid_calls

_isinstance = isinstance
_unwrap = inspect.unwrap
_Tensor = torch.Tensor
_log_softmax = torch.log_softmax
_grad = torch.autograd.grad
_isnan = torch.isnan
_allclose = torch.allclose

# Trusted references.
mse_loss_reference = _functional.mse_loss
bce_reference = _functional.binary_cross_entropy
bce_with_logits_reference = _functional.binary_cross_entropy_with_logits
cross_entropy_reference = _functional.cross_entropy
_ctc_loss = _functional.ctc_loss



# ---------------------------------------------------------------------------
# Forbidden calls, allowing the learner's own functions and classes
# ---------------------------------------------------------------------------

def forbid_library_calls(obj, names, what: str | None = None) -> None:
    """``forbid_calls`` that lets a bare name refer to the learner's own functions and
    classes: ``cross_entropy`` may call itself, ``super(SGD, self)`` may name its own
    class; ``F.cross_entropy``, ``torch.optim.SGD``, imports and ``getattr`` strings fail."""
    forbid_calls(obj, names, what, allow_own=True)


# ---------------------------------------------------------------------------
# Values and gradients against a torch reference
# ---------------------------------------------------------------------------

_DEFAULT_TOL = {torch.float64: (1e-7, 1e-7), torch.float32: (1.3e-6, 1e-5)}


def _close(actual, expected, what, rtol=None, atol=None, equal_nan=False):
    """``compare_close``, with a quick ``torch.allclose`` first (the full comparison, which
    builds the message, only runs when something differs)."""
    if (_isinstance(actual, _Tensor) and _isinstance(expected, _Tensor) and actual.shape == expected.shape
            and actual.dtype == expected.dtype and expected.dtype in _DEFAULT_TOL):
        r, a = (rtol, atol) if rtol is not None else _DEFAULT_TOL[expected.dtype]
        if bool(_allclose(actual.detach(), expected.detach(), rtol=r, atol=a, equal_nan=equal_nan)):
            return
    compare_close(actual, expected, what, rtol=rtol, atol=atol, equal_nan=equal_nan)


def tolerance(dtype) -> dict:
    """``rtol``/``atol`` for comparing a loss computed in ``dtype``: float32 sums of many
    terms may round differently from torch's, float64 ones agree to the default."""
    return {"rtol": 1e-5, "atol": 1e-5} if dtype in (torch.float32, torch.float16, torch.bfloat16) else {}


def _weights_like(out: torch.Tensor) -> torch.Tensor:
    """Fixed, distinct weights to turn a non-scalar loss into a scalar for backward."""
    g = torch.Generator().manual_seed(1234)
    return (torch.rand(out.shape, generator=g, dtype=torch.float64) + 0.5).to(out.dtype)


def _scalar(out):
    return out.sum() if out.numel() <= 1 else (out * _weights_like(out)).sum()


def check_loss(fn, reference, *args, grad_wrt=(0,), rtol=None, atol=None, grad=True, **kwargs) -> None:
    """``fn(*args, **kwargs)`` must equal ``reference(*args, **kwargs)`` (value, shape and
    dtype; ``nan`` where the reference gives ``nan``) and, when ``grad``, have the same
    gradient w.r.t. the positional arguments ``grad_wrt`` (in the inputs' dtype: tests pass
    float64 where float32 rounding would blur the comparison)."""
    with torch.no_grad():
        expected = reference(*args, **kwargs)
    actual = call(fn, *_copies(args), **kwargs)
    what = _signature(fn, args, kwargs)
    check_type(actual, _Tensor, what)
    _close(actual, expected, what, rtol=rtol, atol=atol, equal_nan=True)
    if not grad or bool(_isnan(expected).any()):
        return  # no gradient to compare where the loss itself is nan (0 / 0)
    leaves = {i: args[i].detach().clone().requires_grad_(True) for i in grad_wrt}
    ref_args = [leaves.get(i, a) for i, a in enumerate(args)]
    ref_out = reference(*ref_args, **kwargs)
    if ref_out.numel() == 0:
        return
    ref_grads = _grad(_scalar(ref_out), [leaves[i] for i in grad_wrt])
    upstream = torch.ones_like(ref_out) if ref_out.numel() <= 1 else _weights_like(ref_out)  # as _scalar does
    out, connected, my_grads, _ = call_probe("vjp", fn, list(args), kwargs, list(grad_wrt), upstream.detach())
    check(_isinstance(out, _Tensor) and connected,
          f"{what}: the result is not connected to the inputs' graph (no grad_fn): "
          "use tensor operations only (no .item(), .detach(), .numpy(), torch.tensor(...) on results)")
    for i, g_mine, g_ref in zip(grad_wrt, my_grads, ref_grads):
        check(g_mine is not None, f"{what}: no gradient reaches argument {i} ({describe(args[i], 3)})")
        check(not bool(_isnan(g_mine).any()),
              f"{what}: the gradient w.r.t. argument {i} contains NaN: {describe(g_mine)}")
        _close(g_mine, g_ref, f"gradient of {what} w.r.t. argument {i}", rtol=rtol, atol=atol)


def _copies(args):
    """Fresh copies of tensor arguments (same strides), so that an in-place change made by
    the learner's code cannot alter the next comparison."""
    return [a.clone() if _isinstance(a, _Tensor) else a for a in args]


def _signature(fn, args, kwargs) -> str:
    name = getattr(fn, "__name__", None) or repr(fn)
    parts = [describe(a, 4) for a in args] + [f"{k}={describe(v, 4)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


# ---------------------------------------------------------------------------
# CTC
# ---------------------------------------------------------------------------

def ctc_reference(log_probs: torch.Tensor, target, blank: int = 0) -> torch.Tensor:
    """``F.ctc_loss`` for one sequence, ``reduction="sum"``."""
    T = log_probs.shape[0]
    targets = torch.tensor([list(target)], dtype=torch.long).reshape(1, len(target))
    return _ctc_loss(log_probs[:, None, :], targets, [T], [len(target)], blank=blank, reduction="sum")


def greedy_reference(log_probs: torch.Tensor, blank: int = 0) -> list[int]:
    best = log_probs.argmax(dim=-1).tolist()
    out, previous = [], None
    for k in best:
        if k != previous and k != blank:
            out.append(k)
        previous = k
    return out


def check_greedy_decode(fn, log_probs, blank=None) -> None:
    kwargs = {} if blank is None else {"blank": blank}
    what = _signature(fn, (log_probs,), kwargs)
    result = call(fn, log_probs, **kwargs)
    check_type(result, list, what)
    check(all(type(k) is int for k in result),
          f"{what} must return a list of Python ints (use .tolist()), got {describe(result)}")
    expected = greedy_reference(log_probs, 0 if blank is None else blank)
    check(result == expected,
          f"{what} returned {result}, expected {expected}\n"
          f"  best class per time step: {log_probs.argmax(-1).tolist()}")


def check_ctc(fn, logits: torch.Tensor, target, blank=None, grad: bool = True) -> None:
    """Value of ``fn(log_softmax(logits), target)`` against ``F.ctc_loss``; with ``grad``,
    the gradient w.r.t. ``logits`` (through ``log_softmax``) too, which must hold no NaN."""
    kwargs = {} if blank is None else {"blank": blank}
    b = 0 if blank is None else blank
    target = list(target)
    log_probs = _log_softmax(logits.detach(), dim=-1)
    what = _signature(fn, (log_probs, target), kwargs)
    with torch.no_grad():
        expected = ctc_reference(log_probs, target, b)
    actual = call(fn, log_probs.clone(), list(target), **kwargs)
    check_type(actual, _Tensor, what)
    check(actual.numel() == 1, f"{what} must return a single number (a 0-d tensor), got shape {list(actual.shape)}")
    check(actual.dtype == log_probs.dtype, f"{what} returned dtype {actual.dtype}, expected {log_probs.dtype}")
    compare_close(actual.detach().reshape(()), expected, what, rtol=1e-5 if log_probs.dtype == torch.float32 else None,
                  atol=1e-5 if log_probs.dtype == torch.float32 else None)
    if not grad or math.isinf(expected.item()):
        return
    ref_leaf = logits.detach().clone().requires_grad_(True)
    (ref_grad,) = _grad(ctc_reference(_log_softmax(ref_leaf, dim=-1), target, b), [ref_leaf])
    out, connected, my_grad = _through_log_softmax(fn, logits, target, kwargs)
    check(_isinstance(out, _Tensor) and connected,
          f"{what}: the loss is not connected to log_probs' graph: use tensor operations only")
    check(my_grad is not None, f"{what}: no gradient reaches log_probs")
    check(not bool(_isnan(my_grad).any()),
          f"{what}: the gradient contains NaN at {_isnan(my_grad).nonzero().tolist()[:4]}: "
          "a log-sum-exp over entries that are all -inf has a NaN gradient; guard it")
    _close(my_grad, ref_grad, f"gradient of {what} w.r.t. the logits (through log_softmax)")


def _through_log_softmax(fn, logits, target, kwargs):
    """``fn(log_softmax(logits), target)`` and the gradient of its sum w.r.t. ``logits``: the
    learner's part of the chain rule runs where the learner's code is (a probe), the
    ``log_softmax`` part here. Returns (out, connected, gradient or None)."""
    leaf = logits.detach().clone().requires_grad_(True)
    log_probs = _log_softmax(leaf, dim=-1)
    out, connected, (upstream,), _ = call_probe("vjp", fn, [log_probs.detach(), list(target)], kwargs, [0], None)
    if not connected or upstream is None:
        return out, connected, None
    (grad,) = _grad(log_probs, [leaf], upstream.to(log_probs.dtype))
    return out, connected, grad


def check_ctc_long(fn, T: int, dtype, C: int = 5, target=(2,), seed: int = 0) -> None:
    """A long input (``T`` frames) in ``dtype``: probabilities of a whole alignment are far below
    the smallest float (e^-3000), so the recursion must stay in log space all the way.
    Value and gradient (through ``log_softmax``) finite and matching ``F.ctc_loss``."""
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(T, C, generator=g, dtype=torch.float64) * 2).to(dtype)
    target = list(target)
    what = f"ctc_loss(log_probs {str(dtype).removeprefix('torch.')}[{T}, {C}], {target})"
    out, connected, my_grad = _through_log_softmax(fn, logits, target, {})
    check_type(out, _Tensor, what)
    check(out.numel() == 1, f"{what} must return a single number (a 0-d tensor), got shape {list(out.shape)}")
    check(bool(torch.isfinite(out.detach()).all()),
          f"{what} is {out.detach().reshape(-1)[0].item()}: the probability of one alignment over {T} frames "
          "underflows to 0 (and its log to -inf); keep every step in log space (log-sum-exp, subtracting the max)")
    ref_leaf = logits.detach().double().requires_grad_(True)
    expected = ctc_reference(_log_softmax(ref_leaf, dim=-1), target, 0)
    (ref_grad,) = _grad(expected, [ref_leaf])
    rtol = 1e-4 if dtype == torch.float32 else 1e-9
    compare_close(out.detach().double().reshape(()), expected.detach(), what, rtol=rtol, atol=0.0)
    check(connected, f"{what}: the loss is not connected to log_probs' graph: use tensor operations only")
    check(my_grad is not None and bool(torch.isfinite(my_grad).all()),
          f"{what}: the gradient is not finite; keep the recursion in log space")
    compare_close(my_grad.double(), ref_grad, f"gradient of {what} w.r.t. the logits",
                  rtol=1e-3 if dtype == torch.float32 else 1e-7, atol=1e-3 if dtype == torch.float32 else 1e-9)


def lattice(target, T: int, blank: int = 0):
    """The CTC lattice: the extended label sequence ``[blank, l1, blank, l2, ..., blank]``,
    and which (time, state) nodes lie on some complete alignment (``[T, 2S+1]`` bool)."""
    ext = [blank]
    for k in target:
        ext += [k, blank]
    L = len(ext)

    def moves(s):  # states reachable from s in one time step
        out = [s, s + 1]
        if s + 2 < L and ext[s + 2] != blank and ext[s + 2] != ext[s]:
            out.append(s + 2)
        return [m for m in out if m < L]

    forward = torch.zeros(T, L, dtype=torch.bool)
    forward[0, : min(2, L)] = True
    for t in range(1, T):
        for s in range(L):
            if forward[t - 1, s]:
                forward[t, moves(s)] = True
    backward = torch.zeros(T, L, dtype=torch.bool)
    backward[T - 1, max(L - 2, 0):] = True
    for t in range(T - 2, -1, -1):
        for s in range(L):
            backward[t, s] = any(bool(backward[t + 1, m]) for m in moves(s))
    return ext, forward & backward, moves


def draw_ctc_lattice(target="cat", T=7, alphabet="_abcdefghijklmnopqrstuvwxyz", path=None, ax=None):
    """Draw the CTC alignment lattice of ``target`` over ``T`` frames (lesson figure):
    a dot per (time, state), grey where no complete alignment passes, arrows for the
    allowed moves, and one alignment (``path``, a list of ``T`` states) in colour."""
    import matplotlib.pyplot as plt

    labels = [alphabet.index(ch) for ch in target]
    ext, alive, moves = lattice(labels, T)
    L = len(ext)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.1 * T + 1.5, 0.45 * L + 1.2))
    for t in range(T - 1):
        for s in range(L):
            for m in moves(s):
                if alive[t, s] and alive[t + 1, m]:
                    ax.annotate("", xy=(t + 1, m), xytext=(t, s),
                                arrowprops=dict(arrowstyle="->", color="0.75", lw=0.8, shrinkA=6, shrinkB=6))
    for t in range(T):
        for s in range(L):
            ax.plot(t, s, "o", ms=9, color="tab:blue" if alive[t, s] else "0.85",
                    markeredgecolor="k" if alive[t, s] else "0.85")
    if path is None:  # one alignment: walk the labels as early as possible, pad with the final blank
        path, s = [], 0
        for t in range(T):
            path.append(s)
            later = [m for m in moves(s) if m != s and t + 1 < T and alive[t + 1, m]]
            s = later[0] if later else s
    ax.plot(range(T), path, "-", color="tab:red", lw=3, alpha=0.7, zorder=0)
    emitted = "".join(alphabet[ext[s]] for s in path)
    ax.set_yticks(range(L))
    ax.set_yticklabels([alphabet[k] if k else "∅ (blank)" for k in ext])
    ax.invert_yaxis()
    ax.set_xticks(range(T))
    ax.set_xlabel("time step t")
    ax.set_ylabel("extended target")
    ax.set_title(f"CTC lattice for '{target}' over T={T}: path {emitted!r} → '{target}'")
    return ax


# ---------------------------------------------------------------------------
# Confusion counts and rates
# ---------------------------------------------------------------------------

def counts_reference(pred, actual) -> dict:
    pred, actual = pred.bool(), actual.bool()
    return {
        "tp": int((pred & actual).sum()),
        "fp": int((pred & ~actual).sum()),
        "tn": int((~pred & ~actual).sum()),
        "fn": int((~pred & actual).sum()),
    }


def _ratio(a, b) -> float:
    return a / b if b else 0.0


def rates_reference(pred, actual) -> dict:
    c = counts_reference(pred, actual)
    return {"type_i": _ratio(c["fp"], c["fp"] + c["tn"]), "type_ii": _ratio(c["fn"], c["fn"] + c["tp"])}


def prf_reference(pred, actual) -> tuple:
    c = counts_reference(pred, actual)
    precision = _ratio(c["tp"], c["tp"] + c["fp"])
    recall = _ratio(c["tp"], c["tp"] + c["fn"])
    return precision, recall, _ratio(2 * precision * recall, precision + recall)


def _inputs(pred, actual) -> str:
    return (f"pred={describe(pred, 8)}, actual={describe(actual, 8)} "
            f"(counts {counts_reference(pred, actual)})")


def check_counts(fn, pred, actual) -> None:
    what = f"{fn.__name__}({_inputs(pred, actual)})"
    result = call(fn, pred, actual)
    check_type(result, dict, what)
    expected = counts_reference(pred, actual)
    check(set(result) == set(expected), f"{what} returned keys {sorted(result)}; expected exactly {sorted(expected)}")
    for key, value in expected.items():
        got = result[key]
        check(type(got) is int, f"{what}[{key!r}] is {describe(got)} ({type(got).__name__}); expected the int {value} (use int(...) or .item())")
        check(got == value, f"{what}[{key!r}] is {got}, expected {value}")


def check_rates(fn, pred, actual) -> None:
    what = f"{fn.__name__}({_inputs(pred, actual)})"
    result = call(fn, pred, actual)
    check_type(result, dict, what)
    expected = rates_reference(pred, actual)
    check(set(result) == set(expected), f"{what} returned keys {sorted(result)}; expected exactly {sorted(expected)}")
    for key, value in expected.items():
        got = result[key]
        check(_isinstance(got, float), f"{what}[{key!r}] is {describe(got)} ({type(got).__name__}); expected the float {value:.6g}")
        check(not math.isnan(got) and math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9),
              f"{what}[{key!r}] is {got:.6g}, expected {value:.6g}")


def check_prf(fn, pred, actual) -> None:
    what = f"{fn.__name__}({_inputs(pred, actual)})"
    result = call(fn, pred, actual)
    check(_isinstance(result, tuple) and len(result) == 3,
          f"{what} must return a tuple (precision, recall, f1), got {describe(result)}")
    for name, got, value in zip(("precision", "recall", "f1"), result, prf_reference(pred, actual)):
        check(_isinstance(got, float), f"{what}: {name} is {describe(got)} ({type(got).__name__}); expected the float {value:.6g}")
        check(not math.isnan(got) and math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-9),
              f"{what}: {name} is {got:.6g}, expected {value:.6g}")


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
