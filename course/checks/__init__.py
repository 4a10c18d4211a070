"""What the notebooks' test cells import.

Every check raises ``AssertionError`` with a message that names the call, the
input, what was expected and what came back, so a learner never sees a bare
assertion. The references the checks rely on (``torch.testing.assert_close``,
``torch.equal``, ``inspect.getsource``, ...) are captured when this module is
first imported, which the notebook's first, locked cell does before any of the
learner's code runs: rebinding them later changes nothing here.
"""

from course.checks.compare import (
    call,
    check,
    check_close,
    check_equal,
    check_raises,
    check_type,
    describe,
    fail,
)
from course.checks.forbid import TENSOR_ONLY, forbid_calls, forbid_loops
from course.checks.strategies import graded, shapes, tensors

__all__ = [
    "TENSOR_ONLY",
    "call",
    "check",
    "check_close",
    "check_equal",
    "check_raises",
    "check_type",
    "describe",
    "fail",
    "forbid_calls",
    "forbid_loops",
    "graded",
    "shapes",
    "tensors",
]
