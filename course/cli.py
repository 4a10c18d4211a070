"""The ``course`` command: argument parsing and wiring, nothing else."""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import sys
from pathlib import Path

from course import interrupts
from course.assignments import CourseError, find_root, resolve


def cmd_release(root: Path, args) -> int:
    from course.release import release

    for path in release(root, resolve(root, args.assignments)):
        print(f"released {path.relative_to(root)}")
    return 0


def cmd_check(root: Path, args) -> int:
    from course.invariants import check

    def each(name, problems):  # as each assignment is checked: a release takes seconds each
        print(f"{'ok  ' if not problems else 'FAIL'} {name}", flush=True)
        for p in problems:
            print(f"     - {p}", flush=True)

    report = check(root, resolve(root, args.assignments), fresh_release=not args.no_release, each=each)
    failed = sum(bool(problems) for problems in report.values())
    print(f"{len(report) - failed}/{len(report)} assignments pass every invariant")
    return 1 if failed else 0


def grade_and_report(root: Path, assignment, only=None, **options) -> list:
    from course.grading import grade, table

    print(f"{assignment.name}:", flush=True)
    options.setdefault("announce", lambda line: print(f"  {line}", flush=True))
    terminal = sys.stderr.isatty()
    if not terminal:  # a CI log or a file: one line per student as each is done, not silence until the end
        options.setdefault("progress", lambda r: print(f"  {r.student_id}: {r.status}, {r.score:g}/{r.max_score:g}",
                                                       flush=True))
    results = grade(root, assignment, only=only, bar=terminal, **options)
    if results:
        print(table(results, assignment))
    shard = options.get("shard")
    print(f"wrote grades/{assignment.name}.csv"
          + (f" (shard {shard[0]}/{shard[1]}'s students)" if shard else "")
          + ", grades/gradebook.csv, grades/summary.html, "
          f"autograded/*/{assignment.name}/ (and a .log per student), feedback/*/{assignment.name}/\n")
    return results


def _limits(root: Path, args):
    """c.Sandbox's limits, with this run's flags on top."""
    from dataclasses import replace

    from course.grading.sandbox import parse_size
    from course.grading.settings import Sandbox
    from course.nbgrader_api import load_config

    limits = Sandbox(config=load_config(root)).limits()
    changes = {}
    if args.memory:
        changes["memory"] = parse_size(args.memory)
    if args.cell_timeout:
        changes["cell_timeout"] = args.cell_timeout
    if args.notebook_timeout:
        changes["notebook_timeout"] = args.notebook_timeout
    return replace(limits, **changes)


def cmd_grade(root: Path, args) -> int:
    from course.grading.cluster import parse_cluster, parse_shard

    (assignment,) = resolve(root, [args.assignment])
    shard = parse_shard(args.shard) if args.shard else None  # bad values say so at once
    if args.cluster:
        parse_cluster(args.cluster)
    options = {"jobs": args.jobs, "unsafe": args.unsafe, "limits": _limits(root, args),
               "feedback": not args.no_feedback}
    if args.notebook:
        if args.cluster or args.shard:
            raise CourseError("--notebook grades one notebook here: it does not go with --cluster or --shard")
        return grade_one_notebook(root, assignment, args, options)
    if shard:
        options["shard"] = shard
    if args.cluster:
        options["cluster"] = args.cluster
    if args.json:
        raise CourseError("--json goes with --notebook PATH --student ID (one notebook)")
    results = grade_and_report(root, assignment, only=args.student or None, force=args.force, **options)
    bad = ("invalid", "missing", "crashed", "timeout", "killed")
    return 1 if args.strict and any(r.status in bad for r in results) else 0


def grade_one_notebook(root: Path, assignment, args, options) -> int:
    """CI: grade a loose notebook (a student's repository) in a scratch course; print the
    result (JSON with --json). Exit 0 whenever grading ran, whatever the score."""
    import json
    import tempfile

    from course.grading import by_exercise, grade_in_scratch

    if not args.student or len(args.student) != 1:
        raise CourseError("--notebook PATH needs exactly one --student ID")
    (student,) = args.student
    path = Path(args.notebook)
    if not path.is_file():
        raise CourseError(f"no notebook at {path}")
    with tempfile.TemporaryDirectory(prefix="course-grade-") as scratch:
        announce = (lambda line: print(line, file=sys.stderr)) if args.json else print
        options = {**options, "feedback": options["feedback"] and bool(args.feedback_dir)}
        results = grade_in_scratch(root, assignment, {student: path.read_bytes()}, Path(scratch),
                                   announce=announce, **options)
        result = results[student]
        feedback = None
        if args.feedback_dir:
            made = Path(scratch) / "feedback" / student / assignment.name / f"{assignment.notebook_id}.html"
            if made.is_file():
                target = Path(args.feedback_dir)
                target.mkdir(parents=True, exist_ok=True)
                feedback = target / made.name
                shutil.copy(made, feedback)
    exercises = by_exercise(result, assignment.exercises)
    if args.json:
        print(json.dumps({
            "student_id": result.student_id, "assignment": result.assignment, "notebook": str(path),
            "status": result.status, "score": result.score, "max_score": result.max_score,
            "message": result.message, "feedback": str(feedback) if feedback else None,
            "exercises": {name: {"score": s, "max_score": top} for name, (s, top) in exercises.items()},
        }, indent=2))
    else:
        print(f"{student}: {result.status}, {result.score:g}/{result.max_score:g}"
              + (f" ({result.message})" if result.message else ""))
        for name, (score, top) in exercises.items():
            print(f"  {name}: {'?' if score is None else f'{score:g}'}/{top:g}")
    return 0


def _real_students(root: Path, examples: set[str]) -> list[str]:
    """Students of a real class: folders under submitted/ or rows in the gradebook that are
    not the bundled examples."""
    found = set()
    submitted = root / "submitted"
    if submitted.is_dir():
        found |= {p.name for p in submitted.iterdir()} - examples
    if os.environ.get("COURSE_DB_URL"):
        found.add("(the class in COURSE_DB_URL)")
    elif (root / "gradebook.db").is_file():
        import sqlite3

        try:
            with sqlite3.connect(f"file:{root / 'gradebook.db'}?mode=ro", uri=True) as db:
                found |= {row[0] for row in db.execute("select id from student")} - examples
        except sqlite3.Error:
            pass
    return sorted(found)


def cmd_demo(root: Path, args) -> int:
    """Release everything, submit the bundled examples, grade them. In a course that has a
    class already (submissions or gradebook rows of other students, or COURSE_DB_URL), the
    demo runs in demo/, a copy with its own gradebook: the real class is never touched."""
    from course.release import release

    todo = resolve(root, args.assignments)
    examples = root / "examples"
    names = {p.name for p in examples.iterdir() if p.is_dir()} if examples.is_dir() else set()
    real = _real_students(root, names)
    where, db_url = root, None
    if real:
        where = root / "demo"
        print(f"this course has a class ({len(real)} students besides the examples): the demo runs in "
              f"{where.relative_to(root)}/ with its own gradebook, and the class's grades are not touched")
        where.mkdir(exist_ok=True)
        for name in ("nbgrader_config.py", "SYLLABUS.md"):
            shutil.copy(root / name, where / name)
        shutil.rmtree(where / "source", ignore_errors=True)
        shutil.copytree(root / "source", where / "source")
        db_url = f"sqlite:///{where / 'gradebook.db'}"
    for path in release(where, todo, db_url):
        print(f"released {path.relative_to(root)}")
    graded = 0
    for assignment in todo:
        copied = []
        for folder in sorted(examples.glob(f"*/{assignment.name}")):
            target = where / "submitted" / folder.parent.name / assignment.name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(folder, target)
            copied.append(folder.parent.name)
        if copied:  # the bundled examples: trusted
            grade_and_report(where, assignment, only=copied, unsafe=None, db_url=db_url)
            graded += 1
    print(f"demo: {graded} assignments graded; grades in {where.relative_to(root) / 'grades' if real else 'grades'}/, "
          "feedback HTML in feedback/<student>/<assignment>/")
    return 0


def cmd_validate(root: Path, args) -> int:
    """Run a notebook's visible tests as the student sees them; non-zero exit on failure
    (``nbgrader validate`` exits 0 either way, nbgrader #1908)."""
    from course.nbgrader_api import load_config
    from course.nbgrader_ext import CourseValidator

    from course.grading.intake import NotebookError, parse_notebook, read_bytes

    status = 0
    for path in args.notebooks:
        if not Path(path).is_file():
            print(f"{path}: no such notebook")
            status = 1
            continue
        try:  # what grading would refuse, said in one line before anything runs
            nb = parse_notebook(read_bytes(Path(path), 64 << 20))
            if not any(c.get("metadata", {}).get("nbgrader", {}).get("grade") for c in nb.cells):
                raise NotebookError("it has no test cells: open the released notebook of the assignment")
        except NotebookError as error:
            print(f"{path}: cannot be validated: {error}")
            status = 1
            continue
        try:
            result = CourseValidator(config=load_config(root)).validate(path)  # stderr is not failure
        except Exception as error:  # noqa: BLE001 - nbgrader's own errors, in one line
            print(f"{path}: cannot be validated: {' '.join(str(error).split())[:200]}")
            status = 1
            continue
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

    s = sub.add_parser("grade", help="autograde submitted/*/ASSIGNMENT in sandboxes, write feedback and grades/",
                       description="Grade every submission of ASSIGNMENT (only new or changed ones, unless "
                                   "--force), each in a bubblewrap sandbox with the limits of nbgrader_config.py. "
                                   "With --notebook PATH --student ID: grade one loose notebook (CI). "
                                   "The gradebook is COURSE_DB_URL when set (e.g. postgresql://...), else "
                                   "gradebook.db.")
    s.add_argument("assignment")
    s.add_argument("--student", action="append", help="grade only this student (repeatable)")
    s.add_argument("--notebook", metavar="PATH", help="grade this notebook as --student's submission (CI)")
    s.add_argument("--json", action="store_true", help="with --notebook: print the result as JSON")
    s.add_argument("--feedback-dir", metavar="DIR", help="with --notebook: write the feedback HTML there")
    s.add_argument("--jobs", "-j", type=int, help="submissions graded at once (default: c.Sandbox.jobs, else cores)")
    s.add_argument("--force", action="store_true", help="grade again submissions that have not changed")
    s.add_argument("--unsafe", action="store_true", help="run students' code WITHOUT a sandbox (no bubblewrap)")
    s.add_argument("--memory", metavar="SIZE", help="memory per submission, e.g. 4G (default: c.Sandbox.memory)")
    s.add_argument("--cell-timeout", type=float, metavar="S", help="seconds per cell (default: c.Sandbox.cell_timeout)")
    s.add_argument("--notebook-timeout", type=float, metavar="S", help="seconds per notebook")
    s.add_argument("--no-feedback", action="store_true", help="do not write feedback HTML")
    s.add_argument("--strict", action="store_true", help="exit 1 if any submission was not graded completely")
    s.add_argument("--cluster", metavar="ADDRESS",
                   help="grade on a Dask cluster: local (one worker per core), local:N, or a scheduler address "
                        "such as tcp://scheduler:8786 (the gradebook must then be PostgreSQL: COURSE_DB_URL)")
    s.add_argument("--shard", metavar="I/N",
                   help="grade only the I-th of N slices of the class (1 <= I <= N; by a stable hash of the "
                        "student id), e.g. one job of a CI matrix writing to a shared gradebook")
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


INTERRUPTED = 130  # the exit status of a command stopped by Ctrl-C or SIGTERM


def main(argv: list[str] | None = None) -> int:
    interrupts.install()
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
    except KeyboardInterrupt:
        from course.grading.sandbox import close_pools

        close_pools(kill=True)  # however far it got (workers still starting too): nothing waits for them
        print("course: interrupted; whatever was graded is kept (run the same command again to go on)",
              file=sys.stderr)
        return INTERRUPTED


def run() -> None:
    """The ``course`` command: ``main``, then exit. An interrupted run leaves at once: the
    sandboxes are killed and what was graded is on disk, and the interpreter would otherwise
    join threads that may still wait on a killed sandbox (Ctrl-C would seem to do nothing)."""
    code = main()
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
