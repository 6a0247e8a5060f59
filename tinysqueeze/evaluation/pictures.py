"""Pictures the lessons show, drawn from the running code: a montage of a dataset's classes, a
layer's filters, im2col's unfolding of a tiny image, and the computational graph of a scalar
expression (`draw_graph`). Each writes one PNG.

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


def graph_layout(root) -> dict:
    """Where each node of `root`'s graph (nn/scalar.py Values) sits in `draw_graph`'s picture.

    -> {id(node): (column, row)}. Columns run left to right in the order of computation: a node sits
    one column right of its rightmost child, an input one column left of the first node that uses it.
    Rows come from walking the graph from the root, children in order: each input takes the next
    free row and every other node sits at the mean of its children's rows (a node used twice keeps
    the place it got first)."""
    from ..nn.scalar import topological_order

    order = topological_order(root)                      # inputs first, root last
    column = {}
    for node in order:
        column[id(node)] = 1 + max((column[id(c)] for c in node.children), default=-1)
    users = {}                                           # input -> the columns of the nodes that use it
    for node in order:
        for child in node.children:
            if not child.children:
                users.setdefault(id(child), []).append(column[id(node)])
    for key, used_at in users.items():                   # inputs: just left of their first user
        column[key] = min(used_at) - 1
    row, free = {}, [0]

    def place(node) -> float:
        if id(node) not in row:
            if not node.children:
                row[id(node)] = free[0]
                free[0] += 1
            else:
                row[id(node)] = sum(place(c) for c in node.children) / len(node.children)
        return row[id(node)]

    place(root)
    return {key: (column[key], row[key]) for key in column}


def draw_graph(root, path, title: str = "") -> Path:
    """The computational graph of a Value (tinysqueeze/nn/scalar.py) as a picture, drawn with
    matplotlib alone (no graphviz): a box per Value with its label, data and grad, a circle per
    operation with its name, arrows from the Values an operation reads to the Value it makes.
    Call it after `root.backward()` to see the gradients. -> path (a PNG)."""
    from ..nn.scalar import topological_order

    plt = pyplot()
    order = topological_order(root)
    where = graph_layout(root)
    columns = max(c for c, _ in where.values()) + 1
    rows = max(r for _, r in where.values()) + 1
    fig, ax = plt.subplots(figsize=(1.0 + 2.3 * columns, 0.6 + 0.95 * rows))
    boxes, circles = {}, {}
    for node in order:
        c, r = where[id(node)]
        x, y = 2.0 * c, -float(r)                        # each column: its op circle at x - 1, then its box
        colour = "#dfe8f5" if node.children else "#e6f2e1"
        if node is root:
            colour = "#fbe3c6"
        text = f"{node.label or ' '}\ndata {node.data:.4g}\ngrad {node.grad:.4g}"
        boxes[id(node)] = ax.text(x, y, text, ha="center", va="center", fontsize=8, family="monospace",
                                  bbox=dict(boxstyle="round,pad=0.35", fc=colour, ec="0.4"))
        if node.children:
            circles[id(node)] = ax.text(x - 1.0, y, node.op, ha="center", va="center", fontsize=9,
                                        bbox=dict(boxstyle="circle,pad=0.3", fc="#fff6c8", ec="0.4"))
    fig.canvas.draw()                                    # the boxes get their sizes: arrows stop at their edges
    arrow = dict(arrowstyle="-|>", color="0.35", lw=1.0, shrinkA=2, shrinkB=2)
    for node in order:
        if not node.children:
            continue
        op = circles[id(node)]
        ax.annotate("", xy=boxes[id(node)].get_position(), xytext=op.get_position(),
                    arrowprops=dict(arrow, patchA=op.get_bbox_patch(), patchB=boxes[id(node)].get_bbox_patch()))
        for child in dict.fromkeys(node.children):       # a child used twice: one arrow, the op reads it twice
            skips = where[id(node)][0] - where[id(child)][0] > 1    # it would cross the columns between: bend it
            ax.annotate("", xy=op.get_position(), xytext=boxes[id(child)].get_position(),
                        arrowprops=dict(arrow, patchA=boxes[id(child)].get_bbox_patch(), patchB=op.get_bbox_patch(),
                                        connectionstyle=f"arc3,rad={-0.4 if skips else 0}"))
    ax.set_xlim(-1.0, 2.0 * (columns - 1) + 1.0)
    ax.set_ylim(-(rows - 1) - 0.8, 0.8)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)


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
