"""source/ → release/ through nbgrader's generate_assignment."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from course.assignments import Assignment, CONFIG_FILE
from course.nbgrader_api import api_for, ok


def release(root: Path, todo: list[Assignment], db_url: str | None = None) -> list[Path]:
    """Rewrite ``release/<a>/`` for each assignment (outputs cleared, solutions and
    hidden tests removed) and record it in the gradebook. Returns the notebooks written."""
    api = api_for(root, db_url)
    written = []
    for assignment in todo:
        target = root / "release" / assignment.name
        if target.exists():
            shutil.rmtree(target)
        ok(api.generate_assignment(assignment.name, force=True, create=True), f"releasing {assignment.name}")
        written += sorted(target.glob("*.ipynb"))
    return written


def fresh_release(root: Path, assignment: Assignment, into: Path) -> Path:
    """Release ``assignment`` from ``root/source`` into a scratch course at ``into``
    (its own gradebook), leaving ``root`` untouched. Returns ``into/release/<a>``."""
    (into / "source").mkdir(parents=True, exist_ok=True)
    shutil.copy(root / CONFIG_FILE, into / CONFIG_FILE)
    shutil.copytree(root / "source" / assignment.name, into / "source" / assignment.name, dirs_exist_ok=True)
    release(into, [assignment], db_url=f"sqlite:///{into / 'gradebook.db'}")
    return into / "release" / assignment.name


def release_is_current(root: Path, assignment: Assignment) -> list[str]:
    """Differences between ``release/<a>`` and a fresh release of ``source/<a>``."""
    with tempfile.TemporaryDirectory(prefix="course-release-") as scratch:
        fresh = fresh_release(root, assignment, Path(scratch))
        committed = root / "release" / assignment.name
        if not committed.is_dir():
            return [f"release/{assignment.name} is missing: run `course release {assignment.name}`"]
        problems = []
        names = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        have = {p.relative_to(committed) for p in committed.rglob("*") if p.is_file()}
        for name in sorted(names | have):
            a, b = fresh / name, committed / name
            if not b.exists():
                problems.append(f"release/{assignment.name}/{name} is missing")
            elif not a.exists():
                problems.append(f"release/{assignment.name}/{name} is not made from source/ any more")
            elif a.read_bytes() != b.read_bytes():
                problems.append(f"release/{assignment.name}/{name} differs from a fresh release of source/")
        if problems:
            problems[-1] += f" (run `course release {assignment.name}`)"
        return problems
