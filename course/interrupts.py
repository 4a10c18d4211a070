"""Ctrl-C and SIGTERM that are never lost.

Python runs a signal handler in the main thread, between two bytecodes of whatever it is
doing. If that is a garbage-collector callback (hypothesis and Dask install some) or a
``__del__`` method, the ``KeyboardInterrupt`` the handler raises is printed as "Exception
ignored" and dropped, and the command would go on as if nothing happened. So the handler
also records the request, and the loops in which a command waits call ``check()``, which
raises it again where it cannot be swallowed.
"""

from __future__ import annotations

import signal
import sys
import threading

_requested = threading.Event()
_default_unraisable = sys.unraisablehook


def _unraisable(info) -> None:
    """A stop request dropped inside a gc callback or ``__del__`` is not an error to print: it
    was recorded, and ``check()`` raises it again."""
    if isinstance(info.exc_value, KeyboardInterrupt) and _requested.is_set():
        return
    _default_unraisable(info)


def _request(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


def install() -> None:
    """SIGINT and SIGTERM stop the command, however it was started: a process started in the
    background, by a CI step or by a test runner can inherit SIGINT *ignored*, and Python then
    never raises KeyboardInterrupt; SIGTERM would kill it without clean-up."""
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGINT, _request)
    signal.signal(signal.SIGTERM, _request)


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was requested (call it from the main thread's waits)."""
    if _requested.is_set():
        raise KeyboardInterrupt
