"""Hypothesis strategies for tensors, and the settings every graded property uses.

Grading must be reproducible and quick: examples are derandomised (the same
inputs for every student, every run), nothing is stored on disk, there is no
deadline (graders are slow, shared machines), and failing examples are not
shrunk (the first counter-example is reported as found).
"""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st


def graded(max_examples: int = 25):
    """Decorator: ``@graded(30)`` above ``@given(...)``."""
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )


def shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    """Tuples of ints usable as tensor shapes."""
    return st.lists(
        st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims
    ).map(tuple)


@st.composite
def tensors(draw, shape=None, dtype=torch.float32, low: float = -10.0, high: float = 10.0,
            min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 5,
            non_contiguous: bool | None = None):
    """Random tensors with a seeded generator: ``shape`` fixed or drawn.

    Values are drawn by torch from a seed that hypothesis picks (fast, and still
    reproducible); integer dtypes draw integers in ``[low, high)``. With
    ``non_contiguous`` (or at random when it is ``None``) the tensor is a
    transposed view, to catch code that assumes contiguous memory.
    """
    if shape is None:
        shape = draw(shapes(min_dims, max_dims, min_side, max_side))
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    flip = draw(st.booleans()) if non_contiguous is None else non_contiguous
    flip = flip and len(shape) >= 2
    make_shape = (*shape[:-2], shape[-1], shape[-2]) if flip else tuple(shape)
    if dtype.is_floating_point:
        t = torch.rand(make_shape, generator=generator, dtype=torch.float64) * (high - low) + low
        t = t.to(dtype)
    elif dtype == torch.bool:
        t = torch.rand(make_shape, generator=generator) < 0.5
    else:
        t = torch.randint(int(low), int(high), make_shape, generator=generator, dtype=dtype)
    return t.transpose(-1, -2) if flip else t


def _warm_up() -> None:
    """Hypothesis's first property costs ~0.4 s of one-time set-up: pay it when the course's
    checks are imported (the notebook's setup cell), not in the first test cell."""
    from hypothesis import given

    @graded(1)
    @given(tensors(max_dims=2))
    def property_(x):
        pass

    property_()


_warm_up()
