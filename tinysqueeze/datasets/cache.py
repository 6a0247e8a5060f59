"""Decode once, resize once, keep the pixels: the uint8 cache behind every image dataset.

JPEG decoding costs far more than a training step on small images, so each split is decoded with
Pillow a single time, resized (shorter side to the stored size, centre-cropped square) and written
as one uint8 `.npy` of shape (N, 3, S, S). Later runs memory-map that file and never decode again.
The cache file name carries a hash of the file list (names, sizes, modification times) and the
stored size, so a changed dataset is decoded anew. Files are written as every file tinysqueeze
writes, through `formats/atomic.py` (`written_once`): to a temporary name of this process's own,
then linked into place only if no other process got there first. An interrupted run (Ctrl-C, an
error) removes its temporary file, and the next run removes those of a killed one (kill -9, out of
memory); none leaves a half cache behind. Two runs decoding the same split at once (`sweep
--workers 2`) never write into each other's files, and a finished cache file is never rewritten.

Unreadable images are skipped, counted and reported by path (a warning naming each one); the run
goes on with the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..formats.atomic import remove_stale_temporary_files, written_atomically, written_once
from .transforms import center_crop, load_rgb, resize_shorter, to_chw_uint8
from .folders import FileList

CACHE_VERSION = 2      # 2: 16-bit images scaled to 8 bits (transforms.to_rgb8), no longer clipped at 255


def default_cache_dir(root: Path) -> Path:
    """The dataset's cache folder: <base>/<folder name>-<hash of its absolute path>, where <base> is
    $TINYSQUEEZE_CACHE or ~/.cache/tinysqueeze. Nothing is ever written into the dataset itself
    (it may be read-only, or shared)."""
    base = Path(os.environ.get("TINYSQUEEZE_CACHE") or Path.home() / ".cache" / "tinysqueeze")
    return base / f"{root.name}-{_short_hash(str(root.resolve()))}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(os.fsencode(text)).hexdigest()[:10]     # a path's bytes, whatever its encoding


def _fingerprint(files: FileList, size: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} size={size} classes={files.classes}".encode())
    for path, label in zip(files.paths, files.labels):
        try:
            st = os.stat(path)
            h.update(os.fsencode(path.name) + f"|{label}|{st.st_size}|{int(st.st_mtime)}\n".encode())
        except OSError:
            h.update(os.fsencode(path.name) + f"|{label}|missing\n".encode())
    return h.hexdigest()[:12]


def decode(path: Path, size: int) -> np.ndarray | None:
    """One image file -> (3, size, size) uint8 (shorter side to size, centre crop), or None if unreadable."""
    try:
        return to_chw_uint8(center_crop(resize_shorter(load_rgb(path), size), size))
    except (ValueError, OSError):
        return None


def cached_arrays(files: FileList, size: int, cache_dir: Path, split: str, workers: int = 2, progress: bool = True):
    """-> images (N, 3, size, size) uint8 memory-map, labels (N,), skipped paths (as strings)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = cache_dir / f"{split}-{size}px-{_fingerprint(files, size)}"
    images_file, meta_file = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if images_file.is_file() and meta_file.is_file():
        return read_cache(images_file, meta_file, size, len(files.classes))
    remove_stale_temporary_files(cache_dir)              # left by a run killed while decoding

    with written_once(images_file) as tmp:
        ok = decode_all(files, size, tmp, split, workers, progress)
    skipped = [str(p) for p, good in zip(files.paths, ok) if not good]
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): " + ", ".join(skipped[:10])
                      + (" ..." if len(skipped) > 10 else ""), stacklevel=2)
    labels = files.labels[ok]
    with written_once(meta_file) as tmp:
        tmp.write_text(json.dumps({"labels": labels.tolist(), "skipped": skipped, "classes": files.classes}))
    return np.load(images_file, mmap_mode="r"), labels, skipped


def decode_all(files: FileList, size: int, into: Path, split: str, workers: int, progress: bool) -> np.ndarray:
    """Decodes every image of `files` into the .npy file `into`: (K, 3, size, size) uint8, the K readable
    ones in order. -> which were readable, (N,) bool. Raises ValueError when none is."""
    n = len(files.paths)
    out = np.lib.format.open_memmap(into, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
    ok = np.zeros(n, dtype=bool)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow releases the GIL while decoding
        results = pool.map(lambda p: decode(p, size), files.paths, chunksize=16)
        for i, image in enumerate(tqdm(results, total=n, desc=f"decoding {split} once ({size}px)",
                                       disable=not progress, unit="img")):
            if image is not None:
                out[i] = image
                ok[i] = True
    if not ok.any():
        raise ValueError(f"none of the {n} images of the {split} split could be read")
    if not ok.all():                                      # keep the readable ones only
        with written_atomically(into) as kept_file:
            kept = np.lib.format.open_memmap(kept_file, mode="w+", dtype=np.uint8, shape=(int(ok.sum()), 3, size, size))
            kept[:] = out[ok]
            kept.flush()
            del kept
    out.flush()
    del out
    return ok


def read_cache(images_file: Path, meta_file: Path, size: int, num_classes: int):
    """A finished cache: its images (memory-mapped), labels and skipped paths, each checked against the
    others, or a ValueError naming the damaged file and the fix (a published cache file is never rewritten,
    so a damaged one stays damaged until it is deleted; the next run decodes the images again)."""
    fix = "delete it and run again (the images are decoded anew)"
    try:
        meta = json.loads(meta_file.read_text())
        labels, skipped = np.asarray(meta["labels"]), meta["skipped"]
        if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu") or not isinstance(skipped, list):
            raise ValueError("its labels are not a list of whole numbers")
    except (OSError, ValueError, KeyError, TypeError, IndexError, RecursionError) as error:
        raise ValueError(f"the data cache {meta_file} is damaged ({type(error).__name__}: {error}); {fix}") from None
    labels = labels.astype(np.int64)
    outside = labels[(labels < 0) | (labels >= num_classes)]
    if outside.size:
        raise ValueError(f"the data cache {meta_file} is damaged: label {outside[0]} is out of range for its "
                         f"{num_classes} classes; {fix}")
    try:
        images = np.load(images_file, mmap_mode="r")
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(f"the data cache {images_file} is damaged ({error}); {fix}") from None
    if images.dtype != np.uint8 or images.shape != (len(labels), 3, size, size):
        raise ValueError(f"the data cache {images_file} holds {images.dtype} {images.shape}, not the "
                         f"(N, 3, {size}, {size}) uint8 images of the {len(labels)} labels in {meta_file}: one of "
                         f"them is damaged; delete both and run again (the images are decoded anew)")
    return images, labels, skipped
