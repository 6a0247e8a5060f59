"""Vital signs of training's first steps: how far each layer moves, and which classes are alive.

Two measurements, taken after every optimiser step:
- the update ratio of each layer, ||w_after - w_before|| / ||w_before|| (weight and bias together):
  the fraction of its own size a layer moves in one step. Layers whose ratios differ by orders of
  magnitude cannot all be served by one plain learning rate;
- for a network that ends in a ReLU before its average pool (SqueezeNet: conv10 -> ReLU -> pool),
  the fraction of each class's conv10 outputs that are above zero in the batch. A class whose
  fraction reaches 0 on every image gets no gradient at all: it is dead, and stays dead.

`trace_steps` runs the steps and returns one record per step; `plot_trace` draws them;
`trace_recipe` does both for a training configuration, as `python -m tinysqueeze diagnose` does
(lesson 11's figure: `docs/experiments/first_steps.py`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..evaluation.evaluate import final_relu
from ..optim import NonFiniteLoss, named_layer_groups, train_step


@dataclass
class StepRecord:
    step: int
    lr: float
    loss: float
    update_ratio: dict = field(default_factory=dict)   # layer name -> ||dw|| / ||w||
    alive: np.ndarray | None = None                    # (C,) fraction of conv10 outputs > 0 per class


def layer_norms(layers) -> dict[str, float]:
    return {name: math.sqrt(sum(float(np.square(p.data, dtype=np.float64).sum()) for p in params))
            for name, params in layers}


def trace_steps(model: nn.Module, optimizer, batches, steps: int, lr_at=None) -> list[StepRecord]:
    """Trains for `steps` steps on `batches` (an iterator of (x, y)) and records the vital signs: each
    step is `train_step` (optim/step.py), watched from outside (the weights before and after it).

    lr_at(step) -> learning rate, if the rate changes (warm-up); otherwise the optimiser's own.
    A step whose loss is not finite is recorded (its loss nan or inf, no weight moved) and ends the trace.
    """
    loss_fn = nn.SoftmaxCrossEntropy()
    layers = named_layer_groups(model)
    relu = final_relu(model)
    model.train()
    records = []
    for step, (x, y) in zip(range(steps), batches):
        if lr_at is not None:
            optimizer.lr = lr_at(step)
        before = {name: [p.data.copy() for p in params] for name, params in layers}
        norms = layer_norms(layers)
        try:
            loss, _ = train_step(model, loss_fn, optimizer, x, y)
        except NonFiniteLoss as diverged:
            loss = diverged.loss
        alive = None
        if relu is not None:                        # relu.cache: its output in this step's forward, (N, C, ...)
            positive = relu.cache > 0
            alive = positive.mean(axis=tuple(k for k in range(positive.ndim) if k != 1))   # (C,)
        ratios = {}
        for name, params in layers:
            moved = math.sqrt(sum(float(np.square(p.data - b, dtype=np.float64).sum())
                                  for p, b in zip(params, before[name])))
            ratios[name] = moved / norms[name] if norms[name] > 0 else math.inf
        records.append(StepRecord(step, optimizer.lr, float(loss), ratios, alive))
        if not math.isfinite(loss):
            break
    return records


def dead_classes(records: list[StepRecord], window: int = 20) -> list[int]:
    """Classes with no conv10 output above zero over the last `window` steps."""
    recent = [r.alive for r in records[-window:] if r.alive is not None]
    if not recent:
        return []
    return [int(k) for k in np.flatnonzero(np.max(recent, axis=0) == 0)]


def chosen_layers(records: list[StepRecord]) -> list[str]:
    """The first, a middle and the last layer: what the table and the plot show."""
    layers = list(records[0].update_ratio)
    return [layers[0], layers[len(layers) // 2], layers[-1]]


def plot_trace(traces: dict[str, list[StepRecord]], path, title: str = "") -> None:
    """One row per trace: update ratios of first / middle / last layer, and per-class liveness."""
    from ..evaluation.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(traces), 2, figsize=(11, 3.2 * len(traces)), squeeze=False)
    for (label, records), (ax_ratio, ax_alive) in zip(traces.items(), axes):
        steps = [r.step for r in records]
        for name in chosen_layers(records):
            ax_ratio.semilogy(steps, [max(r.update_ratio[name], 1e-12) for r in records], label=name or "model")
        ax_ratio.set_title(f"{label}\nupdate / weight of a layer, per step", fontsize=9)
        ax_ratio.set_xlabel("step"), ax_ratio.legend(fontsize=7), ax_ratio.grid(alpha=0.3)
        if records[0].alive is not None:
            alive = np.array([r.alive for r in records])
            for k in range(alive.shape[1]):
                ax_alive.plot(steps, 100 * alive[:, k], lw=1)
            dead = dead_classes(records)
            ax_alive.set_title(f"{label}\nconv10 outputs > 0, per class (%); dead at the end: {len(dead)}",
                               fontsize=9)
            ax_alive.set_ylim(-2, 102), ax_alive.set_xlabel("step"), ax_alive.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def trace_recipe(config, steps: int, progress: bool = False) -> tuple[list[StepRecord], list[str]]:
    """The first `steps` optimiser steps of the run `config` (a TrainConfig) describes: same data,
    model, start and optimiser as `train`, with its warm-up. -> (records, class names)"""
    from .train import prepare, schedule

    run = prepare(config, progress=progress, claim_folder=False)   # reads data, writes nothing
    loader = run.train_loader

    def batches():                                  # as train_epoch feeds them: in the run's dtype
        epoch = 0
        while True:
            for x, y in loader.batches(epoch):
                yield x.astype(config.dtype, copy=False), y
            epoch += 1

    records = trace_steps(run.model, run.optimizer, batches(), steps,
                          schedule(config, len(loader)))
    return records, run.meta.class_names


def format_trace(records: list[StepRecord], every: int, names: list[str]) -> str:
    """A table: step, loss, live classes, and the update ratio of the first, a middle and the last layer."""
    chosen = chosen_layers(records)
    lines = [f"{'step':>5} {'lr':>9} {'loss':>7} {'live classes':>13}  " + "  ".join(f"{n:>22}" for n in chosen)]
    for r in records:
        if r.step % every == 0 or r.step == records[-1].step:
            live = "-" if r.alive is None else f"{int((r.alive > 0).sum())}/{len(r.alive)}"
            lines.append(f"{r.step:>5} {r.lr:>9.3g} {r.loss:>7.4f} {live:>13}  "
                         + "  ".join(f"{r.update_ratio[n]:>22.2e}" for n in chosen))
    dead = dead_classes(records)
    if not math.isfinite(records[-1].loss):
        lines.append(f"the loss became {records[-1].loss} at step {records[-1].step}: the run diverged, and the trace "
                     "stops there (try a lower --lr or a longer --warmup-epochs)")
    lines.append("update ratio = ||w_after - w_before|| / ||w_before|| of the layer in that step")
    lines.append(f"dead classes at the end (no conv10 output > 0 in the last 20 steps): "
                 f"{', '.join(names[k] for k in dead) if dead else 'none'}")
    return "\n".join(lines)
