"""Value: one number in a computational graph, and backpropagation on numbers one at a time.

The smallest possible version of what every layer of tinysqueeze.nn does with arrays (the "start"
lesson, before lesson 0). In the spirit of karpathy/micrograd's engine: each operation makes a new
`Value` that remembers the Values it was made from and a small closure, `_backward`, that knows the
operation's local derivatives. `Value.backward()` puts the graph in topological order and walks it
backwards, each node handing its gradient to its children through the chain rule:

    child.grad += (d node / d child) * node.grad

with `+=`, because a child used twice (in `a * a`, or feeding two operations) receives a share
from each use, and its gradient is their sum.

Plain Python floats, no arrays: slow and meant to be read. (Its picture: `draw_graph` in
evaluation/pictures.py.)
"""
from __future__ import annotations


class Value:
    """One scalar node of a computational graph.

    data: float, the number this node holds (computed in the forward pass).
    grad: float, dL/d(this node) for the L that `backward()` was last called on; 0.0 until then,
          and, like `Parameter.grad`, ADDED to by every backward pass (set it to 0 to start again).
    children: tuple of the Values this one was computed from (empty for an input or a weight).
    op: the name of the operation that made it ("+", "*", "relu", "**2", ...; "" for an input).
    label: an optional name, shown in pictures ("x1", "w1", ...).
    _backward: a closure with no arguments that adds this node's share into each child's grad.
    """

    def __init__(self, data: float, children: tuple = (), op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self.children = tuple(children)
        self.op = op
        self.label = label
        self._backward = lambda: None          # an input has no children to pass anything to

    def __repr__(self) -> str:
        name = f"{self.label}: " if self.label else ""
        return f"Value({name}data={self.data:.4g}, grad={self.grad:.4g})"

    # -- operations: each computes `data` and leaves behind the rule for its gradient ----------
    def __add__(self, other) -> "Value":
        other = as_value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():                       # d(a + b)/da = 1, d(a + b)/db = 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other) -> "Value":
        other = as_value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():                       # d(a * b)/da = b, d(a * b)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> "Value":
        """self ** exponent, for a plain number exponent (not a Value)."""
        if isinstance(exponent, Value):
            raise TypeError("Value ** Value is not supported: the exponent must be a plain number")
        exponent = float(exponent)
        out = Value(self.data ** exponent, (self,), f"**{exponent:g}")

        def _backward():                       # d(a ** k)/da = k * a ** (k - 1)
            self.grad += exponent * self.data ** (exponent - 1) * out.grad
        out._backward = _backward
        return out

    def relu(self) -> "Value":
        """max(0, self). Its derivative is 1 above zero and 0 below (0 at zero itself, as in nn.ReLU)."""
        out = Value(max(0.0, self.data), (self,), "relu")

        def _backward():
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad
        out._backward = _backward
        return out

    # -- the same operations with the Value on the right, and the ones built from them ---------
    def __radd__(self, other) -> "Value":      # 2 + v: float.__add__ gives up, Python asks v
        return self + other

    def __rmul__(self, other) -> "Value":      # 2 * v
        return self * other

    def __neg__(self) -> "Value":              # -v = v * (-1)
        return self * -1.0

    def __sub__(self, other) -> "Value":       # v - w = v + (-w), w a Value or a plain number
        return self + (-other)

    def __rsub__(self, other) -> "Value":      # 2 - v = (-v) + 2
        return (-self) + other

    # -- backpropagation ----------------------------------------------------------------------
    def backward(self) -> None:
        """Fills `.grad` of every node this one depends on with d(self)/d(node).

        Sets self.grad = 1 (dL/dL), then runs each node's `_backward` in reverse topological order:
        a node passes its gradient on only after every node that uses it has added its share.
        Gradients are added (+=) to what is already there, so call it once per fresh graph, or set
        the grads back to 0 first."""
        order = topological_order(self)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def as_value(x) -> Value:
    """A Value as it is; a plain number as a new input Value (so that `v * 2` and `2 * v` work)."""
    return x if isinstance(x, Value) else Value(x)


def topological_order(root: Value) -> list[Value]:
    """Every node `root` depends on, each once, and each after all its children: inputs first, root last.

    Depth first: a node is appended once all of its children have been."""
    order, seen = [], set()

    def visit(node: Value) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for child in node.children:
            visit(child)
        order.append(node)

    visit(root)
    return order
