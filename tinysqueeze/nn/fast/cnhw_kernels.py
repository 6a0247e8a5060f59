"""The convolution's im2col and col2im with the batch inside: activations laid out (C, N, H, W).

Channel first and the batch inside, the columns of the whole batch form ONE matrix,
cols: (C*KH*KW, N*H_out*W_out), row index c*KH*KW + i*KW + j and column index (n*H_out + oh)*W_out + ow,
so weight.reshape(F, C*KH*KW) @ cols is the convolution of every image in a single matrix product,
and its result (F, N*H_out*W_out) is already (F, N, H, W) (layers.py's `Conv2dCNHW`; lesson 14).

Each operation twice, as nn/kernels.py's: a NumPy twin (`*_numpy`: the nine strided copies of
nn/kernels.py's im2col, the batch moved inside) and a Numba twin (`*_numba`: one pass along a table of
where each tap reads, worked out once per layer shape). `*_fastest`, the Numba backend's choice,
runs whichever it measured faster for the layer's shape on this machine; all give the same numbers.
"""
from __future__ import annotations

import functools
import time

import numpy as np
from numba import njit, prange

from ..kernels import relu_backward_numpy


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
    dx = np.empty((c, n, h * w), dtype=cols.dtype)
    for ch in prange(c):
        dx[ch] = 0.0     # zeroed just before the additions, so in cache (lesson 14, round 6)
        for tap in range(taps):
            row, reads = cols[ch * taps + tap], table[tap]
            for img in range(n):
                plane, start = dx[ch, img], img * length
                for k in range(length):
                    pixel = reads[k]
                    if pixel >= 0:
                        plane[pixel] += row[start + k]
    return dx.reshape(c, n, h, w)


# ---------------------------------------------------------------------------- the faster twin, measured
# Which twin is faster depends on the CPU: on one 2-core machine NumPy's slices won from 27x27 maps up,
# on the next the Numba loop won up to 53x53, 2.3x at v1.0's conv1 at 64 px (lesson 14, round 5).
# So each layer shape is measured once, on the machine it runs on, and the faster twin remembered.
# Both give the same bits (im2col copies; col2im adds the same taps in the same order), so the choice
# can change the speed only, never a result.
TRIALS = 2                            # timed calls of each twin per shape, after one untimed call
_faster: dict = {}                    # (kernel, shape, settings) -> the faster twin


def seconds_of(twin, args) -> float:
    """-> how long twin(*args) took, in seconds."""
    start = time.perf_counter()
    twin(*args)
    return time.perf_counter() - start


def faster_twin(key, twins, args):
    """-> twin(*args) for the faster of `twins` on `key` (a kernel and its arguments' shape). The first
    time a key is seen each twin runs once untimed (Numba compiles or loads its code) and TRIALS times
    timed, and the one with the shortest call is remembered for the key; later calls run it alone."""
    if key in _faster:
        return _faster[key](*args)
    best = None                                  # (seconds, twin) of the fastest so far
    for twin in twins:
        twin(*args)
        fastest = min(seconds_of(twin, args) for _ in range(TRIALS))
        if best is None or fastest < best[0]:
            best = (fastest, twin)
    _faster[key] = best[1]
    return best[1](*args)


def im2col_cnhw_fastest(x, kh, kw, stride, padding, h_out, w_out):
    """NUMBA's im2col_cnhw: the faster of the Numba loop along a table and NumPy's slices for this
    shape, measured the first time the shape is seen (`faster_twin`)."""
    key = ("im2col", x.shape, x.dtype.str, kh, kw, stride, padding, h_out, w_out)
    return faster_twin(key, (im2col_cnhw_numba, im2col_cnhw_numpy), (x, kh, kw, stride, padding, h_out, w_out))


def col2im_cnhw_fastest(cols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """NUMBA's col2im_cnhw: the faster twin for this shape, measured once, as `im2col_cnhw_fastest`."""
    key = ("col2im", cols.shape, cols.dtype.str, tuple(x_shape), kh, kw, stride, padding, h_out, w_out)
    return faster_twin(key, (col2im_cnhw_numba, col2im_cnhw_numpy),
                       (cols, x_shape, kh, kw, stride, padding, h_out, w_out))


# ---------------------------------------------------------------------------- a convolution's bias and its ReLU
# A convolution followed by a ReLU (every one in SqueezeNet's features) adds its bias in one pass over
# its output and the ReLU clips it in a second; backward masks dout in one pass and sums the bias
# gradient in another. Fused, each direction is one pass (layers.py's `Conv2dReLUCNHW`; lesson 14).
def bias_relu_numpy(out, bias):
    """out: (F, M), bias: (F,) -> out, overwritten with max(out + bias, 0): the bias of each filter
    (row) added, then the ReLU, in place."""
    out += bias[:, None]
    return np.maximum(out, 0, out=out)


def relu_bias_backward_numpy(dout, y):
    """dout, y: (F, M), y the ReLU's output -> (dx, db): dx = dout where y > 0, else 0, (F, M); and
    db = the sum of each row of dx, (F,), the bias's gradient. dx is nn/kernels.py's ReLU backward."""
    dx = relu_backward_numpy(dout, y)
    return dx, dx.sum(axis=1)


@njit(parallel=True, cache=True)
def bias_relu_numba(out, bias):
    """Numba twin of `bias_relu_numpy`, one pass: each entry gets its row's bias and is clipped at 0
    while it is in a register. The same two rounding steps, so bit-identical; and, as np.maximum (and
    PyTorch's ReLU), a NaN stays NaN: only what is below 0 becomes 0. Each row (filter) is one
    iteration of the parallel loop, so the result cannot depend on how many threads share them."""
    for f in prange(out.shape[0]):
        row, b = out[f], bias[f]
        for k in range(row.size):
            v = row[k] + b
            row[k] = 0.0 if v < 0 else v
    return out


@njit(parallel=True, cache=True, fastmath={"reassoc"})
def relu_bias_backward_numba(dout, y):
    """Numba twin of `relu_bias_backward_numpy`, one pass: each entry of dx is written and added to
    its row's sum at once. fastmath "reassoc" lets the compiler keep several partial sums side by side
    (vectors); NumPy sums in pairs: so dx is bit-identical, db equal up to rounding. Each row is summed
    whole by one thread, so db is the same on one thread or many."""
    dx = np.empty_like(dout)
    db = np.empty(dout.shape[0], dtype=dout.dtype)
    for f in prange(dout.shape[0]):
        d, kept, row = dout[f], y[f], dx[f]
        total = dout.dtype.type(0)
        for k in range(d.size):
            v = d[k] if kept[k] > 0 else 0.0
            row[k] = v
            total += v
        db[f] = total
    return dx, db
