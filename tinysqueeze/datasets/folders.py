"""Finding the images of a dataset on disk: ImageFolder, Imagenette, Tiny ImageNet, downsampled ImageNet.

Each finder returns a `FileList`: paths, integer labels and class names, for one split.
- ImageFolder: `root/<class>/*.jpg|jpeg|png` (any case), classes sorted by name, as torchvision does.
- Imagenette (and any `root/train`, `root/val` pair of ImageFolders).
- Tiny ImageNet: `train/<wnid>/images/*.JPEG`; `val/images/*.JPEG` labelled by
  `val/val_annotations.txt` (file<TAB>wnid<TAB>box...); class order from `wnids.txt` when present.
- Downsampled ImageNet (32x32, 64x64): pickled batch files `train_data_batch_1..10` and `val_data`,
  each a dict with `data` (N, 3*S*S) uint8 rows (channel-major) and 1-based `labels`.
"""
from __future__ import annotations

import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}
DOWNSAMPLED_CLASSES = 1000     # downsampled ImageNet's labels are 1..1000


@dataclass
class FileList:
    paths: list[Path]
    labels: np.ndarray       # (N,) int64
    classes: list[str]


def _images_in(folder: Path) -> list[Path]:
    found = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(utf8_named(found, "file"))


def utf8_named(paths: list[Path], kind: str) -> list[Path]:
    """The paths whose names are UTF-8; the others (a name in Latin-1, say, which Python can only hold as
    surrogate escapes that no UTF-8 file, cache or JSON can store) are skipped with a warning naming each,
    bytes shown as \\xNN, so one odd name does not stop a whole dataset."""
    good, bad = [], []
    for path in paths:
        try:
            path.name.encode("utf-8")
            good.append(path)
        except UnicodeEncodeError:
            bad.append(shown(path))
    if bad:
        warnings.warn(f"skipped {len(bad)} {kind}(s) whose names are not UTF-8 (rename them to use them): "
                      + ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""), stacklevel=3)
    return good


def shown(path) -> str:
    """A path for a message, any byte that is not UTF-8 written as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def read_text(path: Path) -> str:
    """A dataset's text file (class lists, annotations), or a ValueError naming it."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{shown(path)} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def image_folder(root) -> FileList:
    """root/<class>/<image>: one class per sub-folder, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no dataset folder at {root}")
    class_dirs = sorted(utf8_named([d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")],
                                   "class folder"))
    if len(class_dirs) < 2:
        raise ValueError(f"{root}: an image folder needs at least two class sub-folders "
                         f"(root/<class>/*.jpg), found {len(class_dirs)}")
    paths, labels = [], []
    for label, d in enumerate(class_dirs):
        files = _images_in(d)
        if not files:
            raise ValueError(f"class folder {d} holds no images (.jpg, .jpeg or .png)")
        paths += files
        labels += [label] * len(files)
    return FileList(paths, np.asarray(labels, dtype=np.int64), [d.name for d in class_dirs])


def tiny_imagenet(root, split: str) -> FileList:
    """Tiny ImageNet 200's layout (tiny-imagenet-200/)."""
    root = Path(root)
    wnids_file = root / "wnids.txt"
    if wnids_file.is_file():
        classes = [w.strip() for w in read_text(wnids_file).split() if w.strip()]
    else:
        classes = sorted(d.name for d in utf8_named([d for d in (root / "train").iterdir() if d.is_dir()],
                                                    "class folder"))
    index = {w: k for k, w in enumerate(classes)}
    paths, labels = [], []
    if split == "train":
        for wnid in classes:
            files = _images_in(root / "train" / wnid / "images")
            if not files:
                raise ValueError(f"class folder {root / 'train' / wnid / 'images'} holds no images")
            paths += files
            labels += [index[wnid]] * len(files)
    else:
        annotations = root / "val" / "val_annotations.txt"
        if not annotations.is_file():
            raise FileNotFoundError(f"Tiny ImageNet's {annotations} is missing")
        for line_number, line in enumerate(read_text(annotations).splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 2 or fields[1] not in index:
                raise ValueError(f"{annotations}:{line_number}: expected file<TAB>wnid, got {line!r}")
            paths.append(root / "val" / "images" / fields[0])
            labels.append(index[fields[1]])
    return FileList(paths, np.asarray(labels, dtype=np.int64), classes)


def is_tiny_imagenet(root: Path) -> bool:
    return (root / "val" / "val_annotations.txt").is_file()


def is_downsampled_imagenet(root: Path) -> bool:
    return (root / "val_data").is_file() or any(root.glob("train_data_batch_*"))


def read_downsampled_batch(path: Path):
    """One pickled batch file -> images (N, 3, S, S) uint8, labels (N,) int64 (0-based)."""
    with open(path, "rb") as f:
        try:
            batch = _PlainUnpickler(f).load()
        except Exception as error:
            raise ValueError(f"{path} is not a downsampled-ImageNet batch file: {error}") from None
    if not isinstance(batch, dict) or "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path}: expected a dict with 'data' and 'labels'")
    try:
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64) - 1     # 1-based in the files
    except (ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{path}: 'data' must be uint8 rows and 'labels' whole numbers ({error})") from None
    if data.ndim != 2 or labels.ndim != 1 or len(labels) != len(data) or len(data) == 0:
        raise ValueError(f"{path}: expected 'data' of shape (N, 3*S*S) and N 'labels', got {data.shape} and "
                         f"{labels.shape}")
    side = int(round((data.shape[1] / 3) ** 0.5))
    if 3 * side * side != data.shape[1]:
        raise ValueError(f"{path}: 'data' rows of {data.shape[1]} bytes are not 3*S*S images")
    if labels.min() < 0 or labels.max() >= DOWNSAMPLED_CLASSES:
        wrong = labels.min() if labels.min() < 0 else labels.max()
        raise ValueError(f"{path}: label {wrong + 1} is out of range: downsampled ImageNet's labels are 1 to "
                         f"{DOWNSAMPLED_CLASSES}")
    return data.reshape(-1, 3, side, side), labels


def downsampled_imagenet(root, split: str):
    """-> images (N, 3, S, S) uint8, labels (N,), classes (as label numbers)."""
    root = Path(root)
    files = sorted(root.glob("train_data_batch_*"), key=lambda p: int(p.name.rsplit("_", 1)[1])) \
        if split == "train" else [root / "val_data"]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"no downsampled-ImageNet {split} files in {root}")
    parts = [read_downsampled_batch(f) for f in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    n_classes = int(labels.max()) + 1
    return images, labels, [str(k + 1) for k in range(n_classes)]


class _PlainUnpickler(pickle.Unpickler):
    """Batch files hold a dict of NumPy arrays and lists; nothing else may be loaded."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
