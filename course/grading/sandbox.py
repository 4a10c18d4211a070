"""Sandboxed workers that execute submissions, on the grader's side.

A ``Pool`` holds ``jobs`` workers. Each worker is one bubblewrap sandbox
(``bwrap``): new pid, network, IPC and UTS namespaces (no network at all, not even
the host's loopback), the root filesystem replaced by read-only binds of only what
Python needs (``/usr``, ``/etc``, the interpreter and the virtual environment, the
course's ``course/`` package and ``data/``), and fresh size-limited tmpfs mounts on
``/tmp`` and ``/dev/shm``. The course root itself (``source/``, ``release/``,
``submitted/``, the gradebook) is not there. In the sandbox a "zygote"
(``course.grading.worker``) imports torch and the rest once, then forks a child per
submission that drops to an unprivileged uid (when the grader is root) and sets its
rlimits before it runs any of the student's code.

The grader enforces the wall-clock limits from outside: when a cell or the notebook
runs too long, or the sandbox holds more processes or memory than allowed, it kills
every process in the sandbox's pid namespace except the zygote (``sweep``). A
worker that stops answering is killed with its whole sandbox and replaced.

Without bubblewrap the grader refuses to run unless told ``unsafe``: then the same
workers run as plain processes (limits and timeouts still apply, isolation does not).
"""

from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from course import interrupts
from course.grading.protocol import FrameReader, ProtocolError, encode, recv_control, send_control, session_of

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
# What the worker (never the submission: it drops them all with its uid) keeps when the grader is
# root: change to the submission's uid, clean up after it, and give it a fresh IPC namespace
# (CAP_SYS_ADMIN, used for nothing else).
CAPS = ("CAP_SETUID", "CAP_SETGID", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_IPC_OWNER",
        "CAP_SYS_ADMIN")


class SandboxError(Exception):
    """The sandbox could not be started or used; the message says why."""


def parse_size(value) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``1048576`` → bytes."""
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": KiB, "M": MiB, "G": GiB, "T": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if text[-1:] in "KMGT" else text
    return int(float(number) * scale)


def format_size(n: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


@dataclass
class Limits:
    """What one submission may use. Defaults come from ``c.Sandbox`` in nbgrader_config.py."""

    memory: int = 4 * GiB  # address space and data beyond the worker's own, and the sandbox's total
    cell_timeout: float = 120.0  # seconds of wall clock per cell
    notebook_timeout: float = 600.0  # seconds of wall clock for the whole notebook
    processes: int = 64  # processes and threads of the submission
    cell_output: int = 1 * MiB  # text and images one cell may output
    notebook_output: int = 16 * MiB
    file_size: int = 256 * MiB  # the largest file it may write
    tmp_size: int = 1 * GiB  # its scratch space (/tmp and /dev/shm, in memory)
    threads: int = 0  # torch/BLAS threads per submission (0: cores // jobs)
    # nbgrader reads a number shown by a test cell's last expression as partial credit; the
    # course's test cells never mean that (a check returning the learner's value would become
    # the score), so a test cell's execute_result is dropped unless this is on
    partial_credit: bool = False
    # what a submission folder may hold (checked before anything reads it: course.grading.intake)
    notebook_size: int = 16 * MiB
    submission_size: int = 64 * MiB
    submission_files: int = 200

    def describe(self) -> str:
        return (f"memory {format_size(self.memory)}, {self.cell_timeout:g} s per cell, "
                f"{self.notebook_timeout:g} s per notebook, {self.processes} processes, "
                f"output {format_size(self.cell_output)} per cell and {format_size(self.notebook_output)} per "
                f"notebook, files up to {format_size(self.file_size)}, scratch {format_size(self.tmp_size)}; "
                f"submissions: notebook up to {format_size(self.notebook_size)}, "
                f"{self.submission_files} files and {format_size(self.submission_size)} in all")

    def caps(self):
        from course.grading.intake import Caps

        return Caps(self.notebook_size, self.submission_size, self.submission_files)

    def for_worker(self, jobs: int) -> dict:
        threads = self.threads or max(1, (os.cpu_count() or 1) // max(1, jobs))
        out = asdict(self)
        out["threads"] = threads
        return out


@dataclass(frozen=True)
class Spec:
    """How workers are started; a pool is reused while its spec stays the same."""

    unsafe: bool = False
    bwrap: str = "bwrap"
    uid_base: int = 64000  # a root grader runs worker k's submissions as uid uid_base + k
    tmp_size: int = 1 * GiB
    extra_binds: tuple[str, ...] = ()
    preload: tuple[str, ...] = ()
    course_dir: str = field(default_factory=lambda: str(Path(__file__).resolve().parent.parent))
    fingerprint: str = ""  # changes when the course's code changes: workers import it once

    @property
    def privileged(self) -> bool:
        return os.geteuid() == 0

    def binds(self) -> list[str]:
        """Host paths the sandbox sees, read-only, at the same place."""
        import site

        wanted = [sys.base_prefix, sys.prefix, sys.exec_prefix, *site.getsitepackages(), self.course_dir,
                  os.path.dirname(os.path.realpath(sys.executable)), *self.extra_binds]
        data = [os.path.join(os.path.dirname(self.course_dir), "data"), os.environ.get("COURSE_DATA_DIR")]
        wanted += [d for d in data if d and os.path.isdir(d)]
        paths = sorted({os.path.realpath(p) for p in wanted if p and os.path.exists(p)}, key=len)
        out: list[str] = []
        for path in paths:
            if path.startswith(("/usr/", "/etc/")) or path in ("/usr", "/etc"):
                continue
            if not any(path == kept or path.startswith(kept + os.sep) for kept in out):
                out.append(path)
        return out

    def exposes(self, folder: Path) -> str | None:
        """The bound path that would expose ``folder`` (the course root) to submissions."""
        folder = os.path.realpath(folder)
        for path in self.binds() + ["/usr", "/etc"]:
            if folder == path or folder.startswith(path + os.sep):
                return path
        return None

    def command(self, slot: int, fd: int, scratch: str) -> list[str]:
        parent = os.path.dirname(self.course_dir)
        worker = {
            "fd": fd, "course_dir": self.course_dir, "sandboxed": not self.unsafe, "scratch": scratch,
            "drop_privileges": (not self.unsafe) and self.privileged,
            "uid": self.uid_base + slot + (UID_STRIDE * uid_lease() if (not self.unsafe) and self.privileged else 0),
            "preload": list(self.preload), "path": os.pathsep.join([os.path.dirname(sys.executable), "/usr/bin", "/bin"]),
        }
        boot = (f"import sys; sys.path.insert(0, {parent!r}); from course.grading.worker import main; "
                f"sys.path.remove({parent!r}); main()")
        python = [sys.executable, "-I", "-c", boot, json.dumps(worker)]
        if self.unsafe:
            return python
        args = [self.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--hostname", "grader"]
        if self.privileged:
            args += ["--cap-drop", "ALL"]
            for cap in CAPS:
                args += ["--cap-add", cap]
        else:
            args += ["--unshare-user", "--disable-userns"] if _bwrap_supports(self.bwrap, "--disable-userns") else ["--unshare-user"]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--perms", "01777", "--size", str(self.tmp_size), "--tmpfs", "/dev/shm",
                 "--perms", "0755", "--size", str(self.tmp_size), "--tmpfs", "/tmp"]
        binds = self.binds()
        parents = sorted({str(p) for b in binds for p in Path(b).parents if str(p) != "/"}, key=len)
        for folder in parents:
            if folder not in ("/usr", "/etc") and not any(folder == b or folder.startswith(b + os.sep) for b in binds):
                args += ["--perms", "0755", "--dir", folder]
        args += ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
        for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = f"/{name}"
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        for path in binds:
            args += ["--ro-bind", path, path]
        for device in sorted(Path("/dev").glob("nvidia*")):  # a GPU, where there is one
            args += ["--dev-bind", str(device), str(device)]
        args += ["--clearenv", "--setenv", "LANG", "C.UTF-8", "--setenv", "PYTHONHASHSEED", "0",
                 "--setenv", "PATH", worker["path"], "--chdir", "/tmp"]
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            args += ["--setenv", name, "1"]  # each submission sets its own number of threads
        return args + ["--", *python]


UID_STRIDE = 4096  # uids per grading process: its workers (and a Dask worker's 256-wide offsets)
_lease: list[int] = []  # [fd, index] of this process's lease, held until it exits


def uid_lease(folder: str = "/run/lock/course-grade-uids", leases: int = 256) -> int:
    """This process's block of sandbox uids, distinct from every other ``course grade``
    running on the machine: the first of ``leases`` lock files it can hold (``flock``, freed
    by the kernel when the process ends). Two runs at once never share a uid, so neither can
    signal, trace, exhaust the process limit of, or read the keyrings of the other's students."""
    import fcntl

    if _lease:
        return _lease[1]
    if not os.path.isdir(os.path.dirname(folder)):
        folder = os.path.join(tempfile.gettempdir(), ".course-grade-uids")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not os.path.isdir(folder) or os.path.islink(folder) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise SandboxError(f"{folder} is not a private folder of this user: remove it, then grade again")
    for index in range(leases):
        fd = os.open(os.path.join(folder, str(index)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _lease.extend([fd, index])
        return index
    raise SandboxError(f"{leases} graders are running on this machine already: wait for one to finish")


_supports: dict[tuple[str, str], bool] = {}


def _bwrap_supports(bwrap: str, flag: str) -> bool:
    key = (bwrap, flag)
    if key not in _supports:
        try:
            text = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            text = ""
        _supports[key] = flag in text
    return _supports[key]


def sandbox_problem(bwrap: str = "bwrap") -> str | None:
    """``None`` when bubblewrap can make a sandbox here, else why not (one line)."""
    path = shutil.which(bwrap)
    if not path:
        return (f"bubblewrap ({bwrap}) is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap) "
                "or pass --unsafe to grade without isolation")
    probe = [path, "--unshare-pid", "--unshare-net", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "true"]
    if os.geteuid() != 0:
        probe.insert(1, "--unshare-user")
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as error:
        return f"bubblewrap could not run: {error}"
    if done.returncode != 0:
        detail = " ".join(done.stderr.split())[:200]
        return (f"bubblewrap cannot make a sandbox here ({detail}); "
                "allow user namespaces, run the grader as root, or pass --unsafe")
    return None


# -- processes on the host ----------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                out += [int(x) for x in handle.read().split()]
    except OSError:
        pass
    return out


def _descendants(pid: int) -> list[int]:
    out, stack, seen = [], [pid], {pid}
    while stack:
        for child in _children(stack.pop()):
            if child not in seen:
                seen.add(child)
                out.append(child)
                stack.append(child)
    return out


def _pid_namespace(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _usage(pid: int) -> tuple[int, int]:
    """(threads, private memory in bytes) of one process: the pages it does not share (with
    the worker it was forked from, above all), swapped-out ones included."""
    threads, private = 0, 0
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("Threads:"):
                    threads = int(line.split()[1])
                    break
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith(("Private_Clean:", "Private_Dirty:", "Swap:")):
                    private += int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return threads, private


# -- one worker -----------------------------------------------------------------------------

@dataclass
class Run:
    """What happened while one notebook ran: frames per cell and how it ended."""

    cells: dict[int, dict] = field(default_factory=dict)
    running: int | None = None  # the cell that had started and not finished
    done: bool = False
    stop: dict | None = None  # the child stopped itself: {"i", "reason", "message"}
    timeout: str | None = None  # "cell" or "notebook"
    killed: str | None = None  # "memory", "processes", "output", "protocol"
    exit_status: int | None = None
    worker_failed: str | None = None
    seconds: float = 0.0
    swept: int = 0
    events: list[str] = field(default_factory=list)

    @property
    def cell_seconds(self) -> float:
        return sum(float(c.get("seconds", 0) or 0) for c in self.cells.values())


class Worker:
    def __init__(self, spec: Spec, slot: int, start_timeout: float = 180.0):
        self.spec, self.slot = spec, slot
        self.jobs = 0
        self.broken: str | None = None
        self.interrupted = False
        self.sessions: set[int] = set()  # without a sandbox: the session of the submission running
        self.scratch = "/tmp" if not spec.unsafe else tempfile.mkdtemp(prefix="course-grade-worker-")
        self.log = tempfile.TemporaryFile(prefix="course-grade-worker-")
        self.control, remote = socket.socketpair()
        command = spec.command(slot, remote.fileno(), self.scratch)
        env = None
        if spec.unsafe:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
                   **{k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}
        try:
            self.process = _spawn(command, pass_fds=[remote.fileno()], stdin=subprocess.DEVNULL,
                                  stdout=self.log, stderr=self.log, start_new_session=True, env=env,
                                  cwd=self.scratch if spec.unsafe else None)
        except OSError as error:
            raise SandboxError(f"could not start a grading worker: {error}") from None
        finally:
            remote.close()
        ready = self._receive(start_timeout)
        if not ready or ready.get("t") != "ready":
            self.kill()
            raise SandboxError(f"a grading worker did not start: {self.log_tail() or 'no output'}")
        self.ready = ready
        self.baseline = ready.get("baseline", {})
        self.namespace = None
        self.keep: set[int] = set()
        if not spec.unsafe:
            init = _children(self.process.pid)
            zygote = [c for p in init for c in _children(p)]
            self.keep = {*init, *zygote}
            self.namespace = _pid_namespace(zygote[0] if zygote else init[0]) if init else None
            if not self.namespace or self.namespace == _pid_namespace(os.getpid()):
                self.kill()
                raise SandboxError("could not find the grading sandbox's processes")
        self.zygote_pid = self.process.pid

    def log_tail(self, lines: int = 5) -> str:
        try:
            self.log.seek(0)
            text = self.log.read().decode("utf-8", "replace").strip().splitlines()
        except (OSError, ValueError):
            return ""
        return " | ".join(text[-lines:])

    def _receive(self, timeout: float) -> dict | None:
        ready, _, _ = select.select([self.control], [], [], timeout)
        if not ready:
            return None
        try:
            message, fds = recv_control(self.control)
        except (OSError, ProtocolError, ValueError) as error:
            self.last_error = f"{type(error).__name__}: {error}"
            return None
        for fd in fds:
            os.close(fd)
        return message

    # -- the processes of the submission being graded ------------------------------------

    def members(self) -> list[int]:
        """Host pids of the submission's processes (everything in the sandbox but the worker)."""
        out = []
        if self.spec.unsafe:
            sessions = self.sessions
            if not sessions:
                return []
            for entry in os.listdir("/proc"):
                if entry.isdigit() and session_of(int(entry)) in sessions and int(entry) != self.process.pid:
                    out.append(int(entry))
            return out
        # every process descends from the sandbox's first process (orphans are re-parented to the
        # sandbox's init), including those in pid and user namespaces the submission made itself
        return [pid for pid in _descendants(self.process.pid) if pid not in self.keep]

    def sweep(self) -> int:
        """SIGKILL every process of the submission, until none is left."""
        killed = 0
        for attempt in range(100):
            pids = self.members()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += attempt == 0
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)
        return killed

    def usage(self) -> tuple[int, int]:
        threads = memory = 0
        for pid in self.members():
            t, m = _usage(pid)
            threads, memory = threads + t, memory + m
        return threads, memory

    # -- running one notebook --------------------------------------------------------------

    def run(self, job: dict, limits: Limits, tick: float = 0.25) -> Run:
        run = Run()
        self.jobs += 1
        self.sessions = set()
        started = time.monotonic()
        mine, theirs = socket.socketpair()
        try:
            send_control(self.control, {"op": "run"}, [theirs.fileno()])
        except OSError as error:
            self.broken = run.worker_failed = f"the worker is gone ({error})"
            return run
        finally:
            theirs.close()
        writer = threading.Thread(target=_send_all, args=(mine, encode(job)), daemon=True)
        writer.start()
        reader = FrameReader(limit=limits.notebook_output * 2 + 4 * MiB)
        received, budget = 0, limits.notebook_output * 3 + 8 * MiB
        cell_started = notebook_started = time.monotonic()
        exited = eof = False
        exit_time = kill_time = eof_time = None
        next_check = time.monotonic() + 0.5
        memory_cap = limits.memory  # what the submission's processes hold beyond the pages of the worker

        def stop(kind: str, reason: str) -> None:
            nonlocal kill_time
            if kill_time is None:
                kill_time = time.monotonic()
                if kind == "timeout":
                    run.timeout = reason
                else:
                    run.killed = reason
                run.events.append(f"stopped: {kind} ({reason})")
            run.swept += self.sweep()

        while not (exited and eof):
            now = time.monotonic()
            deadlines = [notebook_started + limits.notebook_timeout, now + tick]
            if run.running is not None:
                deadlines.append(cell_started + limits.cell_timeout)
            wait = max(0.0, min(deadlines) - now)
            watch = [s for s, closed in ((mine, eof), (self.control, exited)) if not closed]
            readable, _, _ = select.select(watch, [], [], wait)
            if mine in readable:
                try:
                    data = mine.recv(1 << 20)
                except OSError:
                    data = b""
                if not data:
                    eof = True
                else:
                    received += len(data)
                    try:
                        frames = reader.feed(data)
                    except ProtocolError as error:
                        run.events.append(f"garbled results: {error}")
                        frames, eof = [], True
                        stop("killed", "protocol")
                    for frame in frames:
                        self._frame(frame, run)
                        if frame.get("t") == "start":
                            cell_started = time.monotonic()
                    if received > budget and not eof:
                        eof = True
                        stop("killed", "output")
            if self.control in readable:
                message = self._receive(0)
                if message is None:
                    self.broken = (f"the sandbox worker died ({self.log_tail() or 'no output'}"
                                   f"{'; ' + self.last_error if getattr(self, 'last_error', '') else ''})")
                    run.events.append(self.broken)  # the grader's log only: it can quote the grader's code
                    run.worker_failed = "the sandbox worker died"
                    exited = eof = True
                elif message.get("t") == "started" and self.spec.unsafe:
                    self.sessions = {int(message.get("pid", 0))}
                elif message.get("t") == "exited":
                    run.exit_status = int(message.get("status", 0))
                    run.swept += int(message.get("swept", 0))
                    exited, exit_time = True, time.monotonic()
            now = time.monotonic()
            if exited:
                if not eof and now - exit_time > 2.0:
                    eof = True  # a stray copy of the socket: the worker has swept its holder by now
                continue
            if eof:  # the submission's process has ended; the worker must say so
                eof_time = eof_time or now
                if now - eof_time > 10:
                    self.broken = "the sandbox worker did not report the end of a submission"
                    if not run.done:
                        run.worker_failed = self.broken
                    break
            if kill_time is not None:
                if now - kill_time > 10:
                    self.broken = run.worker_failed = "the sandbox worker did not answer after a kill"
                    break
                continue
            if self.interrupted:
                stop("killed", "interrupted")
            elif now >= notebook_started + limits.notebook_timeout:
                stop("timeout", "notebook")
            elif run.running is not None and now >= cell_started + limits.cell_timeout:
                stop("timeout", "cell")
            elif now >= next_check:
                next_check = now + 0.5
                threads, memory = self.usage()
                if threads >= limits.processes:
                    stop("killed", "processes")
                elif memory > memory_cap:
                    stop("killed", "memory")
        mine.close()
        run.seconds = time.monotonic() - started
        if self.process.poll() is not None and not self.broken:
            self.broken = f"the sandbox worker exited ({self.process.returncode})"
        if self.spec.unsafe and self.sessions:
            run.swept += self.sweep()
        return run

    def _frame(self, frame: dict, run: Run) -> None:
        kind = frame.get("t")
        index = frame.get("i")
        if kind == "start" and isinstance(index, int):
            run.running = index
        elif kind == "cell" and isinstance(index, int):
            run.cells[index] = frame
            run.running = None
        elif kind == "stop" and isinstance(index, int):
            run.stop = frame
        elif kind == "done":
            run.done = True

    def kill(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, AttributeError):
            pass
        try:
            self.process.wait(timeout=10)
        except Exception:
            pass
        if self.spec.unsafe and getattr(self, "sessions", None):
            self.sweep()

    def close(self) -> None:
        try:
            send_control(self.control, {"op": "quit"})
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
        self.control.close()
        self.log.close()
        if self.spec.unsafe:
            shutil.rmtree(self.scratch, ignore_errors=True)


class _Spawner:
    """Starts processes from one long-lived thread: bubblewrap's ``--die-with-parent``
    (PR_SET_PDEATHSIG) fires when the *thread* that started it ends, and workers must
    live as long as the grader, not as long as the thread that happened to start them."""

    def __init__(self):
        import queue

        self.requests: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._serve, name="course-grade-spawner", daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            args, kwargs, reply = self.requests.get()
            try:
                reply.append(subprocess.Popen(*args, **kwargs))
            except BaseException as error:  # noqa: BLE001
                reply.append(error)
            reply_event = reply[0]
            reply_event.set()

    def __call__(self, *args, **kwargs) -> subprocess.Popen:
        done = threading.Event()
        reply: list = [done]
        self.requests.put((args, kwargs, reply))
        done.wait()
        if isinstance(reply[1], BaseException):
            raise reply[1]
        return reply[1]


_spawner: _Spawner | None = None
_spawner_lock = threading.Lock()


def _spawn(*args, **kwargs) -> subprocess.Popen:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = _Spawner()
    return _spawner(*args, **kwargs)


def _send_all(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- a pool of workers ----------------------------------------------------------------------

class Pool:
    def __init__(self, spec: Spec, size: int):
        self.spec = spec
        self.size = size
        self.idle: list[Worker] = []
        self.lock = threading.Condition()
        self.started = 0
        self.closed = False
        self.replaced = 0
        self.busy: set[Worker] = set()
        self.alive = 0
        self.stopping = False  # interrupted: a submission handed to a worker from now on is stopped at once
        self._grow(size)

    def _grow(self, size: int) -> None:
        slots = list(range(self.started, size))
        self.started = max(self.started, size)
        errors: list[Exception] = []
        made: list[Worker] = []

        def start(slot):
            try:
                made.append(Worker(self.spec, slot))
            except Exception as error:  # noqa: BLE001
                errors.append(error)

        # daemon: an interrupt while workers start must not wait for them (they die with this process)
        threads = [threading.Thread(target=start, args=(slot,), daemon=True) for slot in slots]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():  # in short waits: the main thread must wake to run signal handlers
                t.join(0.2)
                interrupts.check()
        with self.lock:
            self.idle += made
            self.alive += len(made)
            self.lock.notify_all()
        if errors and not made and not self.idle:
            raise errors[0] if isinstance(errors[0], SandboxError) else SandboxError(str(errors[0]))

    def ensure(self, size: int) -> None:
        if size > self.started:
            self._grow(size)
            self.size = size

    def run(self, job: dict, limits: Limits) -> Run:
        with self.lock:
            while not self.idle:
                if self.alive <= 0:
                    raise SandboxError("no grading worker is left: they failed to start again after a crash")
                self.lock.wait()
            worker = self.idle.pop()
            self.busy.add(worker)
            worker.interrupted = self.stopping  # set here, under the lock, so no interrupt() is missed
        try:
            run = worker.run(job, limits)
        except Exception as error:  # noqa: BLE001
            worker.broken = f"{type(error).__name__}: {error}"
            run = Run(worker_failed="the grader failed to run it", events=[worker.broken])
        with self.lock:
            self.busy.discard(worker)
        if worker.broken and self.stopping:  # interrupted: no new worker, the run is ending
            worker.kill()
            worker.close()
            worker = None
            with self.lock:
                self.alive -= 1
        elif worker.broken:
            run.events.append(f"worker {worker.slot} replaced: {worker.broken}")
            worker.kill()
            worker.close()
            self.replaced += 1
            try:
                worker = Worker(self.spec, worker.slot)
            except SandboxError as error:
                run.events.append(f"could not replace worker {worker.slot}: {error}")
                worker = None
                with self.lock:
                    self.alive -= 1
        with self.lock:
            self.busy.discard(worker)
            if worker is not None:
                self.idle.append(worker)
            self.lock.notify_all()
        return run

    def interrupt(self) -> None:
        """Stop every submission running now (Ctrl-C): their workers kill them and go on."""
        with self.lock:
            self.stopping = True
            busy = list(self.busy)
            for worker in busy:
                worker.interrupted = True
        for worker in busy:
            worker.sweep()

    def close(self) -> None:
        with self.lock:
            workers, self.idle = self.idle, []
            self.closed = True
        for worker in workers:
            worker.close()


_pools: dict[Spec, Pool] = {}
_pools_lock = threading.Lock()


def pool_for(spec: Spec, size: int) -> Pool:
    """A running pool for ``spec`` with at least ``size`` workers (kept for later runs)."""
    with _pools_lock:
        for old in [s for s in _pools if s != spec]:  # the course's code changed, or the settings did
            _pools.pop(old).close()
        pool = _pools.get(spec)
        if pool is None:
            pool = _pools[spec] = Pool(spec, size)
        else:
            pool.ensure(size)
        return pool


def resume_pools() -> None:
    """A new ``course grade`` in this process: pools stopped by an interrupt take work again."""
    with _pools_lock:
        for pool in _pools.values():
            with pool.lock:
                pool.stopping = False


def close_pools(kill: bool = False) -> None:
    """Close every pool; ``kill``: SIGKILL every worker's sandbox at once, busy ones too (an
    interrupted run stops in seconds however loaded the machine is)."""
    with _pools_lock:
        for spec in list(_pools):
            pool = _pools.pop(spec)
            if kill:
                with pool.lock:
                    pool.stopping = True
                    workers = list(pool.idle) + list(pool.busy)
                for worker in workers:
                    worker.kill()
            pool.close()


atexit.register(close_pools)
