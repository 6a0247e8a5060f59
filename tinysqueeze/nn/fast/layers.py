"""The fast twins of Conv2d and Concat, and the container that runs them: what SqueezeNet's features run.

Every layer of tinysqueeze.nn takes PyTorch's (N, C, H, W). For a convolution that means one matrix
product per image, and SqueezeNet's products are thin: at 64 px a Fire module's squeeze is
(16 x 128) @ (128 x 225) per image. With the channels first and the batch inside, (C, N, H, W), the
columns of all images sit side by side and each layer is ONE product, (16 x 128) @ (128 x 14400),
which BLAS runs far closer to its peak (lesson 14 has the measurements). Pooling, ReLU and dropout
work element by element or plane by plane, so they do not care which axis is which; a convolution
and a concatenation do, and have their batch-inside twins here, `Conv2dCNHW` and `ConcatCNHW` (as
CS231n's fast_layers.py sits beside its naive layers). The same weights, settings and arithmetic, and
the same state_dict keys: models/squeezenet.py builds its features from these, and with fast=False
from the plain layers, the same network (tests/models/test_models.py holds the two equal in float64).

`CNHWSequential` keeps PyTorch's interface at its edges: it takes and returns (N, C, H, W),
transposing once on the way in and once on the way out (and back in backward), so
`model.features(x)` is what it is in torchvision.

`Conv2dReLUCNHW` is Conv2dCNHW with the ReLU that follows it fused in: one pass over its output in
each direction instead of two: conv1 and each Fire module's three convolutions, when they are built
with the batch inside.

`Conv2dSmallMaps` is conv10's: a plain (N, C, H, W) convolution whose products, on maps of fewer than
32 pixels (conv10 sees 3x3 at 64 px), run as one product over the whole batch.
"""
from __future__ import annotations

import numpy as np

from ..backend import bias_relu, col2im_cnhw, im2col_cnhw, matmul, relu_bias_backward
from ..concat import Concat
from ..conv import Conv2d
from ..module import Module, Sequential, check_input, layer_error


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
        out, cols = self.product(x)                                         # (F, N*L)
        if self.bias is not None:
            out += self.bias.data.astype(x.dtype, copy=False)[:, None]
        self.keep_for_backward((x.shape, cols))
        return out.reshape(self.output_shape(x.shape))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (F, N, H_out, W_out) -> dx: (C, N, H, W) (None if input_grad is False);
        adds into weight.grad and bias.grad."""
        x_shape, cols = self.kept_for_backward()
        dy = dout.reshape(dout.shape[0], -1)                                # (F, N*L)
        if self.bias is not None:
            self.bias.grad += dy.sum(axis=1)
        return self.product_backward(dy, x_shape, cols)

    def product(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x: (C, N, H, W) -> (W @ cols: (F, N*L), before the bias; cols: (C*KH*KW, N*L)).
        out: (F, N, H_out, W_out), C-contiguous, to write the product into (then returned as (F, N*L))."""
        check_input(self, x, f"({self.in_channels}, N, H, W)", 4, self.in_channels, channel_axis=0)
        c, n, h, w = x.shape
        kh, kw = self.kernel_size
        if self.is_pointwise:
            cols = x.reshape(c, n * h * w)                                  # (C, N*H*W): already the matrix
        else:
            cols = im2col_cnhw(x, kh, kw, self.stride, self.padding, *self.output_size(h, w))  # (C*KH*KW, N*L)
        weight = self.weight.data.reshape(self.out_channels, -1).astype(x.dtype, copy=False)
        if out is None:
            return matmul(weight, cols), cols
        expected = self.output_shape(x.shape)
        if out.shape != expected or out.dtype != x.dtype or not out.flags.c_contiguous:
            raise layer_error(self, f"out must be a C-contiguous {x.dtype} array of shape {expected}, got "
                                    f"{out.dtype} {out.shape}{'' if out.flags.c_contiguous else ', not contiguous'}")
        return matmul(weight, cols, out=out.reshape(self.out_channels, -1)), cols

    def product_backward(self, dy: np.ndarray, x_shape: tuple, cols: np.ndarray) -> np.ndarray | None:
        """dy: (F, N*L), the gradient of W @ cols -> dx: (C, N, H, W) (None if input_grad is False);
        adds dy @ cols.T into weight.grad."""
        f = self.out_channels
        self.weight.grad += matmul(dy, cols.T).reshape(self.weight.data.shape)
        if not self.input_grad:
            return None
        dcols = matmul(self.weight.data.reshape(f, -1).astype(dy.dtype, copy=False).T, dy)     # (C*KH*KW, N*L)
        if self.is_pointwise:
            return dcols.reshape(x_shape)
        kh, kw = self.kernel_size
        _, _, h, w = x_shape
        return col2im_cnhw(dcols, x_shape, kh, kw, self.stride, self.padding, *self.output_size(h, w))


class Conv2dReLUCNHW(Conv2dCNHW):
    """Conv2dCNHW then ReLU, fused: x (C, N, H, W) -> max(conv(x), 0), (F, N, H_out, W_out).

    Apart, the convolution adds its bias in one pass over its output and the ReLU clips it in a second;
    backward, the ReLU masks dout in one pass and the convolution sums the bias's gradient in another.
    Fused, each is one pass (`bias_relu`, `relu_bias_backward` of cnhw_kernels.py): 6-8% of a
    SqueezeNet training step (lesson 14, round 5). The same arithmetic as Conv2dCNHW followed by ReLU.
    Where torchvision has a convolution and its ReLU, the ReLU's place then holds an nn.Identity, as
    PyTorch's torch.ao.quantization.fuse_modules leaves it; the state_dict keys do not change.
    Backward needs the ReLU's output, kept as ReLU keeps it: nothing may write into it before then.
    """

    def extra_repr(self) -> str:
        return super().extra_repr() + ", then ReLU"

    def forward(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """x: (C, N, H, W) -> (F, N, H_out, W_out), every entry >= 0; written into `out` if given (a
        C-contiguous (F, N, H_out, W_out) array: the block of FireCNHW's output that this branch fills)"""
        out, cols = self.product(x, out)                                    # (F, N*L)
        bias = np.zeros(self.out_channels) if self.bias is None else self.bias.data
        y = bias_relu(out, bias.astype(x.dtype, copy=False))                # in place
        self.keep_for_backward((x.shape, cols, y))
        return y.reshape(self.output_shape(x.shape))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (F, N, H_out, W_out), the gradient of the ReLU's output -> dx: (C, N, H, W) (None if
        input_grad is False); adds into weight.grad and bias.grad."""
        x_shape, cols, y = self.kept_for_backward()
        dy, db = relu_bias_backward(dout.reshape(y.shape), y)              # (F, N*L), (F,)
        if self.bias is not None:
            self.bias.grad += db
        return self.product_backward(dy, x_shape, cols)


class ConcatCNHW(Concat):
    """Concat with the batch inside: (C_k, N, H, W) branches joined along axis 0, where each branch
    is one contiguous block of the result (and backward's slices are contiguous too).

    Since each block is contiguous, the branches can also write their outputs straight into it, and
    nothing is left to copy: `blocks` hands out the joined output before the branches run (FireCNHW,
    models/fast_fire.py). Backward is the same either way."""

    axis = 0                         # the channel axis of (C, N, H, W)

    def blocks(self, shapes: list, dtype) -> tuple[np.ndarray, list]:
        """shapes: each branch's output shape, (C_k, N, H, W) -> (out: (sum C_k, N, H, W), not yet
        written; [each branch's block of it, a contiguous view]). The branches must fill their blocks;
        backward then splits dout as after forward."""
        if not shapes or any(tuple(shape[1:]) != tuple(shapes[0][1:]) for shape in shapes):
            raise layer_error(self, f"expected branch shapes (C_k, N, H, W) that differ only in C_k, got {shapes}")
        channels = [shape[0] for shape in shapes]
        out = np.empty((sum(channels),) + tuple(shapes[0][1:]), dtype=dtype)
        self.keep_for_backward(channels)
        return out, np.split(out, np.cumsum(channels)[:-1], axis=0)


class CNHWSequential(Sequential):
    """A Sequential run with the batch inside. x: (N, C, H, W) -> (N, C', H', W'), like any layer.

    Inside, every layer sees (C, N, H, W): its convolutions and concatenations must be the batch-inside
    ones (Conv2dCNHW, ConcatCNHW, at any depth: inside a Fire module too). A plain Conv2d or Concat
    below it is refused when it is built, since it would read the channels as the batch.
    """

    def __init__(self, *modules: Module):
        super().__init__(*modules)
        for name, module in self.named_modules():
            if isinstance(module, (Conv2d, Concat)) and not isinstance(module, (Conv2dCNHW, ConcatCNHW)):
                plain = "Conv2d" if isinstance(module, Conv2d) else "Concat"
                raise layer_error(self, f"{name} is a {type(module).__name__}, which takes (N, C, H, W); inside a "
                                        f"CNHWSequential build it as {plain}CNHW")

    def forward(self, x: np.ndarray) -> np.ndarray:
        return to_nchw(super().forward(to_cnhw(x)))

    def backward(self, dout: np.ndarray):
        dx = super().backward(to_cnhw(dout))
        return None if dx is None else to_nchw(dx)        # None: the first layer needed no input gradient


class Conv2dSmallMaps(Conv2d):
    """Conv2d, (N, C, H, W) in and out, whose products run as one product over the whole batch where the
    maps are tiny (L = H_out * W_out < 32 pixels: conv10 at 32 and 64 px).

    A product per image on a 3x3 map is a thin (P x Q) @ (Q x 9); with the batch laid beside L it is one
    (P x Q) @ (Q x N*L), 2-3x faster for large matrices (measured; lesson 14), copies included:
    the batch-inside idea, for one layer of an (N, C, H, W) network.
    """

    def multiply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a: (P, Q), b: (N, Q, L) -> (N, P, L), a @ b[n] for every image n: one wide product when the
        maps are tiny and the matrix large."""
        n, q, length = b.shape
        if length < 32 and a.shape[0] * q >= 65536:
            wide = matmul(a, b.transpose(1, 0, 2).reshape(q, n * length))       # (P, N*L)
            return np.ascontiguousarray(wide.reshape(a.shape[0], n, length).transpose(1, 0, 2))
        return matmul(a, b)

    def weight_gradient(self, dy: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """dy: (N, F, L), cols: (N, C*KH*KW, L) -> (F, C*KH*KW): on tiny maps one product over the whole
        batch, (F, N*L) @ (N*L, C*KH*KW); else per image, then a sum (no transposed copies: faster there)."""
        if dy.shape[2] >= 32:
            return super().weight_gradient(dy, cols)
        return matmul(dy.transpose(1, 0, 2).reshape(dy.shape[1], -1),
                      cols.transpose(1, 0, 2).reshape(cols.shape[1], -1).T)
