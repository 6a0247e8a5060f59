"""Training: the settings of a run, the loop, and the check that the network is still alive.

    run = prepare(TrainConfig(data="synthetic", epochs=15, out="runs/demo"))   # data, model, optimizer
    rows = fit(run)                                                             # one row per epoch

Read it top to bottom: `TrainConfig` (every setting and its default, the one place they live:
the command line is built from its fields), `prepare` (what a run needs, or what a resumed run
had), `fit` (the epochs: train, validate, record), `train_epoch` (the steps: each one `train_step`
of optim/step.py, timed and counted). The run folder is runs.py's `RunFolder`, the only code that
knows its files.

The recipe follows the paper's Caffe solver (SGD, momentum 0.9, weight decay 2e-4, "poly" learning
rate decaying linearly to zero after a short warm-up), with a learning rate scaled per layer
(LARS) and every class started alive (lesson 11 has the measurements).

Exact resume: everything random is derived from the seed (the shuffle and augmentation of each
epoch and batch) or saved in the checkpoint (the dropout generators, the momentum buffers), so a
run stopped after epoch k and resumed equals a run that never stopped.
"""
from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import nn
from ..datasets import MAX_IMAGE_SIZE, SYNTHETIC_SIZES, DataLoader, channel_stats, load_split
from ..distributed.world import GradientSum, World
from ..evaluation.evaluate import evaluate, silent_classes_of, topk_correct
from ..models import get_model
from ..models.squeezenet import MIN_IMAGE_SIZE
from ..nn.fast.blas_threads import blas_threads_for_training
from ..optim import NonFiniteLoss, learning_rate, make_optimizer, train_step, train_step_in_slices
from .interrupts import stop_if_interrupted
from .runs import ResumePoint, RunFolder, RunMeta

# The recipe, one row per optimizer: what `train` uses when a setting is not given. Each uses the
# paper's momentum 0.9 and poly decay, after a one-epoch linear warm-up (which the paper did not use).
# lars (the default; You, Gitman and Ginsburg 2017, not the paper's): SGD with momentum whose learning
#   rate is scaled per layer to the layer's size -- lr 0.001 moves every layer 0.1% of its size per
#   step. Trains from scratch on every seed tried.
# sgd: the paper's plain SGD (0.01 at batch 64); from scratch it crawls on the ln(C) plateau.
# adam: fast at first, but moves conv10 1-2% of its size per step and can kill classes.
# Lesson 11 has the measurements behind each row.
RECIPES = {
    "lars": {"lr": 0.001, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "sgd": {"lr": 0.01, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "adam": {"lr": 5e-4, "weight_decay": 0.0, "warmup_epochs": 1.0},
}


# The synthetic set is drawn in memory: a million images (ImageNet's size) at 64 px are 16 GB.
MAX_SYNTHETIC = 1_000_000


def setting(default, help: str, **options):
    """A TrainConfig field with the help text (and argparse options) of its command-line flag."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"help": help, **options})
    return field(default=default, metadata={"help": help, **options})


@dataclass
class TrainConfig:
    """Every setting of a training run. `python -m tinysqueeze train --help` lists these fields as flags."""
    model: str = setting("squeezenet1_1", "a name from `models`")
    model_args: dict = setting({}, "JSON object of model arguments, for squeezenet_meta: "
                                   "'{\"sr\": 0.25, \"bypass\": \"simple\"}'")
    data: str = setting("synthetic", "'synthetic' (no download) or a dataset folder")
    image_size: int = setting(64, f"training crop in pixels, at most {MAX_IMAGE_SIZE}", positive=True,
                              maximum=MAX_IMAGE_SIZE)
    epochs: int = setting(10, "epochs to train", positive=True)
    batch_size: int = setting(64, "images per step", positive=True)
    optimizer: str = setting("lars", "lars (SGD with momentum and a learning rate per layer scaled to its size; "
                                     "You et al. 2017), sgd (the paper's plain SGD, one rate for all) or adam",
                             choices=list(RECIPES))
    lr: float | None = setting(None, "base learning rate (default: the optimizer's, RECIPES)")
    momentum: float = setting(0.9, "SGD momentum (Adam's beta1)")
    weight_decay: float | None = setting(None, "L2 weight decay (default: the optimizer's)")
    schedule: str = setting("poly", "learning-rate decay after warm-up (poly: linear to zero, the paper's)",
                            choices=["poly", "cosine", "constant"])
    warmup_epochs: float | None = setting(None, "linear warm-up length in epochs (default: the optimizer's)")
    class_margin: float = setting(3.0, "start conv10's bias so every class scores this many standard "
                                       "deviations above zero on the first batch (0 keeps torchvision's start)")
    dtype: str = setting("float32", "precision of the whole run (float64 is slower, for checking that "
                                    "rounding decides nothing)", choices=["float32", "float64"])
    seed: int = setting(0, "seed of everything random: weights, shuffle, crops, dropout")
    out: str = setting("runs/default", "run folder")
    synthetic_train: int = setting(SYNTHETIC_SIZES[0], f"synthetic training images, at most {MAX_SYNTHETIC:,}",
                                   positive=True, maximum=MAX_SYNTHETIC)
    synthetic_val: int = setting(SYNTHETIC_SIZES[1], f"synthetic validation images, at most {MAX_SYNTHETIC:,}",
                                 positive=True, maximum=MAX_SYNTHETIC)
    layers: str = setting("", "a folder of your own layers, the course's assignments (e.g. assignments): "
                              "train a network made of them; each file must pass `check` first")
    accumulate: int = setting(1, "compute each batch in this many slices, one after another (gradient "
                                 "accumulation: the same step in less memory)", positive=True)
    allreduce: str = setting("mpi", "under mpiexec: how the processes sum their gradients, mpi (MPI's own "
                                    "Allreduce) or ring (distributed/ring.py, written from first principles)",
                             choices=["mpi", "ring"])

    def __post_init__(self):
        if self.optimizer not in RECIPES:
            raise ValueError(f"optimizer must be one of {', '.join(RECIPES)}, got {self.optimizer!r}")
        for name, value in RECIPES[self.optimizer].items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        if not str(self.out).strip():
            raise ValueError("--out is empty: name the run's folder (e.g. runs/mine)")
        reserved = sorted(set(self.model_args) & {"num_classes", "seed", "image_grad"}) if isinstance(
            self.model_args, dict) else []
        if reserved:
            raise ValueError(f"--model-args may not set {', '.join(reserved)}: those have flags of their own "
                             "(the classes come from the data; --seed)")
        if self.epochs <= 0 or self.batch_size <= 0 or not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"epochs and batch_size must be positive and image_size from {MIN_IMAGE_SIZE} to "
                             f"{MAX_IMAGE_SIZE}, got "
                             f"epochs={self.epochs}, batch_size={self.batch_size}, image_size={self.image_size}")
        for name in ("synthetic_train", "synthetic_val"):
            if not 0 < getattr(self, name) <= MAX_SYNTHETIC:
                raise ValueError(f"{name} must be from 1 to {MAX_SYNTHETIC:,}, got {getattr(self, name)}")
        if self.allreduce not in ("mpi", "ring"):
            raise ValueError(f"allreduce must be mpi or ring, got {self.allreduce!r}")
        if not 1 <= self.accumulate <= self.batch_size:
            raise ValueError(f"accumulate must be from 1 to the batch size ({self.batch_size}), got {self.accumulate}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs:g}) is longer than the run ({self.epochs} epochs): "
                             "the learning rate would never reach its base value")
        for name in ("lr", "weight_decay", "warmup_epochs", "class_margin", "momentum"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number, {'positive' if name == 'lr' else '>= 0'}; "
                                 f"got {value}")

    def to_argv(self) -> list[str]:
        """The `train` flags that give exactly this config (a sweep's job lines for a cluster): every
        setting, defaults included, so that a saved line means the same run if a default changes."""
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            argv += [f"--{f.name.replace('_', '-')}", json.dumps(value) if isinstance(value, dict) else str(value)]
        return argv

    @classmethod
    def from_json(cls, path, **changes) -> "TrainConfig":
        """The config saved in `path` (a run's config.json, or one written by hand: fields left out keep
        their defaults), with `changes` applied. Refuses unknown settings, naming them."""
        path = Path(path)
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"--config: no file {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"--config: {path} is not a JSON file of settings ({error})") from None
        if not isinstance(saved, dict):
            raise ValueError(f"--config: {path} must hold a JSON object of settings, like a run's config.json")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(f"--config: {path} has unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kinds = {f.name: f.type for f in fields(cls)}
        wrong = [f"{k}={v!r}"[:80] for k, v in saved.items() if not of_its_type(v, kinds[k])]
        if wrong:
            raise ValueError(f"--config: {path} has settings of the wrong kind: {', '.join(wrong)} (each as in a "
                             "run's config.json: numbers, text, or an object for model_args)")
        if changes.get("optimizer", saved.get("optimizer")) != saved.get("optimizer"):
            for name in RECIPES.get(changes["optimizer"], {}):   # another optimizer brings its own recipe, unless typed
                saved.pop(name, None)
        return cls(**dict(saved, **changes))


# What --resume may change; everything else must match the run. How a batch is computed (in slices, by how
# many processes, summed how) changes its step only by rounding.
RESUMABLE_CHANGES = ("epochs", "out", "accumulate", "allreduce")


def of_its_type(value, annotation: str) -> bool:
    """Is a saved setting of its field's kind ("int", "float", "float | None", "str", "dict")?"""
    kinds = {"int": (int,), "float": (int, float), "float | None": (int, float, type(None)), "str": (str,),
             "dict": (dict,)}[str(annotation)]
    return isinstance(value, kinds) and not isinstance(value, bool)


def continued_config(given: TrainConfig, saved: dict, explicit: set[str] | None, progress: bool,
                     where="its checkpoint") -> TrainConfig:
    """The settings of a resumed run: the saved ones, with --epochs grown if asked. Refuses any other
    change, naming it. explicit: the settings the user typed (None: all of `given`'s, as from Python)."""
    changes = [f"--{f.name.replace('_', '-')} {getattr(given, f.name)} (the run has {saved[f.name]})"
               for f in fields(TrainConfig)
               if f.name not in RESUMABLE_CHANGES and f.name in saved and (explicit is None or f.name in explicit)
               and getattr(given, f.name) != saved[f.name]]
    wrong = [f"{f.name}={saved[f.name]!r}"[:80] for f in fields(TrainConfig) if f.name in saved
             and not of_its_type(saved[f.name], f.type)]
    if wrong:
        raise ValueError(f"--resume: the settings saved in {where} are damaged ({', '.join(wrong)}: not of their "
                         f"kind); it cannot be continued")
    if changes:
        raise ValueError(f"--resume continues {given.out} as it was started; these settings differ: "
                         f"{'; '.join(changes)}. Only --epochs may grow. Drop them, or start a new run "
                         "with another --out")
    if given.epochs < saved["epochs"]:
        raise ValueError(f"--resume: --epochs {given.epochs} is fewer than the run's {saved['epochs']}; "
                         "only --epochs may grow")
    if given.epochs > saved["epochs"] and progress:
        print(f"resuming {given.out} for {given.epochs} epochs instead of {saved['epochs']}: the "
              "learning-rate schedule is recomputed for the new length from here on", flush=True)
    saved = dict(saved, epochs=given.epochs, out=given.out)
    for name in ("accumulate", "allreduce"):                 # how a batch is computed: changed when asked
        if explicit is None or name in explicit:
            saved[name] = getattr(given, name)
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    config.validate()
    return config


# ---------------------------------------------------------------------------- what a run needs
@dataclass
class Run:
    config: TrainConfig
    meta: RunMeta                     # what the checkpoints record: classes, mean/std, epoch, best top-1
    model: nn.Module
    optimizer: object
    train_loader: DataLoader
    val_loader: DataLoader
    rows: list[dict]                  # metrics.csv so far (a resumed run's earlier epochs)
    folder: RunFolder                 # where it is written (locked by prepare, released by close())
    progress: bool = True
    loss_fn: nn.Module = field(default_factory=nn.SoftmaxCrossEntropy)
    world: World = field(default_factory=World)  # the processes training it together (distributed/)

    @property
    def out(self) -> Path:
        return self.folder.path

    def close(self) -> None:
        self.folder.release()


def prepare(config: TrainConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
            explicit: set[str] | None = None, claim_folder: bool = True, world: World | None = None) -> Run:
    """Data, model and optimizer of the run `config` describes, or of the run in config.out to
    continue (resume=True). Takes the run folder's lock first (claim_folder=False: no folder at all,
    as `diagnose` wants) and holds it until the run is closed.

    world: the processes training together (distributed/world.py; one by default). Rank 0 alone takes
    the folder, reads a resumed run and writes; it hands its settings and state to the others, and
    all check they agree before the first step."""
    world = world or World()
    config.validate()
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite starts it afresh: choose one")
    folder = RunFolder(config.out)
    writer = claim_folder and world.is_writer
    if writer:
        folder.claim()
    try:
        point, given = None, asdict(config)
        if resume and world.is_writer:
            point = folder.resume_point()
            config = continued_config(config, point.meta.config, explicit, progress, folder.last)
        elif writer:
            folder.refuse_replacing(overwrite)              # cleared only once all is ready (below)
        config = agreed_config(given, config, world)
        progress = progress and world.is_writer
        smallest = config.batch_size // world.size             # the fewest images a process has per step
        if world.size > 1 and 1 <= smallest < config.accumulate:
            raise ValueError(f"--accumulate {config.accumulate}: a batch of {config.batch_size} on {world.size} "
                             f"processes leaves some only {smallest} images per step, too few for "
                             f"{config.accumulate} slices; at most --accumulate {smallest}")

        train_set, val_set = data_of(config, world, progress)
        mean, std = world.broadcast_object(channel_stats(train_set.images, seed=config.seed))   # rank 0's, to the bit
        train_loader = DataLoader(train_set, config.batch_size, config.image_size, True, mean, std, seed=config.seed,
                                  rank=world.rank, ranks=world.size)
        val_loader = DataLoader(val_set, config.batch_size, config.image_size, False, mean, std,
                                rank=world.rank, ranks=world.size)
        meta = RunMeta(config.model, train_set.classes, train_set.display_names or train_set.classes, mean, std,
                       config.image_size, asdict(config))

        model = get_model(config.model, num_classes=len(meta.classes), seed=config.seed, image_grad=False,
                          fast=not config.layers, **config.model_args)   # the learner's layers take (N, C, H, W)
        model.to(np.dtype(config.dtype))
        optimizer = make_optimizer(config.optimizer, model, config.lr, config.momentum, config.weight_decay)
        loss_fn = nn.SoftmaxCrossEntropy()
        if config.layers:                                     # the learner's own layers (course/)
            model, optimizer, loss_fn = with_your_layers_run(config, model, optimizer, progress)
        rows = []
        if point is None:
            if config.class_margin and hasattr(model, "start_classes_alive"):
                whole = DataLoader(train_set, config.batch_size, config.image_size, True, mean, std, seed=config.seed)
                first_images, _ = next(whole.batches(0))          # the whole first batch, on every rank
                model.start_classes_alive(first_images.astype(config.dtype), config.class_margin)
        elif world.is_writer:
            rows = continue_from(point, folder, model, optimizer, meta, progress)
        if world.size > 1:
            rows = share_state(world, model, optimizer, meta, rows, data_fingerprint(train_set, val_set))
        if writer and point is None:
            folder.clear(overwrite)                         # the new run is ready: only now may an old one go
        return Run(config, meta, model, optimizer, train_loader, val_loader, rows, folder, progress, loss_fn, world)
    except BaseException:
        folder.release()
        raise


def data_of(config: TrainConfig, world: World, progress: bool):
    """-> (train set, val set). Several processes: rank 0 reads (and decodes into the cache) first, the
    others after it, from the cache: one decoding, not one per process."""
    sizes = (config.synthetic_train, config.synthetic_val)

    def read():
        train_set = load_split(config.data, "train", config.image_size, seed=config.seed, synthetic_sizes=sizes,
                               progress=progress)
        val_set = load_split(config.data, "val", config.image_size, seed=config.seed, synthetic_sizes=sizes,
                             progress=progress)
        if val_set.classes != train_set.classes:
            raise ValueError("the train and val splits have different classes")
        return train_set, val_set

    if world.size == 1:
        return read()
    if world.is_writer:
        sets = read()
        world.barrier()
        return sets
    world.barrier()
    try:
        return read()
    except (ValueError, OSError) as error:
        raise type(error)(f"rank {world.rank} cannot read the data that rank 0 read ({error}); every process needs "
                          f"the same --data at the same path (a shared file system, or a copy on each machine)") from None


def agreed_config(given: dict, config: TrainConfig, world: World) -> TrainConfig:
    """The settings every rank trains with: rank 0's `config` (a resumed run's come from its checkpoint,
    which rank 0 alone reads). given: this rank's settings as typed; a rank started with other settings
    than rank 0 is refused, naming it and them."""
    if world.size == 1:
        return config
    typed = world.gather_object(given)
    for rank, theirs in enumerate(typed):
        differ = sorted(k for k in typed[0] if theirs.get(k) != typed[0][k])
        if differ:
            raise ValueError(f"rank {rank} was started with other settings than rank 0: "
                             + ", ".join(f"{k}={theirs.get(k)!r} (rank 0: {typed[0][k]!r})" for k in differ)
                             + "; every process must run the same command")
    return TrainConfig(**world.broadcast_object(asdict(config)))


def data_fingerprint(train_set, val_set) -> tuple:
    """What every rank's data must agree on: the image counts, classes, and a hash of every image and
    label (two files swapped on one machine change the labels). (The normalisation is rank 0's on all.)"""
    digest = hashlib.sha256()
    for dataset in (train_set, val_set):
        digest.update(np.ascontiguousarray(dataset.labels, dtype=np.int64).tobytes())
        for start in range(0, len(dataset), 4096):                 # memory-mapped: a few MB at a time
            digest.update(np.ascontiguousarray(dataset.images[start : start + 4096]).tobytes())
    return len(train_set), len(val_set), train_set.classes, digest.hexdigest()


def share_state(world: World, model, optimizer, meta: RunMeta, rows: list[dict], data) -> list[dict]:
    """Rank 0's weights, optimizer state, dropout generators and place in the run, on every rank; then
    every rank checks that its data and weights are rank 0's. -> metrics.csv's rows so far."""
    state = world.broadcast_object({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "generators": model.generator_states(), "epoch": meta.epoch,
                                    "best_top1": meta.best_top1, "rows": rows})
    if not world.is_writer:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        model.set_generator_states(state["generators"])
        meta.epoch, meta.best_top1 = state["epoch"], state["best_top1"]
    fingerprint = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in model.state_dict().values()))
    seen = world.gather_object((data, fingerprint.hexdigest()))
    names = ("training images", "validation images", "classes", "images and labels (hash)")
    for rank, (their_data, their_weights) in enumerate(seen):
        for name, theirs, ours in zip(names, their_data, seen[0][0]):
            if theirs != ours:
                raise ValueError(f"rank {rank} sees other data than rank 0: its {name} are {str(theirs)[:60]} (rank 0: "
                                 f"{str(ours)[:60]}); every process must read the same --data")
        if their_weights != seen[0][1]:
            raise ValueError(f"rank {rank}'s weights differ from rank 0's after rank 0 sent them")
    return state["rows"]


def with_your_layers_run(config: TrainConfig, model, optimizer, progress: bool):
    """The model with the learner's layers in place of tinysqueeze's (course/your_layers.py), the learner's
    SGD when `--optimizer sgd` and theirs passes, and their loss. -> (model, optimizer, loss_fn)"""
    from ..course.your_layers import with_your_layers, your_classes

    classes = your_classes(config.layers)
    model = with_your_layers(model, classes)
    used = sorted({type(m).__name__ for m in model.modules() if type(m) in classes.values()} | {"SoftmaxCrossEntropy"})
    if config.optimizer == "sgd" and "SGD" in classes:
        optimizer = classes["SGD"](model.parameters(), config.lr, momentum=config.momentum,
                                   weight_decay=config.weight_decay)
        used.append("SGD")
    if progress:
        print(f"your layers from {config.layers}: {', '.join(used)}", file=sys.stderr)
    return model, optimizer, classes["SoftmaxCrossEntropy"]()


def continue_from(point: ResumePoint, folder: RunFolder, model, optimizer, meta: RunMeta, progress: bool) -> list[dict]:
    """Puts a stopped run's state back: weights, optimizer buffers, dropout generators, the epoch
    reached and the best top-1. -> metrics.csv's rows up to that epoch."""
    model.load_state_dict(point.model_state)
    if point.optimizer_state:
        optimizer.load_state_dict(point.optimizer_state)
    elif progress:
        print(f"{folder.last} holds no optimizer state (a copy of best.npz?): momentum starts again "
              "from zero", file=sys.stderr)
    try:
        model.set_generator_states(point.meta.generators)
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(f"--resume: {folder.last} is damaged: its dropout generator state cannot be put back "
                         f"({type(error).__name__}: {error}); it cannot be continued exactly.{folder.offer_best()}"
                         ) from None
    meta.epoch, meta.best_top1 = point.meta.epoch, point.meta.best_top1
    return [r for r in folder.metrics() if r["epoch"] <= point.meta.epoch + 1]


# ---------------------------------------------------------------------------- the loop
def fit(run: Run) -> list[dict]:
    """Trains the prepared run to its last epoch; -> metrics.csv's rows. Releases the folder at the end."""
    try:
        cfg, meta, out = run.config, run.meta, run.out
        writer = run.world.is_writer                 # rank 0 alone writes the run folder
        if writer:
            run.folder.write_config(asdict(cfg))
        if run.progress and meta.epoch < 0:
            print(f"{cfg.model}: {run.model.num_parameters():,} parameters; {len(run.train_loader.dataset)} training "
                  f"and {len(run.val_loader.dataset)} validation images of {len(meta.classes)} classes at "
                  f"{cfg.image_size}px; {cfg.epochs} epochs of {len(run.train_loader)} batches -> {out}"
                  + (f"; {run.world.size} processes share each batch" if run.world.size > 1 else ""))
        write_seconds = 0.0                          # how long the last epoch's files took to write
        for epoch in range(meta.epoch + 1, cfg.epochs):
            started = time.perf_counter()
            with blas_threads_for_training(cfg.batch_size, cfg.image_size):   # 1 for small batches (nn/fast)
                row = {"epoch": epoch + 1, **train_epoch(run, epoch)}
                val = evaluate(run.model, run.val_loader, len(meta.classes), world=run.world)
            silent, images = row.pop("silent"), row.pop("images")
            row.update(silent_classes=len(silent), val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
            # the epoch's time outside its training steps: data waits, validation, and writing the run's
            # files (counted as long as the previous epoch's writes took: the same files, the same sizes)
            row["other_seconds"] = time.perf_counter() - started - row["step_seconds"] + write_seconds
            run.rows.append(row)
            improved = val["top1"] > meta.best_top1
            meta.epoch, meta.best_top1 = epoch, max(meta.best_top1, val["top1"])
            writing = time.perf_counter()
            if writer:
                run.folder.record_epoch(run.rows, f"{cfg.model} on {cfg.data} at {cfg.image_size}px", run.model,
                                        run.optimizer, meta, improved)
            write_seconds = time.perf_counter() - writing
            if run.progress:
                print(f"epoch {epoch + 1:>3}/{cfg.epochs}  train loss {row['train_loss']:.3f} top-1 "
                      f"{100 * row['train_top1']:5.1f}%  |  val loss {val['loss']:.3f} top-1 {100 * val['top1']:5.1f}% "
                      f"top-5 {100 * val['top5']:5.1f}%  |  {row['images_per_s']:.0f} img/s, {row['seconds']:.0f}s"
                      + ("  *best*" if improved else ""), flush=True)
            check_alive(silent, meta.class_names, epoch + 1, images, row["train_loss"], run.folder)
        return run.rows
    finally:
        run.close()


def schedule(config: TrainConfig, steps_per_epoch: int):
    """-> the learning rate at each global step of the run: warm-up, then poly (or cosine) decay."""
    total_steps, warmup = config.epochs * steps_per_epoch, int(round(config.warmup_epochs * steps_per_epoch))
    return lambda step: learning_rate(step, total_steps, config.lr, warmup, config.schedule)


def train_epoch(run: Run, epoch: int) -> dict:
    """One pass over the training set: one `train_step` (optim/step.py) per batch, timed and counted."""
    cfg, model, optimizer, loader = run.config, run.model.train(), run.optimizer, run.train_loader
    loss_fn, world = run.loss_fn, run.world
    lr_at = schedule(cfg, len(loader))
    total_loss, correct, seen, start, in_steps = 0.0, 0, 0, time.perf_counter(), 0.0
    # several processes: each computes its rows of every batch (x, y below), and their gradients are summed
    rows = (loader.rows(loader.batch_size)[0], loader.batch_size) if world.size > 1 else None
    summed = GradientSum(model.parameters(), world) if world.size > 1 else None
    max_scores = np.full(len(run.meta.classes), -np.inf)     # each class's largest score: is it alive?
    bar = tqdm(loader.epoch(epoch), total=len(loader), disable=not run.progress,
               desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
    for b, (x, y) in enumerate(bar):                          # x: (B, 3, S, S), y: (B,)
        step_start = time.perf_counter()
        optimizer.lr = lr_at(epoch * len(loader) + b)
        try:
            x = x.astype(cfg.dtype, copy=False)
            if rows is None and cfg.accumulate == 1:               # one process, the batch at once
                loss, logits = train_step(model, loss_fn, optimizer, x, y)
            else:                                                  # ranks' rows or accumulated slices
                loss, logits = train_step_in_slices(model, loss_fn, optimizer, x, y, parts=cfg.accumulate,
                                                    global_rows=rows, sum_over_ranks=summed)
        except NonFiniteLoss as error:
            raise TrainingDiverged(
                f"{error} at epoch {epoch + 1}, batch {b + 1} (learning rate {optimizer.lr:.3g}); "
                f"the run stopped and {run.folder.last} still holds the last good epoch. "
                "Try a lower --lr or a longer --warmup-epochs.") from None
        stop_if_interrupted()                                  # a Ctrl-C that a finalizer swallowed stops here
        in_steps += time.perf_counter() - step_start
        batch = loader.batch_size if rows else len(y)      # the loss is the whole batch's
        total_loss += loss * batch
        correct += topk_correct(logits, y, 1)              # this process's rows (summed over all below)
        max_scores = np.maximum(max_scores, logits.max(axis=0))
        seen += batch
        bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{100 * correct / seen:.1f}%",
                        img_s=f"{seen / (time.perf_counter() - start):.0f}", lr=f"{optimizer.lr:.3g}")
    seconds = time.perf_counter() - start
    correct, max_scores = world_total(world, correct), world_max(world, max_scores)
    silent = silent_classes_of(model, max_scores)
    return {"lr": optimizer.lr, "train_loss": total_loss / seen, "train_top1": correct / seen,
            "images_per_s": seen / seconds, "seconds": seconds, "step_seconds": in_steps, "images": seen,
            "allreduce_seconds": summed.seconds if summed else 0.0, "silent": silent}


def world_total(world: World, count: int) -> int:
    """count summed over the ranks."""
    buffer = np.array([count], dtype=np.float64)
    world.sum(buffer)
    return int(round(buffer[0]))


def world_max(world: World, values: np.ndarray) -> np.ndarray:
    """values (C,), the element-wise maximum over the ranks."""
    buffer = np.ascontiguousarray(values, dtype=np.float64).copy()
    world.max(buffer)
    return buffer


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
          explicit: set[str] | None = None) -> list[dict]:
    """prepare, then fit: what `python -m tinysqueeze train` does."""
    return fit(prepare(config, resume, overwrite, progress, explicit))


# ---------------------------------------------------------------------------- is it alive?
class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


class NetworkDied(TrainingDiverged):
    """Every class score was zero on a whole epoch: no gradient can flow, the run cannot recover."""


def check_alive(silent: np.ndarray, names: list[str], epoch: int, images: int, loss: float, folder: RunFolder) -> None:
    """Stops the run (NetworkDied) when every class was silent for a whole epoch; warns when some were."""
    if len(silent) == 0:
        return
    message = liveness_message(silent, names, epoch, images, loss)
    if len(silent) == len(names):
        raise NetworkDied(message + f" The run stopped; {folder.last} holds this epoch.")
    print(message, file=sys.stderr, flush=True)


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
