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


PROBES = {"numpy_views": numpy_views}
