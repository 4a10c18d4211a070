"""Images for the convolution and pooling lessons: real MNIST digits and the
pictures that show a kernel sliding, im2col, and feature maps.

``mnist_digit`` reads the official MNIST test file (IDX format, gzip) from the
course's ``data/mnist/`` folder, or from the shared read-only copy when the
course has none yet. The drawing functions only draw: the notebooks decide
what to show.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

IMAGES_FILE = "t10k-images-idx3-ubyte.gz"
LABELS_FILE = "t10k-labels-idx1-ubyte.gz"
_COURSE_ROOT = Path(__file__).resolve().parent.parent
MNIST_DIRS = (_COURSE_ROOT / "data" / "mnist", Path("/work/shared/data/mnist"))


def mnist_dir() -> Path:
    """The first folder holding the MNIST test images."""
    for folder in MNIST_DIRS:
        if (folder / IMAGES_FILE).is_file():
            return folder
    raise FileNotFoundError(
        f"no {IMAGES_FILE} in {' or '.join(str(d) for d in MNIST_DIRS)}: "
        "put the MNIST test files in the course's data/mnist/ folder"
    )


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): magic (2 zero bytes, type 0x08 = uint8, ndim), sizes, data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@lru_cache(maxsize=1)
def _mnist_test():
    folder = mnist_dir()
    return _read_idx(folder / IMAGES_FILE), _read_idx(folder / LABELS_FILE)


def mnist_digit(index: int = 0) -> torch.Tensor:
    """Test image ``index`` of MNIST as float32 ``[28, 28]`` in ``[0, 1]`` (white digit on black)."""
    images, _ = _mnist_test()
    return torch.from_numpy(images[index].astype(np.float32) / 255.0)


def mnist_available() -> bool:
    return any((folder / IMAGES_FILE).is_file() for folder in MNIST_DIRS)


def digit_for_tests(index: int = 0) -> torch.Tensor:
    """MNIST test image ``index`` (float32 ``[28, 28]``), or a fixed random image of the same
    size where the data files are missing: a test must never fail for want of data."""
    if mnist_available():
        return mnist_digit(index)
    return torch.rand(28, 28, generator=torch.Generator().manual_seed(index))


def mnist_label(index: int = 0) -> int:
    """The label (0-9) of MNIST test image ``index``."""
    _, labels = _mnist_test()
    return int(labels[index])


def mnist_batch(n: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` test images ``[n, 1, 28, 28]`` float32 in ``[0, 1]`` and their labels ``[n]`` (int64)."""
    images, labels = _mnist_test()
    x = torch.from_numpy(images[start:start + n].astype(np.float32) / 255.0)[:, None]
    return x, torch.from_numpy(labels[start:start + n].astype(np.int64))


# ----------------------------------------------------------------------------- pictures


def show_images(images, titles=None, cmap="gray", size=2.2, suptitle=None, symmetric=False, same_scale=False):
    """A row of 2-D tensors as images, each with its own colour scale, or one scale
    for all with ``same_scale`` (to compare brightness across images).

    ``symmetric`` centres the scale on 0 (for signed feature maps: blue < 0 < red).
    """
    import matplotlib.pyplot as plt

    images = [torch.as_tensor(im).detach().float().cpu() for im in images]
    scale = {}
    if same_scale:
        scale = {"vmin": min(float(im.min()) for im in images), "vmax": max(float(im.max()) for im in images)}
    fig, axes = plt.subplots(1, len(images), figsize=(size * len(images), size * 1.1), squeeze=False)
    for i, (ax, im) in enumerate(zip(axes[0], images)):
        if symmetric:
            bound = float(im.abs().max()) or 1.0
            shown = ax.imshow(im, cmap="bwr", vmin=-bound, vmax=bound)
        else:
            shown = ax.imshow(im, cmap=cmap, **scale)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles:
            ax.set_title(titles[i], fontsize=9)
        if symmetric:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    plt.show()


def _grid(ax, rows, cols, x0=0.0, y0=0.0, fill=None, text=None, edge="0.4", alpha=1.0):
    from matplotlib.patches import Rectangle

    for r in range(rows):
        for c in range(cols):
            color = fill(r, c) if callable(fill) else (fill or "white")
            ax.add_patch(Rectangle((x0 + c, y0 - r - 1), 1, 1, facecolor=color, edgecolor=edge, alpha=alpha))
            if text is not None:
                label = text(r, c)
                if label is not None:
                    ax.text(x0 + c + 0.5, y0 - r - 0.5, label, ha="center", va="center", fontsize=8)


def draw_sliding_window(height=5, width=5, kernel=3, stride=2, padding=1, dilation=1, steps=None):
    """Panels of a ``kernel``×``kernel`` window sliding over a padded ``height``×``width``
    input (grey border = zero padding), one panel per output position, with the
    output grid filling up beside it."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    span = dilation * (kernel - 1) + 1
    oh = (height + 2 * padding - span) // stride + 1
    ow = (width + 2 * padding - span) // stride + 1
    positions = [(i, j) for i in range(oh) for j in range(ow)]
    if steps is not None:
        positions = positions[:steps]
    ph, pw = height + 2 * padding, width + 2 * padding
    fig, axes = plt.subplots(1, len(positions), figsize=(2.6 * len(positions), 2.9), squeeze=False)
    for ax, (i, j) in zip(axes[0], positions):
        def cell_color(r, c):
            inside = padding <= r < padding + height and padding <= c < padding + width
            return "white" if inside else "0.85"

        _grid(ax, ph, pw, fill=cell_color)
        for a in range(kernel):
            for b in range(kernel):
                r, c = i * stride + a * dilation, j * stride + b * dilation
                ax.add_patch(Rectangle((c, -r - 1), 1, 1, facecolor="tab:orange", alpha=0.55, edgecolor="tab:red"))
        # the output grid, to the right
        x0 = pw + 1.0

        def out_color(r, c):
            index = r * ow + c
            if (r, c) == (i, j):
                return "tab:orange"
            return "tab:blue" if index < i * ow + j else "white"

        _grid(ax, oh, ow, x0=x0, y0=-(ph - oh) / 2, fill=out_color, alpha=0.8)
        ax.set_xlim(-0.3, x0 + ow + 0.3)
        ax.set_ylim(-ph - 0.3, 0.9)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(f"output ({i}, {j})", fontsize=9)
    fig.suptitle(
        f"input {height}×{width}, kernel {kernel}, stride {stride}, padding {padding}"
        + (f", dilation {dilation}" if dilation != 1 else "")
        + f" → output {oh}×{ow}   (grey: zero padding)",
        fontsize=10,
    )
    fig.tight_layout()
    plt.show()


def draw_unfold(x: torch.Tensor, kernel: int, stride: int = 1):
    """One channel ``x [H, W]`` and its im2col matrix ``F.unfold``: one column per
    window position, one row per position inside the window (numbers shown)."""
    import matplotlib.pyplot as plt
    import torch.nn.functional as F

    cols = F.unfold(x[None, None].float(), kernel, stride=stride)[0]  # [k*k, L]
    fig, axes = plt.subplots(1, 2, figsize=(3 + 0.45 * cols.shape[1], 3.2),
                             gridspec_kw={"width_ratios": [x.shape[1], cols.shape[1]]})
    for ax, m, title in ((axes[0], x, f"input {x.shape[0]}×{x.shape[1]}"),
                         (axes[1], cols, f"F.unfold(x, {kernel}, stride={stride}): {cols.shape[0]}×{cols.shape[1]}")):
        ax.imshow(m, cmap="viridis")
        for r in range(m.shape[0]):
            for c in range(m.shape[1]):
                ax.text(c, r, f"{m[r, c]:g}", ha="center", va="center", color="white", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[1].set_xlabel("one column per window position")
    axes[1].set_ylabel("position in the window")
    fig.tight_layout()
    plt.show()


def show_kernels_and_maps(image, kernels: dict, maps: dict):
    """Top row: the hand-set kernels (numbers shown); bottom row: their feature maps on ``image``."""
    import matplotlib.pyplot as plt

    names = list(kernels)
    fig, axes = plt.subplots(2, len(names) + 1, figsize=(2.3 * (len(names) + 1), 4.8))
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title("input", fontsize=9)
    axes[1, 0].axis("off")
    for k, name in enumerate(names, start=1):
        kern = kernels[name].float()
        bound = float(kern.abs().max()) or 1.0
        axes[0, k].imshow(kern, cmap="bwr", vmin=-bound, vmax=bound)
        for r in range(kern.shape[0]):
            for c in range(kern.shape[1]):
                axes[0, k].text(c, r, f"{kern[r, c]:.2g}", ha="center", va="center", fontsize=8)
        axes[0, k].set_title(f"kernel: {name}", fontsize=9)
        fmap = maps[name].float()
        bound = float(fmap.abs().max()) or 1.0
        axes[1, k].imshow(fmap, cmap="bwr", vmin=-bound, vmax=bound)
        axes[1, k].set_title(f"feature map: {name}", fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    plt.show()


def draw_pooling(x: torch.Tensor, kernel: int = 2, stride: int | None = None):
    """A small ``x [H, W]`` with its pooling windows coloured, and the max, average and
    sum pooled outputs (the maximum of each window is circled)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    stride = stride or kernel
    x = x.float()
    h, w = x.shape
    oh, ow = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    colors = plt.get_cmap("Pastel1")
    windows = x.unfold(0, kernel, stride).unfold(1, kernel, stride)  # [oh, ow, k, k]
    results = {"max": windows.amax((-2, -1)), "average": windows.mean((-2, -1)), "sum": windows.sum((-2, -1))}
    fig, axes = plt.subplots(1, 4, figsize=(11, 3.2), gridspec_kw={"width_ratios": [w, ow, ow, ow]})

    def owner(r, c):
        i, j = r // stride, c // stride
        if i < oh and j < ow and r - i * stride < kernel and c - j * stride < kernel:
            return colors((i * ow + j) % 9)
        return "white"

    _grid(axes[0], h, w, fill=owner, text=lambda r, c: f"{x[r, c]:g}")
    for i in range(oh):
        for j in range(ow):
            a, b = divmod(int(windows[i, j].reshape(-1).argmax()), kernel)
            r, c = i * stride + a, j * stride + b
            axes[0].add_patch(Circle((c + 0.5, -r - 0.5), 0.38, fill=False, edgecolor="tab:red", linewidth=1.5))
    axes[0].set_title(f"input {h}×{w}, kernel {kernel}, stride {stride}", fontsize=9)
    for ax, (name, out) in zip(axes[1:], results.items()):
        _grid(ax, oh, ow, fill=lambda r, c: colors((r * ow + c) % 9), text=lambda r, c, o=out: f"{o[r, c]:.3g}")
        ax.set_title(f"{name} pooling", fontsize=9)
    for ax, (rows, cols) in zip(axes, [(h, w)] + [(oh, ow)] * 3):
        ax.set_xlim(-0.1, cols + 0.1)
        ax.set_ylim(-rows - 0.1, 0.1)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    plt.show()
