"""The course's static invariants (``course check``): each function returns a list
of problems, one readable line each. The dynamic ones (the source notebook earns
full marks, the release earns zero) run the grader and live in the test suite."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from course.assignments import Assignment
from course.nbgrader_ext import HIDDEN_BEGIN, HIDDEN_END
from course.release import release_is_current

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"


def _nb(root: Path, folder: str, a: Assignment):
    return nbformat.read(root / folder / a.name / a.notebook, as_version=4)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def no_outputs(root: Path, a: Assignment) -> list[str]:
    nb = _nb(root, "source", a)
    bad = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    return [f"source/{a.name}/{a.notebook}: cell {i} has outputs or an execution count" for i in bad]


def exercises_present(root: Path, a: Assignment) -> list[str]:
    nb = _nb(root, "source", a)
    ids = {_meta(c).get("grade_id"): c for c in nb.cells if _meta(c)}
    problems = []
    for name in a.exercises:
        answer = ids.get(name)
        if answer is None or not _meta(answer).get("solution"):
            problems.append(f"{a.name}: no answer cell with grade_id {name!r}")
        tests = [i for i in ids if i == f"test_{name}" or re.fullmatch(rf"test_{re.escape(name)}_\d+", i or "")]
        if not tests:
            problems.append(f"{a.name}: no test cell with grade_id 'test_{name}'")
    return problems


def test_cells_well_formed(root: Path, a: Assignment) -> list[str]:
    nb = _nb(root, "source", a)
    problems = []
    for c in nb.cells:
        m = _meta(c)
        if c.cell_type != "code" or not m.get("grade") or m.get("solution"):
            continue
        gid = m.get("grade_id")
        if not m.get("locked"):
            problems.append(f"{a.name}: test cell {gid} is not locked")
        if not m.get("points"):
            problems.append(f"{a.name}: test cell {gid} has no points")
        if HIDDEN_BEGIN not in c.source or HIDDEN_END not in c.source:
            problems.append(f"{a.name}: test cell {gid} has no hidden tests")
        elif not c.source.split(HIDDEN_BEGIN)[0].strip():
            problems.append(f"{a.name}: test cell {gid} has no visible check before its hidden tests")
    return problems


def seeds_covered(root: Path, a: Assignment) -> list[str]:
    text = " ".join(c.source for c in _nb(root, "source", a).cells if c.cell_type == "markdown")
    return [f"{a.name}: seed question {q} is not mentioned in the lesson" for q in a.covers
            if not re.search(rf"\b{q}\b", text)]


def release_clean(root: Path, a: Assignment) -> list[str]:
    path = root / "release" / a.name / a.notebook
    if not path.is_file():
        return [f"release/{a.name}/{a.notebook} is missing: run `course release {a.name}`"]
    released = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in released.cells)
    problems = [f"release/{a.name}: contains {marker!r}" for marker in
                (SOLUTION_BEGIN, SOLUTION_END, HIDDEN_BEGIN, HIDDEN_END) if marker in text]
    # Every substantive line of a solution or hidden test must be gone.
    source = _nb(root, "source", a)
    secret_lines = set()
    for c in source.cells:
        for begin, end in ((SOLUTION_BEGIN, SOLUTION_END), (HIDDEN_BEGIN, HIDDEN_END)):
            for region in re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), c.source, re.S):
                secret_lines |= {ln.strip() for ln in region.splitlines() if len(ln.strip()) > 25}
    released_lines = {ln.strip() for ln in text.splitlines()}
    visible = {ln.strip() for c in source.cells for ln in _outside_regions(c.source).splitlines()}
    leaked = sorted((secret_lines & released_lines) - visible)
    problems += [f"release/{a.name}: solution or hidden-test line leaked: {ln[:80]!r}" for ln in leaked[:5]]
    return problems


def _outside_regions(source: str) -> str:
    for begin, end in ((SOLUTION_BEGIN, SOLUTION_END), (HIDDEN_BEGIN, HIDDEN_END)):
        source = re.sub(re.escape(begin) + r".*?" + re.escape(end), "", source, flags=re.S)
    return source


STATIC = [no_outputs, exercises_present, test_cells_well_formed, seeds_covered, release_clean]


def check(root: Path, todo: list[Assignment], fresh_release: bool = True, each=None) -> dict[str, list[str]]:
    """Problems per assignment (an empty list: all invariants hold); ``each(name, problems)``
    is called as each assignment is checked."""
    report = {}
    for a in todo:
        if not (root / "source" / a.name / a.notebook).is_file():
            problems = [f"source/{a.name}/{a.notebook} is missing"]
        else:
            problems = [p for inv in STATIC for p in inv(root, a)]
            if fresh_release:
                problems += release_is_current(root, a)
        report[a.name] = problems
        if each:
            each(a.name, problems)
    return report
