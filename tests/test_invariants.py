"""The invariants `course check` enforces hold for every assignment, and each one
catches the fault it exists for."""

from __future__ import annotations

import shutil
import subprocess
import sys

import nbformat
import pytest

from course import invariants
from course.assignments import resolve, syllabus
from proof import ROOT

pytestmark = pytest.mark.xdist_group("invariants")


def test_course_check_passes_on_the_course():
    done = subprocess.run([sys.executable, "-m", "course", "check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "assignments pass every invariant" in done.stdout


def test_every_present_assignment_is_in_the_syllabus():
    contract = syllabus(ROOT)
    for a in resolve(ROOT, None):
        assert a.name in contract and a.exercises, f"{a.name} is not described in SYLLABUS.md"


@pytest.fixture
def scratch_course(tmp_path):
    """A copy of the course with 00_setup only, to break on purpose."""
    for name in ("nbgrader_config.py", "SYLLABUS.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ("source", "release"):
        shutil.copytree(ROOT / folder / "00_setup", tmp_path / folder / "00_setup")
    (assignment,) = resolve(tmp_path, ["00_setup"])
    return tmp_path, assignment


def _edit(path, change):
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)


def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)


def test_scratch_copy_is_clean(scratch_course):
    root, a = scratch_course
    assert invariants.check(root, [a]) == {"00_setup": []}


def test_outputs_in_source_are_caught(scratch_course):
    root, a = scratch_course
    _edit(root / "source/00_setup/setup.ipynb", lambda nb: _cell(nb, "setup").update(execution_count=3))
    assert any("has outputs" in p for p in invariants.no_outputs(root, a))


def test_a_missing_test_cell_is_caught(scratch_course):
    root, a = scratch_course
    _edit(root / "source/00_setup/setup.ipynb",
          lambda nb: nb.cells.remove(_cell(nb, "test_move_to")))
    assert "00_setup: no test cell with grade_id 'test_move_to'" in invariants.exercises_present(root, a)


def test_a_test_cell_without_hidden_tests_is_caught(scratch_course):
    root, a = scratch_course
    def strip(nb):
        cell = _cell(nb, "test_pick_device")
        cell.source = cell.source.split("### BEGIN HIDDEN TESTS")[0]
    _edit(root / "source/00_setup/setup.ipynb", strip)
    assert any("test_pick_device has no hidden tests" in p for p in invariants.test_cells_well_formed(root, a))


def test_leaked_solution_in_release_is_caught(scratch_course):
    root, a = scratch_course
    source = nbformat.read(root / "source/00_setup/setup.ipynb", as_version=4)
    secret = _cell(source, "pick_device").source
    _edit(root / "release/00_setup/setup.ipynb", lambda nb: _cell(nb, "pick_device").update(source=secret))
    problems = invariants.release_clean(root, a)
    assert any("BEGIN SOLUTION" in p for p in problems), problems


def test_stale_release_is_caught(scratch_course):
    root, a = scratch_course
    _edit(root / "source/00_setup/setup.ipynb", lambda nb: nb.cells.append(nbformat.v4.new_markdown_cell("new")))
    problems = invariants.check(root, [a])["00_setup"]
    assert any("differs from a fresh release" in p for p in problems), problems


def test_unmentioned_seed_question_is_caught(scratch_course):
    root, a = scratch_course
    def drop(nb):
        for c in nb.cells:
            if c.cell_type == "markdown":
                c.source = c.source.replace("E47", "a question")
    _edit(root / "source/00_setup/setup.ipynb", drop)
    assert "00_setup: seed question E47 is not mentioned in the lesson" in invariants.seeds_covered(root, a)
