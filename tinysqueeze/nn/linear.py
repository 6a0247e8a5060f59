"""Fully connected layer, Flatten and Identity (AlexNet's classifier; SqueezeNet has none)."""
from __future__ import annotations

import numpy as np

from . import init
from .backend import matmul
from .module import Module, Parameter, check_input, layer_error


class Linear(Module):
    """y = x @ weight.T + bias (torch.nn.Linear).

    x: (N, in_features) -> (N, out_features); weight: (out_features, in_features).
    Backward: dW = dout.T @ x, db = dout summed over N, dx = dout @ W.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, rng=None):
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        if self.in_features <= 0 or self.out_features <= 0:
            raise layer_error(self, "in_features and out_features must be positive")
        rng = init.get_rng(rng)
        bound = init.default_bound(self.in_features)
        self.weight = Parameter(init.uniform(rng, bound, (self.out_features, self.in_features)))
        self.bias = Parameter(init.uniform(rng, bound, (self.out_features,))) if bias else None

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, in_features) -> (N, out_features)"""
        check_input(self, x, f"(N, {self.in_features})", 2, self.in_features)
        out = matmul(x, self.weight.data.T.astype(x.dtype, copy=False))     # (N, out)
        if self.bias is not None:
            out += self.bias.data.astype(x.dtype, copy=False)
        self.keep_for_backward(x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, out_features) -> dx: (N, in_features)"""
        x = self.kept_for_backward()
        self.weight.grad += matmul(dout.T, x)                               # (out, in)
        if self.bias is not None:
            self.bias.grad += dout.sum(axis=0)
        return matmul(dout, self.weight.data.astype(dout.dtype, copy=False))  # (N, in)


class Identity(Module):
    """x -> x, and dout -> dout: a placeholder, as torch.nn.Identity. A Fire module built with the
    batch inside holds one where each ReLU was: its convolutions apply their ReLU themselves
    (nn/fast/layers.py's Conv2dReLUCNHW)."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout


class Flatten(Module):
    """x: (N, d1, d2, ...) -> (N, d1*d2*...). Backward reshapes back."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim < 2:
            raise layer_error(self, f"expected an array of shape (N, ...), got {getattr(x, 'shape', type(x))}")
        self.keep_for_backward(x.shape)
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.kept_for_backward())
