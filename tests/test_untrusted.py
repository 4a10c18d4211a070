"""One class, graded through the real ``course grade`` command, whose submission folders
were made by students who read the grader's code: files that crash parsers, names
nbgrader cannot handle, floods of files, links to the gradebook and the solutions, a
forged submission time, and HTML that would run in the instructor's browser. Beside
them, honest controls. The run must finish (exit 0, no traceback), give every folder
one row with a message a person can act on, give no undeserved point or file to
anyone, and write feedback with no active content.
"""

from __future__ import annotations

import csv
import html.parser
import json
import os
import sqlite3
from pathlib import Path

import nbformat
import pytest

from course.grading.sandbox import sandbox_problem
from course.notebooks import fill
from proof import ROOT, load_solutions
from test_batch import ASSIGNMENT, course, scratch_course, submit

PROBLEM = sandbox_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("untrusted"),
    pytest.mark.skipif(PROBLEM is not None, reason=f"needs a bubblewrap sandbox: {PROBLEM}"),
]

NON_UTF8 = os.fsdecode(b"st\xffdent")
XSS_CODE = '''
from IPython.display import HTML, Javascript, display
display(HTML('<script>window.PWNED = "html"; fetch("/api/terminals", {method: "POST"})</script><b>bold</b>'))
display(HTML('<img src="x" onerror="window.PWNED = \\'img\\'">'))
display(Javascript('window.PWNED = "js"'))
display({"image/svg+xml": '<svg onload="window.PWNED=1"></svg>', "text/plain": "svg"}, raw=True)
'''
XSS_MARKDOWN = '<img src="x" onerror="window.PWNED = \'markdown\'"> <script>window.PWNED = "md"</script> [x](javascript:window.PWNED=1)'


def _raw(nb) -> dict:
    return json.loads(nbformat.writes(nb))


@pytest.fixture(scope="module")
def untrusted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("untrusted")
    scratch_course(workdir)
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / "tensors.ipynb", as_version=4)
    right = load_solutions(ASSIGNMENT).ALTERNATIVES
    complete = fill(released, right)
    text = nbformat.writes(complete)
    source_notebook = workdir / "source" / ASSIGNMENT / "tensors.ipynb"

    for name in ("honest_1", "honest_2"):
        submit(workdir, name, complete)
    deep = _raw(complete)
    submit(workdir, "deep_json", text.replace('"metadata": {', '"metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + ",", 1).encode())
    submit(workdir, "huge_int", text.replace('"metadata": {', '"metadata": {"x": ' + "9" * 5000 + ",", 1).encode())
    folder = submit(workdir, "odd_file_name")
    (folder / os.fsdecode(b"tensors\xff.ipynb")).write_text(text)
    for name in (NON_UTF8, ".dotted", "new\nline"):
        submit(workdir, name, complete)
    folder = submit(workdir, "many_files", complete)
    for i in range(20_000):
        (folder / f"f{i}").write_bytes(b"")
    folder = submit(workdir, "sparse", complete)
    with open(folder / "big.bin", "wb") as handle:
        handle.truncate(2 << 30)
    deep["cells"][0]["source"] = "x" * (40 << 20)
    submit(workdir, "big_notebook", json.dumps(deep).encode())
    folder = submit(workdir, "loot", complete)
    os.symlink("../../../gradebook.db", folder / "loot_gradebook.bin")
    os.symlink(source_notebook, folder / "loot_source.txt")
    os.symlink("/etc/passwd", folder / "loot_passwd")
    folder = submit(workdir, "notebook_link")
    os.symlink(source_notebook, folder / "tensors.ipynb")
    (workdir / "submitted" / "linked_student").symlink_to(workdir / "submitted" / "honest_1")
    folder = submit(workdir, "fifo", complete)
    os.mkfifo(folder / "pipe")
    submit(workdir, "forged_time", complete, {"timestamp.txt": "2000-01-01 00:00:00.000000 UTC"})
    submit(workdir, "collected_time", complete)
    (workdir / "collected").mkdir()
    (workdir / "collected" / f"{ASSIGNMENT}.csv").write_text(
        "student_id,timestamp\ncollected_time,2031-02-03 04:05:06.000000 UTC\n")
    folder = submit(workdir, "renamed")
    (folder / "Tensors.ipynb").write_text(text)
    folder = submit(workdir, "one_down")
    (folder / "work").mkdir()
    (folder / "work" / "tensors.ipynb").write_text(text)
    other = nbformat.read(ROOT / "release" / "02_autograd" / "autograd.ipynb", as_version=4)
    submit(workdir, "other_assignment", other)
    xss = fill(released, {**right, "outer": XSS_CODE + "\n" + right["outer"]})
    xss.cells.append(nbformat.v4.new_markdown_cell(XSS_MARKDOWN))
    submit(workdir, "xss", xss)

    done = course("--root", str(workdir), "grade", ASSIGNMENT, "--jobs", "2", timeout=900)
    with (workdir / "grades" / f"{ASSIGNMENT}.csv").open(encoding="utf-8", newline="") as handle:
        table = {r["student_id"]: r for r in csv.DictReader(handle)}
    return workdir, done, table


def test_the_class_is_graded_completely_in_one_run(untrusted):
    workdir, done, table = untrusted
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    folders = [p.name for p in (workdir / "submitted").iterdir()]
    assert len(table) == len(folders) == 21, sorted(table)
    for row in table.values():
        assert row["message"] == "" or ("\n" not in row["message"] and len(row["message"]) < 400), row


def test_honest_controls_are_exact(untrusted):
    _, _, table = untrusted
    for name in ("honest_1", "honest_2", "forged_time", "collected_time"):
        assert (table[name]["status"], table[name]["score"], table[name]["message"]) == ("graded", "23", ""), table[name]


@pytest.mark.parametrize("student, words", [
    ("deep_json", "nested deeper than"),
    ("huge_int", "more than 64 digits"),
    ("st\\xffdent", "not valid UTF-8: rename"),
    (".dotted", "starts with a dot"),
    ("new\\nline", "line break"),
    ("many_files", "more than 200 files"),
    ("sparse", "larger than 64 MiB"),
    ("big_notebook", "larger than 16 MiB"),
    ("loot", "is a symbolic link"),
    ("notebook_link", "is a symbolic link"),
    ("linked_student", "is a symbolic link"),
    ("fifo", "is a FIFO"),
    ("other_assignment", "is the notebook of 02_autograd"),
])
def test_what_cannot_be_graded_is_invalid_with_a_reason(untrusted, student, words):
    _, _, table = untrusted
    row = table[student]
    assert (row["status"], row["score"]) == ("invalid", "0"), row
    assert words in row["message"], row["message"]


@pytest.mark.parametrize("student, words", [
    ("odd_file_name", "graded tensors\\xff.ipynb as tensors.ipynb"),
    ("renamed", "graded Tensors.ipynb as tensors.ipynb"),
    ("one_down", "graded work/tensors.ipynb as tensors.ipynb"),
])
def test_the_only_notebook_of_the_assignment_is_graded_under_another_name(untrusted, student, words):
    _, _, table = untrusted
    row = table[student]
    assert (row["status"], row["score"]) == ("graded", "23") and words in row["message"], row


def test_nothing_but_the_notebook_is_copied_out_of_a_submission(untrusted):
    workdir, _, _ = untrusted
    for part in ("autograded", "feedback"):
        for path in (workdir / part).rglob("*"):
            if ".grading" in path.parts:
                continue
            assert not path.is_symlink(), path
            if path.is_file():
                assert path.suffix in (".ipynb", ".html", ".log") or path.name == "timestamp.txt", path
                assert path.stat().st_size < 8 << 20, path
    assert not (workdir / "autograded" / "loot" / ASSIGNMENT).exists()
    assert not (workdir / "autograded" / "notebook_link" / ASSIGNMENT).exists()


def test_the_submission_time_comes_from_the_collection_only(untrusted):
    workdir, _, _ = untrusted
    with sqlite3.connect(workdir / "gradebook.db") as db:
        times = dict(db.execute("select student.id, submitted_assignment.timestamp from submitted_assignment "
                                "join student on student.id = submitted_assignment.student_id"))
    assert not str(times["forged_time"]).startswith("2000"), times["forged_time"]
    assert str(times["collected_time"]).startswith("2031-02-03"), times["collected_time"]


class _Active(html.parser.HTMLParser):
    """Scripts, event handlers and javascript: links that a submission put into a page."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            if name.startswith("on") and "PWNED" in (value or ""):
                self.found.append(f"<{tag} {name}>")
            if name in ("href", "src") and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}=javascript:>")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "PWNED" in data:
            self.found.append("<script> from the submission")


def active_content(page: str) -> list[str]:
    parser = _Active()
    parser.feed(page)
    return parser.found


def test_feedback_and_the_autograded_notebook_hold_no_active_content(untrusted):
    workdir, _, table = untrusted
    assert table["xss"]["status"] == "graded" and table["xss"]["score"] == "23", table["xss"]
    page = (workdir / "feedback" / "xss" / ASSIGNMENT / "tensors.html").read_text(encoding="utf-8")
    assert "bold" in page  # the harmless part of the HTML output is kept
    assert active_content(page) == []
    autograded = nbformat.read(workdir / "autograded" / "xss" / ASSIGNMENT / "tensors.ipynb", as_version=4)
    mimes = {m for c in autograded.cells if c.cell_type == "code" for o in c.outputs for m in o.get("data", {})}
    assert "text/html" in mimes and not mimes & {"application/javascript", "image/svg+xml"}, mimes
    for cell in autograded.cells:
        for output in cell.get("outputs", []):
            assert "<script" not in output.get("data", {}).get("text/html", ""), output


def test_formgrader_renders_the_submission_without_active_content(untrusted):
    """Formgrader renders the autograded notebook with nbconvert's HTMLExporter, the course's
    config and nbgrader's own ``formgrade`` template: rendered the same way here."""
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config import Config

    from course.nbgrader_api import load_config

    workdir, _, _ = untrusted
    config = load_config(workdir)
    extra = Config()
    extra.HTMLExporter.template_name = "formgrade"
    extra.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    config.merge(extra)
    exporter = HTMLExporter(config=config)
    notebook = workdir / "autograded" / "xss" / ASSIGNMENT / "tensors.ipynb"
    page, _ = exporter.from_filename(str(notebook), resources={"base_url": "/", "mathjax_url": "", "index": 0,
                                                                "total": 1, "notebook_id": "tensors",
                                                                "notebook_path": str(notebook)})
    assert "bold" in page and active_content(page) == []


def test_a_planted_script_does_not_run_in_the_browser(untrusted, tmp_path):
    """The feedback page and Formgrader's rendering, opened in Chromium: the submission's
    scripts and handlers never run. A control page with the same markup unsanitized shows
    that they would."""
    import browser_support

    reason = browser_support.skip_reason()
    if reason:
        pytest.skip(reason)
    workdir, _, _ = untrusted
    control = tmp_path / "control.html"
    control.write_text(f"<html><body>{XSS_MARKDOWN}<b>bold</b></body></html>", encoding="utf-8")
    pages = {"feedback": workdir / "feedback" / "xss" / ASSIGNMENT / "tensors.html", "control": control}
    seen = {}
    with browser_support.chromium() as context:
        page = context.new_page()
        page.route("http*://**", lambda route: route.abort())  # offline: only the page itself
        for name, path in pages.items():
            page.goto(path.as_uri())
            page.wait_for_timeout(1500)
            seen[name] = (page.evaluate("() => window.PWNED === undefined ? null : String(window.PWNED)"),
                          "bold" in page.inner_text("body"))
    assert seen["control"][0] is not None, "the control page's planted script did not run: the check proves nothing"
    assert seen["feedback"] == (None, True), seen
