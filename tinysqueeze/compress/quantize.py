"""Weight sharing by k-means (Deep Compression, Han et al. 2016), and fine-tuning of the shared values.

Each layer's kept (non-zero) weights are clustered into 2^bits - 1 values; code 0 is reserved for
the pruned weights and always decodes to 0.0. Centroids start linearly spaced between the smallest
and largest weight ("linear initialisation", which the paper found best), then Lloyd's algorithm
moves each to the mean of its weights.

After sharing, a weight is `codebook[code]`. Fine-tuning updates the *centroids*: since each weight
that uses centroid k equals it, dL/dc_k = sum of dL/dw over those weights (`centroid_gradient`);
the codes never change.
"""
from __future__ import annotations

import numpy as np

from .. import nn


def check_bits(bits: int) -> int:
    if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an integer from 1 to 8, got {bits!r}")
    return int(bits)


def kmeans_1d(values: np.ndarray, clusters: int, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """values (M,) -> centroids (clusters,) float32, assignment (M,) in [0, clusters)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros(clusters, np.float32), np.zeros(0, np.int64)
    centroids = np.linspace(values.min(), values.max(), clusters)
    # In one dimension a cluster is a run of the sorted values: sorted once, each iteration needs only
    # where the edges cut them (searchsorted) and running sums, not a pass over every weight.
    ordered = np.sort(values)
    running = np.concatenate([[0.0], np.cumsum(ordered)])     # running[i] = sum of the i smallest
    for _ in range(iterations):
        edges = (centroids[1:] + centroids[:-1]) / 2          # sorted centroids: nearest = between edges
        cuts = np.concatenate([[0], np.searchsorted(ordered, edges, side="right"), [ordered.size]])
        counts = np.diff(cuts)                                # cluster k: ordered[cuts[k]:cuts[k+1]]
        sums = running[cuts[1:]] - running[cuts[:-1]]
        moved = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
        moved.sort()
        if np.allclose(moved, centroids):
            break
        centroids = moved
    edges = (centroids[1:] + centroids[:-1]) / 2
    return centroids.astype(np.float32), np.searchsorted(edges, values)


def quantize_weight(weight: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """-> codebook (2^bits,) float32 with codebook[0] = 0, codes (same shape as weight) uint8."""
    bits = check_bits(bits)
    flat = weight.reshape(-1)
    kept = flat != 0
    codebook = np.zeros(2 ** bits, dtype=np.float32)
    codes = np.zeros(flat.size, dtype=np.uint8)
    if kept.any():
        centroids, assign = kmeans_1d(flat[kept], 2 ** bits - 1)
        codebook[1:] = centroids
        codes[kept] = assign + 1
    return codebook, codes.reshape(weight.shape)


def centroid_gradient(grad: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """dL/dcodebook[k] = sum of dL/dw over the weights whose code is k; code 0 (pruned) gets none."""
    g = np.bincount(codes.reshape(-1), weights=grad.reshape(-1).astype(np.float64), minlength=n_codes)
    g[0] = 0.0
    return g.astype(np.float32)


class SharedWeights:
    """The codebooks of a model as Parameters, so any optimizer can fine-tune the centroids.

    `after_backward()` (the training step's hook, optim/step.py) fills each codebook's gradient from
    the model's; after the optimizer's step, `write_weights()` sets every weight to codebook[code]
    (`SharedWeightsOptimizer` does both around any optimizer).
    """

    def __init__(self, model: nn.Module, bits: int, layers: list[str]):
        params = dict(model.named_parameters())
        self.entries = []
        for name in layers:
            codebook, codes = quantize_weight(params[name].data, bits)
            self.entries.append((params[name], nn.Parameter(codebook), codes))
        self.write_weights()

    def parameters(self) -> list[nn.Parameter]:
        return [codebook for _, codebook, _ in self.entries]

    def after_backward(self) -> None:
        for weight, codebook, codes in self.entries:
            codebook.grad = centroid_gradient(weight.grad, codes, codebook.data.size)

    def write_weights(self) -> None:
        for weight, codebook, codes in self.entries:
            codebook.data[0] = 0.0
            weight.data = codebook.data[codes].astype(weight.data.dtype)


class SharedWeightsOptimizer:
    """An optimizer of the codebooks (and of any other parameters given to `optimizer`) for a model
    whose weights are shared: zero_grad clears the whole model's gradients (the weights' own gradients
    are summed into their centroids' by `shared.after_backward`, which train_step runs between backward
    and step), and step updates the codebooks, then writes every weight from its codebook."""

    def __init__(self, optimizer, model: nn.Module, shared: SharedWeights):
        self.optimizer, self.model, self.shared = optimizer, model, shared

    def zero_grad(self) -> None:
        self.model.zero_grad()

    def step(self) -> None:
        self.optimizer.step()
        self.shared.write_weights()
