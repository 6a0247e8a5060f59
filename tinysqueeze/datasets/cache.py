"""Decode once, resize once, keep the pixels: the uint8 cache behind every image dataset.

JPEG decoding costs far more than a training step on small images, so each split is decoded with
Pillow a single time, resized (shorter side to the stored size, centre-cropped square) and written
as one uint8 `.npy` of shape (N, 3, S, S). Later runs memory-map that file and never decode again.
The cache file name carries a hash of the file list (names, sizes, modification times) and the
stored size, so a changed dataset is decoded anew. Files are written to a temporary name of this
process's own and then linked into place only if no other process got there first: an interrupted
run leaves no half cache behind, two runs decoding the same split at once (`sweep --workers 2`)
never write into each other's files, and a finished cache file is never rewritten.

Unreadable images are skipped, counted and reported by path (a warning naming each one); the run
goes on with the rest.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

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

    n = len(files.paths)
    mine = f"{os.getpid()}-{threading.get_ident()}"               # temporary names of this process's own
    tmp = images_file.with_name(f"{images_file.stem}.{mine}.tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
    ok = np.zeros(n, dtype=bool)
    with ThreadPoolExecutor(max_workers=workers) as pool:  # Pillow releases the GIL while decoding
        results = pool.map(lambda p: decode(p, size), files.paths, chunksize=16)
        for i, image in enumerate(tqdm(results, total=n, desc=f"decoding {split} once ({size}px)",
                                       disable=not progress, unit="img")):
            if image is not None:
                out[i] = image
                ok[i] = True
    skipped = [str(p) for p, good in zip(files.paths, ok) if not good]
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s): " + ", ".join(skipped[:10])
                      + (" ..." if len(skipped) > 10 else ""), stacklevel=2)
    if not ok.all():  # keep the readable ones only
        kept_tmp = tmp.with_name(f"{images_file.stem}.{mine}.kept.tmp.npy")
        kept = np.lib.format.open_memmap(kept_tmp, mode="w+", dtype=np.uint8, shape=(int(ok.sum()), 3, size, size))
        kept[:] = out[ok]
        kept.flush()
        del out, kept
        os.replace(kept_tmp, tmp)
    else:
        out.flush()
        del out
    labels = files.labels[ok]
    if len(labels) == 0:
        raise ValueError(f"none of the {n} images of the {split} split could be read")
    publish(tmp, images_file)
    meta_tmp = meta_file.with_name(f"{meta_file.stem}.{mine}.tmp.json")
    meta_tmp.write_text(json.dumps({"labels": labels.tolist(), "skipped": skipped, "classes": files.classes}))
    publish(meta_tmp, meta_file)
    return np.load(images_file, mmap_mode="r"), labels, skipped


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


def publish(tmp: Path, final: Path) -> None:
    """Moves a finished temporary file to its final name, atomically, unless another process already
    published that name (same inputs, so the same content): then ours is dropped and theirs kept."""
    try:
        os.link(tmp, final)                  # fails if `final` exists: never rewrites a finished file
    except FileExistsError:
        pass
    except OSError:                          # a file system without hard links: rename, still atomic
        if not final.exists():
            os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
