"""The Numba twins of nn/kernels.py: the same loops, compiled to machine code.

Each function here has the signature and the result of its NumPy twin in nn/kernels.py (`im2col_numba`
of `im2col_numpy`, ...); `tests/layers/test_kernels.py` proves each pair equal. The NumPy twin slices;
the Numba twin writes the plain loops out and is compiled on its first call (cached on disk
afterwards), parallel over (image, channel) pairs: those never write to the same place, so there is no
data race even where windows overlap. nn/backend.py chooses which twins the layers run.

The max-pool kernels are the tuned ones (lesson 14): 3x3, stride-2 windows that lie wholly inside the
plane are taken a row at a time with their nine taps written out, and in inference the maxima alone;
so are ceil_mode's last row and column of windows, which reach one row or column past the plane.
"""
from __future__ import annotations

import os

import numba
import numpy as np
from numba import njit, prange

from ...distributed.threads import idle_threads_sleep
from ..kernels import argmax_dtype
from .blas_threads import OpenBLAS

# Thread policy. NumPy's matrix products run on OpenBLAS's own threads, which keep spinning for a
# while after each product; Numba's parallel loops start a second pool of threads. On two cores the
# two pools fight, and a SqueezeNet training step took twice as long or more (302-918 ms against
# 163-250 ms, squeezenet1_1, 64 px, batch 64; lesson 14). So the kernels run on one thread and the
# matrix products keep the cores -- unless NUMBA_NUM_THREADS says otherwise, or both pools' idle
# threads were told to sleep after a short spin before NumPy loaded (the command line does:
# distributed/threads.py, `let_idle_threads_sleep`). Then the pools take turns and the kernels use
# every core (lesson 14, rounds 6 and 7) -- where NumPy's BLAS is OpenBLAS, the one whose wait that sets (and
# the one measured). Each parallel loop gives every (image, channel) its own iterations, so the thread
# count never changes a result.
def kernels_on_one_thread(environ=os.environ, blas_is_openblas: bool = True) -> bool:
    """-> True if the thread policy above puts the Numba kernels on one thread."""
    return "NUMBA_NUM_THREADS" not in environ and not (idle_threads_sleep(environ) and blas_is_openblas)


if kernels_on_one_thread(blas_is_openblas=OpenBLAS.loaded() is not None):
    numba.set_num_threads(1)


# ---------------------------------------------------------------------------- im2col, col2im
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


@njit(parallel=True, cache=True)
def col2im_numba(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """Numba twin of `col2im_numpy`: same taps added in the same order, so bit-identical."""
    n, c, h, w = x_shape
    dx = np.empty((n, c, h, w), dtype=cols.dtype)
    for nc in prange(n * c):
        img, ch = nc // c, nc % c
        dx[img, ch] = 0.0     # zeroed just before the additions, so in cache (lesson 14, round 6)
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


# ---------------------------------------------------------------------------- max-pool
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
    strict > so the first maximum wins, and a NaN wins (the last NaN, as in PyTorch)."""
    h, w = plane.shape
    h0, h1, w0, w1 = max(top, 0), min(top + kh, h), max(left, 0), min(left + kw, w)
    best, best_tap = plane[h0, w0], (h0 - top) * kw + (w0 - left)
    for hh in range(h0, h1):
        for ww in range(w0, w1):
            v = plane[hh, ww]
            better = (v > best) | (v != v)                       # a NaN wins, as in PyTorch
            best = v if better else best
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
def right_edge_window_3x3(r0, r1, r2, k):
    """-> (max, tap) of a 3x3 window at column k whose third column lies past the plane's right edge
    (ceil_mode's last window): its six taps at columns k and k + 1, in row-major order, as above."""
    m, t = r0[k], 0
    v = r0[k + 1]; g = v > m; m = v if g else m; t = 1 if g else t              # noqa: E702
    v = r1[k]; g = v > m; m = v if g else m; t = 3 if g else t                  # noqa: E702
    v = r1[k + 1]; g = v > m; m = v if g else m; t = 4 if g else t              # noqa: E702
    v = r2[k]; g = v > m; m = v if g else m; t = 6 if g else t                  # noqa: E702
    v = r2[k + 1]; g = v > m; m = v if g else m; t = 7 if g else t              # noqa: E702
    return m, t


@njit(cache=True, inline="always")
def has_nan(plane):
    """-> True if plane (H, W) holds a NaN. The written-out 3x3 kernels compare with a plain >, which
    a NaN never passes; a plane with a NaN goes through `clipped_window_max` instead, which lets a NaN
    win as PyTorch does. One pass over a plane that is in cache: a few per cent of the pool's time."""
    flat = plane.ravel()
    count = 0
    for i in range(flat.size):
        count += np.int32(flat[i] != flat[i])             # a count, not a flag: the compiler vectorizes it
    return count > 0


@njit(cache=True, inline="always")
def every_window_clipped(plane, best, tap, kh, kw, stride, padding):
    """Fills best, tap (H_out, W_out) of plane (H, W) window by window with `clipped_window_max`."""
    for oh in range(best.shape[0]):
        for ow in range(best.shape[1]):
            best[oh, ow], tap[oh, ow] = clipped_window_max(plane, oh * stride - padding, ow * stride - padding,
                                                           kh, kw)


@njit(cache=True, inline="always")
def whole_windows_of_row(plane, best, oh, kh, kw, stride, padding):
    """-> (top, left, first, last, bottom): output row oh's windows first..last-1 are 3x3 with stride 2
    and lie inside the plane but perhaps for their third row, starting at row `top`, column `left`
    (first == last: none such); `bottom` is the row to read as their third: top + 2, or, where that
    row lies past the plane's bottom edge (ceil_mode's last row of windows), top + 1 again -- a row
    read twice never wins a window, since a tap wins only if it is strictly larger."""
    h, w = plane.shape
    h_out, w_out = best.shape
    top = oh * stride - padding
    if not (kh == 3 and kw == 3 and stride == 2 and top >= 0 and top + kh <= h + 1):
        return top, 0, w_out, w_out, top
    first = min(w_out, (padding + stride - 1) // stride)
    last = max(first, min(w_out, (w + padding - kw) // stride + 1))
    return top, first * stride - padding, first, last, min(top + 2, h - 1)


@njit(cache=True, inline="always")
def right_edge_of_row(plane, best, last, stride, padding):
    """-> True if window `last` of a row of whole 3x3, stride-2 windows (so only where
    `whole_windows_of_row` found some) is ceil_mode's last: its third column just past the plane's
    right edge."""
    return last < best.shape[1] and last * stride - padding + 2 == plane.shape[1]


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
    (`whole_windows_3x3_stride2`): 2-6x faster than the clipped loop alone (lesson 14); and those
    that reach one row past the bottom (their second row read again as their third) or one column
    past the right edge (`right_edge_window_3x3`), as ceil_mode makes v1.0's pool after fire4.
    The running maximum is updated by selection, not by a branch (`best = v if better else best`):
    on real data "is this tap larger?" is a coin toss the CPU cannot predict."""
    for p in prange(planes.shape[0]):
        plane, best, tap = planes[p], best_of[p], tap_of[p]
        if has_nan(plane):
            every_window_clipped(plane, best, tap, kh, kw, stride, padding)
            continue
        for oh in range(best.shape[0]):
            top, left, first, last, bottom = whole_windows_of_row(plane, best, oh, kh, kw, stride, padding)
            if first < last:
                whole_windows_3x3_stride2(plane[top, left:], plane[top + 1, left:], plane[bottom, left:],
                                          best[oh, first:last], tap[oh, first:last])
                if right_edge_of_row(plane, best, last, stride, padding):
                    best[oh, last], tap[oh, last] = right_edge_window_3x3(plane[top], plane[top + 1], plane[bottom],
                                                                          last * stride - padding)
                    last += 1
            clipped_windows_of_row(plane, best, tap, oh, first, last, kh, kw, stride, padding)


@njit(parallel=True, cache=True)
def maxima_planes_numba(planes, kh, kw, stride, padding, best_of, tap_of):
    """`maxpool_planes_numba` for inference: the whole windows' maxima alone
    (`whole_window_maxima_3x3_stride2`; their taps are left as they are, and dropped). A kernel of its
    own, because a flag tested inside the loop slowed it by half or more (lesson 14)."""
    for p in prange(planes.shape[0]):
        plane, best, tap = planes[p], best_of[p], tap_of[p]
        if has_nan(plane):
            every_window_clipped(plane, best, tap, kh, kw, stride, padding)
            continue
        for oh in range(best.shape[0]):
            top, left, first, last, bottom = whole_windows_of_row(plane, best, oh, kh, kw, stride, padding)
            if first < last:
                whole_window_maxima_3x3_stride2(plane[top, left:], plane[top + 1, left:], plane[bottom, left:],
                                                best[oh, first:last])
                if right_edge_of_row(plane, best, last, stride, padding):
                    best[oh, last] = right_edge_window_3x3(plane[top], plane[top + 1], plane[bottom],
                                                           last * stride - padding)[0]
                    last += 1
            clipped_windows_of_row(plane, best, tap, oh, first, last, kh, kw, stride, padding)


@njit(cache=True, inline="always")
def add_back_to_taps(dout, tap, dx, kw, stride, padding):
    """dout, tap: (H_out, W_out) of one plane; adds each output's gradient onto the pixel of dx (H, W)
    its tap names: row tap // kw, column tap % kw of its window."""
    for oh in range(dout.shape[0]):
        for ow in range(dout.shape[1]):
            t = tap[oh, ow]
            dx[oh * stride - padding + t // kw, ow * stride - padding + t % kw] += dout[oh, ow]


@njit(parallel=True, cache=True)
def maxpool_backward_numba(dout, argmax, x_shape, kh, kw, stride, padding):
    """Numba twin of `maxpool_backward_numpy` (sums in window order, so equal up to rounding).
    For 3-wide windows (SqueezeNet's) the width is passed as the literal 3: the compiler then finds a
    tap's row and column with a multiplication, not a division (1.5-1.7x faster; lesson 14)."""
    n, c, h, w = x_shape
    _, _, h_out, w_out = dout.shape
    dx = np.empty((n * c, h, w), dtype=dout.dtype)
    douts, taps = dout.reshape(n * c, h_out, w_out), argmax.reshape(n * c, h_out, w_out)
    for p in prange(n * c):
        dx[p] = 0.0     # zeroed just before the additions, so in cache (lesson 14, round 6)
        if kw == 3:
            add_back_to_taps(douts[p], taps[p], dx[p], 3, stride, padding)
        else:
            add_back_to_taps(douts[p], taps[p], dx[p], kw, stride, padding)
    return dx.reshape(n, c, h, w)


# ---------------------------------------------------------------------------- ReLU's backward
@njit(cache=True)
def relu_backward_numba(dout, y):
    """Numba twin of `relu_backward_numpy`: one pass over memory instead of two (the mask, then the
    product), and no mask array."""
    dx = np.empty_like(dout)
    flat_dx, flat_d, flat_y = dx.reshape(-1), dout.reshape(-1), y.reshape(-1)
    for k in range(flat_d.size):
        flat_dx[k] = flat_d[k] if flat_y[k] > 0 else 0.0
    return dx

