"""Forward values against direct references, and the behaviour every layer promises."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.nn.reference import conv2d_naive, conv2d_naive_backward


def naive_pool(x, kh, kw, stride, padding, ho, wo, reduce):
    n, c, h, w = x.shape
    out = np.zeros((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            h0, w0 = i * stride - padding, j * stride - padding
            window = x[:, :, max(h0, 0) : h0 + kh, max(w0, 0) : w0 + kw]
            out[:, :, i, j] = reduce(window, axis=(2, 3))
    return out


@pytest.mark.parametrize("k,s,p", [(1, 1, 0), (3, 1, 1), (7, 2, 3), ((3, 1), 2, 1), (1, 2, 0), (5, 3, 2)])
def test_conv_forward_matches_naive_loops(k, s, p):
    conv = nn.Conv2d(3, 4, k, stride=s, padding=p, rng=np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal((2, 3, 9, 8)).astype(np.float32)
    out = conv(x)
    expected = conv2d_naive(x.astype(np.float64), conv.weight.data, conv.bias.data, s, p)
    assert out.shape == expected.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("k,s,p", [(1, 1, 0), (3, 1, 1), (3, 2, 1), ((3, 1), 2, 1), (5, 3, 2)])
def test_conv_backward_matches_the_naive_loops(k, s, p):
    """The im2col / col2im backward against tinysqueeze.nn.reference's four loops, in float64."""
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(3, 4, k, stride=s, padding=p, rng=rng).to(np.float64)
    x = rng.standard_normal((2, 3, 9, 8))
    dy = rng.standard_normal(conv(x).shape)
    dx = conv.backward(dy)
    dx_ref, dw_ref, db_ref = conv2d_naive_backward(dy, x, conv.weight.data, s, p)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.weight.grad, dw_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.bias.grad, db_ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 512, 9, 300), (3, 16, 40, 8), (2, 300, 30, 300)])
def test_the_small_maps_products_equal_the_plain_ones_on_both_paths(shape):
    """Conv2dSmallMaps (conv10's) runs its products batch-wide on maps under 32 pixels: the same numbers
    as the plain Conv2d's product per image, both for the forward product and for dW."""
    n, q, length, p = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((p, q)), rng.standard_normal((n, q, length))
    small, plain = nn.Conv2dSmallMaps(q, p, 1), nn.Conv2d(q, p, 1)
    out = small.multiply(a, b)
    assert out.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(out, plain.multiply(a, b), rtol=1e-12, atol=1e-12)
    dy = rng.standard_normal((n, p, length))
    np.testing.assert_allclose(small.weight_gradient(dy, b), plain.weight_gradient(dy, b), rtol=1e-12, atol=1e-12)


def test_pointwise_conv_skips_im2col(monkeypatch):
    from tinysqueeze.nn import conv as conv_module

    def fail(*a, **k):
        raise AssertionError("a 1x1 convolution must not call im2col/col2im")

    monkeypatch.setattr(conv_module, "im2col", fail)
    monkeypatch.setattr(conv_module, "col2im", fail)
    layer = nn.Conv2d(4, 2, 1, rng=np.random.default_rng(0))
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5)).astype(np.float32)
    out = layer(x)
    assert layer.is_pointwise and out.shape == (2, 2, 5, 5)
    assert layer.backward(np.ones_like(out)).shape == x.shape


@pytest.mark.parametrize("kind", [nn.Conv2d, nn.Conv2dCNHW, nn.Conv2dReLUCNHW])
def test_a_convolution_without_input_grad_returns_none_and_the_same_weight_gradients(kind, monkeypatch):
    from tinysqueeze.nn import conv as conv_module
    from tinysqueeze.nn.fast import layers as batch_inside_module

    batch_inside = kind is not nn.Conv2d
    full = kind(3, 4, 3, stride=2, rng=np.random.default_rng(0))
    images = kind(3, 4, 3, stride=2, rng=np.random.default_rng(0), input_grad=False)
    x = np.random.default_rng(1).standard_normal((3, 2, 9, 9) if batch_inside else (2, 3, 9, 9))
    dout = np.ones_like(full(x))
    assert full.backward(dout).shape == x.shape
    images(x)

    def fail(*a, **k):
        raise AssertionError("a convolution without input_grad must not call col2im")

    monkeypatch.setattr(conv_module, "col2im", fail)
    monkeypatch.setattr(batch_inside_module, "col2im_cnhw", fail)
    assert images.backward(dout) is None
    np.testing.assert_array_equal(images.weight.grad, full.weight.grad)
    np.testing.assert_array_equal(images.bias.grad, full.bias.grad)


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("k,s,p", [(3, 2, 0), (2, 2, 0), (3, 2, 1), (3, 1, 1)])
def test_maxpool_forward_matches_explicit_windows(k, s, p, ceil_mode):
    pool = nn.MaxPool2d(k, s, p, ceil_mode=ceil_mode)
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 10))
    out = pool(x)
    _, _, ho, wo = out.shape
    np.testing.assert_array_equal(out, naive_pool(x, k, k, s, p, ho, wo, np.max))


def test_avgpool_and_global_pool_match_explicit_windows():
    x = np.random.default_rng(4).standard_normal((2, 3, 7, 9))
    out = nn.AvgPool2d(3, 2)(x)
    np.testing.assert_allclose(out, naive_pool(x, 3, 3, 2, 0, 3, 4, np.mean))
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x)[:, :, 0, 0], x.mean(axis=(2, 3)))
    six = nn.AdaptiveAvgPool2d(6)(np.ones((1, 2, 1, 1)))  # AlexNet on a tiny input: replicate
    assert six.shape == (1, 2, 6, 6) and np.all(six == 1)


def test_squeezenet_pool_shapes():
    pool = nn.MaxPool2d(3, 2, ceil_mode=True)
    for size, expected in [(111, 55), (55, 27), (27, 13)]:
        assert pool(np.zeros((1, 1, size, size), np.float32)).shape == (1, 1, expected, expected)


def test_relu_does_not_write_into_dout():
    relu = nn.ReLU()
    relu(np.array([[-1.0, 2.0]]))
    dout = np.array([[5.0, 7.0]])
    dx = relu.backward(dout)
    np.testing.assert_array_equal(dx, [[0.0, 7.0]])
    np.testing.assert_array_equal(dout, [[5.0, 7.0]])


def test_dropout_is_inverted_seeded_and_identity_in_eval():
    x = np.ones((200, 50), dtype=np.float32)
    a, b = nn.Dropout(0.5, seed=7), nn.Dropout(0.5, seed=7)
    ya, yb = a(x), b(x)
    np.testing.assert_array_equal(ya, yb)
    assert set(np.unique(ya)) == {0.0, 2.0}
    assert abs(ya.mean() - 1.0) < 0.05  # expectation preserved
    assert not np.array_equal(a(x), ya)  # a new mask each call
    a.eval()
    assert a(x) is x and a.backward(x) is x


def test_concat_backward_splits_channels():
    cat = nn.Concat()
    parts = [np.ones((2, 1, 3, 3)), 2 * np.ones((2, 3, 3, 3))]
    out = cat(parts)
    assert out.shape == (2, 4, 3, 3)
    grads = cat.backward(np.arange(2 * 4 * 9, dtype=float).reshape(2, 4, 3, 3))
    assert [g.shape for g in grads] == [(2, 1, 3, 3), (2, 3, 3, 3)]
    assert grads[1][0, 0, 0, 0] == 9.0


def test_softmax_cross_entropy_is_stable_and_right():
    loss = nn.SoftmaxCrossEntropy()
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    value = loss(logits, np.array([0, 2]))
    assert np.isfinite(value)
    assert value == pytest.approx((0.0 + np.log(3)) / 2)
    ten = loss(np.zeros((4, 10)), np.array([0, 1, 2, 3]))
    assert ten == pytest.approx(np.log(10))  # initial loss of an untrained net: ln(C)
    grad = loss.backward()
    assert grad.shape == (4, 10) and np.allclose(grad.sum(axis=1), 0)


def test_parameters_accumulate_until_zero_grad():
    layer = nn.Linear(3, 2, rng=np.random.default_rng(0))
    x = np.ones((1, 3), dtype=np.float32)
    layer(x)
    layer.backward(np.ones((1, 2), np.float32))
    first = layer.weight.grad.copy()
    layer(x)
    layer.backward(np.ones((1, 2), np.float32))
    np.testing.assert_allclose(layer.weight.grad, 2 * first)
    layer.zero_grad()
    assert not layer.weight.grad.any()


def test_module_names_state_dict_and_dtype():
    net = nn.Sequential(nn.Conv2d(3, 4, 3, rng=np.random.default_rng(0)), nn.ReLU(),
                        nn.Sequential(nn.Flatten(), nn.Linear(4, 2, rng=np.random.default_rng(0))))
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "2.1.weight", "2.1.bias"]
    assert all(p.data.dtype == np.float32 for p in net.parameters())
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.1.weight", "2.1.bias"]
    net.to(np.float64)
    assert all(p.data.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 3))
    assert net(x).dtype == np.float64
    net.eval()
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    assert net.num_parameters() == 4 * 27 + 4 + 8 + 2
    assert "Conv2d(3, 4, kernel_size=3" in repr(net)


def test_load_state_dict_round_trip_and_refusals():
    def make(seed):
        return nn.Sequential(nn.Conv2d(2, 3, 3, rng=np.random.default_rng(seed)))

    a, b = make(0), make(1)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(a[0].weight.data, b[0].weight.data)
    state = a.state_dict()
    del state["0.bias"]
    with pytest.raises(ValueError, match="missing keys: 0.bias"):
        b.load_state_dict(state)
    state = a.state_dict()
    state["0.extra"] = np.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys: 0.extra"):
        b.load_state_dict(state)
    state = a.state_dict()
    state["0.weight"] = np.zeros((3, 2, 5, 5))
    with pytest.raises(ValueError, match=r"wrong shape for 0.weight: got \(3, 2, 5, 5\), expected \(3, 2, 3, 3\)"):
        b.load_state_dict(state)


@pytest.mark.parametrize("layer,x,message", [
    (nn.Conv2d(3, 4, 3), np.zeros((3, 8, 8), np.float32), r"Conv2d\(3, 4.*expected input of shape \(N, 3, H, W\), got shape \(3, 8, 8\)"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 2, 8, 8), np.float32), r"with 3 channels, got shape \(1, 2, 8, 8\)"),
    (nn.Conv2d(3, 4, 7), np.zeros((1, 3, 4, 4), np.float32), r"7x7 kernel is larger than the padded input"),
    (nn.MaxPool2d(3, 2), np.zeros((1, 3, 2, 2), np.float32), r"MaxPool2d.*3x3 window is larger"),
    (nn.AvgPool2d(3), np.zeros((1, 3, 2, 5), np.float32), r"AvgPool2d.*larger than the input"),
    (nn.Linear(5, 2), np.zeros((2, 4), np.float32), r"Linear.*expected input of shape \(N, 5\) with 5 channels, got shape \(2, 4\)"),
    (nn.Conv2d(3, 4, 3), np.zeros((1, 3, 8, 8), np.int64), r"floating-point"),
])
def test_bad_input_names_layer_and_shapes(layer, x, message):
    with pytest.raises(ValueError, match=message):
        layer(x)


def test_bad_labels_and_bad_arguments():
    loss = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match=r"label 5 is out of range: expected labels in \[0, 2\]"):
        loss(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\)"):
        loss(np.zeros((2, 3)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="Concat.*branch 1"):
        nn.Concat()([np.zeros((1, 2, 3, 3)), np.zeros((1, 2, 4, 4))])
    with pytest.raises(ValueError, match="p must be in"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match="padding must be between"):
        nn.MaxPool2d(3, 2, padding=2)


def test_manual_seed_makes_initialisation_reproducible():
    nn.manual_seed(3)
    a = nn.Conv2d(2, 2, 3).weight.data
    nn.manual_seed(3)
    b = nn.Conv2d(2, 2, 3).weight.data
    np.testing.assert_array_equal(a, b)


def test_adaptive_average_pool_bins_follow_pytorchs_rule():
    """PyTorch's bins: start = floor(i * H / OH), end = ceil((i + 1) * H / OH). Worked by hand on
    sizes where floor and ceil differ, on a ramp (an all-ones input would hide wrong bins)."""
    x = np.arange(7, dtype=np.float64).reshape(1, 1, 1, 7) * np.ones((1, 1, 7, 1))   # columns 0..6
    # 7 -> 3: bins [0, 3), [2, 5), [4, 7) -> means 1, 3, 5
    out = nn.AdaptiveAvgPool2d((1, 3))(x)
    np.testing.assert_allclose(out[0, 0, 0], [1.0, 3.0, 5.0])
    # 4 -> 6: bins [0,1) [0,2) [1,2) [2,3) [2,4) [3,4) -> 0, 0.5, 1, 2, 2.5, 3
    ramp = np.arange(4, dtype=np.float64).reshape(1, 1, 1, 4)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d((1, 6))(ramp)[0, 0, 0], [0, 0.5, 1, 2, 2.5, 3])
    pool = nn.AdaptiveAvgPool2d((1, 6))
    pool(ramp)
    # backward: each bin's gradient is shared equally by its pixels, and overlapping bins add
    dx = pool.backward(np.ones((1, 1, 1, 6)))
    # pixel 0: bins 0 (alone) and 1 (half); pixel 1: bins 1 (half) and 2; pixel 2: 3 and half of 4; ...
    np.testing.assert_allclose(dx[0, 0, 0], [1 + 0.5, 0.5 + 1, 1 + 0.5, 0.5 + 1])


def test_relu_gradient_at_exactly_zero_is_zero():
    relu = nn.ReLU()
    relu(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(relu.backward(np.array([5.0, 5.0, 5.0])), [0.0, 0.0, 5.0])


# ---------------------------------------------------------------------------- the batch inside
@pytest.mark.parametrize("cfg", [(3, 4, 3, 2, 1, True), (4, 2, 1, 1, 0, True), (2, 5, 7, 2, 3, False),
                                 (6, 3, 3, 1, 1, True), (3, 2, (3, 1), 2, 1, True)])
def test_a_convolution_with_the_batch_inside_is_the_same_convolution(cfg):
    """Conv2dCNHW gives Conv2d's result transposed, and the same weight and bias gradients."""
    c, f, k, stride, pad, bias = cfg
    rng = np.random.default_rng(3)
    plain = nn.Conv2d(c, f, k, stride, pad, bias=bias, rng=np.random.default_rng(1))
    inside = nn.Conv2dCNHW(c, f, k, stride, pad, bias=bias, rng=np.random.default_rng(1))
    x = rng.standard_normal((3, c, 9, 8))
    y = plain(x)
    y_inside = inside(np.ascontiguousarray(x.transpose(1, 0, 2, 3)))
    assert inside.output_shape((c, 3, 9, 8)) == y_inside.shape
    np.testing.assert_allclose(y_inside, y.transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(y.shape)
    dx = plain.backward(dout)
    dx_inside = inside.backward(np.ascontiguousarray(dout.transpose(1, 0, 2, 3)))
    np.testing.assert_allclose(dx_inside, dx.transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(inside.weight.grad, plain.weight.grad, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(inside.bias.grad, plain.bias.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("cfg", [(3, 4, 3, 2, 1, True), (4, 2, 1, 1, 0, True), (2, 5, 7, 2, 3, False),
                                 (6, 3, 3, 1, 1, True)])
def test_a_convolution_with_its_relu_fused_is_the_plain_convolution_then_relu(cfg, backend):
    """Conv2dReLUCNHW gives Conv2d then ReLU (the plain layers, (N, C, H, W)) transposed, and the same
    gradients: dx, weight and bias, in float64, with either backend's kernels."""
    from tinysqueeze.nn import backend as kernels

    c, f, k, stride, pad, bias = cfg
    rng = np.random.default_rng(5)
    plain = nn.Sequential(nn.Conv2d(c, f, k, stride, pad, bias=bias, rng=np.random.default_rng(2)), nn.ReLU())
    fused = nn.Conv2dReLUCNHW(c, f, k, stride, pad, bias=bias, rng=np.random.default_rng(2))
    if bias:
        plain[0].bias.data = fused.bias.data = rng.standard_normal(f)        # some outputs moved across 0
    x = rng.standard_normal((3, c, 9, 8))
    chosen = kernels.backend()
    try:
        kernels.use_kernels(backend)
        y = plain(x)
        y_fused = fused(np.ascontiguousarray(x.transpose(1, 0, 2, 3)))
        assert 0.02 < np.mean(y > 0) < 0.98                                # the ReLU clips some, not all
        np.testing.assert_allclose(y_fused, y.transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
        dout = rng.standard_normal(y.shape)
        dx = plain.backward(dout)
        dx_fused = fused.backward(np.ascontiguousarray(dout.transpose(1, 0, 2, 3)))
    finally:
        kernels.use_kernels(chosen)
    np.testing.assert_allclose(dx_fused, dx.transpose(1, 0, 2, 3), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fused.weight.grad, plain[0].weight.grad, rtol=1e-12, atol=1e-12)
    if bias:
        np.testing.assert_allclose(fused.bias.grad, plain[0].bias.grad, rtol=1e-12, atol=1e-12)
    assert repr(fused).endswith(", then ReLU)")


def test_a_concatenation_with_the_batch_inside_joins_axis_0():
    parts = [np.ones((1, 2, 3, 3)), 2 * np.ones((3, 2, 3, 3))]             # (C_k, N, H, W)
    cat = nn.ConcatCNHW()
    assert cat(parts).shape == (4, 2, 3, 3)
    grads = cat.backward(np.arange(4 * 2 * 9, dtype=float).reshape(4, 2, 3, 3))
    assert [g.shape for g in grads] == [(1, 2, 3, 3), (3, 2, 3, 3)] and grads[1][0, 0, 0, 0] == 18.0


def test_a_cnhw_sequential_keeps_pytorchs_interface_and_keys():
    inside = nn.CNHWSequential(nn.Conv2dCNHW(3, 4, 3, padding=1, rng=np.random.default_rng(0)), nn.ReLU(),
                               nn.MaxPool2d(2))
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=np.random.default_rng(0)), nn.ReLU(), nn.MaxPool2d(2))
    assert list(inside.state_dict()) == list(plain.state_dict()) == ["0.weight", "0.bias"]
    x = np.random.default_rng(1).standard_normal((2, 3, 6, 6))
    np.testing.assert_allclose(inside(x), plain(x), rtol=1e-12)          # (N, C, H, W) in and out
    dout = np.ones((2, 4, 3, 3))
    np.testing.assert_allclose(inside.backward(dout), plain.backward(dout), rtol=1e-12)


def test_a_cnhw_sequential_refuses_plain_layers_and_its_twins_draw_the_same_weights():
    """A plain Conv2d or Concat below a CNHWSequential (a Fire module's too) would read the channels as
    the batch: refused, by name. The batch-inside Fire draws the very weights the plain one draws, in the
    same order, under the same keys, and prints its settings as the plain layers do."""
    from tinysqueeze.models import Fire

    for plain in (nn.Conv2d(3, 4, 3), Fire(4, 2, 3, 3)):
        with pytest.raises(ValueError, match=r"CNHWSequential\(\): .* which takes \(N, C, H, W\); .*CNHW"):
            nn.CNHWSequential(nn.ReLU(), plain)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, bias=False, rng=np.random.default_rng(0), input_grad=False),
                          Fire(4, 2, 3, 3, rng=np.random.default_rng(1)))
    inside = nn.CNHWSequential(
        nn.Conv2dCNHW(3, 4, 3, stride=2, bias=False, rng=np.random.default_rng(0), input_grad=False),
        Fire(4, 2, 3, 3, rng=np.random.default_rng(1), batch_inside=True))
    assert list(inside.state_dict()) == list(plain.state_dict())
    for key, value in plain.state_dict().items():
        np.testing.assert_array_equal(inside.state_dict()[key], value, err_msg=key)
    fire = inside[1]
    assert type(fire.squeeze) is nn.Conv2dReLUCNHW and type(fire.expand3x3) is nn.Conv2dReLUCNHW
    assert type(fire.squeeze_activation) is nn.Identity and type(fire.concat) is nn.ConcatCNHW
    assert inside[0].bias is None and not inside[0].input_grad
    assert (inside[0].stride, fire.expand3x3.padding, fire.expand3x3.kernel_size) == (2, 1, (3, 3))
    assert repr(inside[0]) == "Conv2dCNHW(3, 4, kernel_size=3, stride=2, padding=0, bias=False, input_grad=False)"
