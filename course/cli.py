"""The ``course`` command: argument parsing and wiring, nothing else."""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
from pathlib import Path

from course.assignments import CourseError, find_root, resolve


def cmd_release(root: Path, args) -> int:
    from course.release import release

    for path in release(root, resolve(root, args.assignments)):
        print(f"released {path.relative_to(root)}")
    return 0


def cmd_check(root: Path, args) -> int:
    from course.invariants import check

    report = check(root, resolve(root, args.assignments), fresh_release=not args.no_release)
    failed = 0
    for name, problems in report.items():
        print(f"{'ok  ' if not problems else 'FAIL'} {name}")
        for p in problems:
            print(f"     - {p}")
        failed += bool(problems)
    print(f"{len(report) - failed}/{len(report)} assignments pass every invariant")
    return 1 if failed else 0


def grade_and_report(root: Path, assignment, only=None) -> list:
    from course.grading import grade, table, write_csv

    def progress(student):
        print(f"  grading {student} ...", flush=True)

    print(f"{assignment.name}:", flush=True)
    results = grade(root, assignment, only=only, progress=progress)
    path = write_csv(results, root / "grades" / f"{assignment.name}.csv")
    print(table(results, assignment))
    print(f"wrote {path.relative_to(root)}, autograded/*/{assignment.name}/, feedback/*/{assignment.name}/\n")
    return results


def cmd_grade(root: Path, args) -> int:
    (assignment,) = resolve(root, [args.assignment])
    results = grade_and_report(root, assignment, only=args.student or None)
    return 1 if args.strict and any(r.status in ("error", "missing") for r in results) else 0


def cmd_demo(root: Path, args) -> int:
    """Release everything, submit the bundled examples, grade them."""
    from course.release import release

    todo = resolve(root, args.assignments)
    for path in release(root, todo):
        print(f"released {path.relative_to(root)}")
    examples = root / "examples"
    graded = 0
    for assignment in todo:
        copied = []
        for folder in sorted(examples.glob(f"*/{assignment.name}")):
            target = root / "submitted" / folder.parent.name / assignment.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target)
            copied.append(folder.parent.name)
        if copied:
            grade_and_report(root, assignment, only=copied)
            graded += 1
    print(f"demo: {graded} assignments graded; grades in grades/, feedback HTML in feedback/<student>/<assignment>/")
    return 0


def cmd_validate(root: Path, args) -> int:
    """Run a notebook's visible tests as the student sees them; non-zero exit on failure
    (``nbgrader validate`` exits 0 either way, nbgrader #1908)."""
    from nbgrader.validator import Validator

    from course.nbgrader_api import load_config

    status = 0
    for path in args.notebooks:
        if not Path(path).is_file():
            print(f"{path}: no such notebook")
            status = 1
            continue
        result = Validator(config=load_config(root)).validate(path)
        problems = {k: v for k, v in result.items() if v}
        if not problems:
            print(f"{path}: every visible test passes")
            continue
        status = 1
        for kind, cells in problems.items():
            for cell in cells:
                text = html.unescape(re.sub(r"<[^>]+>", "", cell.get("error", "")))  # nbgrader renders ANSI as HTML
                lines = text.strip().splitlines() or [cell.get("source", "").strip().splitlines()[0][:80]]
                print(f"{path}: {kind.replace('_', ' ')}: {lines[-1]}")
    return status


def cmd_lab(root: Path, args) -> int:
    from course.lab import main as lab

    return lab(root, args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="course", description="Release, check and grade the PyTorch course.")
    p.add_argument("--root", help="course root (default: the folder with nbgrader_config.py above the working directory)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("release", help="source/ → release/ for the named assignments (default: all)")
    s.add_argument("assignments", nargs="*")
    s.set_defaults(run=cmd_release)

    s = sub.add_parser("check", help="check the course's invariants; non-zero exit on any failure")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--no-release", action="store_true", help="skip comparing release/ with a fresh release")
    s.set_defaults(run=cmd_check)

    s = sub.add_parser("grade", help="autograde submitted/*/ASSIGNMENT, write feedback and grades/ASSIGNMENT.csv")
    s.add_argument("assignment")
    s.add_argument("--student", action="append", help="grade only this student (repeatable)")
    s.add_argument("--strict", action="store_true", help="exit non-zero if any submission could not be graded")
    s.set_defaults(run=cmd_grade)

    s = sub.add_parser("demo", help="release, submit the bundled examples/ and grade them")
    s.add_argument("assignments", nargs="*")
    s.set_defaults(run=cmd_demo)

    s = sub.add_parser("validate", help="run a notebook's tests; non-zero exit if any fails")
    s.add_argument("notebooks", nargs="+")
    s.set_defaults(run=cmd_validate)

    s = sub.add_parser("lab", help="JupyterLab at the course root with nbgrader's extensions (jupyter options after --)")
    s.add_argument("jupyter_args", nargs=argparse.REMAINDER)
    s.set_defaults(run=cmd_lab)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # nbgrader shells out to alembic: make this interpreter's bin/ reachable.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    try:
        root = find_root(args.root)
        return args.run(root, args)
    except CourseError as error:
        print(f"course: {error}", file=sys.stderr)
        return 2
