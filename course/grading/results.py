"""What grading produces: a ``Result`` per student, ``grades/<assignment>.csv``,
``grades/gradebook.csv`` (one row per student, one column per assignment, for an
LMS import), ``grades/summary.html`` (score histograms and the pass rate of every
exercise) and the plain-text table ``course grade`` prints."""

from __future__ import annotations

import base64
import csv
import html
import io
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course.assignments import Assignment, exercise_of

CSV_FIELDS = ["student_id", "assignment", "score", "max_score", "status", "message"]
# graded: every cell ran; "needs manual grading": graded, written answers wait for the instructor;
# timeout / killed (memory, processes, output) / crashed (the notebook's process died): stopped
# early, points earned before are kept; invalid: not a gradable notebook; missing: no notebook.
STATUSES = ("graded", "needs manual grading", "timeout", "killed", "crashed", "invalid", "missing")


@dataclass
class Result:
    student_id: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    status: str = "graded"  # one of STATUSES
    message: str = ""
    cells: dict[str, tuple[float | None, float]] = field(default_factory=dict)  # grade_id → (score, max)
    seconds: float = 0.0  # executing the notebook in its worker, set-up included
    cell_seconds: float = 0.0  # of which running cells
    grader_seconds: float = 0.0  # preparing it and recording it through nbgrader (feedback included)

    def row(self) -> dict:
        return {
            "student_id": self.student_id,
            "assignment": self.assignment,
            "score": _num(self.score),
            "max_score": _num(self.max_score),
            "status": self.status,
            "message": self.message,
        }

    def to_json(self) -> dict:
        out = asdict(self)
        out["cells"] = {k: list(v) for k, v in self.cells.items()}
        return out

    @classmethod
    def from_json(cls, data: dict) -> "Result":
        data = dict(data)
        data["cells"] = {k: (v[0], v[1]) for k, v in data.get("cells", {}).items()}
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def _num(x: float) -> str:
    return f"{x:g}"


def by_exercise(result: Result, exercises: list[str]) -> dict[str, tuple[float | None, float]]:
    """Cell scores summed per exercise (``test_x`` and ``test_x_2`` → ``x``)."""
    out: dict[str, tuple[float | None, float]] = {}
    for grade_id, (score, top) in result.cells.items():
        name = exercise_of(grade_id, exercises)
        old_score, old_top = out.get(name, (0.0, 0.0))
        new = None if (score is None or old_score is None) else old_score + score
        out[name] = (new, old_top + top)
    return out


def _atomic_write(path: Path, write) -> Path:
    """Write through a temporary file, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_csv(results: list[Result], path: Path) -> Path:
    def write(handle):
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in results:
            writer.writerow(r.row())

    return _atomic_write(path, write)


def write_gradebook(grades_dir: Path, assignments: list[str]) -> Path:
    """``gradebook.csv`` from every ``grades/<assignment>.csv``: one row per student, one
    column per assignment (the score; empty where there is no submission)."""
    scores: dict[str, dict[str, str]] = {}
    present = []
    for name in assignments:
        path = grades_dir / f"{name}.csv"
        if not path.is_file():
            continue
        present.append(name)
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row.get("status") != "missing":
                    scores.setdefault(row["student_id"], {})[name] = row.get("score", "")
                else:
                    scores.setdefault(row["student_id"], {})

    def write(handle):
        writer = csv.writer(handle)
        writer.writerow(["student_id", *present, "total"])
        for student in sorted(scores):
            row = [scores[student].get(name, "") for name in present]
            total = sum(float(x) for x in row if x not in ("", None))
            writer.writerow([student, *row, _num(total)])

    return _atomic_write(grades_dir / "gradebook.csv", write)


def table(results: list[Result], assignment: Assignment, width: int = 100) -> str:
    """Scores as plain text: one line per student (score, status, the exercises short of
    full marks), so a class of any size stays as wide as a terminal; messages after it."""
    rows = []
    for r in results:
        short = []
        for name, (score, top) in by_exercise(r, assignment.exercises).items():
            if score is None:
                short.append(f"{name} ?/{_num(top)}")
            elif score < top:
                short.append(f"{name} {_num(score)}/{_num(top)}")
        rows.append([r.student_id, f"{_num(r.score)}/{_num(r.max_score)}", r.status,
                     ", ".join(short) if r.status in ("graded", "needs manual grading") else ""])
    header = ["student", "score", "status", "exercises short of full marks"]
    widths = [min(32, max(len(x) for x in col)) for col in zip(header, *rows)][:3]
    lines = [f"{assignment.name}/{assignment.notebook}"]
    for i, row in enumerate([header, *rows]):
        line = "  ".join(x.ljust(w) for x, w in zip(row, widths)) + "  " + row[3]
        lines.append(line.rstrip() if len(line) <= width else line[:width - 3] + "...")
        if i == 0:
            lines.append("-" * min(width, sum(widths) + 2 * len(widths) + len(header[3])))
    for r in results:
        if r.status != "graded" or r.message:
            lines.append(f"{r.student_id}: {r.status}" + (f" ({r.message})" if r.message else ""))
    return "\n".join(lines)


# -- summary.html ---------------------------------------------------------------------------

def pass_rates(results: list[Result], exercises: list[str]) -> dict[str, tuple[int, int]]:
    """exercise → (students with full marks on it, students graded), autograded exercises only."""
    out: dict[str, list[int]] = {}
    for r in results:
        if r.status in ("invalid", "missing"):
            continue
        for name, (score, top) in by_exercise(r, exercises).items():
            if score is None or top <= 0 or name not in exercises:
                continue
            counts = out.setdefault(name, [0, 0])
            counts[0] += score >= top
            counts[1] += 1
    order = [e for e in exercises if e in out]
    return {name: (out[name][0], out[name][1]) for name in order}


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _charts(results: list[Result], exercises: list[str]) -> tuple[str, str]:
    from matplotlib.figure import Figure

    scored = [r for r in results if r.status not in ("invalid", "missing")]
    top = max((r.max_score for r in results), default=0) or 1
    fig = Figure(figsize=(6, 2.6))
    ax = fig.add_subplot()
    ax.hist([r.score for r in scored], bins=min(20, max(5, int(top))), range=(0, top), color="#4c72b0", edgecolor="white")
    ax.set_xlabel("score")
    ax.set_ylabel("students")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"scores ({len(scored)} graded, out of {_num(top)})")
    hist = _png(fig)
    rates = pass_rates(results, exercises)
    fig = Figure(figsize=(6, 0.35 * max(3, len(rates)) + 0.8))
    ax = fig.add_subplot()
    names = list(rates)[::-1]
    values = [100 * rates[n][0] / rates[n][1] if rates[n][1] else 0 for n in names]
    ax.barh(names, values, color=["#c44e52" if v < 50 else "#55a868" for v in values])
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded students with full marks")
    ax.set_title("pass rate per exercise")
    return hist, _png(fig)


def write_summary(path: Path, classes: list[tuple[Assignment, list[Result]]]) -> Path:
    """An HTML page: per assignment, a score histogram, the pass rate of every exercise,
    and how many submissions ended in each status."""
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Grading summary</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}"
             "</style></head><body><h1>Grading summary</h1>"]
    for assignment, results in classes:
        if not results:
            continue
        statuses = {s: sum(r.status == s for r in results) for s in STATUSES}
        scored = [r.score for r in results if r.status not in ("invalid", "missing")]
        mean = sum(scored) / len(scored) if scored else 0
        hist, rates_png = _charts(results, assignment.exercises)
        rates = pass_rates(results, assignment.exercises)
        parts.append(f"<h2>{html.escape(assignment.name)}</h2><p>{len(results)} students; mean score "
                     f"{mean:.1f} of {_num(max((r.max_score for r in results), default=0))}; "
                     + ", ".join(f"{n} {html.escape(s)}" for s, n in statuses.items() if n) + "</p>")
        parts.append(f"<img alt='score histogram' src='data:image/png;base64,{hist}'>")
        parts.append(f"<img alt='pass rate per exercise' src='data:image/png;base64,{rates_png}'>")
        parts.append("<table><tr><th>exercise</th><th>full marks</th><th>pass rate</th></tr>")
        for name, (passed, graded) in sorted(rates.items(), key=lambda kv: kv[1][0] / max(1, kv[1][1])):
            parts.append(f"<tr><td>{html.escape(name)}</td><td>{passed}/{graded}</td>"
                         f"<td>{100 * passed / max(1, graded):.0f}%</td></tr>")
        parts.append("</table>")
        problems = [r for r in results if r.status not in ("graded", "needs manual grading")]
        if problems:
            parts.append("<h3>Submissions that need a look</h3><table><tr><th>student</th><th>status</th><th>message</th></tr>")
            for r in problems:
                parts.append(f"<tr><td>{html.escape(r.student_id)}</td><td>{html.escape(r.status)}</td>"
                             f"<td>{html.escape(r.message)}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return _atomic_write(path, lambda handle: handle.write("\n".join(parts)))
