"""course.checks: what every test cell relies on. Fast; no nbgrader."""

from __future__ import annotations

import linecache
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from course.checks import (call, check_close, check_equal, check_raises, check_type, forbid_calls,
                           forbid_loops, graded, tensors)


def notebook_function(source: str, name: str, extra_globals=None):
    """Define ``name`` from ``source`` as a notebook cell would (``__main__``, source in linecache)."""
    filename = f"<cell-{abs(hash(source))}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__", "torch": torch, **(extra_globals or {})}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


# --- forbidden calls -------------------------------------------------------------------------

@pytest.mark.parametrize("body, banned", [
    ("return torch.cdist(x, x)", "cdist"),
    ("from torch import cdist as d\n    return d(x, x)", "cdist"),
    ("f = getattr(torch, 'cdist')\n    return f(x, x)", "cdist"),
    ("return x @ x.T", "@"),
    ("return x.matmul(x.T)", "matmul"),
])
def test_forbid_calls_finds_the_call_however_written(body, banned):
    fn = notebook_function(f"def answer(x):\n    {body}\n", "answer")
    with pytest.raises(AssertionError, match=re.escape(f"`{banned}`")):
        forbid_calls(fn, ["cdist", "matmul", "@"])


def test_forbid_calls_follows_helpers_defined_in_the_notebook():
    source = "def helper(x):\n    return torch.cdist(x, x)\n\ndef answer(x):\n    return helper(x) + 1\n"
    fn = notebook_function(source, "answer")
    with pytest.raises(AssertionError, match=r"`cdist`.*in helper"):
        forbid_calls(fn, ["cdist"])


@pytest.mark.parametrize("decorator", ["@torch.no_grad()", "@functools.lru_cache(maxsize=None)"])
def test_forbid_calls_follows_helpers_of_a_decorated_function(decorator):
    source = (f"import functools\ndef helper(x):\n    return torch.cdist(x, x)\n\n{decorator}\n"
              "def answer(x):\n    return helper(x) + 1\n")
    fn = notebook_function(source, "answer")
    with pytest.raises(AssertionError, match=r"`cdist`.*in helper"):
        forbid_calls(fn, ["cdist"])
    direct = notebook_function(f"import functools\n{decorator}\ndef answer(x):\n    return torch.cdist(x, x)\n", "answer")
    with pytest.raises(AssertionError, match=r"`cdist`"):
        forbid_calls(direct, ["cdist"])
    with pytest.raises(AssertionError, match=r"for loop"):
        forbid_loops(notebook_function(f"import functools\n{decorator}\ndef answer(x):\n    for _ in x: pass\n", "answer"))


def test_forbid_calls_allow_own_lets_the_learners_own_names_through_only():
    import torch.nn.functional as F

    own = "def softmax(x):\n    return x.exp() / x.exp().sum()\n\ndef answer(x):\n    return softmax(x).log()\n"
    fn = notebook_function(own, "answer")
    forbid_calls(fn, ["softmax"], allow_own=True)
    with pytest.raises(AssertionError, match="`softmax`"):
        forbid_calls(fn, ["softmax"])  # without allow_own the helper's name is forbidden too
    for body in ("return softmax(x) + F.softmax(x, 0)",  # the library's, on the same line as the learner's
                 "from torch.nn.functional import softmax as s\n    return s(x, 0)",
                 "return getattr(F, 'softmax')(x, 0)"):
        mixed = notebook_function(own.replace("return softmax(x).log()", body), "answer", {"F": F})
        with pytest.raises(AssertionError, match="`softmax`"):
            forbid_calls(mixed, ["softmax"], allow_own=True)
    imported = notebook_function("def answer(x):\n    return softmax(x, 0)\n", "answer", {"softmax": F.softmax})
    with pytest.raises(AssertionError, match="`softmax`"):
        forbid_calls(imported, ["softmax"], allow_own=True)  # a bare name bound to torch's


def test_forbid_calls_checks_every_method_of_a_class():
    source = ("class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
              "    def forward(self, x):\n        return torch.sigmoid(x)\n")
    cls = notebook_function(source, "Net")
    with pytest.raises(AssertionError, match="`sigmoid`"):
        forbid_calls(cls, ["sigmoid"])
    forbid_calls(cls, ["relu"])  # allowed names pass


def test_forbid_calls_passes_clean_code():
    fn = notebook_function("def answer(x):\n    return ((x[:, None] - x[None]) ** 2).sum(-1)\n", "answer")
    forbid_calls(fn, ["cdist", "@", "matmul"])
    forbid_loops(fn)


@pytest.mark.parametrize("body, kind", [
    ("for i in range(3):\n        x = x + 1\n    return x", "for loop"),
    ("while x.sum() > 0:\n        x = x - 1\n    return x", "while loop"),
    ("return torch.stack([v for v in x])", "list comprehension"),
    ("return torch.stack(list(v * 2 for v in x))", "generator expression"),
    ("return answer(x[1:]) if len(x) else x", "calls itself"),
])
def test_forbid_loops_names_the_loop(body, kind):
    fn = notebook_function(f"def answer(x):\n    {body}\n", "answer")
    with pytest.raises(AssertionError, match=kind):
        forbid_loops(fn)


# --- comparisons and messages ----------------------------------------------------------------

def test_check_close_message_names_call_input_expected_and_actual():
    def double(x):
        return x * 3

    x = torch.tensor([1.0, 2.0])
    with pytest.raises(AssertionError) as info:
        check_close(double, x, expected=x * 2)
    message = str(info.value)
    assert "double(float32[2] [1, 2])" in message
    assert "expected: float32[2] [2, 4]" in message
    assert "actual:   float32[2] [3, 6]" in message


def test_check_close_reports_wrong_shape_and_non_tensor():
    with pytest.raises(AssertionError, match=r"returned shape \[2, 1\], expected \[2\]"):
        check_close(lambda x: x[:, None], torch.ones(2), expected=torch.ones(2))
    with pytest.raises(AssertionError, match="returned a list"):
        check_close(lambda x: x.tolist(), torch.ones(2), expected=torch.ones(2))


def test_check_close_accepts_right_answers_and_checks_dtype():
    check_close(lambda x: x + 0, torch.ones(3), expected=torch.ones(3))
    check_close(lambda: 3, expected=3.0)  # an int where a float is expected is the same number
    with pytest.raises(AssertionError, match="dtype"):
        check_close(lambda x: x.double(), torch.ones(3), expected=torch.ones(3))


def test_unanswered_exercise_says_so():
    def stub(x):
        raise NotImplementedError()

    with pytest.raises(AssertionError, match="stub is not implemented yet"):
        check_close(stub, torch.ones(1), expected=torch.ones(1))


def test_learner_exception_names_the_call():
    def broken(x):
        return x + torch.ones(5)

    with pytest.raises(AssertionError, match=r"broken\(float32\[3\].*raised RuntimeError"):
        call(broken, torch.ones(3))


def test_check_raises_and_check_equal_and_check_type():
    def strict(n):
        if n < 0:
            raise ValueError("negative")
        return n

    check_raises(strict, -1, exception=ValueError)
    with pytest.raises(AssertionError, match="expected it to raise ValueError"):
        check_raises(strict, 1, exception=ValueError)
    check_equal(strict, 4, expected=4)
    with pytest.raises(AssertionError, match="returned 4, expected 5"):
        check_equal(strict, 4, expected=5)
    with pytest.raises(AssertionError, match="expected a dict, got list"):
        check_type([], dict, "thing")


def test_checks_survive_rebinding_of_torch_references(monkeypatch):
    """A learner's cell that rebinds torch's comparison helpers does not turn a wrong answer right."""
    monkeypatch.setattr(torch.testing, "assert_close", lambda *a, **k: None)
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    with pytest.raises(AssertionError):
        check_close(lambda x: x * 0, torch.ones(2), expected=torch.ones(2))


# --- strategies ------------------------------------------------------------------------------

def test_graded_properties_are_reproducible():
    seen = []

    @graded(15)
    @given(tensors(min_dims=1, max_dims=3))
    def record(t):
        seen.append((tuple(t.shape), t.sum().item()))

    record()
    first = list(seen)
    seen.clear()
    record()
    assert seen == first and len(first) == 15


def test_tensors_strategy_respects_shape_dtype_range_and_layout():
    @graded(30)
    @given(st.data())
    def prop(data):
        t = data.draw(tensors(shape=(3, 4), dtype=torch.float64, low=-1, high=1))
        assert t.shape == (3, 4) and t.dtype == torch.float64
        assert (t >= -1).all() and (t <= 1).all()
        i = data.draw(tensors(dtype=torch.int64, low=0, high=5, max_dims=2))
        assert i.dtype == torch.int64 and ((i >= 0) & (i < 5)).all()

    prop()

    contiguity = set()

    @graded(40)
    @given(tensors(shape=(3, 5)))
    def layouts(t):
        contiguity.add(t.is_contiguous())

    layouts()
    assert contiguity == {True, False}, "the strategy should also produce non-contiguous views"


# --- own work -------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "from course.checks.networks import reference_softmax\n    return reference_softmax(x, -1)",
    "import course.checks.networks as n\n    return n.reference_softmax(x, -1)",
    "return check_close.__globals__['torch'].softmax(x, -1)",
    "return __import__('cour' + 'se')",
])
def test_a_learner_kernel_refuses_answers_that_lean_on_the_course(body):
    fn = notebook_function(f"def softmax(x):\n    {body}\n", "softmax", {"check_close": check_close})
    with pytest.raises(AssertionError, match="asks for your own code"):
        call(fn, torch.zeros(2))


def test_honest_code_with_a_constant_import_is_not_refused():
    fn = notebook_function("def softmax(x):\n    F = __import__('torch').nn.functional\n    return F.softmax(x, -1)\n",
                           "softmax")
    assert torch.allclose(call(fn, torch.zeros(2)), torch.full((2,), 0.5))


def test_references_answer_the_course_and_a_learner_kernel():
    """The run-time refusal needs a grader's test cell on the stack: in a learner's own kernel
    (and for the course's checks) a reference answers as before."""
    from course.checks.networks import reference_softmax

    fn = notebook_function("def f(x):\n    return ref(x, -1)\n", "f", {"ref": reference_softmax})
    assert torch.allclose(fn(torch.zeros(2)), torch.full((2,), 0.5))
    namespace = {"f": fn, "torch": torch}
    test_cell = compile("out = f(torch.zeros(2))", "<test cell test_softmax>", "exec")
    with pytest.raises(AssertionError, match="calls the course's `reference_softmax`"):
        exec(test_cell, namespace)


def test_grader_side_reading_attributes_each_answer_to_its_exercise():
    from course.checks.own_work import violations

    cells = [
        {"kind": "locked", "name": "setup", "source": "from course.checks import call"},
        {"kind": "code", "name": "", "source": "from course.checks import networks as helper\nn = 3"},
        {"kind": "answer", "name": "softmax", "source": "def softmax(x, dim=-1):\n    return helper.reference_softmax(x, dim)"},
        {"kind": "answer", "name": "relu", "source": "def relu(x):\n    n = 0\n    return x.clamp(min=n)"},
        {"kind": "answer", "name": "sigmoid", "source": "def sigmoid(x):\n    return helper(x)"},
    ]
    found = violations(cells)
    assert sorted(found) == ["sigmoid", "softmax"], found
    assert "reference_softmax" in found["softmax"] and "`helper`" in found["sigmoid"]


def test_fake_accelerators_cover_the_device_agnostic_api():
    from course.checks.devices import fake_accelerators

    with fake_accelerators(cuda=2):
        assert torch.accelerator.is_available() and torch.accelerator.current_accelerator().type == "cuda"
        assert torch.accelerator.device_count() == 2
    with fake_accelerators(mps=True):
        assert torch.accelerator.current_accelerator().type == "mps"
    with fake_accelerators():
        assert not torch.accelerator.is_available() and torch.accelerator.current_accelerator() is None
