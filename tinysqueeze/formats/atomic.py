"""Writing a file so that a crash never leaves half of it: into a temporary file beside it, then one
rename. `os.replace` is atomic on POSIX, so a reader (or a resumed run) finds the old file or the
new one, never a mixture. Every file tinysqueeze writes goes through here: checkpoints, weights,
.tsq files, a run's metrics, curves and config, a sweep's results (`written_atomically`), the
dataset cache (`written_once`: a file its name fixes, never rewritten) and a downloaded dataset's
folder (`folder_written_once`). A temporary file carries the writing process's ID, so the ones a
killed process left behind can be told from the ones a running process is still writing
(`stale_temporary_files`)."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
from pathlib import Path
from typing import Iterator

TEMPORARY_PATTERNS = ("*.tmp*.*", "*.tmp")    # temporary files: today's names, and older versions' (x.npz.tmp)


def temporary_name(path: Path) -> Path:
    """runs/x/last.npz -> runs/x/last.tmp1234.npz (1234: this process): beside its file, with its suffix
    kept (matplotlib reads the format from it), and its own to this process (and thread: -5678 after
    the process ID, outside the main thread), so two writers of one path never share a temporary file."""
    thread = "" if threading.current_thread() is threading.main_thread() else f"-{threading.get_native_id()}"
    return path.with_name(f"{path.stem}.tmp{os.getpid()}{thread}{path.suffix}")


def leftover_temporary_files(folder: Path) -> list[Path]:
    """The temporary files in `folder` that a process killed while writing left behind."""
    return sorted({p for pattern in TEMPORARY_PATTERNS for p in Path(folder).glob(pattern)})


# The writer's process ID in a temporary name: today's (x.tmp1234.npy, x.tmp1234-5678.npy,
# .folder.tmp1234.d) and the dataset cache's before it wrote through here (x.1234-5678.tmp.npy).
WRITER_ID = re.compile(r"\.tmp(\d+)(?:-\d+)?\.|\.(\d+)-\d+\.tmp\.")


def stale_temporary_files(folder: Path) -> list[Path]:
    """The temporary files and folders in `folder` whose writing process no longer runs on this machine
    (killed while writing: kill -9, out of memory, a power cut). Safe to delete while other processes
    are writing in the same folder, which `leftover_temporary_files` is only under a lock."""
    stale = []
    for path in leftover_temporary_files(folder):
        writer = WRITER_ID.search(path.name)
        if writer and not process_is_running(int(writer.group(1) or writer.group(2))):
            stale.append(path)
    return stale


def remove_stale_temporary_files(folder: Path) -> None:
    for path in stale_temporary_files(folder):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def process_is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)                      # signal 0: asks only whether the process exists
    except ProcessLookupError:
        return False
    except OverflowError:                    # a number no process can have
        return False
    except PermissionError:                  # another user's process
        return True
    return True


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


@contextlib.contextmanager
def written_once(path) -> Iterator[Path]:
    """with written_once(path) as tmp: write tmp. For a file whose content its name fixes (the dataset
    cache: the name carries a hash of its inputs), that several processes may write at once: when the
    block ends without an error, tmp becomes `path` in one step unless another writer got there
    first, in which case theirs is kept and ours dropped. A finished file is never rewritten (a
    reader that memory-mapped it keeps reading what it mapped). On an error tmp is removed."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        publish_once(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def publish_once(tmp: Path, final: Path) -> None:
    """Gives a finished temporary file its final name, atomically, unless that name exists already
    (then the one there is kept; `written_once` removes ours)."""
    try:
        os.link(tmp, final)                  # fails if `final` exists: never rewrites a finished file
    except FileExistsError:
        pass
    except OSError:                          # a file system without hard links: rename, still atomic
        if not final.exists():
            os.replace(tmp, final)


@contextlib.contextmanager
def folder_written_once(path) -> Iterator[Path]:
    """with folder_written_once(path) as tmp: fill the new, empty folder tmp. When the block ends
    without an error, tmp becomes `path` in one rename (an empty folder at `path` is replaced; a full
    one, another writer's, is kept and ours dropped). On an error tmp is removed, and `path` stays as
    it was: a reader finds the whole folder or none."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.d")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError:                      # a folder with files in it is there: another writer finished
            if not (path.is_dir() and any(path.iterdir())):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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
