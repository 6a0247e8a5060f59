"""Softmax cross-entropy, computed stably with the log-sum-exp trick."""
from __future__ import annotations

import numpy as np

from .module import Module, layer_error


class SoftmaxCrossEntropy(Module):
    """loss = mean over n of -log softmax(logits[n])[labels[n]]  (torch.nn.CrossEntropyLoss).

    logits: (N, K) floats, labels: (N,) integers in [0, K) -> a Python float.
    Stable: log softmax(z) = (z - max z) - log sum exp(z - max z), so exp never overflows.
    Backward: dlogits = (softmax(logits) - onehot(labels)) / N, times `dout` (1 by default).
    """

    def forward(self, logits: np.ndarray, labels) -> float:
        if not isinstance(logits, np.ndarray) or logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
            raise layer_error(self, f"expected float logits of shape (N, K), got {getattr(logits, 'shape', type(logits))}")
        labels = np.asarray(labels)
        n, k = logits.shape
        if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
            raise layer_error(self, f"expected integer labels of shape ({n},), got {labels.dtype} of shape {labels.shape}")
        if n and (labels.min() < 0 or labels.max() >= k):
            bad = labels[(labels < 0) | (labels >= k)][0]
            raise layer_error(self, f"label {bad} is out of range: expected labels in [0, {k - 1}] for {k} classes")
        shifted = logits - logits.max(axis=1, keepdims=True)               # (N, K), max is 0
        log_norm = np.log(np.exp(shifted).sum(axis=1, keepdims=True))      # (N, 1)
        log_probs = shifted - log_norm                                     # (N, K)
        self.cache = (np.exp(log_probs), labels)
        return float(-log_probs[np.arange(n), labels].mean())

    def backward(self, dout: float = 1.0) -> np.ndarray:
        """-> dlogits: (N, K)"""
        probs, labels = self.cache
        n = probs.shape[0]
        dlogits = probs.copy()
        dlogits[np.arange(n), labels] -= 1.0
        return dlogits * (dout / n)
