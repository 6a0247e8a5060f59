"""FireCNHW (models/fast_fire.py): Fire with the batch inside whose expand branches write straight into
one output. Held to Fire(batch_inside=True), which concatenates two separate outputs, bit for bit."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.models import squeezenet1_0, squeezenet1_1
from tinysqueeze.models.fast_fire import FireCNHW
from tinysqueeze.models.fire import Fire

# (in, squeeze, expand1x1, expand3x3, bypass): each bypass kind; a simple bypass needs in = e1 + e3
SIZES = [(6, 3, 4, 5, None), (9, 3, 4, 5, "simple"), (6, 3, 5, 2, "complex"), (5, 2, 1, 1, None)]


def pair(in_channels, squeeze, e1, e3, bypass):
    """-> (Fire(batch_inside=True), FireCNHW), built from the same seed: the same weights."""
    reference = Fire(in_channels, squeeze, e1, e3, bypass, rng=np.random.default_rng(7), batch_inside=True)
    fast = FireCNHW(in_channels, squeeze, e1, e3, bypass, rng=np.random.default_rng(7))
    for (name, a), (_, b) in zip(reference.state_dict().items(), fast.state_dict().items()):
        assert np.array_equal(a, b), name
    return reference, fast


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: f"{s[:4]} bypass={s[4]}")
def test_forward_and_backward_are_fires_bit_for_bit(sizes, dtype):
    reference, fast = pair(*sizes)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((sizes[0], 3, 6, 7)).astype(dtype)           # (C_in, N, H, W)
    dout = rng.standard_normal((sizes[2] + sizes[3], 3, 6, 7)).astype(dtype)
    y_reference, y_fast = reference(x), fast(x)
    assert y_fast.shape == y_reference.shape == dout.shape
    assert np.array_equal(y_fast, y_reference)
    assert np.array_equal(fast.backward(dout), reference.backward(dout))
    for (name, a), (_, b) in zip(reference.named_parameters(), fast.named_parameters()):
        assert np.array_equal(a.grad, b.grad), name


def test_nothing_is_concatenated(monkeypatch):
    """The promise of the module: no copy of its output. The concatenation's forward, which copies,
    is never called; backward still splits dout through it."""
    def refuse(self, xs):
        raise AssertionError("ConcatCNHW.forward called: the branches were copied")
    monkeypatch.setattr(nn.ConcatCNHW, "forward", refuse)
    _, fast = pair(9, 3, 4, 5, "simple")
    x = np.random.default_rng(2).standard_normal((9, 2, 5, 5)).astype(np.float32)
    out = fast(x)
    fast.backward(np.ones_like(out))


def test_a_bypass_leaves_the_kept_relu_outputs_alone():
    """Each block of the output is an expand convolution's ReLU output, which its backward reads: the
    simple bypass must add into a new array. Added in place, the masks of backward would be
    max(conv, 0) + x instead of max(conv, 0), and the gradients wrong."""
    _, fast = pair(9, 3, 4, 5, "simple")
    x = -np.abs(np.random.default_rng(3).standard_normal((9, 2, 4, 4))).astype(np.float32)
    fast(x)
    e1 = fast.expand1x1.kept_for_backward()[2]
    assert np.all(e1 >= 0)                              # still the ReLU's output, not output + x (< 0)


@pytest.mark.parametrize("build", [squeezenet1_0, squeezenet1_1])
def test_squeezenets_fast_features_are_built_of_it_and_the_plain_ones_of_fire(build):
    fast, plain = build(num_classes=10), build(num_classes=10, fast=False)
    assert all(type(m) is FireCNHW for m in fast.features if isinstance(m, Fire))
    assert sum(isinstance(m, Fire) for m in fast.features) == 8
    assert all(type(m) is Fire for m in plain.features if isinstance(m, Fire))
    assert list(fast.state_dict()) == list(plain.state_dict())


def test_blocks_refuse_branches_that_cannot_be_joined():
    with pytest.raises(ValueError, match="differ only in C_k"):
        nn.ConcatCNHW().blocks([(4, 2, 5, 5), (3, 2, 5, 6)], np.float32)
    with pytest.raises(ValueError, match="differ only in C_k"):
        nn.ConcatCNHW().blocks([], np.float32)


@pytest.mark.parametrize("out, said", [
    (np.empty((4, 2, 5, 5), np.float32), r"shape \(3, 2, 5, 5\), got float32 \(4, 2, 5, 5\)"),
    (np.empty((3, 2, 5, 5), np.float64), "float32 array"),
    (np.empty((3, 2, 5, 10), np.float32)[..., ::2], "not contiguous"),
])
def test_a_convolution_refuses_an_output_it_cannot_write_into(out, said):
    """A wrong `out` is refused, saying what was expected; a non-contiguous one above all, whose
    reshape would be a copy, so the product would be written where nobody looks."""
    conv = nn.Conv2dReLUCNHW(2, 3, 3, padding=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=said):
        conv(np.zeros((2, 2, 5, 5), np.float32), out=out)
