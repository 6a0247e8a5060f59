"""The Numba kernels against their readable NumPy twins, and the output-size rules."""
import numpy as np
import pytest

from tinysqueeze.nn import backend as B
from tinysqueeze.nn import kernels as K
from tinysqueeze.nn.fast import cnhw_kernels as CN
from tinysqueeze.nn.fast import numba_kernels as NB

CONFIGS = [  # (N, C, H, W, KH, KW, stride, padding)
    (2, 3, 9, 11, 3, 3, 1, 1), (1, 2, 8, 7, 7, 7, 2, 3), (3, 1, 5, 5, 1, 1, 2, 0),
    (2, 4, 13, 13, 3, 3, 2, 0), (1, 3, 10, 6, 3, 1, 2, 1), (2, 2, 6, 9, 2, 4, 3, 0),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_im2col_and_col2im_twins_are_identical(cfg, dtype):
    n, c, h, w, kh, kw, s, p = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    ho, wo = K.conv_output_size(h, kh, s, p), K.conv_output_size(w, kw, s, p)
    cols_np = K.im2col_numpy(x, kh, kw, s, p, ho, wo)
    cols_nb = NB.im2col_numba(x, kh, kw, s, p, ho, wo)
    assert cols_np.shape == (n, c * kh * kw, ho * wo) and cols_nb.dtype == dtype
    np.testing.assert_array_equal(cols_np, cols_nb)
    dcols = rng.standard_normal(cols_np.shape).astype(dtype)
    dx_np = K.col2im_numpy(dcols, x.shape, kh, kw, s, p, ho, wo)
    dx_nb = NB.col2im_numba(dcols, x.shape, kh, kw, s, p, ho, wo)
    assert dx_np.shape == x.shape
    np.testing.assert_array_equal(dx_np, dx_nb)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_the_batch_inside_twins_are_identical_and_hold_the_same_columns(cfg, dtype):
    """(C, N, H, W) kernels: Numba = NumPy, and the columns are NCHW's columns with the images side
    by side: cols[:, n*L:(n+1)*L] == im2col of image n (and col2im likewise)."""
    n, c, h, w, kh, kw, s, p = cfg
    rng = np.random.default_rng(0)
    x = rng.standard_normal((c, n, h, w)).astype(dtype)
    ho, wo = K.conv_output_size(h, kh, s, p), K.conv_output_size(w, kw, s, p)
    cols_np = CN.im2col_cnhw_numpy(x, kh, kw, s, p, ho, wo)
    cols_nb = CN.im2col_cnhw_numba(x, kh, kw, s, p, ho, wo)
    assert cols_np.shape == (c * kh * kw, n * ho * wo) and cols_nb.dtype == dtype
    np.testing.assert_array_equal(cols_np, cols_nb)
    per_image = K.im2col_numpy(np.ascontiguousarray(x.transpose(1, 0, 2, 3)), kh, kw, s, p, ho, wo)
    np.testing.assert_array_equal(cols_np, per_image.transpose(1, 0, 2).reshape(c * kh * kw, n * ho * wo))
    dcols = rng.standard_normal(cols_np.shape).astype(dtype)
    dx_np = CN.col2im_cnhw_numpy(dcols, x.shape, kh, kw, s, p, ho, wo)
    dx_nb = CN.col2im_cnhw_numba(dcols, x.shape, kh, kw, s, p, ho, wo)
    np.testing.assert_array_equal(dx_np, dx_nb)
    dcols_per_image = np.ascontiguousarray(dcols.reshape(c * kh * kw, n, ho * wo).transpose(1, 0, 2))
    dx_per_image = K.col2im_numpy(dcols_per_image, (n, c, h, w), kh, kw, s, p, ho, wo)
    np.testing.assert_array_equal(dx_np, dx_per_image.transpose(1, 0, 2, 3))


# The layers of SqueezeNet's features at the sizes `make bench` runs, worked out from Table 1 by hand:
# (C, N, H, W, kernel, stride, padding). conv1 of v1.0 (7x7/2) and v1.1 (3x3/2) at 64 px, batch 64
# (29x29 and 31x31 outputs) and 224 px, batch 8 (109x109, 111x111); every 3x3 expand's input at 64 px:
# v1.0's squeeze outputs at 14x14, 7x7 and 3x3 (after the ceil_mode pools), v1.1's at 15x15; and
# v1.0's fire2 at 224 px, batch 8 (54x54).
SQUEEZENET_SHAPES = [
    (3, 64, 64, 64, 7, 2, 0), (3, 64, 64, 64, 3, 2, 0), (3, 8, 224, 224, 7, 2, 0), (3, 8, 224, 224, 3, 2, 0),
    (16, 64, 14, 14, 3, 1, 1), (32, 64, 14, 14, 3, 1, 1), (32, 64, 7, 7, 3, 1, 1), (48, 64, 7, 7, 3, 1, 1),
    (64, 64, 7, 7, 3, 1, 1), (64, 64, 3, 3, 3, 1, 1), (16, 64, 15, 15, 3, 1, 1), (16, 8, 54, 54, 3, 1, 1),
]


@pytest.mark.parametrize("shape", SQUEEZENET_SHAPES)
def test_the_batch_inside_twins_are_identical_at_squeezenets_own_sizes(shape):
    """`faster_twin` may run either twin for a layer, chosen by timing, so they must give the same bits
    at the sizes the network runs, not only on the small CONFIGS above: both, and the one it chose."""
    c, n, h, w, k, s, p = shape
    rng = np.random.default_rng(5)
    x = rng.standard_normal((c, n, h, w)).astype(np.float32)
    ho, wo = K.conv_output_size(h, k, s, p), K.conv_output_size(w, k, s, p)
    cols = CN.im2col_cnhw_numpy(x, k, k, s, p, ho, wo)
    np.testing.assert_array_equal(CN.im2col_cnhw_numba(x, k, k, s, p, ho, wo), cols)
    np.testing.assert_array_equal(CN.im2col_cnhw_fastest(x, k, k, s, p, ho, wo), cols)
    dcols = rng.standard_normal(cols.shape).astype(np.float32)
    dx = CN.col2im_cnhw_numpy(dcols, x.shape, k, k, s, p, ho, wo)
    np.testing.assert_array_equal(CN.col2im_cnhw_numba(dcols, x.shape, k, k, s, p, ho, wo), dx)
    np.testing.assert_array_equal(CN.col2im_cnhw_fastest(dcols, x.shape, k, k, s, p, ho, wo), dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_twins_are_identical(dtype):
    rng = np.random.default_rng(2)
    y = np.maximum(rng.standard_normal((3, 4, 5, 6)), 0).astype(dtype)      # a ReLU's output: zeros included
    dout = rng.standard_normal(y.shape).astype(dtype)
    off = np.argwhere(y == 0)
    dout[tuple(off[0])], dout[tuple(off[1])] = np.nan, -np.inf     # where the ReLU is off: 0 all the same
    fast, slow = NB.relu_backward_numba(dout, y), K.relu_backward_numpy(dout, y)
    assert fast.dtype == dtype
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(fast, np.where(y > 0, dout, 0))        # by definition


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_bias_and_relu_twins_agree_with_the_definition(dtype):
    """Forward: max(out + bias, 0), bit-identical in both twins (the same two roundings). Backward:
    dx = dout where y > 0, bit-identical; db = each row's sum of dx, to rounding (the Numba twin keeps
    several partial sums). Rows long enough (and of a length no vector divides) for the sum's order to
    matter, NaN and infinities in both directions, zeros in y."""
    rng = np.random.default_rng(4)
    out, bias = rng.standard_normal((5, 1003)).astype(dtype), rng.standard_normal(5).astype(dtype)
    out[0, 3], out[3, 5], out[4, 8] = np.nan, np.inf, -np.inf
    expected = np.where(out + bias[:, None] > 0, out + bias[:, None], 0)            # by definition
    expected[0, 3] = np.nan                                # a NaN stays NaN, as in PyTorch's ReLU
    for twin in (CN.bias_relu_numpy, CN.bias_relu_numba):
        given = out.copy()
        y = twin(given, bias)
        assert y is given and y.dtype == dtype                                    # in place
        np.testing.assert_array_equal(y, expected, err_msg=twin.__name__)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout[1, 7], dout[2, 9] = np.nan, np.inf
    y = expected.copy()
    y[0, 3] = 0.0
    y[1, 7] = 0.0                                          # the NaN falls where the ReLU was off: no NaN in dx
    for twin in (CN.relu_bias_backward_numpy, CN.relu_bias_backward_numba):
        dx, db = twin(dout, y)
        assert dx.dtype == db.dtype == dtype and db.shape == (5,)
        np.testing.assert_array_equal(dx, np.where(y > 0, dout, 0), err_msg=twin.__name__)
        by_hand = np.array([sum(float(v) for v in row) for row in np.where(y > 0, dout, 0)])   # one by one, in float64
        np.testing.assert_allclose(db, by_hand, rtol=1e-5 if dtype == np.float32 else 1e-12, err_msg=twin.__name__)


def test_col2im_is_the_adjoint_of_im2col():
    # <im2col(x), y> == <x, col2im(y)> for every x, y: that is what makes col2im the right backward.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 7, 8))
    ho, wo = K.conv_output_size(7, 3, 2, 1), K.conv_output_size(8, 3, 2, 1)
    y = rng.standard_normal((2, 27, ho * wo))
    lhs = np.sum(B.im2col(x, 3, 3, 2, 1, ho, wo) * y)
    rhs = np.sum(x * B.col2im(y, x.shape, 3, 3, 2, 1, ho, wo))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("ceil_mode", [True, False])
@pytest.mark.parametrize("cfg", [(2, 3, 9, 8, 3, 3, 2, 0), (1, 2, 13, 13, 3, 3, 2, 1), (2, 2, 7, 10, 2, 2, 2, 0),
                                 (1, 1, 6, 5, 3, 2, 1, 1)])
def test_maxpool_twins_agree(cfg, ceil_mode):
    n, c, h, w, kh, kw, s, p = cfg
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    ho, wo = (K.pool_output_size(h, kh, s, p, ceil_mode), K.pool_output_size(w, kw, s, p, ceil_mode))
    out_np, arg_np = K.maxpool_forward_numpy(x, kh, kw, s, p, ho, wo)
    out_nb, arg_nb = NB.maxpool_forward_numba(x, kh, kw, s, p, ho, wo)
    np.testing.assert_array_equal(out_np, out_nb)
    np.testing.assert_array_equal(arg_np, arg_nb)
    dout = rng.standard_normal(out_np.shape).astype(np.float32)
    dx_np = K.maxpool_backward_numpy(dout, arg_np, x.shape, kh, kw, s, p)
    dx_nb = NB.maxpool_backward_numba(dout, arg_nb, x.shape, kh, kw, s, p)
    np.testing.assert_allclose(dx_np, dx_nb, rtol=1e-6, atol=1e-6)  # same sums, other order


@pytest.mark.parametrize("h,w,padding", [(31, 31, 0), (15, 16, 0), (8, 9, 1), (111, 7, 0), (4, 4, 1), (3, 3, 0),
                                       (14, 14, 0), (6, 6, 0), (54, 54, 0), (16, 15, 0), (2, 6, 0), (6, 2, 0),
                                       (10, 10, 1)])
def test_the_3x3_stride_2_fast_path_equals_the_readable_twin_with_many_ties(h, w, padding):
    """SqueezeNet's pools run whole windows through `whole_windows_3x3_stride2`, ceil_mode's last row
    and column of windows (14, 6 and 54 px: v1.0's pool after fire4) through their own written-out
    taps, and other edges through the clipped loop; on a ReLU's output (zeros everywhere) and on small integers, ties are everywhere,
    so the first-maximum rule is tested at every tap. int8 holds the nine tap numbers."""
    rng = np.random.default_rng(7)
    for x in (np.maximum(rng.standard_normal((2, 3, h, w)), 0), rng.integers(0, 3, (2, 3, h, w)) * 1.0):
        x = x.astype(np.float32)
        ho, wo = K.pool_output_size(h, 3, 2, padding, True), K.pool_output_size(w, 3, 2, padding, True)
        out_np, arg_np = K.maxpool_forward_numpy(x, 3, 3, 2, padding, ho, wo)
        out_nb, arg_nb = NB.maxpool_forward_numba(x, 3, 3, 2, padding, ho, wo)
        assert arg_nb.dtype == arg_np.dtype == np.int8
        np.testing.assert_array_equal(out_nb, out_np)
        np.testing.assert_array_equal(arg_nb, arg_np)
        for forward in (NB.maxpool_forward_numba, K.maxpool_forward_numpy):       # inference: the maxima alone
            maxima, no_taps = forward(x, 3, 3, 2, padding, ho, wo, taps=False)
            assert no_taps is None
            np.testing.assert_array_equal(maxima, out_np)


def test_argmax_takes_four_bytes_only_past_127_taps():
    x = np.random.default_rng(8).standard_normal((1, 1, 12, 12)).astype(np.float32)
    for forward in (K.maxpool_forward_numpy, NB.maxpool_forward_numba):
        assert forward(x, 11, 11, 1, 0, 2, 2)[1].dtype == np.int8         # 121 taps
        out, arg = forward(x, 12, 12, 1, 0, 1, 1)                          # 144 taps
        assert arg.dtype == np.int32 and arg[0, 0, 0, 0] == np.argmax(x) and out[0, 0, 0, 0] == x.max()


def test_maxpool_tie_rule_first_maximum_wins():
    x = np.zeros((1, 1, 2, 2), dtype=np.float64)  # every entry ties
    for forward in (K.maxpool_forward_numpy, NB.maxpool_forward_numba):
        out, arg = forward(x, 2, 2, 2, 0, 1, 1)
        assert arg[0, 0, 0, 0] == 0
    dx = B.maxpool_backward(np.ones((1, 1, 1, 1)), arg, x.shape, 2, 2, 2, 0)
    np.testing.assert_array_equal(dx[0, 0], [[1.0, 0.0], [0.0, 0.0]])


@pytest.mark.parametrize("size,expected", [(111, 55), (55, 27), (27, 13), (109, 54), (113, 56), (13, 6)])
def test_squeezenet_pool_sizes_use_ceil_mode(size, expected):
    assert K.pool_output_size(size, 3, 2, 0, ceil_mode=True) == expected


def test_pool_output_size_matches_pytorch_rules():
    assert K.pool_output_size(8, 3, 2, 0, ceil_mode=False) == 3
    assert K.pool_output_size(8, 3, 2, 0, ceil_mode=True) == 4
    # the last ceil-mode window would start in the right padding: dropped
    assert K.pool_output_size(5, 2, 2, 1, ceil_mode=True) == 3
    assert K.conv_output_size(224, 7, 2, 0) == 109 and K.conv_output_size(227, 7, 2, 0) == 111


FUNCTIONS = ("im2col", "col2im", "im2col_cnhw", "col2im_cnhw", "maxpool_forward", "maxpool_backward", "relu_backward",
             "bias_relu", "relu_bias_backward")
FUSED = ("bias_relu", "relu_bias_backward")              # a convolution's bias and ReLU (cnhw_kernels.py)


def test_the_backends_hold_their_own_twins():
    numba, numpy = B.BACKENDS["numba"], B.BACKENDS["numpy"]
    assert numba is B.NUMBA and numpy is B.NUMPY and (numba.name, numpy.name) == ("numba", "numpy")
    for name in FUNCTIONS:
        plain_module = CN if "cnhw" in name or name in FUSED else K
        assert getattr(numpy, name) is getattr(plain_module, f"{name}_numpy")
        fast = (getattr(CN, f"{name}_fastest") if "cnhw" in name else
                getattr(CN if name in FUSED else NB, f"{name}_numba"))
        assert getattr(numba, name) is fast


def recording(backend, called):
    """`backend` with every function noting its name in `called` first."""
    from dataclasses import replace
    return replace(backend, **{name: (lambda *a, _f=getattr(backend, name), _name=name: called.add(_name) or _f(*a))
                               for name in FUNCTIONS})


def test_every_layer_runs_the_chosen_backend():
    from tinysqueeze import nn
    from tinysqueeze.models import squeezenet1_1

    model = squeezenet1_1(num_classes=3)                     # its features: the batch inside
    conv = nn.Conv2d(3, 4, 3, padding=1)                     # a layer on its own: (N, C, H, W)
    x = np.random.default_rng(0).normal(size=(2, 3, 40, 40)).astype(np.float32)
    loss = nn.SoftmaxCrossEntropy()
    chosen, called = B.backend(), set()
    try:
        B.use_kernels("numpy")
        assert B.backend() is B.NUMPY
        B.use_kernels(recording(B.NUMPY, called))
        loss(model(x), np.array([0, 2]))
        model.backward(loss.backward())
        conv.backward(conv(x))
    finally:
        B.use_kernels(chosen)
    assert called == set(FUNCTIONS)


def test_the_fastest_batch_inside_kernels_measure_each_shape_once_and_keep_the_faster(monkeypatch):
    """On a fake clock: for one shape the Numba twin takes 5 units a call and NumPy's 3, for another
    shape the other way round. The first call of a shape runs each twin once untimed and TRIALS times
    timed and answers with the faster; later calls of that shape run the faster alone."""
    clock, called = {"now": 0.0}, []
    monkeypatch.setattr(CN.time, "perf_counter", lambda: clock["now"])
    monkeypatch.setattr(CN, "_faster", {})

    def twin(name, cost_by_width):
        def run(x, *settings):
            called.append(name)
            clock["now"] += cost_by_width[x.shape[-1]]
            return name
        return run
    for kernel in ("im2col", "col2im"):
        monkeypatch.setattr(CN, f"{kernel}_cnhw_numba", twin(f"{kernel} numba", {4: 5.0, 8: 1.0}))
        monkeypatch.setattr(CN, f"{kernel}_cnhw_numpy", twin(f"{kernel} numpy", {4: 3.0, 8: 2.0}))
    narrow, wide = np.zeros((1, 1, 4, 4), np.float32), np.zeros((1, 1, 8, 8), np.float32)
    assert CN.im2col_cnhw_fastest(narrow, 3, 3, 1, 1, 4, 4) == "im2col numpy"
    first = 2 * (1 + CN.TRIALS) + 1                              # both measured, then the answer
    assert called == ["im2col numba"] * (1 + CN.TRIALS) + ["im2col numpy"] * (2 + CN.TRIALS)
    assert CN.im2col_cnhw_fastest(narrow, 3, 3, 1, 1, 4, 4) == "im2col numpy"
    assert len(called) == first + 1                              # remembered: one call
    assert CN.im2col_cnhw_fastest(wide, 3, 3, 1, 1, 8, 8) == "im2col numba"      # another shape: measured
    assert CN.col2im_cnhw_fastest(wide, (1, 1, 8, 8), 3, 3, 1, 1, 8, 8) == "col2im numba"
    assert CN.col2im_cnhw_fastest(narrow, (1, 1, 4, 4), 3, 3, 1, 1, 4, 4) == "col2im numpy"


def test_the_environment_chooses_at_the_first_kernel_call(monkeypatch):
    monkeypatch.setattr(B, "_chosen", None)
    monkeypatch.setenv("TINYSQUEEZE_KERNELS", "numpy")
    assert B.backend() is B.NUMPY
    monkeypatch.setattr(B, "_chosen", None)
    monkeypatch.delenv("TINYSQUEEZE_KERNELS")
    assert B.backend() is B.NUMBA


def test_an_unknown_kernel_choice_is_refused_in_one_line():
    import os
    import subprocess
    import sys
    with pytest.raises(ValueError, match="kernels must be numba or numpy, got 'fortran'"):
        B.use_kernels("fortran")
    env = {**os.environ, "TINYSQUEEZE_KERNELS": "cuda"}
    imported = subprocess.run([sys.executable, "-c", "import tinysqueeze.nn"], capture_output=True, text=True, env=env)
    assert imported.returncode == 0 and imported.stderr == ""          # importing is no error
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "gradcheck", "--only", "ReLU"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: TINYSQUEEZE_KERNELS must be numba or numpy, got 'cuda'"]


@pytest.mark.slow
def test_a_bad_kernel_choice_stops_train_before_it_touches_its_folder(tmp_path):
    import os
    import subprocess
    import sys
    env = {**os.environ, "TINYSQUEEZE_KERNELS": "cuda"}
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "train", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "TINYSQUEEZE_KERNELS must be numba or numpy" in result.stderr
    assert not (tmp_path / "run").exists()


def test_the_tap_table_names_each_taps_pixel_worked_out_by_hand():
    """A 3x3 input, 2x2 kernel, stride 1, padding 1 -> 4x4 outputs. Output (0, 0)'s window starts at
    (-1, -1): only its tap (1, 1) lands inside, on pixel (0, 0) = 0. Output (1, 2)'s window starts at
    (0, 1): taps (0,0) (0,1) (1,0) (1,1) read pixels (0,1)=1, (0,2)=2, (1,1)=4, (1,2)=5."""
    table = CN.tap_table(3, 3, 2, 2, 1, 1, 4, 4)
    assert table.shape == (4, 16)
    assert list(table[:, 0]) == [-1, -1, -1, 0]
    assert list(table[:, 1 * 4 + 2]) == [1, 2, 4, 5]
    assert not table.flags.writeable                                   # cached: shared by every call
    with pytest.raises(ValueError):
        table.flags.writeable = True                                   # and no caller can change that


# ------------------------------------------------------------------ NaN and -inf, as PyTorch has them
# PyTorch's rule (aten/src/ATen/native/cpu/MaxPoolKernel.cpp: `if ((val > maxval) || std::isnan(val))`):
# a NaN in a window makes its maximum NaN and takes the tap (a later NaN takes it again); a window
# whose pixels are all -inf keeps its first pixel inside the image. Recorded with torch 2.13.0:
# max_pool2d(3, stride 1) of [[1, nan, 3], [nan, 5, 0], [2, 2, 2]] is nan at index 3; of a 4x4 of
# -inf with 1s in its bottom-right 2x2 quarter, at 3x3, stride 2, padding 1: [[-inf, -inf], [-inf, 1]]
# at indices [[0, 1], [4, 10]].
POOL_FORWARDS = {"numpy": K.maxpool_forward_numpy, "numba": NB.maxpool_forward_numba}
POOL_BACKWARDS = {"numpy": K.maxpool_backward_numpy, "numba": NB.maxpool_backward_numba}


@pytest.mark.parametrize("twin", POOL_FORWARDS)
@pytest.mark.parametrize("k, s, p, size", [(3, 2, 0, 9), (3, 2, 1, 9), (2, 2, 0, 6), (3, 1, 0, 5)])
def test_a_nan_at_any_tap_of_a_window_is_its_maximum_and_takes_the_gradient(twin, k, s, p, size):
    """3x3 stride 2 inside the plane is the written-out fast path; at the edges, the clipped loop."""
    forward, backward = POOL_FORWARDS[twin], POOL_BACKWARDS[twin]
    ho = wo = (size + 2 * p - k) // s + 1
    base = np.random.default_rng(4).standard_normal((1, 1, size, size)).astype(np.float32)
    for oh in range(ho):
        for ow in range(wo):
            for tap in range(k * k):
                hh, ww = oh * s - p + tap // k, ow * s - p + tap % k
                if not (0 <= hh < size and 0 <= ww < size):
                    continue                                      # that tap is padding
                x = base.copy()
                x[0, 0, hh, ww] = np.nan
                for taps in (False, True):                       # inference (maxima alone), and training
                    out, arg = forward(x, k, k, s, p, ho, wo, taps=taps)
                    assert np.isnan(out[0, 0, oh, ow]), (oh, ow, tap, taps)
                    windows_with_it = [(a, b) for a in range(ho) for b in range(wo)
                                       if a * s - p <= hh < a * s - p + k and b * s - p <= ww < b * s - p + k]
                    assert np.isnan(out).sum() == len(windows_with_it)
                assert arg[0, 0, oh, ow] == tap
                dout = np.zeros((1, 1, ho, wo), np.float32)
                dout[0, 0, oh, ow] = 1.0
                dx = backward(dout, arg, x.shape, k, k, s, p)
                assert dx[0, 0, hh, ww] == 1.0 and dx.sum() == 1.0


@pytest.mark.parametrize("twin", POOL_FORWARDS)
def test_of_two_nans_in_a_window_the_later_takes_the_tap_as_in_pytorch(twin):
    x = np.array([[[[1.0, np.nan, 3.0], [np.nan, 5.0, 0.0], [2.0, 2.0, 2.0]]]], np.float32)
    out, arg = POOL_FORWARDS[twin](x, 3, 3, 1, 0, 1, 1)
    assert np.isnan(out[0, 0, 0, 0]) and arg[0, 0, 0, 0] == 3
    x = np.full((1, 1, 9, 9), 0.5, np.float32)
    x[0, 0, 2, 2], x[0, 0, 4, 3] = np.nan, np.nan                 # a whole 3x3 window at rows 2-4, cols 2-4
    out, arg = POOL_FORWARDS[twin](x, 3, 3, 2, 0, 4, 4)
    assert np.isnan(out[0, 0, 1, 1]) and arg[0, 0, 1, 1] == 2 * 3 + 1


@pytest.mark.parametrize("twin", POOL_FORWARDS)
def test_a_window_all_minus_infinity_at_a_padded_edge_sends_its_gradient_to_its_first_pixel(twin):
    x = np.full((1, 1, 4, 4), -np.inf, np.float32)
    x[0, 0, 2:, 2:] = 1.0
    out, arg = POOL_FORWARDS[twin](x, 3, 3, 2, 1, 2, 2)
    np.testing.assert_array_equal(out[0, 0], [[-np.inf, -np.inf], [-np.inf, 1.0]])
    # the first pixel inside each window, as a tap i*3 + j of the padded window: (0, 0) is tap 4 of a
    # window starting at (-1, -1); (0, 1) is tap 3 of one at (-1, 1); (1, 0) is tap 1 of one at (1, -1)
    np.testing.assert_array_equal(arg[0, 0], [[4, 3], [1, 4]])
    dx = POOL_BACKWARDS[twin](np.ones((1, 1, 2, 2), np.float32), arg, x.shape, 3, 3, 2, 1)
    flat_winners = sorted(np.flatnonzero(dx[0, 0]).tolist())
    assert flat_winners == [0, 1, 4, 10]                           # PyTorch's indices
