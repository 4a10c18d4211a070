"""Probes: fixed pieces of course code that run where the learner's objects live.

Some points of a lesson can only be observed in the process that holds the learner's
objects: whether a tensor shares memory with an array, what autograd computes through
the learner's code, what an optimizer does to parameters. A probe does that
observation and returns plain data; the tester judges the data. Probes are not secret
(they are public course code, and they hold no expected values): a learner who
tampers with one in their own process changes only the data it returns.
"""

from __future__ import annotations


def numpy_views(fn, a):
    """``fn(a)``, then whether its two tensors follow a change of ``a``'s first element:
    (result, shared's first element after, copied's first element after, the new value, the old value)."""
    import numpy as np

    result = fn(a)
    if a.size == 0 or not (isinstance(result, tuple) and len(result) == 2):
        return result, None, None, None, None
    shared, copied = result
    before = a.flat[0].item()
    a.flat[0] = (not before) if a.dtype == np.bool_ else before + 7
    changed = a.flat[0].item()  # as stored in the array's dtype
    try:
        got = tuple(t.reshape(-1)[0].item() for t in (shared, copied))
    except Exception:  # noqa: BLE001 - not tensors: the tester says so from the result
        got = (None, None)
    finally:
        a.flat[0] = before
    return result, got[0], got[1], changed, before


def vjp(fn, args, kwargs, wrt, upstream, materialize=False):
    """``fn(*args, **kwargs)`` with the arguments named in ``wrt`` (positions, or keyword
    names) as fresh leaves that require grad (strides kept); then the vector-Jacobian
    product with ``upstream`` (``None``: the gradient of ``out.sum()``).

    Returns ``(out, connected, grads, after)``: ``connected`` whether ``out`` is a tensor in
    the leaves' graph, ``grads`` one gradient per leaf (``None`` where none reaches it; all
    ``None`` when ``out`` is not connected or its shape is not ``upstream``'s) and ``after``
    the positional arguments as they are after the call (an in-place change shows there)."""
    import torch

    call_args, call_kwargs, leaves = _thawed(list(args)), dict(kwargs), []
    for key in wrt:
        path = list(key) if isinstance(key, tuple) else [key]  # (1, 0, 1): args[1][0][1]
        holder = call_args if isinstance(path[0], int) else call_kwargs
        for step in path[:-1]:
            holder = holder[step]
        if isinstance(holder[path[-1]], torch.Tensor):
            holder[path[-1]] = holder[path[-1]].detach().clone().requires_grad_(True)
            leaves.append(holder[path[-1]])
    out = fn(*_frozen(call_args), **call_kwargs)
    connected = type(out) is torch.Tensor and out.requires_grad and bool(leaves)
    grads = [None] * len(leaves)
    if connected and (upstream is None or tuple(upstream.shape) == tuple(out.shape)):
        target, vector = (out.sum(), None) if upstream is None else (out, upstream.to(out.dtype))
        grads = list(torch.autograd.grad(target, leaves, vector, allow_unused=True, materialize_grads=materialize))
    after = [a.detach() if isinstance(a, torch.Tensor) else a for a in call_args]
    return out, connected, grads, _frozen(after)


def _thawed(value):
    """Tuples made lists, so that a leaf can be put in their place (``_frozen`` undoes it)."""
    if isinstance(value, (list, tuple)):
        return _Thawed(_thawed(v) for v in value) if isinstance(value, tuple) else [_thawed(v) for v in value]
    return value


class _Thawed(list):
    pass


def _frozen(value):
    if isinstance(value, list):
        items = [_frozen(v) for v in value]
        return tuple(items) if isinstance(value, _Thawed) else items
    return value


def with_devices(fn, args, cuda, mps, current):
    """``fn(*args)`` while ``torch`` reports the given accelerators (``course.checks.devices``)."""
    from course.checks.devices import fake_accelerators

    with fake_accelerators(cuda=cuda, mps=mps, current=current):
        return fn(*args)


def moved(fn, obj, device):
    """``fn(obj, device)`` described (``course.checks.setup.shape_of``); the paths (``""``,
    ``"[1]"``, ``"['x']"``) where the result is the very object the input holds there; and
    whether the input (modules' parameters included) is as it was."""
    from course.checks.setup import _snapshot, shape_of

    before = _snapshot(obj)
    result = fn(obj, device)
    same = []

    def walk(r, o, path):
        if r is o:
            same.append(path)
        if isinstance(o, dict) and isinstance(r, dict):
            for key in o:
                if key in r:
                    walk(r[key], o[key], f"{path}[{key!r}]")
        elif isinstance(o, (list, tuple)) and isinstance(r, (list, tuple)):
            for i, (a, b) in enumerate(zip(r, o)):
                walk(a, b, f"{path}[{i}]")

    walk(result, obj, "")
    return shape_of(result), same, _snapshot(obj) == before


def sealed(fn, module, *args):
    """``fn(copy_of_module, *args)`` with the copy's forward refused: ``("ran", None)`` if ``fn``
    ran the layer, else ``("returned", result)``."""
    import copy

    class NotRun(BaseException):
        pass

    def refuse(*a, **k):
        raise NotRun()

    copied = copy.deepcopy(module)
    copied.forward = refuse
    copied._conv_forward = refuse
    try:
        return "returned", fn(copied, *args)
    except NotRun:
        return "ran", None


def calls_of(fn, name, args, kwargs):
    """``fn(*args, **kwargs)`` while the notebook's global ``name`` is watched: (result, how many
    times it was called, whether the notebook defines it)."""
    namespace = getattr(fn, "__globals__", {})
    own = namespace.get(name)
    if not callable(own):
        return None, 0, False
    calls = []

    def watched(*a, **k):
        calls.append(1)
        return own(*a, **k)

    namespace[name] = watched
    try:
        result = fn(*args, **kwargs)
    finally:
        namespace[name] = own
    return result, len(calls), True


def small_cnn(cls, inputs, eval_input):
    """What ``check_small_cnn`` needs to see of ``cls()``: whether it is a module, its
    ``nn.Conv2d`` count, parameter count (after a first call, for lazy layers), its outputs on
    ``inputs`` (training mode), whether a gradient reaches a convolution's weight from the
    last output, and its output on ``eval_input`` in eval mode."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = cls()
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    seen = {"module": True, "convs": len(convs)}
    if not convs:
        return seen
    model(inputs[0])  # lazy layers (nn.LazyLinear) get their sizes here
    seen["parameters"] = sum(p.numel() for p in model.parameters())
    outputs = [model(x) for x in inputs[1:]]
    last = outputs[-1]
    if isinstance(last, torch.Tensor) and last.requires_grad:
        last.square().sum().backward()
    seen["conv_grad"] = any(c.weight.grad is not None and bool(c.weight.grad.abs().sum() > 0) for c in convs)
    seen["outputs"] = [o.detach() if isinstance(o, torch.Tensor) else o for o in outputs]
    model.eval()
    out = model(eval_input)
    seen["eval"] = out.detach() if isinstance(out, torch.Tensor) else out
    return seen


def collapse(fn, layers, x):
    """``fn(layers)``: whether it is one ``nn.Linear``, its sizes, and its output on ``x``."""
    import torch
    from torch import nn

    result = fn(layers)
    if not isinstance(result, nn.Linear):
        return {"linear": False, "type": type(result).__name__}
    with torch.no_grad():
        y = result(x.to(result.weight.dtype) if x.dtype != result.weight.dtype else x)
    return {"linear": True, "in": result.in_features, "out": result.out_features, "y": y}


def linear_layer(Linear, in_features, out_features, bias, state, x, g, dtype):
    """A learner's ``Linear``: its parameter shapes; loaded with ``state`` in ``dtype``, its output
    on ``x`` and the gradients of ``(output * g).sum()`` (parameters and input)."""
    import torch
    from torch import nn

    layer = Linear(in_features, out_features, bias=bias)
    if not isinstance(layer, nn.Module):
        return {"module": False, "type": type(layer).__name__}
    seen = {"module": True, "shapes": {k: tuple(p.shape) for k, p in layer.named_parameters()}}
    layer = layer.to(dtype)
    try:
        layer.load_state_dict(state)
    except Exception as error:  # noqa: BLE001 - reported by the tester
        seen["load_error"] = f"{type(error).__name__}: {error}"
        return seen
    leaf = x.clone().requires_grad_(True)
    out = layer(leaf)
    seen["out"] = out.detach() if isinstance(out, torch.Tensor) else out
    if isinstance(out, torch.Tensor) and out.requires_grad and out.shape == g.shape:
        (out * g).sum().backward()
    seen["grads"] = {name: p.grad for name, p in layer.named_parameters()}
    seen["x_grad"] = leaf.grad
    return seen


def linear_init(Linear, seed, in_features, out_features):
    """A learner's ``Linear`` made after ``torch.manual_seed(seed)``: for ``weight`` and ``bias``,
    (is an ``nn.Parameter``, its values, requires grad)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    layer = Linear(in_features, out_features)
    seen = {}
    for name in ("weight", "bias"):
        p = getattr(layer, name, None)
        seen[name] = (isinstance(p, nn.Parameter), p.detach() if isinstance(p, torch.Tensor) else None,
                      bool(getattr(p, "requires_grad", False)))
    return seen


def mlp(MLP, args, kwargs, x, act_type):
    """A learner's ``MLP``: whether ``.layers`` is an ``nn.Sequential``; for each of its modules
    (kind, sizes or whether it is ``act_type``, weights); its output on ``x``."""
    import torch
    from torch import nn

    model = MLP(*args, **kwargs)
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    layers = getattr(model, "layers", None)
    if not isinstance(layers, nn.Sequential):
        return {"module": True, "sequential": False, "layers": type(layers).__name__}
    described = []
    for m in layers:
        if isinstance(m, nn.Linear):
            described.append(("Linear", m.in_features, m.out_features, m.weight.detach(),
                              None if m.bias is None else m.bias.detach()))
        else:
            described.append((type(m).__name__, type(m) is act_type, None, None, None))
    with torch.no_grad():
        out = model(x)
    return {"module": True, "sequential": True, "layers": described,
            "out": out.detach() if isinstance(out, torch.Tensor) else out}


def xor(fn, seed, kwargs, inputs):
    """``fn(**kwargs)`` after ``torch.manual_seed(seed)``, trained on one thread; the model's
    logits on each of ``inputs``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors train several times faster on one thread of a busy machine
    try:
        model = fn(**kwargs)
    finally:
        torch.set_num_threads(threads)
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    with torch.no_grad():
        return {"module": True, "logits": [model(x) for x in inputs]}


def seeded(fn, seed, args, kwargs):
    """``fn(*args, **kwargs)`` right after ``torch.manual_seed(seed)`` (the global generator is
    the learner process's)."""
    import torch

    torch.manual_seed(seed)
    return fn(*args, **kwargs)


def optimizer_class(Mine):
    """Whether ``Mine`` is a class that subclasses ``torch.optim.Optimizer``, and the classes of
    torch's own it inherits from besides (module, name)."""
    import torch

    if not (isinstance(Mine, type) and issubclass(Mine, torch.optim.Optimizer)):
        return {"subclass": False}
    borrowed = [(k.__module__, k.__name__) for k in Mine.__mro__[1:]
                if k is not torch.optim.Optimizer and k is not object and str(getattr(k, "__module__", "")).startswith("torch.")]
    return {"subclass": True, "borrowed": borrowed}


def trajectory(Mine, seed, groups, hyper, steps, lr_drop_at, late_from, reload_at):
    """The learner's optimizer ``Mine`` on ``course.checks.optim``'s problem: whether it is an
    ``Optimizer``, and every parameter after every step (a list of dicts)."""
    import torch

    from course.checks.optim import _arguments, _clone, _problem

    start, loss = _problem(seed)
    params = _clone(start)
    optimizer = Mine(_arguments(params, groups), **hyper)
    if not isinstance(optimizer, torch.optim.Optimizer):
        return {"optimizer": False, "steps": []}
    after = []
    for step in range(1, steps + 1):
        if lr_drop_at is not None and step == lr_drop_at:
            for group in optimizer.param_groups:
                group["lr"] = group["lr"] * 0.5
        if reload_at is not None and step == reload_at:
            saved = optimizer.state_dict()
            optimizer = Mine(_arguments(params, groups), **hyper)
            optimizer.load_state_dict(saved)
        optimizer.zero_grad()
        loss(params, late_from is not None and step >= late_from).backward()
        optimizer.step()
        after.append({name: p.detach().clone() for name, p in params.items()})
    return {"optimizer": True, "steps": after}


def fit(fn, optimizer, steps, task, stale_grads, seed):
    """``fn(model, X, y, opt, loss_fn, steps)`` on ``course.checks.optim``'s problem: the losses
    it returns and the model's parameters after it."""
    import torch

    from course.checks.optim import _model, _optimizer_maker

    model, X, y, loss_fn = _model(seed, task)
    if stale_grads:
        g = torch.Generator().manual_seed(seed + 1)
        for p in model.parameters():
            p.grad = torch.randn(p.shape, generator=g, dtype=p.dtype) * 3
    opt = _optimizer_maker(optimizer)(model.parameters())
    losses = fn(model, X, y, opt, loss_fn, steps)
    return losses, {name: p.detach() for name, p in model.named_parameters()}


# -- 02_autograd -------------------------------------------------------------------------------

def elementwise(fn, f, x, preset):
    """``fn(f, x)`` with ``x.grad`` set to ``preset`` first (``None``: left unset): the result
    and ``x.grad`` after the call."""
    if preset is not None:
        x.grad = preset
    result = fn(f, x)
    return result, (None if x.grad is None else x.grad.detach().clone())


def spied(fn, x0):
    """``fn(f, x0)`` with ``f(x) = x ** 2`` recording each input: [(dtype, requires_grad, ndim)]."""
    from course.checks.autograd import Fn

    seen = []

    def spy(x):
        seen.append((str(x.dtype), bool(x.requires_grad), x.ndim))
        return x ** 2

    fn(Fn("x ** 2 (which records its input)", spy), x0)
    return seen


def counted(fn, f, *args):
    """``fn(f, *args)`` and, for each call of ``f`` (an ``Fn``), whether its argument was a leaf
    that requires grad."""
    result = fn(f, *args)
    return result, list(getattr(f, "inputs", []))


def function_apply(cls, x, grad_out):
    """``cls.apply`` on a leaf copy of ``x``: output, whether it is in the graph, and the gradient
    for ``grad_out`` (or the error backward raised)."""
    import torch

    apply = getattr(cls, "apply", None)
    if apply is None:
        return {"apply": False}
    leaf = x.detach().clone().requires_grad_(True)
    out = apply(leaf)
    seen = {"apply": True, "out": out.detach() if isinstance(out, torch.Tensor) else out,
            "connected": isinstance(out, torch.Tensor) and out.requires_grad and out.grad_fn is not None}
    if seen["connected"]:
        try:
            (seen["grad"],) = torch.autograd.grad(out, leaf, grad_out.to(out.dtype) if out.shape == grad_out.shape else grad_out)
        except Exception as error:  # noqa: BLE001 - reported by the tester
            seen["grad_error"] = f"{type(error).__name__}: {error}"
    return seen


def function_jacobians(cls, x, eps):
    """For ``cls.apply`` at float64 ``x``: the Jacobian its backward gives (one row per output
    element) and the forward at ``x ± eps`` along each input element (for a numerical one)."""
    import torch

    leaf = x.detach().to(torch.float64).requires_grad_(True)
    out = cls.apply(leaf)
    if not (isinstance(out, torch.Tensor) and out.requires_grad):
        return {"connected": False}
    rows = []
    flat = out.reshape(-1)
    for i in range(flat.numel()):
        (g,) = torch.autograd.grad(flat[i], leaf, retain_graph=True, allow_unused=True, materialize_grads=True)
        rows.append(g.reshape(-1))
    plus, minus = [], []
    with torch.no_grad():
        for j in range(leaf.numel()):
            step = torch.zeros_like(leaf).reshape(-1)
            step[j] = eps
            plus.append(cls.apply(leaf.detach() + step.reshape(leaf.shape)).reshape(-1))
            minus.append(cls.apply(leaf.detach() - step.reshape(leaf.shape)).reshape(-1))
    return {"connected": True, "analytical": torch.stack(rows) if rows else torch.zeros(0, leaf.numel()),
            "plus": plus, "minus": minus}


def saved_output(cls, x):
    """``cls.apply`` on a leaf copy of ``x``: its output and every tensor its backward node saved."""
    import torch

    leaf = x.detach().clone().requires_grad_(True)
    out = cls.apply(leaf)
    ctx = getattr(out, "grad_fn", None)
    saved = list(getattr(ctx, "saved_tensors", ()) or ())
    saved += [v for v in vars(ctx).values() if isinstance(v, torch.Tensor)] if hasattr(ctx, "__dict__") else []
    return out.detach() if isinstance(out, torch.Tensor) else out, [t.detach() for t in saved]


def ste_chain(cls, w):
    """The gradient w.r.t. ``w`` of ``sum(cls.apply(3 * w) ** 2)``: a learner's Function inside a
    longer graph."""
    leaf = w.detach().clone().requires_grad_(True)
    loss = (cls.apply(leaf * 3) ** 2).sum()
    loss.backward()
    return leaf.grad


def value_code(Value, code, output):
    """``code`` run with the learner's ``Value`` for its leaves, then ``output.backward()``: for
    each name, (is a Value, data, grad); or what went wrong."""
    from course.checks.autograd import _raising_method, _run

    try:
        namespace = _run(code, Value)  # the course's expressions, in the learner's process
        node = namespace.get(output)
        if not isinstance(node, Value):
            return {"error": "type", "output": type(node).__name__}
        node.backward()
    except NotImplementedError as error:
        return {"error": "stub", "message": str(error), "method": _raising_method(error, Value)}
    except Exception as error:  # noqa: BLE001 - reported by the tester
        return {"error": "raised", "message": f"{type(error).__name__}: {error}"}
    nodes = {}
    for name, node in namespace.items():
        ok = isinstance(node, Value)
        nodes[name] = (ok, getattr(node, "data", None) if ok else type(node).__name__, getattr(node, "grad", None) if ok else None)
    return {"nodes": nodes}


def dynamic(fn, x, w, kwargs):
    """``fn(x, w, **kwargs)`` on leaf copies; then ``y.sum().backward()``: (result as returned,
    whether y has a grad_fn, x.grad, w.grad)."""
    import torch

    lx = x.detach().clone().requires_grad_(True)
    lw = w.detach().clone().requires_grad_(True) if isinstance(w, torch.Tensor) else w
    result = fn(lx, lw, **kwargs)
    y = result[0] if isinstance(result, tuple) and len(result) == 2 else None
    connected = isinstance(y, torch.Tensor) and y.grad_fn is not None
    if connected:
        y.sum().backward()
    plain = tuple(r.detach() if isinstance(r, torch.Tensor) else r for r in result) if isinstance(result, tuple) else result
    return plain, connected, lx.grad, (lw.grad if isinstance(lw, torch.Tensor) else None)


def no_grad_forward(fn, model, x):
    """``fn(model, x)`` watched: grad mode at each forward of ``model``, whether autograd saved any
    tensor for backward, grad mode after, the output and its graph, the parameters' flags before
    and after."""
    import torch

    flags = [(name, p.requires_grad) for name, p in model.named_parameters()]
    seen, saved = [], []
    hook = model.register_forward_pre_hook(lambda module, args: seen.append(torch.is_grad_enabled()))

    def pack(t):  # autograd saves tensors for backward only while it builds a graph
        saved.append(1)
        return t

    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            result = fn(model, x)
    finally:
        hook.remove()
    enabled = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    is_tensor = isinstance(result, torch.Tensor)
    return {"seen": seen, "saved": len(saved), "enabled": enabled,
            "result": result.detach() if is_tensor else result,
            "grad_fn": repr(result.grad_fn) if is_tensor and result.grad_fn is not None else None,
            "requires_grad": bool(is_tensor and result.requires_grad),
            "flags": flags, "flags_after": [(name, p.requires_grad) for name, p in model.named_parameters()]}


# -- 08_training, 09_autoencoders --------------------------------------------------------------

def rng_kept(fn, args, kwargs):
    """``fn(*args, **kwargs)`` (make_loaders), then a pass over its first loader: which global random
    generators each step changed, and whether ``fn`` returned a pair."""
    from course.checks.training import _global_states, _same_states

    before = _global_states()
    result = fn(*args, **kwargs)
    on_call = _same_states(before, _global_states())
    pair = isinstance(result, tuple) and len(result) == 2
    on_pass = []
    if pair:
        before = _global_states()
        for _ in result[0]:
            pass
        on_pass = _same_states(before, _global_states())
    return list(on_call), pair, list(on_pass)


def one_epoch(fn, make_model, x, y, batch_size, loss_fn, make_optimizer, device):
    """``fn`` trains a fresh ``make_model()`` (left in eval mode) for one epoch: what it returned,
    the modes the model ran in, and its parameters after."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from course.checks.training import probe_of

    model = make_model()
    model.eval()  # the function must switch it to train mode itself
    optimizer = make_optimizer(model)
    torch.manual_seed(1)
    result = fn(model, DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False), loss_fn, optimizer,
                device=device)
    return result, list(probe_of(model).calls), {name: p.detach() for name, p in model.named_parameters()}


def evaluated(fn, make_model, x, y, batch_size, device, train_mode_first):
    """``fn`` evaluates a fresh ``make_model()``: what it returned and the (training, grad) modes."""
    from torch.utils.data import DataLoader, TensorDataset

    from course.checks.training import probe_of

    model = make_model()
    if train_mode_first:
        model.train()
    result = fn(model, DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False), device=device)
    return result, list(probe_of(model).calls)


def built(factory, seed, inputs, twice=False):
    """``factory()`` after ``torch.manual_seed(seed)``: whether it is a module, its parameter
    count, its eval-mode outputs on ``inputs``; with ``twice``, whether a second call built a
    new module."""
    import torch
    from torch import nn

    from course.checks.training import count_parameters

    torch.manual_seed(seed)
    model = factory()
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    seen = {"module": True, "parameters": count_parameters(model)}
    if twice:
        seen["fresh"] = factory() is not model
    model.eval()
    with torch.no_grad():
        seen["outputs"] = [model(x) for x in inputs]
    return seen


def learns(factory, seed, x, y, steps):
    """``factory()`` trained by Adam (lr 1e-3) on ``(x, y)`` for ``steps`` steps: the losses, or
    where it stopped."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    model = factory()
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    losses = []
    for _ in range(steps + 1):
        out = model(x)
        if not (isinstance(out, torch.Tensor) and tuple(out.shape) == (len(x), 10)):
            return {"module": True, "bad_output": out.detach() if isinstance(out, torch.Tensor) else out, "losses": losses}
        loss = F.cross_entropy(out, y)
        losses.append(loss.item())
        if len(losses) > steps:
            break
        optimizer.zero_grad()
        try:
            loss.backward()
        except RuntimeError as error:
            return {"module": True, "backward": str(error), "losses": losses}
        optimizer.step()
    return {"module": True, "losses": losses}


def autoencoder(cls, kwargs, seed, x, z=None, train=False):
    """A learner's autoencoder ``cls(**kwargs)`` after ``torch.manual_seed(seed)``. Eval mode:
    ``encode(x)`` and ``decode`` of it with the kinds of convolution each ran, ``forward(x)``,
    and ``decode(z)`` for a given ``z``. With ``train``: whether the MSE of ``forward(x)``
    reaches every ``nn.Conv2d`` weight."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.manual_seed(seed)
    model = cls(**kwargs)
    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    seen = {"module": True}
    if train:
        model.train()
        out = model(x)
        seen["out"] = out.detach() if isinstance(out, torch.Tensor) else out
        if isinstance(out, torch.Tensor) and out.shape == x.shape:
            F.mse_loss(out, x).backward()
        convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        seen["reached"] = bool(convs) and all(m.weight.grad is not None and bool(m.weight.grad.abs().sum() > 0)
                                              for m in convs)
        return seen
    model.eval()

    def watched(method, *args):
        kinds = []
        hooks = [m.register_forward_hook(lambda m, i, o, kind=type(m).__name__: kinds.append(kind))
                 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
        try:
            return method(*args), kinds
        finally:
            for h in hooks:
                h.remove()

    with torch.no_grad():
        if z is not None:
            seen["decoded"] = model.decode(z)
            return seen
        code, seen["encode_convs"] = watched(model.encode, x)
        seen["code"] = code
        if isinstance(code, torch.Tensor):
            seen["decoded"], seen["decode_convs"] = watched(model.decode, code)
            seen["forward"] = model(x)
    return seen


def budget():
    """The training clock of ``course.checks.training`` as this process kept it, and how many
    times the held-out split was loaded here."""
    from course import data
    from course.checks.training import training_clock

    training_clock.exclude_current_cell()
    cpu, wall = training_clock.seconds()
    return {"started": training_clock.started, "cpu": cpu, "wall": wall,
            "interrupted": training_clock.interrupted(), "heldout_loads": data.heldout_loads()}


def outputs_of(model, batches, method="forward"):
    """A trained model's outputs, in eval mode and without a graph, on each of ``batches``
    (``method``: ``"forward"``, or ``"reconstruct"`` for ``decode(encode(x))``)."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    out = []
    with torch.no_grad():
        for x in batches:
            x = x.to(device)
            y = model.decode(model.encode(x)) if method == "reconstruct" else model(x)
            out.append(y.cpu() if isinstance(y, torch.Tensor) else y)
    return {"module": True, "outputs": out}


def interface(model, x):
    """An autoencoder's ``encode`` and ``decode``: whether both exist, the code of ``x``, and the
    decoding of that code (eval mode, no graph)."""
    import torch
    from torch import nn

    if not isinstance(model, nn.Module):
        return {"module": False, "type": type(model).__name__}
    seen = {"module": True, "methods": [m for m in ("encode", "decode") if callable(getattr(model, m, None))]}
    if len(seen["methods"]) < 2:
        return seen
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    with torch.no_grad():
        z = model.encode(x.to(device))
        seen["code"] = z.cpu() if isinstance(z, torch.Tensor) else z
        if isinstance(z, torch.Tensor):
            out = model.decode(z)
            seen["decoded"] = out.cpu() if isinstance(out, torch.Tensor) else out
    return seen


PROBES = {"rng_kept": rng_kept, "one_epoch": one_epoch, "evaluated": evaluated, "built": built, "learns": learns,
          "autoencoder": autoencoder, "budget": budget, "outputs_of": outputs_of, "interface": interface,
          "spied": spied, "elementwise": elementwise, "counted": counted, "function_apply": function_apply,
          "function_jacobians": function_jacobians, "saved_output": saved_output, "ste_chain": ste_chain,
          "value_code": value_code, "dynamic": dynamic, "no_grad_forward": no_grad_forward,
          "seeded": seeded, "optimizer_class": optimizer_class, "trajectory": trajectory, "fit": fit,
          "collapse": collapse, "linear_layer": linear_layer, "linear_init": linear_init, "mlp": mlp, "xor": xor,
          "sealed": sealed, "calls_of": calls_of, "small_cnn": small_cnn, "numpy_views": numpy_views, "vjp": vjp, "with_devices": with_devices, "moved": moved}
