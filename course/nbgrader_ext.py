"""Preprocessors that close nbgrader's known traps; ``nbgrader_config.py`` wires them in.

- ``StderrIsNotFailure`` (autograde, after execution): nbgrader gives 0 to a
  test cell with *any* stderr output, and torch writes ``UserWarning``s there
  from correct code. Only an error fails a test cell here; the warning text is
  kept, moved to stdout.
- ``RestoreDeletedCells`` (autograde, before ``OverwriteCells``): every cell
  nbgrader tracks that the student deleted (answer cells too, which nbgrader's
  ``add_missing_cells`` leaves out) is put back in its place from the
  gradebook, so a deleted test cell still runs and a deleted answer scores 0
  without breaking the rest of the notebook.
- ``HideHiddenTests`` (feedback): nbgrader's feedback shows the hidden tests'
  source (nbgrader #917) and tracebacks quote it. Feedback keeps the visible
  checks and the failure message (which names input, expected and actual) and
  drops the hidden code and the traceback lines.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor as Preprocessor  # enabled by default
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import is_grade, is_solution
from traitlets import Unicode

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN_END = "### END HIDDEN TESTS"


def _is_test_cell(cell) -> bool:
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


class StderrIsNotFailure(Preprocessor):
    def preprocess_cell(self, cell, resources, index):
        if _is_test_cell(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
        return cell, resources


def tracked_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
        return meta.get("grade_id")
    return None


class RestoreDeletedCells(Preprocessor):
    notice = Unicode(
        "This cell ({cell_id}) was missing from the submission and was restored from the assignment.",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            source = [(c.name, c.cell_type, c.source, c.locked) for c in notebook.source_cells]
            points = {c.name: c.max_score for c in notebook.grade_cells}
            solutions = {c.name for c in notebook.solution_cells}
        restored, position = [], 0
        for name, cell_type, text, locked in source:
            found = next((i for i, c in enumerate(nb.cells) if tracked_id(c) == name), None)
            if found is not None:
                position = found + 1  # a restored cell goes after its predecessor
                continue
            if name in points and name not in solutions:
                note = self.notice.format(cell_id=name)
                text = (f"# {note}\n" if cell_type == "code" else f"*{note}*\n\n") + text
            cell = (new_code_cell if cell_type == "code" else new_markdown_cell)(text)
            cell.metadata["nbgrader"] = {
                "grade": name in points, "solution": name in solutions, "locked": bool(locked),
                "grade_id": name, "schema_version": 3, "task": False,
                **({"points": points[name]} if name in points else {}),
            }
            nb.cells.insert(position, cell)
            position += 1
            restored.append(name)
        if restored:
            self.log.warning("Restored deleted cells: %s", ", ".join(restored))
        return nb, resources


class HideHiddenTests(Preprocessor):
    def preprocess_cell(self, cell, resources, index):
        if not _is_test_cell(cell):
            return cell, resources
        lines, hidden, dropped = [], False, 0
        for line in cell.source.splitlines():
            if HIDDEN_BEGIN in line:
                hidden = True
            elif HIDDEN_END in line:
                hidden = False
                lines.append(f"# ... {dropped} lines of hidden tests are not shown ...")
                dropped = 0
            elif hidden:
                dropped += 1
            else:
                lines.append(line)
        cell.source = "\n".join(lines)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
        return cell, resources
