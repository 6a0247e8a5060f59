"""One batch, computed in slices: the training step of gradient accumulation and of data-parallel ranks.

The gradient of a batch's mean loss is the sum over its slices of (slice's rows / batch's rows) x the
gradient of the slice's mean loss. So a batch can be computed a slice at a time, each backward adding
into .grad (the rule every layer keeps), and the update is the whole batch's, to rounding:
- gradient accumulation (parts=K): the batch in K slices, one after another: K times less memory;
- data-parallel training (global_rows=(start, total), sum_over_ranks): x is this process's slice, rows
  start .. start + len(x) of a global batch of `total` that other processes (ranks) share;
  `sum_over_ranks` (distributed/world.py's GradientSum) adds every rank's weighted gradients in one
  all-reduce, so every rank takes the same step (lesson 19).
With one slice and one process, `train_step_in_slices` is step.py's `train_step`, to the bit (tested).

Dropout draws a random number per element of its input, so a slice must draw what the whole batch
would have drawn for its rows. For the step, each Dropout layer draws through a `RowsOfBatch`: its
first draw draws the whole batch's numbers from the layer's own generator, and every draw hands out the
rows of the slice being computed. Slices computed one after another, or on ranks whose generators are
in the same state, then keep exactly what one pass over the whole batch would. (The layer is not told:
it asks its generator for numbers, as always.)
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import numpy as np

from .. import nn
from ..distributed.ring import chunk_bounds
from .step import NonFiniteLoss


def train_step_in_slices(model, loss_fn, optimizer, x, y, after_backward: Callable[[], None] | None = None, *,
                         parts: int = 1, global_rows: tuple[int, int] | None = None,
                         sum_over_ranks: Callable[[float], float] | None = None):
    """train_step (step.py) on the batch x: (B, 3, S, S), y: (B,), computed in `parts` slices.

    global_rows=(start, total) and sum_over_ranks: x is rows start .. start + B of a global batch of
    `total` rows, and the gradients are summed over the ranks before the update.
    -> (loss: float, logits: (B, C)): the mean loss of the whole (global) batch, this process's logits.
    Raises NonFiniteLoss, with the weights untouched, if the loss is not a finite number.
    """
    start, total = global_rows if global_rows is not None else (0, len(y))
    optimizer.zero_grad()
    loss_share, logits = 0.0, []
    with whole_batch_dropout(model, total) as compute_rows:
        for lo, hi in slices(len(y), parts):                  # one slice unless accumulating
            compute_rows(start + lo, start + hi)
            out = model(x[lo:hi])                              # (hi - lo, C)
            slice_loss, weight = loss_fn(out, y[lo:hi]), (hi - lo) / total     # weight: the slice's share
            loss_share += weight * slice_loss
            logits.append(out)
            if not math.isfinite(slice_loss):
                if sum_over_ranks is None:
                    raise NonFiniteLoss(slice_loss)            # before its backward: nothing more to do
                continue                                       # the other ranks must hear it first (below)
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


class RowsOfBatch:
    """Stands in for a Dropout layer's generator during one sliced step. random(shape) -> the rows
    `rows` of the whole batch's numbers, (total, *shape[1:]), drawn from `generator` at the first call."""

    def __init__(self, generator: np.random.Generator, total: int):
        self.generator, self.total = generator, total
        self.rows = (0, total)          # the slice being computed
        self.numbers = None             # the whole batch's, once drawn

    def random(self, shape: tuple) -> np.ndarray:
        if self.numbers is None:
            self.numbers = self.generator.random((self.total, *shape[1:]))
        start, stop = self.rows
        return self.numbers[start:stop]


@contextlib.contextmanager
def whole_batch_dropout(model: nn.Module, total: int):
    """Within it, every Dropout of `model` draws through a RowsOfBatch of a batch of `total` rows; it
    yields compute_rows(start, stop), which says which rows the next forward computes. Each layer's own
    generator is put back on the way out, advanced by the one whole-batch draw."""
    layers = [m for m in model.modules() if isinstance(m, nn.Dropout)]
    stand_ins = [RowsOfBatch(layer.rng, total) for layer in layers]
    for layer, stand_in in zip(layers, stand_ins):
        layer.rng = stand_in

    def compute_rows(start: int, stop: int) -> None:
        for stand_in in stand_ins:
            stand_in.rows = (start, stop)

    try:
        yield compute_rows
    finally:
        for layer, stand_in in zip(layers, stand_ins):
            layer.rng = stand_in.generator
