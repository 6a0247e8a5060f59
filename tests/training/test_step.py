"""The one training step (tinysqueeze/optim/step.py, and its sliced form optim/slices.py): what it does, in which order, and that every
training loop of the project runs it instead of writing its own."""
import ast
from pathlib import Path

import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.optim import LARS, NonFiniteLoss, layer_groups, train_step, train_step_in_slices

ROOT = Path(__file__).resolve().parents[2]


def tiny_model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.Dropout(0.3, seed=seed),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5, rng=rng))


def batch(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((6, 3, 8, 8)).astype(np.float32), rng.integers(0, 5, 6)


def test_train_step_is_the_five_lines_written_out():
    """Three steps of train_step leave the same weights, bit for bit, as the five lines by hand; so do
    three of train_step_in_slices (optim/slices.py) with one slice and one process, dropout and all."""
    x, y = batch()
    by_hand, stepped, sliced = tiny_model(), tiny_model(), tiny_model()
    opt_a = LARS(layer_groups(by_hand), lr=0.01, momentum=0.9, weight_decay=1e-3)
    opt_b = LARS(layer_groups(stepped), lr=0.01, momentum=0.9, weight_decay=1e-3)
    opt_c = LARS(layer_groups(sliced), lr=0.01, momentum=0.9, weight_decay=1e-3)
    loss_a, loss_b, loss_c = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy()
    for _ in range(3):
        opt_a.zero_grad()
        logits_a = by_hand(x)
        value_a = loss_a(logits_a, y)
        by_hand.backward(loss_a.backward())
        opt_a.step()
        value_b, logits_b = train_step(stepped, loss_b, opt_b, x, y)
        value_c, logits_c = train_step_in_slices(sliced, loss_c, opt_c, x, y)
        assert value_a == value_b == value_c and np.array_equal(logits_a, logits_b)
        assert np.array_equal(logits_a, logits_c)
    a, b, c = by_hand.state_dict(), stepped.state_dict(), sliced.state_dict()
    assert all(np.array_equal(a[k], b[k]) and np.array_equal(a[k], c[k]) for k in a)


def test_after_backward_sees_every_gradient_and_no_moved_weight():
    x, y = batch()
    model = tiny_model()
    optimizer = LARS(layer_groups(model), lr=0.01)
    before = model.state_dict()
    seen = {}

    def after_backward():
        seen["grads"] = {name: float(np.abs(p.grad).sum()) for name, p in model.named_parameters()}
        seen["unmoved"] = all(np.array_equal(p.data, before[name]) for name, p in model.named_parameters())
        for p in model.parameters():            # what the hook does to a gradient is what the step uses
            p.grad[...] = 0.0

    train_step(model, nn.SoftmaxCrossEntropy(), optimizer, x, y, after_backward)
    assert seen["unmoved"] and all(v > 0 for v in seen["grads"].values())
    after = model.state_dict()
    assert all(np.array_equal(after[k], before[k]) for k in after)      # zero gradients: LARS moved nothing


def test_a_non_finite_loss_stops_the_step_before_any_weight_moves():
    x, y = batch()
    model = tiny_model()
    model[5].bias.data[:] = np.inf                                       # logits inf: the loss is nan
    optimizer = LARS(layer_groups(model), lr=0.01)
    before = model.state_dict()
    called = []
    with pytest.raises(NonFiniteLoss, match="the loss became nan"), np.errstate(invalid="ignore"):
        train_step(model, nn.SoftmaxCrossEntropy(), optimizer, x, y, lambda: called.append(1))
    after = model.state_dict()
    assert not called and all(np.array_equal(after[k], before[k], equal_nan=True) for k in after)
    assert not any(p.grad.any() for p in model.parameters())           # backward never ran


def python_files():
    yield from sorted((ROOT / "tinysqueeze").rglob("*.py"))
    yield from sorted((ROOT / "docs" / "experiments").glob("*.py"))


def test_the_training_step_is_written_once():
    """Only optim/step.py (and its sliced form, optim/slices.py, tested equal above) calls an optimizer's
    step after a backward: every other loop (train, diagnose, bench, compression's fine-tuning, the
    experiment scripts) calls one of them. (The one other is PyTorch's own step, the other side of the
    benchmark.)"""
    writers = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef):
                calls = [c.func.attr for c in ast.walk(node) if isinstance(c, ast.Call)
                         and isinstance(c.func, ast.Attribute)]
                if "backward" in calls and "step" in calls:
                    writers.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert writers == ["tinysqueeze/optim/slices.py:train_step_in_slices", "tinysqueeze/optim/step.py:train_step",
                       "tinysqueeze/studies/bench.py:train"]
    bench = (ROOT / "tinysqueeze" / "studies" / "bench.py").read_text()
    assert "self.torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()" in bench
