"""A training run, as every command sees it: its folder, its metadata, its model and its data.

A run folder (`runs/NAME/`) holds one run:
- `config.json`: every setting of the run (train.TrainConfig);
- `metrics.csv`: one row per epoch (METRIC_COLUMNS), with where the epoch's time went;
- `curves.png`: loss and accuracy, train against validation;
- `last.npz` (the resume point) and `best.npz`: checkpoints (formats/checkpoint.py), written
  atomically; `last.npz` is written last of all, so whatever it says was finished is on disk;
- `train.log`: what `train` printed, when a sweep ran it in a process of its own;
- `.lock`: held by the run writing the folder (one run per folder).

`RunFolder` is the only code that knows this layout (every other module asks it for paths, finished
epochs and the resume point); `RunMeta` is what a checkpoint says about its run; `load_model` turns
any weights file into a model (and its RunMeta when it has one); `data_for` finds the run's data again.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..datasets import SYNTHETIC_SIZES, DataLoader, channel_stats, load_split
from ..formats.atomic import leftover_temporary_files, write_text_atomically, written_atomically
from ..formats.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
from ..formats.tsq import is_tsq, read_tsq
from ..formats.weights import load_weights, strip_module_prefix
from ..models import get_model
from ..evaluation.plots import plot_curves
from ..datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "silent_classes", "images_per_s", "seconds", "step_seconds", "other_seconds"]
# seconds: the training pass over the data; step_seconds: the part of it inside training steps
# (forward, backward, update); other_seconds: the rest of the epoch (data waits, validation, files).


# ---------------------------------------------------------------------------- what a run is
@dataclass
class RunMeta:
    """What a training checkpoint records about its run (its `meta`, a JSON document)."""
    model: str
    classes: list[str]                 # folder names (or the synthetic shapes), in label order
    class_names: list[str]             # for display (Imagenette's "tench" for n01440764)
    mean: list[float]                  # the training set's per-channel statistics, in [0, 1]
    std: list[float]
    image_size: int
    config: dict                       # every setting of the run (train.TrainConfig as a dict)
    epoch: int = -1                    # the last finished epoch, counted from 0 (-1: none yet)
    best_top1: float = -1.0            # the best validation top-1 so far
    generators: dict = field(default_factory=dict)    # model.generator_states(): each Dropout's, by name

    @property
    def model_args(self) -> dict:
        return self.config.get("model_args", {})

    @property
    def data(self) -> str:
        return self.config["data"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def synthetic_sizes(self) -> tuple[int, int]:
        return self.config["synthetic_train"], self.config["synthetic_val"]

    @classmethod
    def from_dict(cls, meta: dict) -> "RunMeta":
        """From a checkpoint's meta (those written before RunMeta existed hold the same keys)."""
        return cls(model=meta["model"], classes=list(meta["classes"]),
                   class_names=list(meta.get("class_names") or meta["classes"]), mean=list(meta["mean"]),
                   std=list(meta["std"]), image_size=int(meta["image_size"]), config=dict(meta["config"]),
                   epoch=int(meta["epoch"]), best_top1=float(meta.get("best_top1", -1.0)),
                   generators=dict(meta.get("generators", {})))

    def to_dict(self) -> dict:
        """The checkpoint's meta (save_checkpoint adds the generators itself)."""
        return {"config": self.config, "epoch": self.epoch, "best_top1": self.best_top1, "classes": self.classes,
                "class_names": self.class_names, "mean": self.mean, "std": self.std, "model": self.model,
                "image_size": self.image_size}


def load_run(path):
    """-> (model in eval mode, RunMeta, optimizer state) of a training checkpoint."""
    model_state, optimizer_state, meta = load_checkpoint(path)
    meta = RunMeta.from_dict(meta)
    model = get_model(meta.model, num_classes=len(meta.classes), **meta.model_args)
    model.load_state_dict(model_state)
    return model.eval(), meta, optimizer_state


def load_model(path, model_name: str | None = None):
    """Any weights file -> (model in eval mode, RunMeta or None).

    A training checkpoint and a `.tsq` file say which model they hold; an `.npz` of weights or a
    PyTorch `.pth` does not, so `model_name` must (sized to the weights' class count).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if is_checkpoint(path):
        model, meta, _ = load_run(path)
        return model, meta
    if is_tsq(path):
        state, header = read_tsq(path)
        model_name, model_args = header.get("model", model_name), header.get("model_args", {})
    else:
        state, model_args = strip_module_prefix(load_weights(path)), {}
    if model_name is None:
        raise ValueError(f"{path} holds weights only: say which model they belong to (--model)")
    model = get_model(model_name, num_classes=num_classes_of(state), **model_args)
    model.load_state_dict(state)
    return model.eval(), None


def num_classes_of(state: dict) -> int:
    """The number of classes a state_dict was trained for: the rows of its last weight."""
    last = [k for k in state if k.endswith("weight")][-1]
    return int(state[last].shape[0])


def data_for(meta: RunMeta, split: str, data: str | None = None, progress: bool = True):
    """The `split` ("train" or "val") of the run's dataset (or of `data`), checked to have its classes."""
    data = data or meta.data
    dataset = load_split(data, split, meta.image_size, seed=meta.seed, synthetic_sizes=meta.synthetic_sizes,
                         progress=progress)
    if dataset.classes != meta.classes:
        raise ValueError(f"{data} has classes {dataset.classes[:5]}..., the checkpoint was trained on "
                         f"{meta.classes[:5]}...")
    return dataset


def loader_for(meta: RunMeta, dataset, batch_size: int, train: bool = False) -> DataLoader:
    """Batches of `dataset` prepared as the run prepared its own (crop size, mean, std)."""
    return DataLoader(dataset, min(batch_size, len(dataset)) if train else batch_size, meta.image_size, train,
                      meta.mean, meta.std, seed=0)


def compression_data(meta: RunMeta | None, data: str | None, finetune_epochs: int, image_size: int,
                     batch_size: int):
    """(train loader, val loader) for compressing a model, or (None, None) when there is nothing to
    fine-tune or measure. A training run's own data, crop and statistics when `meta` is given
    (fine-tuning defaults to its dataset); otherwise `data` at `image_size` with ImageNet's statistics
    (the synthetic set's own)."""
    if data is None and meta is not None and finetune_epochs:
        data = meta.data
    if not data:
        if finetune_epochs:
            raise ValueError("--finetune-epochs needs --data (the images to fine-tune and evaluate on)")
        return None, None
    if meta is None:
        config = {"data": data, "seed": 0, "synthetic_train": SYNTHETIC_SIZES[0], "synthetic_val": SYNTHETIC_SIZES[1]}
        meta = RunMeta("", [], [], [], [], image_size, config)
        train = load_split(data, "train", image_size)
        meta.classes = train.classes
        meta.mean, meta.std = channel_stats(train.images) if data == "synthetic" else (IMAGENET_MEAN, IMAGENET_STD)
    else:
        train = data_for(meta, "train", data)
    val = data_for(meta, "val", data)
    return loader_for(meta, train, batch_size, train=True), loader_for(meta, val, 100)


# ---------------------------------------------------------------------------- metrics.csv
def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


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
        self.lock = None                              # the open lock file, while this process holds the folder

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def run_files(self) -> list[Path]:
        return [self.last, self.best, self.metrics_csv, self.curves, self.config_json, self.log]

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
            raise FileNotFoundError(f"--resume: no checkpoint {self.last} to continue from")
        try:
            model_state, optimizer_state, meta = load_checkpoint(self.last)
            return ResumePoint(model_state, optimizer_state, RunMeta.from_dict(meta))
        except ValueError as error:
            raise ValueError(f"--resume: {self.last} is damaged and cannot be continued ({error})."
                             f"{self.offer_best()}") from None

    def offer_best(self) -> str:
        """How to continue from best.npz when last.npz is damaged ("" if best.npz is unreadable too)."""
        try:
            epoch = load_checkpoint(self.best, meta_only=True)[2]["epoch"]
        except (ValueError, FileNotFoundError):
            return ""
        return (f" {self.best} (epoch {epoch + 1}) is readable: to continue from it, copy it over last.npz "
                f"(cp {self.best} {self.last}) and --resume again; momentum restarts from zero.")

    def config(self) -> dict:
        """config.json: every setting of the run, as `train` saved it."""
        return json.loads(self.config_json.read_text())

    def meta(self) -> RunMeta:
        """What the resume point says about the run (its classes, settings, last epoch)."""
        return RunMeta.from_dict(load_checkpoint(self.last, meta_only=True)[2])

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
        """The files only a run that finished an epoch writes (a run killed before its first epoch
        leaves at most config.json and its log, which the same command writes again)."""
        return [p for p in (self.last, self.best, self.metrics_csv, self.curves) if p.exists()]

    def clear(self, overwrite: bool) -> None:
        """Makes the folder ready for a new run: refuses to replace a run in it unless `overwrite`,
        whichever of its files are left (a run whose last.npz was deleted still has best.npz)."""
        found = self.finished_files()
        if found and not overwrite:
            names = ", ".join(p.name for p in found)
            resume = ("pass --resume to continue it, " if self.last.exists() else
                      "it cannot be resumed (its last.npz is gone); ")
            raise ValueError(f"{self.path} already holds a run ({names}); {resume}--overwrite to replace it, or "
                             "choose another --out")
        if overwrite:
            for path in self.run_files():
                path.unlink(missing_ok=True)

    def write_config(self, config: dict) -> None:
        """config.json: every setting of the run (`train --config` starts the same run from it)."""
        write_text_atomically(self.config_json, json.dumps(config, indent=2) + "\n")

    def record_epoch(self, rows: list[dict], title: str, model, optimizer, meta: RunMeta, improved: bool) -> None:
        """Writes what one finished epoch changed, in an order a kill cannot break: best.npz (the
        weights, if the epoch `improved` on the best top-1), metrics.csv, curves.png, and the resume
        point last.npz (weights and optimizer) last of all. A kill before the end resumes at this same
        epoch, which rewrites the same files identically (the run is deterministic)."""
        if improved:
            save_checkpoint(self.best, model, None, meta.to_dict())
        write_metrics(self.metrics_csv, rows)
        plot_curves(rows, self.curves, title)
        save_checkpoint(self.last, model, optimizer, meta.to_dict())
