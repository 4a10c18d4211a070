"""Checks for 08_training and 09_autoencoders: datasets, loops, and the training cells.

The training cells are graded on what a trained model does on the held-out MNIST
images (``course.data``), which the learner's cells never load: the grader loads
them here. Three things are checked before any band:

- the notebook never called ``load_mnist("heldout")`` (training or tuning on the
  images that measure you makes the measurement meaningless);
- the training took at most ``BUDGET_CPU_SECONDS`` of CPU time, measured by
  ``training_clock`` over the cells run after it starts (CPU time, not wall time:
  a grading machine busy with other work does not count against the learner);
- the model has the promised interface (``[N,1,28,28]`` → ``[N,10]`` logits; an
  autoencoder's code has at most ``MAX_LATENT`` numbers per image).
"""

from __future__ import annotations

import hashlib
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from course.checks.compare import call, call_probe, check, check_type, compare_close, describe, fail

_isinstance = isinstance
_process_time = time.process_time
_perf_counter = time.perf_counter
_cross_entropy = F.cross_entropy
_mse_loss = F.mse_loss
_Module = nn.Module
_Adam = torch.optim.Adam

# What the notebooks promise (they state these numbers).
BUDGET_CPU_SECONDS = 60.0
ACCURACY_BANDS = (0.90, 0.95)  # test_train_model: >= 0.90; test_train_model_2: >= 0.95
MSE_BANDS = (0.035, 0.020)  # test_train_autoencoder: <= 0.035; test_train_autoencoder_2: <= 0.020
MAX_LATENT = 32
CIFAR_MAX_PARAMETERS = 2_000_000

DATASET_FACTS = {
    "mnist": {"num_classes": 10, "train_size": 60000, "test_size": 10000, "image_shape": (1, 28, 28)},
    "fashion-mnist": {"num_classes": 10, "train_size": 60000, "test_size": 10000, "image_shape": (1, 28, 28)},
    "cifar10": {"num_classes": 10, "train_size": 50000, "test_size": 10000, "image_shape": (3, 32, 32)},
    "cifar100": {"num_classes": 100, "train_size": 50000, "test_size": 10000, "image_shape": (3, 32, 32)},
}


def _shape(x) -> str:
    return f"{str(x.dtype).removeprefix('torch.')}{list(x.shape)}"


# ----------------------------------------------------------------------------- dataset_facts


def check_dataset_facts(fn, name: str) -> None:
    what = f"{fn.__name__}({name!r})"
    result = call(fn, name)
    check_type(result, dict, what)
    for key, value in DATASET_FACTS[name].items():
        check(key in result, f"{what} has no key {key!r} (keys: {sorted(result)})")
        got = result[key]
        if key == "image_shape":
            ok = _isinstance(got, tuple) and tuple(got) == value
            check(ok, f"{what}['image_shape'] is {got!r}; expected the tuple {value} (channels, height, width)")
        else:
            ok = _isinstance(got, int) and not _isinstance(got, bool) and got == value
            check(ok, f"{what}[{key!r}] is {got!r}; expected the int {value}")


# ----------------------------------------------------------------------------- standardize


def standardize_reference(train_x, test_x):
    dims = (0, 2, 3) if train_x.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if train_x.ndim == 4 else (1, -1)
    mean = train_x.mean(dim=dims)
    std = train_x.std(dim=dims, correction=0)
    std = torch.where(std == 0, torch.ones_like(std), std)
    return (train_x - mean.view(shape)) / std.view(shape), (test_x - mean.view(shape)) / std.view(shape), mean, std


def check_standardize(fn, train_x, test_x) -> None:
    what = f"{fn.__name__}({describe(train_x, 3)}, {describe(test_x, 3)})"
    before = (train_x.clone(), test_x.clone())
    result = call(fn, train_x, test_x)
    check(_isinstance(result, tuple) and len(result) == 4,
          f"{what} must return a tuple (train_z, test_z, mean, std), got {describe(result)}")
    check(torch.equal(train_x, before[0]) and torch.equal(test_x, before[1]),
          f"{what} changed its inputs in place: return new tensors and leave train_x, test_x as they were")
    expected = standardize_reference(before[0], before[1])
    for name, got, want in zip(("train_z", "test_z", "mean", "std"), result, expected):
        compare_close(got, want, f"{what}: {name}")


# ----------------------------------------------------------------------------- make_loaders


def _identified(n: int, feature_shape=(3,), dtype=torch.float32):
    """``x[i]`` is filled with ``i`` (so a sample names itself), ``y[i] = 1000 + i``."""
    x = torch.arange(n, dtype=dtype).view(n, *([1] * len(feature_shape))).expand(n, *feature_shape).contiguous()
    return x, torch.arange(n) + 1000


def _collect(loader, what: str, x_shape, dtype):
    """Sample ids in the order ``loader`` yields them, and the batch sizes."""
    try:
        batches = list(loader)
    except Exception as error:
        fail(f"{what}: iterating over it raised {type(error).__name__}: {error}")
    ids, sizes = [], []
    for batch in batches:
        check(_isinstance(batch, (list, tuple)) and len(batch) == 2,
              f"{what} must yield (inputs, labels) pairs, yielded {describe(batch)}")
        xb, yb = batch
        check(torch.is_tensor(xb) and torch.is_tensor(yb), f"{what} yielded {describe(batch)}: expected two tensors")
        check(tuple(xb.shape[1:]) == tuple(x_shape) and xb.dtype == dtype,
              f"{what} yielded inputs {describe(xb, 3)}; expected [batch, {', '.join(map(str, x_shape))}] of {dtype}")
        check(yb.shape == xb.shape[:1], f"{what} yielded labels {describe(yb, 3)} for inputs {describe(xb, 3)}")
        batch_ids = xb.reshape(len(xb), -1)[:, 0].long()
        check(torch.equal(yb.long(), batch_ids + 1000),
              f"{what} pairs inputs with the wrong labels (input {batch_ids[:4].tolist()} got labels {yb[:4].tolist()})")
        ids += batch_ids.tolist()
        sizes.append(len(xb))
    return ids, sizes


def check_make_loaders(fn, n: int, batch_size: int, val_fraction=None, seed=None, feature_shape=(3,)) -> None:
    x, y = _identified(n, feature_shape)
    kwargs = {}
    if val_fraction is not None:
        kwargs["val_fraction"] = val_fraction
    if seed is not None:
        kwargs["seed"] = seed
    fraction = 0.1 if val_fraction is None else val_fraction
    what = f"{fn.__name__}(x {list(x.shape)}, y {list(y.shape)}, batch_size={batch_size}" + "".join(
        f", {k}={v}" for k, v in kwargs.items()) + ")"
    result = call(fn, x, y, batch_size, **kwargs)
    check(_isinstance(result, tuple) and len(result) == 2,
          f"{what} must return a pair (train_loader, val_loader), got {describe(result)}")
    train_loader, val_loader = result
    train_ids, train_sizes = _collect(train_loader, f"{what}: the training loader", feature_shape, x.dtype)
    val_ids, _ = _collect(val_loader, f"{what}: the validation loader", feature_shape, x.dtype)
    n_val = round(n * fraction)
    check(len(val_ids) == n_val,
          f"{what}: the validation loader holds {len(val_ids)} samples; expected round({n} * {fraction}) = {n_val}")
    check(len(set(train_ids)) == len(train_ids) and len(set(val_ids)) == len(val_ids),
          f"{what}: a loader yields the same sample twice in one pass")
    both = set(train_ids) & set(val_ids)
    check(not both, f"{what}: samples {sorted(both)[:5]} are in both loaders; the split must be disjoint")
    lost = set(range(n)) - set(train_ids) - set(val_ids)
    check(not lost, f"{what}: samples {sorted(lost)[:5]} are in neither loader ({len(lost)} lost); "
                    "every sample belongs to one of them (no drop_last)")
    wrong = [s for s in train_sizes[:-1] if s != batch_size] + [s for s in train_sizes[-1:] if s > batch_size]
    check(not wrong, f"{what}: the training loader yields batches of {train_sizes[:8]}...; expected batches of "
                     f"{batch_size} (the last one may be shorter)")
    if len(train_ids) >= 20:
        second, _ = _collect(train_loader, f"{what}: the training loader (second pass)", feature_shape, x.dtype)
        check(sorted(second) == sorted(train_ids),
              f"{what}: a second pass over the training loader yields {len(second)} samples, the first {len(train_ids)}; "
              "a loader must give every training sample in every epoch")
        check(second != train_ids,
              f"{what}: the training loader yields the samples in the same order in two passes; it must shuffle")
    # The same seed gives the same split, whatever else used the global random generator.
    torch.rand(7)
    again = call(fn, x, y, batch_size, **kwargs)
    val_again, _ = _collect(again[1], f"{what} (called again)", feature_shape, x.dtype)
    check(sorted(val_again) == sorted(val_ids),
          f"{what}: called twice with the same seed, the validation samples differ "
          f"({sorted(val_ids)[:5]}... then {sorted(val_again)[:5]}...); use the seed, e.g. a torch.Generator")


def _global_states():
    import random

    import numpy as np

    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _same_states(a, b) -> list[str]:
    import numpy as np

    changed = []
    if not torch.equal(a[0], b[0]):
        changed.append("torch's (torch.manual_seed, torch.randperm without a generator, a shuffling loader "
                       "without one)")
    if not (a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]):
        changed.append("NumPy's (np.random.seed, np.random.permutation)")
    if a[2] != b[2]:
        changed.append("Python's random module's")
    return changed


def check_rng_untouched(fn, n: int = 40, batch_size: int = 8, seed: int = 3) -> None:
    """``fn`` (make_loaders) and a pass over its training loader leave the global random
    generators as they were: a split that reseeds them changes every random number the
    learner's program draws afterwards (initialisation, dropout, augmentation)."""
    x, y = _identified(n, (3,))
    what = f"{fn.__name__}(x {list(x.shape)}, y {list(y.shape)}, batch_size={batch_size}, seed={seed})"
    # the global generators that matter are those of the process fn runs in: watched there
    changed, pair, on_pass = call_probe("rng_kept", fn, (x, y, batch_size), {"seed": seed})
    check(not changed, f"{what} changed the global random state: {'; '.join(changed)}. "
                       "Draw the split from a torch.Generator seeded with `seed` instead")
    check(pair is True, f"{what} must return a pair (train_loader, val_loader)")
    changed = on_pass
    check(not changed, f"a pass over the training loader of {what} changed the global random state: "
                       f"{'; '.join(changed)}. Give the shuffling DataLoader a generator "
                       "(DataLoader(..., shuffle=True, generator=torch.Generator().manual_seed(seed)))")


def check_seed_changes_split(fn, n: int = 100) -> None:
    x, y = _identified(n)
    what = f"{fn.__name__}(x {list(x.shape)}, y, batch_size=16, seed=...)"
    splits = []
    for seed in (0, 1):
        _, val = call(fn, x, y, 16, seed=seed)
        ids, _ = _collect(val, f"{what} with seed={seed}: the validation loader", (3,), x.dtype)
        splits.append(sorted(ids))
    check(splits[0] != splits[1], f"{what}: seeds 0 and 1 give the same validation samples {splits[0][:6]}...; "
                                  "the split must be drawn at random from the seed")


# ----------------------------------------------------------------------------- train_one_epoch / evaluate


class ModeProbe(_Module):
    """Passes its input through, recording (training, grad enabled) at every call."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return x


def probe_of(model) -> ModeProbe:
    return next(m for m in model.modules() if _isinstance(m, ModeProbe))


def small_classifier(in_features: int = 6, classes: int = 4, seed: int = 0, dropout: float = 0.0):
    torch.manual_seed(seed)
    layers = [ModeProbe(), nn.Linear(in_features, 16), nn.BatchNorm1d(16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, classes))


def small_regressor(in_features: int = 5, seed: int = 0):
    torch.manual_seed(seed)
    return nn.Sequential(ModeProbe(), nn.Linear(in_features, 8), nn.Tanh(), nn.Linear(8, 1))


def _reference_epoch(model, loader, loss_fn, optimizer):
    model.train()
    total, count = 0.0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(xb), yb)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(xb)
        count += len(xb)
    return total / count


def check_train_one_epoch(fn, make_model, x, y, batch_size, loss_fn, make_optimizer, device="cpu", what_model=""):
    from torch.utils.data import DataLoader, TensorDataset

    def loader():
        return DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)

    reference_model = make_model()
    reference_opt = make_optimizer(reference_model)
    name = what_model or type(reference_model).__name__
    what = (f"{fn.__name__}({name}, DataLoader of {len(x)} samples in batches of {batch_size}, "
            f"{type(loss_fn).__name__}(), {type(reference_opt).__name__}, device={device!r})")
    # the learner's function trains its own copy where its code is; modes and parameters come back
    result, modes, params = call_probe("one_epoch", fn, make_model, x, y, batch_size, loss_fn, make_optimizer, device)
    torch.manual_seed(1)
    expected = _reference_epoch(reference_model, loader(), loss_fn, reference_opt)
    check(_isinstance(result, (int, float)) and not _isinstance(result, bool),
          f"{what} returned {describe(result)}; expected a Python float (use loss.item())")
    check(modes and all(training for training, _ in modes),
          f"{what}: the model ran in eval mode; call model.train() before the loop")
    for pname, want in reference_model.named_parameters():
        compare_close(params.get(pname), want.detach(),
                      f"{what}: parameter {pname!r} after the epoch (one optimizer step per batch, gradients "
                      "zeroed before each backward)")
    compare_close(float(result), expected, f"{what}: the returned loss (the sample-weighted mean of the batch "
                                           "losses: a short last batch weighs less)", rtol=1e-5, atol=1e-6)


def _reference_accuracy(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for xb, yb in loader:
            correct += (model(xb).argmax(dim=1) == yb).sum().item()
            total += len(yb)
    return correct / total


def crafted_labels(make_model, x, batch_size: int, pattern):
    """Labels for ``x`` such that ``make_model()`` (in eval mode) is right on batch ``b`` for the
    samples ``pattern[b]`` says (``True``/``False`` per sample), so per-batch means and the
    overall accuracy differ."""
    model = make_model().eval()
    with torch.no_grad():
        predicted = model(x).argmax(dim=1)
    classes = model(x[:1]).shape[1] if len(x) else 2
    right = torch.tensor([flag for flags in pattern for flag in flags], dtype=torch.bool)
    return torch.where(right, predicted, (predicted + 1) % classes)


def check_evaluate(fn, make_model, x, y, batch_size, device="cpu", train_mode_first=True):
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    what = f"{fn.__name__}(model, DataLoader of {len(x)} samples in batches of {batch_size}, device={device!r})"
    result, modes = call_probe("evaluated", fn, make_model, x, y, batch_size, device, train_mode_first)
    check(_isinstance(result, (int, float)) and not _isinstance(result, bool),
          f"{what} returned {describe(result)}; expected a Python float (an accuracy in [0, 1])")
    check(modes and not any(training for training, _ in modes),
          f"{what}: the model ran in train mode; call model.eval() first (dropout and batch norm behave differently)")
    check(not any(grad for _, grad in modes),
          f"{what}: the forward pass built a graph; wrap it in `with torch.no_grad():`")
    expected = _reference_accuracy(make_model(), loader)
    compare_close(float(result), expected,
                  f"{what}: the accuracy (correct predictions / all samples; argmax over the class dimension)")


# ----------------------------------------------------------------------------- cifar_model


def count_parameters(model) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def pattern_set(classes: int = 10, per_class: int = 2, seed: int = 0):
    """Images ``[classes * per_class, 3, 32, 32]`` in [0, 1]: a fixed random pattern per class plus noise."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.rand(classes, 3, 32, 32, generator=g)
    labels = torch.arange(classes).repeat(per_class)
    noise = torch.rand(len(labels), 3, 32, 32, generator=g)
    return 0.7 * patterns[labels] + 0.3 * noise, labels


def check_cifar_shapes(factory) -> None:
    what = f"{factory.__name__}()"
    inputs = [torch.rand(n, 3, 32, 32) for n in (1, 5)]
    seen = call_probe("built", factory, 0, inputs)  # built and run where the learner's code is
    check(seen.get("module") is True, f"{what} returned a {seen.get('type', '?')}; expected an nn.Module")
    size = seen.get("parameters")
    check(type(size) is int and size <= CIFAR_MAX_PARAMETERS,
          f"{what} has {size:,} parameters; at most {CIFAR_MAX_PARAMETERS:,} are allowed")
    for x, out in zip(inputs, seen.get("outputs") or []):
        n = len(x)
        check(torch.is_tensor(out) and tuple(out.shape) == (n, 10),
              f"{what} maps {_shape(x)} to {describe(out, 3)}; expected logits of shape [{n}, 10]")
        check(bool(torch.isfinite(out).all()), f"{what} returned non-finite logits {describe(out)}")


def check_fresh_models(factory) -> None:
    """Each call of ``factory()`` builds a new module."""
    seen = call_probe("built", factory, 3, [], True)
    check(seen.get("module") is True, f"{factory.__name__}() returned a {seen.get('type', '?')}; expected an nn.Module")
    check(seen.get("fresh") is True,
          f"{factory.__name__}() returned the same module twice; it must build a new one per call")


def check_cifar_learns(factory, steps: int = 25, factor: float = 0.9, seed: int = 0) -> None:
    what = f"{factory.__name__}()"
    x, y = pattern_set(seed=seed)
    seen = call_probe("learns", factory, seed, x, y, steps)  # trained where the learner's code is
    check(seen.get("module") is True, f"{what} returned a {seen.get('type', '?')}; expected an nn.Module")
    if "bad_output" in seen:
        fail(f"{what} maps {_shape(x)} to {describe(seen['bad_output'], 3)}; expected [{len(x)}, 10]")
    if "backward" in seen:
        fail(f"{what}: the loss cannot be backpropagated ({seen['backward']}); does the output depend on "
             "trainable parameters?")
    losses = seen.get("losses") or [math.nan]
    check(math.isfinite(losses[-1]) and losses[-1] < factor * losses[0],
          f"{what}: {steps} Adam steps (lr 1e-3) on {len(x)} images of 10 learnable patterns took the "
          f"cross-entropy from {losses[0]:.3f} to {losses[-1]:.3f}; expected below {factor} x {losses[0]:.3f} = "
          f"{factor * losses[0]:.3f}")


# ----------------------------------------------------------------------------- ConvAutoencoder


def check_autoencoder_shapes(cls, latent_dim=None, batch: int = 3) -> None:
    name = cls.__name__
    what = f"{name}()" if latent_dim is None else f"{name}(latent_dim={latent_dim})"
    d = 32 if latent_dim is None else latent_dim
    x = torch.rand(batch, 1, 28, 28)
    seen = call_probe("autoencoder", cls, {} if latent_dim is None else {"latent_dim": latent_dim}, 0, x)
    check(seen.get("module") is True, f"{what} is not an nn.Module")
    z = seen.get("code")
    check(torch.is_tensor(z) and tuple(z.shape) == (batch, d),
          f"{what}.encode({_shape(x)}) returned {describe(z, 3)}; expected shape [{batch}, {d}]")
    check("Conv2d" in (seen.get("encode_convs") or []), f"{what}.encode ran no nn.Conv2d: the encoder must be convolutional")
    out = seen.get("decoded")
    check(torch.is_tensor(out) and tuple(out.shape) == (batch, 1, 28, 28),
          f"{what}.decode({_shape(z)}) returned {describe(out, 3)}; expected shape [{batch}, 1, 28, 28]")
    check(seen.get("decode_convs"), f"{what}.decode ran no nn.ConvTranspose2d (nor nn.Conv2d): the decoder must be convolutional")
    compare_close(seen.get("forward"), out, f"{what}(x) (forward must be decode(encode(x)))")


def check_decode_range(cls, latent_dim: int = 8, scale: float = 1.0, seed: int = 0) -> None:
    what = f"{cls.__name__}(latent_dim={latent_dim}).decode"
    z = torch.randn(4, latent_dim, generator=torch.Generator().manual_seed(seed)) * scale
    seen = call_probe("autoencoder", cls, {"latent_dim": latent_dim}, seed, None, z)
    check(seen.get("module") is True, f"{cls.__name__}(latent_dim={latent_dim}) is not an nn.Module")
    out = seen.get("decoded")
    check(torch.is_tensor(out) and tuple(out.shape) == (4, 1, 28, 28),
          f"{what}({describe(z, 3)}) returned {describe(out, 3)}; expected [4, 1, 28, 28]")
    bad = ~((out >= 0) & (out <= 1))
    check(not bool(bad.any()),
          f"{what}({describe(z, 3)}) returned values outside [0, 1] (min {out.min().item():.4g}, max "
          f"{out.max().item():.4g}, NaN: {bool(out.isnan().any())}); end the decoder with a sigmoid")


def check_autoencoder_gradients(cls, latent_dim: int = 4) -> None:
    what = f"{cls.__name__}(latent_dim={latent_dim})"
    x = torch.rand(4, 1, 28, 28)
    seen = call_probe("autoencoder", cls, {"latent_dim": latent_dim}, 0, x, None, True)
    check(seen.get("module") is True, f"{what} is not an nn.Module")
    out = seen.get("out")
    check(torch.is_tensor(out) and out.shape == x.shape, f"{what} maps {_shape(x)} to {describe(out, 3)}")
    check(seen.get("reached") is True,
          f"{what}: the reconstruction loss does not reach every nn.Conv2d weight; is the encoder's output "
          "used by the decoder?")


# ----------------------------------------------------------------------------- the training cells


class TrainingClock:
    """CPU seconds spent in the notebook cells run after ``start()`` (each cell counted
    once, its latest run; cells that grade are left out). Outside IPython it falls back
    to the process's CPU time since ``start()``."""

    def __init__(self):
        self.started = False
        self.cells: dict = {}
        self.excluded: set = set()
        self._current = None
        self._hooked = None
        self._start_cpu = 0.0

    @staticmethod
    def _key(info):
        cell_id = getattr(info, "cell_id", None)
        raw = getattr(info, "raw_cell", "") or ""
        return cell_id or hashlib.sha1(raw.encode()).hexdigest()

    def _pre(self, info):
        self._current = (self._key(info), _process_time(), _perf_counter())

    def _post(self, result):
        if self._current is None:
            return
        key, cpu, wall = self._current
        self._current = None
        if key not in self.excluded:
            stopped = _isinstance(getattr(result, "error_in_exec", None), KeyboardInterrupt)
            self.cells[key] = (_process_time() - cpu, _perf_counter() - wall, stopped)

    def start(self) -> None:
        try:
            from IPython import get_ipython

            shell = get_ipython()
        except ImportError:
            shell = None
        if shell is not None and self._hooked is not shell:
            shell.events.register("pre_run_cell", self._pre)
            shell.events.register("post_run_cell", self._post)
            self._hooked = shell
        self.started = True
        self.cells, self.excluded = {}, set()
        if self._current is not None:
            self.excluded.add(self._current[0])  # the cell that starts the clock
        self._start_cpu = _process_time()

    def exclude_current_cell(self) -> None:
        if self._current is not None:
            self.excluded.add(self._current[0])
            self.cells.pop(self._current[0], None)

    def seconds(self) -> tuple[float, float]:
        """(CPU seconds, wall seconds) of the cells run since ``start()``."""
        if self._hooked is None:
            return _process_time() - self._start_cpu, float("nan")
        counted = [v for key, v in self.cells.items() if key not in self.excluded]
        return sum(v[0] for v in counted), sum(v[1] for v in counted)

    def interrupted(self) -> bool:
        """Whether a counted cell was stopped (nbgrader's per-cell timeout, or the stop button)."""
        return any(v[2] for key, v in self.cells.items() if key not in self.excluded)


training_clock = TrainingClock()


def start_training_clock() -> None:
    """Start measuring the CPU time of the cells that follow (the training cell)."""
    training_clock.start()
    print(f"Training clock started: the cells you run from here to the test count towards the "
          f"{BUDGET_CPU_SECONDS:.0f} s CPU budget.")


def _learner_side(probe: str, *args):
    """A probe of the notebook's own state (the training clock, the data it loaded): where the
    notebook's cells ran."""
    from course.runner.tester import run_probe

    return run_probe(probe, *args)


def check_budget() -> None:
    seen = _learner_side("budget")
    check(seen.get("started") is True,
          "the training clock was not started: run the locked cell that calls start_training_clock() "
          "just before your training cell, then your training cell, then this test")
    cpu, wall = float(seen.get("cpu", math.inf)), float(seen.get("wall", math.nan))
    wall_text = "" if math.isnan(wall) else f" ({wall:.1f} s of wall time)"
    check(seen.get("interrupted") is False,
          f"your training cell was stopped before it finished, after {cpu:.1f} s of CPU time{wall_text} "
          "(nbgrader stops any cell after 120 s of wall time): a training run that does not finish within "
          f"the budget earns no points; train a smaller model or for fewer steps (budget: "
          f"{BUDGET_CPU_SECONDS:.0f} s of CPU time)")
    check(cpu <= BUDGET_CPU_SECONDS,
          f"your training took {cpu:.1f} s of CPU time{wall_text}, over the budget of {BUDGET_CPU_SECONDS:.0f} s: "
          "train a smaller model or for fewer steps")
    print(f"training time: {cpu:.1f} s of CPU time{wall_text}, budget {BUDGET_CPU_SECONDS:.0f} s")


def check_heldout_untouched() -> None:
    loads = _learner_side("budget").get("heldout_loads")
    check(loads == 0,
          f"this notebook loaded the held-out images (load_mnist('heldout') was called {loads} time(s)): "
          "they measure your model, so training or tuning on them makes the measurement meaningless; "
          "use only load_mnist('train') (split it with make_loaders for validation)")


def plot_history(history, title: str = "training") -> None:
    """One small plot per series of ``history`` (a dict of lists, one value per epoch)."""
    training_clock.exclude_current_cell()
    if not isinstance(history, dict) or not history:
        print("no `history` to plot: record one value per epoch in a dict, e.g. history['loss']")
        return
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(history), figsize=(4 * len(history), 3), squeeze=False)
    for ax, (name, values) in zip(axes[0], history.items()):
        ax.plot(range(1, len(values) + 1), values, marker="o")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()


def _outputs(model, name: str, batches, method: str = "forward") -> list:
    """The model's outputs on ``batches``, computed where it was trained (a probe)."""
    check(model is not None, f"no `{name}` is defined: your training cell must define and train `{name}`")
    seen = call_probe("outputs_of", model, batches, method)
    check(seen.get("module") is True, f"`{name}` is a {seen.get('type', '?')}; expected a trained nn.Module")
    outputs = seen.get("outputs") or []
    check(len(outputs) == len(batches), f"`{name}` gave {len(outputs)} outputs for {len(batches)} batches")
    return outputs


def check_classifier_shape(model) -> None:
    from course import data

    x, _ = data._load_mnist("train")
    x = x[:5]
    (out,) = _outputs(model, "model", [x])
    check(torch.is_tensor(out) and tuple(out.shape) == (5, 10),
          f"model({_shape(x)}) returned {describe(out, 3)}; expected logits of shape [5, 10] "
          "(images as load_mnist gives them: float in [0, 1], [N, 1, 28, 28])")


def heldout_accuracy(model, batch_size: int = 500) -> float:
    """Accuracy on the held-out images: the model sees the images where it lives, and its
    predictions come back as data; the labels never leave this process."""
    from course import data

    x, y = data._load_mnist("heldout")
    batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    correct = 0
    for i, (xb, out) in enumerate(zip(batches, _outputs(model, "model", batches))):
        check(torch.is_tensor(out) and tuple(out.shape) == (len(xb), 10),
              f"model on held-out images {list(xb.shape)} returned {describe(out, 3)}; expected logits [N, 10]")
        correct += (out.argmax(dim=1) == y[i * batch_size:i * batch_size + len(xb)]).sum().item()
    return correct / len(x)


def grade_classifier(model, band: float) -> None:
    """The training cell's hidden check: held-out accuracy at least ``band``."""
    from course import data

    check_classifier_shape(model)
    check_heldout_untouched()
    check_budget()
    accuracy = heldout_accuracy(model)
    source = data.mnist_source()
    where = f"the {source.heldout_size:,} held-out images ({source.kind} MNIST)"
    check(accuracy >= band,
          f"accuracy {accuracy:.2%} on {where} is below this band's {band:.0%}"
          + (" (about chance: was `model` trained?)" if accuracy < 0.2 else ""))
    print(f"accuracy {accuracy:.2%} on {where}: this band ({band:.0%}) is reached")


def check_autoencoder_interface(autoencoder) -> None:
    from course import data

    check(autoencoder is not None,
          "no `autoencoder` is defined: your training cell must define and train `autoencoder`")
    x, _ = data._load_mnist("train")
    x = x[:5]
    seen = call_probe("interface", autoencoder, x)
    check(seen.get("module") is True, f"`autoencoder` is a {seen.get('type', '?')}; expected a trained nn.Module")
    for method in ("encode", "decode"):
        check(method in (seen.get("methods") or []),
              f"`autoencoder` has no {method}() method: train a ConvAutoencoder")
    z = seen.get("code")
    check(torch.is_tensor(z) and z.ndim == 2 and z.shape[0] == 5 and z.shape[1] <= MAX_LATENT,
          f"autoencoder.encode({_shape(x)}) returned {describe(z, 3)}; expected a code [5, d] "
          f"with d <= {MAX_LATENT}")
    out = seen.get("decoded")
    check(torch.is_tensor(out) and tuple(out.shape) == (5, 1, 28, 28),
          f"autoencoder.decode(z {list(z.shape)}) returned {describe(out, 3)}; expected [5, 1, 28, 28]")


def heldout_mse(autoencoder, batch_size: int = 500) -> float:
    from course import data

    x, _ = data._load_mnist("heldout")
    batches = [x[i:i + batch_size] for i in range(0, len(x), batch_size)]
    total = 0.0
    for xb, out in zip(batches, _outputs(autoencoder, "autoencoder", batches, "reconstruct")):
        check(torch.is_tensor(out) and tuple(out.shape) == tuple(xb.shape),
              f"decode(encode(x)) on held-out images {list(xb.shape)} returned {describe(out, 3)}")
        total += _mse_loss(out.double(), xb.double(), reduction="sum").item()
    return total / x.numel()


def grade_autoencoder(autoencoder, band: float) -> None:
    """The autoencoder training cell's hidden check: held-out reconstruction MSE at most ``band``."""
    from course import data

    check_autoencoder_interface(autoencoder)
    check_heldout_untouched()
    check_budget()
    mse = heldout_mse(autoencoder)
    source = data.mnist_source()
    where = f"the {source.heldout_size:,} held-out images ({source.kind} MNIST)"
    check(math.isfinite(mse) and mse <= band,
          f"reconstruction MSE {mse:.4f} on {where} is above this band's {band}"
          + (" (was `autoencoder` trained?)" if mse > 0.06 else ""))
    print(f"reconstruction MSE {mse:.4f} on {where}: this band (<= {band}) is reached")


from course.checks.own_work import wrap_references  # noqa: E402

wrap_references(globals())
