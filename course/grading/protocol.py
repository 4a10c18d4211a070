"""Messages between the grader and its sandboxed workers: length-prefixed JSON frames.

Both ends use this module; it imports nothing beyond the standard library, because
the sandbox side imports it before anything else. Everything that arrives from a
sandbox is untrusted: the reader caps frame sizes and the grader checks every field.
"""

from __future__ import annotations

import json
import os
import socket
import struct

HEADER = struct.Struct(">I")
MAX_FRAME = 256 << 20  # a job frame carries the assignment's files; results are capped far below


class ProtocolError(Exception):
    """A frame that is too large, truncated or not JSON."""


def encode(message: dict) -> bytes:
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(data)) + data


def write_frame(fd: int, message: dict) -> None:
    view = memoryview(encode(message))
    while view:
        view = view[os.write(fd, view):]


class FrameReader:
    """Collects bytes from a stream and yields whole frames."""

    def __init__(self, limit: int = MAX_FRAME):
        self.buffer = bytearray()
        self.limit = limit

    def feed(self, data: bytes) -> list[dict]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if size > self.limit:
                raise ProtocolError(f"a frame of {size} bytes is over the limit of {self.limit}")
            if len(self.buffer) < HEADER.size + size:
                break
            payload = bytes(self.buffer[HEADER.size:HEADER.size + size])
            del self.buffer[:HEADER.size + size]
            try:
                message = json.loads(payload.decode("utf-8", "surrogatepass"))
            except ValueError as error:
                raise ProtocolError(f"a frame is not JSON: {error}") from None
            if not isinstance(message, dict):
                raise ProtocolError("a frame is not a JSON object")
            frames.append(message)
        return frames


def read_frame(fd: int, limit: int = MAX_FRAME) -> dict | None:
    """One frame from a blocking ``fd``; ``None`` at end of stream."""
    header = _read_exactly(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > limit:
        raise ProtocolError(f"a frame of {size} bytes is over the limit of {limit}")
    payload = _read_exactly(fd, size)
    if payload is None:
        raise ProtocolError("the stream ended inside a frame")
    return json.loads(payload.decode("utf-8", "surrogatepass"))


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def send_control(sock: socket.socket, message: dict, fds: list[int] = ()) -> None:
    """A small control message, with file descriptors attached (SCM_RIGHTS)."""
    data = encode(message)
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def recv_control(sock: socket.socket) -> tuple[dict | None, list[int]]:
    """The next control message and the descriptors sent with it; ``(None, [])`` at EOF."""
    data, fds, _flags, _addr = socket.recv_fds(sock, HEADER.size, 4)
    if not data:
        return None, fds
    while len(data) < HEADER.size:
        more = sock.recv(HEADER.size - len(data))
        if not more:
            return None, fds
        data += more
    (size,) = HEADER.unpack(data)
    if size > 1 << 20:
        raise ProtocolError("a control message is too large")
    payload = b""
    while len(payload) < size:
        more = sock.recv(size - len(payload))
        if not more:
            return None, fds
        payload += more
    return json.loads(payload.decode("utf-8")), fds


def session_of(pid: int) -> int | None:
    """The session id of a process (from /proc), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            text = handle.read()
        return int(text[text.rindex(")") + 2:].split()[3])
    except (OSError, ValueError, IndexError):
        return None
