"""The hot loops of convolution, pooling and ReLU, written in plain NumPy: the kernels a lesson explains.

    im2col / col2im          convolution as one matrix product, and its adjoint      (lesson 2)
    maxpool_forward/backward the max of each window, and where its gradient goes      (lesson 3)
    relu_backward            dout where the ReLU's output is positive                 (lesson 4)

Each loops only over the kernel window and slices the rest (as deep-learning-from-scratch does):
for a 3x3 kernel that is nine strided copies, however large the image. The `_numpy` suffix says
which twin this is: each function has a Numba twin of the same signature and the same result in
nn/fast/numba_kernels.py, and `tests/layers/test_kernels.py` proves each pair equal. The layers never
call these by name; they call nn/backend.py, which runs the twins you choose (the Numba ones by
default; `TINYSQUEEZE_KERNELS=numpy` runs these, so an edit here reaches the gradient checks and training).

Layout:
    x:    (N, C, H, W)
    cols: (N, C*KH*KW, H_out*W_out), row index c*KH*KW + i*KW + j, so that
          weight.reshape(F, C*KH*KW) @ cols[n] is the convolution of image n.
"""
from __future__ import annotations

import math

import numpy as np


# ---------------------------------------------------------------------------- output sizes
def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """H_out = (H + 2*padding - K) // stride + 1 (floor rounding, as convolutions use)."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """PyTorch's pooling rule: floor (or ceil) of (H + 2*padding - K) / stride, plus 1.

    With ceil_mode the last window may hang over the bottom/right edge, but it must start inside the
    input or its left padding; a window that would start in the right padding is dropped.
    SqueezeNet's 3x3/2 ceil-mode pools give 111 -> 55, 55 -> 27, 27 -> 13.
    """
    span = size + 2 * padding - kernel
    out = (math.ceil(span / stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


# ---------------------------------------------------------------------------- im2col, col2im
def im2col_numpy(x, kh, kw, stride, padding, h_out, w_out):
    """Unfolds every KHxKW window of x into a column.

    x: (N, C, H, W) -> cols: (N, C*KH*KW, H_out*W_out)
    """
    n, c, _, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, h_out, w_out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # every output pixel's (i, j) tap, for all images and channels at once
            cols[:, :, i, j] = xp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
    return cols.reshape(n, c * kh * kw, h_out * w_out)


def col2im_numpy(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """The adjoint of im2col: adds every column entry back onto the pixel it was copied from.

    cols: (N, C*KH*KW, H_out*W_out) -> dx: (N, C, H, W). A pixel that sat in several windows
    receives the sum of their gradients (taps added in (i, j) order).
    """
    n, c, h, w = x_shape
    cols = cols.reshape(n, c, kh, kw, h_out, w_out)
    dxp = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride] += cols[:, :, i, j]
    return dxp[:, :, padding : padding + h, padding : padding + w]


# ---------------------------------------------------------------------------- max-pool
def argmax_dtype(kh: int, kw: int):
    """The integer type of the forward's `argmax`, which holds a tap number i*KW + j: one byte (int8)
    for windows of up to 127 taps (SqueezeNet's 3x3: 9), where int32 took four; int32 past that."""
    return np.int8 if kh * kw <= 127 else np.int32


def padded_for_pooling(shape, kh, kw, stride, padding, h_out, w_out) -> tuple[int, int]:
    """(H_p, W_p): the padded input every window fits in, ceil-mode windows that hang over included."""
    _, _, h, w = shape
    return max(h + 2 * padding, (h_out - 1) * stride + kh), max(w + 2 * padding, (w_out - 1) * stride + kw)


def maxpool_forward_numpy(x, kh, kw, stride, padding, h_out, w_out, taps=True):
    """Max over each window, and which tap of the window held it.

    x: (N, C, H, W) -> out: (N, C, H_out, W_out), argmax: (N, C, H_out, W_out) of `argmax_dtype`
    (int8 for windows up to 127 taps) holding i*KW + j of the winning tap. Padding counts as -inf.
    Tie rule: the first maximum in row-major window order wins (the comparison is strict), as in PyTorch.
    As in PyTorch too, a NaN wins (the window's maximum is NaN, and a later NaN takes the tap again),
    and a window whose pixels are all -inf keeps its first pixel inside the image, not the padding.
    taps=False (no backward will come: under nn.no_grad()): argmax is None.
    """
    n, c, h, w = x.shape
    hp, wp = padded_for_pooling(x.shape, kh, kw, stride, padding, h_out, w_out)
    xp = np.full((n, c, hp, wp), -np.inf, dtype=x.dtype)
    xp[:, :, padding : padding + h, padding : padding + w] = x
    out = np.full((n, c, h_out, w_out), -np.inf, dtype=x.dtype)
    first_row = np.maximum(0, padding - stride * np.arange(h_out))[:, None]    # the first tap inside
    first_col = np.maximum(0, padding - stride * np.arange(w_out))[None, :]
    argmax = np.broadcast_to(first_row * kw + first_col, (n, c, h_out, w_out)).astype(argmax_dtype(kh, kw))
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
            better = (tap > out) | np.isnan(tap)
            out = np.where(better, tap, out)
            argmax[better] = i * kw + j
    return out, (argmax if taps else None)


def maxpool_backward_numpy(dout, argmax, x_shape, kh, kw, stride, padding):
    """Sends each output gradient to the input pixel that won its window.

    dout, argmax: (N, C, H_out, W_out) -> dx: (N, C, H, W). Overlapping windows add up.
    """
    n, c, h, w = x_shape
    _, _, h_out, w_out = dout.shape
    hp, wp = padded_for_pooling(x_shape, kh, kw, stride, padding, h_out, w_out)
    dxp = np.zeros((n, c, hp, wp), dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            won = argmax == i * kw + j
            dxp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride] += dout * won
    return dxp[:, :, padding : padding + h, padding : padding + w]


# ---------------------------------------------------------------------------- ReLU's backward
def relu_backward_numpy(dout, y):
    """dx = dout where the ReLU's output y is positive, else 0. dout, y: the same shape.
    (Not dout * (y > 0): where the ReLU is off, a NaN or infinite dout must give 0, as in PyTorch.)"""
    return np.where(y > 0, dout, 0).astype(dout.dtype, copy=False)
