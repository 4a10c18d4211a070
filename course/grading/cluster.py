"""Grading a class on a Dask cluster (``course grade A --cluster ADDRESS``) or in slices
(``course grade A --shard I/N``).

**Cluster.** ``ADDRESS`` is ``local`` (a ``distributed.LocalCluster`` with one worker
process per core on this machine), ``local:N`` (N worker processes) or the address of a
running Dask scheduler (``tcp://scheduler:8786``; its workers run ``dask worker
tcp://scheduler:8786 --nthreads 1`` on machines with this course installed, bubblewrap, and
a route to the gradebook). Each Dask task grades one submission exactly as a local run
does (``grade_task``): the worker process keeps one sandbox pool (``pool_for``, created
lazily on its first task) and a scratch course made from what the coordinator sends (the
course's ``nbgrader_config.py`` and the assignment's files); the submission's files travel
with the task. The task runs nbgrader's autograde for that one student against the shared
gradebook, and sends back the result, the autograded notebook, the feedback and the log,
which the coordinating process writes under the course root, with the grades CSV and the
reports. Workers need no shared file system, only the gradebook.

A task whose worker dies is given to another worker by the scheduler (up to
``distributed.scheduler.allowed-failures`` times, 3 by default); a task that fails with an
error is retried (``retries``); a task still running ``TASK_GRACE`` seconds past the
notebook time limit is stopped and its worker restarted (by its nanny). A submission whose task failed every time is reported as
``crashed`` with the reason, and is not remembered as graded, so the next run tries it again.

**Shards.** ``shard_of(student, n)`` is a stable hash of the student id (not its place in a
list), so N jobs that each grade ``--shard i/N`` (a CI matrix) grade every student exactly
once, whatever each job's checkout holds.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from course import interrupts
from course.assignments import CourseError
from course.grading.shards import parse_shard, shard_of  # noqa: F401 - the command line and tests read them here

TASK_GRACE = 300.0  # seconds beyond c.Sandbox.notebook_timeout before a task counts as hung
RETRIES = 2  # extra attempts for a task that raised an error
WATCH_INTERVAL = 5.0  # seconds between looks at how long each task has run
_ADDRESS = re.compile(r"^(tcp|tls|ws|wss|inproc|ucx)://\S+$")


# -- command-line values -----------------------------------------------------------------------

def parse_cluster(text: str) -> tuple[str, int | str]:
    """``local`` → ``("local", cores)``, ``local:N`` → ``("local", N)``, a scheduler address →
    ``("address", address)``; anything else: a one-line ``CourseError``."""
    value = str(text).strip()
    if value == "local":
        return "local", max(1, os.cpu_count() or 1)
    if value.startswith("local:"):
        number = value.removeprefix("local:")
        if number.isdigit() and int(number) >= 1:
            return "local", int(number)
        raise CourseError(f"--cluster {text}: expected local:N with N a number of workers, e.g. local:4")
    if _ADDRESS.match(value):
        return "address", value
    if re.fullmatch(r"[\w.-]+:\d+", value):
        return "address", f"tcp://{value}"
    raise CourseError(f"unknown cluster address {text!r}: use local, local:N or a Dask scheduler address "
                      "such as tcp://scheduler:8786")


def _local_hosts() -> set[str]:
    hosts = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}
    try:
        name = socket.gethostname()
        hosts |= {name, *socket.gethostbyname_ex(name)[2]}
    except OSError:
        pass
    return hosts


def check_gradebook(db: str, workers: list[str]) -> None:
    """Refuse a SQLite gradebook when a worker (by its address) is on another machine."""
    from course.gradebook import is_sqlite, shown

    remote = sorted({_host(w) for w in workers} - _local_hosts())
    if is_sqlite(db) and remote:
        raise CourseError(f"the gradebook is the SQLite file {shown(db)}, which the Dask workers on "
                          f"{', '.join(remote[:3])} cannot write: use a PostgreSQL gradebook every worker can "
                          "reach (set COURSE_DB_URL=postgresql://user:password@host/db)")


def _host(address: str) -> str:
    rest = address.split("://", 1)[-1]
    return rest.rsplit(":", 1)[0].strip("[]")


# -- the coordinator's side --------------------------------------------------------------------

class Cluster:
    """A connected ``distributed.Client`` (and the ``LocalCluster`` it started, if any).

    A scheduler address is connected to at once (so a wrong one is reported before anything
    is graded); a local cluster is started by ``start``, only when there is something to grade."""

    def __init__(self, address: str, db: str):
        kind, value = parse_cluster(address)
        try:
            import distributed  # noqa: F401
        except ImportError:  # pragma: no cover - a dependency of the course
            raise CourseError("--cluster needs Dask: pip install 'distributed'") from None
        self.kind, self.value, self.db = kind, value, db
        self.local = self.client = None
        self.description = ""
        if kind == "address":
            self._connect()

    def start(self) -> "Cluster":
        if self.client is None:
            self._start_local()
        return self

    def _start_local(self) -> None:
        from distributed import Client, LocalCluster

        value = self.value
        try:
            self.local = LocalCluster(n_workers=value, threads_per_worker=1, processes=True,
                                      dashboard_address=None, memory_limit=0, silence_logs=40)
            self.client = Client(self.local)
        except Exception as error:  # noqa: BLE001
            self.close()
            raise CourseError(f"could not start a local Dask cluster of {value} workers: {error}") from None
        self.description = f"a local Dask cluster of {value} worker process{'es' if value != 1 else ''}"

    def _connect(self) -> None:
        from distributed import Client

        value, db = self.value, self.db
        try:
            self.client = Client(value, timeout="10s")
        except Exception as error:  # noqa: BLE001 - OSError, TimeoutError, ...
            text = " ".join(str(error).split())[:200] or type(error).__name__
            raise CourseError(f"cannot reach the Dask scheduler at {value}: {text}") from None
        workers = self.client.scheduler_info(n_workers=-1).get("workers", {}) if _takes_n_workers() \
            else self.client.scheduler_info().get("workers", {})
        if not workers:
            self.close()
            raise CourseError(f"the Dask scheduler at {value} has no workers: start some with "
                              f"`dask worker {value} --nthreads 1`")
        try:
            check_gradebook(db, list(workers))
        except CourseError:
            self.close()
            raise
        self.description = f"the Dask cluster at {value} ({len(workers)} workers)"

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        if self.local is not None:
            try:
                self.local.close()
            except Exception:  # noqa: BLE001
                pass


def _takes_n_workers() -> bool:
    import inspect

    from distributed import Client

    return "n_workers" in inspect.signature(Client.scheduler_info).parameters


def run(cluster: Cluster, bundle: dict, todo: list[tuple[str, str, dict]], publish, failed) -> None:
    """Grade ``todo`` (student, note, files) on ``cluster``; ``publish(student, outcome)`` gets
    each task's answer, ``failed(student, message)`` each task that failed for good."""
    from distributed import wait

    client = cluster.client
    shared = client.scatter(bundle, broadcast=True, hash=False)
    deadline = bundle["limits"]["notebook_timeout"] + TASK_GRACE
    started: dict[str, tuple[float, str]] = {}  # task key → (when it started, on which worker)
    lock = threading.Lock()

    def on_event(event):
        _, message = event
        if isinstance(message, dict) and message.get("key"):
            with lock:
                started[message["key"]] = (time.monotonic(), message.get("worker", ""))

    topic = f"course-grade-{bundle['id']}"
    client.subscribe_topic(topic, on_event)
    pending = {}
    for student, note, files in todo:
        future = client.submit(grade_task, shared, student, note, files, topic, retries=RETRIES, pure=False,
                               key=f"grade-{bundle['assignment'].name}-{hashlib.sha256(student.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"
                                   f"-{bundle['id'][:8]}")
        pending[future] = student
    try:
        while pending:
            try:
                done, _ = wait(list(pending), timeout=WATCH_INTERVAL, return_when="FIRST_COMPLETED")
                interrupts.check()
            except TimeoutError:
                done = set()
            except Exception as error:  # noqa: BLE001 - distributed's own TimeoutError on older versions
                if "timeout" not in type(error).__name__.lower():
                    raise
                done = set()
            for future in done:
                student = pending.pop(future)
                if future.status == "finished":
                    publish(student, future.result())
                else:
                    error = future.exception()
                    failed(student, _why(error))
            now = time.monotonic()
            for future, student in list(pending.items()):
                with lock:
                    began, worker = started.get(future.key, (None, ""))
                if began is not None and now - began > deadline:
                    pending.pop(future)
                    future.cancel()
                    failed(student, f"its grading task ran for more than {deadline:g} s on the cluster without "
                                    "finishing and was stopped")
                    if worker:  # a hung task holds its worker's thread: restart that worker (its nanny does)
                        try:
                            client.restart_workers([worker], timeout=60, raise_for_error=False)
                        except Exception:  # noqa: BLE001 - a worker without a nanny stays as it is
                            pass
    except BaseException:
        client.cancel(list(pending))
        raise
    finally:
        try:
            client.unsubscribe_topic(topic)
        except Exception:  # noqa: BLE001
            pass


def _why(error: BaseException | None) -> str:
    name = type(error).__name__ if error is not None else "an unknown error"
    text = " ".join(str(error).split())[:200] if error is not None else ""
    if name == "KilledWorker":
        return "the Dask workers grading it died every time it was tried (out of memory?)"
    return f"its grading task failed on the cluster after {RETRIES + 1} attempts ({name}: {text})"


# -- the worker's side -------------------------------------------------------------------------

_courses: dict[str, Path] = {}
_courses_lock = threading.Lock()


def _scratch_course(bundle: dict) -> Path:
    """A course root on this worker made from the bundle: config and the assignment's files."""
    with _courses_lock:
        root = _courses.get(bundle["id"])
        if root is None or not root.is_dir():
            root = Path(tempfile.mkdtemp(prefix="course-worker-"))
            (root / "nbgrader_config.py").write_bytes(bundle["config"])
            source = root / "source" / bundle["assignment"].name
            source.mkdir(parents=True)
            for name, data in bundle["files"].items():
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                (source / name).write_bytes(base64.b64decode(data))
            _courses[bundle["id"]] = root
        return root


def grade_task(bundle: dict, student: str, note: str, files: dict[str, str], topic: str | None = None) -> dict:
    """Grade one submission on this Dask worker; returns ``{"result", "files", "worker"}``.

    ``files`` are the submission's files (base64). What comes back: the ``Result`` (as
    JSON) and the files nbgrader wrote for this student (the autograded notebook, the
    feedback, the log), relative to the course root."""
    from course.grading import execute as ex
    from course.grading import submission
    from course.grading.results import Result
    from course.grading.sandbox import Limits, sandbox_problem
    from course.grading.settings import Sandbox
    from course.nbgrader_api import api_for, load_config

    worker, jobs = "this machine", 1
    try:
        from distributed import get_worker

        me = get_worker()
        worker, jobs = me.address, max(1, getattr(getattr(me, "state", None), "nthreads", 1) or 1)
        if topic:  # the coordinator counts a task's time from here (a hung one is stopped)
            me.log_event(topic, {"key": me.get_current_task(), "student": student, "worker": me.address})
    except (ImportError, ValueError):
        pass
    assignment = bundle["assignment"]
    root = _scratch_course(bundle)
    config = load_config(root)
    settings = Sandbox(config=config)
    limits = Limits(**bundle["limits"])
    unsafe = bundle["unsafe"] or settings.unsafe
    problem = None if unsafe else sandbox_problem(settings.bwrap)
    if problem:
        result = Result(student, assignment.name, 0.0, bundle["max_score"], "crashed",
                        f"the Dask worker {worker} cannot sandbox submissions: {problem}")
        return {"result": result.to_json(), "files": {}, "worker": worker}
    spec = settings.spec(limits, jobs, unsafe)  # each worker process holds its own block of uids (uid_lease)
    db = bundle["db"]
    with ex._registry_lock:
        ex.CURRENT[db] = (spec, limits, jobs, bundle["files"])

    folders = [root / part / student / assignment.name for part in ("submitted", "autograded", "feedback")]
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    submitted = folders[0]
    submitted.mkdir(parents=True)
    for name, data in files.items():
        (submitted / name).parent.mkdir(parents=True, exist_ok=True)
        (submitted / name).write_bytes(base64.b64decode(data))
    began = time.perf_counter()
    try:
        api = api_for(root, db)
        try:
            nb = submission.sanitize(config, db, assignment, student, submitted / assignment.notebook)
        except Exception as error:  # noqa: BLE001 - as course grade does
            result = submission.unprepared(assignment, student, bundle["max_score"], error)
            submission.write_log(root, assignment, result, [f"graded on the Dask worker {worker}"])
        else:
            cells = ex.code_cells(nb)
            outcome = submission.executed(db, assignment, student, cells,
                                     lambda: ex.execute(cells, limits, spec, jobs, bundle["files"]))
            outcome.log.insert(0, f"graded on the Dask worker {worker}")
            result = submission.record(root, api, db, assignment, student, bundle["max_score"], outcome, note,
                                   bundle["feedback"])
        result.grader_seconds = round(time.perf_counter() - began - result.seconds, 3)
        made = {}
        for part in ("autograded", "feedback"):
            base = root / part / student
            for path in sorted(base.rglob("*")) if base.is_dir() else []:
                if path.is_file():
                    made[str(path.relative_to(root))] = base64.b64encode(path.read_bytes()).decode()
        return {"result": result.to_json(), "files": made, "worker": worker}
    finally:
        for folder in [*folders, root / "autograded" / student, root / "feedback" / student,
                       root / "submitted" / student]:
            shutil.rmtree(folder, ignore_errors=True)
