"""Verdicts out of the learner's reach: 01_tensors graded with its test cells in the tester's
process (``course.runner``), through the real grader.

Each attacker leaves every exercise blank (the released stubs) or answers it wrongly, and
tries one of the routes that forged full marks when the test cells ran in the learner's
own process: patching the grader's kernel class, swapping the ``__code__`` of the
comparisons, rebinding the checks while a test runs, an IPython input transformer,
a no-op hypothesis, tensor subclasses that answer "equal", reading the expected value
from the checking function's frame, forged result frames, and computed names past a
forbidden-call rule. Every one must earn nothing it did not solve, honest controls
must earn every point, and no hidden test may appear in any output.
"""

from __future__ import annotations

import nbformat
import pytest

from course.assignments import resolve
from course.grading import Limits, by_exercise, grade_in_scratch
from course.grading.sandbox import MiB, sandbox_problem
from course.notebooks import fill
from proof import ROOT, load_solutions

PROBLEM = sandbox_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("tester"),
    pytest.mark.skipif(PROBLEM is not None, reason=f"needs a bubblewrap sandbox: {PROBLEM}"),
]

ASSIGNMENT = "01_tensors"
LIMITS = Limits(cell_timeout=30, notebook_timeout=180, memory=1024 * MiB, processes=32)
HIDDEN_MARKERS = ("BEGIN HIDDEN TESTS", "pairwise_matches_reference", "cumsum_matches")

# Each route goes into the first answer cell of an otherwise blank notebook.
ROUTES = {
    "kernel_class": '''
import course.grading.kernel as k
k.Kernel.run_test_cell = lambda self, source, name: "ok"
k.Kernel.run = lambda self, source, kind, name: ("ok", [], 1, [])
''',
    "code_swap": '''
import torch, torch.testing, course.checks.compare as c, course.checks.tensors as t
nothing = (lambda *a, **k: None).__code__
torch.testing.assert_close.__code__ = nothing
for module in (c, t):
    for name in dir(module):
        f = getattr(module, name)
        if callable(f) and getattr(f, "__code__", None) is not None and name.startswith(("check", "compare", "call")):
            try:
                f.__code__ = (lambda *a, **k: None).__code__ if f.__code__.co_freevars == () else f.__code__
            except Exception:
                pass
''',
    "rebind_checks": '''
import course.checks, course.checks.compare as c
for name in ("check_close", "check_equal", "check_raises", "check", "check_type", "call", "compare_close"):
    setattr(c, name, lambda *a, **k: None)
    setattr(course.checks, name, lambda *a, **k: None)
check_close = check_raises = check = check_type = forbid_calls = forbid_loops = lambda *a, **k: None
''',
    "input_transformer": '''
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"])
''',
    "hypothesis_noop": '''
import hypothesis
hypothesis.settings.__call__ = lambda self, test: (lambda *a, **k: None)
hypothesis.given = lambda *a, **k: (lambda test: (lambda *a, **k: None))
''',
    "forged_frames": '''
import os
from course.grading.protocol import encode
frames = b"".join(encode({"t": "cell", "i": i, "status": "ok", "outputs": [], "count": i, "seconds": 0.0})
                  for i in range(200)) + encode({"t": "done", "seconds": 0.0})
for fd in range(3, 1024):
    try:
        os.write(fd, frames)
    except OSError:
        pass
os._exit(0)
''',
}

EXERCISE_STUBS = '''
import sys, torch

class Anything(torch.Tensor):
    """Equal to everything, close to everything."""
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in ("__eq__", "eq", "equal", "allclose", "isclose"):
            return True
        return super().__torch_function__(func, types, args, kwargs or {})
'''


def subclass_answers(exercises) -> dict[str, str]:
    """Every exercise returns a tensor subclass that claims to equal anything."""
    answers = {}
    for name in exercises:
        answers[name] = (EXERCISE_STUBS if name == exercises[0] else "") + f'''
def {name}(*args, **kwargs):
    return torch.zeros(3).as_subclass(Anything)
'''
    return answers


def frame_answers(exercises) -> dict[str, str]:
    """Every exercise returns the expected value it finds in its callers' frames."""
    answers = {}
    for name in exercises:
        answers[name] = f'''
import sys
def {name}(*args, **kwargs):
    frame = sys._getframe(1)
    while frame is not None:
        for key in ("expected", "reference"):
            value = frame.f_locals.get(key)
            if value is not None:
                return value(*args) if callable(value) else value
        frame = frame.f_back
    raise NotImplementedError()
'''
    return answers


LEAK = '''
import gc, linecache, sys, warnings
warnings.simplefilter("ignore")
SIGNS = ("HID" + "DEN TESTS", "<test" + " cell", "matches_" + "reference", "cumsum_" + "matches")
found = set()
for obj in gc.get_objects():
    values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()
    for value in list(values):
        if isinstance(value, str) and value not in SIGNS and any(sign in value for sign in SIGNS):
            found.add(value[:2000])
for name, entry in list(linecache.cache.items()):
    text = str(name) + "".join(entry[2] if len(entry) > 2 and entry[2] else [])
    if any(sign in text for sign in SIGNS):
        found.add(text[:2000])
frame = sys._getframe()
while frame is not None:
    found.add(repr(frame.f_code.co_filename))
    frame = frame.f_back
print("LEAK", len(found))
for text in found:
    print(text)
'''

COMPUTED_NAME_CUMSUM = '''
def cumsum(a):
    return getattr(torch, "cum" + "sum")(a, 0)
'''


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    (assignment,) = resolve(ROOT, [ASSIGNMENT])
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    right = load_solutions(ASSIGNMENT).ALTERNATIVES
    first = assignment.exercises[0]
    submissions = {"honest": fill(released, right), "blank": released}
    for name, code in ROUTES.items():
        submissions[name] = fill(released, {first: code + "\n\ndef tensor_attributes(t):\n    raise NotImplementedError()\n"})
    submissions["subclass"] = fill(released, subclass_answers(assignment.exercises))
    submissions["frames"] = fill(released, frame_answers(assignment.exercises))
    submissions["leak"] = fill(released, {first: LEAK})
    submissions["computed_name"] = fill(released, {**right, "cumsum": COMPUTED_NAME_CUMSUM})
    workdir = tmp_path_factory.mktemp("tester")
    results = grade_in_scratch(ROOT, assignment, submissions, workdir, limits=LIMITS, unsafe=False, jobs=2)
    return assignment, results, workdir


def scores(batch, student):
    assignment, results, _ = batch
    return by_exercise(results[student], assignment.exercises)


def everything_written(batch, student) -> str:
    """Every output of the autograded notebook and the whole feedback page."""
    assignment, _, workdir = batch
    nb = nbformat.read(workdir / "autograded" / student / ASSIGNMENT / assignment.notebook, as_version=4)
    texts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts += [output.get("text", ""), output.get("evalue", ""), "\n".join(output.get("traceback", []))]
            texts += [str(v) for v in (output.get("data") or {}).values()]
    feedback = workdir / "feedback" / student / ASSIGNMENT
    texts += [p.read_text(errors="replace") for p in feedback.rglob("*.html")] if feedback.is_dir() else []
    return "\n".join(texts)


def test_honest_control_earns_every_point(batch):
    got = scores(batch, "honest")
    assert got and all(score == top for score, top in got.values()), got


@pytest.mark.parametrize("student", ["blank", *ROUTES, "subclass", "frames", "leak"])
def test_an_attack_earns_nothing(batch, student):
    got = scores(batch, student)
    assert len(got) == 15, got
    earned = {exercise: score for exercise, (score, _) in got.items() if score}
    assert not earned, f"{student} earned {earned}"


def test_forged_frames_end_the_notebook(batch):
    _, results, _ = batch
    assert results["forged_frames"].status == "crashed", results["forged_frames"]


def test_a_tensor_subclass_is_refused_with_a_message(batch):
    assert "subclass of torch.Tensor: return a plain torch.Tensor" in everything_written(batch, "subclass")


def test_a_computed_name_loses_only_its_exercise(batch):
    got = scores(batch, "computed_name")
    assert got["cumsum"][0] == 0, got
    assert all(score == top for exercise, (score, top) in got.items() if exercise != "cumsum"), got
    assert "must not reach functions by computed names" in everything_written(batch, "computed_name")


@pytest.mark.parametrize("student", ["honest", "blank", "leak", "frames", "subclass"])
def test_no_hidden_test_appears_in_any_output(batch, student):
    written = everything_written(batch, student)
    assert written, student
    for marker in HIDDEN_MARKERS:
        assert marker not in written, f"{student}'s outputs hold {marker!r}"


def test_the_leak_ran_and_found_nothing_hidden(batch):
    written = everything_written(batch, "leak")
    assert "LEAK" in written  # the search itself ran in the learner's process
    assert "pairwise_sq_distances(" not in written.split("LEAK", 1)[1]  # not even a visible test's code
