"""Checks for the optimization exercises (05_optimization).

References (``torch.optim.SGD``, ``torch.optim.Adam``, ``torch.linalg.lstsq``,
``torch.randperm``) are captured when this module is first imported, by the
notebook's locked setup cell, before any learner code runs. Optimizers are
compared step by step: the first step at which a parameter differs is reported,
with the hyperparameters.
"""

from __future__ import annotations

import copy
import math

import torch

from course.checks.compare import call, call_probe, check, check_type, compare_close, describe, fail
from course.checks.losses import forbid_library_calls  # noqa: F401 (re-exported for the notebook)

_isinstance = isinstance
_Tensor = torch.Tensor
_Optimizer = torch.optim.Optimizer
_SGD = torch.optim.SGD
_Adam = torch.optim.Adam
_lstsq = torch.linalg.lstsq
_randperm = torch.randperm
_Generator = torch.Generator
_manual_seed = torch.manual_seed
_deepcopy = copy.deepcopy
_allclose = torch.allclose
_equal = torch.equal

# The first optimizer step imports lazily (about 2 s): pay for it here, in the notebook's
# setup cell, not in a test cell (course.checks.compare warms assert_close up the same way).


def _warm_up():
    p = torch.zeros(2, requires_grad=True)
    for make in (lambda: _SGD([p], lr=0.1, momentum=0.9), lambda: _Adam([p], lr=0.1)):
        optimizer = make()
        p.sum().backward()
        optimizer.step()


_warm_up()

# Names whose use inside SGD / Adam would hand the work to torch.
OPTIMIZER_CALLS = ["SGD", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "sgd", "adam", "adamw",
                   "_single_tensor_sgd", "_multi_tensor_sgd", "_single_tensor_adam", "_multi_tensor_adam",
                   "_fused_sgd", "_fused_adam", "_fused_adam_", "_fused_sgd_", "_functional"]


def _tol(dtype) -> dict:
    return {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {}


# ---------------------------------------------------------------------------
# Linear regression
# ---------------------------------------------------------------------------

def lstsq_reference(X, y):
    """Least squares with an intercept, in float64: ``(w [d], b)``."""
    X64 = X.detach().double()
    A = torch.cat([X64, torch.ones(X64.shape[0], 1, dtype=torch.float64)], dim=1)
    solution = _lstsq(A, y.detach().double()[:, None]).solution[:, 0]
    return solution[:-1], float(solution[-1])


def gd_reference(X, y, lr=0.1, steps=100):
    """``steps`` full-batch gradient steps on the mean squared error, from zeros, in float64."""
    X64, y64 = X.detach().double(), y.detach().double()
    w = torch.zeros(X64.shape[1], dtype=torch.float64)
    b = torch.zeros((), dtype=torch.float64)
    n = X64.shape[0]
    for _ in range(steps):
        residual = X64 @ w + b - y64
        w = w - lr * (2.0 / n) * (X64.T @ residual)
        b = b - lr * (2.0 / n) * residual.sum()
    return w, float(b)


def _check_w_b(result, expected_w, expected_b, X, what, tol):
    check(_isinstance(result, tuple) and len(result) == 2, f"{what} must return a tuple (w, b), got {describe(result)}")
    w, b = result
    check_type(w, _Tensor, f"{what}: w")
    check(tuple(w.shape) == (X.shape[1],), f"{what}: w has shape {list(w.shape)}, expected [{X.shape[1]}] (one weight per feature)")
    check(w.dtype == X.dtype, f"{what}: w has dtype {w.dtype}, expected {X.dtype} (the dtype of X)")
    check(_isinstance(b, float), f"{what}: b is {describe(b)} ({type(b).__name__}); expected a Python float (use float(...) or .item())")
    compare_close(w.detach(), expected_w.to(X.dtype), f"{what}: w", **tol)
    check(math.isclose(b, expected_b, rel_tol=tol.get("rtol", 1e-7), abs_tol=tol.get("atol", 1e-7) * 10),
          f"{what}: b is {b:.8g}, expected {expected_b:.8g}")


def check_lstsq(fn, X, y) -> None:
    what = f"{fn.__name__}(X={describe(X, 4)}, y={describe(y, 4)})"
    result = call(fn, X.clone(), y.clone())
    w, b = lstsq_reference(X, y)
    _check_w_b(result, w, b, X, what, {"rtol": 1e-3, "atol": 1e-4} if X.dtype == torch.float32 else {"rtol": 1e-6, "atol": 1e-8})


def check_gd(fn, X, y, **kwargs) -> None:
    shown = "".join(f", {k}={v!r}" for k, v in kwargs.items())
    what = f"{fn.__name__}(X={describe(X, 4)}, y={describe(y, 4)}{shown})"
    result = call(fn, X.clone(), y.clone(), **kwargs)
    w, b = gd_reference(X, y, **kwargs)
    _check_w_b(result, w, b, X, what, _tol(X.dtype))


# ---------------------------------------------------------------------------
# Mini-batches
# ---------------------------------------------------------------------------

def check_minibatches(fn, n, batch_size, shuffle=None, generator_seed=None, global_seed=None) -> None:
    """``generator_seed``: pass ``torch.Generator().manual_seed(generator_seed)``;
    ``global_seed``: seed the global generator before the call (and the reference)."""
    kwargs = {}
    if shuffle is not None:
        kwargs["shuffle"] = shuffle
    if generator_seed is not None:
        kwargs["generator"] = _Generator().manual_seed(generator_seed)
    shown = "".join(f", {k}={v!r}" if k != "generator" else f", generator=<seeded {generator_seed}>"
                    for k, v in kwargs.items())
    what = f"{fn.__name__}({n}, {batch_size}{shown})"
    if shuffle:
        if global_seed is not None:
            _manual_seed(global_seed)
        gen = None if generator_seed is None else _Generator().manual_seed(generator_seed)
        order = _randperm(n, generator=gen)
    else:
        order = torch.arange(n)
    expected = [chunk for chunk in order.split(batch_size) if chunk.numel()]
    if global_seed is None:
        result = call(fn, n, batch_size, **kwargs)
    else:  # the global generator seeded where fn runs
        result = call_probe("seeded", fn, global_seed, (n, batch_size), kwargs, shown=((n, batch_size), kwargs))
    check_type(result, list, what)
    result = [r for r in result if not (_isinstance(r, _Tensor) and r.numel() == 0 and n == 0)]
    for i, batch in enumerate(result):
        check_type(batch, _Tensor, f"{what}[{i}]")
        check(batch.dtype == torch.int64, f"{what}[{i}] has dtype {batch.dtype}, expected torch.int64 (a LongTensor)")
        check(batch.ndim == 1, f"{what}[{i}] has shape {list(batch.shape)}, expected a 1-D tensor")
    sizes = [len(b) for b in result]
    check(sizes == [len(b) for b in expected],
          f"{what} returned batches of sizes {sizes}, expected {[len(b) for b in expected]}")
    for i, (batch, want) in enumerate(zip(result, expected)):
        check(bool(_equal(batch, want)),
              f"{what}[{i}] is {batch.tolist()}, expected {want.tolist()}"
              + (" (the order of torch.randperm(n, generator=generator))" if shuffle else ""))


# ---------------------------------------------------------------------------
# Optimizers: trajectories against torch's, step by step
# ---------------------------------------------------------------------------

# torch.testing.assert_close's default tolerances, for a quick torch.allclose before the full check.
_DEFAULT_TOL = {torch.float64: {"rtol": 1e-7, "atol": 1e-7}, torch.float32: {"rtol": 1.3e-6, "atol": 1e-5}}


def _problem(seed: int, dtype=torch.float64):
    """Parameters (one left unused: it never gets a gradient) and a smooth, non-convex loss."""
    g = _Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype)

    params = {
        "weight": rand(4, 3), "bias": rand(4, scale=0.5), "scale": rand(4), "offset": rand(1),
        "unused": rand(2, 2), "late": rand(3),
    }
    for p in params.values():
        p.requires_grad_(True)
    X, target = rand(10, 3), rand(10)

    def loss(p, late: bool = False):
        hidden = torch.tanh(X @ p["weight"].T + p["bias"])
        prediction = hidden @ p["scale"] + p["offset"]
        value = ((prediction - target) ** 2).mean() + 0.05 * (p["scale"] ** 2).sum()
        if late:  # the parameter "late" joins the loss (and first gets a gradient) now
            value = value + (torch.sin(p["late"]) * p["late"]).sum() * p["offset"].sum()
        return value

    return params, loss


def _clone(params):
    return {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}


def _arguments(params, groups):
    if groups is None:
        return [p for p in params.values()]
    return [{**{k: v for k, v in grp.items() if k != "params"}, "params": [params[n] for n in grp["params"]]}
            for grp in groups]


def check_own_optimizer(Mine, name: str) -> None:
    """``Mine`` subclasses ``torch.optim.Optimizer`` itself, not one of torch's optimizers."""
    seen = call_probe("optimizer_class", Mine)  # the class lives where the learner's code is
    check(seen.get("subclass") is True, f"{name} must be a subclass of torch.optim.Optimizer")
    borrowed = seen.get("borrowed") or []
    if borrowed:
        module, klass = borrowed[0]
        fail(f"{name} subclasses {module}.{klass}, which already implements the "
             "update: subclass torch.optim.Optimizer itself and write step() yourself")


def check_trajectory(Mine, reference_name: str, hyper: dict, groups=None, steps: int = 50, seed: int = 0,
                     lr_drop_at: int | None = None, late_from: int | None = None,
                     reload_at: int | None = None) -> None:
    """Run the learner's optimizer class ``Mine`` and torch's (``"SGD"`` or ``"Adam"``) on the
    same problem, from the same start, for ``steps`` steps; every parameter must agree after
    every step. ``groups``: parameter groups as ``[{"params": [names], **overrides}]``;
    ``lr_drop_at``: halve every group's ``lr`` (through ``param_groups``) from that step on;
    ``late_from``: the parameter ``late`` first gets a gradient at that step (its own step
    count starts then); ``reload_at``: before that step both optimizers are replaced by new
    ones that ``load_state_dict`` the old ones' ``state_dict()`` (the run must continue the
    same: every piece of state lives in ``self.state[p]``)."""
    Reference = {"SGD": _SGD, "Adam": _Adam}[reference_name]
    start, loss = _problem(seed)
    ref_params = _clone(start)
    setting = ", ".join(f"{k}={v!r}" for k, v in hyper.items())
    if groups is not None:
        shown = [{**{k: v for k, v in grp.items() if k != "params"}, "params": grp["params"]} for grp in groups]
        setting = f"param groups {shown}" + (f", {setting}" if setting else "")
    what = f"{Mine.__name__}({setting})"
    # the learner's optimizer runs where its class is; every parameter after every step comes back
    seen = call_probe("trajectory", Mine, seed, groups, hyper, steps, lr_drop_at, late_from, reload_at)
    check(seen.get("optimizer") is True, f"{what} is not a torch.optim.Optimizer: subclass it")
    trajectory = seen.get("steps") or []
    check(len(trajectory) == steps, f"{what}: expected {steps} steps, got {len(trajectory)}")
    reference = Reference(_arguments(ref_params, groups), **hyper)
    if late_from is not None:
        what += f", parameter 'late' first has a gradient at step {late_from}"
    for step in range(1, steps + 1):
        if lr_drop_at is not None and step == lr_drop_at:
            for group in reference.param_groups:
                group["lr"] = group["lr"] * 0.5
        if reload_at is not None and step == reload_at:
            ref_saved = reference.state_dict()
            reference = Reference(_arguments(ref_params, groups), **hyper)
            reference.load_state_dict(ref_saved)
            what += f", reloaded from state_dict() before step {reload_at}"
        late = late_from is not None and step >= late_from
        reference.zero_grad()
        loss(ref_params, late).backward()
        reference.step()
        mine_params = trajectory[step - 1]
        for name in start:
            mine_p, ref_p = mine_params.get(name), ref_params[name]
            check(_isinstance(mine_p, torch.Tensor), f"{what}: parameter '{name}' is missing after step {step}")
            after = f"after step {step}" + (f" (lr halved through param_groups at step {lr_drop_at})"
                                            if lr_drop_at is not None and step >= lr_drop_at else "")
            if name == "unused" or (name == "late" and late_from is None):
                check(bool(_equal(mine_p.detach(), start[name].detach())),
                      f"{what} changed a parameter that has no gradient (p.grad is None) {after}: skip such parameters")
                continue
            tol = _DEFAULT_TOL.get(ref_p.dtype, _DEFAULT_TOL[torch.float64])
            if not (mine_p.shape == ref_p.shape and mine_p.dtype == ref_p.dtype
                    and bool(_allclose(mine_p.detach(), ref_p.detach(), **tol))):
                compare_close(mine_p.detach(), ref_p.detach(),  # the full message
                              f"{what}: parameter '{name}' {list(ref_p.shape)} {after}")


# ---------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------

def _model(seed, task):
    g = _Generator().manual_seed(seed)
    out = 3 if task == "classify" else 1
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, out)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.5)
    X = torch.randn(12, 4, generator=g, dtype=torch.float64)
    if task == "classify":
        y = torch.randint(0, 3, (12,), generator=g)
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        y = torch.randn(12, 1, generator=g, dtype=torch.float64)
        loss_fn = torch.nn.MSELoss()
    return model, X, y, loss_fn


def check_fit(fn, optimizer: str = "sgd", steps: int = 10, task: str = "regress", stale_grads: bool = False,
              seed: int = 0) -> None:
    """``fn(model, X, y, opt, loss_fn, steps)`` must follow the standard loop exactly: same
    losses (one Python float per step, before the step) and same final parameters as the
    reference. ``stale_grads``: the model's parameters hold old gradients before the call."""
    ref_model, X, y, loss_fn = _model(seed, task)
    make = _optimizer_maker(optimizer)
    if stale_grads:
        g = _Generator().manual_seed(seed + 1)
        for p in ref_model.parameters():
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * 3
    ref_opt = make(ref_model.parameters())
    expected = []
    for _ in range(steps):
        ref_opt.zero_grad()
        loss = loss_fn(ref_model(X), y)
        loss.backward()
        ref_opt.step()
        expected.append(loss.item())
    what = (f"{fn.__name__}(model, X {list(X.shape)}, y {list(y.shape)}, {type(ref_opt).__name__}, "
            f"{type(loss_fn).__name__}(), steps={steps})" + (" with stale gradients left in the model" if stale_grads else ""))
    # the learner's loop runs where its code is, on the same model, data and optimizer
    losses, params = call_probe("fit", fn, optimizer, steps, task, stale_grads, seed)
    check_type(losses, list, what)
    check(len(losses) == steps, f"{what} returned {len(losses)} losses, expected {steps} (one per step)")
    for i, value in enumerate(losses):
        check(_isinstance(value, float),
              f"{what}: loss {i} is {describe(value)} ({type(value).__name__}); expected a Python float (use loss.item())")
    for i, (value, want) in enumerate(zip(losses, expected)):
        check(math.isclose(value, want, rel_tol=1e-7, abs_tol=1e-9),
              f"{what}: loss at step {i} is {value:.8g}, expected {want:.8g}"
              + (" (did you zero the gradients before each backward?)" if i else
                 " (the loss before the first update)"))
    for name, ref_p in ref_model.named_parameters():
        compare_close(params.get(name), ref_p.detach(), f"{what}: parameter {name} after the last step")


def _optimizer_maker(optimizer: str):
    return {"sgd": lambda ps: _SGD(ps, lr=0.1, momentum=0.9),
            "plain_sgd": lambda ps: _SGD(ps, lr=0.05),
            "adam": lambda ps: _Adam(ps, lr=0.01)}[optimizer]


# ---------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------

def schedule_reference(step, total_steps, base_lr, warmup_steps, min_lr=0.0) -> float:
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return float(min_lr)
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


def check_schedule(fn, step, total_steps, base_lr, warmup_steps, min_lr=None) -> None:
    kwargs = {} if min_lr is None else {"min_lr": min_lr}
    shown = f", min_lr={min_lr!r}" if min_lr is not None else ""
    what = f"{fn.__name__}({step}, total_steps={total_steps}, base_lr={base_lr!r}, warmup_steps={warmup_steps}{shown})"
    expected = schedule_reference(step, total_steps, base_lr, warmup_steps, 0.0 if min_lr is None else min_lr)
    result = call(fn, step, total_steps, base_lr, warmup_steps, **kwargs)
    check(_isinstance(result, float) or (_isinstance(result, int) and not _isinstance(result, bool)),
          f"{what} returned {describe(result)} ({type(result).__name__}); expected a Python float")
    phase = ("warm-up" if step < warmup_steps else "after total_steps" if step > total_steps else "cosine")
    check(math.isclose(float(result), expected, rel_tol=1e-9, abs_tol=1e-12),
          f"{what} returned {float(result):.10g}, expected {expected:.10g} ({phase} phase)")


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
