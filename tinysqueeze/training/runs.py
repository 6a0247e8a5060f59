"""A training run's folder: its files, the order they are written in, its lock and its resume point.

A run folder (`runs/NAME/`) holds one run:
- `config.json`: every setting of the run (train.TrainConfig);
- `metrics.csv`: one row per epoch (METRIC_COLUMNS), with where the epoch's time went;
- `curves.png`: loss and accuracy, train against validation;
- `last.npz` (the resume point) and `best.npz`: checkpoints (formats/checkpoint.py), written
  atomically; `last.npz` is written last of all, so whatever it says was finished is on disk;
- `train.log`: what `train` printed, when a sweep ran it in a process of its own;
- `.lock`: held by the run writing the folder (one run per folder);
- `.writing-epoch`: there while an epoch's files are written (a first epoch killed then is no run).

`RunFolder` is the only code that knows this layout (every other module asks it for paths, finished
epochs and the resume point). What a checkpoint says about its run is run_meta.py's RunMeta; turning
a file back into a model and data is loading.py's.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..evaluation.plots import plot_curves
from ..formats.atomic import leftover_temporary_files, write_text_atomically, written_atomically
from ..formats.checkpoint import save_checkpoint
from .run_meta import RunMeta, read_checkpoint

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "silent_classes", "images_per_s", "seconds", "step_seconds", "other_seconds", "allreduce_seconds"]
# seconds: the training pass over the data; step_seconds: the part of it inside training steps
# (forward, backward, update); other_seconds: the rest of the epoch (data waits, validation, files);
# allreduce_seconds: the part of the steps spent summing gradients among processes (0 for one process).


# ---------------------------------------------------------------------------- metrics.csv
METRICS_READ = ("epoch", "val_top1", "val_top5", "seconds")     # what --resume and sweeps read back


def read_metrics(path: Path) -> list[dict]:
    """metrics.csv's rows, numbers as floats (a blank cell: NaN); [] without the file. A file without
    the columns that --resume and sweeps read, or with a cell that is not a number, is a ValueError
    naming it and the fix."""
    if not path.is_file():
        return []
    fix = ("restore it, or delete it (the run then keeps only the epochs it trains from now on in its "
           "metrics.csv; a sweep trains the run again)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in METRICS_READ if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path} is damaged: it lacks the column{'s' * (len(missing) > 1)} "
                                 f"{', '.join(missing)} that --resume and sweeps read; {fix}")
            rows = []
            for line, row in enumerate(reader, 2):
                if None in row:
                    raise ValueError(f"{path} is damaged: line {line} has more cells than columns; {fix}")
                try:
                    rows.append({k: float(v) if v else math.nan for k, v in row.items()})
                except ValueError:
                    cell = next(f"{k}={v!r}" for k, v in row.items() if v and not is_number(v))
                    raise ValueError(f"{path} is damaged: line {line} has {cell[:60]}, not a number; {fix}") from None
                unread = [c for c in METRICS_READ if not math.isfinite(rows[-1][c])]
                if unread:                   # a finished epoch always has each: a blank or NaN one was edited
                    raise ValueError(f"{path} is damaged: line {line} has no number for {', '.join(unread)}; {fix}")
            return rows
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{path} is damaged ({error}); {fix}") from None


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def format_metric(column: str, value) -> str:
    """A metrics.csv cell: epochs and counts as integers, the rest to 6 digits, blank if unknown
    (a column a run written by an older version did not have)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(int(value)) if column in ("epoch", "silent_classes") else f"{value:.6g}"


def write_metrics(path: Path, rows: list[dict]) -> None:
    with written_atomically(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: format_metric(k, row.get(k)) for k in METRIC_COLUMNS})


# ---------------------------------------------------------------------------- the run folder
@dataclass
class ResumePoint:
    """What a run's last.npz holds: where a stopped run continues."""
    model_state: dict                  # the weights, by state_dict name
    optimizer_state: dict              # the momentum (or Adam) buffers; empty in a copy of best.npz
    meta: RunMeta                      # the run's settings, its last finished epoch, its generators


class RunFolder:
    """A run's folder (`runs/NAME/`): the one place that knows its files and their order.

        folder = RunFolder("runs/demo")
        folder.last, folder.best, folder.metrics_csv, folder.curves, folder.config_json   # the paths
        folder.finished_epochs()        # the epochs its resume point holds
        folder.resume_point()           # a ResumePoint, read from last.npz

    A run writing the folder holds its lock (`claim`, `release`); `record_epoch` writes one finished
    epoch's files in the order that makes a kill harmless.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.last = self.path / "last.npz"            # the resume point (weights and optimizer), written last
        self.best = self.path / "best.npz"            # the weights of the best epoch so far
        self.metrics_csv = self.path / "metrics.csv"  # one row per finished epoch
        self.curves = self.path / "curves.png"
        self.config_json = self.path / "config.json"  # every setting of the run
        self.log = self.path / "train.log"            # what `train` printed, when a sweep ran it
        self.writing = self.path / ".writing-epoch"   # there while an epoch's files are written
        self.lock = None                              # the open lock file, while this process holds the folder

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def run_files(self) -> list[Path]:
        return [self.last, self.best, self.metrics_csv, self.curves, self.config_json, self.log, self.writing]

    # -- reading ------------------------------------------------------------------------
    def has_resume_point(self) -> bool:
        return self.last.exists()

    def metrics(self) -> list[dict]:
        """metrics.csv's rows (numbers as floats; [] before the first epoch)."""
        return read_metrics(self.metrics_csv)

    def finished_epochs(self) -> int:
        """Epochs the run has finished for good: those its resume point (last.npz, written last of an
        epoch's files) holds; 0 without one, or with a damaged one (--resume then says what is wrong)."""
        if not self.last.exists():
            return 0
        try:
            return self.meta().epoch + 1
        except ValueError:
            return 0

    def resume_point(self) -> ResumePoint:
        """last.npz as a ResumePoint, or an error that says what to do."""
        if not self.last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint {self.last} to continue from (no epoch of a run there "
                                    "finished): run the same command without --resume to start it")
        try:
            return ResumePoint(*read_checkpoint(self.last))
        except ValueError as error:
            raise ValueError(f"--resume: {self.last} is damaged and cannot be continued ({error})."
                             f"{self.offer_best()}") from None

    def offer_best(self) -> str:
        """How to continue from best.npz when last.npz is damaged ("" if best.npz is unreadable too)."""
        try:
            epoch = read_checkpoint(self.best, meta_only=True)[2].epoch
        except (ValueError, FileNotFoundError):
            return ""
        return (f" {self.best} (epoch {epoch + 1}) is readable: to continue from it, copy it over last.npz "
                f"(cp {self.best} {self.last}) and --resume again; momentum restarts from zero.")

    def config(self) -> dict:
        """config.json: every setting of the run, as `train` saved it."""
        return json.loads(self.config_json.read_text())

    def meta(self) -> RunMeta:
        """What the resume point says about the run (its classes, settings, last epoch)."""
        return read_checkpoint(self.last, meta_only=True)[2]

    # -- writing ------------------------------------------------------------------------
    def claim(self) -> "RunFolder":
        """Creates the folder if needed, checks it can be written, and takes its lock for the life of
        the run (until `release`).

        The lock is an OS file lock (flock) on `.lock`, which also holds the owner's PID for the
        message: a second run into the same folder is refused at once, naming the holder; a run that
        was killed holds no lock any more (the OS drops it with the process), so its folder is taken over.
        """
        import fcntl

        out = self.path
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder: choose a folder for the run")
        try:
            out.mkdir(parents=True, exist_ok=True)
            lock = open(out / ".lock", "a+")
        except OSError as error:
            raise ValueError(f"--out {out} cannot be written ({error.strerror}): choose a folder you can write to") from None
        if not os.access(out, os.W_OK):
            lock.close()
            raise ValueError(f"--out {out} cannot be written (no write permission): choose another folder")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            lock.close()
            raise ValueError(f"{out} is in use by another training run (PID {holder}); wait for it to finish, "
                             "or choose another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        for orphan in leftover_temporary_files(out):           # left by a run killed while writing
            orphan.unlink(missing_ok=True)
        self.lock = lock
        return self

    def release(self) -> None:
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def finished_files(self) -> list[Path]:
        """The files only a run that finished an epoch writes. A run killed before its first epoch
        leaves at most config.json and its log, which the same command writes again -- or, killed while
        writing its first epoch's files, some of them beside the `writing` marker and no last.npz: an
        epoch that never finished, which the same command starts again too."""
        found = [p for p in (self.last, self.best, self.metrics_csv, self.curves) if p.exists()]
        if not self.last.exists() and self.writing.exists():
            return []
        return found

    def clear(self, overwrite: bool) -> None:
        """Makes the folder ready for a new run: refuses to replace a run in it unless `overwrite`,
        whichever of its files are left (a run whose last.npz was deleted still has best.npz). Called
        when everything else of the new run is ready, so that a new run that fails to start (bad data,
        ranks that disagree) loses nothing; `refuse_replacing` says no before any of that work."""
        self.refuse_replacing(overwrite)
        if overwrite:
            for path in self.run_files():
                path.unlink(missing_ok=True)
        elif self.writing.exists() and not self.last.exists():   # a first epoch that never finished
            for path in (self.best, self.metrics_csv, self.curves, self.writing):
                path.unlink(missing_ok=True)

    def refuse_replacing(self, overwrite: bool) -> None:
        """Refuses (ValueError) to start a new run over a run in the folder, unless `overwrite`."""
        found = self.finished_files()
        if found and not overwrite:
            names = ", ".join(p.name for p in found)
            resume = ("pass --resume to continue it, " if self.last.exists() else
                      "it cannot be resumed (its last.npz is gone); ")
            raise ValueError(f"{self.path} already holds a run ({names}); {resume}--overwrite to replace it, or "
                             "choose another --out")

    def write_config(self, config: dict) -> None:
        """config.json: every setting of the run (`train --config` starts the same run from it)."""
        write_text_atomically(self.config_json, json.dumps(config, indent=2) + "\n")

    def record_epoch(self, rows: list[dict], title: str, model, optimizer, meta: RunMeta, improved: bool) -> None:
        """Writes what one finished epoch changed, in an order a kill cannot break: best.npz (the
        weights, if the epoch `improved` on the best top-1), metrics.csv, curves.png, and the resume
        point last.npz (weights and optimizer) last of all. A kill before the end resumes at this same
        epoch, which rewrites the same files identically (the run is deterministic)."""
        self.writing.touch()               # until last.npz is written: this epoch's files are not a run yet
        if improved:
            save_checkpoint(self.best, model, None, meta.to_dict())
        write_metrics(self.metrics_csv, rows)
        plot_curves(rows, self.curves, title)
        save_checkpoint(self.last, model, optimizer, meta.to_dict())
        self.writing.unlink(missing_ok=True)


def refuse_run_file(path, flag: str) -> None:
    """Another command's output may not replace a training run's own file (its curves.png, ...): a run
    folder is written by `train` alone."""
    if path is None or not str(path).strip():
        return
    folder = RunFolder(Path(path).parent)
    if folder.config_json.is_file() and any(Path(path).name == f.name for f in folder.run_files()):
        raise ValueError(f"{flag} {path} is a file of the training run in {folder.path} (`train` writes it): "
                         "choose a file of another name")
