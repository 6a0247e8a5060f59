"""Fine-tuning after pruning (masked weights) and after weight sharing (centroids only): the same
training step as `train` (optim/step.py), with what differs put between backward and the update."""
from __future__ import annotations

from tqdm import tqdm

from .. import nn
from ..optim import Adam, NonFiniteLoss, train_step
from .prune import gradient_masker
from .quantize import SharedWeightsOptimizer


def _epochs(model, loader, epochs: int, optimizer, after_backward, progress: bool, desc: str) -> None:
    """`epochs` passes over `loader`, one train_step per batch."""
    loss_fn = nn.SoftmaxCrossEntropy()
    for epoch in range(epochs):
        model.train()
        for x, y in tqdm(loader.epoch(epoch), total=len(loader), desc=f"{desc} {epoch + 1}/{epochs}",
                         disable=not progress, leave=False):
            try:
                train_step(model, loss_fn, optimizer, x, y, after_backward)
            except NonFiniteLoss as error:
                raise ValueError(f"{desc}: {error}; try a lower fine-tuning learning rate") from None


def finetune_pruned(model, masks: dict, loader, epochs: int, lr: float = 1e-4, progress: bool = True) -> None:
    """Trains the surviving weights; pruned ones stay exactly zero (gradient_masker, between backward and step)."""
    optimizer = Adam(model.parameters(), lr)
    _epochs(model, loader, epochs, optimizer, gradient_masker(model, masks, optimizer), progress, "fine-tuning pruned")


def finetune_shared(model, shared, loader, epochs: int, lr: float = 1e-4, progress: bool = True) -> None:
    """Trains the codebooks (each centroid by the summed gradient of its weights) and the biases."""
    others = [p for name, p in model.named_parameters() if not name.endswith("weight") or p.data.ndim < 2]
    optimizer = SharedWeightsOptimizer(Adam(shared.parameters() + others, lr), model, shared)
    _epochs(model, loader, epochs, optimizer, shared.after_backward, progress, "fine-tuning centroids")
