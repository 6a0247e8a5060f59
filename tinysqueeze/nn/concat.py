"""Channel concatenation: how a Fire module joins its expand1x1 and expand3x3 branches."""
from __future__ import annotations

import numpy as np

from .module import Module, layer_error


class Concat(Module):
    """Joins branches along the channel axis, like torch.cat(xs, 1).

    forward(list of (N, C_k, H, W)) -> (N, sum C_k, H, W)
    backward(dout) -> list of (N, C_k, H, W): each branch gets its own slice of dout (a view, not a
    copy: the layers below must not write into it, and ours never do).
    (`ConcatCNHW` in nn/fast/layers.py joins (C_k, N, H, W) branches along axis 0 instead.)
    """

    axis = 1                         # the channel axis of (N, C, H, W)

    def forward(self, xs) -> np.ndarray:
        if not isinstance(xs, (list, tuple)) or len(xs) == 0:
            raise layer_error(self, f"expected a non-empty list of arrays, got {type(xs).__name__}")
        axis, first = self.axis, xs[0]
        for k, x in enumerate(xs):
            if not isinstance(x, np.ndarray) or x.ndim < 2:
                raise layer_error(self, f"branch {k}: expected an array of shape (N, C, ...), got {getattr(x, 'shape', type(x))}")
            if x.shape[:axis] + x.shape[axis + 1:] != first.shape[:axis] + first.shape[axis + 1:]:
                raise layer_error(self, f"branch {k} has shape {x.shape}, expected the shape of branch 0 "
                                        f"{first.shape} but for its channels (axis {axis})")
        self.keep_for_backward([x.shape[axis] for x in xs])
        return np.concatenate(xs, axis=axis)

    def backward(self, dout: np.ndarray) -> list:
        ends = np.cumsum(self.kept_for_backward())   # where each branch's channels end
        return np.split(dout, ends[:-1], axis=self.axis)
