"""The batch inside: the layers of SqueezeNet's features on activations laid out (C, N, H, W).

Every layer of tinysqueeze.nn takes PyTorch's (N, C, H, W). For a convolution that means one matrix
product per image, and SqueezeNet's products are thin: at 64 px a Fire module's squeeze is
(16 x 128) @ (128 x 225) per image. With the channels first and the batch inside, (C, N, H, W),
the columns of all images sit side by side and each layer is ONE product, (16 x 128) @ (128 x 14400),
which BLAS runs far closer to its peak (lesson 14 has the measurements). Pooling, ReLU and dropout
work element by element or plane by plane, so they do not care which axis is which; a convolution
and a concatenation do, and have their batch-inside twins here: `Conv2dCNHW` and `ConcatCNHW`
(as CS231n's fast_layers.py sits beside its naive layers).

`CNHWSequential` puts them to work and keeps PyTorch's interface at its edges: it takes and returns
(N, C, H, W), transposing once on the way in and once on the way out (and back in backward), so
`model.features(x)` is what it is in torchvision and the state_dict keys are unchanged.
"""
from __future__ import annotations

import numpy as np

from .concat import Concat
from .conv import Conv2d
from .kernels import col2im_cnhw, im2col_cnhw, matmul
from .module import Module, Sequential, check_input


def to_cnhw(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N, H, W), contiguous."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


def to_nchw(x: np.ndarray) -> np.ndarray:
    """(C, N, H, W) -> (N, C, H, W), contiguous: the same swap of the first two axes, back."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


class Conv2dCNHW(Conv2d):
    """Conv2d with the batch inside: x (C, N, H, W) -> (F, N, H_out, W_out).

    The same weights, settings and arithmetic as Conv2d, but the columns of all images form one
    matrix, cols: (C*KH*KW, N*L), so forward and each of the two products of backward is ONE matrix
    product, which BLAS runs 1.3-7x faster than a product per image on SqueezeNet's thin layers:
        forward   y = W (F, C*KH*KW) @ cols
        backward  dW = dY @ cols.T      db = sum of dY over N*L      dcols = W.T @ dY, dx = col2im(dcols)
    with dY = dout.reshape(F, N*L).
    """

    def output_shape(self, x_shape: tuple) -> tuple:
        _, n, h, w = x_shape
        return (self.out_channels, n) + self.output_size(h, w)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (C, N, H, W) -> (F, N, H_out, W_out)"""
        check_input(self, x, f"({self.in_channels}, N, H, W)", 4, self.in_channels, channel_axis=0)
        c, n, h, w = x.shape
        kh, kw = self.kernel_size
        f, (h_out, w_out) = self.out_channels, self.output_size(h, w)
        if self.is_pointwise:
            cols = x.reshape(c, n * h * w)                                  # (C, N*H*W): already the matrix
        else:
            cols = im2col_cnhw(x, kh, kw, self.stride, self.padding, h_out, w_out)  # (C*KH*KW, N*L)
        out = matmul(self.weight.data.reshape(f, -1).astype(x.dtype, copy=False), cols)   # (F, N*L)
        if self.bias is not None:
            out += self.bias.data.astype(x.dtype, copy=False)[:, None]
        self.keep_for_backward((x.shape, cols))
        return out.reshape(f, n, h_out, w_out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (F, N, H_out, W_out) -> dx: (C, N, H, W) (None if input_grad is False);
        adds into weight.grad and bias.grad."""
        x_shape, cols = self.kept_for_backward()
        f, n, h_out, w_out = dout.shape
        kh, kw = self.kernel_size
        dy = dout.reshape(f, n * h_out * w_out)                             # (F, N*L)
        self.weight.grad += matmul(dy, cols.T).reshape(self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=1)
        if not self.input_grad:
            return None
        dcols = matmul(self.weight.data.reshape(f, -1).astype(dout.dtype, copy=False).T, dy)   # (C*KH*KW, N*L)
        if self.is_pointwise:
            return dcols.reshape(x_shape)
        return col2im_cnhw(dcols, x_shape, kh, kw, self.stride, self.padding, h_out, w_out)


class ConcatCNHW(Concat):
    """Concat with the batch inside: (C_k, N, H, W) branches joined along axis 0, where each branch
    is one contiguous block of the result (and backward's slices are contiguous too)."""

    axis = 0                         # the channel axis of (C, N, H, W)


TWINS = {Conv2d: Conv2dCNHW, Concat: ConcatCNHW}


def twin_of(layer: Module) -> Module:
    """`layer` (a Conv2d or a Concat) as its batch-inside twin: the same settings and the very same
    Parameter objects, so weights, gradients and state_dict keys are shared, not copied. (The twin's
    __init__ is not run: a Conv2d's would draw new random weights.)"""
    twin = object.__new__(TWINS[type(layer)])
    Module.__init__(twin)
    for name, value in vars(layer).items():
        if name not in ("_parameters", "_modules"):
            setattr(twin, name, value)                 # settings, and the Parameters themselves
    return twin


def to_batch_inside(module: Module) -> Module:
    """Puts in place of every Conv2d and Concat below `module` (at any depth: inside a Fire module
    too) its batch-inside twin (`twin_of`), at the same name, so in the same order. -> module"""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) in TWINS:
                setattr(parent, name, twin_of(child))
    return module


class CNHWSequential(Sequential):
    """A Sequential run with the batch inside. x: (N, C, H, W) -> (N, C', H', W'), like any layer.

    Its constructor calls `to_batch_inside(self)`: every Conv2d and Concat among the modules given (at
    any depth) is replaced by its twin, Conv2dCNHW or ConcatCNHW, holding the same Parameters; so
    inside, every layer sees (C, N, H, W). (A Fire module given holds the twins from then on.)
    """

    def __init__(self, *modules: Module):
        super().__init__(*modules)
        to_batch_inside(self)

    def forward(self, x: np.ndarray) -> np.ndarray:
        return to_nchw(super().forward(to_cnhw(x)))

    def backward(self, dout: np.ndarray):
        dx = super().backward(to_cnhw(dout))
        return None if dx is None else to_nchw(dx)        # None: the first layer needed no input gradient
