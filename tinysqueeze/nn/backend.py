"""Which kernels the layers run: the one switch between the readable NumPy twins and the fast ones.

A layer never names a kernel's twin. It calls the functions at the bottom of this file (`im2col`,
`col2im`, `maxpool_forward`, ..., `matmul`), and each runs the function of the chosen backend, a
`Kernels` (minitorch's backend object: one function per hot loop):
- NUMBA (the default): nn/fast/numba_kernels.py and nn/fast/cnhw_kernels.py, compiled;
- NUMPY: nn/kernels.py, the twins the lessons explain. Edit one, choose NUMPY, and the gradient checks
  and training run your edit.

Choose with the environment variable, `TINYSQUEEZE_KERNELS=numpy python -m tinysqueeze gradcheck`, or
in code with `use_kernels("numpy")` (or `use_kernels(Kernels(...))`, a backend of your own). Both
backends give the same numbers (tests/layers/test_kernels.py; lesson 14 says which to the bit).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import kernels as plain
from .fast import cnhw_kernels as cnhw
from .fast import numba_kernels as compiled


@dataclass(frozen=True)
class Kernels:
    """A kernel backend: the function each hot loop runs."""

    name: str
    im2col: Callable
    col2im: Callable
    im2col_cnhw: Callable             # the batch inside (nn/fast/layers.py's Conv2dCNHW)
    col2im_cnhw: Callable
    maxpool_forward: Callable
    maxpool_backward: Callable
    relu_backward: Callable
    matmul: Callable = np.matmul      # every matrix product of the layers (OpenBLAS's, in both backends)
    bias_relu: Callable = cnhw.bias_relu_numpy                      # a convolution's bias and its ReLU, fused
    relu_bias_backward: Callable = cnhw.relu_bias_backward_numpy    # (nn/fast/layers.py's Conv2dReLUCNHW)


NUMBA = Kernels("numba", compiled.im2col_numba, compiled.col2im_numba, cnhw.im2col_cnhw_fastest,
                cnhw.col2im_cnhw_fastest, compiled.maxpool_forward_numba, compiled.maxpool_backward_numba,
                compiled.relu_backward_numba, bias_relu=cnhw.bias_relu_numba,
                relu_bias_backward=cnhw.relu_bias_backward_numba)
NUMPY = Kernels("numpy", plain.im2col_numpy, plain.col2im_numpy, cnhw.im2col_cnhw_numpy, cnhw.col2im_cnhw_numpy,
                plain.maxpool_forward_numpy, plain.maxpool_backward_numpy, plain.relu_backward_numpy)
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


def bias_relu(out, bias):
    """out: (F, M), overwritten with max(out + bias[:, None], 0) and returned (it must be contiguous)."""
    return backend().bias_relu(out, np.ascontiguousarray(bias))


def relu_bias_backward(dout, y):
    """dout, y: (F, M) -> (dx, db): dout where y > 0 (else 0), and the sum of each row of dx."""
    return backend().relu_bias_backward(np.ascontiguousarray(dout), np.ascontiguousarray(y))


def matmul(a, b, out=None):
    """a @ b (NumPy's rules, batched too), into `out` if given (np.matmul's out). Every product of the
    layers goes through here, so that `bench` can time them and count their FLOPs (the GEMMs' share
    of a step; lesson 14)."""
    return backend().matmul(a, b) if out is None else backend().matmul(a, b, out=out)
