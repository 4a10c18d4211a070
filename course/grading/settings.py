"""The grader's settings, read from ``nbgrader_config.py`` (``c.Sandbox.*``)."""

from __future__ import annotations

import os

from traitlets import Bool, Float, Int, List, Unicode
from traitlets.config import LoggingConfigurable

from course.grading.sandbox import Limits, Spec, format_size, parse_size

_DEFAULT = Limits()  # the one place the limits' defaults are written


def _size(n: int) -> str:
    """``4G``, ``1M``, ``256M``: a default as the configuration writes it."""
    for suffix, scale in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % scale == 0:
            return f"{n // scale}{suffix}"
    return str(n)


class Sandbox(LoggingConfigurable):
    """Where and within what limits a submission's code runs (see course.grading.sandbox)."""

    memory = Unicode(_size(_DEFAULT.memory), help="Memory one submission may use (K/M/G suffixes).").tag(config=True)
    cell_timeout = Float(_DEFAULT.cell_timeout, help="Seconds of wall clock one cell may run.").tag(config=True)
    notebook_timeout = Float(_DEFAULT.notebook_timeout, help="Seconds of wall clock a whole notebook may run.").tag(config=True)
    processes = Int(_DEFAULT.processes, help="Processes and threads one submission may have at once.").tag(config=True)
    cell_output = Unicode(_size(_DEFAULT.cell_output), help="Output one cell may produce (text and images).").tag(config=True)
    notebook_output = Unicode(_size(_DEFAULT.notebook_output), help="Output a whole notebook may produce.").tag(config=True)
    file_size = Unicode(_size(_DEFAULT.file_size), help="The largest file a submission may write.").tag(config=True)
    tmp_size = Unicode(_size(_DEFAULT.tmp_size), help="Scratch space of a submission (/tmp and /dev/shm, in memory).").tag(config=True)
    notebook_size = Unicode(_size(_DEFAULT.notebook_size), help="The largest submitted notebook that is read at all.").tag(config=True)
    submission_size = Unicode(_size(_DEFAULT.submission_size), help="The most a submission folder may hold in all.").tag(config=True)
    submission_files = Int(_DEFAULT.submission_files, help="The most files and folders a submission folder may hold.").tag(config=True)
    threads = Int(_DEFAULT.threads, help="torch/BLAS threads per submission; 0: cores divided by jobs.").tag(config=True)
    partial_credit = Bool(_DEFAULT.partial_credit, help="Let a number shown by a test cell's last expression be its score "
                          "(nbgrader's partial credit); off: a test cell scores all or nothing.").tag(config=True)
    jobs = Int(0, help="Submissions graded at once; 0: the number of cores.").tag(config=True)
    unsafe = Bool(False, help="Run submissions without a sandbox (bubblewrap missing). Never for untrusted code.").tag(config=True)
    bwrap = Unicode("bwrap", help="The bubblewrap executable.").tag(config=True)
    uid_base = Int(64000, help="A root grader runs worker k's submissions as uid uid_base + k.").tag(config=True)
    extra_binds = List(Unicode(), help="More host paths the sandbox may read (read-only).").tag(config=True)
    preload = List(Unicode(), help="Modules workers import once (default: torch, numpy, ...).").tag(config=True)

    def limits(self) -> Limits:
        return Limits(memory=parse_size(self.memory), cell_timeout=self.cell_timeout,
                      notebook_timeout=self.notebook_timeout, processes=self.processes,
                      cell_output=parse_size(self.cell_output), notebook_output=parse_size(self.notebook_output),
                      file_size=parse_size(self.file_size), tmp_size=parse_size(self.tmp_size), threads=self.threads,
                      partial_credit=self.partial_credit, notebook_size=parse_size(self.notebook_size),
                      submission_size=parse_size(self.submission_size), submission_files=self.submission_files)

    def job_count(self, jobs: int | None = None) -> int:
        return max(1, jobs or self.jobs or os.cpu_count() or 1)

    def spec(self, limits: Limits, jobs: int, unsafe: bool) -> Spec:
        from course.grading.worker import PRELOAD

        return Spec(unsafe=unsafe, bwrap=self.bwrap, uid_base=self.uid_base, tmp_size=limits.tmp_size,
                    extra_binds=tuple(self.extra_binds), preload=tuple(self.preload or PRELOAD),
                    fingerprint=code_fingerprint())


def code_fingerprint() -> str:
    """Changes when any file of the course package changes (workers import it once)."""
    import hashlib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        try:
            stat = path.stat()
        except OSError:
            continue
        digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def describe(limits: Limits, jobs: int, unsafe: bool) -> str:
    where = ("WITHOUT A SANDBOX (--unsafe): submissions can read and write anything this user can"
             if unsafe else "in bubblewrap sandboxes (no network, private /tmp, course files hidden, "
             + ("an unprivileged uid" if os.geteuid() == 0 else "user namespaces") + ")")
    return f"grading {where}; {jobs} at a time; limits: {limits.describe()}"


__all__ = ["Sandbox", "describe", "format_size"]
