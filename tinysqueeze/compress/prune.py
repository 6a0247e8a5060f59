"""Magnitude pruning (Han et al. 2015): keep each layer's largest weights, zero the rest, and keep
them zero through fine-tuning.

Only weights are pruned (conv and linear), never biases. Two policies decide each layer's density:
- "paper" (the default of `layer_densities` and of the `compress` command): as in SqueezeNet's
  released compressed model (expand3x3 ~ 31-33% kept, conv10 ~ 21%, the 1x1 layers ~ 99%): the
  first convolution and the 1x1 layers stay dense, and the larger kernels plus the final classifier
  layer are pruned, all to one density chosen so that the whole network keeps `density` of its
  weights. Small 1x1 layers are where pruning hurts most and saves least.
- "uniform" (the default of `prune`, which also serves models that are not SqueezeNets): every
  layer keeps `density` of its weights.
During fine-tuning, `gradient_masker` zeroes the pruned weights' gradients between backward and the
update (the training step's `after_backward`, optim/step.py), so neither a gradient nor the momentum
it would build revives a pruned weight.
"""
from __future__ import annotations

import numpy as np

from .. import nn


def check_density(density: float) -> float:
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return float(density)


def prunable(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The weight tensors of convolutions and linear layers, by state_dict name."""
    return [(name, p) for name, p in model.named_parameters() if name.endswith("weight") and p.data.ndim >= 2]


def magnitude_mask(weight: np.ndarray, density: float) -> np.ndarray:
    """bool mask keeping the ceil(density * size) entries of largest magnitude (ties: lower index)."""
    keep = int(np.ceil(check_density(density) * weight.size))
    order = np.argsort(-np.abs(weight).reshape(-1), kind="stable")
    mask = np.zeros(weight.size, dtype=bool)
    mask[order[:keep]] = True
    return mask.reshape(weight.shape)


POLICIES = ("paper", "uniform")


def layer_densities(model: nn.Module, density: float, policy: str = "paper") -> dict[str, float]:
    """Each prunable layer's density, so that the network as a whole keeps `density` of its weights."""
    check_density(density)
    layers = prunable(model)
    if policy == "uniform":
        return {name: density for name, _ in layers}
    if policy != "paper":
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    last = layers[-1][0]
    pruned = [n for i, (n, p) in enumerate(layers) if i > 0 and (n == last or p.data.ndim == 4 and p.data.shape[2] > 1)]
    total = sum(p.data.size for _, p in layers)
    dense = sum(p.data.size for n, p in layers if n not in pruned)
    share = (density * total - dense) / max(1, total - dense)
    if share <= 0:
        raise ValueError(f"density {density} is below what the 'paper' policy can reach "
                         f"({dense / total:.3f} with its large layers emptied); use policy 'uniform'")
    return {n: (min(1.0, share) if n in pruned else 1.0) for n, _ in layers}


def prune(model: nn.Module, density: float, policy: str = "uniform") -> dict[str, np.ndarray]:
    """Zeroes, in place, all but the largest weights of each layer (densities by `policy`); -> masks."""
    masks = {}
    densities = layer_densities(model, density, policy)
    for name, p in prunable(model):
        masks[name] = magnitude_mask(p.data, densities[name])
        p.data *= masks[name]
    return masks


def gradient_masker(model: nn.Module, masks: dict[str, np.ndarray]):
    """-> a function that zeroes the gradients of pruned weights: the step's `after_backward`
    (optim/step.py), run when the gradients are known and before the update.

    With its gradient zero, a pruned weight (zero already) stays exactly zero under SGD with momentum
    and weight decay, LARS and Adam alike, given an optimizer started after pruning (as fine-tuning
    does): its momentum buffer (Adam: both moments) starts at zero and stays there, and weight decay
    adds weight_decay * 0. (An optimizer that had built momentum before pruning would still move them.)
    """
    params = dict(model.named_parameters())
    pairs = [(params[name], mask) for name, mask in masks.items()]

    def zero_pruned_gradients() -> None:
        for p, mask in pairs:
            p.grad *= mask
    return zero_pruned_gradients
