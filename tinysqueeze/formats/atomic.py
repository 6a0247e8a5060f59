"""Writing a file so that a crash never leaves half of it: into a temporary file beside it, then one
rename. `os.replace` is atomic on POSIX, so a reader (or a resumed run) finds the old file or the
new one, never a mixture. Checkpoints, weights, .tsq files, a run's metrics, curves and config, and
a sweep's results are all written through `written_atomically`. (The dataset cache writes its
arrays its own way, and downloads are verified before they are used.)"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

TEMPORARY_PATTERNS = ("*.tmp*.*", "*.tmp")    # temporary files: today's names, and older versions' (x.npz.tmp)


def temporary_name(path: Path) -> Path:
    """runs/x/last.npz -> runs/x/last.tmp1234.npz (1234: this process): beside its file, with its suffix
    kept (matplotlib reads the format from it), and its own to this process, so two processes writing
    one path never write into one temporary file."""
    return path.with_name(f"{path.stem}.tmp{os.getpid()}{path.suffix}")


def leftover_temporary_files(folder: Path) -> list[Path]:
    """The temporary files in `folder` that a process killed while writing left behind."""
    return sorted({p for pattern in TEMPORARY_PATTERNS for p in Path(folder).glob(pattern)})


@contextlib.contextmanager
def written_atomically(path) -> Iterator[Path]:
    """with written_atomically(path) as tmp: write tmp, any way you like. When the block ends without
    an error, tmp replaces `path` in one step; on an error tmp is removed and `path` is untouched."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomically(path, data: bytes) -> None:
    with written_atomically(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomically(path, text: str) -> None:
    with written_atomically(path) as tmp:
        tmp.write_text(text)
