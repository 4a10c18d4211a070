"""The sandboxed grading worker (a "zygote"): imports torch and friends once, then forks
a fresh child per submission. Started by ``course.grading.sandbox`` inside bubblewrap::

    python -I -c "<bootstrap>" '{"fd": 3, "course_dir": ..., ...}'

The worker itself never runs learner code. For each job it forks; the child

1. reads the job (cells, limits, the assignment's files) from its own socket;
2. makes a private scratch folder in the sandbox's ``/tmp`` (its working directory
   and ``HOME``) holding the assignment's files and nothing of the submission;
3. drops to an unprivileged uid (when the grader runs as root), sets rlimits
   (memory, processes, file size, no core dumps) and redirects file descriptors;
4. runs the cells (``course.grading.kernel``), streaming one frame per cell back.

When the child has ended (or the grader killed it), the worker kills every other
process in the sandbox's pid namespace, removes the scratch folder, shared memory
and System V IPC objects, and reports the exit status: the next submission starts
from the same clean state.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
import signal
import socket
import sys
import time

from course.grading.protocol import read_frame, recv_control, send_control, session_of, write_frame

PRELOAD = (
    "numpy", "torch", "torch.nn", "torch.nn.functional", "torch.utils.data", "torch.testing",
    "torch.autograd", "torchvision", "matplotlib", "matplotlib.pyplot", "matplotlib_inline.backend_inline",
    "PIL.Image", "hypothesis", "hypothesis.strategies", "IPython", "IPython.display",
)


def _status(pid: str = "self") -> dict:
    try:
        lines = open(f"/proc/{pid}/status").read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmSize", "VmData", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
        elif key == "Threads":
            out[key] = int(value.split()[0])
    return out


def preload(names) -> list[str]:
    """Import what every notebook needs; returns what could not be imported."""
    import importlib

    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:  # optional extras (torchvision on a slim install, ...)
            failed.append(f"{name}: {type(error).__name__}: {error}")
    return failed


def warm_hypothesis() -> None:
    """Run one tiny property, so that hypothesis' lazy set-up is paid once here; then
    forget what it learnt about loaded modules, so that a submission's examples depend
    only on the modules the notebook imports (as in a fresh Jupyter kernel)."""
    try:
        from hypothesis import given, settings, strategies as st

        @settings(max_examples=2, derandomize=True, database=None, deadline=None)
        @given(st.integers(0, 3), st.floats(0, 1))
        def _warm(a, b):
            pass

        _warm()
        from hypothesis.internal.conjecture import providers

        grader = {id(m) for n, m in sys.modules.items() if n == "course.grading" or n.startswith("course.grading.")}
        providers._local_constants = type(providers._local_constants)()
        providers._seen_modules = {id(m) for n, m in sys.modules.items()
                                   if not (n == "course" or n.startswith("course."))} | grader
        providers._sys_modules_len = None
    except Exception:
        pass


def graded_input(prompt=""):
    raise EOFError("input() cannot be answered while the notebook is being graded: "
                   "remove the call (or give the value in the code)")


def sweep(keep: set[int], session: int | None = None) -> int:
    """Kill every process in this pid namespace except ``keep`` (without a sandbox: every
    process of the submission's ``session``); returns how many."""
    killed = 0
    for _round in range(200):
        others = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) not in keep:
                if session is None or session_of(int(entry)) == session:
                    others.append(int(entry))
        if not others:
            return killed
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1 if _round == 0 else 0
            except ProcessLookupError:
                pass
            except PermissionError:
                pass
        time.sleep(0.01)
    return killed


def clean_scratch(scratch: str, keep: str, sandboxed: bool) -> None:
    """Remove what the submission left in its writable places (all of them tmpfs in the sandbox)."""
    for folder in ((scratch, "/dev/shm") if sandboxed else (scratch,)):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        paths = [os.path.join(folder, entry) for entry in entries if os.path.join(folder, entry) != keep]
        if paths:  # rm, not shutil.rmtree: a tree 100,000 folders deep must not crash the worker
            os.spawnvp(os.P_WAIT, "rm", ["rm", "-rf", "--one-file-system", "--", *paths])
    if not sandboxed:
        return
    try:  # System V IPC objects outlive their processes (the sandbox has its own IPC namespace)
        for kind, flag in (("shm", "-m"), ("sem", "-s"), ("msg", "-q")):
            with open(f"/proc/sysvipc/{kind}") as handle:
                ids = [line.split()[1] for line in handle.read().splitlines()[1:] if line.split()]
            for ident in ids:
                os.spawnvp(os.P_WAIT, "ipcrm", ["ipcrm", flag, ident])
    except OSError:
        pass


def main(argv: list[str] | None = None) -> None:
    args = json.loads((argv or sys.argv)[1])
    control = socket.socket(fileno=int(args["fd"]))
    home = os.path.join(args["scratch"], ".worker")
    os.makedirs(home, exist_ok=True)
    os.environ.update({
        "HOME": home, "MPLCONFIGDIR": os.path.join(home, "matplotlib"),
        "IPYTHONDIR": os.path.join(home, "ipython"), "MPLBACKEND": "agg",
    })
    if not args.get("drop_privileges"):
        _set_dumpable(False)  # same uid as the children: they must not ptrace or read this process
    started = time.monotonic()
    failed = preload(args.get("preload") or PRELOAD)
    course_dir = args["course_dir"]
    import builtins

    builtins.input = graded_input
    from course.grading.guard import Guard
    from course.grading.kernel import make_shell
    from course.runner import codec, learner as _learner, probes, tester  # noqa: F401 - before the guard records

    from course.grading.sandbox import Limits

    default = Limits()
    shell = make_shell(default.cell_output, default.notebook_output)
    warm_hypothesis()
    guard = Guard(course_dir)
    baseline = _status()
    send_control(control, {"t": "ready", "pid": os.getpid(), "seconds": round(time.monotonic() - started, 2),
                           "baseline": baseline, "failed": failed, "python": sys.version.split()[0]})
    jobs = 0
    while True:
        message, fds = recv_control(control)
        if message is None or message.get("op") == "quit":
            break
        if message.get("op") != "run" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        jobs += 1
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                child(fds[0], args, jobs, shell, guard, baseline)
            finally:
                os._exit(70)
        os.close(fds[0])
        send_control(control, {"t": "started", "pid": pid})
        _, status = os.waitpid(pid, 0)
        if args.get("sandboxed"):
            swept = sweep({1, os.getpid()})
        else:
            swept = sweep({os.getpid()}, session=pid)
        # a root worker keeps its home (its children cannot write there); otherwise it goes too
        try:
            clean_scratch(args["scratch"], home if args.get("drop_privileges") else "", bool(args.get("sandboxed")))
            os.makedirs(home, exist_ok=True)
        except Exception:  # noqa: BLE001 - the worker outlives whatever a submission left behind
            pass
        send_control(control, {"t": "exited", "status": status, "swept": swept})


def _set_dumpable(flag: bool) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, int(flag), 0, 0, 0)  # PR_SET_DUMPABLE
    except Exception:
        pass


def child(fd: int, args: dict, number: int, shell, guard, baseline: dict) -> None:
    """One submission, in two fresh processes: this one becomes the tester (it reads the job,
    runs the test cells and writes the results); its child, forked before the job is read,
    becomes the learner's process (see ``course.runner``)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a dead process
    os.setsid()
    mine, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the learner's process: it never holds the job, the results' socket or the tester's end
        try:
            os.close(fd)
            mine.close()
            learner(theirs, args, number, shell, guard, baseline)
        except BaseException:  # before its streams are redirected: into the worker's log
            import traceback
            traceback.print_exc()
        finally:
            os._exit(70)
    theirs.close()
    _set_dumpable(False)  # the learner cannot trace this process or read its memory
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)  # its stdout and stderr stay the worker's log (the grader's)
    job = read_frame(fd)
    from course.grading.sandbox import Limits
    from course.runner import codec

    limits = {**asdict(Limits()), **(job.get("limits") or {})}  # the job names every limit; defaults fill gaps

    codec.send(mine, {"op": "setup", "limits": limits, "files": job.get("files") or {},
                      "env": job.get("env") or {}})
    threads = int(limits["threads"]) or 1
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass
    from course.grading.kernel import Kernel
    from course.runner.tester import Learner, Tester

    shell.grader_outputs.cell_limit = int(limits["cell_output"])
    shell.grader_outputs.total_left = int(limits["notebook_output"])
    kernel = Kernel(shell, guard, ("", ""))
    sys.stdout, sys.stderr = kernel.streams
    write_frame(fd, {"t": "hello", "pid": os.getpid()})
    tester = Tester(kernel, Learner(mine, pid), lambda frame: write_frame(fd, frame))
    tester.run(job.get("cells", []))
    try:
        codec.send(mine, {"op": "end"})
    except OSError:
        pass
    os._exit(0)


def learner(sock, args: dict, number: int, shell, guard, baseline: dict) -> None:
    """The learner's process: set up its scratch folder, drop privileges, set limits, then
    run the cells the tester sends (``course.runner.learner.serve``)."""
    import resource

    from course.runner import codec

    message = codec.receive(sock)
    if message is None:
        return
    job = message[0]
    limits = job.get("limits", {})

    scratch = os.path.join(args["scratch"], f"job-{number}")
    os.mkdir(scratch, 0o700)
    for relpath, text in (job.get("files") or {}).items():
        import base64

        target = os.path.normpath(os.path.join(scratch, relpath))
        if not target.startswith(scratch + os.sep):
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(base64.b64decode(text))
    fd_files = (os.path.join(scratch, ".stdout"), os.path.join(scratch, ".stderr"))
    for path in fd_files:
        open(path, "wb").close()
    uid = int(args.get("uid", -1))
    if args.get("drop_privileges") and uid > 0:
        for folder, dirs, files in os.walk(scratch):
            for name in [folder, *(os.path.join(folder, f) for f in dirs + files)]:
                os.lchown(name, uid, uid)
        # System V and POSIX IPC objects live in an IPC namespace: this submission gets its own,
        # which dies with its last process, so nothing it creates reaches the next one
        _unshare(CLONE_NEWIPC)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)  # drops every capability
    if args.get("sandboxed"):
        fresh_keyrings()

    memory = int(limits["memory"])
    vm_size, vm_data = baseline.get("VmSize", 0), baseline.get("VmData", 0)
    _limit(resource.RLIMIT_AS, vm_size + memory + (2 << 30))
    _limit(resource.RLIMIT_DATA, vm_data + memory)
    # same uid as the worker and the tester: their threads count too
    shared = 0 if args.get("drop_privileges") else 2 * int(baseline.get("Threads", 0)) + 8
    _limit(resource.RLIMIT_NPROC, int(limits["processes"]) + shared)
    _limit(resource.RLIMIT_FSIZE, int(limits["file_size"]))
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_NOFILE, 1024)

    threads = int(limits["threads"]) or 1
    os.environ.clear()
    os.environ.update({
        "HOME": scratch, "TMPDIR": scratch, "PATH": args.get("path", "/usr/bin:/bin"), "LANG": "C.UTF-8",
        "MPLCONFIGDIR": os.path.join(scratch, ".config", "matplotlib"), "XDG_CACHE_HOME": os.path.join(scratch, ".cache"),
        "TORCH_HOME": os.path.join(scratch, ".cache", "torch"), "NBGRADER_EXECUTION": "autograde",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
        "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0"), "COURSE_DOWNLOAD": "0",
        **{k: str(v) for k, v in (job.get("env") or {}).items()},
    })
    os.chdir(scratch)
    sys.path.append(scratch)  # the assignment's own helper files import, after everything else
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for target, path in zip((1, 2), fd_files):
        out = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.dup2(out, target)
        os.close(out)
    try:
        import torch

        torch.set_num_threads(threads)
    except Exception:
        pass

    from course.grading.kernel import Kernel
    from course.runner.learner import serve

    shell.grader_outputs.cell_limit = int(limits["cell_output"])
    shell.grader_outputs.total_left = int(limits["notebook_output"])

    kernel = Kernel(shell, guard, fd_files)
    kernel.start()
    from course.checks.own_work import refuse_learner_calls

    refuse_learner_calls()  # no test runs here: the course's references answer no learner code
    serve(sock, kernel)
    os._exit(0)


CLONE_NEWIPC = 0x08000000
_KEYCTL = {"x86_64": 250, "aarch64": 219}
KEYCTL_JOIN_SESSION_KEYRING, KEYCTL_CLEAR = 1, 7
KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING = -4, -5


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    import ctypes

    if _libc().unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare failed: the submission cannot be isolated")


def fresh_keyrings() -> None:
    """A new session keyring, and this uid's user keyrings emptied: keys an earlier submission
    stored in the kernel (``keyctl add ... @u``) are gone before this one runs."""
    import ctypes
    import platform

    number = _KEYCTL.get(platform.machine())
    if number is None:
        return
    libc = _libc()
    libc.syscall(number, KEYCTL_JOIN_SESSION_KEYRING, ctypes.c_void_p(None))
    for keyring in (KEY_SPEC_USER_KEYRING, KEY_SPEC_USER_SESSION_KEYRING):
        libc.syscall(number, KEYCTL_CLEAR, ctypes.c_long(keyring))


def _limit(kind: int, value: int) -> None:
    import resource

    try:
        soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))
    except (ValueError, OSError):
        pass


if __name__ == "__main__":
    main()
