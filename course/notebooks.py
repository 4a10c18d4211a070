"""Building and filling nbgrader notebooks in code.

Authors use ``lesson``/``setup``/``answer``/``tests``/``written`` to write a
source notebook cell by cell; the test suite uses ``fill`` to make submissions
(alternative solutions, mutants, examples) from a released notebook.
"""

from __future__ import annotations

import copy
import hashlib
import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _id(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _clean(text: str) -> str:
    return textwrap.dedent(text).strip("\n")


def lesson(text: str):
    cell = new_markdown_cell(_clean(text))
    cell.id = _id("md" + cell.source)
    return cell


def setup(code: str, grade_id: str = "setup"):
    """A locked code cell the learner runs but cannot edit (imports, data)."""
    cell = new_code_cell(_clean(code), metadata=_meta(grade_id, grade=False, solution=False, locked=True))
    cell.id = grade_id.replace("_", "-")
    return cell


def answer(grade_id: str, code: str):
    """An autograded answer cell; ``### BEGIN/END SOLUTION`` mark what the release removes."""
    cell = new_code_cell(_clean(code), metadata=_meta(grade_id, grade=False, solution=True, locked=False))
    cell.id = grade_id.replace("_", "-")
    return cell


def tests(grade_id: str, code: str, points: float):
    """A locked autograded test cell: visible checks, then ``### BEGIN HIDDEN TESTS``."""
    cell = new_code_cell(_clean(code), metadata=_meta(grade_id, grade=True, solution=False, locked=True, points=points))
    cell.id = grade_id.replace("_", "-")
    return cell


def written(grade_id: str, text: str, points: float):
    """A manually graded markdown answer."""
    cell = new_markdown_cell(_clean(text), metadata=_meta(grade_id, grade=True, solution=True, locked=False, points=points))
    cell.id = grade_id.replace("_", "-")
    return cell


def notebook(cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=list(cells))
    nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    nbformat.validate(nb)
    return nb


def fill(nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the answer cells named in ``answers`` (grade_id → code) replaced."""
    out = copy.deepcopy(nb)
    todo = dict(answers)
    for cell in out.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in todo:
            cell.source = _clean(todo.pop(grade_id))
    if todo:
        raise KeyError(f"no answer cell named {', '.join(todo)} in the notebook")
    return out
