"""Plain data across the process boundary: values in, values out, nothing else.

A message is a JSON header plus raw byte blobs (tensor and array storage), framed
with lengths. The decoder builds fresh objects of exact types from that data:
``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``,
``tuple``, ``dict``, ``slice``, ``torch.Tensor`` (strided or sparse), ``torch.dtype``,
``torch.device``, ``torch.layout``, ``torch.Size``, ``numpy.ndarray`` of numbers or
booleans, and *handles*: references to objects that stay in the process that owns
them (functions, classes, modules, models). The tester never unpickles or evaluates
anything and never looks up a learner's class: a tensor subclass is refused, a ``str``,
``int`` or ``float`` subclass arrives as its plain value, any other object as a handle.
Only the other way, what the tests built (a model, a test's function) reaches the
learner's process pickled (``pickled``; read with ``trusted=True``).

The encoder runs in the learner's process and may have been tampered with; the
decoder runs in the tester and trusts nothing it reads: sizes are capped, every
field is checked, and a malformed message is a ``CodecError``.
"""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import torch

HEADER = struct.Struct(">II")  # JSON length, number of blobs
BLOB = struct.Struct(">Q")
MAX_MESSAGE = 512 << 20
MAX_DEPTH = 64
MAX_ITEMS = 1_000_000

_DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
    torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.bool,
)}
_LAYOUTS = {"strided": torch.strided, "sparse_coo": torch.sparse_coo, "sparse_csr": torch.sparse_csr,
            "sparse_csc": torch.sparse_csc, "sparse_bsr": torch.sparse_bsr, "sparse_bsc": torch.sparse_bsc}
_ND_KINDS = "biufc"
_GENERATOR_STATE = torch.Generator().get_state().numpy().tobytes()


class CodecError(Exception):
    """A message that is not well-formed plain data."""


class Refused(Exception):
    """A value the course does not accept across the boundary; the message says why."""


class Handle:
    """A reference to an object that lives in the other process."""

    __slots__ = ("id", "kind", "type_name", "name")

    def __init__(self, id: int, kind: str, type_name: str, name: str):
        self.id, self.kind, self.type_name, self.name = id, kind, type_name, name


# ---------------------------------------------------------------- encoding (any side)

class Encoder:
    """Turns a value into (JSON-able tree, blobs). ``handle_of(obj)`` is called for
    anything that is not plain data; without it such a value is refused."""

    def __init__(self, handle_of=None):
        self.blobs: list[bytes] = []
        self.handle_of = handle_of  # (value, encoder) -> tree

    def blob(self, data: bytes) -> int:
        self.blobs.append(data)
        return len(self.blobs) - 1

    def encode(self, value, depth: int = 0):
        if depth > MAX_DEPTH:
            raise Refused("the value is nested too deeply")
        kind = type(value)
        if value is None or kind is bool or kind is str:
            return value
        if kind is int:
            return value if abs(value) < 1 << 53 else {"$int": str(value)}
        if kind is float:
            return value if math.isfinite(value) else {"$float": repr(value)}
        if kind is complex:
            return {"$complex": [repr(value.real), repr(value.imag)]}
        if kind is bytes:
            return {"$bytes": self.blob(value)}
        if kind is list:
            return [self.encode(v, depth + 1) for v in value]
        if kind is tuple:
            return {"$tuple": [self.encode(v, depth + 1) for v in value]}
        if kind is dict:
            return {"$dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in value.items()]}
        if kind is slice:
            return {"$slice": [self.encode(value.start), self.encode(value.stop), self.encode(value.step)]}
        if kind is torch.Size:
            return {"$size": [int(s) for s in value]}
        if kind is torch.dtype:
            return {"$dtype": str(value).removeprefix("torch.")}
        if kind is torch.device:
            return {"$device": str(value)}
        if kind is torch.layout:
            return {"$layout": str(value).removeprefix("torch.")}
        if kind is torch.Tensor or kind is torch.nn.Parameter:
            return self.tensor(value)
        if kind is torch.Generator and value.device.type == "cpu":
            return {"$generator": self.blob(value.get_state().numpy().tobytes())}
        if kind is np.ndarray:
            return self.ndarray(value)
        if isinstance(value, (np.generic,)) and value.dtype.kind in _ND_KINDS:
            return {"$npscalar": self.ndarray(np.asarray(value))}
        if isinstance(value, (str, int, float)) and not isinstance(value, (bool, np.generic)):
            # a subclass of str, int or float (torch.__version__, an IntEnum): its plain value only
            base = str if isinstance(value, str) else int if isinstance(value, int) else float
            return self.encode(base(value), depth)
        if isinstance(value, torch.Tensor):
            raise Refused(f"a {kind.__name__}, a subclass of torch.Tensor: return a plain torch.Tensor")
        if self.handle_of is None:
            raise Refused(f"a {kind.__name__} cannot be sent as data")
        return self.handle_of(value, self)

    def tensor(self, t: torch.Tensor) -> dict:
        if t.device.type == "meta":
            return {"$meta": {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape)}}
        grad = bool(t.requires_grad)
        t = t.detach()
        if t.device.type != "cpu":
            t = t.cpu()
        layout = str(t.layout).removeprefix("torch.")
        if t.layout == torch.sparse_coo:
            return {"$sparse": layout, "coalesced": bool(t.is_coalesced()), "size": list(t.shape),
                    "indices": self.tensor(t._indices()), "values": self.tensor(t._values())}
        if t.layout in (torch.sparse_csr, torch.sparse_bsr):
            return {"$sparse": layout, "size": list(t.shape), "compressed": self.tensor(t.crow_indices()),
                    "plain": self.tensor(t.col_indices()), "values": self.tensor(t.values())}
        if t.layout in (torch.sparse_csc, torch.sparse_bsc):
            return {"$sparse": layout, "size": list(t.shape), "compressed": self.tensor(t.ccol_indices()),
                    "plain": self.tensor(t.row_indices()), "values": self.tensor(t.values())}
        if t.layout != torch.strided:
            raise Refused(f"a tensor with layout {t.layout} cannot be sent")
        dtype = str(t.dtype).removeprefix("torch.")
        if dtype not in _DTYPES:
            raise Refused(f"a tensor of dtype {t.dtype} cannot be sent")
        data = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        strides = list(t.stride())
        extra = {"strides": strides} if not t.is_contiguous() and _layout_fits(list(t.shape), strides) else {}
        return {"$tensor": self.blob(data), "dtype": dtype, "shape": list(t.shape),
                "grad": grad, **extra}

    def ndarray(self, a: np.ndarray) -> dict:
        if a.dtype.kind not in _ND_KINDS or a.dtype.byteorder == ">":
            raise Refused(f"an array of dtype {a.dtype} cannot be sent")
        return {"$ndarray": self.blob(np.ascontiguousarray(a).tobytes()), "dtype": a.dtype.str,
                "shape": list(a.shape)}


def encode(value, handle_of=None) -> tuple[object, list[bytes]]:
    encoder = Encoder(handle_of)
    return encoder.encode(value), encoder.blobs


# ---------------------------------------------------------------- decoding (trusts nothing)

class Decoder:
    def __init__(self, blobs: list[bytes], handle=None, trusted: bool = False):
        self.blobs = blobs
        self.handle = handle
        self.trusted = trusted  # only the learner's side, reading what the tester sent, may unpickle
        self.items = 0

    def _count(self):
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CodecError("too many items")

    def decode(self, tree, depth: int = 0):
        self._count()
        if depth > MAX_DEPTH:
            raise CodecError("nested too deeply")
        kind = type(tree)
        if tree is None or kind is bool or kind is str or kind is float:
            return tree
        if kind is int:
            return tree
        if kind is list:
            return [self.decode(v, depth + 1) for v in tree]
        if kind is not dict or len(tree) == 0:
            raise CodecError(f"unexpected {kind.__name__}")
        tag = next(iter(tree))
        body = tree[tag]
        if tag == "$int":
            return int(_str(body))
        if tag == "$float":
            value = float(_str(body))
            if math.isfinite(value):
                raise CodecError("a finite float in $float")
            return value
        if tag == "$complex":
            re, im = _list(body, 2)
            return complex(float(_str(re)), float(_str(im)))
        if tag == "$bytes":
            return bytes(self._blob(body))
        if tag == "$tuple":
            return tuple(self.decode(v, depth + 1) for v in _list(body))
        if tag == "$dict":
            out = {}
            for pair in _list(body):
                key, value = _list(pair, 2)
                key = self.decode(key, depth + 1)
                try:
                    hash(key)
                except TypeError:
                    raise CodecError("an unhashable dict key") from None
                out[key] = self.decode(value, depth + 1)
            return out
        if tag == "$slice":
            start, stop, step = (self.decode(v, depth + 1) for v in _list(body, 3))
            return slice(start, stop, step)
        if tag == "$size":
            return torch.Size([_int(s) for s in _list(body)])
        if tag == "$dtype":
            return _lookup(_DTYPES, body, "dtype")
        if tag == "$layout":
            return _lookup(_LAYOUTS, body, "layout")
        if tag == "$device":
            try:
                return torch.device(_str(body))
            except (RuntimeError, ValueError):
                raise CodecError("an unknown device") from None
        if tag == "$tensor":
            return self._tensor(tree)
        if tag == "$meta":
            meta = body if type(body) is dict else {}
            return torch.empty(_shape(meta.get("shape")), dtype=_lookup(_DTYPES, meta.get("dtype"), "dtype"),
                               device="meta")
        if tag == "$sparse":
            return self._sparse(tree, depth)
        if tag == "$ndarray":
            return self._ndarray(tree)
        if tag == "$npscalar":
            return self._ndarray(body)[()]
        if tag == "$generator":
            state = self._blob(body)
            if len(state) != len(_GENERATOR_STATE):
                raise CodecError("a random generator's state of the wrong size")
            generator = torch.Generator()
            try:
                generator.set_state(torch.frombuffer(bytearray(state), dtype=torch.uint8))
            except RuntimeError:
                raise CodecError("an invalid random generator state") from None
            return generator
        if tag in ("$pickled", "$cloudpickled"):
            if not self.trusted:
                raise CodecError("pickled data is never read from the learner")
            import io
            import pickle

            if tag == "$cloudpickled":
                return pickle.loads(self._blob(body))  # noqa: S301 - written by the tester
            return torch.load(io.BytesIO(self._blob(body)), weights_only=False)
        if tag == "$handle":
            if self.handle is None:
                raise CodecError("a handle where only data is expected")
            return self.handle(body)
        raise CodecError(f"unknown tag {tag[:40]!r}")

    def _blob(self, index) -> bytes:
        index = _int(index)
        if not 0 <= index < len(self.blobs):
            raise CodecError("a blob index out of range")
        return self.blobs[index]

    def _tensor(self, tree: dict) -> torch.Tensor:
        dtype = _lookup(_DTYPES, tree.get("dtype"), "dtype")
        shape = _shape(tree.get("shape"))
        data = self._blob(tree["$tensor"])
        count = math.prod(shape)
        size = torch.empty((), dtype=dtype).element_size()
        if len(data) != count * size:
            raise CodecError("a tensor's data does not match its shape")
        t = (torch.frombuffer(bytearray(data), dtype=dtype).reshape(shape).clone() if count
             else torch.empty(shape, dtype=dtype))
        strides = tree.get("strides")
        if strides is not None:  # the sender's was not contiguous: neither is this one (same strides)
            strides = [_int(s) for s in _list(strides, len(shape))]
            if not _layout_fits(list(shape), strides):
                raise CodecError("strides that overlap or spread too far")
            t = torch.empty_strided(shape, strides, dtype=dtype).copy_(t)
        if tree.get("grad") is True and (t.is_floating_point() or t.is_complex()):
            t.requires_grad_(True)
        return t

    def _sparse(self, tree: dict, depth: int) -> torch.Tensor:
        layout = _lookup(_LAYOUTS, tree.get("$sparse"), "layout")
        size = _shape(tree.get("size"))
        values = self.decode(tree.get("values"), depth + 1)
        if type(values) is not torch.Tensor:
            raise CodecError("sparse values are not a tensor")
        try:
            if layout == torch.sparse_coo:
                indices = self.decode(tree.get("indices"), depth + 1)
                if type(indices) is not torch.Tensor:
                    raise CodecError("sparse indices are not a tensor")
                # "coalesced" is the sender's claim: believed only when the indices are sorted and unique
                coalesced = tree.get("coalesced") is True and _coalesced(indices, size)
                return torch.sparse_coo_tensor(indices, values, size, is_coalesced=coalesced, check_invariants=True)
            compressed = self.decode(tree.get("compressed"), depth + 1)
            plain = self.decode(tree.get("plain"), depth + 1)
            if type(compressed) is not torch.Tensor or type(plain) is not torch.Tensor:
                raise CodecError("sparse indices are not tensors")
            return torch.sparse_compressed_tensor(compressed, plain, values, size, layout=layout,
                                                  check_invariants=True)
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            raise CodecError(f"an invalid sparse tensor: {error}") from None

    def _ndarray(self, tree) -> np.ndarray:
        if type(tree) is not dict:
            raise CodecError("an invalid array")
        try:
            dtype = np.dtype(_str(tree.get("dtype")))
        except TypeError:
            raise CodecError("an unknown array dtype") from None
        if dtype.kind not in _ND_KINDS or dtype.hasobject or dtype.fields is not None:
            raise CodecError(f"an array of dtype {dtype} is not data")
        shape = _shape(tree.get("shape"))
        data = self._blob(tree.get("$ndarray"))
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise CodecError("an array's data does not match its shape")
        return np.frombuffer(bytearray(data), dtype=dtype).reshape(shape).copy()


def _layout_fits(shape: list[int], strides: list[int]) -> bool:
    """Whether a tensor with these strides has no two elements in one place and spans at
    most a few times its size (a transposed or sliced tensor; not an expanded one)."""
    if len(shape) != len(strides) or any(s < 0 for s in strides):
        return False
    need = 1
    for dim in sorted(range(len(shape)), key=lambda d: strides[d]):
        if shape[dim] > 1:
            if strides[dim] < need:
                return False
            need = strides[dim] * shape[dim]
    return need <= 4 * max(1, math.prod(shape)) + 64


def _coalesced(indices: torch.Tensor, size) -> bool:
    if indices.numel() == 0 or indices.shape[1] <= 1:
        return True
    strides = torch.tensor([math.prod(size[i + 1:len(indices)]) for i in range(len(indices))])
    flat = (indices * strides[:, None]).sum(0)
    return bool((flat[1:] > flat[:-1]).all())


def _str(value) -> str:
    if type(value) is not str or len(value) > 1000:
        raise CodecError("expected a short string")
    return value


def _int(value) -> int:
    if type(value) is not int:
        raise CodecError("expected an integer")
    return value


def _list(value, length: int | None = None) -> list:
    if type(value) is not list or (length is not None and len(value) != length):
        raise CodecError("expected a list" + (f" of {length}" if length else ""))
    return value


def _shape(value) -> tuple[int, ...]:
    dims = tuple(_int(s) for s in _list(value))
    if len(dims) > 32 or any(d < 0 for d in dims) or math.prod(dims) > MAX_MESSAGE:
        raise CodecError("an invalid shape")
    return dims


def _lookup(table: dict, key, what: str):
    if type(key) is not str or key not in table:
        raise CodecError(f"an unknown {what}")
    return table[key]


def decode(tree, blobs: list[bytes], handle=None, trusted: bool = False):
    """``trusted``: the data comes from the tester (the learner's side reading a request), so a
    model the tests built may arrive pickled; data from the learner is never unpickled."""
    return Decoder(blobs, handle, trusted).decode(tree)


def pickled(encoder: "Encoder", obj) -> dict:
    """A model the tests built, for the learner's process (``torch.save``: modules, parameters)."""
    import io

    buffer = io.BytesIO()
    try:
        torch.save(obj, buffer)
    except Exception:  # noqa: BLE001 - a function of a test cell (a lambda and what it reads): by value
        import cloudpickle

        return {"$cloudpickled": encoder.blob(cloudpickle.dumps(obj))}
    return {"$pickled": encoder.blob(buffer.getvalue())}


# ---------------------------------------------------------------- messages on a socket

def send(sock, header: dict, blobs: list[bytes] = ()) -> None:
    """One message: ``header`` (JSON-able) and ``blobs``."""
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = text.encode("utf-8", "surrogatepass")
    parts = [HEADER.pack(len(data), len(blobs)), data]
    for blob in blobs:
        parts += [BLOB.pack(len(blob)), blob]
    sock.sendall(b"".join(parts))


def receive(sock, limit: int = MAX_MESSAGE) -> tuple[dict, list[bytes]] | None:
    """The next message, or ``None`` at the end of the stream."""
    head = _exactly(sock, HEADER.size, allow_eof=True)
    if head is None:
        return None
    size, count = HEADER.unpack(head)
    if size > limit or count > 100_000:
        raise CodecError("a message over the size limit")
    try:
        header = json.loads(_exactly(sock, size).decode("utf-8", "surrogatepass"))
    except ValueError:
        raise CodecError("a message header that is not JSON") from None
    if type(header) is not dict:
        raise CodecError("a message header that is not an object")
    total, blobs = size, []
    for _ in range(count):
        (length,) = BLOB.unpack(_exactly(sock, BLOB.size))
        total += length
        if total > limit:
            raise CodecError("a message over the size limit")
        blobs.append(_exactly(sock, length))
    return header, blobs


def _exactly(sock, size: int, allow_eof: bool = False) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            if allow_eof and left == size:
                return None
            raise CodecError("the stream ended inside a message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
