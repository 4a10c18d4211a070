"""Regenerate the README's screenshots: docs/screenshots/student.png (a released notebook
in JupyterLab, an unanswered exercise's message) and docs/screenshots/formgrader.png (an
instructor hand-grading a written answer of the demo class in Formgrader).

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Runs what the browser tests run (tests/browser_support.py): JupyterLab started as
``course lab`` starts it, on a scratch copy of the course with the demo class of 00_setup
graded, driven by Debian's Chromium through Playwright. The course's own release/ and
gradebook are never touched. About a minute on two cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import browser_support as bs  # noqa: E402

TENSORS_TEST_LINE = "check_attributes(tensor_attributes, torch.zeros(2, 3))"
HAND_GRADES = {"anaconda_vs_miniconda": 2, "install_commands": 2}


def student(page, server, out: Path) -> Path:
    bs.open_lab(page, server, "student")
    for folder in ("release", "01_tensors"):
        page.locator(".jp-DirListing-item", has_text=folder).first.dblclick()
    page.locator(".jp-DirListing-item", has_text="tensors.ipynb").first.dblclick()
    page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=45_000)
    bs.wait_idle(page)
    bs.run_all(page)
    test_cell = bs.code_cell(page, TENSORS_TEST_LINE)
    if not any("is not implemented yet" in e for e in bs.errors(test_cell)):
        raise SystemExit("screenshots: the unanswered exercise did not show the course's message")
    bs.show_bottom_of(page, test_cell)
    path = out / "student.png"
    page.screenshot(path=str(path))
    return path


def formgrader(page, server, out: Path) -> Path:
    bs.open_lab(page, server, "instructor")
    frame = bs.formgrader(page)
    bs.open_submissions(page, frame, "00_setup", "setup", students=3)
    bs.hand_grade(page, frame, "ada", HAND_GRADES)
    path = out / "formgrader.png"
    page.screenshot(path=str(path))
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"), help="folder for the PNG files")
    args = parser.parse_args(argv)
    reason = bs.skip_reason()
    if reason:
        print(reason.replace("browser tests skipped", "screenshots: cannot run"), file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="course-screenshots-"))
    grading = None
    try:
        root = bs.scratch_course(scratch / "course")
        grading = bs.grade_demo_class(root, "00_setup")
        with bs.lab_server(root, wait=False) as server, bs.chromium() as browser:
            server.ready()
            page = browser.new_page()
            page.set_default_timeout(30_000)
            made = [student(page, server, out)]
            server.shutdown_kernels()
            bs.wait_for(grading, 300, bs.grading_log(root))
            made.append(formgrader(page, server, out))
    finally:
        if grading is not None:
            bs.stop_process_group(grading)
        shutil.rmtree(scratch, ignore_errors=True)
    for path in made:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"screenshots: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
