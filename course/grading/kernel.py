"""Executing a notebook's cells the way a Jupyter kernel does (runs inside the sandbox).

``Kernel`` wraps an IPython ``InteractiveShell``: a cell's last expression becomes an
``execute_result``, ``display()`` and matplotlib figures become ``display_data``,
prints become ``stream`` outputs and exceptions ``error`` outputs, all as nbformat
dicts. Output is capped (per cell and per notebook) as it is written, so a cell
that prints 100 MB costs a few kilobytes; output written straight to the file
descriptors (C code, subprocesses) is collected from files after each cell.

Answer cells and the course's locked demo cells go through IPython (magics, ``!``
commands, display hooks). Test cells do not: they run through ``run_test_cell``, a
small runner made of references captured at start-up, with the guard restoring
trusted state before and verifying it after (see ``course.grading.guard``), in a
namespace of their own: the notebook's names plus what earlier test cells bound, so
that nothing a test imports (the course's reference implementations) reaches the
learner's code.
"""

from __future__ import annotations

import ast as _ast
import builtins
import io
import json as _json
import linecache
import sys

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from traitlets import Type
from traitlets.config import Config

_compile = builtins.compile
_exec = builtins.exec
_eval = builtins.eval
_repr = builtins.repr
_str = builtins.str
_type = builtins.type
_isinstance = builtins.isinstance
_len = builtins.len
_ONLY_AST = _ast.PyCF_ONLY_AST

_Expr = _ast.Expr
_Expression = _ast.Expression

_MISSING = object()
TRUNCATED = "\n[... output truncated: this cell wrote more than {limit} ...]\n"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.0f} {unit}"
    return f"{n} bytes"


class Outputs:
    """The outputs of the cell being run, as nbformat dicts, within byte budgets."""

    def __init__(self, cell_limit: int, total_limit: int):
        self.cell_limit = cell_limit
        self.total_left = total_limit
        self.items: list[dict] = []
        self.used = 0
        self.truncated = False
        self.clear_pending = False

    def begin(self) -> None:
        self.items, self.used, self.truncated, self.clear_pending = [], 0, False, False

    def _room(self, size: int) -> int:
        return max(0, min(self.cell_limit - self.used, self.total_left))

    def _spend(self, size: int) -> None:
        self.used += size
        self.total_left -= size

    def _flush_clear(self) -> None:
        if self.clear_pending:
            self.items, self.clear_pending = [], False

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        self._flush_clear()
        room = self._room(_len(text))
        if _len(text) > room:
            text = text[:room]
            if not self.truncated:
                self.truncated = True
                text += TRUNCATED.format(limit=_size(self.cell_limit))
        if not text:
            return
        self._spend(_len(text))
        last = self.items[-1] if self.items else None
        if last and last["output_type"] == "stream" and last["name"] == name:
            last["text"] += text
        else:
            self.items.append({"output_type": "stream", "name": name, "text": text})

    def _mime(self, data: dict, metadata: dict) -> tuple[dict, dict] | None:
        clean, size = {}, 0
        for mime, value in (data or {}).items():
            if not _isinstance(mime, _str):
                continue
            if mime.endswith("json") and _isinstance(value, (dict, list)):
                value = _plain(value)
                size += _len(_json.dumps(value))
            else:
                value = value if _isinstance(value, _str) else _safe_str(value)
                size += _len(value)
            clean[mime] = value
        if size > self._room(size):
            if not self.truncated:
                self.truncated = True
                self.items.append({"output_type": "stream", "name": "stdout",
                                   "text": TRUNCATED.format(limit=_size(self.cell_limit))})
            return None
        self._spend(size)
        return clean, _plain(metadata)

    def display(self, data: dict, metadata: dict | None) -> None:
        self._flush_clear()
        made = self._mime(data, metadata or {})
        if made:
            self.items.append({"output_type": "display_data", "data": made[0], "metadata": made[1]})

    def result(self, data: dict, metadata: dict | None, count: int) -> None:
        self._flush_clear()
        made = self._mime(data, metadata or {})
        if made:
            self.items.append({"output_type": "execute_result", "data": made[0], "metadata": made[1],
                               "execution_count": count})

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self._flush_clear()
        evalue = evalue if _len(evalue) <= 10_000 else evalue[:10_000] + " ..."
        traceback = [line[:10_000] for line in traceback[-200:]]
        self.items.append({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": traceback})

    def clear(self, wait: bool = False) -> None:
        if wait:
            self.clear_pending = True
        else:
            self.items, self.clear_pending = [], False


def _plain(value):
    """JSON-safe plain data (a learner's object could put anything in metadata)."""
    try:
        return _json.loads(_json.dumps(value, default=str))
    except Exception:
        return {}


class CapturedStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr``: text goes into the cell's outputs, within budget."""

    def __init__(self, outputs: Outputs, name: str, fd: int):
        self._outputs = outputs
        self._name = name
        self._fd = fd
        self.buffer = _BinaryAdapter(self)

    @property
    def name(self):
        return f"<{self._name}>"

    @property
    def encoding(self):
        return "utf-8"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def write(self, text):
        if not _isinstance(text, _str):
            raise TypeError(f"write() argument must be str, not {_type(text).__name__}")
        self._outputs.stream(self._name, text)
        return _len(text)

    def flush(self):
        pass


class _BinaryAdapter(io.RawIOBase):
    def __init__(self, stream: CapturedStream):
        self._stream = stream

    def writable(self):
        return True

    def write(self, data):
        self._stream.write(bytes(data).decode("utf-8", "replace"))
        return _len(data)


class CapturingDisplayHook(DisplayHook):
    """The last expression of a cell becomes an ``execute_result``."""

    def write_output_prompt(self):
        pass

    def write_format_data(self, format_dict, md_dict=None):
        self.shell.grader_outputs.result(format_dict, md_dict, self.prompt_count)

    def finish_displayhook(self):
        self._is_active = False


class CapturingDisplayPublisher(DisplayPublisher):
    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        if not update:
            self.shell.grader_outputs.display(data, metadata)

    def clear_output(self, wait=False):
        self.shell.grader_outputs.clear(wait)


class GraderShell(InteractiveShell):
    displayhook_class = Type(CapturingDisplayHook)
    display_pub_class = Type(CapturingDisplayPublisher)

    def _showtraceback(self, etype, evalue, stb):
        self.grader_outputs.error(getattr(etype, "__name__", "Error"), _safe_str(evalue), list(stb))

    def enable_gui(self, gui=None):
        pass


def _safe_str(value) -> str:
    try:
        return _str(value)
    except Exception:
        return f"<{_type(value).__name__} that cannot be shown>"


def make_shell(cell_limit: int, total_limit: int) -> GraderShell:
    """The shell, made once in the sandbox worker before it forks per submission."""
    config = Config()
    config.HistoryManager.enabled = False
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "nocolor"
    config.InteractiveShell.autocall = 0
    shell = GraderShell.instance(config=config)
    shell.grader_outputs = Outputs(cell_limit, total_limit)
    try:
        shell.enable_matplotlib("inline")  # what a Jupyter kernel does: figures become display_data
    except Exception:
        pass
    return shell


class Kernel:
    """Runs one notebook's cells in this process, one at a time."""

    def __init__(self, shell: GraderShell, guard, fd_files: tuple[str, str]):
        self.shell = shell
        self.outputs = shell.grader_outputs
        self.guard = guard
        self.streams = (CapturedStream(self.outputs, "stdout", 1), CapturedStream(self.outputs, "stderr", 2))
        self.fd_files = fd_files
        self.fd_offsets = [0, 0]
        self.namespace = shell.user_ns
        # Test cells run in a namespace of their own: every name the notebook defines, plus
        # what earlier test cells bound (references, helpers, imports of the course's
        # checks), which never reaches the learner's code.
        self.test_names: dict = {}

    def start(self) -> None:
        sys.stdout, sys.stderr = self.streams
        self.guard.install_importer()

    def run(self, source: str, kind: str, name: str) -> tuple[str, list[dict], int, list[str]]:
        """Run one cell: (status "ok"/"error", outputs, execution count, tampering found)."""
        outputs, tampered = self.outputs, []
        outputs.begin()
        if kind == "test":
            tampered = self.guard.restore(self.namespace, self.streams)
            status = self.run_test_cell(source, name)
            after = self.guard.verify()
            if after:
                status = "error"
                outputs.error("TamperingError",
                              "this test cell's trusted functions were changed while it ran "
                              f"({', '.join(after[:5])}); the test does not count", [])
                tampered += after
            self.guard.restore(self.namespace, self.streams)
        else:
            before = dict(self.namespace) if kind == "locked" else None
            sys.stdout, sys.stderr = self.streams
            result = self.shell.run_cell(source, store_history=True, silent=False)
            status = "ok" if result.success else "error"
            if before is not None:
                self.guard.record_names(self.namespace, before)
        self._collect_fd_output()
        return status, outputs.items, self.shell.execution_count - 1, tampered

    def run_test_cell(self, source: str, name: str) -> str:
        """``exec`` the test cell in the notebook's namespace; its last expression, if it is
        not ``None``, becomes an ``execute_result`` (nbgrader reads partial credit there)."""
        shell, outputs = self.shell, self.outputs
        count = shell.execution_count
        shell.execution_count = count + 1
        filename = f"<test cell {name or count}>"
        linecache.cache[filename] = (_len(source), None, source.splitlines(True), filename)
        namespace = {**self.namespace, **self.test_names}
        try:
            tree = _compile(source, filename, "exec", _ONLY_AST, dont_inherit=True)
            last = None
            if tree.body and _isinstance(tree.body[-1], _Expr):
                last = _Expression(tree.body.pop().value)
            _exec(_compile(tree, filename, "exec", dont_inherit=True), namespace)
            if last is not None:
                value = _eval(_compile(last, filename, "eval", dont_inherit=True), namespace)
                if value is not None:
                    outputs.result({"text/plain": _repr(value)}, {}, count)
            status = "ok"
        except BaseException as error:  # noqa: BLE001 - every failure of a test cell counts
            outputs.items = [o for o in outputs.items if o["output_type"] != "execute_result"]
            outputs.error(_type(error).__name__, _safe_str(error), _format_traceback(error, filename))
            status = "error"
        for key, value in namespace.items():  # what this cell bound stays the tests' own
            if self.namespace.get(key, _MISSING) is not value and not key.startswith("__"):
                self.test_names[key] = value
        return status

    def _collect_fd_output(self) -> None:
        """What C code and subprocesses wrote to file descriptors 1 and 2 during the cell."""
        for index, (path, name) in enumerate(zip(self.fd_files, ("stdout", "stderr"))):
            try:
                with open(path, "rb") as handle:
                    handle.seek(self.fd_offsets[index])
                    data = handle.read(max(0, self.outputs.cell_limit - self.outputs.used) + 1)
                    self.fd_offsets[index] = handle.seek(0, 2)
            except OSError:
                continue
            if data:
                self.outputs.stream(name, data.decode("utf-8", "replace"))


def _format_traceback(error: BaseException, filename: str) -> list[str]:
    """The traceback from the test cell down (the runner's own frames left out)."""
    try:
        import traceback
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != filename:
            tb = tb.tb_next
        lines = traceback.format_exception(_type(error), error, tb or error.__traceback__)
        return [line.rstrip("\n") for line in lines]
    except Exception:
        return [f"{_type(error).__name__}: {_safe_str(error)}"]


def stop_reason(status: str, items: list[dict]) -> tuple[str, str] | None:
    """A cell that ran out of memory or processes stops the notebook: (reason, message)."""
    if status != "error":
        return None
    errors = [o for o in items if o.get("output_type") == "error"]
    if not errors:
        return None
    ename, evalue = errors[-1].get("ename", ""), errors[-1].get("evalue", "")
    lowered = evalue.lower()
    if ename == "MemoryError" or (ename == "RuntimeError" and (
            "can't allocate memory" in lowered or "not enough memory" in lowered or "bad_alloc" in lowered)):
        return "memory", f"{ename}: {evalue}"[:300]
    if ename == "BlockingIOError" or (ename == "RuntimeError" and "can't start new thread" in lowered):
        return "processes", f"{ename}: {evalue}"[:300]
    return None
