"""The course as students and instructors meet it: JupyterLab started as ``course lab``
starts it, driven through a real Chromium.

One server for the module, on a scratch copy of the course (the real release/ and
gradebook are never touched); the demo class's 00_setup is graded in the background
while the student tests run. Screenshots of every step go to ``test-output/browser/``.
Without Chromium or Playwright the module is skipped with one line saying how to
install them.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

import browser_support as bs

_REASON = bs.skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

# One worker runs them all, in order: they share a server and a scratch course.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

TENSORS = "release/01_tensors/tensors.ipynb"
ANSWER = '''def tensor_attributes(t):
    """The attributes of tensor ``t`` as a dict."""
    return {"dtype": t.dtype, "device": t.device, "layout": t.layout,
            "shape": tuple(t.shape), "ndim": t.ndim, "requires_grad": t.requires_grad}'''
# A right answer that warns (on stderr), as torch code often does: grading does not fail it,
# and neither must Validate (course.lab_extension).
WARNING_ANSWER = ANSWER.replace('''    return {''', '''    import warnings
    warnings.warn("a harmless warning from a right answer")
    return {''', 1)
HAND_GRADES = {"anaconda_vs_miniconda": 2, "install_commands": 1}
GRADING_TIMEOUT = 150  # seconds: the demo class of 00_setup, graded while other tests run


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A scratch course root, with a lesson figure notebook; the demo class of 00_setup
    is being graded in a child process (``course.grading``) meanwhile."""
    root = bs.scratch_course(tmp_path_factory.mktemp("browser") / "course")
    bs.write_figure_notebook(root)
    grading = bs.grade_demo_class(root, "00_setup")
    try:
        yield root, grading
    finally:
        bs.stop_process_group(grading)


@pytest.fixture(scope="module")
def server(course):
    """``course lab``'s JupyterLab on the scratch course, starting (``page`` waits for it)."""
    from course.lab import problems

    root, _ = course
    with bs.lab_server(root, wait=False) as starting:
        trouble = problems()  # what `course lab` checks first, while the server boots
        assert not trouble, f"course lab would refuse to start: {trouble}"
        yield starting


@pytest.fixture(scope="module")
def browser(server):
    with bs.chromium() as context:  # launched while the server boots
        yield context


@pytest.fixture
def page(browser, server, request):
    """A fresh tab; afterwards (a screenshot of it if the test failed) closed, and every
    kernel it started shut down."""
    server.ready()
    failure_shot = bs.SCREENSHOTS / f"{request.node.name}-failure.png"
    failure_shot.unlink(missing_ok=True)
    failed_before = request.session.testsfailed
    tab = browser.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        if request.session.testsfailed > failed_before:
            try:
                bs.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                tab.screenshot(path=str(failure_shot))
            except Exception:  # the screenshot is a courtesy; the failure is already reported
                pass
        tab.close()
        server.shutdown_kernels()


def _graded_test_cells(path) -> dict[str, str]:
    """grade_id → first source line of every visible test cell of a released notebook."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return {
        c["metadata"]["nbgrader"]["grade_id"]: "".join(c["source"]).splitlines()[0]
        for c in nb["cells"]
        if c["cell_type"] == "code" and c["metadata"].get("nbgrader", {}).get("grade")
    }


def test_student_sees_a_clear_failure_then_the_visible_test_passes(page, server):
    shot = bs.Shots("student")

    # The student finds the released notebook in the file browser and opens it.
    bs.open_lab(page, server, "student")
    for folder in ("release", "01_tensors"):
        page.locator(".jp-DirListing-item", has_text=folder).first.dblclick()
    notebook = page.locator(".jp-DirListing-item", has_text="tensors.ipynb").first
    notebook.wait_for()
    shot(page, "finds-release")
    notebook.dblclick()
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=45_000)
    bs.wait_idle(page)

    # Run all: the first unanswered exercise stops the run with the course's message.
    bs.run_all(page)
    test_cell = bs.code_cell(page, "check_attributes(tensor_attributes, torch.zeros(2, 3))")
    failure = "\n".join(bs.errors(test_cell)).strip()
    last_line = failure.splitlines()[-1] if failure else ""
    assert "tensor_attributes is not implemented yet" in last_line, (
        f"the unanswered exercise's test should end with the course's message, got: {last_line!r}")
    bs.show_bottom_of(page, test_cell)
    shot(page, "unanswered-message")

    # The student types a correct answer and runs everything again: the visible test passes,
    # and the run stops at the next unanswered exercise, with its own message.
    typed = bs.replace_source(page, bs.code_cell(page, "def tensor_attributes(t):"), ANSWER)
    assert typed.strip() == ANSWER.strip(), f"the editor holds {typed!r}"
    shot(page, "answer-typed")
    bs.run_all(page)
    assert bs.prompt(test_cell)[1:-2].isdigit(), f"the test cell did not run: {bs.prompt(test_cell)}"
    assert bs.errors(test_cell) == [], f"the visible test still fails: {bs.errors(test_cell)}"
    next_test = bs.code_cell(page, "result = call(tensors_of_rank)")
    assert any("tensors_of_rank is not implemented yet" in e for e in bs.errors(next_test))
    test_cell.scroll_into_view_if_needed()
    shot(page, "visible-test-passes")


def test_validate_reports_what_passes_and_what_fails(page, server, course):
    """With one exercise answered (by a right answer that warns on stderr), Validate
    (nbgrader's toolbar button, which saves first) passes that exercise's test and lists
    every other visible test as failing."""
    root, _ = course
    shot = bs.Shots("validate")
    bs.open_notebook(page, server, "validate", TENSORS)
    bs.replace_source(page, bs.code_cell(page, "def tensor_attributes(t):"), WARNING_ANSWER)
    report = bs.validate(page)
    shot(page, "report")
    bs.close_dialog(page)

    tests = _graded_test_cells(root / TENSORS)
    assert "Success" not in report
    assert "tensor_attributes is not implemented yet" not in report
    assert tests.pop("test_tensor_attributes") not in report, "the answered exercise's test is reported failing"
    assert report.count("The following cell failed:") == len(tests), report[:2000]
    missing = [grade_id for grade_id, first in tests.items() if first not in report]
    assert not missing, f"Validate does not report the failing tests {missing}"
    assert "tensors_of_rank is not implemented yet" in report
    saved = json.loads((root / TENSORS).read_text(encoding="utf-8"))
    assert any("".join(c["source"]).strip() == WARNING_ANSWER.strip() for c in saved["cells"]), (
        "Validate should have saved the typed answer")


def test_lesson_figure_renders_as_an_image(page, server, course):
    shot = bs.Shots("figure")
    bs.open_notebook(page, server, "figure", bs.FIGURE_NOTEBOOK)
    bs.run_all(page)
    image = page.locator(".jp-RenderedImage img").first
    image.wait_for()
    image.scroll_into_view_if_needed()
    info = image.evaluate("i => ({w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, src: i.src.slice(0, 22)})")
    assert info["complete"] and info["w"] > 200 and info["h"] > 100, info
    assert info["src"] == "data:image/png;base64,", info
    assert image.is_visible()
    shot(page, "figure")

    # What the page shows is a drawing, not a blank box.
    import matplotlib.image

    spread = float(matplotlib.image.imread(io.BytesIO(image.screenshot()), format="png").std())
    assert spread > 0.05, f"the figure renders blank (pixel spread {spread:.3f})"


def test_instructor_sees_the_class_in_formgrader_and_hand_grades(page, server, course):
    from nbgrader.api import Gradebook

    root, grading = course
    bs.wait_for(grading, GRADING_TIMEOUT, bs.grading_log(root))
    expected = {r["student_id"]: float(r["score"])
                for r in csv.DictReader((root / "examples" / "expected_scores.csv").open())
                if r["assignment"] == "00_setup"}
    shot = bs.Shots("formgrader")

    bs.open_lab(page, server, "instructor")
    frame = bs.formgrader(page)
    assignments = bs.assignment_rows(frame)
    shot(page, "manage-assignments")
    authored = [p.parent.name for p in (root / "source").glob("*/*.ipynb")]
    assert set(authored) <= set(assignments), f"Formgrader lists {sorted(assignments)}, source/ has {authored}"
    assert assignments["00_setup"] == str(len(expected)), assignments

    rows = bs.open_submissions(page, frame, "00_setup", "setup", students=len(expected))
    shot(page, "submissions")
    assert sorted(rows) == sorted(expected), rows
    for student, score in expected.items():
        assert rows[student]["score"].startswith(f"{score:g} / "), (student, rows[student])
    assert rows["ada"]["needs_manual_grade"], rows["ada"]

    saved = bs.hand_grade(page, frame, "ada", HAND_GRADES)
    shot(page, "hand-graded")
    for grade_id, points in HAND_GRADES.items():
        assert saved[grade_id]["manual_score"] == points, saved[grade_id]

    rows = bs.open_submissions(page, frame, "00_setup", "setup", students=len(expected))
    total = expected["ada"] + sum(HAND_GRADES.values())
    shot(page, "after-grading")
    assert rows["ada"]["score"].startswith(f"{total:g} / "), rows["ada"]
    assert not rows["ada"]["needs_manual_grade"], rows["ada"]

    # nbgrader's gradebook has the grades.
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for grade_id, points in HAND_GRADES.items():
            grade = gb.find_grade(grade_id, "setup", "00_setup", "ada")
            assert grade.manual_score == points and not grade.needs_manual_grade, (grade_id, grade.manual_score)
        submission = gb.find_submission("00_setup", "ada")
        assert submission.score == total and not submission.needs_manual_grade
