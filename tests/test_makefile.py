"""The Makefile and `course demo` never put the class at risk: `make clean` keeps the
submissions and the gradebook, `make clean-class` asks first, `make grade` without A= says
how to use it at once, and `course demo` in a course with a class works in demo/."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess

import pytest

from course.grading.sandbox import sandbox_problem
from proof import ROOT
from test_batch import ASSIGNMENT, course, scratch_course, submit


@pytest.fixture
def course_copy(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "submitted" / "alice" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "gradebook.db").write_bytes(b"hand grades")
    for folder in ("grades", "feedback", "autograded/alice"):
        (tmp_path / folder).mkdir(parents=True)
    return tmp_path


def make(folder, *args, **kwargs):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=folder, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, **kwargs)


def test_make_clean_keeps_the_class(course_copy):
    done = make(course_copy, "clean")
    assert done.returncode == 0, done.stderr
    assert (course_copy / "submitted" / "alice").is_dir() and (course_copy / "gradebook.db").is_file()
    assert not (course_copy / "grades").exists() and not (course_copy / "feedback").exists()
    assert "kept submitted/ and gradebook.db" in done.stdout


def test_make_clean_class_asks_and_refuses_without_a_terminal(course_copy):
    done = make(course_copy, "clean-class")
    assert done.returncode != 0 and "run it in a terminal" in done.stdout
    assert (course_copy / "submitted" / "alice").is_dir() and (course_copy / "gradebook.db").is_file()


def test_make_grade_without_an_assignment_says_how_at_once(course_copy):
    done = make(course_copy, "grade")
    assert done.returncode != 0 and "usage: make grade A=<assignment>" in done.stdout
    assert not (course_copy / ".venv").exists()  # nothing was installed first


@pytest.mark.slow
@pytest.mark.skipif(sandbox_problem() is not None, reason="needs a bubblewrap sandbox")
def test_demo_in_a_course_with_a_class_leaves_the_class_alone(tmp_path):
    scratch_course(tmp_path)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    submit(tmp_path, "a_real_student", b"{}")
    done = course("--root", str(tmp_path), "demo", ASSIGNMENT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the demo runs in demo/" in done.stdout
    with sqlite3.connect(tmp_path / "gradebook.db") as db:
        assert {r[0] for r in db.execute("select id from student")} == set()
    assert sorted(p.name for p in (tmp_path / "submitted").iterdir()) == ["a_real_student"]
    assert not (tmp_path / "grades").exists()
    assert (tmp_path / "demo" / "grades" / f"{ASSIGNMENT}.csv").is_file()
