"""In eval mode a layer keeps nothing for a backward that will not come (issue 25), and a backward
after such a forward says so instead of failing somewhere inside."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.models import squeezenet1_1

RNG = np.random.default_rng(0)
LAYERS = [  # (layer, input)
    (lambda: nn.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    (lambda: nn.Conv2d(3, 4, 1), (2, 3, 6, 6)),
    (lambda: nn.Conv2dCNHW(3, 4, 3, padding=1), (3, 2, 6, 6)),
    (lambda: nn.MaxPool2d(3, 2, ceil_mode=True), (2, 3, 7, 7)),
    (lambda: nn.AvgPool2d(2), (2, 3, 6, 6)),
    (lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 6, 6)),
    (lambda: nn.ReLU(), (2, 3)),
    (lambda: nn.Linear(3, 2), (2, 3)),
    (lambda: nn.Flatten(), (2, 3, 2)),
]


@pytest.mark.parametrize("make,shape", LAYERS, ids=lambda v: "" if isinstance(v, tuple) else repr(v()))
def test_a_layer_keeps_nothing_in_eval_mode_and_its_backward_says_so(make, shape):
    layer = make()
    x = RNG.standard_normal(shape).astype(np.float32)
    out = layer.train()(x.copy())
    layer.backward(np.ones_like(out))                       # training mode: backward works
    layer.eval()(x.copy())
    assert layer.cache is None
    with pytest.raises(RuntimeError, match=r"kept nothing.*call model\.train\(\) before the forward"):
        layer.backward(np.ones_like(out))


@pytest.mark.parametrize("make,shape", LAYERS, ids=lambda v: "" if isinstance(v, tuple) else repr(v()))
def test_a_backward_before_any_forward_says_so(make, shape):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward: no forward has run yet"):
        layer.backward(np.ones((1,)))


def test_concat_keeps_nothing_in_eval_mode():
    concat = nn.Concat().eval()
    out = concat([np.ones((1, 2, 2, 2)), np.ones((1, 3, 2, 2))])
    assert concat.cache is None
    with pytest.raises(RuntimeError, match="kept nothing"):
        concat.backward(out)


def test_a_squeezenet_in_eval_mode_holds_no_array_after_its_forward():
    model = squeezenet1_1(num_classes=5, image_grad=False)
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    model.train()(x)
    assert sum(m.cache is not None for m in model.modules()) > 40      # training: what backward needs
    logits = model.eval()(x)
    assert [name for name, m in model.named_modules() if m.cache is not None] == []
    with pytest.raises(RuntimeError, match=r"^SqueezeNet|^Flatten.backward: the last forward kept nothing"):
        model.backward(np.ones_like(logits))


def test_train_without_dropout_keeps_what_backward_needs_and_draws_no_mask():
    """The same logits as eval mode (dropout off), and a backward that runs."""
    model = squeezenet1_1(num_classes=5, seed=1)
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    expected = model.eval()(x.copy())
    dropout = model.classifier[0]
    state = dropout.generator_state()
    got = nn.train_without_dropout(model)(x.copy())
    np.testing.assert_array_equal(got, expected)
    assert dropout.generator_state() == state and not dropout.training
    assert all(m.training for m in model.modules() if not isinstance(m, nn.Dropout))
    assert model.backward(np.ones_like(got)).shape == x.shape


def test_in_eval_mode_max_pooling_computes_no_argmax():
    """Inference runs the maxima-only kernel (taps=False): no tap numbers worked out for nothing."""
    from dataclasses import replace

    from tinysqueeze.nn import backend as kernels

    asked = []
    chosen = kernels.backend()

    def spy(*args):
        asked.append(args[-1])                                # taps
        return chosen.maxpool_forward(*args)
    kernels.use_kernels(replace(chosen, maxpool_forward=spy))
    try:
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        x = RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)
        trained, inferred = pool.train()(x), pool.eval()(x)
    finally:
        kernels.use_kernels(chosen)
    assert asked == [True, False]
    np.testing.assert_array_equal(trained, inferred)
