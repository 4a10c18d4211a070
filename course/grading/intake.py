"""Taking in one student's submission folder, safely, before anything else reads it.

Everything in ``submitted/`` was made by a student (through git, a zip file, an LMS
export or nbgrader's exchange), so this module trusts none of it:

- the folder is walked without following links, with a cap on the number of entries
  and on their total size (``c.Sandbox.submission_files``, ``submission_size``); a
  symbolic link, a device, a FIFO or a socket anywhere in it makes the submission
  ``invalid`` (a link could hand the student the gradebook or the solutions back
  through their own ``autograded/`` and ``feedback/`` folders);
- the notebook is opened with ``O_NOFOLLOW`` and read once, at most
  ``c.Sandbox.notebook_size`` bytes; it is parsed with bounded nesting and bounded
  integers, and *any* failure to read or parse it is that student's ``invalid`` row;
- the student's folder name must be one nbgrader can handle (valid UTF-8, no control
  characters, no leading dot, no glob characters), else ``invalid`` with a message
  that says to rename it;
- when the notebook has another name (``tensors (1).ipynb``, ``Tensors.ipynb``) or sits
  one folder down, and it is the only notebook carrying this assignment's cells, it is
  graded and the message says so;
- nbgrader then reads a *staged* copy (``stage``): the notebook alone, plus the
  submission time from the collection's record (never from the student's own
  ``timestamp.txt``). Nothing else of the student's folder is ever copied.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

MAX_DEPTH = 64  # nesting of lists and objects in a notebook's JSON (a real notebook uses about 8)
MAX_DIGITS = 64  # digits of one integer in a notebook's JSON
_GLOB = set("*?[]")
_KINDS = {stat.S_IFLNK: "a symbolic link", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device",
          stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket"}
TIMESTAMP_FOLDER = "collected"  # collected/<assignment>.csv: student_id,timestamp (see submission_time)


class NotebookError(ValueError):
    """A file that is not a notebook this course can read; the message says why."""


@dataclass(frozen=True)
class Caps:
    """What a submission folder may hold (``Limits.caps()``: the defaults live in ``Limits``)."""

    notebook_size: int
    submission_size: int
    submission_files: int


@dataclass
class Intake:
    """What was found in one submission folder."""

    status: str | None  # None: gradable; else "missing" or "invalid"
    message: str = ""  # the note for a gradable one (notebook renamed, cells restored)
    data: bytes | None = field(default=None, repr=False)  # the notebook's bytes, read once
    nb: object = field(default=None, repr=False)  # the parsed notebook
    found: str = ""  # where the notebook was, relative to the folder

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest() if self.data is not None else "none"


def printable(name: str) -> str:
    """A file name as a person can read it and a CSV can hold it: bytes that are not
    UTF-8 as ``\\xNN``, control characters escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def name_problem(name: str) -> str | None:
    """Why nbgrader cannot grade a student folder of this name (``None``: it can)."""
    shown = printable(name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"the folder name {shown!r} is not valid UTF-8: rename the student's folder"
    if any(not c.isprintable() for c in name):
        return (f"the folder name {shown!r} contains a line break or another control character, which "
                "nbgrader cannot handle: rename the student's folder")
    if name.startswith("."):
        return (f"the folder name {shown!r} starts with a dot, which nbgrader treats as hidden: "
                "rename the student's folder")
    if _GLOB & set(name):
        return f"the folder name {shown!r} contains one of * ? [ ], which nbgrader cannot handle: rename the student's folder"
    return None


def _lstat_kind(path: Path) -> str | None:
    """``None`` for a real folder, else what it is."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a folder")


def walk(folder: Path, caps: Caps) -> tuple[list[str], str | None]:
    """The regular files under ``folder`` (relative paths), never following a link;
    or the problem that makes the submission invalid."""
    files: list[str] = []
    total = entries = 0
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(folder, rel) if rel else folder) as listing:
                for entry in listing:
                    entries += 1
                    path = os.path.join(rel, entry.name) if rel else entry.name
                    if entries > caps.submission_files:
                        return files, (f"the submission holds more than {caps.submission_files} files and folders: "
                                       "submit the notebook (and only what the assignment asks for)")
                    info = entry.stat(follow_symlinks=False)
                    kind = stat.S_IFMT(info.st_mode)
                    if kind == stat.S_IFDIR:
                        stack.append(path)
                    elif kind == stat.S_IFREG:
                        total += max(info.st_size, info.st_blocks * 512)
                        if total > caps.submission_size:
                            return files, (f"the submission is larger than {_size(caps.submission_size)}: "
                                           "submit the notebook without large files")
                        files.append(path)
                    else:
                        return files, (f"{printable(path)!r} is {_KINDS.get(kind, 'a special file')}: "
                                       "a submission holds regular files only; submit the notebook itself")
        except OSError as error:
            return files, f"the submission could not be read ({printable(rel or '.')}: {error.strerror})"
    return files, None


def read_bytes(path: Path, limit: int) -> bytes:
    """A regular file's bytes, opened without following a link, at most ``limit`` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotebookError("it is a symbolic link: submit the notebook itself") from None
        raise NotebookError(f"it could not be opened ({error.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotebookError("it is not a regular file")
        if info.st_size > limit:
            raise NotebookError(f"it is larger than {_size(limit)} (clear the outputs and submit again)")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise NotebookError(f"it is larger than {_size(limit)} (clear the outputs and submit again)")
        return data
    finally:
        os.close(fd)


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise NotebookError(f"it holds an integer with more than {MAX_DIGITS} digits")
    return int(text)


def _constant(name: str):
    raise NotebookError(f"it holds {name}, which is not JSON")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_notebook(data: bytes):
    """A notebook node from untrusted bytes; ``NotebookError`` with a one-line reason
    for anything else (bad JSON, nesting deeper than ``MAX_DEPTH``, huge integers,
    an invalid notebook)."""
    import nbformat

    try:
        text = data.decode("utf-8")
        raw = json.loads(text, parse_int=_integer, parse_constant=_constant)
    except NotebookError:
        raise
    except RecursionError:
        raise NotebookError(f"its JSON is nested deeper than {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise NotebookError(f"it is not JSON ({_one_line(error)})") from None
    if not isinstance(raw, dict):
        raise NotebookError("it is not a notebook (the JSON is not an object)")
    if _depth(raw) > MAX_DEPTH:
        raise NotebookError(f"its JSON is nested deeper than {MAX_DEPTH} levels")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # noqa: BLE001 - nbformat's many error types: all mean "not a notebook"
        raise NotebookError(f"it is not a valid notebook ({_one_line(error)})") from None
    if not isinstance(nb.get("cells"), list) or not nb.cells:
        raise NotebookError("it has no cells")
    return nb


def tracked_ids(nb) -> list[str]:
    """grade_ids of the cells nbgrader tracks; ``NotebookError`` for a tracked cell without one."""
    ids = []
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not isinstance(meta, dict):
            continue
        if meta.get("grade") or meta.get("solution") or meta.get("locked") or meta.get("task"):
            grade_id = meta.get("grade_id")
            if not isinstance(grade_id, str) or not grade_id:
                raise NotebookError(f"cell {index + 1} has nbgrader metadata without a grade_id (the notebook was "
                                    "edited outside Jupyter); start again from the released notebook")
            ids.append(grade_id)
    return ids


def inspect(folder: Path, notebook: str, expected_ids: list[str], caps: Caps,
            other_assignments: dict[str, set[str]] | None = None) -> Intake:
    """Check one submission folder; read and parse its notebook once."""
    for part in (folder.parent, folder):
        kind = _lstat_kind(part)
        if kind is not None:
            return Intake("invalid", f"the submission folder {printable(part.name)!r} is {kind}: "
                                     "it must be a real folder holding the notebook")
    files, problem = walk(folder, caps)
    if problem:
        return Intake("invalid", problem)
    notebooks = [f for f in files if f.endswith(".ipynb") and ".ipynb_checkpoints" not in Path(f).parts]
    if not files:
        return Intake("missing", f"no {notebook} in the submission (the folder is empty)")
    if not notebooks:
        shown = ", ".join(printable(f) for f in sorted(files)[:3])
        return Intake("missing", f"no {notebook} in the submission (found only {shown})")
    candidates = [notebook] if notebook in notebooks else sorted(notebooks, key=lambda f: (f.count(os.sep), f))
    problems, matching = [], []
    for rel in candidates:
        try:
            nb = parse_notebook(read_bytes(folder / rel, caps.notebook_size))
            ids = tracked_ids(nb)
        except NotebookError as error:
            problems.append(f"{printable(rel)} cannot be graded: {error}")
            continue
        mine = len(set(ids) & set(expected_ids))
        theirs = max((len(set(ids) & other) for other in (other_assignments or {}).values()), default=0)
        if expected_ids and (not mine or theirs > mine):
            problems.append(_not_this_assignment(rel, notebook, ids, other_assignments or {}))
            continue
        matching.append((rel, nb, ids))
    if not matching:
        return Intake("invalid", problems[0] if len(problems) == 1 else "; ".join(problems[:3]))
    if len(matching) > 1:
        names = ", ".join(printable(m[0]) for m in matching[:4])
        return Intake("invalid", f"found more than one notebook of this assignment ({names}) and no {notebook}: "
                                 f"submit one, named {notebook}")
    rel, nb, ids = matching[0]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        return Intake("invalid", f"cells appear more than once in {printable(rel)} ({', '.join(duplicates[:5])}): "
                                 "a cell was copied; delete the copies and submit again")
    notes = []
    if rel != notebook:
        notes.append(f"graded {printable(rel)} as {notebook} (the only notebook of this assignment in the "
                     f"submission); name it {notebook} next time")
    missing = [i for i in expected_ids if i not in set(ids)]
    if missing:
        notes.append(f"restored deleted cells: {', '.join(missing)}")
    data = read_bytes(folder / rel, caps.notebook_size)
    return Intake(None, "; ".join(notes), data=data, nb=nb, found=rel)


def _not_this_assignment(rel: str, notebook: str, ids: list[str], others: dict[str, set[str]]) -> str:
    best = max(others.items(), key=lambda item: len(item[1] & set(ids)), default=None)
    if best is not None and best[1] & set(ids):
        return (f"{printable(rel)} is the notebook of {best[0]}, not of this assignment: "
                f"submit this assignment's {notebook}")
    if not ids:
        return (f"{printable(rel)} has none of the assignment's cells (no nbgrader metadata): it is not the "
                "released notebook; write your answers in the released notebook and submit that")
    return f"{printable(rel)} has none of this assignment's cells: submit this assignment's {notebook}"


def submission_time(root: Path, assignment: str, student: str) -> str | None:
    """When the collection received this submission: ``collected/<assignment>.csv``
    (columns ``student_id,timestamp``), written by whoever collects (an instructor's
    export script, a hub's collection). A student's own ``timestamp.txt`` is never read."""
    path = Path(root) / TIMESTAMP_FOLDER / f"{assignment}.csv"
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            found = None
            for row in csv.DictReader(handle):
                if row.get("student_id") == student and row.get("timestamp"):
                    found = row["timestamp"].strip()
            return found
    except (OSError, ValueError, csv.Error):
        return None


def stage(intake: Intake, folder: Path, notebook: str, timestamp: str | None) -> Path:
    """What nbgrader's autograde reads for this student: the notebook alone (under its
    expected name) and the collection's timestamp."""
    import shutil

    if folder.is_symlink() or folder.exists():
        shutil.rmtree(folder) if folder.is_dir() and not folder.is_symlink() else folder.unlink()
    folder.mkdir(parents=True)
    (folder / notebook).write_bytes(intake.data or b"")
    if timestamp:
        (folder / "timestamp.txt").write_text(timestamp + "\n", encoding="utf-8")
    return folder / notebook


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200]
