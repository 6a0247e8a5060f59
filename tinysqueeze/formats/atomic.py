"""Writing a file so that a crash never leaves half of it: into a temporary file beside it, then one
rename. `os.replace` is atomic on POSIX, so a reader (or a resumed run) finds the old file or the
new one, never a mixture. Every file tinysqueeze writes goes through `written_atomically`."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


def temporary_name(path: Path) -> Path:
    """runs/x/last.npz -> runs/x/last.tmp.npz: beside its file, with its suffix kept (matplotlib
    reads the format from it). A run folder removes any `*.tmp.*` a killed run left."""
    return path.with_name(f"{path.stem}.tmp{path.suffix}")


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
