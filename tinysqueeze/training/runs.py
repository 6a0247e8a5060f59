"""A training run, as every command sees it: its folder, its metadata, its model and its data.

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

from ..datasets import MAX_CLASSES, MAX_IMAGE_SIZE, SYNTHETIC_SIZES, DataLoader, channel_stats, load_split
from ..formats.atomic import leftover_temporary_files, write_text_atomically, written_atomically
from ..formats.checkpoint import is_checkpoint, load_checkpoint, save_checkpoint
from ..formats.tsq import is_tsq, read_tsq
from ..formats.weights import load_weights, strip_module_prefix
from ..models import get_model
from ..models.squeezenet import MIN_IMAGE_SIZE
from ..evaluation.plots import plot_curves
from ..datasets.transforms import IMAGENET_MEAN, IMAGENET_STD

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "silent_classes", "images_per_s", "seconds", "step_seconds", "other_seconds", "allreduce_seconds"]
# seconds: the training pass over the data; step_seconds: the part of it inside training steps
# (forward, backward, update); other_seconds: the rest of the epoch (data waits, validation, files);
# allreduce_seconds: the part of the steps spent summing gradients among processes (0 for one process).


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
    def from_dict(cls, meta: dict, path="the checkpoint") -> "RunMeta":
        """From a checkpoint's meta (those written before RunMeta existed hold the same keys), each key
        checked for its kind and range first: a ValueError names `path`, the key and what it should be."""
        check_run_meta(meta, path)
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


def check_run_meta(meta, path) -> None:
    """Refuses a checkpoint meta whose keys are missing or of the wrong kind, naming the key: each would
    otherwise be a traceback (KeyError, TypeError) or, worse, an allocation sized by it (an image_size of
    10^9). Bounds: image_size from MIN_IMAGE_SIZE to MAX_IMAGE_SIZE, 2 to MAX_CLASSES classes."""
    def wrong(key, value, should):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return ValueError(f"{path} is damaged or not a tinysqueeze checkpoint: its meta's {key} is {shown}, "
                          f"{should}")

    def whole(value):
        return type(value) is int

    if not isinstance(meta, dict):
        raise wrong("top level", meta, "not a JSON object")
    required = ("model", "classes", "mean", "std", "image_size", "config", "epoch")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ValueError(f"{path} is damaged or not a tinysqueeze checkpoint: its meta lacks {', '.join(missing)}")
    if not isinstance(meta["model"], str) or not meta["model"]:
        raise wrong("model", meta["model"], "not a model name")
    classes = meta["classes"]
    if not (isinstance(classes, list) and 2 <= len(classes) <= MAX_CLASSES and all(isinstance(c, str) for c in classes)):
        raise wrong("classes", classes, f"not a list of 2 to {MAX_CLASSES:,} class names")
    if len(set(classes)) != len(classes):
        raise wrong("classes", classes, "a list naming a class twice (every prediction would be ambiguous)")
    names = meta.get("class_names")
    if names is not None and not (isinstance(names, list) and len(names) == len(classes)
                                  and all(isinstance(c, str) for c in names)):
        raise wrong("class_names", names, f"not a list of {len(classes)} names (one per class)")
    for key in ("mean", "std"):
        if not (isinstance(meta[key], list) and len(meta[key]) == 3 and all(
                type(v) in (int, float) and math.isfinite(v) for v in meta[key])):
            raise wrong(key, meta[key], "not 3 finite numbers")
    if not (whole(meta["image_size"]) and MIN_IMAGE_SIZE <= meta["image_size"] <= MAX_IMAGE_SIZE):
        raise wrong("image_size", meta["image_size"], f"not a whole number of pixels from {MIN_IMAGE_SIZE} to "
                                                      f"{MAX_IMAGE_SIZE}")
    if not whole(meta["epoch"]):
        raise wrong("epoch", meta["epoch"], "not a whole number")
    best = meta.get("best_top1", -1.0)
    if type(best) not in (int, float) or not math.isfinite(best):
        raise wrong("best_top1", best, "not a number")
    generators = meta.get("generators", {})
    if not (isinstance(generators, dict) and all(isinstance(g, dict) for g in generators.values())):
        raise wrong("generators", generators, "not an object of generator states by layer name")
    config = meta["config"]
    if not isinstance(config, dict):
        raise wrong("config", config, "not a JSON object of the run's settings")
    kinds = {"data": (str,), "seed": (int,), "epochs": (int,), "synthetic_train": (int,), "synthetic_val": (int,)}
    for key, kind in kinds.items():
        if key not in config:
            raise ValueError(f"{path} is damaged or not a tinysqueeze checkpoint: its meta's config lacks {key}")
        if not isinstance(config[key], kind) or isinstance(config[key], bool):
            raise wrong(f"config {key}", config[key], f"not a {kind[0].__name__}")
    if not isinstance(config.get("model_args", {}), dict):
        raise wrong("config model_args", config["model_args"], "not a JSON object of model arguments")


def read_checkpoint(path, meta_only: bool = False) -> tuple[dict, dict, RunMeta]:
    """load_checkpoint, its meta checked into a RunMeta (ValueError naming the file for any damage, a
    meta nested too deeply to read included)."""
    try:
        model_state, optimizer_state, meta = load_checkpoint(path, meta_only=meta_only)
    except RecursionError:
        raise ValueError(f"{path} is damaged or not a checkpoint: its meta is nested too deeply to read") from None
    return model_state, optimizer_state, RunMeta.from_dict(meta, path)


def load_run(path):
    """-> (model in eval mode, RunMeta, optimizer state) of a training checkpoint."""
    model_state, optimizer_state, meta = read_checkpoint(path)
    if "num_classes" in meta.model_args:
        raise ValueError(f"{path} is damaged: its meta's config model_args set num_classes (the classes do)")
    try:
        model = get_model(meta.model, num_classes=len(meta.classes), **meta.model_args)
        model.load_state_dict(model_state)
    except (ValueError, TypeError) as error:
        args = repr(meta.model_args)
        raise ValueError(f"{path}: its meta's model {meta.model!r} with model_args "
                         f"{args if len(args) <= 60 else args[:57] + '...'} and its weights do not make a model "
                         f"({error})") from None
    return model.eval(), meta, optimizer_state


def load_model(path, model_name: str | None = None, default_model: str | None = None):
    """Any weights file -> (model in eval mode, RunMeta or None).

    A training checkpoint and a `.tsq` file say which model they hold (a `model_name` that names
    another is refused, never silently ignored); an `.npz` of weights or a PyTorch `.pth` does not, so
    `model_name` must, or else `default_model` (sized to the weights' class count).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if is_checkpoint(path):
        model, meta, _ = load_run(path)
        check_named_model(path, meta.model, model_name)
        return model, meta
    if is_tsq(path):
        state, header = read_tsq(path)
        check_named_model(path, header.get("model"), model_name)
        model_name, model_args = header.get("model", model_name), header.get("model_args", {})
        declared = header.get("num_classes")
    else:
        state, model_args, declared = strip_module_prefix(load_weights(path)), {}, None
    model_name = model_name or default_model
    if model_name is None:
        raise ValueError(f"{path} holds weights only: say which model they belong to (--model)")
    num_classes = num_classes_of(state, path)
    if declared is not None and declared != num_classes:
        raise ValueError(f"{path}: its header says {declared!r} classes, its last layer holds {num_classes}: the file "
                         "is damaged")
    if num_classes > MAX_CLASSES_UNCHECKED:   # the class layer's shape is known before the model is built
        last = [k for k in state if k.endswith("weight")][-1]
        expected = get_model(model_name, num_classes=2, **model_args).state_dict().get(last)
        if expected is None:
            raise ValueError(f"{path}: {model_name} has no weight {last}: these are not its weights")
        if state[last].shape != (num_classes, *expected.shape[1:]):
            raise ValueError(f"{path}: its last weight {last} of shape {tuple(state[last].shape)} says {num_classes} "
                             f"classes but does not hold them ({model_name} needs {(num_classes, *expected.shape[1:])}): "
                             "refusing to build a model its weights cannot fill")
    model = get_model(model_name, num_classes=num_classes, **check_model_args(model_args, path))
    model.load_state_dict(state)
    return model.eval(), None


def check_model_args(model_args: dict, path) -> dict:
    """A file's model arguments may not set what the weights themselves say (the class count) or what
    only a fresh model takes (its seed, image_grad)."""
    reserved = sorted(set(model_args) & {"num_classes", "seed", "image_grad"})
    if reserved:
        raise ValueError(f"{path}: its model arguments set {', '.join(reserved)}, which the weights decide: "
                         "the file is damaged or was not written by tinysqueeze")
    return model_args


def check_named_model(path, holds: str | None, named: str | None) -> None:
    """Refuse a model named by the user (--model) that is not the one a self-describing file holds."""
    if named is not None and holds is not None and named != holds:
        raise ValueError(f"{path} holds {holds}, not {named}: leave out --model (the file says which model it is)")


# A model of more classes is built only after its class layer's shape is checked against the weights, so a
# small file cannot make it allocate what its weights do not fill (at most 41 million weights more than the
# same model of 2 classes: AlexNet's last layer of 4096 inputs).
MAX_CLASSES_UNCHECKED = 10_000


def num_classes_of(state: dict, path="the weights") -> int:
    """The number of classes a state_dict was trained for: the rows of its last weight."""
    weights = [k for k in state if k.endswith("weight")]
    if not weights or len(getattr(state[weights[-1]], "shape", ())) < 1:
        raise ValueError(f"{path} has no weight array (a key ending in 'weight', with rows) to count its classes "
                         "by: not the weights of a model")
    return int(state[weights[-1]].shape[0])


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
