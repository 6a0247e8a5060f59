"""Under nn.no_grad() a layer keeps nothing for a backward that will not come, and a backward after
such a forward says so in one line instead of failing somewhere inside. eval() changes only what a
layer does (dropout), as in PyTorch: an eval-mode forward keeps what backward needs."""
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
def test_a_layer_keeps_nothing_under_no_grad_and_its_backward_says_so(make, shape):
    layer = make()
    x = RNG.standard_normal(shape).astype(np.float32)
    out = layer.eval()(x.copy())
    layer.backward(np.ones_like(out))                       # eval mode, grad on: backward works
    with nn.no_grad():
        layer(x.copy())
    assert layer.cache is None
    with pytest.raises(RuntimeError, match=r"^\w+\.backward: the last forward ran under nn\.no_grad\(\), which keeps "
                                           r"nothing for backward: run the forward outside it$"):
        layer.backward(np.ones_like(out))
    layer(x.copy())                                         # outside it again: kept
    assert layer.cache is not None


@pytest.mark.parametrize("make,shape", LAYERS, ids=lambda v: "" if isinstance(v, tuple) else repr(v()))
def test_a_backward_before_any_forward_says_so(make, shape):
    layer = make()
    with pytest.raises(RuntimeError, match=r"backward: no forward has run yet"):
        layer.backward(np.ones((1,)))


def test_concat_keeps_nothing_under_no_grad():
    concat = nn.Concat().eval()
    with nn.no_grad():
        out = concat([np.ones((1, 2, 2, 2)), np.ones((1, 3, 2, 2))])
    assert concat.cache is None
    with pytest.raises(RuntimeError, match="ran under nn.no_grad"):
        concat.backward(out)


def test_a_squeezenet_under_no_grad_holds_no_array_after_its_forward():
    model = squeezenet1_1(num_classes=5, image_grad=False)
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    model.train()(x)
    assert sum(m.cache is not None for m in model.modules()) > 40      # training: what backward needs
    predict = nn.no_grad()(lambda images: model.eval()(images))          # as a decorator, too
    logits = predict(x)
    assert [name for name, m in model.named_modules() if m.cache is not None] == []
    assert nn.is_grad_enabled()                                           # the decorator put it back
    with pytest.raises(RuntimeError, match=r"^Flatten.backward: the last forward ran under nn.no_grad"):
        model.backward(np.ones_like(logits))


def test_eval_mode_keeps_what_backward_needs_and_draws_no_mask():
    """The same logits under no_grad and outside it (dropout off), and outside it a backward that runs,
    with no mask drawn; the layers' training flags are all off."""
    model = squeezenet1_1(num_classes=5, seed=1).eval()
    x = RNG.standard_normal((2, 3, 64, 64)).astype(np.float32)
    with nn.no_grad():
        expected = model(x.copy())
    dropout = model.classifier[0]
    state = dropout.generator_state()
    got = model(x.copy())
    np.testing.assert_array_equal(got, expected)
    assert dropout.generator_state() == state and not any(m.training for m in model.modules())
    assert model.backward(np.ones_like(got)).shape == x.shape


def test_under_no_grad_max_pooling_computes_no_argmax():
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
        trained = pool.eval()(x)
        with nn.no_grad():
            inferred = pool(x)
    finally:
        kernels.use_kernels(chosen)
    assert asked == [True, False]
    np.testing.assert_array_equal(trained, inferred)


def test_eval_mode_backward_equals_pytorchs_eval_mode_autograd():
    """model.eval() and a forward outside no_grad: the backward gives the gradients of the network as
    it predicts (dropout off), equal to PyTorch's eval-mode autograd recorded in a committed fixture
    (tests/fixtures/make_eval_grad_fixture.py: the same seeded weights, loaded into torchvision's
    layout, float64)."""
    from pathlib import Path
    fixture = np.load(Path(__file__).parents[1] / "fixtures" / "torch_eval_grads.npz")
    model = squeezenet1_1(num_classes=5, seed=0)
    model.classifier[1].bias.data[:] = 0.3
    model = model.to(np.float64).eval()
    loss = nn.SoftmaxCrossEntropy()
    loss(model(fixture["x"].copy()), fixture["labels"])
    dx = model.backward(loss.backward())
    np.testing.assert_allclose(dx, fixture["dx"], rtol=1e-7, atol=1e-12)
    params = dict(model.named_parameters())
    names = [key[len("grad/"):] for key in fixture.files if key.startswith("grad/")]
    assert len(names) == 4
    for name in names:
        np.testing.assert_allclose(params[name].grad, fixture[f"grad/{name}"], rtol=1e-7, atol=1e-12,
                                   err_msg=name)
