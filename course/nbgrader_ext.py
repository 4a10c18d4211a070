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
- ``SandboxExecute`` (autograde, in place of nbgrader's ``Execute``): runs the
  notebook in a sandboxed worker with memory, time, process and output limits
  (``course.grading.execute``, ``course.grading.sandbox``); a cell that did not
  run because the notebook was stopped carries an error, so it never counts as
  passed (nbgrader #427, #1033).
- ``CheckCellMetadata`` and ``SaveAutoGrades``: nbgrader's, made faster with the
  same results (the JSON schema is compiled once, not once per cell; the grades
  of a notebook are committed in one transaction, not one per cell).
"""

from __future__ import annotations

import contextlib
import threading

from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import CheckCellMetadata as _CheckCellMetadata
from nbgrader.preprocessors import ClearOutput, Execute
from nbgrader.preprocessors import NbGraderPreprocessor as Preprocessor  # enabled by default
from nbgrader.preprocessors import SaveAutoGrades as _SaveAutoGrades
from nbformat.v4 import new_code_cell, new_markdown_cell
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.utils import is_grade, is_solution
from nbgrader.validator import Validator
from traitlets import List, Unicode

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


class CourseValidator(Validator):
    """nbgrader's validator (``course validate``, the Validate button) judging test cells as
    grading does: a warning on stderr from a right answer is not a failure. nbgrader's
    ``Validator.preprocessors`` is not configurable, so the course names this class where
    a validator is made (``course validate``, ``course.lab_extension``)."""

    preprocessors = List([_CheckCellMetadata, ClearOutput, Execute, StderrIsNotFailure])


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


class SanitizeStudentMarkup(Preprocessor):
    """No student markup runs in anyone's browser (autograde, after the grades are saved).

    nbgrader's feedback and Formgrader templates render markdown without nbconvert's
    ``sanitize_html``, so a written answer holding ``<img onerror=...>``, ``<script>`` or a
    ``javascript:`` link would run in the instructor's Jupyter origin. Every markdown cell the
    student could write (all but the locked ones, which come from the instructor's source) is
    rendered to HTML here and cleaned with nbconvert's ``clean_html`` (an allow-list: no scripts,
    event handlers, iframes, forms, styles or links with other than http(s)/mailto); raw cells
    lose their output format, so they render as text. Outputs are cleaned in
    ``course.grading.execute``."""

    def preprocess_cell(self, cell, resources, index):
        from nbconvert.filters.markdown import markdown2html

        from course.grading.execute import safe_html

        locked = cell.get("metadata", {}).get("nbgrader", {}).get("locked") and not is_solution(cell)
        if cell.cell_type == "markdown" and not locked:
            cell.source = safe_html(markdown2html(cell.source))
            cell.pop("attachments", None)
        elif cell.cell_type == "raw":
            for key in ("format", "raw_mimetype"):
                cell.metadata.pop(key, None)
        return cell, resources


class SandboxExecute(Preprocessor):
    """Execute the notebook in a sandboxed worker (replaces ``nbgrader.preprocessors.Execute``).

    Limits come from ``c.Sandbox`` (``course.grading.settings``). ``course grade`` has
    usually executed the notebook already, in parallel with others; the stored result
    is used when the notebook holds exactly the code that was run."""

    def preprocess(self, nb, resources):
        from course.grading import execute as ex

        info = resources["nbgrader"]
        key = (info["db_url"], info["assignment"], info["student"], info["notebook"])
        cells = ex.code_cells(nb)
        wanted = ex.code_key(cells)
        with ex._registry_lock:
            stored = ex.PRECOMPUTED.pop(key, None)
        if stored is not None and stored[0] == wanted:
            outcome = stored[1]
        else:
            outcome = self._execute(cells, info)
            if stored is not None:  # course grade ran different code: say so, it costs a second run
                outcome.log.insert(0, "nbgrader prepared other code than was executed first: executed it again")
                ex.RERUNS += 1
        ex.fail_leaning_answers(outcome, cells)
        ex.apply(nb, outcome)
        with ex._registry_lock:
            ex.APPLIED[key] = outcome
        return nb, resources

    def _execute(self, cells, info):
        from pathlib import Path

        from course.grading import execute as ex
        from course.grading.sandbox import sandbox_problem
        from course.grading.settings import Sandbox

        current = ex.CURRENT.get(info["db_url"])
        if current is not None:
            spec, limits, jobs, files = current
        else:  # plain `nbgrader autograde`: one worker, settings from nbgrader_config.py
            settings = Sandbox(parent=self)
            limits, jobs = settings.limits(), 1
            if not settings.unsafe:
                problem = sandbox_problem(settings.bwrap)
                if problem:
                    raise RuntimeError(f"refusing to run student code: {problem}")
            spec = settings.spec(limits, jobs, settings.unsafe)
            coursedir = getattr(getattr(self.parent, "parent", None), "coursedir", None)
            files = {}
            if coursedir is not None:
                source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]))
                files = ex.assignment_files(source, list(coursedir.ignore))
        return ex.execute(cells, limits, spec, jobs, files)


class _CompiledSchemas:
    """``jsonschema`` as nbgrader's metadata validator uses it, with each schema compiled once."""

    def __init__(self, module):
        self._module = module
        self._validators = {}
        self.ValidationError = module.ValidationError

    def validate(self, instance, schema):
        key = id(schema)
        if key not in self._validators:
            self._validators[key] = (schema, self._module.validators.validator_for(schema)(schema))
        validator = self._validators[key][1]
        error = self._module.exceptions.best_match(validator.iter_errors(instance))
        if error is not None:
            raise error

    def __getattr__(self, name):
        return getattr(self._module, name)


_schema_lock = threading.Lock()


@contextlib.contextmanager
def _compiled_schemas():
    from nbgrader.nbgraderformat import common

    with _schema_lock:
        original = common.jsonschema
        if not isinstance(original, _CompiledSchemas):
            common.jsonschema = _CompiledSchemas(original)
        try:
            yield
        finally:
            common.jsonschema = original


class CheckCellMetadata(_CheckCellMetadata):
    def preprocess(self, nb, resources):
        with _compiled_schemas():
            return super().preprocess(nb, resources)


class SaveAutoGrades(_SaveAutoGrades):
    """nbgrader's ``SaveAutoGrades`` with one commit per notebook instead of two per cell."""

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        self.notebook_id, self.assignment_id = info["notebook"], info["assignment"]
        self.student_id, self.db_url = info["student"], info["db_url"]
        self.gradebook = Gradebook(self.db_url)
        with self.gradebook:
            nb, resources = super(_SaveAutoGrades, self).preprocess(nb, resources)  # cell by cell
            self.gradebook.db.commit()
        return nb, resources

    def _add_score(self, cell, resources):
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        auto_score, _ = nbgrader_utils.determine_grade(cell, self.log)
        grade.auto_score = auto_score
        grade.needs_manual_grade = (grade.manual_score is not None) or (grade.auto_score is None)

    def _add_comment(self, cell, resources):
        comment = self.gradebook.find_comment(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                              self.assignment_id, self.student_id)
        unchanged = cell.metadata.nbgrader.get("checksum", None) == nbgrader_utils.compute_checksum(cell)
        comment.auto_comment = "No response." if unchanged and not nbgrader_utils.is_task(cell) else None
