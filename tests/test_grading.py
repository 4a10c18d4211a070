"""course grade on a class with bad submissions: every student gets a row, a broken
notebook or a deleted cell costs only that student, nbgrader's traps are closed."""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest

from course.assignments import CourseError, resolve
from course.grading import CSV_FIELDS, grade_in_scratch, write_csv
from course.notebooks import fill
from proof import ROOT, load_solutions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grading")]

WARNING_BUT_RIGHT = '''
def environment_report():
    import warnings
    warnings.warn("this correct answer also writes a UserWarning to stderr")
    print("and some noise on stderr", file=__import__("sys").stderr)
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "cuda_available": torch.cuda.is_available(),
            "device_count": torch.cuda.device_count()}
'''


def _without(nb, *grade_ids):
    out = nbformat.from_dict(nb)
    out.cells = [c for c in out.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") not in grade_ids]
    return out


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    (assignment,) = resolve(ROOT, ["00_setup"])
    released = nbformat.read(ROOT / "release" / "00_setup" / "setup.ipynb", as_version=4)
    solutions = load_solutions("00_setup")
    complete = fill(released, {**solutions.ALTERNATIVES, **solutions.WRITTEN})
    submissions = {
        "complete": complete,
        "broken_json": b'{"cells": [ {"cell_type": "code", ',
        "not_a_notebook": b'{"hello": "world"}',
        "no_notebook": None,  # a submission folder without the notebook
        "deleted_cells": _without(complete, "test_move_to", "pick_device", "test_pick_device", "setup"),
        "warns": fill(complete, {"environment_report": WARNING_BUT_RIGHT}),
    }
    workdir = tmp_path_factory.mktemp("grading")
    results = grade_in_scratch(ROOT, assignment, submissions, workdir, feedback=True)
    return assignment, results, workdir


def test_every_student_gets_a_row(graded):
    _, results, _ = graded
    assert set(results) == {"complete", "broken_json", "not_a_notebook", "no_notebook", "deleted_cells", "warns"}


def test_complete_submission_scores_every_autograded_point(graded):
    _, results, _ = graded
    r = results["complete"]
    auto = {g: s for g, s in r.cells.items() if g.startswith("test_")}
    assert auto and all(score == top for score, top in auto.values()), auto
    assert r.status == "needs manual grading"  # the written answers wait for the instructor


@pytest.mark.parametrize("student, status, words", [
    ("broken_json", "invalid", "it is not JSON"),
    ("not_a_notebook", "invalid", "not a valid notebook"),
    ("no_notebook", "missing", "no setup.ipynb"),
])
def test_bad_submissions_get_a_clear_one_line_message(graded, student, status, words):
    _, results, _ = graded
    r = results[student]
    assert (r.status, r.score) == (status, 0)
    assert words in r.message and "\n" not in r.message


def test_deleted_cells_are_restored_and_cost_only_their_exercise(graded):
    _, results, _ = graded
    r = results["deleted_cells"]
    assert r.status in ("graded", "needs manual grading")
    assert "restored deleted cells" in r.message and "test_move_to" in r.message
    # the deleted test cell was restored and still gives the (present) answer its points
    assert r.cells["test_move_to"][0] == r.cells["test_move_to"][1]
    # the deleted answer cell scores nothing; the rest of the notebook still ran
    assert r.cells["test_pick_device"][0] == 0
    assert r.cells["test_environment_report"][0] == r.cells["test_environment_report"][1]


def test_a_warning_on_stderr_does_not_cost_a_right_answer(graded):
    _, results, workdir = graded
    r = results["warns"]
    assert r.cells["test_environment_report"][0] == r.cells["test_environment_report"][1], r.cells
    autograded = nbformat.read(workdir / "autograded" / "warns" / "00_setup" / "setup.ipynb", as_version=4)
    texts = [o.get("text", "") for c in autograded.cells for o in c.get("outputs", [])]
    assert any("UserWarning" in t for t in texts), "the warning is kept for the student to read"


def test_feedback_shows_failures_but_never_hidden_tests(graded):
    _, results, workdir = graded
    html = (workdir / "feedback" / "deleted_cells" / "00_setup" / "setup.html").read_text()
    source = nbformat.read(ROOT / "source" / "00_setup" / "setup.ipynb", as_version=4)
    hidden_lines = [
        line.strip()
        for c in source.cells if "### BEGIN HIDDEN TESTS" in c.source
        for line in c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].splitlines()
        if len(line.strip()) > 20
    ]
    assert hidden_lines
    import html as html_lib
    text = html_lib.unescape(html)
    leaked = [line for line in hidden_lines if line in text]
    assert not leaked, f"feedback shows hidden test code: {leaked[:3]}"
    assert "not implemented yet" in text or "not defined" in text  # the failure is explained


def test_grades_csv_has_the_promised_columns(graded, tmp_path):
    _, results, _ = graded
    path = write_csv(list(results.values()), tmp_path / "grades.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == CSV_FIELDS
    assert {r["student_id"] for r in rows} == set(results)


def test_unknown_assignment_is_a_one_line_error():
    with pytest.raises(CourseError, match="unknown assignment 'nope'; known: 00_setup"):
        resolve(ROOT, ["nope"])
    done = subprocess.run([sys.executable, "-m", "course", "grade", "nope"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("course: unknown assignment 'nope'")
    assert len(done.stderr.strip().splitlines()) == 1


def test_without_a_sandbox_the_grader_refuses_unless_unsafe(tmp_path, monkeypatch):
    """No bubblewrap: `course grade` refuses to run students' code; with --unsafe it runs it
    in plain worker processes, with the same limits and the same results."""
    import shutil

    from course.grading import Limits, batch, grade
    from course.release import fresh_release

    (assignment,) = resolve(ROOT, ["00_setup"])
    fresh_release(ROOT, assignment, tmp_path)
    shutil.copy(ROOT / "SYLLABUS.md", tmp_path)
    released = nbformat.read(ROOT / "release" / "00_setup" / "setup.ipynb", as_version=4)
    right = load_solutions("00_setup").ALTERNATIVES
    quits = fill(released, {**right, "move_to": "import os\nos._exit(3)\n" + right["move_to"]})
    for student, nb in {"complete": fill(released, right), "quits": quits}.items():
        folder = tmp_path / "submitted" / student / "00_setup"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "setup.ipynb")
    monkeypatch.setattr(batch, "sandbox_problem", lambda *a, **k: "bubblewrap (bwrap) is not installed")
    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with pytest.raises(CourseError, match="refusing to run student code: bubblewrap"):
        grade(tmp_path, assignment, db_url=db)
    said = []
    results = {r.student_id: r for r in grade(tmp_path, assignment, db_url=db, unsafe=True, jobs=1,
                                               limits=Limits(cell_timeout=60), announce=said.append)}
    assert "WITHOUT A SANDBOX" in said[0]
    auto = {g: s for g, s in results["complete"].cells.items() if g.startswith("test_")}
    assert auto and all(score == top for score, top in auto.values()), auto
    assert results["quits"].status == "crashed" and "exit status 3" in results["quits"].message
