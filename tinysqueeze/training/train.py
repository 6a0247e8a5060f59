"""Training: the loop, in one sitting.

    run = prepare(TrainConfig(data="synthetic", epochs=15, out="runs/demo"))   # data, model, optimizer
    rows = fit(run)                                                             # one row per epoch

Read it top to bottom: `prepare` (what a run needs, or what a resumed run had: its settings, data,
loaders, network and starting state), `fit` (the epochs: train, validate, record), `train_epoch` (the
steps: each one `train_step` of optim/step.py, timed and counted). Beside it: config.py
(`TrainConfig`, every setting and its default, and `RECIPES`), runs.py (`RunFolder`, the only code
that knows a run folder's files), run_meta.py (`RunMeta`, what a checkpoint says), liveness.py (is the network still alive?), and, for several
processes, distributed/handshake.py.

The recipe follows the paper's Caffe solver (SGD, momentum 0.9, weight decay 2e-4, "poly" learning
rate decaying linearly to zero after a short warm-up), with a learning rate scaled per layer
(LARS) and every class started alive (lesson 11 has the measurements).

Exact resume: everything random is derived from the seed (the shuffle and augmentation of each
epoch and batch) or saved in the checkpoint (the dropout generators, the momentum buffers), so a
run stopped after epoch k and resumed equals a run that never stopped.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .. import nn
from ..datasets import DataLoader, channel_stats, load_split
from ..distributed.handshake import agreed_settings, data_fingerprint, share_state, world_max, world_total
from ..distributed.world import GradientSum, World
from ..evaluation.evaluate import evaluate, silent_classes_of, topk_correct
from ..models import get_model
from ..nn.fast.blas_threads import blas_threads_for_training
from ..optim import NonFiniteLoss, learning_rate, make_optimizer, train_step, train_step_in_slices
from .config import TrainConfig, continued_config
from .interrupts import stop_if_interrupted
from .liveness import TrainingDiverged, check_alive
from .run_meta import RunMeta
from .runs import ResumePoint, RunFolder


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
    all check they agree before the first step (distributed/handshake.py)."""
    world = world or World()
    config.validate()
    if resume and overwrite:
        raise ValueError("--resume continues a run and --overwrite starts it afresh: choose one")
    folder = RunFolder(config.out)
    writer = claim_folder and world.is_writer
    if writer:
        folder.claim()
    try:
        config, point = settings_of(config, folder, resume, overwrite, explicit, progress, writer, world)
        progress = progress and world.is_writer
        train_set, val_set = data_of(config, world, progress)
        meta, train_loader, val_loader = loaders_of(config, train_set, val_set, world)
        model, optimizer, loss_fn = network_of(config, meta, progress)
        rows = starting_state(config, point, folder, model, optimizer, meta, train_set, progress, world)
        if world.size > 1:
            rows = share_state(world, model, optimizer, meta, rows, data_fingerprint(train_set, val_set))
        if writer and point is None:
            folder.clear(overwrite)                         # the new run is ready: only now may an old one go
        return Run(config, meta, model, optimizer, train_loader, val_loader, rows, folder, progress, loss_fn, world)
    except BaseException:                                   # anything, Ctrl-C too: the folder is not left locked
        folder.release()
        raise


def settings_of(config: TrainConfig, folder: RunFolder, resume: bool, overwrite: bool, explicit: set[str] | None,
                progress: bool, writer: bool, world: World) -> tuple:
    """-> (the settings the run trains with, its ResumePoint or None for a new run). A resumed run's
    come from its checkpoint; a new run may not replace a finished one without --overwrite; on several
    processes every rank takes rank 0's."""
    point, given = None, asdict(config)
    if resume and world.is_writer:
        point = folder.resume_point()
        config = continued_config(config, point.meta.config, explicit, progress, folder.last)
    elif writer:
        folder.refuse_replacing(overwrite)                  # cleared only once all is ready (prepare)
    if world.size > 1:                                      # rank 0's settings, on every rank
        config = TrainConfig(**agreed_settings(given, asdict(config), world))
    smallest = config.batch_size // world.size              # the fewest images a process has per step
    if world.size > 1 and 1 <= smallest < config.accumulate:
        raise ValueError(f"--accumulate {config.accumulate}: a batch of {config.batch_size} on {world.size} "
                         f"processes leaves some only {smallest} images per step, too few for "
                         f"{config.accumulate} slices; at most --accumulate {smallest}")
    return config, point


def loaders_of(config: TrainConfig, train_set, val_set, world: World) -> tuple:
    """-> (the run's RunMeta, training loader, validation loader). The normalisation is the training
    set's, rank 0's to the bit on every rank."""
    mean, std = world.broadcast_object(channel_stats(train_set.images, seed=config.seed))
    train_loader = DataLoader(train_set, config.batch_size, config.image_size, True, mean, std, seed=config.seed,
                              rank=world.rank, ranks=world.size)
    val_loader = DataLoader(val_set, config.batch_size, config.image_size, False, mean, std,
                            rank=world.rank, ranks=world.size)
    meta = RunMeta(config.model, train_set.classes, train_set.display_names or train_set.classes, mean, std,
                   config.image_size, asdict(config))
    return meta, train_loader, val_loader


def network_of(config: TrainConfig, meta: RunMeta, progress: bool) -> tuple:
    """-> (model, optimizer, loss_fn): tinysqueeze's, or the learner's own layers (--layers)."""
    model = get_model(config.model, num_classes=len(meta.classes), seed=config.seed, image_grad=False,
                      fast=not config.layers, **config.model_args)   # the learner's layers take (N, C, H, W)
    model.to(np.dtype(config.dtype))
    optimizer = make_optimizer(config.optimizer, model, config.lr, config.momentum, config.weight_decay)
    loss_fn = nn.SoftmaxCrossEntropy()
    if config.layers:                                       # the learner's own layers (course/)
        model, optimizer, loss_fn = with_your_layers_run(config, model, optimizer, progress)
    return model, optimizer, loss_fn


def starting_state(config: TrainConfig, point, folder: RunFolder, model, optimizer, meta: RunMeta, train_set,
                   progress: bool, world: World) -> list[dict]:
    """A new run starts every class alive (the class margin, set from the whole first batch); a resumed
    one gets its state back (rank 0 reads it). -> metrics.csv's rows so far."""
    if point is None:
        if config.class_margin and hasattr(model, "start_classes_alive"):
            whole = DataLoader(train_set, config.batch_size, config.image_size, True, meta.mean, meta.std,
                               seed=config.seed)
            first_images, _ = next(whole.batches(0))          # the whole first batch, on every rank
            model.start_classes_alive(first_images.astype(config.dtype), config.class_margin)
        return []
    return continue_from(point, folder, model, optimizer, meta, progress) if world.is_writer else []


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






def train(config: TrainConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
          explicit: set[str] | None = None) -> list[dict]:
    """prepare, then fit: what `python -m tinysqueeze train` does."""
    return fit(prepare(config, resume, overwrite, progress, explicit))
