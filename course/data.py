"""Datasets for the notebooks, the graders and the benchmarks.

Every loader returns ``(images, labels)`` ready for training: images a float32
tensor ``[N, C, H, W]`` with values in ``[0, 1]``, labels an int64 tensor ``[N]``.

- **MNIST** (``load_mnist``). Two sources, chosen once and printed once:

  - *full*: ``$COURSE_DATA_DIR/MNIST/raw/`` in torchvision's layout (the four
    official IDX files, gzipped or not; downloaded there by torchvision when they
    are missing and a network exists): 60,000 training images, and the official
    10,000 test images as the held-out set;
  - *offline* (``COURSE_DATA_DIR`` not set): the official test files committed in
    ``data/mnist/`` (MD5-checked), split for good into 8,000 training images and
    2,000 held-out ones: image ``i`` is held out when ``i % 5 == 4``.

  A missing or damaged full dataset is an error that says what to do; the loader
  never falls back to the other source by itself.
- **Fashion-MNIST** (``load_fashion_mnist``): ``$COURSE_DATA_DIR/FashionMNIST/raw/``,
  else Debian's ``dataset-fashion-mnist`` in ``/usr/share/datasets/fashion-mnist/``,
  else torchvision's download into ``$COURSE_DATA_DIR``. Optional: nothing that is
  graded needs it.
- **CIFAR-10** (``load_cifar10``): through ``torchvision.datasets.CIFAR10`` from
  ``<root>/cifar-10-batches-py`` (``root`` defaults to ``$COURSE_DATA_DIR``),
  downloaded there with ``download=True``.

The held-out MNIST images are for graders and benchmarks: ``load_mnist("heldout")``
is recorded (``heldout_loads()``), so a grader can tell a model that was trained
or tuned on them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "COURSE_DATA_DIR"  # a folder in torchvision's layout (MNIST/raw, FashionMNIST/raw, cifar-10-batches-py)
DOWNLOAD_ENV = "COURSE_DOWNLOAD"  # "0" forbids downloads (the loaders then only read files)
PROJECT_DATA = Path(__file__).resolve().parent.parent / "data"
OFFLINE_MNIST = PROJECT_DATA / "mnist"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

OFFLINE_HELDOUT_EVERY = 5  # image i is held out when i % 5 == 4


class DataError(RuntimeError):
    """A dataset file is missing or damaged; the message names it and says what to do."""


@dataclass(frozen=True)
class IdxFile:
    """One IDX file: its name without ``.gz``, the shape it must have, and the MD5 sums
    known to be good (of the ``.gz`` file as published, and of the uncompressed bytes)."""

    name: str
    shape: tuple[int, ...]
    gz_md5: str | None = None
    raw_md5: str | None = None


# torchvision.datasets.MNIST.resources (gz) and the uncompressed content of the official files.
MNIST_FILES = {
    "train-images": IdxFile("train-images-idx3-ubyte", (60000, 28, 28), "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train-labels": IdxFile("train-labels-idx1-ubyte", (60000,), "d53e105ee54ea40749a09fcbcd1e9432"),
    "test-images": IdxFile("t10k-images-idx3-ubyte", (10000, 28, 28), "9fb629c4189551a2d022fa330f9573f3",
                           "2646ac647ad5339dbf082846283269ea"),
    "test-labels": IdxFile("t10k-labels-idx1-ubyte", (10000,), "ec29112dd5afa0611ce80d1b7f02629c",
                           "27ae3e4e09519cfbb04c329615203637"),
}

# torchvision.datasets.FashionMNIST.resources (gz); Debian recompressed the same content.
FASHION_MNIST_FILES = {
    "train-images": IdxFile("train-images-idx3-ubyte", (60000, 28, 28), "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                            "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    "train-labels": IdxFile("train-labels-idx1-ubyte", (60000,), "25c81989df183df01b3e8a0aad5dffbe",
                            "9018921c3c673c538a1fc5bad174d6f9"),
    "test-images": IdxFile("t10k-images-idx3-ubyte", (10000, 28, 28), "bef4ecab320f06d8554ea6380940ec79",
                           "8181f5470baa50b63fa0f6fddb340f0a"),
    "test-labels": IdxFile("t10k-labels-idx1-ubyte", (10000,), "bb300cfdad3c16e7a12a480ee83cd310",
                           "15d484375f8d13e6eb1aabb0c3f46965"),
}

FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _say(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------------- IDX files


def read_idx(path: str | os.PathLike, spec: IdxFile | None = None, fix: str = "") -> np.ndarray:
    """The array stored in the IDX file ``path`` (``.gz`` or not).

    With ``spec``, the file must match one of its MD5 sums (where one is known for
    that form) and its shape. Any problem raises ``DataError`` naming the file,
    what is wrong and ``fix`` (what to do about it)."""
    path = Path(path)
    fix = f" {fix}" if fix else ""
    if not path.is_file():
        raise DataError(f"{path}: file not found.{fix}")
    data = path.read_bytes()
    known_gz = spec.gz_md5 if spec else None
    known_raw = spec.raw_md5 if spec else None
    if path.suffix == ".gz":
        gz_ok = known_gz is not None and _md5(data) == known_gz
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(f"{path}: not a readable gzip file ({error}); it is truncated or corrupt.{fix}") from None
        if not gz_ok and (known_gz or known_raw):
            if known_raw is None or _md5(data) != known_raw:
                raise DataError(f"{path}: MD5 checksum mismatch (got {_md5(path.read_bytes())}, expected "
                                f"{known_gz or known_raw}): the file is corrupt or not the official one.{fix}")
    elif known_raw is not None and _md5(data) != known_raw:
        raise DataError(f"{path}: MD5 checksum mismatch (got {_md5(data)}, expected {known_raw}): "
                        f"the file is corrupt or not the official one.{fix}")
    array = _parse_idx(data, path, fix)
    if spec is not None and array.shape != spec.shape:
        raise DataError(f"{path}: holds an array of shape {list(array.shape)}, expected {list(spec.shape)}.{fix}")
    return array


def _parse_idx(data: bytes, path: Path, fix: str) -> np.ndarray:
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'none'}).{fix}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: the IDX header is truncated.{fix}")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise DataError(f"{path}: {len(data)} bytes, but its header ({list(shape)} of {dtype}) needs {expected}; "
                        f"the file is truncated or corrupt.{fix}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``path`` ends in ``.gz``."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def _find_idx(folder: Path, spec: IdxFile) -> Path:
    """``folder/<name>.gz`` if it is there, else ``folder/<name>`` (torchvision keeps both)."""
    gz = folder / f"{spec.name}.gz"
    return gz if gz.is_file() or not (folder / spec.name).is_file() else folder / spec.name


def _images(array: np.ndarray) -> torch.Tensor:
    """uint8 ``[N, H, W]`` → float32 ``[N, 1, H, W]`` in [0, 1] (a new tensor)."""
    return torch.from_numpy(array.astype(np.float32) / 255.0).unsqueeze(1)


def _labels(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.int64))


# ----------------------------------------------------------------------------- MNIST


@dataclass(frozen=True)
class MnistSource:
    kind: str  # "offline" or "full"
    folder: Path
    train_size: int
    heldout_size: int

    def describe(self) -> str:
        if self.kind == "offline":
            return (f"MNIST: offline split of the official test set in {self.folder} "
                    f"({self.train_size:,} training, {self.heldout_size:,} held-out images; "
                    f"set {DATA_ENV} for the full dataset)")
        return (f"MNIST: full dataset in {self.folder} ({self.train_size:,} training images, "
                f"the official {self.heldout_size:,} test images held out)")


_cache: dict = {}
_announced: set = set()
_heldout_loads = [0]


def mnist_source() -> MnistSource:
    """Which MNIST the course uses here (``$COURSE_DATA_DIR`` decides; see the module doc)."""
    root = os.environ.get(DATA_ENV)
    if root:
        return MnistSource("full", Path(root).expanduser() / "MNIST" / "raw", 60000, 10000)
    n = MNIST_FILES["test-images"].shape[0]
    held = len(range(OFFLINE_HELDOUT_EVERY - 1, n, OFFLINE_HELDOUT_EVERY))
    return MnistSource("offline", OFFLINE_MNIST, n - held, held)


def _downloads_allowed() -> bool:
    return os.environ.get(DOWNLOAD_ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def _torchvision_download(dataset: str, root: Path) -> None:
    """Download an MNIST-like dataset with torchvision into ``root`` (its own layout)."""
    import torchvision

    getattr(torchvision.datasets, dataset)(str(root), train=True, download=True)


def _full_mnist_arrays(source: MnistSource) -> dict[str, np.ndarray]:
    folder = source.folder
    fix = (f"Put the four official MNIST files in {folder} (torchvision's layout), or unset {DATA_ENV} "
           f"to use the offline split in {OFFLINE_MNIST}.")
    missing = [s for s in MNIST_FILES.values() if not _find_idx(folder, s).is_file()]
    if missing and _downloads_allowed():
        try:
            _torchvision_download("MNIST", folder.parent.parent)
        except Exception as error:  # no network, a mirror down, a disk full: say so, never switch source
            names = ", ".join(f"{s.name}.gz" for s in missing)
            raise DataError(f"{folder}: {names} not found, and downloading MNIST there failed "
                            f"({type(error).__name__}: {' '.join(str(error).split())[:200]}). {fix}") from None
    return {key: read_idx(_find_idx(folder, spec), spec, fix) for key, spec in MNIST_FILES.items()}


def _mnist_arrays(source: MnistSource) -> dict[str, np.ndarray]:
    key = ("mnist", source)
    if key not in _cache:
        if source.kind == "full":
            arrays = _full_mnist_arrays(source)
            _cache[key] = {"train": (arrays["train-images"], arrays["train-labels"]),
                           "heldout": (arrays["test-images"], arrays["test-labels"])}
        else:
            fix = (f"This file is part of the course: restore it with `git checkout -- data/mnist/`, or set "
                   f"{DATA_ENV} to a folder with the full MNIST (torchvision's layout).")
            images = read_idx(_find_idx(source.folder, MNIST_FILES["test-images"]), MNIST_FILES["test-images"], fix)
            labels = read_idx(_find_idx(source.folder, MNIST_FILES["test-labels"]), MNIST_FILES["test-labels"], fix)
            held = np.arange(len(images)) % OFFLINE_HELDOUT_EVERY == OFFLINE_HELDOUT_EVERY - 1
            _cache[key] = {"train": (images[~held], labels[~held]), "heldout": (images[held], labels[held])}
    if key not in _announced:
        _announced.add(key)
        _say(source.describe())
    return _cache[key]


def load_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST ``(images [N,1,28,28] float32 in [0,1], labels [N] int64)``.

    ``split`` is ``"train"`` (what learners train on) or ``"heldout"`` (what graders
    measure on; loading it is recorded, see ``heldout_loads``). Each call returns new
    tensors: changing them changes nothing for the next caller."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}")
    if split == "heldout":
        _heldout_loads[0] += 1
    return _load_mnist(split)


def _load_mnist(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = _mnist_arrays(mnist_source())[split]
    return _images(images), _labels(labels)


def heldout_loads() -> int:
    """How many times ``load_mnist("heldout")`` has been called in this process."""
    return _heldout_loads[0]


# ----------------------------------------------------------------------------- Fashion-MNIST


def fashion_mnist_folder() -> Path:
    """Where Fashion-MNIST is read from: ``$COURSE_DATA_DIR/FashionMNIST/raw`` when that
    variable is set and the folder has the files (or ``/usr/share/datasets/fashion-mnist``
    does not), else Debian's folder."""
    root = os.environ.get(DATA_ENV)
    if root:
        folder = Path(root).expanduser() / "FashionMNIST" / "raw"
        if _find_idx(folder, FASHION_MNIST_FILES["train-images"]).is_file() or not DEBIAN_FASHION_MNIST.is_dir():
            return folder
    return DEBIAN_FASHION_MNIST


def load_fashion_mnist(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST ``(images [N,1,28,28] float32 in [0,1], labels [N] int64)``;
    ``split`` is ``"train"`` (60,000) or ``"test"`` (10,000). Class names:
    ``FASHION_MNIST_CLASSES``."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = fashion_mnist_folder()
    fix = ("Install Debian's package (`apt-get install dataset-fashion-mnist`), or set "
           f"{DATA_ENV} to a folder where torchvision may download it (FashionMNIST/raw/).")
    wanted = [FASHION_MNIST_FILES[f"{split}-images"], FASHION_MNIST_FILES[f"{split}-labels"]]
    missing = [s for s in wanted if not _find_idx(folder, s).is_file()]
    if missing and folder != DEBIAN_FASHION_MNIST and _downloads_allowed():
        try:
            _torchvision_download("FashionMNIST", folder.parent.parent)
        except Exception as error:
            raise DataError(f"{folder}: Fashion-MNIST not found, and downloading it failed "
                            f"({type(error).__name__}: {' '.join(str(error).split())[:200]}). {fix}") from None
    key = ("fashion", folder, split)
    if key not in _cache:
        _cache[key] = tuple(read_idx(_find_idx(folder, spec), spec, fix) for spec in wanted)
    if ("fashion", folder) not in _announced:
        _announced.add(("fashion", folder))
        _say(f"Fashion-MNIST: {folder}")
    images, labels = _cache[key]
    return _images(images), _labels(labels)


# ----------------------------------------------------------------------------- CIFAR-10


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None,
                 download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 ``(images [N,3,32,32] float32 in [0,1], labels [N] int64)`` through
    ``torchvision.datasets.CIFAR10``; ``split`` is ``"train"`` (the five data batches,
    50,000 images) or ``"test"`` (``test_batch``, 10,000). The files live in
    ``<root>/cifar-10-batches-py``; ``root`` defaults to ``$COURSE_DATA_DIR``; with
    ``download=True`` torchvision fetches them first (about 170 MB)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = root if root is not None else os.environ.get(DATA_ENV)
    if not root:
        raise DataError(f"CIFAR-10: no data folder. Pass root=... or set {DATA_ENV} to a folder holding "
                        "cifar-10-batches-py/ (unpack cifar-10-python.tar.gz there), and use download=True "
                        "to let torchvision fetch it.")
    root = Path(root).expanduser()
    folder = root / CIFAR10.base_folder
    fix = (f"Unpack the official cifar-10-python.tar.gz into {root} (it makes {CIFAR10.base_folder}/), "
           "or call load_cifar10(..., download=True) where a network exists.")
    if download:
        try:
            CIFAR10(str(root), train=split == "train", download=True)
        except Exception as error:
            raise DataError(f"{folder}: downloading CIFAR-10 failed ({type(error).__name__}: "
                            f"{' '.join(str(error).split())[:200]}). {fix}") from None
    # torchvision checks every batch and the meta file, and its error names none: name it here.
    for name, md5 in [*CIFAR10.train_list, *CIFAR10.test_list, (CIFAR10.meta["filename"], CIFAR10.meta["md5"])]:
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: file not found. {fix}")
        if not check_integrity(str(path), md5):
            raise DataError(f"{path}: MD5 checksum mismatch (expected {md5}): the file is corrupt or "
                            f"incomplete. {fix}")
    try:
        dataset = CIFAR10(str(root), train=split == "train", download=False)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError) as error:
        raise DataError(f"{folder}: a CIFAR-10 batch could not be read ({type(error).__name__}: {error}). "
                        f"{fix}") from None
    if ("cifar10", folder) not in _announced:
        _announced.add(("cifar10", folder))
        _say(f"CIFAR-10: {folder}")
    images = torch.from_numpy(np.ascontiguousarray(dataset.data)).permute(0, 3, 1, 2).float().div(255.0)
    return images.contiguous(), torch.tensor(dataset.targets, dtype=torch.int64)
