"""Convolution by its definition: four nested loops, forward and backward (CS231n's `conv_forward_naive`).

Slow on purpose: this is the bridge from the formula to `Conv2d`'s im2col and matrix products
(lesson 1). `tests/layers/test_layers.py` holds `Conv2d` equal to these loops, values and gradients.

Like every deep-learning library, "convolution" here is cross-correlation: the kernel is not
flipped. For one image, filter f and output pixel (oh, ow):

    y[f, oh, ow] = b[f] + sum over c, i, j of  w[f, c, i, j] * xp[c, oh*stride + i, ow*stride + j]

where xp is x zero-padded by `padding` on every side.
"""
from __future__ import annotations

import numpy as np


def conv2d_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0) -> np.ndarray:
    """x: (N, C, H, W), w: (F, C, KH, KW), b: (F,) -> y: (N, F, H_out, W_out),
    H_out = (H + 2*padding - KH) // stride + 1."""
    n_images, _, h, wid = x.shape
    f_out, _, kh, kw = w.shape
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (wid + 2 * padding - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n_images, f_out, h_out, w_out), dtype=x.dtype)
    for n in range(n_images):
        for f in range(f_out):
            for oh in range(h_out):
                for ow in range(w_out):
                    window = xp[n, :, oh * stride : oh * stride + kh, ow * stride : ow * stride + kw]
                    y[n, f, oh, ow] = (window * w[f]).sum() + b[f]
    return y


def conv2d_naive_backward(dy: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int = 1, padding: int = 0):
    """dy: (N, F, H_out, W_out) -> (dx (N, C, H, W), dw (F, C, KH, KW), db (F,)).

    The same loops as the forward: each output pixel sends dy back to the weights it multiplied
    (dw += dy * window) and to the window it read (dxp[window] += dy * w[f]); windows overlap, so
    an input pixel collects the sum over every window it lies in. Padding is cut off at the end.
    """
    n_images, _, h, wid = x.shape
    _, _, kh, kw = w.shape
    _, f_out, h_out, w_out = dy.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    for n in range(n_images):
        for f in range(f_out):
            for oh in range(h_out):
                for ow in range(w_out):
                    rows = slice(oh * stride, oh * stride + kh)
                    cols = slice(ow * stride, ow * stride + kw)
                    dw[f] += dy[n, f, oh, ow] * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += dy[n, f, oh, ow] * w[f]
    db = dy.sum(axis=(0, 2, 3))
    return dxp[:, :, padding : padding + h, padding : padding + wid], dw, db
