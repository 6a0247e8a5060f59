"""The pictures of a run: its curves (curves.png) and a confusion matrix. Matplotlib draws into
files only (the Agg backend): no window ever opens."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..formats.atomic import written_atomically


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_figure(fig, path, dpi: int = 90) -> Path:
    """Writes `fig` to `path` (its format from the suffix, PNG without one) through a temporary file,
    so a kill never leaves half a picture, and closes it. -> the path."""
    path = Path(path)
    with written_atomically(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=path.suffix[1:] or "png")
    pyplot().close(fig)
    return path


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """curves.png: loss (train, val) and accuracy (train top-1, val top-1, val top-5) per epoch.

    rows: metrics.csv's rows (dicts with epoch, train_loss, val_loss, train_top1, val_top1, val_top5).
    Drawn to a temporary file and renamed (save_figure), so a kill never leaves half a picture."""
    plt = pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "s-", label="val")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("cross-entropy loss"), ax_loss.legend()
    ax_acc.plot(epochs, [100 * r["train_top1"] for r in rows], "o-", label="train top-1")
    ax_acc.plot(epochs, [100 * r["val_top1"] for r in rows], "s-", label="val top-1")
    ax_acc.plot(epochs, [100 * r["val_top5"] for r in rows], "^--", label="val top-5", alpha=0.6)
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("accuracy (%)"), ax_acc.set_ylim(0, 100), ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """confusion: (C, C) counts, rows the true class, columns the predicted one; drawn as rates."""
    plt = pyplot()
    k = len(classes)
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.6 * k), min(11, 1.5 + 0.55 * k)))
    rates = confusion / np.maximum(1, confusion.sum(axis=1, keepdims=True))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), [c[:14] for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), [c[:14] for c in classes], fontsize=8)
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)


def plot_runs(groups: dict, path: Path, title: str) -> None:
    """Several models' runs on one picture: validation top-1 (solid) and top-5 (dashed), and train
    (dotted) / val (solid) loss, per epoch. groups: label -> a list of runs, each run metrics.csv's
    rows (e.g. {"squeezenet1_1": [seed 0's rows, seed 1's rows], "alexnet": [...]}); each label has one
    colour, its seeds drawn alike, so a model's spread shows as a band of lines."""
    plt = pyplot()
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for colour, (label, runs) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], groups.items()):
        for i, rows in enumerate(runs):
            epochs = [r["epoch"] for r in rows]

            def name(what):         # one legend entry per model, on its first run
                return f"{label} {what} ({len(runs)} run{'s' if len(runs) > 1 else ''})" if i == 0 else None
            ax_acc.plot(epochs, [100 * r["val_top1"] for r in rows], "-", color=colour, label=name("top-1"))
            ax_acc.plot(epochs, [100 * r["val_top5"] for r in rows], "--", color=colour, alpha=0.6, label=name("top-5"))
            ax_loss.plot(epochs, [r["train_loss"] for r in rows], ":", color=colour, label=name("train"))
            ax_loss.plot(epochs, [r["val_loss"] for r in rows], "-", color=colour, label=name("val"))
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("validation accuracy (%)"), ax_acc.set_ylim(0, 100)
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("cross-entropy loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
