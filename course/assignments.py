"""What the course contains: the course root, its assignments, their notebooks
and the exercises the syllabus promises for each.

``SYLLABUS.md`` at the course root is the contract; this module reads it so
that every command checks the same list.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = "nbgrader_config.py"


class CourseError(Exception):
    """A problem the user can fix; its message is printed on one line."""


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The course root: the nearest folder (from ``start`` or the working
    directory upwards) holding ``nbgrader_config.py`` and ``source/``; else the
    checkout this package lives in."""
    env = os.environ.get("COURSE_ROOT")
    candidates = []
    here = Path(start or env or os.getcwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parent.parent)
    for folder in candidates:
        if (folder / CONFIG_FILE).is_file() and (folder / "source").is_dir():
            return folder
    raise CourseError(
        f"no course root found from {here}: expected a folder with {CONFIG_FILE} and source/"
    )


@dataclass
class Assignment:
    name: str  # e.g. "01_tensors"
    notebook: str  # e.g. "tensors.ipynb"
    exercises: list[str] = field(default_factory=list)  # syllabus names, in order
    covers: list[str] = field(default_factory=list)  # seed questions, e.g. ["E4", "E6"]

    @property
    def notebook_id(self) -> str:
        return self.notebook.removesuffix(".ipynb")


_HEADING = re.compile(r"^## (\d\d_\w+) — `([\w.]+)`")
_NAME = re.compile(r"^(?:class\s+)?([A-Za-z_]\w*)\s*([(:]|$)")


def syllabus(root: Path) -> dict[str, Assignment]:
    """Parse ``SYLLABUS.md``: assignment folder → notebook, exercises, covers."""
    path = root / "SYLLABUS.md"
    if not path.is_file():
        raise CourseError(f"{path} is missing: the course contract lives there")
    out: dict[str, Assignment] = {}
    current: Assignment | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = out.setdefault(heading[1], Assignment(heading[1], heading[2]))
        elif current and line.startswith("covers:"):
            current.covers = re.findall(r"E\d+", line)
        elif current and line.startswith("| ") and not line.startswith(("| exercise", "| ---")):
            first_column = line.replace("\\|", "/").split("|")[1]
            for span in re.findall(r"`([^`]+)`", first_column):
                name = _NAME.match(span)
                if name and name[1] not in current.exercises:
                    current.exercises.append(name[1])
    return out


def assignments(root: Path) -> dict[str, Assignment]:
    """The assignments present in ``source/``, in order, with their syllabus entry."""
    contract = syllabus(root)
    found = {}
    for folder in sorted((root / "source").iterdir()):
        if folder.is_dir() and not folder.name.startswith((".", "_")):
            entry = contract.get(folder.name)
            if entry is None:
                notebooks = sorted(p.name for p in folder.glob("*.ipynb"))
                entry = Assignment(folder.name, notebooks[0] if notebooks else "")
            found[folder.name] = entry
    return found


def resolve(root: Path, names: list[str] | None) -> list[Assignment]:
    """The named assignments (all when ``names`` is empty); a clear error for an unknown one."""
    known = assignments(root)
    if not names:
        return list(known.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CourseError(
            f"unknown assignment {', '.join(map(repr, unknown))}; known: {', '.join(known) or 'none'}"
        )
    return [known[n] for n in names]


def exercise_of(grade_id: str, exercises: list[str]) -> str:
    """The exercise a grade cell belongs to: ``test_one_hot_2`` → ``one_hot``;
    manually graded answers keep their own id."""
    if grade_id.startswith("test_"):
        rest = grade_id[5:]
        for name in sorted(exercises, key=len, reverse=True):
            if rest == name or re.fullmatch(re.escape(name) + r"_\d+", rest):
                return name
        return re.sub(r"_\d+$", "", rest)
    return grade_id
