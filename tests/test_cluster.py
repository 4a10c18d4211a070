"""Grading a class across machines: a real PostgreSQL server (started here, on a free port, in a
temporary directory) as the shared gradebook, a real Dask ``LocalCluster`` of 2 workers, and
``--shard I/N`` runs as a CI matrix would make them. The same class is graded by the local grader
(SQLite) for reference: the cluster and the shards must give every student the same status and
score, with exactly one row per student in the CSV and in nbgrader's tables, even when a Dask
worker is killed while it grades."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

import pg
from course.assignments import CourseError, resolve
from course.grading import Limits, grade
from course.grading.cluster import check_gradebook, parse_cluster, parse_shard, shard_of
from course.grading.sandbox import sandbox_problem
from course.notebooks import fill
from course.release import fresh_release
from proof import ROOT, load_solutions

PROBLEM = sandbox_problem()
PG_PROBLEM = pg.problem()
ASSIGNMENT = "01_tensors"
LIMITS = Limits(cell_timeout=60, notebook_timeout=300)
needs_sandbox = pytest.mark.skipif(PROBLEM is not None, reason=f"needs a bubblewrap sandbox: {PROBLEM}")
needs_postgres = pytest.mark.skipif(PG_PROBLEM is not None, reason=PG_PROBLEM or "")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cluster")]


def course(*args, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})}, **kwargs)


def csv_rows(root: Path) -> list[dict]:
    with (root / "grades" / f"{ASSIGNMENT}.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def outcome(rows: list[dict]) -> dict[str, tuple[str, float]]:
    return {r["student_id"]: (r["status"], float(r["score"])) for r in rows}


def gradebook_counts(url: str) -> tuple[dict[str, int], int, dict[str, int]]:
    """Per student: submissions in nbgrader's tables; grade rows in all; rows in course_grading_state."""
    import psycopg

    with psycopg.connect(url) as connection:
        submissions = dict(connection.execute(
            "SELECT s.student_id, count(*) FROM submitted_assignment s JOIN assignment a ON a.id = s.assignment_id "
            "WHERE a.name = %s GROUP BY s.student_id", (ASSIGNMENT,)).fetchall())
        grades = connection.execute(
            "SELECT count(*) FROM grade g JOIN submitted_notebook n ON n.id = g.notebook_id "
            "JOIN submitted_assignment s ON s.id = n.assignment_id").fetchone()[0]
        state = dict(connection.execute("SELECT student, count(*) FROM course_grading_state WHERE assignment = %s "
                                        "GROUP BY student", (ASSIGNMENT,)).fetchall())
    return submissions, grades, state


# -- a class, graded by the local grader for reference -------------------------------------------

@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A scratch course with a small class: known right, wrong and empty answers, and a student
    without a notebook."""
    released = nbformat.read(ROOT / "release" / ASSIGNMENT / "tensors.ipynb", as_version=4)
    solutions = load_solutions(ASSIGNMENT)
    right = solutions.ALTERNATIVES
    root = tmp_path_factory.mktemp("class")
    (assignment,) = resolve(ROOT, [ASSIGNMENT])
    fresh_release(ROOT, assignment, root)
    shutil.copy(ROOT / "SYLLABUS.md", root / "SYLLABUS.md")
    (root / "gradebook.db").unlink()
    submissions = {
        "ada": fill(released, right),
        "bob": released,
        "cy": fill(released, {**right, "one_hot": solutions.MUTANTS["one_hot"][0]}),
        "dee": fill(released, {**right, "flip": solutions.MUTANTS["flip"][0]}),
        "eve": None,  # no notebook
    }
    for student, nb in submissions.items():
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        if nb is not None:
            nbformat.write(nb, folder / "tensors.ipynb")
    return assignment, root


def copy_course(klass, target: Path) -> Path:
    """A fresh checkout of the class (as a CI job or another machine has it): no grades, no state."""
    _, root = klass
    shutil.copytree(root, target, ignore=shutil.ignore_patterns("grades", "autograded", "feedback", "gradebook.db"))
    return target


@pytest.fixture(scope="module")
def reference(klass, tmp_path_factory):
    """Status and score per student from the local grader with a SQLite gradebook."""
    if PROBLEM is not None:
        pytest.skip(f"needs a bubblewrap sandbox: {PROBLEM}")
    assignment, _ = klass
    root = copy_course(klass, tmp_path_factory.mktemp("local") / "course")
    grade(root, assignment, limits=LIMITS, jobs=2, feedback=False, db_url=f"sqlite:///{root / 'gradebook.db'}")
    expected = outcome(csv_rows(root))
    # what the class was built to score (the mutants lose their exercise's points)
    assert expected["ada"] == ("graded", 23) and expected["bob"] == ("graded", 0)
    assert expected["cy"][1] < 23 and expected["dee"][1] < 23 and expected["eve"][0] == "missing"
    return expected


@pytest.fixture(scope="module")
def postgres():
    if PG_PROBLEM is not None:
        pytest.skip(PG_PROBLEM)
    with pg.Server() as server:
        yield server


# -- shards ---------------------------------------------------------------------------------------

def test_shards_partition_the_class_by_a_stable_hash():
    ids = [f"student_{i:04d}" for i in range(1000)] + ["name with spaces", "ünïcødé"]
    for n in (1, 2, 3, 7):
        shards = {s: shard_of(s, n) for s in ids}
        assert set(shards.values()) == set(range(1, n + 1))  # every shard gets students, none is out of range
        sizes = [list(shards.values()).count(i) for i in range(1, n + 1)]
        spread = 5 * (len(ids) * (1 / n) * (1 - 1 / n)) ** 0.5 + 1  # 5 standard deviations of a fair split
        assert all(abs(size - len(ids) / n) <= spread for size in sizes), sizes
        # the slice of a student does not depend on who else is in the class, or in what order
        assert {s: shard_of(s, n) for s in reversed(ids[::3])} == {s: shards[s] for s in ids[::3]}
    # nor on the process (Python's hash() of a str changes with PYTHONHASHSEED)
    code = "import sys; from course.grading.cluster import shard_of; print([shard_of(f's{i}', 5) for i in range(50)])"
    seen = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout for seed in ("1", "2")}
    assert len(seen) == 1


@pytest.mark.parametrize("text, words", [
    ("3/2", "between 1 and N"), ("0/0", "between 1 and N"), ("0/3", "between 1 and N"), ("2", "expected I/N"),
    ("a/b", "expected I/N"), ("1/-2", "expected I/N"),
])
def test_bad_shards_are_refused(text, words):
    with pytest.raises(CourseError, match=words):
        parse_shard(text)


@pytest.mark.parametrize("text, words", [
    ("bogus", "unknown cluster address"), ("local:0", "expected local:N"), ("local:x", "expected local:N"),
    ("http//nope", "unknown cluster address"),
])
def test_bad_cluster_addresses_are_refused(text, words):
    with pytest.raises(CourseError, match=words):
        parse_cluster(text)


@pytest.mark.parametrize("flag, value, words", [
    ("--shard", "3/2", "--shard 3/2: I must be between 1 and N"),
    ("--cluster", "bogus", "unknown cluster address 'bogus': use local, local:N or a Dask scheduler address"),
])
def test_bad_values_are_one_line_from_the_command(flag, value, words):
    done = course("grade", ASSIGNMENT, flag, value)
    assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_cluster_addresses():
    assert parse_cluster("local:3") == ("local", 3)
    assert parse_cluster("local")[0] == "local"
    assert parse_cluster("tcp://10.0.0.5:8786") == ("address", "tcp://10.0.0.5:8786")
    assert parse_cluster("scheduler:8786") == ("address", "tcp://scheduler:8786")


def test_a_sqlite_gradebook_is_refused_for_workers_on_other_machines():
    check_gradebook("sqlite:////course/gradebook.db", ["tcp://127.0.0.1:40000", "tcp://127.0.0.1:40001"])
    check_gradebook("postgresql://u@db/course", ["tcp://10.1.2.3:40000"])
    with pytest.raises(CourseError, match="SQLite file .* 10.1.2.3 cannot write: use a PostgreSQL gradebook"):
        check_gradebook("sqlite:////course/gradebook.db", ["tcp://127.0.0.1:40000", "tcp://10.1.2.3:40000"])


@needs_sandbox
def test_unreachable_gradebook_and_scheduler_are_one_line(klass, tmp_path):
    root = copy_course(klass, tmp_path / "course")
    url = f"postgresql://course:secret@127.0.0.1:{pg.free_port()}/nowhere"
    done = course("--root", str(root), "grade", ASSIGNMENT, env={"COURSE_DB_URL": url})
    assert done.returncode == 2, done.stderr
    assert "cannot reach the gradebook at postgresql://course:***@127.0.0.1" in done.stderr
    assert "secret" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr

    done = course("--root", str(root), "grade", ASSIGNMENT, "--cluster", f"tcp://127.0.0.1:{pg.free_port()}",
                  "--no-feedback")
    assert done.returncode == 2, done.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- the real thing ------------------------------------------------------------------------------

@needs_sandbox
@needs_postgres
def test_release_works_unchanged_against_postgres(klass, postgres, tmp_path):
    url = postgres.create("commands")
    root = copy_course(klass, tmp_path / "course")
    done = course("--root", str(root), "release", ASSIGNMENT, env={"COURSE_DB_URL": url})
    assert done.returncode == 0, done.stderr
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        notebook = gb.find_notebook("tensors", ASSIGNMENT)
        assert gb.find_assignment(ASSIGNMENT).max_score == 23 and len(notebook.grade_cells) > 5
    assert not (root / "gradebook.db").exists()  # nothing went to a SQLite file
    # `course grade` against PostgreSQL: test_shard_runs_into_one_gradebook_give_the_class


@needs_sandbox
@needs_postgres
def test_a_dask_cluster_grades_like_the_local_grader_and_survives_a_killed_worker(klass, reference, postgres,
                                                                                  tmp_path):
    from distributed import Client, LocalCluster

    url = postgres.create("cluster")
    root = copy_course(klass, tmp_path / "course")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit=0,
                      silence_logs=50) as cluster, Client(cluster) as client:
        pids = client.run(os.getpid)
        killed: dict = {}

        def kill_a_busy_worker():
            def busy():
                return next((w for w, keys in client.processing().items() if keys), None)

            if pg.wait_until(lambda: busy() is not None, timeout=120, every=0.1):
                time.sleep(2)  # let it get into the submission
                worker = busy()
                if worker is not None:
                    killed["tasks"] = list(client.processing()[worker])
                    killed["worker"] = worker
                    os.kill(pids[worker], signal.SIGKILL)

        killer = threading.Thread(target=kill_a_busy_worker)
        killer.start()
        done = course("--root", str(root), "grade", ASSIGNMENT, "--cluster", cluster.scheduler_address,
                      "--cell-timeout", "60", env={"COURSE_DB_URL": url}, timeout=400)
        killer.join()
        assert done.returncode == 0, done.stderr[-3000:]
        assert killed.get("tasks"), "no worker was killed while it graded"
        assert pg.wait_until(lambda: len(client.scheduler_info()["workers"]) == 2, timeout=60)
        assert killed["worker"] not in client.scheduler_info()["workers"]  # it died; the nanny started another

    rows = csv_rows(root)
    assert sorted(r["student_id"] for r in rows) == sorted(reference)  # one row each
    assert outcome(rows) == reference
    submissions, grades, state = gradebook_counts(url)
    graded = [s for s, (status, _) in reference.items() if status != "missing"]
    assert submissions == {s: 1 for s in graded}  # no lost or duplicated rows in nbgrader's tables
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        cells = len(gb.find_notebook("tensors", ASSIGNMENT).grade_cells)
        assert {s: gb.find_submission(ASSIGNMENT, s).score for s in graded} == {s: reference[s][1] for s in graded}
    assert grades == cells * len(graded)
    assert state == {s: 1 for s in reference}
    for student in graded:  # what the workers made came back to the course root
        assert (root / "feedback" / student / ASSIGNMENT / "tensors.html").is_file()
        log = (root / "autograded" / student / f"{ASSIGNMENT}.log").read_text(encoding="utf-8")
        assert "graded on the Dask worker tcp://" in log
        assert (root / "autograded" / student / ASSIGNMENT / "tensors.ipynb").is_file()

    # a second run finds everything graded (in the gradebook) and grades nothing
    again = course("--root", str(root), "grade", ASSIGNMENT, "--cluster", "local:1", env={"COURSE_DB_URL": url})
    assert again.returncode == 0 and "0 to grade, 4 unchanged" in again.stdout, again.stdout + again.stderr


@needs_sandbox
@needs_postgres
def test_shard_runs_into_one_gradebook_give_the_class(klass, reference, postgres, tmp_path):
    url = postgres.create("shards")
    count = 2
    roots = [copy_course(klass, tmp_path / f"job{i}") for i in range(1, count + 1)]
    # a CI matrix: N jobs, each its own checkout, started at once against an empty gradebook
    jobs = [subprocess.Popen([sys.executable, "-m", "course", "--root", str(root), "grade", ASSIGNMENT,
                              "--shard", f"{i}/{count}", "--jobs", "1", "--no-feedback"], cwd=ROOT,
                             env={**os.environ, "COURSE_DB_URL": url}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
            for i, root in enumerate(roots, 1)]
    outputs = [job.communicate(timeout=400) for job in jobs]
    for job, (out, err) in zip(jobs, outputs):
        assert job.returncode == 0, err[-3000:]
    seen = []
    for i, root in enumerate(roots, 1):
        rows = csv_rows(root)
        assert {r["student_id"] for r in rows} == {s for s in reference if shard_of(s, count) == i}
        assert outcome(rows) == {s: reference[s] for s in outcome(rows)}
        seen += [r["student_id"] for r in rows]
    assert sorted(seen) == sorted(reference)  # every student in exactly one shard

    # the final job (a fresh checkout): everything is already graded; it only writes the reports
    final = copy_course(klass, tmp_path / "reports")
    done = course("--root", str(final), "grade", ASSIGNMENT, "--no-feedback", env={"COURSE_DB_URL": url})
    assert done.returncode == 0, done.stderr
    assert "0 to grade, 4 unchanged" in done.stdout, done.stdout
    assert outcome(csv_rows(final)) == reference
    assert (final / "grades" / "summary.html").is_file()
    with (final / "grades" / "gradebook.csv").open(encoding="utf-8") as handle:
        assert {r["student_id"]: r[ASSIGNMENT] for r in csv.DictReader(handle)}["ada"] == "23"
    submissions, _, state = gradebook_counts(url)
    assert submissions == {s: 1 for s, (status, _) in reference.items() if status != "missing"}
    assert state == {s: 1 for s in reference}


@needs_sandbox
@needs_postgres
def test_a_task_that_runs_too_long_is_stopped_marked_and_graded_again_next_time(klass, reference, postgres,
                                                                               tmp_path, monkeypatch):
    from course.grading import cluster

    url = postgres.create("hang")
    root = copy_course(klass, tmp_path / "course")
    assignment, _ = klass
    # every task counts as hung once it has run 0.5 s (the real limit: notebook_timeout + TASK_GRACE)
    monkeypatch.setattr(cluster, "TASK_GRACE", 0.5 - LIMITS.notebook_timeout)
    monkeypatch.setattr(cluster, "WATCH_INTERVAL", 0.1)  # look often: grading one notebook takes seconds
    first = {r.student_id: r for r in grade(root, assignment, db_url=url, cluster="local:1", limits=LIMITS,
                                            feedback=False, only=["ada"])}
    assert first["ada"].status == "crashed", first["ada"]
    assert "ran for more than 0.5 s on the cluster without finishing and was stopped" in first["ada"].message
    assert "run `course grade` again" in first["ada"].message
    assert outcome(csv_rows(root))["ada"][0] == "crashed"
    _, _, state = gradebook_counts(url)
    assert "ada" not in state  # not remembered as graded

    monkeypatch.setattr(cluster, "TASK_GRACE", 300.0)
    said = []
    again = grade(root, assignment, db_url=url, cluster="local:1", limits=LIMITS, feedback=False, only=["ada"],
                  announce=said.append)
    assert "1 to grade" in said[1], said
    assert (again[0].status, again[0].score) == reference["ada"]
