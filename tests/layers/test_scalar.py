"""nn/scalar.py's Value against hand-derived gradients and centred finite differences (float64),
and its picture (evaluation/pictures.py draw_graph)."""
import math

import pytest

from tinysqueeze.evaluation.pictures import draw_graph, graph_layout
from tinysqueeze.nn.scalar import Value, topological_order


def numeric_gradients(f, point: list[float], h: float = 1e-6) -> list[float]:
    """Centred differences (f(x + h) - f(x - h)) / 2h of f(list of floats) -> float, one input at a time."""
    grads = []
    for k in range(len(point)):
        up, down = list(point), list(point)
        up[k] += h
        down[k] -= h
        grads.append((f(up) - f(down)) / (2 * h))
    return grads


def backprop_gradients(expression, point: list[float]) -> list[float]:
    inputs = [Value(v) for v in point]
    expression(*inputs).backward()
    return [v.grad for v in inputs]


def relative_error(a: float, b: float) -> float:
    return abs(a - b) / max(1e-8, abs(a) + abs(b))


EXPRESSIONS = {
    # name: (expression of Values, a point where it is smooth: every relu input away from 0)
    "neuron": (lambda x1, x2, w1, w2, b: (w1 * x1 + w2 * x2 + b).relu(), [2.0, -1.0, -0.5, 1.5, 4.0]),
    "relu cut": (lambda x, w, b: (w * x + b).relu() + x * 0.5, [1.5, -2.0, 0.7]),
    "used twice": (lambda a, b: a * a + a * b + b, [3.0, -1.25]),
    "numbers on the left": (lambda a, b: 2 * a + 3 - b * (1 - a) + 0.5 * (-a), [0.3, 1.7]),
    "powers": (lambda a, b: (a - b) ** 2 + a ** 3 * b + (a * a + 1.0) ** -1, [1.1, -0.4]),
    "two layers, shared weight": (lambda x, w, b: ((w * x + b).relu() * w - 1.0) ** 2, [0.8, 1.3, 0.2]),
}


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_gradients_agree_with_centred_differences(name):
    expression, point = EXPRESSIONS[name]
    numeric = numeric_gradients(lambda p: expression(*[Value(v) for v in p]).data, point)
    backprop = backprop_gradients(expression, point)
    assert max(relative_error(a, n) for a, n in zip(backprop, numeric)) < 1e-7, (backprop, numeric)


def test_the_neuron_by_hand():
    """relu(w1*x1 + w2*x2 + b) at x = (2, -1), w = (-0.5, 1.5), b = 4: n = 1.5 > 0, so every gradient is
    the local derivative of its multiplication or addition: w1 gets x1, x1 gets w1, b gets 1."""
    x1, x2, w1, w2, b = (Value(v) for v in (2.0, -1.0, -0.5, 1.5, 4.0))
    out = (w1 * x1 + w2 * x2 + b).relu()
    out.backward()
    assert out.data == 1.5
    assert [v.grad for v in (x1, x2, w1, w2, b)] == [-0.5, 1.5, 2.0, -1.0, 1.0]


def test_relu_passes_no_gradient_below_zero():
    w, x = Value(-2.0), Value(1.0)
    out = (w * x).relu()
    out.backward()
    assert out.data == 0.0 and w.grad == 0.0 and x.grad == 0.0


def test_a_value_used_twice_gets_both_contributions():
    """y = a*a + a: dy/da = 2a + 1 = 7 at a = 3; the three uses of a each add a share (+=)."""
    a = Value(3.0)
    y = a * a + a
    y.backward()
    assert (y.data, a.grad) == (12.0, 7.0)
    b = Value(-2.0)
    (b + b).backward()                      # one operation reading the same Value twice
    assert b.grad == 2.0


def test_numbers_on_either_side_of_an_operator():
    a = Value(3.0)
    for z, value, grad in ((2 * a, 6.0, 2.0), (a * 2, 6.0, 2.0), (1 + a, 4.0, 1.0), (a + 1, 4.0, 1.0),
                           (1 - a, -2.0, -1.0), (a - 1, 2.0, 1.0), (-a, -3.0, -1.0), (a ** 2, 9.0, 6.0)):
        a.grad = 0.0
        z.backward()
        assert (z.data, a.grad) == (value, grad)
    with pytest.raises(TypeError):
        a ** Value(2.0)


def test_topological_order_puts_every_node_after_its_children_once():
    a, b = Value(1.0), Value(2.0)
    c = a * b
    d = c + a
    e = d * c
    order = topological_order(e)
    assert len(order) == len({id(v) for v in order}) == 5
    position = {id(v): k for k, v in enumerate(order)}
    assert all(position[id(child)] < position[id(v)] for v in order for child in v.children)
    assert order[-1] is e


def test_backward_adds_to_what_is_there():
    """Like Parameter.grad: a second backward without resetting adds again (here w gets 2 + 2 * 4 = 10,
    lesson 'start', exercise 1)."""
    x1, x2, w1, w2, b = (Value(v) for v in (2.0, -1.0, -0.5, 1.5, 4.0))
    out = (w1 * x1 + w2 * x2 + b).relu()
    out.backward()
    out.backward()
    assert w1.grad == 10.0


def test_the_graph_is_drawn(tmp_path):
    x, w, b = Value(2.0, label="x"), Value(-0.5, label="w"), Value(4.0, label="b")
    y = (w * x + b).relu() * x                             # x used twice: an edge that skips columns
    y.label = "y"
    y.backward()
    where = graph_layout(y)
    assert len(where) == len(topological_order(y))
    assert all(where[id(c)][0] < where[id(v)][0] for v in topological_order(y) for c in v.children)
    path = draw_graph(y, tmp_path / "graph.png", "a test")
    assert path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not math.isnan(y.grad)
