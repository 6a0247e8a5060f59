"""Max, average and adaptive (global) average pooling.

Follows torch.nn.MaxPool2d / AvgPool2d / AdaptiveAvgPool2d, including PyTorch's output-size rule
with `ceil_mode` (see `kernels.pool_output_size`). SqueezeNet uses MaxPool2d(3, 2, ceil_mode=True),
Caffe's rounding, and global average pooling in place of fully connected layers.
"""
from __future__ import annotations

import math

import numpy as np

from .backend import maxpool_backward, maxpool_forward
from .conv import pair
from .kernels import pool_output_size
from .module import Module, check_input, is_grad_enabled, layer_error


class MaxPool2d(Module):
    """out[n, c, oh, ow] = max of the KHxKW window starting at (oh*stride - padding, ow*stride - padding).

    x: (N, C, H, W) -> (N, C, H_out, W_out). Padding counts as -inf.
    Backward sends each output's gradient to the one input pixel that won its window (the cache keeps
    which tap won). Tie rule: the first maximum in row-major window order wins, and a NaN wins (as in PyTorch);
    overlapping windows (3x3, stride 2) that pick the same pixel add their gradients.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size[0]
        self.padding = int(padding)
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size) <= 0 or self.stride <= 0:
            raise layer_error(self, "kernel_size and stride must be positive")
        if not 0 <= self.padding <= min(self.kernel_size) // 2:
            raise layer_error(self, f"padding must be between 0 and half the kernel, got {self.padding}")

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size[0] if self.kernel_size[0] == self.kernel_size[1] else self.kernel_size}"
                f", stride={self.stride}, padding={self.padding}, ceil_mode={self.ceil_mode}")

    def output_shape(self, x_shape: tuple) -> tuple:
        n, c, h, w = x_shape
        kh, kw = self.kernel_size
        return (n, c, pool_output_size(h, kh, self.stride, self.padding, self.ceil_mode),
                pool_output_size(w, kw, self.stride, self.padding, self.ceil_mode))

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H_out, W_out)"""
        check_input(self, x, "(N, C, H, W)", 4)
        kh, kw = self.kernel_size
        _, _, h_out, w_out = self.output_shape(x.shape)
        if x.shape[2] + 2 * self.padding < kh or x.shape[3] + 2 * self.padding < kw:
            raise layer_error(self, f"the {kh}x{kw} window is larger than the padded input of shape {x.shape}")
        # under no_grad() no backward will come: the maxima alone, no argmax (faster; lesson 14)
        out, argmax = maxpool_forward(x, kh, kw, self.stride, self.padding, h_out, w_out, taps=is_grad_enabled())
        self.keep_for_backward((x.shape, argmax))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W)"""
        x_shape, argmax = self.kept_for_backward()
        kh, kw = self.kernel_size
        return maxpool_backward(dout, argmax, x_shape, kh, kw, self.stride, self.padding)


class AvgPool2d(Module):
    """Mean of each KHxKW window (no padding, floor rounding).

    x: (N, C, H, W) -> (N, C, H_out, W_out), H_out = (H - KH) // stride + 1.
    Backward: each output's gradient, divided by KH*KW, goes to every pixel of its window.
    """

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = int(stride) if stride is not None else self.kernel_size[0]
        if min(self.kernel_size) <= 0 or self.stride <= 0:
            raise layer_error(self, "kernel_size and stride must be positive")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H_out, W_out)"""
        check_input(self, x, "(N, C, H, W)", 4)
        kh, kw = self.kernel_size
        n, c, h, w = x.shape
        if h < kh or w < kw:
            raise layer_error(self, f"the {kh}x{kw} window is larger than the input of shape {x.shape}")
        s = self.stride
        h_out, w_out = (h - kh) // s + 1, (w - kw) // s + 1
        out = np.zeros((n, c, h_out, w_out), dtype=x.dtype)
        for i in range(kh):
            for j in range(kw):
                out += x[:, :, i : i + s * h_out : s, j : j + s * w_out : s]
        out /= kh * kw
        self.keep_for_backward(x.shape)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W)"""
        x_shape = self.kept_for_backward()
        kh, kw = self.kernel_size
        s = self.stride
        _, _, h_out, w_out = dout.shape
        dx = np.zeros(x_shape, dtype=dout.dtype)
        share = dout / (kh * kw)
        for i in range(kh):
            for j in range(kw):
                dx[:, :, i : i + s * h_out : s, j : j + s * w_out : s] += share
        return dx


def adaptive_bins(size: int, out_size: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling bins: bin i covers [floor(i*size/out), ceil((i+1)*size/out))."""
    return [(math.floor(i * size / out_size), math.ceil((i + 1) * size / out_size)) for i in range(out_size)]


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, whatever the input size (torch.nn.AdaptiveAvgPool2d).

    x: (N, C, H, W) -> (N, C, OH, OW). With output_size=1 this is global average pooling:
    out[n, c] = mean of x[n, c], and backward spreads dout / (H*W) over every pixel.
    """

    def __init__(self, output_size=1):
        super().__init__()
        self.output_size = pair(output_size)
        if min(self.output_size) <= 0:
            raise layer_error(self, "output_size must be positive")

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, OH, OW)"""
        check_input(self, x, "(N, C, H, W)", 4)
        n, c, h, w = x.shape
        oh, ow = self.output_size
        self.keep_for_backward(x.shape)
        if (oh, ow) == (1, 1):
            return x.mean(axis=(2, 3), keepdims=True)                      # (N, C, 1, 1)
        out = np.empty((n, c, oh, ow), dtype=x.dtype)
        for i, (h0, h1) in enumerate(adaptive_bins(h, oh)):
            for j, (w0, w1) in enumerate(adaptive_bins(w, ow)):
                out[:, :, i, j] = x[:, :, h0:h1, w0:w1].mean(axis=(2, 3))
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, OH, OW) -> dx: (N, C, H, W)"""
        n, c, h, w = self.kept_for_backward()
        oh, ow = self.output_size
        if (oh, ow) == (1, 1):
            return np.broadcast_to(dout / (h * w), (n, c, h, w)).copy()
        dx = np.zeros((n, c, h, w), dtype=dout.dtype)
        for i, (h0, h1) in enumerate(adaptive_bins(h, oh)):
            for j, (w0, w1) in enumerate(adaptive_bins(w, ow)):
                dx[:, :, h0:h1, w0:w1] += dout[:, :, i : i + 1, j : j + 1] / ((h1 - h0) * (w1 - w0))
        return dx
