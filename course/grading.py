"""Grade a class: autograde every submission under submitted/, then feedback,
``grades/<assignment>.csv`` and a table of scores.

One submission's failure (a broken notebook, a deleted cell, a crash) is
recorded on its own row and never stops the rest of the class.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from course.assignments import Assignment, CourseError, exercise_of
from course.nbgrader_api import api_for, reason
from course.nbgrader_ext import tracked_id
from course.release import release

CSV_FIELDS = ["student_id", "assignment", "score", "max_score", "status", "message"]


@dataclass
class Result:
    student_id: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"  # graded | needs manual grading | missing | error
    message: str = ""
    cells: dict[str, tuple[float | None, float]] = field(default_factory=dict)  # grade_id → (score, max)

    def row(self) -> dict:
        return {
            "student_id": self.student_id,
            "assignment": self.assignment,
            "score": _num(self.score),
            "max_score": _num(self.max_score),
            "status": self.status,
            "message": self.message,
        }


def _num(x: float) -> str:
    return f"{x:g}"


def students(root: Path, assignment: str) -> list[str]:
    """Student ids with a folder ``submitted/<id>/<assignment>/``."""
    submitted = root / "submitted"
    if not submitted.is_dir():
        return []
    return sorted(p.name for p in submitted.iterdir() if (p / assignment).is_dir())


def precheck(path: Path, expected_ids: list[str]) -> tuple[str | None, str]:
    """(error or None, note) for one submitted notebook, before nbgrader sees it."""
    if not path.is_file():
        return f"no {path.name} in the submission", ""
    try:
        json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        return f"{path.name} is not a readable notebook (not JSON: {error})", ""
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat's own validation errors, unknown versions, ...
        return f"{path.name} is not a valid notebook ({' '.join(str(error).split())[:200]})", ""
    present = {tracked_id(c) for c in nb.cells}
    missing = [i for i in expected_ids if i not in present]
    note = f"restored deleted cells: {', '.join(missing)}" if missing else ""
    return None, note


def grade(root: Path, assignment: Assignment, only: list[str] | None = None, feedback: bool = True,
          db_url: str | None = None, progress=None) -> list[Result]:
    """Autograde ``submitted/*/<assignment>``; returns one ``Result`` per student."""
    api = api_for(root, db_url)
    db = api.coursedir.db_url
    with Gradebook(db) as gb:
        try:
            gb.find_assignment(assignment.name)
        except MissingEntry:
            release(root, [assignment], db_url)  # records the assignment in the gradebook
    with Gradebook(db) as gb:
        nb_record = gb.find_notebook(assignment.notebook_id, assignment.name)
        expected_ids = [c.name for c in nb_record.source_cells]
        max_score = gb.find_assignment(assignment.name).max_score

    names = students(root, assignment.name)
    if only:
        unknown = [s for s in only if s not in names]
        if unknown:
            raise CourseError(f"no submission of {assignment.name} for {', '.join(unknown)} under submitted/")
        names = [s for s in names if s in only]
    if not names:
        raise CourseError(f"no submissions found: expected submitted/<student_id>/{assignment.name}/{assignment.notebook}")

    results = []
    for student in names:
        if progress:
            progress(student)
        path = root / "submitted" / student / assignment.name / assignment.notebook
        result = Result(student, assignment.name, 0.0, max_score)
        error, note = precheck(path, expected_ids)
        if error:
            result.status, result.message = ("missing" if "no " in error[:3] else "error"), error
            results.append(result)
            continue
        outcome = api.autograde(assignment.name, student, force=True, create=True)
        if not outcome.get("success"):
            result.status = "error"
            result.message = reason(outcome) or "autograde failed"
            results.append(result)
            continue
        _read_scores(db, assignment, result)
        result.message = note
        if feedback:
            made = api.generate_feedback(assignment.name, student, force=True)
            if not made.get("success"):
                result.message = "; ".join(filter(None, [note, "feedback failed: " + reason(made)]))
        results.append(result)
    return results




def _read_scores(db: str, assignment: Assignment, result: Result) -> None:
    with Gradebook(db) as gb:
        submission = gb.find_submission(assignment.name, result.student_id)
        result.score, result.max_score = submission.score, submission.max_score
        manual = False
        for notebook in submission.notebooks:
            for g in notebook.grades:
                score = None if g.needs_manual_grade else g.score
                manual |= g.needs_manual_grade
                result.cells[g.name] = (score, g.max_score)
        if manual:
            result.status = "needs manual grading"


def by_exercise(result: Result, exercises: list[str]) -> dict[str, tuple[float | None, float]]:
    """Cell scores summed per exercise (``test_x`` and ``test_x_2`` → ``x``)."""
    out: dict[str, tuple[float | None, float]] = {}
    for grade_id, (score, top) in result.cells.items():
        name = exercise_of(grade_id, exercises)
        old_score, old_top = out.get(name, (0.0, 0.0))
        new = None if (score is None or old_score is None) else old_score + score
        out[name] = (new, old_top + top)
    return out


def write_csv(results: list[Result], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())
    return path


def table(results: list[Result], assignment: Assignment) -> str:
    """Scores as plain text: one row per exercise, one column per student."""
    per_student = [by_exercise(r, assignment.exercises) for r in results]
    rows_names: list[str] = [n for n in assignment.exercises if any(n in c for c in per_student)]
    for cells in per_student:
        rows_names += [n for n in cells if n not in rows_names]

    def cell(cells, name):
        if name not in cells:
            return "-"
        score, top = cells[name]
        return ("?" if score is None else _num(score)) + "/" + _num(top)

    header = ["exercise", *(r.student_id for r in results)]
    rows = [[name, *(cell(c, name) for c in per_student)] for name in rows_names]
    rows.append(["total", *(f"{_num(r.score)}/{_num(r.max_score)}" for r in results)])
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    lines = [f"{assignment.name}/{assignment.notebook}"]
    for i, row in enumerate([header, *rows]):
        lines.append("  ".join(x.ljust(w) for x, w in zip(row, widths)).rstrip())
        if i == 0 or i == len(rows) - 1:
            lines.append("  ".join("-" * w for w in widths))
    for r in results:
        if r.status != "graded" or r.message:
            lines.append(f"{r.student_id}: {r.status}" + (f" ({r.message})" if r.message else ""))
    return "\n".join(lines)


def grade_in_scratch(root: Path, assignment: Assignment, submissions: dict, workdir: Path,
                     feedback: bool = False) -> dict[str, Result]:
    """Grade ``submissions`` (student id → notebook node, or ``bytes`` for a raw file)
    in a scratch copy of the course at ``workdir``, with its own gradebook: the
    instructor's gradebook, release/ and submitted/ are never touched."""
    from course.release import fresh_release

    fresh_release(root, assignment, workdir)
    for student, nb in submissions.items():
        folder = workdir / "submitted" / student / assignment.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / assignment.notebook
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        elif nb is not None:
            nbformat.write(nb, path)
    results = grade(workdir, assignment, feedback=feedback, db_url=f"sqlite:///{workdir / 'gradebook.db'}")
    return {r.student_id: r for r in results}
