"""Slices of a class for CI matrices: ``--shard I/N``.

``shard_of(student, n)`` is a stable hash of the student id (not its place in a list), so N
jobs that each grade ``--shard i/N`` grade every student exactly once, whatever each job's
checkout holds.
"""

from __future__ import annotations

import hashlib
import re

from course.assignments import CourseError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` → ``(2, 5)``; shards are numbered 1..N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not match:
        raise CourseError(f"--shard {text!r}: expected I/N, e.g. --shard 2/5 (the 2nd of 5 slices)")
    index, count = int(match[1]), int(match[2])
    if count < 1 or not 1 <= index <= count:
        raise CourseError(f"--shard {text}: I must be between 1 and N and N at least 1 (e.g. 1/{max(count, 2)})")
    return index, count


def shard_of(student: str, count: int) -> int:
    """The shard (1..count) a student belongs to: a stable hash of the id."""
    digest = hashlib.sha256(student.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1
