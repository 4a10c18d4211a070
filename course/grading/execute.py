"""A notebook through a sandboxed worker: the job sent, the outputs and status that come back.

``course.nbgrader_ext.SandboxExecute`` takes the place of nbgrader's ``Execute`` in
``Autograde.autograde_preprocessors``, so nbgrader's own steps (restoring locked
cells, saving grades, feedback) work as before. ``course grade`` executes many
notebooks in parallel *before* nbgrader records them one at a time: it stores each
result in ``PRECOMPUTED`` under the code it ran, and ``SandboxExecute`` uses a stored
result only if the notebook nbgrader hands it has exactly that code (else it runs
the notebook itself).

Everything that comes back from a sandbox is checked here before nbgrader sees it:
outputs are rebuilt field by field, a test cell that failed always carries an error
output (so it scores 0) and never an ``execute_result`` (which nbgrader would read
as partial credit; a test cell that passed keeps one only with
``c.Sandbox.partial_credit``), and every cell that did not run gets an error output
saying why (so it cannot count as passed, nbgrader #427).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.assignments import exercise_of
from course.checks import own_work
from course.grading.sandbox import Limits, Run, format_size, pool_for

PRECOMPUTED: dict[tuple, tuple[str, "Outcome"]] = {}  # (db_url, assignment, student, notebook) → (code key, outcome)
APPLIED: dict[tuple, "Outcome"] = {}  # what SandboxExecute put into each notebook
RERUNS = 0  # notebooks SandboxExecute had to execute again (their code differed from the stored run)
CURRENT: dict[str, tuple] = {}  # db_url → (spec, limits, jobs, files) of the `course grade` run using it
_registry_lock = threading.Lock()


def cell_kind(cell) -> str:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "test"
    if meta.get("solution"):
        return "answer"
    if meta.get("locked"):
        return "locked"
    return "code"


def code_cells(nb) -> list[dict]:
    out = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            meta = cell.get("metadata", {}).get("nbgrader", {})
            out.append({"source": cell.source, "kind": cell_kind(cell), "name": meta.get("grade_id", "")})
    return out


def code_key(cells: list[dict]) -> str:
    return hashlib.sha256(json.dumps(cells, sort_keys=True).encode()).hexdigest()


def assignment_files(source_dir: Path, ignore: list[str], limit: int = 64 << 20) -> dict[str, str]:
    """The assignment's own files (not notebooks), as nbgrader copies them next to the
    notebook; a submission's extra files are not among them."""
    import fnmatch

    files, total = {}, 0
    if not source_dir.is_dir():
        return files
    for path in sorted(source_dir.rglob("*")):
        rel = path.relative_to(source_dir)
        if not path.is_file() or path.suffix == ".ipynb":
            continue
        if any(fnmatch.fnmatch(part, pattern) for part in rel.parts for pattern in ignore):
            continue
        total += path.stat().st_size
        if total > limit:
            break
        files[str(rel)] = base64.b64encode(path.read_bytes()).decode()
    return files


def make_job(cells: list[dict], limits: Limits, jobs: int, files: dict[str, str] | None = None) -> dict:
    return {"cells": cells, "limits": limits.for_worker(jobs), "files": files or {}}


@dataclass
class Outcome:
    """How a notebook's execution ended, and the outputs of every code cell."""

    status: str  # graded | timeout | killed | crashed
    message: str = ""
    outputs: list[list[dict]] = field(default_factory=list)
    counts: list[int | None] = field(default_factory=list)
    seconds: float = 0.0  # wall clock in the worker, set-up included
    cell_seconds: float = 0.0  # executing cells
    log: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)


_SIGNALS = {signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "abort", signal.SIGBUS: "bus error",
            signal.SIGFPE: "floating-point exception", signal.SIGILL: "illegal instruction",
            signal.SIGKILL: "killed", signal.SIGXFSZ: "file too large", signal.SIGTERM: "terminated"}


def _label(cell: dict, index: int) -> str:
    name, kind = cell.get("name"), cell.get("kind")
    if name and kind == "test":
        return f"test cell {name}"
    if name and kind == "answer":
        return f"answer cell {name}"
    if name:
        return f"cell {name}"
    return f"code cell {index + 1}"


def _error(ename: str, evalue: str) -> dict:
    return {"output_type": "error", "ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}


# MIME types that would run code in whoever opens the feedback, Formgrader or the autograded
# notebook; they never leave the sandbox (SVG can hold scripts; figures here are PNG). HTML is
# cleaned (``safe_html``).
ACTIVE = ("application/javascript", "text/javascript", "application/ecmascript", "image/svg+xml",
          "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json")
_METADATA_KEYS = ("width", "height", "needs_background", "unconfined", "isolated")


_TAGS = ["a", "abbr", "b", "blockquote", "br", "code", "dd", "del", "div", "dl", "dt", "em", "h1", "h2", "h3",
         "h4", "h5", "h6", "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "samp", "span", "strong", "sub", "sup",
         "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul"]


def safe_html(text: str) -> str:
    """HTML from a submission with everything active removed: bleach (as nbconvert's own
    ``clean_html``) with an allow-list of tags for text and tables, ``class``/``id``/``title``
    attributes and links to http(s) and mailto only; no scripts, event handlers, styles,
    images, iframes, forms or SVG (what is not allowed is shown as text)."""
    import bleach

    return bleach.clean(text, tags=_TAGS, attributes={"*": ["class", "id", "title"], "a": ["href", "title"]},
                        protocols=["http", "https", "mailto"])


def clean_output(output) -> dict | None:
    """One output from a sandbox, rebuilt from checked fields (``None`` if malformed)."""
    if not isinstance(output, dict):
        return None
    kind = output.get("output_type")

    def text(value, limit=None):
        return value if isinstance(value, str) else ""

    if kind == "stream":
        name = output.get("name")
        return {"output_type": "stream", "name": name if name in ("stdout", "stderr") else "stdout",
                "text": text(output.get("text"))}
    if kind in ("display_data", "execute_result"):
        data = output.get("data")
        if not isinstance(data, dict):
            return None
        clean = {}
        for key, value in data.items():
            if not (isinstance(key, str) and "/" in key and key not in ACTIVE and isinstance(value, str)):
                continue  # plain strings only: a dict or list value is what widgets and JSON renderers eat
            if key in ("text/html", "text/markdown"):
                value = safe_html(value)
            clean[key] = value
        if not clean:
            return None
        made = {"output_type": kind, "data": clean, "metadata": _clean_metadata(output.get("metadata"))}
        if kind == "execute_result":
            count = output.get("execution_count")
            made["execution_count"] = count if isinstance(count, int) else None
        return made
    if kind == "error":
        traceback = output.get("traceback")
        traceback = [line for line in traceback if isinstance(line, str)] if isinstance(traceback, list) else []
        return {"output_type": "error", "ename": text(output.get("ename"))[:200] or "Error",
                "evalue": text(output.get("evalue")), "traceback": traceback}
    return None


def _clean_metadata(metadata) -> dict:
    """Only the sizes a figure carries (``{"image/png": {"width": 640}}``), as numbers and flags."""
    out = {}
    if not isinstance(metadata, dict):
        return out
    for mime, value in list(metadata.items())[:8]:
        if isinstance(mime, str) and isinstance(value, dict):
            kept = {k: v for k, v in value.items() if k in _METADATA_KEYS and isinstance(v, (int, float, bool))}
            if kept:
                out[mime[:100]] = kept
    return out


def _size_of(output: dict) -> int:
    return len(json.dumps(output, ensure_ascii=False).encode("utf-8", "surrogatepass"))


def _within_budget(outputs: list[dict], cell_limit: int, left: int) -> tuple[list[dict], int]:
    """The outputs of one cell, cut where they pass the cell's or the notebook's budget;
    every byte counts (text, images, metadata, tracebacks)."""
    kept, used = [], 0
    for output in outputs:
        size = _size_of(output)
        if used + size > min(cell_limit, left):
            if output["output_type"] == "error":  # a failure stays a failure, told in few bytes
                kept.append(_error(output["ename"][:100], "(the error message was too long to keep)"))
            kept.append({"output_type": "stream", "name": "stdout",
                         "text": f"\n[... output truncated: more than {format_size(min(cell_limit, left))} ...]\n"})
            break
        kept.append(output)
        used += size
    return kept, left - used


def fail_leaning_answers(outcome: Outcome, cells: list[dict]) -> None:
    """The test cells of an exercise whose answer leans on the course's own code fail, read from
    the cells' text, not from anything the sandbox reports (``course.checks.own_work``).

    Called by ``SandboxExecute``, in nbgrader's (main) thread: never from the threads that
    wait for sandboxes (see ``own_work.violations``)."""
    leaning = own_work.violations(cells)
    if not leaning:
        return
    exercises = sorted(leaning, key=len, reverse=True)
    for index, cell in enumerate(cells):
        if cell["kind"] != "test" or index >= len(outcome.outputs):
            continue
        exercise = exercise_of(cell.get("name", ""), exercises)
        if exercise in leaning:
            outcome.outputs[index] = [_error("OwnWorkError", own_work.MESSAGE.format(why=leaning[exercise]))]


def outcome_of(run: Run, cells: list[dict], limits: Limits) -> Outcome:
    """Turn what a worker reported into outputs for every code cell and one status."""
    outcome = Outcome(status="graded", seconds=run.seconds, cell_seconds=run.cell_seconds, log=list(run.events))
    left = limits.notebook_output
    for index, cell in enumerate(cells):
        frame = run.cells.get(index)
        if frame is None:
            outcome.outputs.append([])
            outcome.counts.append(None)
            continue
        raw = frame.get("outputs") if isinstance(frame.get("outputs"), list) else []
        outputs = [o for o in map(clean_output, raw) if o is not None]
        outputs, left = _within_budget(outputs, limits.cell_output, left)
        failed = frame.get("status") != "ok"
        if cell["kind"] == "test":
            if failed:
                outputs = [o for o in outputs if o["output_type"] != "execute_result"]
                if not any(o["output_type"] == "error" for o in outputs):
                    outputs.append(_error("Error", "this test failed"))
            else:
                results = [o for o in outputs if o["output_type"] == "execute_result"] if limits.partial_credit else []
                outputs = [o for o in outputs if o["output_type"] != "execute_result"] + results[-1:]
        tampered = frame.get("tampered")
        if isinstance(tampered, list):
            outcome.tampered += [str(t)[:200] for t in tampered]
        outcome.outputs.append(outputs)
        count = frame.get("count")
        outcome.counts.append(count if isinstance(count, int) and count > 0 else None)
        if isinstance(frame.get("seconds"), (int, float)):
            outcome.log.append(f"{_label(cell, index)}: {frame['seconds']:.3f} s{' (error)' if failed else ''}")

    stop = run.stop if isinstance(run.stop, dict) and isinstance(run.stop.get("i"), int) else None
    missing = [i for i in range(len(cells)) if i not in run.cells]
    if run.done and not missing and not (run.timeout or run.killed or stop or run.worker_failed):
        return outcome
    if stop and 0 <= stop["i"] < len(cells):
        at, needs_error = stop["i"], False  # that cell already shows its MemoryError (or the like)
    elif isinstance(run.running, int) and 0 <= run.running < len(cells) and run.running not in run.cells:
        at, needs_error = run.running, True
    elif missing:
        at, needs_error = missing[0], True
    else:
        at, needs_error = None, False
    outcome.status, text = _reason(run, stop, limits)
    label = _label(cells[at], at) if at is not None else "the notebook"
    outcome.message = f"{label[0].upper()}{label[1:]} {text}; the cells after it did not run, points earned before it are kept"
    if at is not None and needs_error:
        ename = {"timeout": "Timeout", "killed": "ResourceLimit"}.get(outcome.status, "DeadKernel")
        outcome.outputs[at] = [o for o in outcome.outputs[at] if o["output_type"] != "execute_result"]
        outcome.outputs[at].append(_error(ename, f"this cell {text}"))
    for index in range((at + 1) if at is not None else 0, len(cells)):
        if index not in run.cells:
            outcome.outputs[index] = [_error("NotRun", "this cell did not run: " + outcome.message)]
    return outcome


def _reason(run: Run, stop: dict | None, limits: Limits) -> tuple[str, str]:
    """(status, what the cell did) for a notebook that ended early."""
    if run.timeout == "cell":
        return "timeout", f"ran longer than {limits.cell_timeout:g} s (the limit per cell) and was stopped"
    if run.timeout == "notebook":
        return "timeout", (f"was running when the notebook reached {limits.notebook_timeout:g} s "
                           "(the limit per notebook) and was stopped")
    why = run.killed or (stop or {}).get("reason")
    if why:
        text = {
            "memory": f"used more than {format_size(limits.memory)} of memory",
            "processes": f"started more than {limits.processes} processes or threads",
            "output": f"wrote more output than allowed ({format_size(limits.notebook_output)})",
            "protocol": "garbled the grader's results channel",
        }.get(why, str(why)[:80])
        return "killed", text + " and was stopped"
    if run.worker_failed:
        return "crashed", f"was running when the grading sandbox failed ({run.worker_failed[:120]})"
    status = run.exit_status or 0
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        if number == signal.SIGKILL:
            return "killed", f"was killed by the system (signal {number}; usually: out of memory)"
        return "crashed", f"crashed the notebook's Python process ({_SIGNALS.get(number, 'signal')}, signal {number})"
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
    return "crashed", f"ended the notebook's Python process (exit status {code}: os._exit or a fatal error)"


def apply(nb, outcome: Outcome) -> None:
    """Put the outcome's outputs into the notebook's code cells."""
    index = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = outcome.outputs[index] if index < len(outcome.outputs) else [_error("NotRun", "this cell did not run")]
        cell.outputs = [nbformat.from_dict(o) for o in outputs]
        cell.execution_count = outcome.counts[index] if index < len(outcome.counts) else None
        index += 1


def execute(cells: list[dict], limits: Limits, spec, jobs: int, files: dict | None = None) -> Outcome:
    """Run ``cells`` in a worker of the shared pool for ``spec``."""
    pool = pool_for(spec, jobs)
    run = pool.run(make_job(cells, limits, jobs, files), limits)
    return outcome_of(run, cells, limits)
