"""Every layer's backward against centred finite differences in float64 (see tinysqueeze/evaluation/gradcheck.py)."""
import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.evaluation.gradcheck import TOLERANCE, distinct_input, gradcheck, layer_cases, rel_error

CASES = layer_cases()


@pytest.mark.parametrize("case", CASES, ids=[f"{c.layer}[{c.config}]" for c in CASES])
def test_layer_gradients_match_finite_differences(case):
    errors = case.run()
    expected = {"x"} if not isinstance(case.input_shape, list) else {f"x[{k}]" for k in range(len(case.input_shape))}
    assert expected <= set(errors)
    for name, err in errors.items():
        assert err < case.tolerance, f"{case.layer} {case.config}: relative error of d{name} is {err:.2e}"


def test_catalogue_covers_every_layer():
    checked = {c.layer for c in CASES}
    layers = {"Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "ReLU", "Dropout", "Flatten",
              "Linear", "Concat", "SoftmaxCrossEntropy", "Sequential", "Conv2dCNHW", "ConcatCNHW", "CNHWSequential"}
    assert layers <= checked


class WrongReLU(nn.ReLU):
    """Lets every gradient through: a plausible bug that a gradient check must catch."""

    def backward(self, dout):
        return dout.copy()


class WrongConv(nn.Conv2d):
    """Forgets to accumulate the bias gradient."""

    def backward(self, dout):
        bias_grad = self.bias.grad.copy()
        dx = super().backward(dout)
        self.bias.grad = bias_grad
        return dx


def test_gradcheck_catches_a_wrong_backward():
    assert gradcheck(WrongReLU(), distinct_input((2, 3, 4)))["x"] > 1e-2
    errors = gradcheck(WrongConv(2, 2, 3, rng=np.random.default_rng(0)), distinct_input((1, 2, 5, 5)))
    assert errors["x"] < TOLERANCE and errors["weight"] < TOLERANCE
    assert errors["bias"] > 0.5


def test_rel_error_and_distinct_input():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)
    x = distinct_input((3, 4, 5), seed=1)
    assert x.dtype == np.float64 and x.shape == (3, 4, 5)
    assert len(np.unique(x)) == x.size and np.abs(x).min() >= 0.05


def test_gradcheck_samples_entries_when_asked():
    layer = nn.Linear(30, 20, rng=np.random.default_rng(0))
    errors = gradcheck(layer, distinct_input((4, 30)), max_entries=10)
    assert set(errors) == {"x", "weight", "bias"} and max(errors.values()) < TOLERANCE


def test_every_evaluation_of_a_gradient_check_draws_the_same_dropout_mask():
    """Each forward of the check starts from the dropout generators' states before the first one: one
    function throughout, and afterwards the generator stands where one forward leaves it."""
    checked, once = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    x = distinct_input((2, 3, 4))
    assert max(gradcheck(nn.Sequential(checked), x).values()) < TOLERANCE
    once(x)
    assert checked.generator_state() == once.generator_state()
