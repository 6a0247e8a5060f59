"""Fine-tuning after pruning (masked weights) and after weight sharing (centroids only)."""
from __future__ import annotations

import numpy as np
from tqdm import tqdm

from .. import nn
from ..optim import Adam
from .prune import MaskedOptimizer


def _epochs(model, loader, epochs: int, step, progress: bool, desc: str) -> None:
    loss_fn = nn.SoftmaxCrossEntropy()
    for epoch in range(epochs):
        model.train()
        for x, y in tqdm(loader.epoch(epoch), total=len(loader), desc=f"{desc} {epoch + 1}/{epochs}",
                         disable=not progress, leave=False):
            loss = loss_fn(model(x), y)
            if not np.isfinite(loss):
                raise ValueError(f"{desc}: the loss became {loss}; try a lower fine-tuning learning rate")
            step(loss_fn)


def finetune_pruned(model, masks: dict, loader, epochs: int, lr: float = 1e-4, progress: bool = True) -> None:
    """Trains the surviving weights; pruned ones stay exactly zero (MaskedOptimizer)."""
    optimizer = MaskedOptimizer(Adam(model.parameters(), lr), model, masks)

    def step(loss_fn):
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()

    optimizer.zero_grad()
    _epochs(model, loader, epochs, step, progress, "fine-tuning pruned")


def finetune_shared(model, shared, loader, epochs: int, lr: float = 1e-4, progress: bool = True) -> None:
    """Trains the codebooks (each centroid by the summed gradient of its weights) and the biases."""
    others = [p for name, p in model.named_parameters() if not name.endswith("weight") or p.data.ndim < 2]
    optimizer = Adam(shared.parameters() + others, lr)

    def step(loss_fn):
        model.zero_grad()
        model.backward(loss_fn.backward())
        shared.after_backward()
        optimizer.step()
        shared.write_weights()

    _epochs(model, loader, epochs, step, progress, "fine-tuning centroids")
