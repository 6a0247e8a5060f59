"""Training and evaluation: the loop, its metrics, its run folder, exact resume.

A run folder (`runs/NAME/`) holds:
- `config.json`: every setting of the run;
- `metrics.csv`: one row per epoch (epoch, lr, train_loss, train_top1, val_loss, val_top1, val_top5,
  images_per_s, seconds);
- `curves.png`: loss and accuracy, train against validation;
- `last.npz` and `best.npz`: checkpoints (see checkpoint.py), written atomically.

Exact resume: everything random is derived from the seed (the shuffle and augmentation of each
epoch and batch) or saved in the checkpoint (the dropout generators, the momentum buffers), so a
run stopped after epoch k and resumed equals a run that never stopped.

The recipe follows the paper's Caffe solver (SGD, momentum 0.9, weight decay 2e-4 on everything,
"poly" learning rate decaying linearly to zero) with a short linear warm-up, which a network
without batch normalisation needs when trained from scratch at a useful learning rate.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import nn
from .checkpoint import load_checkpoint, restore_generator_states, save_checkpoint
from .datasets import DataLoader, channel_stats, load_split
from .models import get_model
from .optim import learning_rate, make_optimizer

METRIC_COLUMNS = ["epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "silent_classes", "images_per_s", "seconds"]


# The recipe, one row per optimizer: what `train` uses when a setting is not given. All three are
# SGD's family with the paper's momentum 0.9 and poly decay after a one-epoch linear warm-up.
# lars (the default): the paper's SGD with a learning rate per layer, scaled to the layer's size --
#   lr 0.001 moves every layer 0.1% of its size per step. Trains from scratch on every seed tried.
# sgd: the paper's SGD as it is (0.01 at batch 64); from scratch it crawls on the ln(C) plateau.
# adam: fast at first, but moves conv10 1-2% of its size per step and can kill classes.
# Lesson 11 has the measurements behind each row.
RECIPES = {
    "lars": {"lr": 0.001, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "sgd": {"lr": 0.01, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "adam": {"lr": 5e-4, "weight_decay": 0.0, "warmup_epochs": 1.0},
}


@dataclass
class TrainConfig:
    model: str = "squeezenet1_1"
    model_args: dict = field(default_factory=dict)  # for squeezenet_meta: sr, pct_3x3, bypass, ...
    data: str = "synthetic"
    image_size: int = 64
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "lars"
    lr: float | None = None            # None: RECIPES[optimizer]
    momentum: float = 0.9
    weight_decay: float | None = None  # None: RECIPES[optimizer]
    schedule: str = "poly"
    warmup_epochs: float | None = None  # None: RECIPES[optimizer]
    class_margin: float = 3.0          # conv10's bias starts every class this many std above zero (0: torchvision's start)
    dtype: str = "float32"             # or "float64": the whole run in double precision (slower)
    seed: int = 0
    out: str = "runs/default"
    synthetic_train: int = 8000
    synthetic_val: int = 2000

    def __post_init__(self):
        if self.optimizer not in RECIPES:
            raise ValueError(f"optimizer must be one of {', '.join(RECIPES)}, got {self.optimizer!r}")
        for name, value in RECIPES[self.optimizer].items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        if self.epochs <= 0 or self.batch_size <= 0 or self.image_size < 32:
            raise ValueError("epochs and batch_size must be positive and image_size at least 32, got "
                             f"epochs={self.epochs}, batch_size={self.batch_size}, image_size={self.image_size}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        for name in ("lr", "weight_decay", "warmup_epochs", "class_margin", "momentum"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number, {'positive' if name == 'lr' else '>= 0'}; "
                                 f"got {value}")


def skip_image_gradient(model: nn.Module) -> None:
    """Training needs no gradient with respect to the images: the first convolution (the one that
    reads them) skips computing it."""
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    first.compute_input_grad = False


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


class NetworkDied(TrainingDiverged):
    """Every class score was zero on a whole epoch: no gradient can flow, the run cannot recover."""


def final_relu(model: nn.Module) -> nn.ReLU | None:
    """The ReLU right after the last layer with parameters, if there is one (SqueezeNet's after
    conv10); None for a network whose logits come straight out of a layer (AlexNet), whose scores
    may be negative and still win."""
    relu, seen_layer = None, False
    for module in model.modules():
        if module._parameters:
            relu, seen_layer = None, True
        elif isinstance(module, nn.ReLU) and seen_layer and relu is None:
            relu = module
    return relu


def silent_classes(max_scores: np.ndarray) -> np.ndarray:
    """Indices of the classes whose score was never above zero.

    max_scores: (C,) the largest logit each class reached over an epoch. SqueezeNet's logits come
    out of a ReLU (conv10 -> ReLU -> average pool): a class whose score is 0 on every image has a
    negative conv10 output everywhere, so its gradient is zero and it cannot learn again.
    """
    return np.flatnonzero(~(max_scores > 0))


def liveness_message(silent: np.ndarray, names: list[str], epoch: int, images: int, loss: float) -> str:
    """What a user should read when classes (or the whole network) went silent in an epoch."""
    num_classes = len(names)
    if len(silent) == num_classes:
        return (f"the network is dead: in epoch {epoch}, every class score was exactly 0 on all {images} "
                f"training images (train loss {loss:.5f}; ln({num_classes}) = {math.log(num_classes):.5f}). "
                "conv10's outputs are negative everywhere before its ReLU, so every gradient is zero and "
                "no step can revive it. Likely cause: steps too large for conv10 early in training. Try a "
                "lower --lr, a longer --warmup-epochs, or the default optimizer (lars) if you changed it.")
    listed = ", ".join(names[k] for k in silent[:10]) + (", ..." if len(silent) > 10 else "")
    return (f"warning: in epoch {epoch}, {len(silent)} of {num_classes} classes never scored above 0 on any of "
            f"{images} training images: {listed}. Their conv10 outputs are negative everywhere, so they get "
            "no gradient and will likely never be predicted (dead classes). Likely cause: steps too large "
            "for conv10; try a lower --lr or a longer --warmup-epochs.")


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among the k largest logits."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def evaluate(model: nn.Module, loader: DataLoader, num_classes: int, progress: bool = False) -> dict:
    """Loss, top-1, top-5, the confusion matrix (rows: true class, columns: predicted), each class's
    recall (the fraction of its images predicted as it) and the classes that never scored above zero."""
    model.eval()
    loss_fn = nn.SoftmaxCrossEntropy()
    total_loss, top1, top5, n = 0.0, 0, 0, 0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    max_scores = np.full(num_classes, -np.inf)
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.float32      # the images in the model's precision
    for x, y in tqdm(loader.epoch(0), total=len(loader), desc="evaluating", disable=not progress, leave=False):
        logits = model(x.astype(dtype, copy=False))
        total_loss += loss_fn(logits, y) * len(y)
        top1 += topk_correct(logits, y, 1)
        top5 += topk_correct(logits, y, 5)
        np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
        max_scores = np.maximum(max_scores, logits.max(axis=0))
        n += len(y)
    recall = confusion.diagonal() / np.maximum(1, confusion.sum(axis=1))
    silent = silent_classes(max_scores) if final_relu(model) is not None else np.array([], dtype=np.int64)
    return {"loss": total_loss / n, "top1": top1 / n, "top5": top5 / n, "n": n, "confusion": confusion,
            "recall": recall, "silent": silent}


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def format_metric(column: str, value) -> str:
    """A metrics.csv cell: epochs and counts as integers, the rest to 6 digits, blank if unknown
    (a column a run written by an older version did not have)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(int(value)) if column in ("epoch", "silent_classes") else f"{value:.6g}"


def write_metrics(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRIC_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: format_metric(k, row.get(k)) for k in METRIC_COLUMNS})
    tmp.replace(path)


def plot_curves(rows: list[dict], path: Path, title: str) -> None:
    """curves.png: loss (train, val) and accuracy (train top-1, val top-1, val top-5) per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", label="train")
    ax_loss.plot(epochs, [r["val_loss"] for r in rows], "s-", label="val")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("cross-entropy loss"), ax_loss.legend()
    ax_acc.plot(epochs, [100 * r["train_top1"] for r in rows], "o-", label="train top-1")
    ax_acc.plot(epochs, [100 * r["val_top1"] for r in rows], "s-", label="val top-1")
    ax_acc.plot(epochs, [100 * r["val_top5"] for r in rows], "^--", label="val top-5", alpha=0.6)
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("accuracy (%)"), ax_acc.set_ylim(0, 100), ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(classes)
    fig, ax = plt.subplots(figsize=(min(12, 2 + 0.6 * k), min(11, 1.5 + 0.55 * k)))
    rates = confusion / np.maximum(1, confusion.sum(axis=1, keepdims=True))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    if k <= 30:
        ax.set_xticks(range(k), [c[:14] for c in classes], rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(k), [c[:14] for c in classes], fontsize=8)
        for i in range(k):
            for j in range(k):
                if confusion[i, j]:
                    ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted"), ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------- the run folder
RUN_FILES = ("last.npz", "best.npz", "metrics.csv", "curves.png", "config.json")
RESUMABLE_CHANGES = ("epochs", "out")   # what --resume may change; everything else must match the run


def claim_run_folder(out: Path):
    """Creates `out` if needed, checks it can be written, and takes its lock for the life of the run.

    The lock is an OS file lock (flock) on `out/.lock`, which also holds the owner's PID for the
    message: a second run into the same folder is refused at once, naming the holder; a run that was
    killed holds no lock any more (the OS drops it with the process), so its folder is taken over.
    -> the open lock file (closing it releases the lock).
    """
    import fcntl

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
    for orphan in list(out.glob("*.tmp")) + list(out.glob("*.tmp.png")):   # left by a run killed mid-write
        orphan.unlink(missing_ok=True)
    return lock


def resume_changes(given: TrainConfig, saved: dict, explicit: set[str] | None) -> list[str]:
    """The settings that differ between a --resume request and the run it continues.

    explicit: the settings the user actually gave (None: all of `given`'s, as from Python)."""
    changes = []
    for f in fields(TrainConfig):
        if f.name in RESUMABLE_CHANGES or f.name not in saved or (explicit is not None and f.name not in explicit):
            continue
        if getattr(given, f.name) != saved[f.name]:
            changes.append(f"--{f.name.replace('_', '-')} {getattr(given, f.name)} (the run has {saved[f.name]})")
    return changes


class Trainer:
    """Builds data, model and optimiser from a TrainConfig and runs (or resumes) the training.

    A run folder holds one run: the Trainer takes the folder's lock before it reads or deletes
    anything in it and keeps it until `run` ends (or `close`).
    """

    def __init__(self, config: TrainConfig, resume: bool = False, progress: bool = True, overwrite: bool = False,
                 claim_folder: bool = True, explicit: set[str] | None = None):
        config.validate()
        self.config, self.progress = config, progress
        self.out = Path(config.out)
        if resume and overwrite:
            raise ValueError("--resume continues a run and --overwrite starts it afresh: choose one")
        self.lock = claim_run_folder(self.out) if claim_folder else None
        try:
            self._setup(resume, overwrite, explicit)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Releases the run folder's lock."""
        if self.lock is not None:
            self.lock.close()
            self.lock = None

    def _setup(self, resume: bool, overwrite: bool, explicit):
        config, progress = self.config, self.progress
        last = self.out / "last.npz"
        if not resume and last.exists():
            if not overwrite:
                raise ValueError(f"{self.out} already holds a run; pass --resume to continue it, --overwrite to "
                                 "replace it, or choose another --out")
            for name in RUN_FILES:
                (self.out / name).unlink(missing_ok=True)
        checkpoint = None
        if resume:
            checkpoint = self.resume_point(last)
            saved = checkpoint[2]["config"]
            changes = resume_changes(config, saved, explicit)
            if changes:
                raise ValueError(f"--resume continues {self.out} as it was started; these settings differ: "
                                 f"{'; '.join(changes)}. Only --epochs may grow. Drop them, or start a new run "
                                 "with another --out")
            if config.epochs < saved["epochs"]:
                raise ValueError(f"--resume: --epochs {config.epochs} is fewer than the run's {saved['epochs']}; "
                                 "only --epochs may grow")
            if config.epochs > saved["epochs"] and progress:
                print(f"resuming {self.out} for {config.epochs} epochs instead of {saved['epochs']}: the "
                      "learning-rate schedule is recomputed for the new length from here on", flush=True)
            saved = dict(saved, epochs=config.epochs, out=config.out)
            self.config = config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
            config.validate()

        self.train_set = load_split(config.data, "train", config.image_size, seed=config.seed,
                                    synthetic_sizes=(config.synthetic_train, config.synthetic_val), progress=progress)
        self.val_set = load_split(config.data, "val", config.image_size, seed=config.seed,
                                  synthetic_sizes=(config.synthetic_train, config.synthetic_val), progress=progress)
        if self.val_set.classes != self.train_set.classes:
            raise ValueError("the train and val splits have different classes")
        self.classes = self.train_set.classes
        self.class_names = self.train_set.display_names or self.classes
        self.mean, self.std = channel_stats(self.train_set.images, seed=config.seed)
        self.train_loader = DataLoader(self.train_set, config.batch_size, config.image_size, True,
                                       self.mean, self.std, seed=config.seed)
        self.val_loader = DataLoader(self.val_set, config.batch_size, config.image_size, False, self.mean, self.std)
        self.model = get_model(config.model, num_classes=len(self.classes), seed=config.seed, **config.model_args)
        self.model.to(np.dtype(config.dtype))
        self.scores_pass_a_relu = final_relu(self.model) is not None     # where a class can die (lesson 11)
        skip_image_gradient(self.model)
        if config.class_margin and hasattr(self.model, "start_classes_alive") and checkpoint is None:
            first_images, _ = next(self.train_loader.batches(0))
            self.model.start_classes_alive(first_images.astype(config.dtype), config.class_margin)
        self.optimizer = make_optimizer(config.optimizer, self.model, config.lr, config.momentum,
                                        config.weight_decay)
        self.start_epoch, self.best_top1 = 0, -1.0
        self.rows = []
        if checkpoint is not None:
            model_state, optim_state, meta = checkpoint
            self.model.load_state_dict(model_state)
            if optim_state:
                self.optimizer.load_state_dict(optim_state)
            elif progress:
                print(f"{last} holds no optimizer state (a copy of best.npz?): momentum starts again from zero",
                      file=sys.stderr)
            restore_generator_states(self.model, meta["generators"])
            self.start_epoch, self.best_top1 = meta["epoch"] + 1, meta["best_top1"]
            self.rows = [r for r in read_metrics(self.out / "metrics.csv") if r["epoch"] <= meta["epoch"] + 1]

    def resume_point(self, last: Path):
        """(model state, optimizer state, meta) of last.npz, or an error that says what to do."""
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint {last} to continue from")
        try:
            return load_checkpoint(last)
        except ValueError as error:
            best = self.out / "best.npz"
            offer = ""
            try:
                epoch = load_checkpoint(best)[2]["epoch"]
                offer = (f" {best} (epoch {epoch + 1}) is readable: to continue from it, copy it over last.npz "
                         f"(cp {best} {last}) and --resume again; momentum restarts from zero.")
            except (ValueError, FileNotFoundError):
                pass
            raise ValueError(f"--resume: {last} is damaged and cannot be continued ({error}).{offer}") from None

    @property
    def total_steps(self) -> int:
        return self.config.epochs * len(self.train_loader)

    def meta(self, epoch: int) -> dict:
        return {"config": asdict(self.config), "epoch": epoch, "best_top1": self.best_top1,
                "classes": self.classes, "class_names": self.class_names,
                "mean": self.mean, "std": self.std, "model": self.config.model,
                "image_size": self.config.image_size}

    def train_epoch(self, epoch: int) -> dict:
        cfg = self.config
        model, optimizer, loss_fn = self.model.train(), self.optimizer, nn.SoftmaxCrossEntropy()
        warmup = int(round(cfg.warmup_epochs * len(self.train_loader)))
        total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        max_scores = np.full(len(self.classes), -np.inf)   # per class, over the epoch: for the liveness check
        bar = tqdm(self.train_loader.epoch(epoch), total=len(self.train_loader), disable=not self.progress,
                   desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
        for b, (x, y) in enumerate(bar):
            step = epoch * len(self.train_loader) + b
            optimizer.lr = learning_rate(step, self.total_steps, cfg.lr, warmup, cfg.schedule)
            optimizer.zero_grad()
            logits = model(x.astype(cfg.dtype, copy=False))
            loss = loss_fn(logits, y)
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"the loss became {loss} at epoch {epoch + 1}, batch {b + 1} (learning rate {optimizer.lr:.3g}); "
                    f"the run stopped and {self.out / 'last.npz'} still holds the last good epoch. "
                    "Try a lower --lr or a longer --warmup-epochs.")
            model.backward(loss_fn.backward())
            optimizer.step()
            total_loss += loss * len(y)
            correct += topk_correct(logits, y, 1)
            max_scores = np.maximum(max_scores, logits.max(axis=0))
            seen += len(y)
            elapsed = time.perf_counter() - start
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{100 * correct / seen:.1f}%",
                            img_s=f"{seen / elapsed:.0f}", lr=f"{optimizer.lr:.3g}")
        seconds = time.perf_counter() - start
        silent = silent_classes(max_scores) if self.scores_pass_a_relu else np.array([], dtype=np.int64)
        return {"lr": optimizer.lr, "train_loss": total_loss / seen, "train_top1": correct / seen,
                "images_per_s": seen / seconds, "seconds": seconds, "images": seen, "silent_classes": silent}

    def run(self) -> list[dict]:
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> list[dict]:
        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
        if self.progress and self.start_epoch == 0:
            print(f"{cfg.model}: {self.model.num_parameters():,} parameters; {len(self.train_set)} training and "
                  f"{len(self.val_set)} validation images of {len(self.classes)} classes at {cfg.image_size}px; "
                  f"{cfg.epochs} epochs of {len(self.train_loader)} batches -> {self.out}")
        for epoch in range(self.start_epoch, cfg.epochs):
            row = {"epoch": epoch + 1, **self.train_epoch(epoch)}
            silent, images = row.pop("silent_classes"), row.pop("images")
            row["silent_classes"] = len(silent)
            val = evaluate(self.model, self.val_loader, len(self.classes))
            row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
            self.rows.append(row)
            improved = val["top1"] > self.best_top1
            self.best_top1 = max(self.best_top1, val["top1"])
            # The resume point goes last: a kill anywhere before it resumes at this same epoch, which
            # rewrites best.npz, metrics.csv and curves.png identically (the run is deterministic).
            if improved:
                save_checkpoint(self.out / "best.npz", self.model, None, self.meta(epoch))
            write_metrics(self.out / "metrics.csv", self.rows)
            plot_curves(self.rows, self.out / "curves.png", f"{cfg.model} on {cfg.data} at {cfg.image_size}px")
            save_checkpoint(self.out / "last.npz", self.model, self.optimizer, self.meta(epoch))
            if self.progress:
                print(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {row['train_loss']:.3f} top-1 "
                      f"{100 * row['train_top1']:5.1f}%  |  val loss {val['loss']:.3f} top-1 {100 * val['top1']:5.1f}% "
                      f"top-5 {100 * val['top5']:5.1f}%  |  {row['images_per_s']:.0f} img/s, {row['seconds']:.0f}s"
                      + ("  *best*" if improved else ""), flush=True)
            if len(silent):
                message = liveness_message(silent, self.class_names, epoch + 1, images, row["train_loss"])
                if len(silent) == len(self.classes):
                    raise NetworkDied(message + f" The run stopped; {self.out / 'last.npz'} holds this epoch.")
                print(message, file=sys.stderr, flush=True)
        return self.rows


def model_from_checkpoint(path):
    """-> (model in eval mode, meta) from a training checkpoint."""
    model_state, _, meta = load_checkpoint(path)
    model = get_model(meta["model"], num_classes=len(meta["classes"]), **meta["config"].get("model_args", {}))
    model.load_state_dict(model_state)
    return model.eval(), meta
