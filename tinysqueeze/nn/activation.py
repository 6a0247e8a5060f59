"""ReLU and (inverted) dropout: element-wise layers with no parameters."""
from __future__ import annotations

import numpy as np

from .backend import relu_backward
from .module import Module, layer_error


class ReLU(Module):
    """y = max(x, 0).  Backward: dx = dout where y > 0, else 0.

    Any shape in, the same shape out. The derivative at exactly 0 is taken as 0 (PyTorch's choice).
    inplace=True (as torchvision's SqueezeNet has it) writes y over x: no new array, one pass over
    memory. Backward needs only where y is positive, so it keeps y itself (not a mask): nothing may
    write into a ReLU's output before backward has run.
    Backward returns a new array and never writes into `dout`: the caller may still need it (a Fire
    module with a simple bypass adds the same `dout` to its input's gradient afterwards; lesson 3).
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = bool(inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise layer_error(self, f"expected a floating-point numpy array, got {type(x).__name__}")
        y = np.maximum(x, 0, out=x if self.inplace else None)   # (np.where(x > 0, x, 0): 4-10x slower, lesson 14)
        self.keep_for_backward(y)
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return relu_backward(dout, self.kept_for_backward())   # dout * (y > 0), in one pass (kernels.py)


class Dropout(Module):
    """Inverted dropout: in training, zero each element with probability p and scale the rest by 1/(1-p).

    In eval() it is the identity, so nothing needs rescaling at test time. The mask comes from the
    layer's own seeded generator, a new one each call; to draw the same mask again, put the generator's
    state back first (`generator_state` / `set_generator_state`, as the gradient checker does).
    Any shape in, the same shape out. Backward: dx = dout * mask.
    """

    def __init__(self, p: float = 0.5, seed: int | None = 0):
        super().__init__()
        self.p = float(p)
        if not 0.0 <= self.p < 1.0:
            raise layer_error(self, f"p must be in [0, 1), got {p}")
        self.rng = np.random.default_rng(seed)

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def generator_state(self) -> dict:
        return self.rng.bit_generator.state

    def set_generator_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
            raise layer_error(self, f"expected a floating-point numpy array, got {type(x).__name__}")
        if not self.training or self.p == 0.0:
            self.keep_for_backward(IDENTITY)                            # backward passes dout through
            return x
        keep = self.rng.random(x.shape) >= self.p                      # the elements kept
        mask = (keep / (1.0 - self.p)).astype(x.dtype)                 # the mask, already scaled
        self.keep_for_backward(mask)
        return x * mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        mask = self.kept_for_backward()
        return dout if mask is IDENTITY else dout * mask


IDENTITY = "identity"     # what Dropout keeps when it dropped nothing (eval mode, or p = 0)
