"""Optimisers and learning-rate schedules: SGD and Adam against PyTorch's update rules, LARS's
layer-wise rates, warm-up and decay (lesson 11)."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.optim import Adam, learning_rate, SGD
from tinysqueeze.training.train import fit, prepare

from ..conftest import fixed_batch


def param(values, grad):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_sgd_momentum_and_weight_decay_follow_pytorch():
    p = param([1.0, -2.0], [0.5, 0.5])
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()                      # buf = g + wd w = [0.51, 0.48]
    np.testing.assert_allclose(p.data, [1 - 0.051, -2 - 0.048])
    opt.step()                      # buf = 0.9 buf + g + wd w
    buf = 0.9 * np.array([0.51, 0.48]) + np.array([0.5, 0.5]) + 0.01 * np.array([0.949, -2.048])
    np.testing.assert_allclose(p.data, np.array([0.949, -2.048]) - 0.1 * buf)
    state = opt.state_dict()
    other = SGD([param([0.0, 0.0], [0.0, 0.0])], lr=0.1)
    other.load_state_dict(state)
    np.testing.assert_allclose(other.buffers[0], buf)
    with pytest.raises(ValueError, match="learning rate must be a positive"):
        SGD([p], lr=0)


def test_adam_first_step_moves_each_weight_by_lr():
    p = param([1.0, 1.0, 1.0], [1e-2, -3.0, 50.0])
    Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [0.99, 1.01, 0.99], rtol=1e-6)  # scale-free: that is the point


def test_learning_rate_schedules():
    assert learning_rate(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert learning_rate(9, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert learning_rate(55, 100, 1.0, warmup_steps=10, schedule="poly") == pytest.approx(0.5)
    assert learning_rate(55, 100, 1.0, warmup_steps=10, schedule="cosine") == pytest.approx(0.5)
    assert learning_rate(99, 100, 1.0, schedule="constant") == 1.0
    assert learning_rate(100, 100, 1.0) == 0.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rate(0, 10, 1.0, schedule="step")


def test_lars_moves_each_layer_by_lr_times_its_own_size():
    from tinysqueeze.optim import LARS
    big = param([3.0, 4.0], [0.0, 10.0])          # ||w|| = 5, ||g|| = 10
    small = param([0.03, 0.04], [6.0, 8.0])       # ||w|| = 0.05, ||g|| = 10
    opt = LARS([[big], [small]], lr=0.01, momentum=0.9)
    opt.step()
    # first step: w -= lr * ||w|| / ||g|| * g, by hand: big moves 0.01 * 0.5 * [0, 10] = [0, 0.05];
    # small moves 0.01 * 0.005 * [6, 8] = [3e-4, 4e-4]: each by 1% of its own norm.
    np.testing.assert_allclose(big.data, [3.0, 3.95])
    np.testing.assert_allclose(small.data, [0.0297, 0.0396])
    opt.step()   # second step: buf = 0.9 buf + lr * local * g, local from the moved weights
    local = np.sqrt(3.0 ** 2 + 3.95 ** 2) / 10
    np.testing.assert_allclose(big.data, [3.0, 3.95 - (0.9 * 0.05 + 0.01 * local * 10)])
    decayed = LARS([[param([3.0, 4.0], [0.0, 10.0])]], lr=0.01, momentum=0.9, weight_decay=0.1)
    decayed.step()  # local = 5 / (10 + 0.1 * 5); g + wd w = [0.3, 10.4]
    np.testing.assert_allclose(decayed.params[0].data, [3.0 - 0.01 * 5 / 10.5 * 0.3, 4.0 - 0.01 * 5 / 10.5 * 10.4])


def test_warm_up_reaches_the_base_rate_exactly_at_its_last_step():
    assert learning_rate(0, 100, 1.0, warmup_steps=4) == pytest.approx(0.25)
    assert learning_rate(3, 100, 1.0, warmup_steps=4) == 1.0          # the 4th step of 4: full rate
    assert learning_rate(4, 100, 1.0, warmup_steps=4) == 1.0          # decay starts from the base rate


# ---------------------------------------------------------------------------- bugs no other test caught (issue 23 §5)
def test_the_lars_that_train_builds_gives_each_layer_its_own_rate():
    """What makes LARS LARS, through the optimizer `train` builds (make_optimizer, as prepare calls it): on
    a first step (no momentum yet, no weight decay) every layer -- its weight and bias together -- moves by
    exactly lr times its own norm, ||dw|| = lr * ||w|| / ||g|| * ||g||, whatever its gradient's scale. One
    trust ratio for the whole model would move the layers whose gradient is large for their size by much
    more than that, and the others by much less."""
    from tinysqueeze.models import squeezenet1_1
    from tinysqueeze.optim import make_optimizer

    model = squeezenet1_1(num_classes=10, seed=0).to(np.float64)
    model.classifier[1].bias.data[:] = 0.5                     # every class alive: conv10 has a gradient
    x, y = fixed_batch(n=10)
    loss_fn = nn.SoftmaxCrossEntropy()
    model.zero_grad()
    loss_fn(model(x.astype(np.float64)), y)
    model.backward(loss_fn.backward())
    layers = {}                                                # grouped here by module name, not by layer_groups
    for name, p in model.named_parameters():
        layers.setdefault(name.rsplit(".", 1)[0], []).append(p)
    before = {layer: [p.data.copy() for p in ps] for layer, ps in layers.items()}
    norm = lambda arrays: float(np.sqrt(sum(np.sum(np.square(a)) for a in arrays)))
    grad_to_weight = [norm([p.grad for p in ps]) / norm(before[layer]) for layer, ps in layers.items()]
    assert max(grad_to_weight) > 30 * min(grad_to_weight)      # one common rate could not fit them all
    lr = 1e-3
    make_optimizer("lars", model, lr, momentum=0.9, weight_decay=0.0).step()
    for layer, ps in layers.items():
        moved = norm([p.data - old for p, old in zip(ps, before[layer])])
        assert moved == pytest.approx(lr * norm(before[layer]), rel=1e-6), layer
