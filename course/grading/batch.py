"""Grade a class: every submission under ``submitted/``, safely, in parallel, resumably.

For each student, in this order:

1. the submission folder is checked (``check_submission``): an empty folder is
   ``missing``; a file that is not a notebook, malformed JSON, a notebook without
   nbgrader's cell metadata, duplicated cell ids or a wrongly named notebook is
   ``invalid``, with a message the student can act on;
2. the notebook is prepared the way nbgrader's autograde will prepare it (locked and
   deleted cells restored from the gradebook) and executed in a sandboxed worker
   (``course.grading.sandbox``), ``jobs`` at a time;
3. nbgrader's own autograde records it (one at a time in this process), using the
   execution from step 2 (``course.nbgrader_ext.SandboxExecute``), then writes
   feedback; the row goes to ``grades/<assignment>.csv`` at once.

With ``cluster`` (``course grade A --cluster ADDRESS``), steps 2 and 3 run on the
workers of a Dask cluster, one task per submission, each writing to the shared gradebook
(``course.grading.cluster``); this process checks the submissions, writes what the tasks
send back under the course root, and writes the CSV and the reports. With ``shard``
(``--shard I/N``) only the students of that slice of the class are graded and reported.

A run holds a lock (``autograded/.grading/lock``): a second run on the same course
refuses. What each student's result was made from (the notebook's bytes, the
assignment, the course's checks, the limits) is kept in
``autograded/.grading/<assignment>.json`` (with a server gradebook such as PostgreSQL:
in the gradebook's database, ``course.gradebook.SharedState``, so every machine grading
the class sees it), so a run that is interrupted loses nothing already graded, and the
next run grades only new or changed submissions (all of them with ``force``). Each
student's log is ``autograded/<student>/<assignment>.log``.
"""

from __future__ import annotations

import collections
import concurrent.futures as futures
import contextlib
import datetime
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from course import interrupts
from course.assignments import Assignment, CourseError, resolve
from course.gradebook import SharedState, check_reachable, exclusive, is_sqlite
from course.grading import execute as ex
from course.grading.shards import shard_of
from course.grading.intake import Caps, Intake, inspect, name_problem, printable, stage, submission_time
from course.grading.results import Result, write_csv, write_gradebook, write_summary
from course.grading.sandbox import Limits, SandboxError, close_pools, pool_for, resume_pools, sandbox_problem
from course.grading.settings import Sandbox, describe
from course.grading.submission import executed, record as _record, sanitize, unprepared
from course.grading.submission import write_log as _write_log
from course.nbgrader_api import api_for, load_config
from course.release import release

STATE_VERSION = 1


# -- what is in submitted/ ---------------------------------------------------------------------

def students(root: Path, assignment: str) -> list[str]:
    """Student ids: every entry ``submitted/<id>/`` holding ``<assignment>/`` (whatever the
    name: a folder nbgrader cannot handle still gets its row, ``invalid``)."""
    submitted = Path(root) / "submitted"
    if not submitted.is_dir():
        return []
    return sorted((p.name for p in submitted.iterdir() if (p / assignment).is_dir()),
                  key=lambda name: name.encode("utf-8", "surrogateescape"))


def take_in(root: Path, assignment: Assignment, student: str, expected_ids: list[str], caps: Caps,
            others: dict[str, set[str]] | None = None) -> Intake:
    """One student's submission, read safely (``course.grading.intake``)."""
    problem = name_problem(student)
    if problem:
        return Intake("invalid", problem)
    try:
        return inspect(root / "submitted" / student / assignment.name, assignment.notebook, expected_ids, caps, others)
    except Exception as error:  # noqa: BLE001 - one student's files never stop the class
        return Intake("invalid", f"the submission could not be read ({type(error).__name__}: "
                                 f"{' '.join(str(error).split())[:160]})")


# -- the lock and the record of what was graded --------------------------------------------------

def _grading_dir(root: Path) -> Path:
    folder = Path(root) / "autograded" / ".grading"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def grading_lock(root: Path):
    """Only one ``course grade`` at a time on a course: a second one refuses at once."""
    path = _grading_dir(root) / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise CourseError(f"another `course grade` is running on this course ({holder}); "
                              "wait for it to finish, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, started {datetime.datetime.now():%Y-%m-%d %H:%M:%S}".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


class State:
    """``autograded/.grading/<assignment>.json``: per student, the fingerprint of what was
    graded and its result."""

    def __init__(self, root: Path, assignment: str):
        self.path = _grading_dir(root) / f"{assignment}.json"
        self.students: dict[str, dict] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == STATE_VERSION:
                self.students = data.get("students", {})
        except (OSError, ValueError):
            pass

    def entry(self, student: str) -> dict | None:
        return self.students.get(student)

    def get(self, student: str, fingerprint: str, limits: str) -> Result | None:
        return earlier(self.entry(student), fingerprint, limits)

    def put(self, student: str, fingerprint: str, limits: str, result: Result) -> None:
        self.students[student] = {"fingerprint": fingerprint, "limits": limits, "result": result.to_json()}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": STATE_VERSION, "students": self.students}, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def earlier(entry: dict | None, fingerprint: str, limits: str) -> Result | None:
    """The earlier result, if the same notebook was graded against the same assignment;
    one that was stopped by a limit only if the limits are the same too."""
    if entry and entry.get("fingerprint") == fingerprint:
        try:
            result = Result.from_json(entry["result"])
        except (KeyError, TypeError):
            return None
        if result.status in ("graded", "needs manual grading") or entry.get("limits") == limits:
            return result
    return None


def state_for(root: Path, db: str, assignment: str):
    """Where what was graded is kept: next to the SQLite gradebook's course, or in a server gradebook."""
    if is_sqlite(db):
        return State(root, assignment)
    return _SharedState(db, assignment)


class _SharedState(SharedState):
    def get(self, student: str, fingerprint: str, limits: str) -> Result | None:
        return earlier(self.entry(student), fingerprint, limits)


def _course_code_hash() -> str:
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        if "grading" in path.relative_to(package).parts[:1]:
            continue  # the grader's own plumbing does not change a grade
        digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# -- preparing and recording one submission -------------------------------------------------------

def intake_config():
    """nbgrader reads submissions from the staging area (``stage_for_nbgrader``), never from
    ``submitted/``: only the notebook and the collection's timestamp reach it."""
    from traitlets.config import Config

    extra = Config()
    extra.CourseDirectory.submitted_directory = str(Path("autograded") / ".grading" / "intake")
    return extra


def stage_for_nbgrader(root: Path, assignment: Assignment, student: str, intake: Intake) -> Path:
    folder = _grading_dir(root) / "intake" / student / assignment.name
    return stage(intake, folder, assignment.notebook, submission_time(root, assignment.name, student))


def _other_assignments(root: Path, assignment: Assignment) -> dict[str, set[str]]:
    """The grade ids each other assignment of the syllabus uses (its exercises and their tests),
    to name the assignment a student sent by mistake."""
    from course.assignments import syllabus

    try:
        contract = syllabus(root)
    except CourseError:
        return {}
    return {name: {*other.exercises, *(f"test_{e}" for e in other.exercises)}
            for name, other in contract.items() if name != assignment.name}


# -- grading a class ------------------------------------------------------------------------------

def _resolve_unsafe(unsafe: bool | None, settings: Sandbox) -> bool:
    if unsafe or settings.unsafe:
        return True
    problem = sandbox_problem(settings.bwrap)
    if problem is None:
        return False
    if unsafe is None:
        print(f"course: WARNING: grading without a sandbox: {problem}", file=sys.stderr)
        return True
    raise CourseError(f"refusing to run student code: {problem}")


def grade(root: Path, assignment: Assignment, only: list[str] | None = None, feedback: bool = True,
          db_url: str | None = None, progress=None, *, jobs: int | None = None, force: bool = False,
          limits: Limits | None = None, unsafe: bool | None = False, bar: bool = False,
          announce=None, cluster: str | None = None, shard: tuple[int, int] | None = None) -> list[Result]:
    """Autograde ``submitted/*/<assignment>``; returns one ``Result`` per student.

    ``jobs``: submissions executed at once (default: ``c.Sandbox.jobs``, else the
    number of cores). ``force``: grade again what was graded before. ``limits``:
    override ``c.Sandbox``'s. ``unsafe``: ``True`` runs without a sandbox; ``False``
    refuses when there is none; ``None`` warns and goes on without one. ``progress``
    is called with each student's ``Result`` as it is ready; ``bar`` shows a
    progress bar; ``announce`` gets the one-line description of sandbox and limits.
    ``cluster``: a Dask cluster address (``local``, ``local:N``, ``tcp://host:8786``) that
    grades the submissions; ``shard``: ``(i, n)``, grade only the i-th of n slices of the class."""
    root = Path(root)
    config = load_config(root)
    settings = Sandbox(config=config)
    limits = limits or settings.limits()
    jobs = settings.job_count(jobs)
    unsafe = _resolve_unsafe(unsafe, settings)
    spec = settings.spec(limits, jobs, unsafe)
    if not unsafe and (exposed := spec.exposes(root)):
        raise CourseError(f"the course root {root} is inside {exposed}, which the sandbox must let submissions "
                          "read: move the course elsewhere")
    if shard is not None and not (1 <= shard[0] <= shard[1]):
        raise CourseError(f"shard {shard[0]}/{shard[1]}: I must be between 1 and N")
    api = api_for(root, db_url)
    check_reachable(api.coursedir.db_url)
    engine = None
    if cluster is not None:  # a bad or unreachable address says so before anything starts
        from course.grading.cluster import Cluster

        engine = Cluster(cluster, api.coursedir.db_url)
    try:
        with grading_lock(root):
            resume_pools()
            if announce:
                said = describe(limits, jobs, unsafe)
                announce(said.replace(f"; {jobs} at a time;", "; one at a time per Dask worker thread;")
                         if engine else said)
            return _grade_locked(root, config, assignment, only, feedback, db_url, progress, jobs, force,
                                 limits, spec, bar, announce, engine, shard)
    finally:
        if engine is not None:
            engine.close()


def _grade_locked(root, config, assignment, only, feedback, db_url, progress, jobs, force, limits, spec, bar,
                  announce, cluster=None, shard=None):
    api = api_for(root, db_url, intake_config())
    db = api.coursedir.db_url
    with exclusive(db, f"course grade {assignment.name}"):  # N machines may start at once
        with Gradebook(db) as gb:
            try:
                gb.find_assignment(assignment.name)
            except MissingEntry:
                release(root, [assignment], db_url)  # records the assignment in the gradebook
        state = state_for(root, db, assignment.name)
    with Gradebook(db) as gb:
        nb_record = gb.find_notebook(assignment.notebook_id, assignment.name)
        expected_ids = [c.name for c in nb_record.source_cells]
        source_hash = hashlib.sha256(json.dumps(
            [(c.name, c.source, c.checksum) for c in nb_record.source_cells]
            + [(c.name, c.max_score) for c in nb_record.grade_cells]).encode()).hexdigest()
        max_score = gb.find_assignment(assignment.name).max_score

    names = students(root, assignment.name)
    in_slice = (lambda s: True) if shard is None else (lambda s: shard_of(s, shard[1]) == shard[0])
    names = [s for s in names if in_slice(s)]
    if only:
        unknown = [s for s in only if s not in names]
        if unknown:
            raise CourseError(f"no submission of {assignment.name} for {', '.join(unknown)} under submitted/")
        names = [s for s in names if s in only]
    if not names and shard is not None and students(root, assignment.name):
        if announce:
            announce(f"shard {shard[0]}/{shard[1]} holds none of the class's students: nothing to grade")
        return []
    if not names:
        raise CourseError(f"no submissions found: expected submitted/<student_id>/{assignment.name}/{assignment.notebook}")

    shared = not is_sqlite(db)
    assignment_key = hashlib.sha256(json.dumps([source_hash, _course_code_hash(), STATE_VERSION]).encode()).hexdigest()
    limits_key = hashlib.sha256(json.dumps(limits.for_worker(1), sort_keys=True).encode()).hexdigest()
    source_dir = Path(api.coursedir.format_path(api.coursedir.source_directory, ".", assignment.name))
    files = ex.assignment_files(source_dir, list(api.coursedir.ignore))
    ex.CURRENT[db] = (spec, limits, jobs, files)

    results: dict[str, Result] = {}
    fingerprints: dict[str, str] = {}
    intakes: dict[str, Intake] = {}
    todo: collections.deque = collections.deque()
    caps = limits.caps()
    others = _other_assignments(root, assignment)
    for student in names:
        intake = take_in(root, assignment, student, expected_ids, caps, others)
        fingerprints[student] = hashlib.sha256(f"{assignment_key}:{intake.digest}:{intake.status}".encode()).hexdigest()
        if intake.status:
            shown = printable(student)
            results[student] = Result(shown, assignment.name, 0.0, max_score, intake.status, intake.message)
            continue
        previous = None if force else state.get(student, fingerprints[student], limits_key)
        autograded = root / "autograded" / student / assignment.name / assignment.notebook
        if previous is not None and (shared or autograded.is_file()):  # shared: graded on another machine
            results[student] = previous
            continue
        intakes[student] = intake
        todo.append((student, intake.message))

    if announce:
        unchanged = sum(1 for r in results.values() if r.status not in ("invalid", "missing"))
        announce(f"{len(todo)} to grade, {unchanged} unchanged since they were graded"
                 + (" (--force grades them again)" if unchanged else "")
                 + f", {len(results) - unchanged} missing or invalid")
    # the class's rows: last run's for students still in submitted/, replaced as students are graded
    rows = {s: Result.from_json(e["result"]) for s, e in state.students.items()
            if (root / "submitted" / s / assignment.name).is_dir() and "result" in e and in_slice(s)}
    rows.update(results)

    def publish(student: str, result: Result, remember: bool = True) -> None:
        results[student] = rows[student] = result
        if remember:  # a task the cluster lost is not remembered: the next run grades it again
            state.put(student, fingerprints[student], limits_key, result)
        write_csv([rows[s] for s in sorted(rows)], root / "grades" / f"{assignment.name}.csv")
        if progress:
            progress(result)

    for student, result in list(results.items()):
        if result.status in ("invalid", "missing"):
            _write_log(root, assignment, result, [])
            publish(student, result)

    bar_handle = _progress_bar(assignment, len(todo)) if bar and todo else None
    if cluster is not None:
        try:
            if todo:
                _grade_on_cluster(root, config, assignment, db, cluster, list(todo), intakes, files, limits, spec, feedback,
                                  max_score, publish, bar_handle, announce)
        finally:
            ex.CURRENT.pop(db, None)
            if bar_handle is not None:
                bar_handle.close()
        return _finish(root, assignment, names, results, rows, state)
    try:
        pool = pool_for(spec, jobs) if todo else None
    except SandboxError as error:
        raise CourseError(str(error)) from None
    executor = futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="course-grade")
    pending: dict[futures.Future, tuple] = {}
    try:
        def fill():
            while todo and len(pending) < 2 * jobs:
                student, note = todo.popleft()
                began = time.perf_counter()
                try:
                    path = stage_for_nbgrader(root, assignment, student, intakes.pop(student))
                    nb = sanitize(config, db, assignment, student, path)
                except Exception as error:  # noqa: BLE001 - corrupted nbgrader metadata and the like
                    result = unprepared(assignment, student, max_score, error)
                    _write_log(root, assignment, result, [])
                    publish(student, result)
                    _tick(bar_handle, result)
                    continue
                cells = ex.code_cells(nb)
                future = executor.submit(ex.execute, cells, limits, spec, jobs, files)
                pending[future] = (student, cells, note, time.perf_counter() - began)

        fill()
        while pending:
            # with a timeout: a signal delivered to another thread only sets a flag, and the main
            # thread must wake up to run the handler (Ctrl-C, SIGTERM)
            done, _ = futures.wait(pending, timeout=0.2, return_when=futures.FIRST_COMPLETED)
            interrupts.check()
            for future in done:
                student, cells, note, prepared = pending.pop(future)
                began = time.perf_counter()
                outcome = executed(db, assignment, student, cells, future.result)
                try:
                    result = _record(root, api, db, assignment, student, max_score, outcome, note, feedback)
                except Exception as error:  # noqa: BLE001 - one submission never stops the class
                    result = Result(student, assignment.name, 0.0, max_score, "crashed",
                                    f"the grader failed on this submission ({type(error).__name__}: "
                                    f"{' '.join(str(error).split())[:200]})")
                    _write_log(root, assignment, result, [])
                result.grader_seconds = round(prepared + time.perf_counter() - began, 3)
                publish(student, result)
                _tick(bar_handle, result)
            fill()
    except BaseException:
        if pool is not None:
            pool.interrupt()
        executor.shutdown(wait=False, cancel_futures=True)
        close_pools(kill=True)  # what was running is lost anyway: do not wait for it to wind down
        raise
    finally:
        executor.shutdown(wait=True)
        ex.CURRENT.pop(db, None)
        if bar_handle is not None:
            bar_handle.close()

    return _finish(root, assignment, names, results, rows, state)


def _finish(root, assignment, names, results, rows, state) -> list[Result]:
    ordered = [results[s] for s in names]
    write_csv([rows[s] for s in sorted(rows)], root / "grades" / f"{assignment.name}.csv")
    _write_reports(root, assignment, [rows[s] for s in sorted(rows)], state)
    if isinstance(state, SharedState):
        state.close()
    return ordered


def _task_files(root: Path, assignment: Assignment, student: str, intake: Intake) -> dict[str, str]:
    """What a Dask task gets of a submission: the notebook alone and the collection's timestamp."""
    import base64

    files = {assignment.notebook: base64.b64encode(intake.data or b"").decode()}
    timestamp = submission_time(root, assignment.name, student)
    if timestamp:
        files["timestamp.txt"] = base64.b64encode(timestamp.encode() + b"\n").decode()
    return files


def _grade_on_cluster(root, config, assignment, db, engine, todo, intakes, files, limits, spec, feedback, max_score,
                      publish, bar_handle, announce) -> None:
    """Steps 2 and 3 for ``todo`` on a Dask cluster; what the tasks send back is written here."""
    import base64
    import dataclasses
    import uuid

    from course.assignments import CONFIG_FILE
    from course.grading import cluster as dask_grading

    engine.start()
    if engine.local is not None and not limits.threads:  # share this machine's cores between the workers
        limits = dataclasses.replace(limits, threads=max(1, (os.cpu_count() or 1) // len(engine.local.workers)))
    if announce:
        announce(f"grading {len(todo)} submissions on {engine.description}")
    bundle = {"id": uuid.uuid4().hex, "assignment": assignment, "db": db, "config": (root / CONFIG_FILE).read_bytes(),
              "files": files, "limits": dataclasses.asdict(limits), "unsafe": spec.unsafe, "feedback": feedback,
              "max_score": max_score}
    tasks = [(student, note, _task_files(root, assignment, student, intakes[student])) for student, note in todo]

    def done(student: str, answer: dict) -> None:
        for part in ("autograded", "feedback"):  # the worker's copy replaces this machine's
            shutil.rmtree(root / part / student / assignment.name, ignore_errors=True)
        for name, data in answer.get("files", {}).items():
            path = (root / name).resolve()
            if root.resolve() not in path.parents:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(data))
        result = Result.from_json(answer["result"])
        publish(student, result)
        _tick(bar_handle, result)

    def failed(student: str, message: str) -> None:
        result = Result(student, assignment.name, 0.0, max_score, "crashed",
                        f"{message}; run `course grade` again to retry it")
        _write_log(root, assignment, result, [])
        publish(student, result, remember=False)
        _tick(bar_handle, result)

    dask_grading.run(engine, bundle, tasks, done, failed)


def _progress_bar(assignment: Assignment, total: int):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=assignment.name, unit="student", file=sys.stderr, dynamic_ncols=True)


def _tick(handle, result: Result) -> None:
    if handle is not None:
        counts = getattr(handle, "_statuses", collections.Counter())
        counts[result.status] += 1
        handle._statuses = counts
        handle.set_postfix_str(", ".join(f"{n} {s}" for s, n in counts.most_common()), refresh=False)
        handle.update(1)


def _write_reports(root: Path, assignment: Assignment, current: list[Result] | None = None, state=None) -> None:
    """``grades/gradebook.csv`` and ``grades/summary.html`` for every assignment graded so far
    (``current``: this run's class of ``assignment``, a shard's slice only for a shard)."""
    classes = []
    try:
        known = resolve(root, None)
    except CourseError:
        known = [assignment]
    shared = state is not None and not isinstance(state, State)
    for item in known:
        if item.name == assignment.name and current is not None:
            classes.append((item, current))
            continue
        try:
            if shared:
                other = SharedState(state.url, item.name)
                try:
                    entries = other.students.values()
                finally:
                    other.close()
            else:
                path = _grading_dir(root) / f"{item.name}.json"
                if not path.is_file():
                    continue
                entries = json.loads(path.read_text(encoding="utf-8")).get("students", {}).values()
            results = [Result.from_json(e["result"]) for e in entries]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        except Exception as error:  # noqa: BLE001 - a report is never worth a failed run
            print(f"course: could not read what was graded of {item.name}: {error}", file=sys.stderr)
            continue
        if results:
            classes.append((item, sorted(results, key=lambda r: r.student_id)))
    grades = root / "grades"
    write_gradebook(grades, [a.name for a in known])
    try:
        write_summary(grades / "summary.html", classes)
    except Exception as error:  # noqa: BLE001 - a report is never worth a failed run
        print(f"course: could not write grades/summary.html: {error}", file=sys.stderr)


def grade_in_scratch(root: Path, assignment: Assignment, submissions: dict, workdir: Path,
                     feedback: bool = False, **options) -> dict[str, Result]:
    """Grade ``submissions`` (student id → notebook node, or ``bytes`` for a raw file)
    in a scratch copy of the course at ``workdir``, with its own gradebook: the
    instructor's gradebook, release/ and submitted/ are never touched. Options go to
    ``grade`` (``unsafe`` defaults to ``None``: a sandbox when there is one)."""
    from course.release import fresh_release

    fresh_release(root, assignment, workdir)
    for student, nb in submissions.items():
        folder = workdir / "submitted" / student / assignment.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / assignment.notebook
        if isinstance(nb, bytes):
            path.write_bytes(nb)
        elif nb is not None:
            nbformat.write(nb, path)
    options.setdefault("unsafe", None)
    results = grade(workdir, assignment, feedback=feedback, db_url=f"sqlite:///{workdir / 'gradebook.db'}", **options)
    return {r.student_id: r for r in results}
