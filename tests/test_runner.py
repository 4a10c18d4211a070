"""Unit tests of ``course.runner``: the codec that alone crosses between the learner's and the
tester's processes, the learner's request loop, handles and probes, and forbidden-call rules
read from the notebook's text."""

from __future__ import annotations

import math
import socket
import threading

import numpy as np
import pytest
import torch

from course.checks import forbid_calls, forbid_loops
from course.checks.compare import call, call_probe
from course.runner import codec
from course.runner.learner import serve
from course.runner.tester import Learner, Remote, bound_names, free_names, is_remote


def round_trip(value, handle_of=None, handle=None):
    tree, blobs = codec.encode(value, handle_of)
    return codec.decode(tree, blobs, handle)


# -- codec ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [
    None, True, 0, -(1 << 70), 2.5, "text", b"\x00\xff", 1 + 2j, [1, [2, (3, "x")]], {"a": 1, 2: [None]},
    slice(1, None, 2), torch.Size([2, 3]), torch.float16, torch.device("meta"), torch.sparse_csr,
])
def test_plain_values_cross_unchanged(value):
    got = round_trip(value)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinities_cross(value):
    assert round_trip(value) == value


def test_nan_crosses_as_nan():
    assert math.isnan(round_trip(math.nan))


@pytest.mark.parametrize("make", [
    lambda: torch.randn(3, 4),
    lambda: torch.randn(3, 4, dtype=torch.float64).t(),
    lambda: torch.randn(4, 6)[:, ::2],
    lambda: torch.randn(2, 3, 4).permute(2, 0, 1),
    lambda: torch.arange(6).reshape(2, 3) > 2,
    lambda: torch.randn(2, dtype=torch.complex64),
    lambda: torch.zeros(0, 3),
    lambda: torch.tensor(7, dtype=torch.int16),
    lambda: torch.randn(5).to(torch.bfloat16),
])
def test_tensors_cross_with_dtype_shape_values_and_strides(make):
    t = make()
    got = round_trip(t)
    assert type(got) is torch.Tensor and got.dtype == t.dtype and got.shape == t.shape
    assert torch.equal(got, t) and got.stride() == t.stride()


def test_requires_grad_crosses_but_the_graph_does_not():
    x = torch.randn(3, requires_grad=True)
    got = round_trip(x * 2)
    assert got.requires_grad and got.grad_fn is None


def test_an_expanded_tensor_arrives_contiguous():
    t = torch.randn(3).expand(4, 3)
    got = round_trip(t)
    assert torch.equal(got, t) and got.is_contiguous()


@pytest.mark.parametrize("layout", [torch.sparse_coo, torch.sparse_csr, torch.sparse_csc])
def test_sparse_tensors_cross(layout):
    dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    got = round_trip(dense.to_sparse(layout=layout))
    assert got.layout == layout and torch.equal(got.to_dense(), dense)


def test_a_claim_of_coalesced_indices_is_checked():
    indices = torch.tensor([[1, 0, 1], [0, 1, 0]])  # unsorted, with a repeat
    t = torch.sparse_coo_tensor(indices, torch.ones(3), (2, 2))
    tree, blobs = codec.encode(t)
    tree["coalesced"] = True  # a lie
    assert not codec.decode(tree, blobs).is_coalesced()


def test_arrays_cross():
    a = np.arange(6, dtype=np.int32).reshape(2, 3)
    got = round_trip(a)
    assert type(got) is np.ndarray and got.dtype == a.dtype and (got == a).all()


def test_a_tensor_subclass_is_refused_with_a_message():
    class Anything(torch.Tensor):
        pass

    with pytest.raises(codec.Refused, match="subclass of torch.Tensor: return a plain torch.Tensor"):
        codec.encode(torch.zeros(2).as_subclass(Anything))


def test_a_str_subclass_crosses_as_its_plain_value():
    class Loud(str):
        def __eq__(self, other):
            return True

    got = round_trip(Loud("2.0"))
    assert type(got) is str and got == "2.0" and got != "anything"


def test_an_object_is_a_handle_or_refused():
    class Thing:
        pass

    with pytest.raises(codec.Refused):
        codec.encode(Thing())
    tree, _ = codec.encode([Thing()], lambda obj, encoder: {"$handle": {"id": 7}})
    assert codec.decode(tree, [], lambda body: ("handle", body["id"])) == [("handle", 7)]


def test_a_model_of_the_tests_reaches_the_learner_as_a_copy():
    layer = torch.nn.Linear(2, 3)
    tree, blobs = codec.encode([layer], lambda obj, encoder: codec.pickled(encoder, obj))
    (copy,) = codec.decode(tree, blobs, trusted=True)
    assert type(copy) is torch.nn.Linear and torch.equal(copy.weight, layer.weight) and copy is not layer
    with pytest.raises(codec.CodecError, match="never read from the learner"):
        codec.decode(tree, blobs)


@pytest.mark.parametrize("tree, blobs", [
    ({"$pickle": "gASVBQAAAAAAAACMAWGULg=="}, []),
    ({"$pickled": 0}, [b"\x80\x04K\x01."]),  # pickled data from the learner: never
    ({"$tensor": 0, "dtype": "float32", "shape": [4]}, [b"\x00" * 8]),  # data shorter than the shape
    ({"$tensor": 3, "dtype": "float32", "shape": [1]}, [b"\x00" * 4]),  # no such blob
    ({"$tensor": 0, "dtype": "object", "shape": [1]}, [b"\x00" * 8]),
    ({"$tensor": 0, "dtype": "float32", "shape": [2, 2], "strides": [0, 0]}, [b"\x00" * 16]),  # overlapping
    ({"$tensor": 0, "dtype": "float32", "shape": [2], "strides": [1 << 40]}, [b"\x00" * 8]),  # spread out
    ({"$tensor": 0, "dtype": "float32", "shape": [1 << 40]}, [b""]),
    ({"$ndarray": 0, "dtype": "|O", "shape": [1]}, [b"\x00" * 8]),
    ({"$sparse": "sparse_coo", "size": [2], "indices": {"$tensor": 0, "dtype": "int64", "shape": [1, 1]},
      "values": {"$tensor": 1, "dtype": "float32", "shape": [1]}}, [(9).to_bytes(8, "little"), b"\x00" * 4]),
    ({"$handle": {"id": 1}}, []),  # a handle where only data may come
    ({"$dict": [[[1], 2]]}, []),  # an unhashable key
    ({"$float": "1.0"}, []),
    ({"$device": "nowhere"}, []),
])
def test_malformed_data_is_refused(tree, blobs):
    with pytest.raises(codec.CodecError):
        codec.decode(tree, blobs)


def test_messages_cross_a_socket_and_oversized_ones_are_refused():
    a, b = socket.socketpair()
    with a, b:
        codec.send(a, {"op": "x"}, [b"abc", b""])
        assert codec.receive(b) == ({"op": "x"}, [b"abc", b""])
        codec.send(a, {"op": "y" * 100})
        with pytest.raises(codec.CodecError, match="size limit"):
            codec.receive(b, limit=50)


# -- the learner's loop, handles and probes -----------------------------------------------------

class FakeOutputs:
    def __init__(self):
        self.items = []

    def begin(self):
        self.items = []

    def stream(self, name, text):
        self.items.append({"output_type": "stream", "name": name, "text": text})


class FakeKernel:
    """What ``serve`` needs of ``course.grading.kernel.Kernel``: a namespace and outputs."""

    def __init__(self, namespace):
        import sys

        self.namespace = namespace
        self.outputs = FakeOutputs()
        self.streams = (sys.stdout, sys.stderr)

    def _collect_fd_output(self):
        pass


@pytest.fixture
def learner():
    """A learner's loop in a thread, with a notebook's names; the tester's end of it."""

    def square(x):
        return x * x

    def fails(x):
        raise ValueError(f"bad {x}")

    def stub():
        raise NotImplementedError()

    class Box:
        def __init__(self, v):
            self.v = v

        def double(self):
            return Box(self.v * 2)

    def sneaky():
        return torch.zeros(2).as_subclass(type("Anything", (torch.Tensor,), {}))

    namespace = {"square": square, "fails": fails, "stub": stub, "Box": Box, "data": [1, 2.5], "sneaky": sneaky,
                 "sigmoid": lambda x: 1 / (1 + torch.exp(-x)), "detached": lambda x: (x * 2).detach()}
    tester_end, learner_end = socket.socketpair()
    kernel = FakeKernel(namespace)
    thread = threading.Thread(target=serve, args=(learner_end, kernel), daemon=True)
    thread.start()
    yield Learner(tester_end)
    codec.send(tester_end, {"op": "end"})
    thread.join(5)
    tester_end.close()
    learner_end.close()


def test_names_arrive_as_data_or_handles(learner):
    got = learner.names(["square", "data", "missing"])
    assert set(got) == {"square", "data"}
    assert got["data"] == [1, 2.5] and is_remote(got["square"]) and got["square"].__name__ == "square"


def test_a_handle_is_called_with_data_and_answers_data(learner):
    square = learner.names(["square"])["square"]
    assert torch.equal(square(torch.tensor([3.0])), torch.tensor([9.0]))
    assert call(square, 4) == 16


def test_objects_stay_behind_handles(learner):
    Box = learner.names(["Box"])["Box"]
    box = Box(3)
    assert is_remote(box) and box.v == 3 and box.double().v == 6


def test_the_learners_exceptions_arrive_as_pythons_own(learner):
    fails, stub = (learner.names(["fails", "stub"])[n] for n in ("fails", "stub"))
    with pytest.raises(ValueError, match="bad 2"):
        fails(2)
    with pytest.raises(AssertionError, match="stub is not implemented yet"):
        call(stub)


def test_a_subclass_from_the_learner_is_refused_with_a_message(learner):
    sneaky = learner.names(["sneaky"])["sneaky"]
    with pytest.raises(AssertionError, match="subclass of torch.Tensor"):
        sneaky()


def test_the_vjp_probe_runs_autograd_where_the_code_is(learner):
    sigmoid, detached = (learner.names(["sigmoid", "detached"])[n] for n in ("sigmoid", "detached"))
    x = torch.tensor([0.0, 1.0], dtype=torch.float64)
    out, connected, (grad,), after = call_probe("vjp", sigmoid, [x], {}, [0], None)
    s = torch.sigmoid(x)
    assert connected and torch.allclose(out, s) and torch.allclose(grad, s * (1 - s))
    assert torch.equal(after[0], x)
    _, connected, grads, _ = call_probe("vjp", detached, [x], {}, [0], None)
    assert not connected and grads == [None]


def test_the_same_probe_runs_in_place_in_a_learners_own_kernel():
    x = torch.tensor([0.5], dtype=torch.float64)
    out, connected, (grad,), _ = call_probe("vjp", lambda t: t ** 3, [x], {}, [0], None)
    assert connected and torch.allclose(grad, 3 * x ** 2)


def test_garbage_from_the_learner_is_a_failed_test_not_a_crash():
    tester_end, learner_end = socket.socketpair()
    with tester_end, learner_end:
        learner = Learner(tester_end)
        learner_end.sendall(b"\x00\x00\x00\x05\x00\x00\x00\x00{not json")
        with pytest.raises(AssertionError, match="not data|ended"):
            learner.names(["x"])
        with pytest.raises(AssertionError):  # and it stays gone
            learner.names(["y"])


def test_a_test_cells_names_are_read_statically():
    source = "from m import a\nx = 1\ndef f(y):\n    return y + z + check(w)\nprint(globals().get('model'))"
    assert set(free_names(source)) >= {"z", "check", "w", "model"}
    assert "print" not in free_names(source)
    assert bound_names(source) >= {"a", "x", "f"}


# -- forbidden calls read from the notebook's text ---------------------------------------------

class TextOnly:
    """A handle whose code the checks can only read from the notebook's cells."""

    def __init__(self, name, *cells):
        self.learner = type("L", (), {"sources": list(cells)})()
        self.remote = Remote(self.learner, codec.Handle(1, "function", "function", name), name)


def test_forbidden_names_are_found_in_the_text():
    remote = TextOnly("cumsum", "import torch\ndef cumsum(a):\n    return torch.cumsum(a, 0)\n").remote
    with pytest.raises(AssertionError, match="must not use `cumsum`"):
        forbid_calls(remote, ["cumsum"])


def test_an_alias_bound_in_another_cell_is_followed():
    remote = TextOnly("cumsum", "import torch\nacc = torch.cumsum\n", "def cumsum(a):\n    return acc(a, 0)\n").remote
    with pytest.raises(AssertionError, match="must not use `cumsum` \\(in acc\\)"):
        forbid_calls(remote, ["cumsum"])


def test_a_local_name_is_not_confused_with_a_global_one():
    remote = TextOnly("flip", "out = torch.flip(x, (0,))\n", "def flip(a):\n    out = a[::-1]\n    return out\n").remote
    forbid_calls(remote, ["flip"], allow_own=True)


def test_a_computed_name_is_refused_where_calls_are_forbidden():
    remote = TextOnly("conv", 'import torch.nn.functional as F\ndef conv(x, w):\n    return getattr(F, "con" + "v2d")(x, w)\n').remote
    with pytest.raises(AssertionError, match="computed names"):
        forbid_calls(remote, ["conv2d"])


def test_loops_are_found_in_the_text():
    remote = TextOnly("flip", "def flip(a):\n    return torch.stack([a[i] for i in range(len(a))][::-1])\n").remote
    with pytest.raises(AssertionError, match="must not loop"):
        forbid_loops(remote)


def test_a_definition_that_is_not_in_the_text_is_refused():
    remote = TextOnly("cumsum", 'exec("def cumsum(a): return a")\n').remote
    with pytest.raises(AssertionError, match="cannot find where `cumsum` is defined"):
        forbid_calls(remote, ["cumsum"])
