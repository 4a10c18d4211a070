"""One submission's life on the grader's side, in the order it happens: prepared by nbgrader's
sanitize steps (``sanitize``; ``unprepared`` when its metadata is damaged), executed in the
sandbox (``executed``: the outcome is handed to nbgrader's ``SandboxExecute``), recorded by
nbgrader's autograde and feedback (``record``), and logged (``write_log``). ``batch`` runs
it for a class on this machine, ``cluster`` on Dask workers; neither imports the other.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from course.assignments import Assignment
from course.grading import execute as ex
from course.grading.intake import name_problem, printable
from course.grading.results import Result
from course.nbgrader_api import reason


def sanitize(config, db_url: str, assignment: Assignment, student: str, path: Path):
    """The notebook as nbgrader's autograde will execute it: its sanitize preprocessors
    (locked cells overwritten and deleted cells restored from the gradebook)."""
    from nbconvert.exporters import NotebookExporter
    from nbgrader.converters import Autograde
    from traitlets.config import Config

    extra = Config()
    extra.Exporter.default_preprocessors = []
    merged = Config(config)
    merged.merge(extra)
    exporter = NotebookExporter(config=merged)
    listed = merged.Autograde.get("sanitize_preprocessors") or Autograde.sanitize_preprocessors.default_value
    for preprocessor in listed:
        exporter.register_preprocessor(preprocessor, enabled=True)
    resources = {"unique_key": assignment.notebook_id, "output_files_dir": f"{assignment.notebook_id}_files",
                 "nbgrader": {"student": student, "assignment": assignment.name,
                              "notebook": assignment.notebook_id, "db_url": db_url}}
    nb = nbformat.read(path, as_version=4)
    output, _ = exporter.from_notebook_node(nb, resources)
    return nbformat.reads(output, as_version=4)


def unprepared(assignment: Assignment, student: str, max_score: float, error: Exception) -> Result:
    """The result of a notebook nbgrader could not prepare for grading."""
    detail = " ".join(f"{type(error).__name__}: {error}".split())[:160]
    return Result(printable(student), assignment.name, 0.0, max_score, "invalid",
                  f"{assignment.notebook} could not be prepared for grading: its nbgrader cell metadata is damaged "
                  f"({detail}); copy your answers into a fresh copy of the released notebook and submit that")


def executed(db: str, assignment: Assignment, student: str, cells, run) -> "ex.Outcome":
    """``run()``'s outcome for ``cells`` (``crashed``, every cell not run, if the grader itself
    failed), registered for ``SandboxExecute`` so that nbgrader's autograde uses it."""
    try:
        outcome = run()
    except Exception as error:  # noqa: BLE001 - one submission never stops the class
        outcome = ex.Outcome(status="crashed", message=f"the grader failed: {error}")
        outcome.outputs = [[ex._error("NotRun", outcome.message)] for _ in cells]
        outcome.counts = [None] * len(cells)
    with ex._registry_lock:
        ex.PRECOMPUTED[(db, assignment.name, student, assignment.notebook_id)] = (ex.code_key(cells), outcome)
    return outcome


def read_scores(db: str, assignment: Assignment, result: Result) -> bool:
    """Scores from the gradebook; True when written answers wait for manual grading."""
    with Gradebook(db) as gb:
        submission = gb.find_submission(assignment.name, result.student_id)
        result.score, result.max_score = submission.score, submission.max_score
        manual = False
        for notebook in submission.notebooks:
            for g in notebook.grades:
                score = None if g.needs_manual_grade else g.score
                manual |= g.needs_manual_grade
                result.cells[g.name] = (score, g.max_score)
    return manual


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def write_log(root: Path, assignment: Assignment, result: Result, lines: list[str]) -> None:
    path = Path(root) / "autograded" / result.student_id / f"{assignment.name}.log"
    if name_problem(result.student_id):  # a folder name nbgrader cannot use: the log goes with the grader's
        digest = hashlib.sha256(result.student_id.encode()).hexdigest()[:12]
        path = Path(root) / "autograded" / ".grading" / "logs" / f"{digest}-{assignment.name}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        body = [f"{stamp} {assignment.name} {result.student_id}: {result.status}, "
                f"{result.score:g}/{result.max_score:g}", *(f"  {line}" for line in lines)]
        if result.message:
            body.insert(1, f"  message: {result.message}")
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
    except OSError:
        pass


def record(root, api, db, assignment, student, max_score, outcome, note, feedback) -> Result:
    """nbgrader's autograde (with this outcome) and feedback for one student."""
    result = Result(student, assignment.name, 0.0, max_score, outcome.status, "", seconds=round(outcome.seconds, 3),
                    cell_seconds=round(outcome.cell_seconds, 3))
    key = (db, assignment.name, student, assignment.notebook_id)
    done = api.autograde(assignment.name, student, force=True, create=True)
    with ex._registry_lock:
        applied = ex.APPLIED.pop(key, outcome)
        ex.PRECOMPUTED.pop(key, None)
    lines = [f"executed in {outcome.seconds:.2f} s ({outcome.cell_seconds:.2f} s in cells)", *applied.log]
    if not done.get("success"):
        result.status = "invalid"
        result.message = _join(f"nbgrader could not grade it: {reason(done) or 'autograde failed'}", note)
        lines.append(done.get("log", "")[-4000:])
        write_log(root, assignment, result, lines)
        return result
    manual = read_scores(db, assignment, result)
    result.status = applied.status
    if manual and applied.status == "graded":
        result.status = "needs manual grading"
    tampering = ""
    if applied.tampered:
        names = sorted(set(applied.tampered))
        tampering = (f"the notebook changed what the tests rely on ({', '.join(names[:4])}"
                     f"{', ...' if len(names) > 4 else ''}); this was undone before the tests ran")
    result.message = _join(applied.message, note, tampering)
    if feedback:
        made = api.generate_feedback(assignment.name, student, force=True)
        if not made.get("success"):
            result.message = _join(result.message, "feedback failed: " + reason(made))
    lines += [f"{name}: {score if score is not None else '?'}/{top:g}" for name, (score, top) in result.cells.items()]
    write_log(root, assignment, result, lines)
    return result
