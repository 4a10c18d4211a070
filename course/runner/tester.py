"""The tester's process: runs the test cells and decides every verdict.

The learner's cells run in another process (``course.runner.learner``), which
cannot write to, signal, trace or read this one (it runs under another uid, or this
process is not dumpable). The tester holds the job (every cell, hidden tests
included) and sends the learner one of the notebook's own cells at a time. A test
cell runs here, in a namespace made of

1. what earlier test cells bound,
2. what the notebook's ``setup`` cell binds when the tester runs it itself (the
   course's checks, ``torch``, ...), and
3. the names the test cell reads that only the notebook defines, fetched from the
   learner: plain data (decoded by ``course.runner.codec`` into fresh objects of exact
   types) or ``Remote`` handles for functions, classes and objects, which stay in
   the learner's process. Calling a handle sends the arguments as data and brings
   the result back as data.

So the learner never holds the test code, expected values or reference solutions,
and every comparison runs here, on data.
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import keyword
import os
import signal
import sys
import time

from course.runner import codec


class LearnerGone(AssertionError):
    """The learner's process stopped answering."""


class Remote:
    """An object that lives in the learner's process (a function, class, model, ...)."""

    __slots__ = ("_learner", "_handle", "_origin", "__weakref__")

    def __init__(self, learner: "Learner", handle: codec.Handle, origin: str = ""):
        object.__setattr__(self, "_learner", learner)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_origin", origin)

    def __call__(self, *args, **kwargs):
        return self._learner.request("call", [self, list(args), kwargs], what=f"{self.__name__}(...)")

    def __getattr__(self, name: str):
        if name == "__name__":
            return self._handle.name.rsplit(".", 1)[-1] or self._origin or "it"
        if name == "__qualname__":
            return self._handle.name or self._origin or "it"
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._learner.request("getattr", [self, name], what=f"{self.__name__}.{name}")

    def __getitem__(self, key):
        return self._learner.request("getitem", [self, key], what=f"{self.__name__}[...]")

    def __len__(self) -> int:
        value = self._learner.request("len", [self], what=f"len({self.__name__})")
        if type(value) is not int or value < 0:
            raise TypeError("len() did not return a non-negative int")
        return value

    def __iter__(self):
        value = self._learner.request("iter", [self], what=f"iterating over {self.__name__}")
        return iter(value if type(value) is list else [])

    def __setattr__(self, name, value):
        raise AttributeError("objects of the notebook cannot be changed from a test")

    def __repr__(self) -> str:
        kind = self._handle.kind
        if kind in ("function", "class"):
            return f"<your {kind} {self.__qualname__}>"
        return f"<your {self._handle.type_name or 'object'}>"

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return isinstance(other, Remote) and other._learner is self._learner and other._handle.id == self._handle.id

    def __hash__(self) -> int:
        return hash(("remote", self._handle.id))


def is_remote(value) -> bool:
    return type(value) is Remote


def learner_of(*values) -> "Learner | None":
    for value in values:
        if type(value) is Remote:
            return value._learner
    return None


_CURRENT = contextvars.ContextVar("learner", default=None)  # the learner of the test cell running here


def run_probe(name: str, *args):
    """Run the course's probe ``name`` where the learner's objects live: in the learner's
    process when one of ``args`` is a handle or a test cell of a graded notebook is running,
    here otherwise (a learner's own kernel)."""
    learner = learner_of(*args) or _CURRENT.get()
    if learner is None:
        from course.runner.probes import PROBES

        return PROBES[name](*args)
    shown = next((a for a in args if type(a) is Remote), None)
    shown = shown.__name__ if shown is not None else "the notebook"
    return learner.request("probe", [name, *args], what=f"checking {shown}")


def _exception(error: dict) -> BaseException:
    """The learner's exception as one of Python's own classes (its name kept for messages)."""
    names = error.get("types") if isinstance(error, dict) else None
    names = [n for n in names if isinstance(n, str)] if isinstance(names, list) else []
    message = error.get("message") if isinstance(error, dict) and isinstance(error.get("message"), str) else ""
    base = RuntimeError
    for name in names:
        candidate = getattr(builtins, name, None)
        if isinstance(candidate, type) and issubclass(candidate, Exception):
            base = candidate
            break
    shown = names[0] if names and names[0].isidentifier() and not keyword.iskeyword(names[0]) else base.__name__
    if shown == base.__name__:
        return base(message)
    try:
        return type(shown, (base,), {"__module__": "learner"})(message)
    except TypeError:
        return base(message)


class Learner:
    """The connection to the learner's process: one request, one answer."""

    def __init__(self, sock, pid: int | None = None):
        self.sock = sock
        self.pid = pid
        self.sources: list[str] = []  # the notebook's own cells the learner has run, in order
        self.outputs = None  # where what the learner prints during a request goes
        self.gone: str | None = None

    def _handle(self, body) -> Remote:
        if not isinstance(body, dict):
            raise codec.CodecError("an invalid handle")
        number, kind, type_name, name = (body.get(k) for k in ("id", "kind", "type", "name"))
        if type(number) is not int or kind not in ("function", "class", "module", "object"):
            raise codec.CodecError("an invalid handle")
        handle = codec.Handle(number, kind, type_name if isinstance(type_name, str) else "",
                              name[:200] if isinstance(name, str) else "")
        return Remote(self, handle)

    def exchange(self, header: dict, blobs=()) -> tuple[dict, list[bytes]]:
        if self.gone:
            raise LearnerGone(self.gone)
        try:
            codec.send(self.sock, header, blobs)
            message = codec.receive(self.sock)
        except (OSError, codec.CodecError) as error:
            message = None
            self.gone = f"the notebook's process answered with something that is not data ({error})"
        if message is None:
            self.gone = self.gone or "the notebook's process ended (it exited, crashed or was killed)"
            raise LearnerGone(self.gone)
        return message

    def request(self, op: str, args: list, what: str = ""):
        tree, blobs = codec.encode(args, self._send_handle)
        header, reply_blobs = self.exchange({"op": op, "args": tree}, blobs)
        self._show(header.get("outputs"))
        if header.get("ok") is True:
            try:
                return codec.decode(header.get("value"), reply_blobs, self._handle)
            except codec.CodecError as error:
                raise AssertionError(f"{what} returned something that is not plain data ({error})") from None
        if isinstance(header.get("refused"), str):
            raise AssertionError(f"{what} returned {header['refused'][:300]}")
        raise _exception(header.get("error"))

    def _send_handle(self, value, encoder) -> dict:
        if type(value) is Remote and value._learner is self:
            return {"$handle": {"id": value._handle.id}}
        try:  # what the tests built (a model, a class, a function of torch's): a copy goes to the learner
            return codec.pickled(encoder, value)
        except Exception as error:  # noqa: BLE001 - a lambda, a class defined in a test cell
            raise codec.Refused(f"a {type(value).__name__} of the tests cannot be sent to the notebook "
                                f"({type(error).__name__}: {error})") from None

    def _show(self, outputs) -> None:
        if self.outputs is None or not isinstance(outputs, list):
            return
        for output in outputs[:100]:
            if isinstance(output, dict) and output.get("output_type") == "stream" and isinstance(output.get("text"), str):
                self.outputs.stream("stdout" if output.get("name") != "stderr" else "stderr", output["text"])

    def names(self, names: list[str]) -> dict:
        values = self.request("names", [names], what="reading the notebook's names") if names else {}
        if not isinstance(values, dict):
            return {}
        out = {}
        for name, value in values.items():
            if name not in names:
                continue
            if type(value) is Remote:
                object.__setattr__(value, "_origin", name)
                if value._handle.kind == "module" and value._handle.name in sys.modules:
                    value = sys.modules[value._handle.name]  # the tester's own copy of the module
            out[name] = value
        return out

    def run_cell(self, cell: dict) -> dict:
        header, _ = self.exchange({"op": "cell", "source": cell.get("source", ""), "kind": cell.get("kind", "code"),
                                   "name": cell.get("name", "")})
        self.sources.append(cell.get("source", ""))
        return header


def free_names(source: str) -> list[str]:
    """Every name a (trusted) test cell reads, in nested functions too; with ``globals()``,
    every identifier string it names as well."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found, strings, dynamic = set(), set(), False
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
            dynamic = dynamic or node.id in ("globals", "locals", "vars")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            strings.add(node.value)
    if dynamic:
        found |= strings
    return sorted(n for n in found if not hasattr(builtins, n) or n in strings)


def bound_names(source: str) -> set[str]:
    """Every name ``source`` binds anywhere (imports, assignments, definitions, parameters)."""
    from course.checks.own_work import bound_names as bound

    try:
        return bound(ast.parse(source))
    except SyntaxError:
        return set()


class Tester:
    """Runs one notebook: the notebook's cells in the learner, the test cells here."""

    def __init__(self, kernel, learner: Learner, write):
        self.kernel = kernel  # course.grading.kernel.Kernel, for test cells and their outputs
        self.learner = learner
        self.write = write
        self.setup_names: dict = {}
        self.setup_error = ""
        self.reserved: set[str] = set()
        self.count = 0

    def trusted(self, cell: dict) -> str | None:
        """How this process treats a cell: "test" (run here), "setup" (run in both), else None.
        A cell is trusted only with a name the gradebook knows (nbgrader restores the source of
        those and drops unknown names)."""
        name, kind = cell.get("name") or "", cell.get("kind")
        if kind == "test" and name:
            return "test"
        if kind == "locked" and name == "setup":
            return "setup"
        return None

    def run(self, cells: list[dict]) -> None:
        from course.grading.kernel import stop_reason

        learner = self.learner
        learner.outputs = self.kernel.outputs
        started = time.monotonic()
        for index, cell in enumerate(cells):
            self.write({"t": "start", "i": index})
            began = time.monotonic()
            role = self.trusted(cell)
            self.count += 1
            if role == "test":
                status, outputs, tampered = self.run_test(cell), self.kernel.outputs.items, []
            else:
                try:
                    reply = learner.run_cell(cell)
                except LearnerGone:
                    self.mirror_learner_end()
                    return
                status = reply.get("status") if reply.get("status") in ("ok", "error") else "error"
                outputs = reply.get("outputs") if isinstance(reply.get("outputs"), list) else []
                tampered = [t for t in reply.get("tampered") or [] if isinstance(t, str)][:20]
                if role == "setup":
                    self.run_setup(cell)
            frame = {"t": "cell", "i": index, "status": status, "outputs": outputs, "count": self.count,
                     "seconds": round(time.monotonic() - began, 4)}
            if tampered:
                frame["tampered"] = tampered
            self.write(frame)
            stop = stop_reason(status, outputs)
            if stop:
                self.write({"t": "stop", "i": index, "reason": stop[0], "message": stop[1]})
                break
        self.write({"t": "done", "seconds": round(time.monotonic() - started, 4)})

    def run_setup(self, cell: dict) -> None:
        """The setup cell, run here too: the checks and modules the test cells use are the tester's own."""
        from IPython.core.inputtransformer2 import TransformerManager

        shell = self.kernel.shell
        self.setup_names.setdefault("__builtins__", builtins)
        self.setup_names.setdefault("get_ipython", lambda: shell)
        self.kernel.outputs.begin()
        try:
            source = TransformerManager().transform_cell(cell.get("source", ""))
            self.reserved |= bound_names(source)  # never read from the learner, even if the cell fails
            code = compile(source, "<setup>", "exec")
            exec(code, self.setup_names)  # noqa: S102 - the course's own setup cell (nbgrader restores its source)
        except BaseException as error:  # noqa: BLE001 - the test cells then fail on what is missing
            self.setup_error = f"{type(error).__name__}: {error}"
        finally:
            self.kernel.outputs.begin()

    def run_test(self, cell: dict) -> str:
        kernel = self.kernel
        kernel.outputs.begin()
        source = cell.get("source", "")
        if not self.reserved and not self.setup_error:
            self.setup_error = "it did not run before this test"
        if self.setup_error:
            kernel.outputs.error("SetupError", f"the notebook's setup cell failed ({self.setup_error[:300]}): "
                                 "the tests cannot run", [])
            return "error"
        own = {**self.setup_names, **kernel.test_names}
        # only what the cell reads and neither the course nor the cell itself binds comes from the learner
        mine = bound_names(source)
        wanted = [n for n in free_names(source) if n not in own and n not in self.reserved and n not in mine]
        try:
            fetched = self.learner.names(wanted)
        except Exception as error:  # noqa: BLE001 - reported in the cell
            kernel.outputs.error(type(error).__name__, str(error), [])
            return "error"
        kernel.namespace = {**fetched, **self.setup_names}
        kernel.shell.execution_count = self.count
        token = _CURRENT.set(self.learner)
        try:
            return kernel.run_test_cell(source, cell.get("name", ""))
        finally:
            _CURRENT.reset(token)

    def mirror_learner_end(self) -> None:
        """The learner's process died in a cell: end this one the same way, so the grader reads
        the same exit status it would have read from a single process."""
        pid = self.learner.pid
        status = 0
        if pid:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
        if os.WIFSIGNALED(status):
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
            os.kill(os.getpid(), os.WTERMSIG(status))
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 0)
