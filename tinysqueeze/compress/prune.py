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
During fine-tuning, `gradient_masker` zeroes, between backward and the update (the training step's
`after_backward`, optim/step.py), the pruned weights' gradients and the optimizer's memory of them
(momentum, Adam's moments), so neither a gradient nor momentum -- even momentum built before pruning
-- revives a pruned weight.
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
    magnitude = np.abs(weight).reshape(-1)
    if keep == 0:
        return np.zeros(weight.shape, dtype=bool)
    # The keep-th largest magnitude, found without sorting everything (np.partition: linear time; a full
    # sort of a 50-million-weight layer takes a minute): keep what is above it, then its ties by index.
    threshold = np.partition(magnitude, weight.size - keep)[weight.size - keep]
    mask = magnitude > threshold
    ties = np.flatnonzero(magnitude == threshold)[: keep - int(mask.sum())]
    mask[ties] = True
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


# The per-parameter state an optimizer keeps, by attribute name: SGD's and LARS's momentum buffers
# (`buffers`, None until the first step), Adam's moments (`m`, `v`); each a list aligned with `params`.
OPTIMIZER_STATE = ("buffers", "m", "v")


def gradient_masker(model: nn.Module, masks: dict[str, np.ndarray], optimizer):
    """-> a function to run between backward and the update (the step's `after_backward`, optim/step.py)
    that holds the pruned weights at exactly zero through `optimizer`'s step: it zeroes their gradients,
    their entries in the optimizer's state (momentum buffers; Adam's two moments) and the weights.

    The update of a pruned weight is then zero under SGD with momentum and weight decay, LARS and Adam
    alike: no gradient, no momentum (weight decay adds weight_decay * 0), whatever the optimizer built
    before pruning. Without its state cleared, an optimizer that had trained the dense network would
    keep moving the pruned weights on the momentum they had (a 10-class SqueezeNet 1.1 trained 5 steps,
    then pruned to half: one more step made all 362,332 pruned weights non-zero again under LARS and
    SGD, 64,314 under Adam).
    optimizer: one that keeps its state in OPTIMIZER_STATE (SGD, LARS, Adam, the course's SGD).
    """
    params = dict(model.named_parameters())
    position = {id(p): k for k, p in enumerate(getattr(optimizer, "params", None) or [])}
    state_names = [name for name in OPTIMIZER_STATE if isinstance(getattr(optimizer, name, None), list)]
    if not position or not state_names:
        raise TypeError(f"gradient_masker: {type(optimizer).__name__} keeps no per-parameter state it knows "
                        f"(params, and {', '.join(OPTIMIZER_STATE)}), so it cannot hold pruned weights at zero "
                        "through its step; use SGD, LARS or Adam")
    entries = [(params[name], mask, position.get(id(params[name]))) for name, mask in masks.items()]

    def zero_pruned() -> None:
        for p, mask, k in entries:
            p.grad *= mask
            p.data *= mask
            if k is None:                           # a parameter this optimizer does not update
                continue
            for name in state_names:
                state = getattr(optimizer, name)[k]     # looked up each time: load_state_dict replaces them
                if state is not None:
                    state *= mask
    return zero_pruned
