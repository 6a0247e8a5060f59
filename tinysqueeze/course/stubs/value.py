"""Assignment `value` (the start lesson): backpropagation on single numbers.

Write the four bodies marked TODO, then grade them:

    python -m tinysqueeze check value

Each operation below already computes its result (the forward); you write the rule that hands the
gradient back to the operation's inputs (its `_backward`), and `backward`, the walk that runs those
rules in the right order. The grader calls each `_backward` on its own, then runs `backward` on
graphs where a value is used twice, compares every gradient with tinysqueeze's
(`tinysqueeze/nn/scalar.py`) and with centred finite differences, and says what is probably wrong
when something is.
"""
from tinysqueeze.course import NotWrittenYet
from tinysqueeze.nn.scalar import Value as ReferenceValue
from tinysqueeze.nn.scalar import topological_order


class Value(ReferenceValue):
    """One number of a graph: .data, .grad (dL/d this node, 0.0 until a backward, then ADDED to),
    .children (the Values it was made from), .op and ._backward. `-`, `**` and numbers on the left
    (2 * v) come from tinysqueeze's Value and use your + and * below."""

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            # TODO: add this node's share into self.grad and other.grad (d(a + b)/da = ?)
            raise NotWrittenYet("Value.__add__'s _backward")
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            # TODO: d(a * b)/da = b, d(a * b)/db = a, each times out.grad; ADD (a * a uses a twice)
            raise NotWrittenYet("Value.__mul__'s _backward")
        out._backward = _backward
        return out

    def relu(self):
        out = Value(max(0.0, self.data), (self,), "relu")

        def _backward():
            # TODO: the derivative is 1 where the input was above 0, else 0
            raise NotWrittenYet("Value.relu's _backward")
        out._backward = _backward
        return out

    def backward(self):
        """Fills .grad of every node this one depends on with d(self)/d(node).

        topological_order(self) lists every node once, each after the nodes it was made from."""
        # TODO: start from d(self)/d(self) = 1, then run each node's _backward, last node first.
        raise NotWrittenYet("Value.backward")
