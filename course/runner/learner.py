"""The learner's process: runs the notebook's own cells and answers the tester.

Everything here runs where the learner's code runs, so nothing here is trusted by
the grade: a learner who rewrites this loop changes only the data the tester
receives, and the tester judges that data. The loop answers one request at a time:

- ``cell``: run one of the notebook's cells (never a test cell: those stay in the tester);
- ``names``: the values bound to some names, as data or as handles;
- ``call``, ``getattr``, ``getitem``, ``len``, ``iter``: an operation on a handle;
- ``probe``: run a fixed course function (``course.runner.probes``) on handles and data,
  where autograd or shared memory must be observed in this process.

What learner code prints while it serves a request goes back with the answer.
"""

from __future__ import annotations

import os
import sys
import time
import types

from course.runner import codec
from course.runner.probes import PROBES


class Handles:
    """The objects the tester holds references to, by number."""

    def __init__(self):
        self.objects: dict[int, object] = {}
        self.numbers: dict[int, int] = {}

    def handle_of(self, obj, encoder=None) -> dict:
        number = self.numbers.get(id(obj))
        if number is None:  # every object stays held here, so an id is never reused
            number = len(self.objects) + 1
            self.objects[number] = obj
            self.numbers[id(obj)] = number
        if isinstance(obj, type):
            kind = "class"
        elif isinstance(obj, types.ModuleType):
            kind = "module"
        elif callable(obj):
            kind = "function"
        else:
            kind = "object"
        return {"$handle": {"id": number, "kind": kind, "type": _name(type(obj)), "name": _name(obj)}}

    def get(self, body) -> object:
        number = body.get("id") if isinstance(body, dict) else None
        if number not in self.objects:
            raise codec.CodecError("an unknown handle")
        return self.objects[number]


def _name(obj) -> str:
    try:
        name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
        return name if type(name) is str else ""
    except Exception:  # noqa: BLE001 - a learner's object may raise anything
        return ""


def _error(error: BaseException) -> dict:
    names = []
    for klass in type(error).__mro__:
        names.append(klass.__name__ if type(klass.__name__) is str else "?")
    try:
        message = str(error)
    except Exception:  # noqa: BLE001
        message = f"<{names[0]} that cannot be shown>"
    return {"types": names[:20], "message": message[:2000]}


def serve(sock, kernel) -> None:
    """Answer the tester until it says ``end`` or the connection closes."""
    handles = Handles()
    me = os.getpid()
    while True:
        message = codec.receive(sock)
        if message is None:
            return
        header, blobs = message
        op = header.get("op")
        if op == "end":
            return
        if op == "cell":
            began = time.monotonic()
            status, outputs, count, tampered = kernel.run(header.get("source", ""), header.get("kind", "code"),
                                                          header.get("name", ""))
            if os.getpid() != me:  # a copy made by os.fork() in the learner's code answers nothing
                os._exit(0)
            codec.send(sock, {"status": status, "outputs": outputs, "count": count, "tampered": tampered[:20],
                              "seconds": round(time.monotonic() - began, 4)})
            continue
        reply, reply_blobs = {}, []
        kernel.outputs.begin()
        sys.stdout, sys.stderr = kernel.streams
        try:
            args = codec.decode(header.get("args", []), blobs, handles.get, trusted=True)
            if op == "names":
                namespace = kernel.namespace
                values = {name: namespace[name] for name in args[0] if isinstance(name, str) and name in namespace}
                result = values
            elif op == "call":
                target, positional, keywords = args
                result = target(*positional, **keywords)
            elif op == "getattr":
                target, name = args
                result = getattr(target, name)
            elif op == "getitem":
                target, key = args
                result = target[key]
            elif op == "len":
                result = len(args[0])
            elif op == "iter":
                result = list(args[0])
            elif op == "probe":
                name, positional = args[0], args[1:]
                result = PROBES[name](*positional)
            else:
                raise ValueError(f"unknown request {op!r}")
            tree, reply_blobs = codec.encode(result, handles.handle_of)
            reply = {"ok": True, "value": tree}
        except BaseException as error:  # noqa: BLE001 - the learner's code failed: report it
            if isinstance(error, codec.Refused):
                reply = {"ok": False, "refused": str(error)}
            else:
                reply = {"ok": False, "error": _error(error)}
            reply_blobs = []
        if os.getpid() != me:
            os._exit(0)
        kernel._collect_fd_output()
        reply["outputs"] = [o for o in kernel.outputs.items if o.get("output_type") == "stream"]
        codec.send(sock, reply, reply_blobs)

