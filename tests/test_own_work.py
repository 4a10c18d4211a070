"""Answers that lean on the course's own reference implementations, graded through the
real pipeline next to honest controls: the leaning exercise loses its points, every other
exercise keeps them, and an honest answer that happens to use ``__import__`` is not touched.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from course.assignments import resolve
from course.grading import by_exercise, grade_in_scratch
from course.grading.sandbox import sandbox_problem
from course.notebooks import fill
from proof import ROOT, load_solutions

PROBLEM = sandbox_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("own_work"),
    pytest.mark.skipif(PROBLEM is not None, reason=f"needs a bubblewrap sandbox: {PROBLEM}"),
]

ASSIGNMENT = "03_neural_networks"

# A cell the learner adds above the sigmoid answer; the answer itself names only `s`.
ADDED_CELL = "from course.checks import networks as n\ns = n.reference_sigmoid"
USES_ADDED = "def sigmoid(x):\n    return s(x)"
RUNTIME = '''import sys

def softmax(x, dim=-1):  # the module and the function are both named at run time
    module = getattr(sys, "mod" + "ules")["cour" + "se.checks.networks"]
    return getattr(module, "reference_" + "softmax")(x, dim)
'''
THROUGH_GLOBALS = '''def leaky_relu(x, negative_slope=0.01):  # a check function's globals hold the course's reference
    return check_activation.__globals__["reference_" + "leaky_relu"](x, negative_slope)
'''
HONEST_IMPORT = '''def sigmoid(x):  # __import__ of a constant, harmless name: an honest answer
    tanh = __import__("torch").tanh
    return (1 + tanh(x / 2)) / 2
'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    (assignment,) = resolve(ROOT, [ASSIGNMENT])
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    right = load_solutions(ASSIGNMENT).ALTERNATIVES
    added = fill(released, {**right, "sigmoid": USES_ADDED})
    at = next(i for i, c in enumerate(added.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "sigmoid")
    added.cells.insert(at, new_code_cell(ADDED_CELL))
    submissions = {
        "honest": fill(released, right),
        "honest_import": fill(released, {**right, "sigmoid": HONEST_IMPORT}),
        "added_cell": added,
        "runtime": fill(released, {**right, "softmax": RUNTIME}),
        "through_globals": fill(released, {**right, "leaky_relu": THROUGH_GLOBALS}),
    }
    results = grade_in_scratch(ROOT, assignment, submissions, tmp_path_factory.mktemp("own-work"), jobs=2)
    return assignment, results


def _lost(graded, student):
    assignment, results = graded
    scores = by_exercise(results[student], assignment.exercises)
    assert scores, f"{student}: no scores: {results[student].message}"
    lost = sorted(e for e, (score, top) in scores.items() if e in assignment.exercises and score != top)
    return lost, f"{student}: {results[student].message} {results[student].cells}"


@pytest.mark.parametrize("student", ["honest", "honest_import"])
def test_honest_answers_keep_every_point(graded, student):
    lost, why = _lost(graded, student)
    assert lost == [], why


@pytest.mark.parametrize("student, exercise", [("added_cell", "sigmoid"), ("runtime", "softmax"),
                                               ("through_globals", "leaky_relu")])
def test_leaning_on_the_course_costs_that_exercise_only(graded, student, exercise):
    lost, why = _lost(graded, student)
    assert lost == [exercise], why
