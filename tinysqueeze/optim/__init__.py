"""tinysqueeze.optim: what changes the weights. Beside nn, at the bottom: it knows nothing above it.

Read in this order: optimizers.py (SGD as PyTorch's, LARS, Adam; the learning-rate schedules), then
step.py (one training step: zero_grad, forward, loss, backward, the hook between backward and the
update, the update) — the step every training loop of the project runs.
"""
from .optimizers import (OPTIMIZERS, SCHEDULES, LARS, SGD, Adam, layer_groups, learning_rate, make_optimizer,
                         named_layer_groups)
from .step import NonFiniteLoss, train_step

__all__ = ["SGD", "LARS", "Adam", "OPTIMIZERS", "SCHEDULES", "make_optimizer", "learning_rate", "layer_groups",
           "named_layer_groups", "train_step", "NonFiniteLoss"]
