"""2-D convolution as im2col + one matrix product per image.

Follows torch.nn.Conv2d: weight (F, C, KH, KW), bias (F,), cross-correlation (no kernel flip),
H_out = (H + 2*padding - KH) // stride + 1. Activations in PyTorch's layout, x (N, C, H, W).

This is the layer the lessons explain (lesson 1). SqueezeNet's features run its fast twin,
`Conv2dCNHW` (nn/fast/layers.py: the batch inside, ONE matrix product for the whole batch; lesson 14),
built so where the network is defined (models/squeezenet.py).
"""
from __future__ import annotations

import numpy as np

from . import init
from .backend import col2im, im2col, matmul
from .kernels import conv_output_size
from .module import Module, Parameter, check_input, layer_error


def pair(value) -> tuple[int, int]:
    """3 -> (3, 3); (3, 1) -> (3, 1)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"expected an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


class Conv2d(Module):
    """y[n, f] = sum_c weight[f, c] (*) x[n, c] + bias[f].

    x: (N, C, H, W) -> (N, F, H_out, W_out). Forward unfolds x into cols: (N, C*KH*KW, H_out*W_out)
    and multiplies weight.reshape(F, C*KH*KW) @ cols for every image at once. A 1x1 convolution
    with stride 1 and no padding is already a matrix product: x.reshape(N, C, H*W) is its cols,
    so it skips im2col (and col2im) entirely.

    Backward, with dY = dout.reshape(N, F, L):
        dW = sum_n dY[n] @ cols[n].T        db = sum over n and L of dY
        dcols = W.T @ dY[n]                  dx = col2im(dcols)

    input_grad=False: for a layer that sees the images, nothing needs their gradient (as PyTorch's
    input.requires_grad = False): backward returns None and skips W.T @ dY and col2im, most of its work.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, rng=None,
                 input_grad=True):
        super().__init__()
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = pair(kernel_size)
        self.stride, self.padding = int(stride), int(padding)
        if self.in_channels <= 0 or self.out_channels <= 0:
            raise layer_error(self, "in_channels and out_channels must be positive")
        if min(self.kernel_size) <= 0 or self.stride <= 0 or self.padding < 0:
            raise layer_error(self, "kernel_size and stride must be positive and padding >= 0")
        kh, kw = self.kernel_size
        rng = init.get_rng(rng)
        bound = init.default_bound(self.in_channels * kh * kw)
        self.weight = Parameter(init.uniform(rng, bound, (self.out_channels, self.in_channels, kh, kw)))
        self.bias = Parameter(init.uniform(rng, bound, (self.out_channels,))) if bias else None
        self.input_grad = bool(input_grad)

    def extra_repr(self) -> str:
        kh, kw = self.kernel_size
        k = kh if kh == kw else self.kernel_size
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={k}, stride={self.stride}"
                f", padding={self.padding}" + ("" if self.bias is not None else ", bias=False")
                + ("" if self.input_grad else ", input_grad=False"))

    @property
    def is_pointwise(self) -> bool:
        """True for a 1x1, stride-1, unpadded convolution: a plain matrix product, no im2col."""
        return self.kernel_size == (1, 1) and self.stride == 1 and self.padding == 0

    def output_shape(self, x_shape: tuple) -> tuple:
        n, _, h, w = x_shape
        return (n, self.out_channels) + self.output_size(h, w)

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """(H_out, W_out) for an H x W input; a kernel larger than the padded input is refused."""
        kh, kw = self.kernel_size
        h_out = conv_output_size(h, kh, self.stride, self.padding)
        w_out = conv_output_size(w, kw, self.stride, self.padding)
        if h_out <= 0 or w_out <= 0:
            raise layer_error(self, f"the {kh}x{kw} kernel is larger than the padded input "
                                    f"({h + 2 * self.padding}x{w + 2 * self.padding})")
        return h_out, w_out

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, F, H_out, W_out)"""
        check_input(self, x, f"(N, {self.in_channels}, H, W)", 4, self.in_channels)
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        f, (h_out, w_out) = self.out_channels, self.output_size(h, w)
        if self.is_pointwise:
            cols = x.reshape(n, c, h * w)                                   # (N, C, H*W), no copy
        else:
            cols = im2col(x, kh, kw, self.stride, self.padding, h_out, w_out)  # (N, C*KH*KW, L)
        w2d = self.weight.data.reshape(f, -1).astype(x.dtype, copy=False)  # (F, C*KH*KW)
        out = self.multiply(w2d, cols)                                      # (N, F, L)
        if self.bias is not None:
            out += self.bias.data.astype(x.dtype, copy=False)[:, None]
        self.keep_for_backward((x.shape, cols))
        return out.reshape(n, f, h_out, w_out)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, F, H_out, W_out) -> dx: (N, C, H, W) (None if input_grad is False);
        adds into weight.grad and bias.grad."""
        x_shape, cols = self.kept_for_backward()
        n, f, h_out, w_out = dout.shape
        kh, kw = self.kernel_size
        dy = dout.reshape(n, f, h_out * w_out)                              # (N, F, L)
        dw = self.weight_gradient(dy, cols)                                 # (F, C*KH*KW)
        self.weight.grad += dw.reshape(self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=(0, 2))
        if not self.input_grad:
            return None
        w2d = self.weight.data.reshape(f, -1).astype(dout.dtype, copy=False)
        dcols = self.multiply(w2d.T, dy)                                    # (N, C*KH*KW, L)
        if self.is_pointwise:
            return dcols.reshape(x_shape)
        return col2im(dcols, x_shape, kh, kw, self.stride, self.padding, h_out, w_out)

    # The two kinds of matrix product a convolution makes, each one product per image. (Conv2dSmallMaps,
    # nn/fast/layers.py, runs them as one product for the whole batch where the maps are tiny.)
    def multiply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a: (P, Q), b: (N, Q, L) -> (N, P, L): a @ b[n] for every image n."""
        return matmul(a, b)

    def weight_gradient(self, dy: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """dy: (N, F, L), cols: (N, C*KH*KW, L) -> dW: (F, C*KH*KW), the sum over n of dy[n] @ cols[n].T."""
        return matmul(dy, cols.transpose(0, 2, 1)).sum(axis=0)
