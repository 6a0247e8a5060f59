"""A split of a dataset as arrays: `ArrayDataset`, and `load_split`, which finds and caches one.

`--data` may be `synthetic`, or a folder in any layout tinysqueeze knows (see folders.py):
Imagenette-style `root/train`, `root/val` ImageFolders, Tiny ImageNet, downsampled ImageNet, or a
single ImageFolder (then a seeded 10% of each class is held out for validation).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import folders
from .cache import cached_arrays, default_cache_dir
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SIZES as SYNTHETIC_SIZES
from .synthetic import make_synthetic
from .transforms import stored_size

SPLITS = ("train", "val")
MAX_CLASSES = 100_000      # the most classes any command takes (ImageNet-21k has 21,841): conv10 of 1.1 at
                           # 100,000 classes is 205 MB; a flag or a checkpoint asking for more is refused


@dataclass
class ArrayDataset:
    """images: (N, 3, S, S) uint8 (S >= the training size), labels: (N,) int64 in [0, len(classes))."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str
    skipped: list[str] = field(default_factory=list)
    display_names: list[str] | None = None  # human-readable class names, where the dataset has them

    def __len__(self) -> int:
        return len(self.labels)

    def __post_init__(self):
        if len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: {len(self.images)} images but {len(self.labels)} labels")
        if len(self.classes) < 2:
            raise ValueError(f"{self.name}: a classification dataset needs at least two classes, "
                             f"got {len(self.classes)}")


def read_display_names(root: Path, classes: list[str]) -> list[str] | None:
    """Human-readable names from `root/classes.txt` (`<class folder><TAB><name>` lines), if present."""
    path = root / "classes.txt"
    if not path.is_file():
        return None
    names = dict(line.split("\t", 1) for line in folders.read_text(path).splitlines() if "\t" in line)
    return [names.get(c, c).strip() for c in classes]


def _holdout(labels: np.ndarray, split: str, seed: int, fraction: float = 0.1) -> np.ndarray:
    """Indices of a seeded, per-class `fraction` held out for val (the rest is train)."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val += list(idx[: max(1, int(round(len(idx) * fraction)))])
    val_mask = np.zeros(len(labels), dtype=bool)
    val_mask[val] = True
    return np.flatnonzero(val_mask if split == "val" else ~val_mask)


def load_split(data: str, split: str, image_size: int, seed: int = 0, cache_dir=None,
               synthetic_sizes=SYNTHETIC_SIZES, progress: bool = True) -> ArrayDataset:
    """One split ('train' or 'val') of `data` with images of at least image_size pixels."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    size = stored_size(image_size)
    if data == "synthetic":
        n = synthetic_sizes[0] if split == "train" else synthetic_sizes[1]
        images, labels = make_synthetic(n, size, seed=seed * 2 + (split == "val"))
        return ArrayDataset(images, labels, list(SYNTHETIC_CLASSES), f"synthetic/{split}")
    root = Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder (and not 'synthetic'); "
                                f"see data/README.md for how to get a dataset")
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir(root)
    if folders.is_downsampled_imagenet(root):
        images, labels, classes = folders.downsampled_imagenet(root, split)
        return ArrayDataset(images, labels, classes, f"{root.name}/{split}")
    has_train, has_val = (root / "train").is_dir(), (root / "val").is_dir()
    if has_train != has_val and not folders.is_tiny_imagenet(root):
        present, missing = ("train", "val") if has_train else ("val", "train")
        raise ValueError(f"{root} has a {present}/ folder but no {missing}/: give it both (root/train/<class>/, "
                         f"root/val/<class>/), or point --data at {root / present} to hold out a seeded 10% "
                         "of each class for validation")
    if folders.is_tiny_imagenet(root):
        files = folders.tiny_imagenet(root, split)
    elif (root / "train").is_dir() and (root / "val").is_dir():
        files = folders.image_folder(root / split)
        other = folders.image_folder(root / ("val" if split == "train" else "train"))
        if other.classes != files.classes:
            raise ValueError(f"{root}: train/ and val/ have different class folders")
    else:
        files = folders.image_folder(root)
        keep = _holdout(files.labels, split, seed)
        files = folders.FileList([files.paths[i] for i in keep], files.labels[keep], files.classes)
    images, labels, skipped = cached_arrays(files, size, cache_dir, split, progress=progress)
    refuse_unreadable_classes(files, labels, split)
    return ArrayDataset(images, labels, files.classes, f"{root.name}/{split}", skipped,
                        read_display_names(root, files.classes))


def refuse_unreadable_classes(files, labels: np.ndarray, split: str) -> None:
    """A class whose image files are all unreadable would be learnt from nothing (train) or never
    measured (val) while the run looks fine: refused, naming the class and one of its files."""
    had = np.bincount(files.labels, minlength=len(files.classes))
    kept = np.bincount(labels, minlength=len(files.classes))
    lost = [c for c in range(len(files.classes)) if had[c] > 0 and kept[c] == 0]
    if lost:
        first = files.paths[int(np.flatnonzero(files.labels == lost[0])[0])]
        raise ValueError(f"{split}: no image of class {files.classes[lost[0]]!r} could be read (all {had[lost[0]]}, "
                         f"e.g. {first})" + (f", nor of {len(lost) - 1} more class(es)" if len(lost) > 1 else "")
                         + ": fix or remove those files, or remove the class folder")


def channel_stats(images: np.ndarray, max_images: int = 2000, seed: int = 0):
    """Per-channel mean and std of uint8 images, in [0, 1] units, from up to max_images of them."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(images), min(len(images), max_images), replace=False))
    sample = np.asarray(images[idx], dtype=np.float64) / 255.0
    mean = sample.mean(axis=(0, 2, 3))
    std = sample.std(axis=(0, 2, 3))
    return tuple(float(m) for m in mean), tuple(float(max(s, 1e-3)) for s in std)
