"""Where the gradebook lives: a SQLite file (one machine, the default) or a database
server such as PostgreSQL that many graders write to at once.

The URL is nbgrader's own ``c.CourseDirectory.db_url``; ``nbgrader_config.py`` takes it
from the environment variable ``COURSE_DB_URL`` when that is set, e.g.
``postgresql://grader:secret@db.example.org:5432/course`` (SQLAlchemy's default driver
for ``postgresql://`` is psycopg 3). Without it the gradebook is ``gradebook.db`` at the
course root.

With a server gradebook, what ``course grade`` keeps about each graded submission (the
fingerprint of what was graded and its result) lives in the same database, in the table
``course_grading_state``, so that any machine that grades the class (a Dask cluster's
coordinator, the N jobs of a CI matrix, the job that writes the class's reports) sees what
the others graded. With SQLite it stays in ``autograded/.grading/<assignment>.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json

from course.assignments import CourseError

ENVIRONMENT_VARIABLE = "COURSE_DB_URL"
STATE_TABLE = "course_grading_state"


def is_sqlite(url: str) -> bool:
    return url.strip().lower().startswith("sqlite")


def shown(url: str) -> str:
    """The URL with its password hidden, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL is shown as it is
        return url


def _engine(url: str):
    from sqlalchemy import create_engine

    args = {} if is_sqlite(url) else {"connect_timeout": 10}
    return create_engine(url, future=True, connect_args=args, pool_pre_ping=True)


def check_reachable(url: str) -> None:
    """Raise a one-line ``CourseError`` when the gradebook's server cannot be reached."""
    if is_sqlite(url):
        return
    from sqlalchemy import text

    try:
        engine = _engine(url)
    except Exception as error:  # noqa: BLE001 - unknown dialect, missing driver, bad URL
        raise CourseError(f"cannot use the gradebook {shown(url)}: {_first_line(error)}") from None
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # noqa: BLE001
        raise CourseError(f"cannot reach the gradebook at {shown(url)}: {_first_line(error)} "
                          f"(is the database server running? is {ENVIRONMENT_VARIABLE} right?)") from None
    finally:
        engine.dispose()


def _first_line(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(error).__name__)[:300]


@contextlib.contextmanager
def exclusive(url: str, name: str):
    """Hold a database-wide lock named ``name`` (PostgreSQL advisory lock) for the block,
    so that graders on several machines set up the gradebook one at a time (creating
    nbgrader's tables and recording the assignment at once from N machines would collide).
    SQLite: nothing (one machine; ``course grade`` already holds its own lock)."""
    if is_sqlite(url):
        yield
        return
    from sqlalchemy import text

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


class SharedState:
    """What was graded, per student, in the gradebook's database (table ``course_grading_state``):
    the same interface as ``course.grading.batch.State`` (``get``, ``put``, ``students``)."""

    def __init__(self, url: str, assignment: str):
        from sqlalchemy import Column, MetaData, String, Table, Text

        self.url, self.assignment = url, assignment
        self.engine = _engine(url)
        metadata = MetaData()
        self.table = Table(STATE_TABLE, metadata,
                           Column("assignment", String(128), primary_key=True),
                           Column("student", String(128), primary_key=True),
                           Column("fingerprint", String(64), nullable=False),
                           Column("limits", String(64), nullable=False),
                           Column("result", Text, nullable=False))
        metadata.create_all(self.engine, checkfirst=True)

    @property
    def students(self) -> dict[str, dict]:
        from sqlalchemy import select

        t = self.table
        with self.engine.connect() as connection:
            found = connection.execute(select(t.c.student, t.c.fingerprint, t.c.limits, t.c.result)
                                       .where(t.c.assignment == self.assignment)).all()
        return {student: {"fingerprint": fingerprint, "limits": limits, "result": json.loads(result)}
                for student, fingerprint, limits, result in found}

    def entry(self, student: str) -> dict | None:
        from sqlalchemy import select

        t = self.table
        with self.engine.connect() as connection:
            found = connection.execute(select(t.c.fingerprint, t.c.limits, t.c.result).where(
                t.c.assignment == self.assignment, t.c.student == student)).first()
        if found is None:
            return None
        return {"fingerprint": found[0], "limits": found[1], "result": json.loads(found[2])}

    def put(self, student: str, fingerprint: str, limits: str, result) -> None:
        from sqlalchemy.dialects.postgresql import insert

        values = {"assignment": self.assignment, "student": student, "fingerprint": fingerprint,
                  "limits": limits, "result": json.dumps(result.to_json())}
        statement = insert(self.table).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["assignment", "student"],
            set_={k: statement.excluded[k] for k in ("fingerprint", "limits", "result")})
        with self.engine.begin() as connection:
            connection.execute(statement)

    def close(self) -> None:
        self.engine.dispose()
