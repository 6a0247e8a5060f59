"""Pictures the lessons show, drawn from the running code: a montage of a dataset's classes, a
layer's filters, and im2col's unfolding of a tiny image. Each writes one PNG.

    python -m tinysqueeze.evaluation.pictures docs/results        # the figures of lessons 1, 10 and 12
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .plots import pyplot, save_figure


def class_montage(images: np.ndarray, labels: np.ndarray, names: list[str], path, per_class: int = 5) -> Path:
    """A grid, one row per class, of the first `per_class` images of each.

    images: (N, 3, H, W) uint8, labels: (N,)."""
    plt = pyplot()
    fig, axes = plt.subplots(len(names), per_class, figsize=(1.1 * per_class + 1.2, 1.1 * len(names)),
                             squeeze=False)
    for k, name in enumerate(names):
        chosen = np.flatnonzero(labels == k)[:per_class]
        for j, ax in enumerate(axes[k]):
            ax.axis("off")
            if j < len(chosen):
                ax.imshow(images[chosen[j]].transpose(1, 2, 0))
        axes[k][0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=60)


def filter_grid(weights: dict[str, np.ndarray], path, title: str = "") -> Path:
    """Side-by-side panels of first-layer filters, each (F, 3, KH, KW) shown as small RGB tiles,
    every filter scaled to its own range so that its pattern shows."""
    plt = pyplot()
    panels = list(weights.items())
    columns = 8
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.6), squeeze=False)
    for ax, (label, w) in zip(axes[0], panels):
        f, _, kh, kw = w.shape
        rows = -(-f // columns)
        canvas = np.ones((rows * (kh + 1), columns * (kw + 1), 3))
        for k in range(f):
            tile = w[k].transpose(1, 2, 0)
            tile = (tile - tile.min()) / max(float(np.ptp(tile)), 1e-12)
            r, c = divmod(k, columns)
            canvas[r * (kh + 1): r * (kh + 1) + kh, c * (kw + 1): c * (kw + 1) + kw] = tile
        ax.imshow(canvas, interpolation="nearest")
        ax.set_title(label, fontsize=10)
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def im2col_picture(path) -> Path:
    """A 4x4 image, its 3x3 windows (stride 1, no padding), and the 9x4 matrix im2col makes of them."""
    from ..nn.kernels import im2col_numpy

    plt = pyplot()
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    cols = im2col_numpy(x, 3, 3, 1, 0, 2, 2)[0]                   # (9, 4)
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig, (ax_img, ax_cols) = plt.subplots(1, 2, figsize=(8, 4.2), gridspec_kw={"width_ratios": [1, 1.1]})
    ax_img.imshow(x[0, 0], cmap="Greys", alpha=0.25)
    for (r, c), value in np.ndenumerate(x[0, 0]):
        ax_img.text(c, r, int(value), ha="center", va="center", fontsize=13)
    for k, (r, c) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):   # the window of output pixel k
        inset = 0.06 * (k + 1)
        ax_img.add_patch(plt.Rectangle((c - 0.5 + inset, r - 0.5 + inset), 3 - 2 * inset, 3 - 2 * inset,
                                       fill=False, lw=2, color=colours[k]))
    ax_img.set_title("x: 4x4, four 3x3 windows", fontsize=10)
    ax_img.axis("off")
    ax_cols.imshow(np.zeros_like(cols), cmap="Greys", vmin=0, vmax=1)
    for (r, c), value in np.ndenumerate(cols):
        ax_cols.text(c, r, int(value), ha="center", va="center", fontsize=11, color=colours[c])
    ax_cols.set_xticks(range(4), [f"win {k}" for k in range(4)], fontsize=8)
    ax_cols.set_yticks(range(9), [f"tap ({i},{j})" for i in range(3) for j in range(3)], fontsize=8)
    ax_cols.set_title("im2col: (C*KH*KW, H_out*W_out) = (9, 4)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def main(out: str = "docs/results") -> None:
    """Draws the lessons' figures that need no training: the synthetic classes and im2col."""
    from ..datasets import SYNTHETIC_CLASSES, make_synthetic

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    images, labels = make_synthetic(200, 64, seed=0)
    print(class_montage(images, labels, list(SYNTHETIC_CLASSES), out_dir / "synthetic-classes.png"))
    print(im2col_picture(out_dir / "im2col.png"))


if __name__ == "__main__":
    main(*sys.argv[1:2])
