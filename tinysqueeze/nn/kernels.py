"""The hot loops of convolution and max-pooling, each twice: a readable NumPy twin and a Numba kernel.

Every pair has one signature. The NumPy twin (`*_numpy`) loops only over the kernel window and slices
the rest (as in deep-learning-from-scratch); the Numba twin (`*_numba`) writes the plain loops out and
is compiled to machine code on first call (cached on disk afterwards), parallel over (image, channel)
pairs: those never write to the same place, so there is no data race even where windows overlap.
(They run on one thread unless NUMBA_NUM_THREADS is set: see the thread policy below.)
The names without a suffix (`im2col`, `col2im`, `maxpool_forward`, `maxpool_backward`, ...) are the
ones the layers call; `tests/test_kernels.py` proves each twin equal to the other.

Which twins run is chosen in ONE place, `backend()` at the bottom of this file: a `Kernels` backend
(minitorch's backend object) names one function per hot loop, NUMBA (the default, fast) or NUMPY (the
readable twins: edit one, and the gradient checks and training run your edit). Choose with the
environment variable, `TINYSQUEEZE_KERNELS=numpy python -m tinysqueeze gradcheck`, or in code with
`use_kernels("numpy")` (or `use_kernels(Kernels(...))`, a backend of your own).

Layout of the plain kernels (the `*_cnhw` ones, for nn/batch_inside.py, have the batch inside:
x (C, N, H, W) and cols (C*KH*KW, N*H_out*W_out)):
    x:    (N, C, H, W)
    cols: (N, C*KH*KW, H_out*W_out), row index c*KH*KW + i*KW + j, so that
          weight.reshape(F, C*KH*KW) @ cols[n] is the convolution of image n.
The NUMBA backend's batch-inside im2col and col2im pick, by size, the Numba kernel or the NumPy
slicing (`*_fastest`: whichever was measured faster for that size; both give the same numbers).
"""
from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
from numba import njit, prange

# Thread policy. NumPy's matrix products run on OpenBLAS's own threads, which keep spinning for a
# while after each product; Numba's parallel loops start a second pool of threads. On two cores the
# two pools fight, and a SqueezeNet training step took twice as long or more (302-918 ms against
# 163-250 ms, squeezenet1_1, 64 px, batch 64; lesson 14). So unless NUMBA_NUM_THREADS says
# otherwise, the kernels run on one thread and the matrix products keep the cores.
if "NUMBA_NUM_THREADS" not in os.environ:
    numba.set_num_threads(1)


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


# ---------------------------------------------------------------------------- im2col
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


@njit(parallel=True, cache=True)
def im2col_numba(x, kh, kw, stride, padding, h_out, w_out):
    """Numba twin of `im2col_numpy` (same signature, same result)."""
    n, c, h, w = x.shape
    cols = np.empty((n, c * kh * kw, h_out * w_out), dtype=x.dtype)
    for nc in prange(n * c):
        img, ch = nc // c, nc % c
        for i in range(kh):
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                for oh in range(h_out):
                    hh = oh * stride - padding + i
                    for ow in range(w_out):
                        ww = ow * stride - padding + j
                        if 0 <= hh < h and 0 <= ww < w:
                            cols[img, row, oh * w_out + ow] = x[img, ch, hh, ww]
                        else:
                            cols[img, row, oh * w_out + ow] = 0.0
    return cols


# ---------------------------------------------------------------------------- col2im
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


@njit(parallel=True, cache=True)
def col2im_numba(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """Numba twin of `col2im_numpy`: same taps added in the same order, so bit-identical."""
    n, c, h, w = x_shape
    dx = np.zeros((n, c, h, w), dtype=cols.dtype)
    for nc in prange(n * c):
        img, ch = nc // c, nc % c
        for i in range(kh):
            for j in range(kw):
                row = (ch * kh + i) * kw + j
                for oh in range(h_out):
                    hh = oh * stride - padding + i
                    if hh < 0 or hh >= h:
                        continue
                    for ow in range(w_out):
                        ww = ow * stride - padding + j
                        if 0 <= ww < w:
                            dx[img, ch, hh, ww] += cols[img, row, oh * w_out + ow]
    return dx


# ---------------------------------------------------------------------------- the batch inside: CNHW
# The same two operations for activations laid out (C, N, H, W), channel first and the batch inside
# (batch_inside.py's `Conv2dCNHW`, used within SqueezeNet's features). The columns of the whole batch
# then form ONE matrix, cols: (C*KH*KW, N*H_out*W_out), row index c*KH*KW + i*KW + j and column
# index (n*H_out + oh)*W_out + ow, so weight.reshape(F, C*KH*KW) @ cols is the convolution of every
# image in a single matrix product, and its result (F, N*H_out*W_out) is already (F, N, H, W).
def im2col_cnhw_numpy(x, kh, kw, stride, padding, h_out, w_out):
    """Unfolds every KHxKW window of x into a column, all images side by side.

    x: (C, N, H, W) -> cols: (C*KH*KW, N*H_out*W_out)
    """
    c, n, _, _ = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c, kh, kw, n, h_out, w_out), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
    return cols.reshape(c * kh * kw, n * h_out * w_out)


@functools.lru_cache(maxsize=64)
def tap_table(h, w, kh, kw, stride, padding, h_out, w_out) -> np.ndarray:
    """-> (KH*KW, H_out*W_out) int64: for tap i*KW + j of output pixel oh*W_out + ow, the input pixel
    it reads, hh*W + ww, or -1 where it falls in the padding. Worked out once per layer shape (cached)."""
    oh, ow = np.meshgrid(np.arange(h_out), np.arange(w_out), indexing="ij")
    table = np.empty((kh * kw, h_out * w_out), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            hh, ww = oh * stride - padding + i, ow * stride - padding + j
            inside = (hh >= 0) & (hh < h) & (ww >= 0) & (ww < w)
            table[i * kw + j] = np.where(inside, hh * w + ww, -1).reshape(-1)
    table.flags.writeable = False
    return table.view()        # every caller shares it: a view of a read-only array cannot be made writeable


def im2col_cnhw_numba(x, kh, kw, stride, padding, h_out, w_out):
    """Numba twin of `im2col_cnhw_numpy` (same signature, same result): `im2col_cnhw_by_table`, with
    where each tap reads worked out beforehand (`tap_table`)."""
    _, _, h, w = x.shape
    return im2col_cnhw_by_table(x, tap_table(h, w, kh, kw, stride, padding, h_out, w_out))


@njit(parallel=True, cache=True)
def im2col_cnhw_by_table(x, table):
    """x: (C, N, H, W), table: (KH*KW, L) from `tap_table` -> cols: (C*KH*KW, N*L). For each channel,
    tap and image, one pass along the table: the input pixel it names, or 0 for -1. No bounds or
    strides are worked out inside the loop, which on small maps is most of the work: 2-10x faster
    than the loop that computed them, and than NumPy's slices (lesson 14)."""
    c, n, h, w = x.shape
    taps, length = table.shape
    cols = np.empty((c * taps, n * length), dtype=x.dtype)
    planes = x.reshape(c, n, h * w)
    for ch in prange(c):
        for tap in range(taps):
            row, reads = cols[ch * taps + tap], table[tap]
            for img in range(n):
                plane, start = planes[ch, img], img * length
                for k in range(length):
                    pixel = reads[k]
                    row[start + k] = plane[pixel] if pixel >= 0 else 0.0
    return cols


def col2im_cnhw_numpy(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """The adjoint of im2col_cnhw: cols: (C*KH*KW, N*H_out*W_out) -> dx: (C, N, H, W), overlapping
    taps summed in (i, j) order."""
    c, n, h, w = x_shape
    cols = cols.reshape(c, kh, kw, n, h_out, w_out)
    dxp = np.zeros((c, n, h + 2 * padding, w + 2 * padding), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride] += cols[:, i, j]
    return dxp[:, :, padding : padding + h, padding : padding + w]


def col2im_cnhw_numba(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """Numba twin of `col2im_cnhw_numpy`: `col2im_cnhw_by_table`, the same taps added in the same
    order, so bit-identical."""
    _, _, h, w = x_shape
    return col2im_cnhw_by_table(cols, x_shape, tap_table(h, w, kh, kw, stride, padding, h_out, w_out))


@njit(parallel=True, cache=True)
def col2im_cnhw_by_table(cols, x_shape, table):
    """cols: (C*KH*KW, N*L), table: (KH*KW, L) from `tap_table` -> dx: (C, N, H, W). The adjoint of
    `im2col_cnhw_by_table`: each column entry is added onto the pixel the table names (none for -1),
    taps in (i, j) order."""
    c, n, h, w = x_shape
    taps, length = table.shape
    dx = np.zeros((c, n, h * w), dtype=cols.dtype)
    for ch in prange(c):
        for tap in range(taps):
            row, reads = cols[ch * taps + tap], table[tap]
            for img in range(n):
                plane, start = dx[ch, img], img * length
                for k in range(length):
                    pixel = reads[k]
                    if pixel >= 0:
                        plane[pixel] += row[start + k]
    return dx.reshape(c, n, h, w)


# ---------------------------------------------------------------------------- max-pool
def argmax_dtype(kh: int, kw: int):
    """The integer type of the forward's `argmax`, which holds a tap number i*KW + j: one byte (int8)
    for windows of up to 127 taps (SqueezeNet's 3x3: 9), where int32 took four; int32 past that."""
    return np.int8 if kh * kw <= 127 else np.int32


def maxpool_forward_numpy(x, kh, kw, stride, padding, h_out, w_out, taps=True):
    """Max over each window, and which tap of the window held it.

    x: (N, C, H, W) -> out: (N, C, H_out, W_out), argmax: (N, C, H_out, W_out) of `argmax_dtype`
    (int8 for windows up to 127 taps) holding i*KW + j of the winning tap. Padding counts as -inf.
    Tie rule: the first maximum in row-major window order wins (the comparison is strict), as in PyTorch.
    taps=False (inference, where no backward will come): argmax is None.
    """
    n, c, h, w = x.shape
    hp = max(h + 2 * padding, (h_out - 1) * stride + kh)
    wp = max(w + 2 * padding, (w_out - 1) * stride + kw)
    xp = np.full((n, c, hp, wp), -np.inf, dtype=x.dtype)
    xp[:, :, padding : padding + h, padding : padding + w] = x
    out = np.full((n, c, h_out, w_out), -np.inf, dtype=x.dtype)
    argmax = np.zeros((n, c, h_out, w_out), dtype=argmax_dtype(kh, kw))
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]
            better = tap > out
            out = np.where(better, tap, out)
            argmax[better] = i * kw + j
    return out, (argmax if taps else None)


def maxpool_forward_numba(x, kh, kw, stride, padding, h_out, w_out, taps=True):
    """Numba twin of `maxpool_forward_numpy` (same signature, same result): allocates out and the
    compact argmax, and `maxpool_planes_numba` fills them (taps=False: `maxima_planes_numba`, and the
    argmax is dropped)."""
    n, c, h, w = x.shape
    out = np.empty((n, c, h_out, w_out), dtype=x.dtype)
    argmax = np.empty((n, c, h_out, w_out), dtype=argmax_dtype(kh, kw))
    kernel = maxpool_planes_numba if taps else maxima_planes_numba
    kernel(x.reshape(n * c, h, w), kh, kw, stride, padding, out.reshape(n * c, h_out, w_out),
           argmax.reshape(n * c, h_out, w_out))
    return out, (argmax if taps else None)


@njit(cache=True, inline="always")
def clipped_window_max(plane, top, left, kh, kw):
    """-> (max, tap) of the KHxKW window at (top, left) of plane (H, W), the window clipped to the plane
    first (what lies outside is padding, -inf, which never wins): taps visited in row-major order, a
    strict > so the first maximum wins."""
    h, w = plane.shape
    h0, h1, w0, w1 = max(top, 0), min(top + kh, h), max(left, 0), min(left + kw, w)
    best, best_tap = plane[h0, w0], (h0 - top) * kw + (w0 - left)
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            better = plane[hh, ww] > best
            best = plane[hh, ww] if better else best
            best_tap = (hh - top) * kw + (ww - left) if better else best_tap
    return best, best_tap


@njit(cache=True, inline="always")
def whole_windows_3x3_stride2(r0, r1, r2, best, tap):
    """One output row of 3x3, stride-2 windows that lie wholly inside the plane: r0, r1, r2 are the
    windows' three input rows, each starting at the first window's left column; fills best and tap
    (W_out,). The nine taps are written out one after another with no loop and no bounds, and the
    stride is the literal 2: the compiler then loads a row's even and odd columns as vectors and
    computes several outputs at once (neighbouring outputs do not depend on each other)."""
    for o in range(best.size):
        k = 2 * o
        m, t = r0[k], 0
        v = r0[k + 1]; g = v > m; m = v if g else m; t = 1 if g else t          # noqa: E702
        v = r0[k + 2]; g = v > m; m = v if g else m; t = 2 if g else t          # noqa: E702
        v = r1[k]; g = v > m; m = v if g else m; t = 3 if g else t              # noqa: E702
        v = r1[k + 1]; g = v > m; m = v if g else m; t = 4 if g else t          # noqa: E702
        v = r1[k + 2]; g = v > m; m = v if g else m; t = 5 if g else t          # noqa: E702
        v = r2[k]; g = v > m; m = v if g else m; t = 6 if g else t              # noqa: E702
        v = r2[k + 1]; g = v > m; m = v if g else m; t = 7 if g else t          # noqa: E702
        v = r2[k + 2]; g = v > m; m = v if g else m; t = 8 if g else t          # noqa: E702
        best[o] = m
        tap[o] = t


@njit(cache=True, inline="always")
def whole_window_maxima_3x3_stride2(r0, r1, r2, best):
    """`whole_windows_3x3_stride2` for inference: the maxima alone, a tree of maxima with fewer steps
    that wait on each other."""
    for o in range(best.size):
        k = 2 * o
        best[o] = max(max(max(r0[k], r0[k + 1]), max(r0[k + 2], r1[k])),
                      max(max(r1[k + 1], r1[k + 2]), max(max(r2[k], r2[k + 1]), r2[k + 2])))


@njit(cache=True, inline="always")
def whole_windows_of_row(plane, best, oh, kh, kw, stride, padding):
    """-> (top, left, first, last): output row oh's windows first..last-1 lie wholly inside the plane
    and are 3x3 with stride 2, starting at row `top`, column `left` (first == last: none such)."""
    h, w = plane.shape
    h_out, w_out = best.shape
    top = oh * stride - padding
    if not (kh == 3 and kw == 3 and stride == 2 and top >= 0 and top + kh <= h):
        return top, 0, w_out, w_out
    first = min(w_out, (padding + stride - 1) // stride)
    last = max(first, min(w_out, (w + padding - kw) // stride + 1))
    return top, first * stride - padding, first, last


@njit(cache=True, inline="always")
def clipped_windows_of_row(plane, best, tap, oh, first, last, kh, kw, stride, padding):
    """Output row oh's other windows, 0..first-1 and last..W_out-1, each clipped to the plane."""
    top = oh * stride - padding
    for ow in range(first):
        best[oh, ow], tap[oh, ow] = clipped_window_max(plane, top, ow * stride - padding, kh, kw)
    for ow in range(last, best.shape[1]):
        best[oh, ow], tap[oh, ow] = clipped_window_max(plane, top, ow * stride - padding, kh, kw)


@njit(parallel=True, cache=True)
def maxpool_planes_numba(planes, kh, kw, stride, padding, best_of, tap_of):
    """planes: (P, H, W) -> fills best_of, tap_of: (P, H_out, W_out), each plane on its own.

    Every window is clipped to the plane (`clipped_window_max`), except SqueezeNet's (and AlexNet's)
    3x3, stride-2 windows that lie wholly inside, a row of them at a time
    (`whole_windows_3x3_stride2`): 2-6x faster than the clipped loop alone (lesson 14).
    The running maximum is updated by selection, not by a branch (`best = v if better else best`):
    on real data "is this tap larger?" is a coin toss the CPU cannot predict."""
    for p in prange(planes.shape[0]):
        plane, best, tap = planes[p], best_of[p], tap_of[p]
        for oh in range(best.shape[0]):
            top, left, first, last = whole_windows_of_row(plane, best, oh, kh, kw, stride, padding)
            if first < last:
                whole_windows_3x3_stride2(plane[top, left:], plane[top + 1, left:], plane[top + 2, left:],
                                          best[oh, first:last], tap[oh, first:last])
            clipped_windows_of_row(plane, best, tap, oh, first, last, kh, kw, stride, padding)


@njit(parallel=True, cache=True)
def maxima_planes_numba(planes, kh, kw, stride, padding, best_of, tap_of):
    """`maxpool_planes_numba` for inference: the whole windows' maxima alone
    (`whole_window_maxima_3x3_stride2`; their taps are left as they are, and dropped). A kernel of its
    own, because a flag tested inside the loop slowed it by half or more (lesson 14)."""
    for p in prange(planes.shape[0]):
        plane, best, tap = planes[p], best_of[p], tap_of[p]
        for oh in range(best.shape[0]):
            top, left, first, last = whole_windows_of_row(plane, best, oh, kh, kw, stride, padding)
            if first < last:
                whole_window_maxima_3x3_stride2(plane[top, left:], plane[top + 1, left:], plane[top + 2, left:],
                                                best[oh, first:last])
            clipped_windows_of_row(plane, best, tap, oh, first, last, kh, kw, stride, padding)


def maxpool_backward_numpy(dout, argmax, x_shape, kh, kw, stride, padding):
    """Sends each output gradient to the input pixel that won its window.

    dout, argmax: (N, C, H_out, W_out) -> dx: (N, C, H, W). Overlapping windows add up.
    """
    n, c, h, w = x_shape
    _, _, h_out, w_out = dout.shape
    hp = max(h + 2 * padding, (h_out - 1) * stride + kh)
    wp = max(w + 2 * padding, (w_out - 1) * stride + kw)
    dxp = np.zeros((n, c, hp, wp), dtype=dout.dtype)
    for i in range(kh):
        for j in range(kw):
            won = argmax == i * kw + j
            dxp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride] += dout * won
    return dxp[:, :, padding : padding + h, padding : padding + w]


@njit(parallel=True, cache=True)
def maxpool_backward_numba(dout, argmax, x_shape, kh, kw, stride, padding):
    """Numba twin of `maxpool_backward_numpy` (sums in window order, so equal up to rounding)."""
    n, c, h, w = x_shape
    _, _, h_out, w_out = dout.shape
    dx = np.zeros((n, c, h, w), dtype=dout.dtype)
    for nc in prange(n * c):
        img, ch = nc // c, nc % c
        for oh in range(h_out):
            for ow in range(w_out):
                tap = argmax[img, ch, oh, ow]
                hh = oh * stride - padding + tap // kw
                ww = ow * stride - padding + tap % kw
                dx[img, ch, hh, ww] += dout[img, ch, oh, ow]
    return dx


# ---------------------------------------------------------------------------- ReLU's backward
def relu_backward_numpy(dout, y):
    """dx = dout where the ReLU's output y is positive, else 0. dout, y: the same shape."""
    return dout * (y > 0)


@njit(cache=True)
def relu_backward_numba(dout, y):
    """Numba twin of `relu_backward_numpy`: one pass over memory instead of two (the mask, then the
    product), and no mask array."""
    dx = np.empty_like(dout)
    flat_dx, flat_d, flat_y = dx.reshape(-1), dout.reshape(-1), y.reshape(-1)
    for k in range(flat_d.size):
        flat_dx[k] = flat_d[k] if flat_y[k] > 0 else 0.0
    return dx


# ---------------------------------------------------------------------------- the backend
# Which twins the layers run is chosen HERE and nowhere else (see the top of this file).
def im2col_cnhw_fastest(x, kh, kw, stride, padding, h_out, w_out):
    """NUMBA's im2col_cnhw. Measured (lesson 14): the Numba loop along a table wins on maps of up to
    15x15 output pixels (2-10x at 7x7 and smaller), NumPy's strided slice copies on large ones (27x27
    and up: 1.4x, and 2x for the 7x7 kernel at 224 px), so each runs where it wins."""
    twin = im2col_cnhw_numba if h_out * w_out < 400 else im2col_cnhw_numpy
    return twin(x, kh, kw, stride, padding, h_out, w_out)


def col2im_cnhw_fastest(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """NUMBA's col2im_cnhw. Measured (lesson 14): the Numba loop along a table wins on maps of up to
    27x27 output pixels (1.5-10x), the NumPy twin's slice additions from 55x55 (by a few percent)."""
    twin = col2im_cnhw_numba if h_out * w_out < 1000 else col2im_cnhw_numpy
    return twin(cols, x_shape, kh, kw, stride, padding, h_out, w_out)


@dataclass(frozen=True)
class Kernels:
    """A kernel backend (as minitorch's backend objects): the function each hot loop runs on."""

    name: str
    im2col: Callable
    col2im: Callable
    im2col_cnhw: Callable
    col2im_cnhw: Callable
    maxpool_forward: Callable
    maxpool_backward: Callable
    relu_backward: Callable
    matmul: Callable = np.matmul      # every matrix product of the layers (OpenBLAS's, in both backends)


NUMBA = Kernels("numba", im2col_numba, col2im_numba, im2col_cnhw_fastest, col2im_cnhw_fastest,
                maxpool_forward_numba, maxpool_backward_numba, relu_backward_numba)
NUMPY = Kernels("numpy", im2col_numpy, col2im_numpy, im2col_cnhw_numpy, col2im_cnhw_numpy,
                maxpool_forward_numpy, maxpool_backward_numpy, relu_backward_numpy)
BACKENDS = {"numba": NUMBA, "numpy": NUMPY}

_chosen: Kernels | None = None            # None: not chosen yet (TINYSQUEEZE_KERNELS decides at first use)


def named_backend(name: str, setting: str) -> Kernels:
    if name not in BACKENDS:
        raise ValueError(f"{setting} must be {' or '.join(BACKENDS)}, got {name!r}")
    return BACKENDS[name]


def use_kernels(choice: str | Kernels) -> None:
    """From now on every layer runs `choice`: "numba", "numpy", or a Kernels of your own."""
    global _chosen
    _chosen = choice if isinstance(choice, Kernels) else named_backend(choice, "kernels")


def backend() -> Kernels:
    """The backend every layer runs: the one `use_kernels` chose, else TINYSQUEEZE_KERNELS's (numba if
    unset). The variable is read at the first kernel call, not at import, so that a bad value is a
    one-line error (`error: TINYSQUEEZE_KERNELS must be numba or numpy, got 'cuda'`), not a traceback."""
    global _chosen
    if _chosen is None:
        _chosen = named_backend(os.environ.get("TINYSQUEEZE_KERNELS", "numba"), "TINYSQUEEZE_KERNELS")
    return _chosen


# ---------------------------------------------------------------------------- what layers call
# Each takes its arrays as the layers have them, makes them contiguous (Numba's loops want that) and
# runs the chosen backend's function.
def _shape4(shape):
    return tuple(int(s) for s in shape)


def im2col(x, kh, kw, stride, padding, h_out, w_out):
    return backend().im2col(np.ascontiguousarray(x), kh, kw, stride, padding, h_out, w_out)


def col2im(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    return backend().col2im(np.ascontiguousarray(cols), _shape4(x_shape), kh, kw, stride, padding, h_out, w_out)


def im2col_cnhw(x, kh, kw, stride, padding, h_out, w_out):
    return backend().im2col_cnhw(np.ascontiguousarray(x), kh, kw, stride, padding, h_out, w_out)


def col2im_cnhw(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    return backend().col2im_cnhw(np.ascontiguousarray(cols), _shape4(x_shape), kh, kw, stride, padding,
                                 h_out, w_out)


def maxpool_forward(x, kh, kw, stride, padding, h_out, w_out, taps=True):
    return backend().maxpool_forward(np.ascontiguousarray(x), kh, kw, stride, padding, h_out, w_out, taps)


def maxpool_backward(dout, argmax, x_shape, kh, kw, stride, padding):
    return backend().maxpool_backward(np.ascontiguousarray(dout), argmax, _shape4(x_shape), kh, kw, stride, padding)


def relu_backward(dout, y):
    return backend().relu_backward(np.ascontiguousarray(dout), np.ascontiguousarray(y))


def matmul(a, b):
    """a @ b (NumPy's rules, batched too). Every product of the layers goes through here, so that
    `bench` can time them and count their FLOPs (the GEMMs' share of a step; lesson 14)."""
    return backend().matmul(a, b)
