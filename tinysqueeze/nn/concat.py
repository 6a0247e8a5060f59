"""Channel concatenation: how a Fire module joins its expand1x1 and expand3x3 branches."""
from __future__ import annotations

import numpy as np

from .module import Module, layer_error


class Concat(Module):
    """Joins branches along the channel axis (axis 1), like torch.cat(xs, 1).

    forward(list of (N, C_k, H, W)) -> (N, sum C_k, H, W)
    backward(dout) -> list of (N, C_k, H, W): each branch gets its own slice of dout (a view, not a
    copy: the layers below must not write into it, and ours never do).
    """

    def forward(self, xs) -> np.ndarray:
        if not isinstance(xs, (list, tuple)) or len(xs) == 0:
            raise layer_error(self, f"expected a non-empty list of arrays, got {type(xs).__name__}")
        first = xs[0]
        for k, x in enumerate(xs):
            if not isinstance(x, np.ndarray) or x.ndim < 2:
                raise layer_error(self, f"branch {k}: expected an array of shape (N, C, ...), got {getattr(x, 'shape', type(x))}")
            if x.shape[0] != first.shape[0] or x.shape[2:] != first.shape[2:]:
                raise layer_error(self, f"branch {k} has shape {x.shape}, expected (N, C_k) + {first.shape[2:]} "
                                        f"with N = {first.shape[0]}, as branch 0 {first.shape}")
        self.cache = [x.shape[1] for x in xs]
        return np.concatenate(xs, axis=1)

    def backward(self, dout: np.ndarray) -> list:
        grads, start = [], 0
        for channels in self.cache:
            grads.append(dout[:, start : start + channels])
            start += channels
        return grads
