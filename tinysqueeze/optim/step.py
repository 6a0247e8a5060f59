"""One training step, written once: every training loop of tinysqueeze calls `train_step`.

    optimizer.zero_grad()                 forget the last step's gradients
    logits = model(x)                     forward: (B, 3, S, S) -> (B, C)
    loss = loss_fn(logits, y)             a number
    model.backward(loss_fn.backward())    every parameter's .grad filled
    loss = sum_over_ranks(loss)           data-parallel only: the all-reduce (distributed/world.py)
    after_backward()                      THE place between backward and the update
    optimizer.step()                      the weights change (refused if the loss is not finite)

`train_step` is what `train` (training/train.py `train_epoch`), `diagnose`, the benchmark and
compression's fine-tuning all run. What differs between them goes in through `after_backward`,
called when every gradient is known and no weight has moved yet, the one place where a gradient may
be changed or read:
- pruning (compress/finetune.py): zero the pruned weights, their gradients and their momentum, so
  they stay zero;
- weight sharing (compress/finetune.py): sum each cluster's weight gradients into its centroid's.
What only watches the step (timers, the vital signs of `diagnose`) reads the model before or after.
An optimizer may do more than update in its own step: weight sharing's `SharedWeightsOptimizer`
(compress/quantize.py) writes every shared weight from its codebook after the update.

One batch, computed in slices. The gradient of a batch's mean loss is the sum over its slices of
(slice's rows / batch's rows) x the gradient of the slice's mean loss. Two ways of training use it,
each computing exactly the step of the whole batch (to rounding):
- gradient accumulation (`parts=K`): the batch in K slices, one after another, each backward adding
  into .grad (the rule every layer keeps): K times less memory, the same step;
- data-parallel training (`sum_over_ranks`, `rows=(start, total)`): x is this rank's slice, rows
  start .. start + len(x) of a global batch of `total`; `sum_over_ranks` (distributed/world.py
  GradientSum) adds every rank's weighted gradients in one all-reduce, so every rank takes the same step.
A layer that draws random numbers per row (Dropout) is told which rows of which batch it sees
(nn.batch_rows), so the slices draw the masks the whole batch would.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..distributed.ring import chunk_bounds
from ..nn import batch_rows


class NonFiniteLoss(ArithmeticError):
    """The loss of a step was NaN or infinite; the step stopped before any weight changed."""

    def __init__(self, loss: float):
        super().__init__(f"the loss became {loss}")
        self.loss = loss


def train_step(model, loss_fn, optimizer, x, y, after_backward: Callable[[], None] | None = None, *,
               parts: int = 1, rows: tuple[int, int] | None = None,
               sum_over_ranks: Callable[[float], float] | None = None):
    """One step of training on the batch x: (B, 3, S, S), y: (B,) integer labels.

    parts: compute it in this many slices (gradient accumulation). rows=(start, total) and
    sum_over_ranks: x is rows start .. start + B of a global batch of `total` rows, and the gradients
    are summed over the ranks before the update (data-parallel training).
    -> (loss: float, logits: (B, C)): the mean loss of the whole (global) batch, this process's logits.
    Raises NonFiniteLoss, with the weights untouched, if the loss is not a finite number.
    """
    start, total = rows if rows is not None else (0, len(y))
    optimizer.zero_grad()
    loss_share, logits = 0.0, []
    for k, (lo, hi) in enumerate(slices(len(y), parts)):     # one slice unless accumulating
        with batch_rows(model, start + lo, start + hi, total, new_batch=k == 0):
            out = model(x[lo:hi])                              # (hi - lo, C)
        slice_loss, weight = loss_fn(out, y[lo:hi]), (hi - lo) / total     # weight: the slice's share
        loss_share += weight * slice_loss
        logits.append(out)
        if not math.isfinite(slice_loss):
            if sum_over_ranks is None:
                raise NonFiniteLoss(slice_loss)                # before its backward: nothing more to do
            continue                                           # the other ranks must hear it first (below)
        model.backward(loss_fn.backward() * np.asarray(weight, dtype=out.dtype))   # adds into .grad
    loss = sum_over_ranks(loss_share) if sum_over_ranks is not None else loss_share
    if not math.isfinite(loss):                                # every rank sees the same sum: all stop
        raise NonFiniteLoss(loss)
    if after_backward is not None:
        after_backward()                                       # gradients known, weights not yet moved
    optimizer.step()
    return loss, logits[0] if len(logits) == 1 else np.concatenate(logits)


def slices(n: int, parts: int) -> list[tuple[int, int]]:
    """(lo, hi) of `parts` nearly equal consecutive slices of n rows (the first n % parts one row longer)."""
    if not 1 <= parts <= max(n, 1):
        raise ValueError(f"cannot split a batch of {n} images into {parts} parts: --accumulate must be from 1 "
                         f"to the images each process has per step ({n})")
    return chunk_bounds(n, parts)
