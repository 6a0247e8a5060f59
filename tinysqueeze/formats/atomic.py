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


# What a file of each kind written by a command starts with: an existing file at an output path that
# does not start so is another kind of file (a checkpoint, a dataset, a source file ...), and is
# replaced only when the user says so (--overwrite).
SIGNATURES = {".tsq": b"TSQZ", ".png": b"\x89PNG\r\n\x1a\n"}


def check_output(path, flag: str, kind: str, inputs: dict | None = None, overwrite: bool | None = None) -> Path:
    """Refuses, before any work, an output path that would destroy something: an input of the same
    command, a folder, or an existing file that is not of the kind the command writes (unless
    `overwrite`; an input, never).

    path: the output file; flag: its option's name, for the message ("--out"); kind: what is written
    there, a key of SIGNATURES (".tsq", ".png"); inputs: {flag: path} of the command's inputs;
    overwrite: the command's --overwrite (None: it has none). Raises ValueError naming the paths and
    what to do. -> Path(path)"""
    if path is None or str(path).strip() == "":
        raise ValueError(f"{flag} is empty: name the file to write")
    path = Path(path)
    for input_flag, input_path in (inputs or {}).items():
        if input_path and _same_file(path, Path(input_path)):
            raise ValueError(f"{flag} {path} is also this command's input ({input_flag} {input_path}): writing it "
                             "would destroy the input; choose another file")
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a folder; name a file inside it instead")
    if path.exists() and not overwrite:
        signature = SIGNATURES[kind]
        with open(path, "rb") as f:
            if f.read(len(signature)) != signature:
                remedy = "pass --overwrite to replace it, or choose" if overwrite is not None else "choose"
                raise ValueError(f"{flag} {path} already exists and is not a {kind} file (this command writes one "
                                 f"there); {remedy} another file")
    if not path.parent.exists():
        raise ValueError(f"{flag} {path}: the folder {path.parent} does not exist")
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
