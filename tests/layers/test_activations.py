"""evaluation/activations.py: what record_layers keeps is what each layer really sent forward and got
back, it leaves the model as it found it, and the histograms are drawn (lesson 11b)."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.evaluation.activations import plot_layer_histograms, record_layers, squeezenet_layers
from tinysqueeze.models import squeezenet1_1
from tinysqueeze.nn.fast.layers import to_cnhw


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 3, 32, 32)).astype(np.float32), np.array([0, 1, 2, 3])


def test_the_ten_layers_of_a_squeezenet():
    model = squeezenet1_1(num_classes=4)
    assert list(squeezenet_layers(model).values()) == ["conv1"] + [f"fire{k}" for k in range(2, 10)] + ["conv10"]
    assert list(squeezenet_layers(model))[:2] == ["features.1", "features.3"]


def test_records_are_the_layers_outputs_and_the_gradients_they_receive(batch):
    x, y = batch
    model = squeezenet1_1(num_classes=4, seed=1)
    loss, records = record_layers(model, x, y, squeezenet_layers(model), train_mode=False)
    by_label = {r.label: r for r in records}
    model.eval()                                                          # as the pass ran: dropout off
    # forwards, by hand: the features (the batch inside, (C, N, H, W)) and conv10 before its ReLU
    features = model.features(x)                                          # (N, 512, h, w)
    scores = model.classifier[1](features)                               # conv10, before its in-place ReLU
    assert np.array_equal(by_label["fire9"].activation, to_cnhw(features))
    assert np.array_equal(by_label["conv10"].activation, scores)
    # backwards, by hand: the loss's gradient through the classifier reaches fire9's output
    loss_fn = nn.SoftmaxCrossEntropy()
    assert loss == pytest.approx(float(loss_fn(model(x), y)))
    d_features = model.classifier.backward(model.flatten.backward(loss_fn.backward()))
    assert np.allclose(by_label["fire9"].gradient, to_cnhw(d_features), rtol=1e-5, atol=1e-12)
    assert all(r.gradient.shape == r.activation.shape for r in records)


def test_a_gain_on_conv1_scales_every_activation_above_it(batch):
    """torchvision's start has zero biases, and ReLU and max-pool commute with a positive factor (lesson
    11b): conv1's weights x2 doubles every recorded activation (eval mode: no dropout). Red when the
    biases are not zero."""
    x, y = batch
    plain = squeezenet1_1(num_classes=4, seed=2)
    doubled = squeezenet1_1(num_classes=4, seed=2)
    doubled.features[0].weight.data *= 2
    layers = squeezenet_layers(plain)
    _, a = record_layers(plain, x, y, layers, train_mode=False)
    _, b = record_layers(doubled, x, y, layers, train_mode=False)
    for ra, rb in zip(a, b):
        assert np.allclose(rb.activation, 2 * ra.activation, rtol=1e-4, atol=1e-6), ra.label


def test_the_model_is_left_as_it_was(batch):
    x, y = batch
    model = squeezenet1_1(num_classes=4).eval()
    layers = squeezenet_layers(model)
    first = record_layers(model, x, y, layers, train_mode=False)
    modules = dict(model.named_modules())
    assert not any("forward" in vars(modules[n]) or "backward" in vars(modules[n]) for n in layers)
    record_layers(model, x, y, layers, train_mode=True)                 # run as a training step would ...
    assert not any(m.training for m in model.modules())                 # ... and back in eval mode after
    second = record_layers(model, x, y, layers, train_mode=False)      # no wrapper left to record twice
    assert first[0] == second[0]
    assert all(np.array_equal(p.activation, q.activation) for p, q in zip(first[1], second[1]))
    with pytest.raises(ValueError, match="features.99"):
        record_layers(model, x, y, {"features.99": "nothing"})


def test_the_histograms_are_drawn(batch, tmp_path):
    x, y = batch
    model = squeezenet1_1(num_classes=4)
    _, records = record_layers(model, x, y, squeezenet_layers(model))
    path = plot_layer_histograms({"torchvision": records, "again": records}, tmp_path / "h.png", "test")
    assert path.stat().st_size > 10_000


def test_an_expand_convolution_is_recorded_as_it_writes_into_its_fire_modules_output(batch):
    """FireCNHW calls its expand convolutions with out= (each writes into its block of the module's
    output): the recording passes it on, and keeps the branch's own output, the first 64 channels of fire2's."""
    x, y = batch
    model = squeezenet1_1(num_classes=4, seed=3)
    _, records = record_layers(model, x, y, {"features.3.expand1x1": "fire2 1x1", "features.3": "fire2"},
                               train_mode=False)
    branch, fire2 = (r.activation for r in records)
    assert branch.shape[0] == 64
    assert np.array_equal(branch, fire2[:64])
