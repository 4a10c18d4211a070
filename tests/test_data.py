"""course.data: every loader path, on small files written here in the real formats
(IDX, gzipped or not; CIFAR-10's python pickle batches), plus the real offline MNIST
files the course ships. A missing or damaged file must raise ``DataError`` naming the
file and saying what to do; the MNIST source is printed once and never switched."""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from course import data
from course.data import DataError, IdxFile


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def fresh_data_module(monkeypatch):
    """No cache, nothing announced, no held-out load, no data folder, no downloads."""
    monkeypatch.setattr(data, "_cache", {})
    monkeypatch.setattr(data, "_announced", set())
    monkeypatch.setattr(data, "_heldout_loads", [0])
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv(data.DOWNLOAD_ENV, "0")


def digits(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, 10, size=n, dtype=np.uint8)


def write_mnist_like(folder: Path, n_train: int, n_test: int, gz: bool = True, seed: int = 0) -> dict:
    """Four MNIST-named IDX files in ``folder``; returns specs with their shapes and MD5 sums."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    arrays["train-images"], arrays["train-labels"] = digits(n_train, seed)
    arrays["test-images"], arrays["test-labels"] = digits(n_test, seed + 1)
    specs = {}
    for key, array in arrays.items():
        name = data.MNIST_FILES[key].name
        raw = data.write_idx(folder / name, array)
        raw_md5 = md5(raw)
        gz_md5 = None
        if gz:
            gz_md5 = md5(data.write_idx(folder / f"{name}.gz", array))
            raw.unlink()
        specs[key] = IdxFile(name, array.shape, gz_md5, raw_md5)
    return {"specs": specs, "arrays": arrays}


# ----------------------------------------------------------------------------- IDX files


def test_idx_round_trip_gzipped_and_plain(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte.gz", "a-idx3-ubyte"):
        path = data.write_idx(tmp_path / name, array)
        assert np.array_equal(data.read_idx(path), array)
    assert gzip.decompress((tmp_path / "a-idx3-ubyte.gz").read_bytes()) == (tmp_path / "a-idx3-ubyte").read_bytes()
    assert (tmp_path / "a-idx3-ubyte").read_bytes()[:4] == bytes([0, 0, 8, 3])


def test_idx_checksums_accept_either_form(tmp_path):
    array = np.full((3, 28, 28), 7, dtype=np.uint8)
    gz = data.write_idx(tmp_path / "x.gz", array)
    plain = data.write_idx(tmp_path / "x", array)
    spec = IdxFile("x", (3, 28, 28), md5(gz), md5(plain))
    assert data.read_idx(gz, spec).shape == (3, 28, 28)
    assert data.read_idx(plain, spec).shape == (3, 28, 28)
    # Recompressed (as Debian does): the .gz sum differs, the content's sum still matches.
    regz = tmp_path / "re.gz"
    regz.write_bytes(gzip.compress(plain.read_bytes(), compresslevel=1, mtime=123))
    assert md5(regz) != md5(gz)
    assert np.array_equal(data.read_idx(regz, spec), array)


@pytest.mark.parametrize("damage, words", [
    ("flip", "corrupt"),
    ("truncate_gz", "not a readable gzip file"),
    ("missing", "file not found"),
])
def test_idx_damage_names_the_file_and_the_fix(tmp_path, damage, words):
    array = np.ones((4, 28, 28), dtype=np.uint8)
    path = data.write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", array)
    spec = IdxFile("t10k-images-idx3-ubyte", (4, 28, 28), md5(path), None)
    blob = bytearray(path.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif damage == "truncate_gz":
        path.write_bytes(bytes(blob[: len(blob) // 2]))
    else:
        path.unlink()
    with pytest.raises(DataError) as error:
        data.read_idx(path, spec, fix="Copy it again.")
    message = str(error.value)
    assert str(path) in message and words in message and message.endswith("Copy it again.")


def test_idx_structure_is_checked_without_checksums(tmp_path):
    good = data.write_idx(tmp_path / "g", np.zeros((2, 5), dtype=np.uint8))
    (tmp_path / "short").write_bytes(good.read_bytes()[:-3])
    (tmp_path / "magic").write_bytes(b"\x01\x02\x03\x04" + good.read_bytes()[4:])
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="not an IDX file"):
        data.read_idx(tmp_path / "magic")
    with pytest.raises(DataError, match=r"shape \[2, 5\], expected \[3, 5\]"):
        data.read_idx(good, IdxFile("g", (3, 5)))


# ----------------------------------------------------------------------------- MNIST, offline


def test_offline_mnist_is_the_real_test_set_split_every_fifth(capsys):
    source = data.mnist_source()
    assert source.kind == "offline" and source.folder == data.OFFLINE_MNIST
    x, y = data.load_mnist("train")
    hx, hy = data.load_mnist("heldout")
    assert x.shape == (8000, 1, 28, 28) and hx.shape == (2000, 1, 28, 28)
    assert x.dtype == hx.dtype == torch.float32 and y.dtype == hy.dtype == torch.int64
    assert 0.0 == x.min() and x.max() == 1.0
    images = data.read_idx(data.OFFLINE_MNIST / "t10k-images-idx3-ubyte.gz", data.MNIST_FILES["test-images"])
    labels = data.read_idx(data.OFFLINE_MNIST / "t10k-labels-idx1-ubyte.gz", data.MNIST_FILES["test-labels"])
    held = np.arange(10000) % 5 == 4
    assert torch.equal(hx[:, 0], torch.from_numpy(images[held].astype(np.float32) / 255))
    assert torch.equal(y, torch.from_numpy(labels[~held].astype(np.int64)))
    assert y[:5].tolist() == [7, 2, 1, 0, 1]  # the first test digits of MNIST
    assert all(count > 150 for count in hy.bincount().tolist())  # every digit in the held-out part
    out = capsys.readouterr().out
    assert out.count("MNIST: offline split") == 1 and "8,000 training, 2,000 held-out" in out


def test_offline_files_match_the_published_checksums_and_licence():
    for key in ("test-images", "test-labels"):
        spec = data.MNIST_FILES[key]
        assert md5(data.OFFLINE_MNIST / f"{spec.name}.gz") == spec.gz_md5
    readme = (data.OFFLINE_MNIST / "README.md").read_text()
    assert "CC BY-SA 3.0" in readme and "i % 5 == 4" in readme


def test_every_call_returns_new_tensors_and_heldout_loads_are_counted():
    x1, _ = data.load_mnist("train")
    x1.zero_()
    x2, _ = data.load_mnist("train")
    assert x2.max() == 1.0
    assert data.heldout_loads() == 0
    data.load_mnist("heldout")
    data.load_mnist("heldout")
    assert data.heldout_loads() == 2
    data._load_mnist("heldout")  # the graders' own loads are not counted
    assert data.heldout_loads() == 2
    with pytest.raises(ValueError, match="'train' or 'heldout'"):
        data.load_mnist("test")


def test_offline_split_of_small_files_and_a_corrupt_one(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "mnist", n_train=3, n_test=12)
    monkeypatch.setattr(data, "OFFLINE_MNIST", tmp_path / "mnist")
    monkeypatch.setattr(data, "MNIST_FILES", {**data.MNIST_FILES, **{k: v for k, v in written["specs"].items()
                                                                     if k.startswith("test")}})
    x, y = data.load_mnist("train")
    hx, hy = data.load_mnist("heldout")
    assert len(x) == 10 and len(hx) == 2  # indices 4 and 9 are held out
    assert torch.equal(hy, torch.from_numpy(written["arrays"]["test-labels"][[4, 9]].astype(np.int64)))
    path = tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0x55
    path.write_bytes(bytes(blob))
    monkeypatch.setattr(data, "_cache", {})
    with pytest.raises(DataError) as error:
        data.load_mnist("train")
    assert str(path) in str(error.value) and "git checkout -- data/mnist/" in str(error.value)


# ----------------------------------------------------------------------------- MNIST, full


def use_full(monkeypatch, root: Path, specs: dict) -> None:
    monkeypatch.setenv(data.DATA_ENV, str(root))
    monkeypatch.setattr(data, "MNIST_FILES", specs)


@pytest.mark.parametrize("gz", [True, False], ids=["gzipped", "extracted"])
def test_full_mnist_from_a_torchvision_layout(tmp_path, monkeypatch, capsys, gz):
    written = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=6, n_test=4, gz=gz)
    use_full(monkeypatch, tmp_path, written["specs"])
    x, y = data.load_mnist("train")
    hx, hy = data.load_mnist("heldout")
    assert x.shape == (6, 1, 28, 28) and hx.shape == (4, 1, 28, 28)
    assert torch.equal(x[:, 0], torch.from_numpy(written["arrays"]["train-images"]).float() / 255)
    assert torch.equal(hy, torch.from_numpy(written["arrays"]["test-labels"]).long())
    out = capsys.readouterr().out
    assert out.count("MNIST: full dataset") == 1 and str(tmp_path / "MNIST" / "raw") in out


def test_full_mnist_missing_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=6, n_test=4)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz").unlink()
    use_full(monkeypatch, tmp_path, written["specs"])
    with pytest.raises(DataError) as error:
        data.load_mnist("train")
    message = str(error.value)
    assert "train-labels-idx1-ubyte" in message and "file not found" in message
    assert f"unset {data.DATA_ENV}" in message  # says what to do, does not switch by itself


def test_full_mnist_download_failure_says_so(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "elsewhere", n_train=6, n_test=4)
    use_full(monkeypatch, tmp_path, written["specs"])
    monkeypatch.setenv(data.DOWNLOAD_ENV, "1")
    calls = []

    def no_network(dataset, root):
        calls.append((dataset, root))
        raise OSError("Name or service not known")

    monkeypatch.setattr(data, "_torchvision_download", no_network)
    with pytest.raises(DataError) as error:
        data.load_mnist("train")
    assert calls == [("MNIST", tmp_path)]
    message = str(error.value)
    assert "downloading MNIST there failed" in message and "Name or service not known" in message
    assert "train-images-idx3-ubyte.gz" in message


def test_full_mnist_download_success_is_read_and_checked(tmp_path, monkeypatch):
    staged = write_mnist_like(tmp_path / "staged", n_train=5, n_test=5)
    use_full(monkeypatch, tmp_path / "root", staged["specs"])
    monkeypatch.setenv(data.DOWNLOAD_ENV, "1")

    def fake_download(dataset, root):  # what torchvision leaves: MNIST/raw/*.gz
        raw = Path(root) / "MNIST" / "raw"
        raw.mkdir(parents=True)
        for f in (tmp_path / "staged").iterdir():
            (raw / f.name).write_bytes(f.read_bytes())

    monkeypatch.setattr(data, "_torchvision_download", fake_download)
    x, _ = data.load_mnist("train")
    assert x.shape == (5, 1, 28, 28)


def test_full_mnist_corrupt_file_is_named(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "MNIST" / "raw", n_train=6, n_test=4)
    path = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x04" + bytes([9, 9, 9, 9]), mtime=0))
    use_full(monkeypatch, tmp_path, written["specs"])
    with pytest.raises(DataError) as error:
        data.load_mnist("heldout")
    assert str(path) in str(error.value) and "MD5 checksum mismatch" in str(error.value)


# ----------------------------------------------------------------------------- Fashion-MNIST


def fashion_specs(written) -> dict:
    return {k: IdxFile(v.name, v.shape, v.gz_md5, v.raw_md5) for k, v in written["specs"].items()}


def test_fashion_mnist_from_the_data_folder(tmp_path, monkeypatch, capsys):
    written = write_mnist_like(tmp_path / "FashionMNIST" / "raw", n_train=7, n_test=3, seed=5)
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    monkeypatch.setattr(data, "FASHION_MNIST_FILES", fashion_specs(written))
    x, y = data.load_fashion_mnist("train")
    tx, _ = data.load_fashion_mnist("test")
    assert x.shape == (7, 1, 28, 28) and tx.shape == (3, 1, 28, 28) and y.dtype == torch.int64
    assert capsys.readouterr().out.count("Fashion-MNIST:") == 1


def test_fashion_mnist_from_debians_folder(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "debian", n_train=4, n_test=2, seed=7)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr(data, "FASHION_MNIST_FILES", fashion_specs(written))
    assert data.fashion_mnist_folder() == tmp_path / "debian"
    x, _ = data.load_fashion_mnist("test")
    assert torch.equal(x[:, 0], torch.from_numpy(written["arrays"]["test-images"]).float() / 255)


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(DataError) as error:
        data.load_fashion_mnist("train")
    assert "apt-get install dataset-fashion-mnist" in str(error.value)
    assert "train-images-idx3-ubyte" in str(error.value)


def test_fashion_mnist_corrupt_file_is_named(tmp_path, monkeypatch):
    written = write_mnist_like(tmp_path / "debian", n_train=4, n_test=2, seed=7)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    monkeypatch.setattr(data, "FASHION_MNIST_FILES", fashion_specs(written))
    path = tmp_path / "debian" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(DataError) as error:
        data.load_fashion_mnist("train")
    assert str(path) in str(error.value)


@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_when_installed():
    x, y = data.load_fashion_mnist("test")
    assert x.shape == (10000, 1, 28, 28) and y.bincount().tolist() == [1000] * 10


# ----------------------------------------------------------------------------- CIFAR-10


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    """A cifar-10-batches-py with 4 images per batch, in the real pickle format, and
    torchvision's checksum table pointed at these files."""
    from torchvision.datasets import CIFAR10

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [n for n, _ in CIFAR10.train_list] + [n for n, _ in CIFAR10.test_list]:
        rows = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)  # R (1024), G, B planes per row
        labels = rng.integers(0, 10, size=4).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": rows,
                         "filenames": [f"{name}_{i}.png" for i in range(4)]}, f)
        batches[name] = (rows, labels)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": data.CIFAR10_CLASSES, "num_cases_per_batch": 4, "num_vis": 3072}, f)
    monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(folder / n)] for n, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[n, md5(folder / n)] for n, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": md5(folder / "batches.meta")})
    return tmp_path, batches


def test_cifar10_through_torchvision_from_a_local_folder(small_cifar, capsys):
    root, batches = small_cifar
    x, y = data.load_cifar10("train", root=root)
    tx, ty = data.load_cifar10("test", root=root)
    assert x.shape == (20, 3, 32, 32) and tx.shape == (4, 3, 32, 32)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and x.is_contiguous()
    rows, labels = batches["test_batch"]
    assert torch.equal(tx, torch.from_numpy(rows.reshape(4, 3, 32, 32)).float() / 255)  # NCHW, channel planes
    assert ty.tolist() == labels
    assert y[:4].tolist() == batches["data_batch_1"][1]
    assert capsys.readouterr().out.count("CIFAR-10:") == 1


def test_cifar10_root_from_the_environment(small_cifar, monkeypatch):
    root, _ = small_cifar
    monkeypatch.setenv(data.DATA_ENV, str(root))
    assert data.load_cifar10("test")[0].shape == (4, 3, 32, 32)


def test_cifar10_without_a_folder_says_what_to_do():
    with pytest.raises(DataError, match=f"set {data.DATA_ENV}"):
        data.load_cifar10("train")


@pytest.mark.parametrize("damage", ["missing", "corrupt", "unreadable"])
def test_cifar10_damaged_batch_is_named(small_cifar, monkeypatch, damage):
    from torchvision.datasets import CIFAR10

    root, _ = small_cifar
    path = root / "cifar-10-batches-py" / "data_batch_3"
    if damage == "missing":
        path.unlink()
        words = "file not found"
    elif damage == "corrupt":
        path.write_bytes(path.read_bytes()[:-10])
        words = "MD5 checksum mismatch"
    else:  # the checksum matches, the content is not a batch
        path.write_bytes(b"not a pickle")
        monkeypatch.setattr(CIFAR10, "train_list", [[n, md5(root / "cifar-10-batches-py" / n)]
                                                    for n, _ in CIFAR10.train_list])
        words = "could not be read"
    with pytest.raises(DataError) as error:
        data.load_cifar10("train", root=root)
    assert words in str(error.value)
    if damage != "unreadable":
        assert str(path) in str(error.value)
    assert "cifar-10-python.tar.gz" in str(error.value)


def test_cifar10_download_failure_is_reported(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    def no_network(self):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(CIFAR10, "download", no_network)
    with pytest.raises(DataError, match="downloading CIFAR-10 failed.*Network is unreachable"):
        data.load_cifar10("test", root=tmp_path, download=True)


def test_unknown_splits_are_refused(tmp_path):
    with pytest.raises(ValueError):
        data.load_fashion_mnist("heldout")
    with pytest.raises(ValueError):
        data.load_cifar10("validation", root=tmp_path)


# ----------------------------------------------------------------------------- the graders' use of the data


def test_graders_refuse_a_notebook_that_loaded_the_heldout_images():
    from course.checks.training import check_heldout_untouched

    check_heldout_untouched()
    data.load_mnist("heldout")
    with pytest.raises(AssertionError, match=r"loaded the held-out images \(load_mnist\('heldout'\) was called 1 time"):
        check_heldout_untouched()


def test_graders_measure_cpu_time_against_the_budget(monkeypatch):
    from course.checks import training

    clock = training.TrainingClock()
    monkeypatch.setattr(training, "training_clock", clock)
    monkeypatch.setattr(training, "BUDGET_CPU_SECONDS", 0.05)
    with pytest.raises(AssertionError, match="training clock was not started"):
        training.check_budget()
    clock.start()
    training.check_budget()  # nothing ran yet
    started = __import__("time").process_time()
    while __import__("time").process_time() - started < 0.1:
        sum(i * i for i in range(1000))
    with pytest.raises(AssertionError, match=r"s of CPU time.*over the budget of 0 s"):
        training.check_budget()


def test_training_clock_in_ipython_counts_each_cell_once_and_sees_a_stopped_one(monkeypatch):
    from IPython.core.interactiveshell import InteractiveShell

    from course.checks import training

    shell = InteractiveShell.instance()
    try:
        clock = training.TrainingClock()
        monkeypatch.setattr(training, "training_clock", clock)
        shell.user_ns["clock"] = clock
        shell.run_cell("clock.start()")
        burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.2:\n    pass"
        shell.run_cell(burn)
        shell.run_cell(burn)  # the same cell run again replaces its first run
        cpu, wall = clock.seconds()
        assert 0.15 < cpu < 0.35 and wall >= cpu * 0.5
        training.check_budget()
        shell.run_cell("raise KeyboardInterrupt")  # what nbgrader's timeout does to a cell
        with pytest.raises(AssertionError, match="stopped before it finished"):
            training.check_budget()
    finally:
        shell.events.unregister("pre_run_cell", clock._pre)
        shell.events.unregister("post_run_cell", clock._post)
        InteractiveShell.clear_instance()
