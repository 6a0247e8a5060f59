"""tinysqueeze.optim: what changes the weights. Beside nn, at the bottom: it knows nothing above it.

Read in this order: optimizers.py (SGD as PyTorch's, LARS, Adam; the learning-rate schedules), then
step.py (one training step: zero_grad, forward, loss, backward, the hook between backward and the
update, the update) — the step every training loop of the project runs; then slices.py, the same step
computed a slice of the batch at a time (gradient accumulation, data-parallel ranks).
"""
from .optimizers import (OPTIMIZERS, SCHEDULES, LARS, SGD, Adam, layer_groups, learning_rate, make_optimizer,
                         named_layer_groups)
from .slices import train_step_in_slices
from .step import NonFiniteLoss, train_step

__all__ = ["SGD", "LARS", "Adam", "OPTIMIZERS", "SCHEDULES", "make_optimizer", "learning_rate", "layer_groups",
           "named_layer_groups", "train_step", "train_step_in_slices", "NonFiniteLoss"]
