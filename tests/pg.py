"""A throwaway PostgreSQL server for the tests: ``initdb`` in a temporary directory, ``postgres``
on a free local port, stopped and deleted afterwards. Uses the server binaries of the system
(Debian/Ubuntu: ``apt-get install postgresql``, which ``make setup`` does when root). PostgreSQL
refuses to run as root: a root test run starts it as the ``postgres`` user (or ``nobody``)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

INSTALL = "PostgreSQL server binaries not found: apt-get install postgresql (or run `make setup` as root)"


def binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (newest version first), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for name in ("initdb",):
        found = shutil.which(name)
        if found:
            candidates.append(str(Path(found).parent))
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    return None


def _user() -> str | None:
    """The unprivileged user to run the server as when the tests run as root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    return None


def problem() -> str | None:
    if binaries() is None:
        return INSTALL
    if os.geteuid() == 0 and (_user() is None or shutil.which("runuser") is None):
        return "PostgreSQL cannot run as root and there is no postgres/nobody user or runuser to drop to"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``with Server() as pg: pg.url("dbname")``."""

    def __init__(self):
        self.bin = binaries()
        self.user = _user()
        self.dir = Path(tempfile.mkdtemp(prefix="course-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"

    def _run(self, *command: str, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, check=True, **kwargs)

    def start(self) -> "Server":
        if self.user:
            shutil.chown(self.dir, self.user)
            os.chmod(self.dir, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "course", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.dir / "log"),
                  "-w", "-t", "60", "start")
        return self

    def create(self, name: str) -> str:
        """A new, empty database; returns its URL."""
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql://course@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", timeout=60)
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_until(predicate, timeout: float, every: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return False
