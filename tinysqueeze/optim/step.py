"""One training step, written once: every training loop of tinysqueeze calls `train_step`.

    optimizer.zero_grad()                 forget the last step's gradients
    logits = model(x)                     forward: (B, 3, S, S) -> (B, C)
    loss = loss_fn(logits, y)             a number (refused if it is not finite: nothing has moved yet)
    model.backward(loss_fn.backward())    every parameter's .grad filled
    after_backward()                      THE place between backward and the update
    optimizer.step()                      the weights change

`train_step` is what `train` (training/loop.py), `diagnose`, the benchmark and compression's
fine-tuning all run. What differs between them goes in through `after_backward`, called when every
gradient is known and no weight has moved yet, the one place where a gradient may be changed or read:
- pruning (compress/finetune.py): zero the pruned weights, their gradients and their momentum, so
  they stay zero;
- weight sharing (compress/finetune.py): sum each cluster's weight gradients into its centroid's.
What only watches the step (timers, the vital signs of `diagnose`) reads the model before or after.
An optimizer may do more than update in its own step: weight sharing's `SharedWeightsOptimizer`
(compress/quantize.py) writes every shared weight from its codebook after the update.

The same step computed a slice of the batch at a time (gradient accumulation, several processes
sharing each batch) is slices.py's `train_step_in_slices`, a layer around this one (lesson 19).
"""
from __future__ import annotations

import math
from typing import Callable


class NonFiniteLoss(ArithmeticError):
    """The loss of a step was NaN or infinite; the step stopped before any weight changed."""

    def __init__(self, loss: float):
        super().__init__(f"the loss became {loss}")
        self.loss = loss


def train_step(model, loss_fn, optimizer, x, y, after_backward: Callable[[], None] | None = None):
    """One step of training on the batch x: (B, 3, S, S), y: (B,) integer labels.

    -> (loss: float, logits: (B, C)). Raises NonFiniteLoss, with the weights untouched, if the loss is
    not a finite number.
    """
    optimizer.zero_grad()
    logits = model(x)                                  # (B, C)
    loss = loss_fn(logits, y)
    if not math.isfinite(loss):
        raise NonFiniteLoss(loss)                      # before backward: no gradient, no weight moved
    model.backward(loss_fn.backward())                 # adds into every parameter's .grad
    if after_backward is not None:
        after_backward()                               # gradients known, weights not yet moved
    optimizer.step()
    return loss, logits
