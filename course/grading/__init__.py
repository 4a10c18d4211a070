"""Grading a class: sandboxed execution, nbgrader's autograde, grades and reports.

- ``batch``: ``grade`` (a class, in parallel, resumable) and ``grade_in_scratch``;
- ``submission``: one submission's life (prepared, executed, recorded, logged), which
  ``batch`` (this machine) and ``cluster`` (Dask workers) both run; ``shards``: ``--shard I/N``;
- ``results``: ``Result``, ``grades/<assignment>.csv``, ``gradebook.csv``, the summary;
- ``sandbox`` (grader side) and ``worker``/``kernel`` (sandbox side): where and how a
  submission's code runs; in the sandbox each notebook is two processes, the learner's and
  the tester's (``course.runner``: every verdict is made in the tester, on plain data);
  ``guard`` is a first line in the learner's process, never a defence a grade depends on.

Names are imported lazily, so that the sandbox worker, which imports
``course.grading.worker``, does not load nbgrader.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "grade": "batch", "grade_in_scratch": "batch", "students": "batch",
    "Result": "results", "by_exercise": "results", "table": "results", "write_csv": "results",
    "CSV_FIELDS": "results", "STATUSES": "results",
    "Limits": "sandbox",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'course.grading' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"course.grading.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
