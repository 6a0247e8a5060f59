"""What is graded for each assignment: the cases, and the common mistakes each one can show.

`check_layer` grades any layer the same way (forward, backward against tinysqueeze's, the
gradient check, gradients added not assigned, `dout` left alone); the functions below it give it
each layer's cases and the mistakes that layer invites. Every case runs in float64.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import nn
from ..evaluation.gradcheck import distinct_input, rel_error
from ..evaluation.gradcheck import numeric_gradient as reference_numeric_gradient
from ..models import Fire
from ..nn.kernels import col2im_numpy, im2col_numpy
from ..nn.scalar import Value as ReferenceValue
from ..optim import SGD
from ..optim.step import train_step as reference_train_step
from .grading import FORWARD_DISAGREES, CaseData, Grader, Hint, Pattern, Stop, ratio_is, same

def off_by_a_constant_per_channel(yours, expected) -> bool:
    """Yours differs from the expected output by one constant per output channel (axis 1): the bias."""
    diff = expected - yours
    per_channel = diff.mean(axis=tuple(k for k in range(diff.ndim) if k != 1), keepdims=True)
    return bool(np.any(diff)) and same(diff, np.broadcast_to(per_channel, diff.shape), 1e-9)


BIAS = Hint("the output is off by one constant per output channel: the bias is left out (or added twice)",
            off_by_a_constant_per_channel)
ADDS_NOT_ASSIGNS = ("backward sets .grad with `=`; it must ADD (`+=`): gradients accumulate until zero_grad() "
                    "(lesson 0's contract; a layer used twice, as SqueezeNet's squeeze output is, needs both)")
WROTE_INTO_DOUT = ("backward changed `dout` in place; return a new array instead (`dout * mask`, not "
                   "`dout[mask] = 0`): the caller may use dout again (a Fire bypass adds it to dx)")
BATCH_SUM = ("right for one image, wrong for a batch: every image's gradient must be summed into the "
             "parameter's (a missing sum over the batch, or a mean instead of a sum)")


@dataclass
class LayerCase:
    """One configuration a layer is graded on: build(cls) makes the layer (yours or tinysqueeze's)."""

    label: str
    build: Callable[[type], nn.Module]
    inputs: Callable[[], object]
    args: tuple = ()
    tags: tuple = ()
    train: bool = True
    gradient_check: bool = True
    may_change_input: bool = False


def _copy(x):
    return [a.copy() for a in x] if isinstance(x, list) else np.array(x, copy=True)


def check_layer(grader: Grader, name: str, reference: type, cases: list[LayerCase], hints: dict | None = None,
                patterns: dict | None = None) -> None:
    """Grades the learner's class `name` (a subclass of `reference`) on `cases`.

    Parts: "name.forward", "name.backward: dx" and one "name.backward: d<param>" per parameter of
    any case. hints / patterns: {part suffix ("forward", "dx", "dweight", ...): [Hint or Pattern]}.
    """
    hints, patterns = hints or {}, patterns or {}

    def part(suffix):
        title = f"{name}.forward" if suffix == "forward" else f"{name}.backward: {suffix}"
        return grader.part(title, hints.get(suffix, ()), patterns.get(suffix, ()))

    forward = part("forward")
    backward = {"x": part("dx")}
    for case in cases:                                   # every part named before anything runs
        backward |= {p: part(f"d{p}") for p, _ in case.build(reference).named_parameters()}
    rng = np.random.default_rng(0)
    try:
        yours_class = grader.subclass(forward, name, reference)
        for case in cases:
            ref = case.build(reference)
            yours = grader.call(forward, case.label, case.build, yours_class)
            for module in (ref, yours):
                module.to(np.float64)
                module.train(case.train)
            x = case.inputs()
            given = _copy(x)
            expected = ref(_copy(x), *case.args)
            out = grader.call(forward, case.label, yours, given, *case.args)
            inputs_after = given if isinstance(x, list) else [given]
            inputs_before = x if isinstance(x, list) else [x]
            if not case.may_change_input and not all(same(a, b, 0.0) for a, b in zip(inputs_after, inputs_before)):
                forward.fail(case.label, "changed its input x in place",
                             "only with inplace=True may a layer write over its input; compute into a new array")
            if case.may_change_input and isinstance(out, np.ndarray) and not np.shares_memory(out, given):
                forward.fail(case.label, "returned a new array", "with inplace=True, write y over x itself "
                                                                 "(np.maximum(x, 0, out=x)) and return x")
            grader.compare(forward, case.label, out, expected, case.tags)

            upstream = 1.7 if np.ndim(expected) == 0 else rng.standard_normal(np.shape(expected))
            grader.case = CaseData(ref, _copy(x), _copy(upstream) if np.ndim(upstream) else upstream)
            prefill = {}
            for (pname, p_ref), (_, p_yours) in zip(ref.named_parameters(), yours.named_parameters()):
                prefill[pname] = rng.standard_normal(p_ref.data.shape)
                p_ref.grad, p_yours.grad = prefill[pname].copy(), prefill[pname].copy()
            d_expected = ref.backward(_copy(upstream) if np.ndim(upstream) else upstream)
            upstream_given = _copy(upstream) if np.ndim(upstream) else upstream
            d_yours = grader.call(backward["x"], case.label, yours.backward, upstream_given)
            if np.ndim(upstream) and not same(upstream_given, upstream, 0.0):
                backward["x"].fail(case.label, "wrote into dout", WROTE_INTO_DOUT)
            if isinstance(d_expected, list):
                if not isinstance(d_yours, (list, tuple)) or len(d_yours) != len(d_expected):
                    got = (f"a {type(d_yours).__name__} of {len(d_yours)}" if isinstance(d_yours, (list, tuple))
                           else f"a {type(d_yours).__name__}")
                    backward["x"].cases += 1
                    backward["x"].fail(case.label, f"returned {got}, expected a list of {len(d_expected)} arrays, "
                                                   "one per branch")
                else:
                    for k, (a, b) in enumerate(zip(d_yours, d_expected)):
                        grader.compare(backward["x"], f"{case.label}, branch {k}", a, b, case.tags)
            else:
                grader.compare(backward["x"], case.label, d_yours, d_expected, case.tags)
            for (pname, p_ref), (_, p_yours) in zip(ref.named_parameters(), yours.named_parameters()):
                if same(p_yours.grad, p_ref.grad - prefill[pname]) and not same(p_ref.grad, p_yours.grad):
                    backward[pname].cases += 1
                    backward[pname].outcomes.append((frozenset(case.tags), False))
                    backward[pname].fail(case.label, "the gradient was assigned, not added", ADDS_NOT_ASSIGNS)
                else:                                    # what this backward added, yours against ours
                    grader.compare(backward[pname], case.label, p_yours.grad - prefill[pname],
                                   p_ref.grad - prefill[pname], case.tags)

            if case.gradient_check:
                checked = case.build(yours_class)
                checked.train(case.train)
                grader.gradient_check(backward, case.label, checked, case.inputs(), *case.args)
    except Stop:
        grader.stopped([forward, *backward.values()])
    if forward.failure:
        blame_the_forward(forward, backward.values())


def blame_the_forward(forward, backward_parts) -> None:
    """The forward failed: a backward part with no hint of its own (or the one that assumes the
    forward is right) is told to fix the forward first, since it works from what the forward kept."""
    for part in backward_parts:
        if part.failure and part.hint in ("", FORWARD_DISAGREES):
            part.hint = (f"{forward.name} fails ({forward.failure}): make it pass first; the backward "
                         "works from what the forward kept")


# -------------------------------------------------------------------------------------- value
# Each operation's local derivatives, by hand: (name, op(a, b), (d/da, d/db) at (a, b)).
SCALAR_OPERATIONS = [
    ("Value.__add__'s _backward", lambda a, b: a + b, lambda a, b: (1.0, 1.0)),
    ("Value.__mul__'s _backward", lambda a, b: a * b, lambda a, b: (b, a)),
    ("Value.relu's _backward", lambda a, b: a.relu(), lambda a, b: (1.0 if a > 0 else 0.0, 0.0)),
]
HELD = np.array([0.25, -0.5])       # what the inputs' .grad hold before: a _backward must add to it


def scalar_graphs():
    """(label, build(Value, leaf values) -> (root, leaves), leaf values): graphs with shared nodes."""
    def neuron(V, v):
        x1, x2, w1, w2, b = (V(t) for t in v)
        return (w1 * x1 + w2 * x2 + b).relu(), (x1, x2, w1, w2, b)

    def used_twice(V, v):
        x = V(v[0])
        return x * x + x, (x,)

    def diamond(V, v):
        a = V(v[0])
        b = a * 3.0
        c = a + b
        return b * c, (a,)

    def deep(V, v):
        x, w = V(v[0]), V(v[1])
        h = (x * w + 1.0).relu()
        return (h * x + h * w) * h, (x, w)
    return [("relu(w1*x1 + w2*x2 + b), a neuron", neuron, (2.0, 1.5, 0.8, -0.5, 0.1)),
            ("x*x + x, x used three times", used_twice, (3.0,)),
            ("b = 3a, c = a + b, b*c: a diamond", diamond, (2.0,)),
            ("h = relu(x*w + 1), (h*x + h*w)*h", deep, (0.7, -0.4))]


def grade_value(grader: Grader) -> None:
    parts = [grader.part(name, hints=[
        Hint("an input received nothing: every input of the operation gets its share of out.grad",
             lambda y, e: bool(np.any(np.isclose(y, HELD[:len(y)]) & ~np.isclose(e, HELD[:len(y)])))),
        Hint("the gradient was assigned (`=`), not added: the inputs' .grad already held something (`+=`)",
             lambda y, e: bool(np.any(np.isclose(y, e - HELD[:len(y)]) & ~np.isclose(y, e)))),
        Hint("a value used twice got one share, not both: add (`+=`) into each input's .grad, even when both "
             "inputs are the same Value", lambda y, e: len(y) == 1 and same(y, e / 2)),
        Hint("the gradient passed where the input was not above 0: relu's derivative is 0 there (at 0 too)",
             lambda y, e, name=name: len(y) == 1 and "relu" in name and not np.isclose(y[0], e[0])),
        Hint("the shares are off by a constant factor: the local derivative of + is 1, of a * b is b (for a)",
             lambda y, e: len(y) == 2 and bool(np.all(e - HELD)) and bool(np.allclose(
                 (y - HELD) / (e - HELD), ((y - HELD) / (e - HELD))[0])))])
        for name, _, _ in SCALAR_OPERATIONS]
    try:
        yours = grader.subclass(parts[0], "Value", ReferenceValue)
    except Stop:
        return
    for part, (name, op, local) in zip(parts, SCALAR_OPERATIONS):
        unary = "relu" in name
        try:
            for a0, b0 in [(2.0, -3.0), (-1.5, 0.5), (0.7, 4.0)] + ([(0.0, 0.0)] if unary else []):
                case = f"a={a0}" if unary else f"a={a0}, b={b0}"
                a, b = yours(a0), yours(b0)
                a.grad, b.grad = HELD
                out = op(a, b)
                out.grad = 1.5
                grader.call(part, case, out._backward)
                da, db = local(a0, b0)
                expected = (HELD + 1.5 * np.array([da, db]))[:1 if unary else 2]
                got = np.array([a.grad, b.grad])[:1 if unary else 2]
                if "mul" in name and same(got, HELD + 1.5 * np.array([a0, b0])):
                    part.cases += 1
                    part.fail(case, "a.grad and b.grad are each other's",
                              "the local derivatives are swapped: d(a * b)/da is b, the OTHER input")
                    continue
                grader.compare(part, f"{case} (.grad holding {HELD[0]}{'' if unary else f', {HELD[1]}'} before)",
                               got, expected)
            if "relu" not in name:
                a = yours(1.5)
                out = op(a, a)
                out.grad = 1.0
                grader.call(part, "a op a", out._backward)
                grader.compare(part, "a op a (a used twice)", np.array([a.grad]), np.array([sum(local(1.5, 1.5))]))
        except Stop:
            pass

    walk = grader.part("Value.backward", hints=[
        Hint("the root's gradient is 0: the walk starts with d(root)/d(root) = 1", lambda y, e: y[-1] == 0),
        Hint("a node handed its gradient on before every use of it had added its share: run the _backward "
             "closures in REVERSE topological order (the root first)", lambda y, e: True)])
    if not all(grader.parts[name].passed for name, _, _ in SCALAR_OPERATIONS):
        walk.hint = "make the three _backward rules pass first: backward runs them"
        return
    try:
        for label, build, values in scalar_graphs():
            root, leaves = build(yours, values)
            grader.call(walk, label, root.backward)
            got = np.array([leaf.grad for leaf in leaves] + [root.grad])       # the leaves' and the root's
            ref_root, ref_leaves = build(ReferenceValue, values)
            ref_root.backward()
            grader.compare(walk, label, got, np.array([leaf.grad for leaf in ref_leaves] + [ref_root.grad]))
            got = got[:-1]
            numeric = [(build(ReferenceValue, values[:k] + (v + 1e-6,) + values[k + 1:])[0].data
                        - build(ReferenceValue, values[:k] + (v - 1e-6,) + values[k + 1:])[0].data) / 2e-6
                       for k, v in enumerate(values)]
            error = rel_error(got, np.array(numeric))
            walk.worst_gradcheck = max(walk.worst_gradcheck or 0.0, error)
            if not error <= 1e-6:
                walk.fail(label, f"gradient check: rel. error {error:.1e} against finite differences")
    except Stop:
        pass


# ------------------------------------------------------------------------------------- linear
def grade_linear(grader: Grader) -> None:
    def case(label, n, fan_in, fan_out, bias=True, tags=()):
        return LayerCase(label, lambda cls: cls(fan_in, fan_out, bias=bias, rng=np.random.default_rng(fan_in)),
                         lambda: distinct_input((n, fan_in), seed=n + fan_in), tags=tags)

    cases = [case("6 -> 6, N=4", 4, 6, 6, tags=("batch",)), case("7 -> 4, N=3", 3, 7, 4, tags=("batch",)),
             case("5 -> 2, N=1", 1, 5, 2), case("5 -> 3, N=2, no bias", 2, 5, 3, False, ("batch",))]
    transposed = Hint("dW is transposed: it is dout.T @ x, (out, N) @ (N, in) -> (out, in), the weight's own shape",
                      lambda y, e: same(y, e.T))
    check_layer(grader, "Linear", nn.Linear, cases, hints={
        "forward": [BIAS],
        "dweight": [transposed],
        "dbias": [Hint("db keeps the batch axis: sum dout over the N images (axis 0)", lambda y, e: y.ndim == 2)],
        "dx": [Hint("dx = dout @ W, (N, out) @ (out, in); not dout @ W.T", lambda y, e: y.shape[-1] != e.shape[-1]),
               Hint("dx = dout @ W, (N, out) @ (out, in) -> (N, in); yours is dout @ W.T, which has the same shape "
                    "only because this W is square", lambda y, e, case: same(y, case.dout @ case.layer.weight.data.T),
                    needs_case=True)],
    }, patterns={"dweight": [Pattern("batch", BATCH_SUM)], "dbias": [Pattern("batch", BATCH_SUM)]})


# --------------------------------------------------------------------------------------- conv
CONV_CASES = [  # (label, N, C, H, W, F, kernel, stride, padding, tags)
    ("3x3, stride 1, padding 1, N=2, 5x5", 2, 3, 5, 5, 4, 3, 1, 1, ("overlap", "padding", "batch")),
    ("3x3, stride 2, no padding, N=2, 7x6", 2, 2, 7, 6, 3, 3, 2, 0, ("overlap", "stride", "batch")),
    ("1x1, N=2, 4x5", 2, 3, 4, 5, 2, 1, 1, 0, ("batch",)),
    ("2x2, stride 2, no padding, N=1, 6x6", 1, 2, 6, 6, 3, 2, 2, 0, ("stride",)),
    ("3x3, stride 1, no padding, N=1, 5x4", 1, 2, 5, 4, 2, 3, 1, 0, ("overlap",)),
    ("3x3, stride 2, padding 1, N=3, 9x8", 3, 2, 9, 8, 3, 3, 2, 1, ("overlap", "stride", "padding", "batch")),
    # padding without overlap (stride = kernel): a padding mistake is then told from an overlap mistake
    ("2x2, stride 2, padding 1, N=2, 5x6", 2, 2, 5, 6, 3, 2, 2, 1, ("stride", "padding", "batch")),
    ("3x3, stride 3, padding 1, N=1, 7x7", 1, 3, 7, 7, 2, 3, 3, 1, ("stride", "padding")),
]
CONV_PATTERNS = [
    Pattern("overlap", "right where windows do not overlap, wrong where they do: col2im must ADD (`+=`) what "
                       "comes back from every window a pixel is in; `=` keeps only the last window's share"),
    Pattern("padding", "right without padding, wrong with it: pad x with zeros before unfolding, and cut the "
                       "padding off dx at the end"),
    Pattern("stride", "right at stride 1, wrong at stride 2: step the output pixels by `stride` in the input"),
]

COL2IM_PADDING = Pattern("padding", "right without padding, wrong with it: the padding is on every side, so dx is "
                                    "dxp[:, :, p:p+h, p:p+w] (not dxp[:, :, :h, :w], which keeps the top and left "
                                    "padding and cuts real pixels at the bottom and right)")


def on_the_edge_only(yours, expected) -> bool:
    """Yours differs from the expected dx (N, C, H, W) only on the outermost rows and columns."""
    diff = yours - expected
    return bool(np.any(diff)) and not np.any(diff[:, :, 1:-1, 1:-1])


def grade_conv(grader: Grader) -> None:
    im2col = grader.part("im2col", patterns=CONV_PATTERNS)
    col2im = grader.part("col2im", patterns=[CONV_PATTERNS[0], COL2IM_PADDING, *CONV_PATTERNS[2:]], hints=[
        Hint("dx still has the padding: cut `padding` rows and columns off each side", lambda y, e: y.ndim == 4 and
             y.shape[2] > e.shape[2]),
        Hint("the padding's gradient was added onto the edge pixels: the padding is zeros put around x, not "
             "pixels of x, so its gradient is dropped (dx = dxp[:, :, p:p+h, p:p+w])", on_the_edge_only)])
    for label, n, c, h, w, f, k, s, p, tags in CONV_CASES:
        x = distinct_input((n, c, h, w), seed=n + h)
        h_out, w_out = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        try:
            cols = grader.call(im2col, label, grader.function("im2col"), x.copy(), k, k, s, p, h_out, w_out)
            grader.compare(im2col, label, cols, im2col_numpy(x, k, k, s, p, h_out, w_out), tags)
        except Stop:
            break
    for label, n, c, h, w, f, k, s, p, tags in CONV_CASES:
        dcols = distinct_input((n, c * k * k, ((h + 2 * p - k) // s + 1) * ((w + 2 * p - k) // s + 1)), seed=h)
        h_out, w_out = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        try:
            dx = grader.call(col2im, label, grader.function("col2im"), dcols.copy(), (n, c, h, w), k, k, s, p, h_out, w_out)
            grader.compare(col2im, label, dx, col2im_numpy(dcols, (n, c, h, w), k, k, s, p, h_out, w_out), tags)
        except Stop:
            break
    uses_yours = "your Conv2d calls your im2col / col2im: make those pass first" \
        if not (im2col.passed and col2im.passed) else ""

    def case(label, n, c, h, w, f, k, s, p, tags):
        return LayerCase(label, lambda cls: cls(c, f, k, s, p, rng=np.random.default_rng(k + s)),
                         lambda: distinct_input((n, c, h, w), seed=n + h), tags=tags)

    check_layer(grader, "Conv2d", nn.Conv2d, [case(*row) for row in CONV_CASES], hints={
        "forward": [Hint(uses_yours, lambda y, e: bool(uses_yours)), BIAS],
        "dx": [Hint(uses_yours, lambda y, e: bool(uses_yours))],
        "dweight": [Hint("dW was computed transposed, (C*KH*KW, F), then reshaped: it is dY[n] @ cols[n].T, "
                         "(F, L) @ (L, C*KH*KW), summed over n, then reshaped to (F, C, KH, KW)",
                         lambda y, e: y.size == e.size and same(y.reshape(-1), e.reshape(e.shape[0], -1).T.reshape(-1))),
                    Hint("dW has the right numbers in the wrong order: dW = sum over n of dY[n] @ cols[n].T, reshaped "
                         "to (F, C, KH, KW)", lambda y, e: y.size == e.size and (y.shape != e.shape or same(
                             np.sort(y.reshape(-1)), np.sort(e.reshape(-1)))))],
        "dbias": [Hint("db keeps an axis it should sum over: it is dout summed over the images and the pixels",
                       lambda y, e: y.shape != e.shape)],
    }, patterns={"dx": CONV_PATTERNS, "forward": CONV_PATTERNS, "dweight": [Pattern("batch", BATCH_SUM)] + CONV_PATTERNS,
                 "dbias": [Pattern("batch", BATCH_SUM)]})


# ------------------------------------------------------------------------------------ pooling
def grade_pooling(grader: Grader) -> None:
    overlap = Pattern("overlap", "right where windows do not overlap, wrong where they do (stride < kernel): a "
                                 "pixel in two windows gets both gradients; add (`+=`), do not overwrite")
    edge = Pattern("edge", "right where every window fits, wrong where ceil_mode lets the last window hang over "
                           "the edge: pad the bottom/right with -inf far enough (only pixels inside count)")
    padding = Pattern("padding", "right without padding, wrong with it: padding is -inf for max-pooling (it never "
                                 "wins), not 0 (which beats every negative pixel)")
    max_cases = []
    for label, k, s, p, ceil, n, h, w, tags in [
        ("3x3, stride 2, ceil_mode (SqueezeNet's), N=1, 13x13", 3, 2, 0, True, 1, 13, 13, ("overlap",)),
        ("2x2, stride 2, N=2, 6x6", 2, 2, 0, False, 2, 6, 6, ()),
        ("3x3, stride 2, ceil_mode, N=2, 8x8 (last window hangs over)", 3, 2, 0, True, 2, 8, 8, ("overlap", "edge")),
        ("3x3, stride 2, padding 1, N=2, 7x7", 3, 2, 1, False, 2, 7, 7, ("overlap", "padding")),
        ("2x2, stride 2, ceil_mode, N=1, 5x7 (last window hangs over)", 2, 2, 0, True, 1, 5, 7, ("edge",)),
    ]:
        max_cases.append(LayerCase(label, lambda cls, k=k, s=s, p=p, ceil=ceil: cls(k, s, p, ceil_mode=ceil),
                                   lambda n=n, h=h, w=w: distinct_input((n, 2, h, w), seed=h + w), tags=tags))
    max_cases.append(LayerCase("2x2, stride 2, N=2, 4x4 with ties (no gradient check at a tie)",
                               lambda cls: cls(2, 2), lambda: np.round(distinct_input((2, 2, 4, 4), seed=9), 0),
                               tags=("ties",), gradient_check=False))
    check_layer(grader, "MaxPool2d", nn.MaxPool2d, max_cases, hints={
        "forward": [Hint("windows at the edge gave 0 where every pixel they cover is negative: pad with -inf, not 0 "
                         "(padding must never win)", lambda y, e: bool(np.all(y >= e)) and bool(np.all(y[y != e] == 0)))],
        "dx": [Hint("on a tie the gradient went to every maximum of the window; it goes to ONE pixel, the FIRST "
                    "maximum in row-major window order (PyTorch's rule): keep the winner's index, not a mask of "
                    "x == max", lambda y, e, case: same(y, to_every_maximum(case.layer, case.x, case.dout)),
                    needs_case=True),
               Hint("the gradient went to every pixel of the window; it goes to the one that won (the max)",
                    lambda y, e: np.count_nonzero(y) > 2 * np.count_nonzero(e))],
    }, patterns={"forward": [edge, padding], "dx": [overlap, edge, padding, Pattern(
        "ties", "right without ties, wrong with them: on a tie the FIRST maximum in row-major window order wins "
                "(PyTorch's rule), so compare with > (strictly), not >=")]})

    avg_cases = [LayerCase(f"{k}x{k}, stride {s}, N=2, 7x8", lambda cls, k=k, s=s: cls(k, s),
                           lambda: distinct_input((2, 2, 7, 8), seed=3), tags=("overlap",) if s < k else ())
                 for k, s in [(2, 2), (3, 1), (3, 2)]]
    not_divided = Hint("the window's sum, not its mean: divide by KH*KW", lambda y, e: any(
        same(y, e * r) for r in (4, 9)))
    check_layer(grader, "AvgPool2d", nn.AvgPool2d, avg_cases, hints={"forward": [not_divided], "dx": [not_divided]},
                patterns={"dx": [overlap]})

    global_cases = [LayerCase("global, N=2, 5x7", lambda cls: cls(1), lambda: distinct_input((2, 3, 5, 7), seed=4)),
                    LayerCase("global, N=1, 4x4", lambda cls: cls(1), lambda: distinct_input((1, 2, 4, 4), seed=5))]
    check_layer(grader, "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d, global_cases, hints={
        "forward": [Hint("keep the (N, C, 1, 1) shape (keepdims=True)", lambda y, e: y.shape == e.shape[:2])],
        "dx": [Hint("off by a constant factor: each pixel's share is dout / (H*W), the mean's derivative",
                    lambda y, e: bool(np.all(e)) and same(y / e, np.full(e.shape, (y / e).reshape(-1)[0])))],
    })


def to_every_maximum(pool, x, dout):
    """The max-pool backward that sends each window's dout to EVERY pixel equal to the window's
    maximum (the mistake), computed from the layer's own forward. x: (N, C, H, W)."""
    out = pool.forward(x.copy())
    kh, kw = pool.kernel_size
    s, p = pool.stride, pool.padding
    n, c, h, w = x.shape
    h_out, w_out = out.shape[2:]
    xp = np.full((n, c, max(h + 2 * p, (h_out - 1) * s + kh), max(w + 2 * p, (w_out - 1) * s + kw)), -np.inf)
    xp[:, :, p : p + h, p : p + w] = x
    dxp = np.zeros_like(xp)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i : i + s * h_out : s, j : j + s * w_out : s]
            dxp[:, :, i : i + s * h_out : s, j : j + s * w_out : s] += dout * (tap == out)
    return dxp[:, :, p : p + h, p : p + w]


# ------------------------------------------------------------------------ relu, dropout, concat
def with_zeros(shape, seed):
    """distinct_input with a few exact zeros (ReLU's kink, where PyTorch's derivative is 0)."""
    x = distinct_input(shape, seed)
    x.reshape(-1)[::7] = 0.0
    return x


def grade_relu_dropout_concat(grader: Grader) -> None:
    check_layer(grader, "ReLU", nn.ReLU, [
        LayerCase("(2, 3, 4, 5)", lambda cls: cls(), lambda: distinct_input((2, 3, 4, 5), 1)),
        LayerCase("(2, 3, 4, 5), inplace=True (as in SqueezeNet)", lambda cls: cls(inplace=True),
                  lambda: distinct_input((2, 3, 4, 5), 2), may_change_input=True, tags=("inplace",),
                  gradient_check=False),       # nudging x in place, a layer that overwrites x cannot be checked
        LayerCase("(3, 7) with exact zeros (no gradient check at the kink)", lambda cls: cls(),
                  lambda: with_zeros((3, 7), 3), gradient_check=False, tags=("zeros",)),
    ], hints={"dx": [Hint("the gradient passes where x was negative: the mask is all True, as `y >= 0` is (y is never "
                          "negative), and as a test of x is once an inplace forward has written over x (x holds y "
                          "then); keep the mask y > 0, taken in the forward",
                          lambda y, e: np.count_nonzero(y) > np.count_nonzero(e) and np.count_nonzero(y) == y.size)]},
        patterns={"dx": [Pattern("zeros", "at exactly 0 the derivative is 0 (PyTorch's choice): the mask is x > 0, "
                                          "not x >= 0"),
                         Pattern("inplace", "right without inplace, wrong with it: with inplace=True the input IS "
                                            "the output afterwards; take what backward needs from y")]})
    check_layer(grader, "Dropout", nn.Dropout, [
        LayerCase("p=0.5, training", lambda cls: cls(0.5, seed=3), lambda: distinct_input((2, 3, 4, 5), 4)),
        LayerCase("p=0.25, training", lambda cls: cls(0.25, seed=5), lambda: distinct_input((3, 8), 5)),
        LayerCase("p=0.5, eval (the identity)", lambda cls: cls(0.5, seed=3), lambda: distinct_input((2, 6), 6),
                  train=False, tags=("eval",)),
    ], hints={"forward": [Hint("the kept values are not scaled: divide them by (1 - p) (inverted dropout)",
                               lambda y, e: any(same(y, e * (1 - p)) for p in (0.5, 0.25))),
                          Hint("your mask keeps exactly what should be dropped: keep where the draw is >= p, "
                               "`keep = self.rng.random(x.shape) >= self.p` (`< 1 - p` keeps as often, but other "
                               "entries; the grader and a resumed run need this very draw)",
                               lambda y, e: np.count_nonzero(e) < e.size and bool(np.all((y != 0) == (e == 0)))),
                          Hint("draw the mask exactly as `keep = self.rng.random(x.shape) >= self.p`, once per forward",
                               lambda y, e: np.count_nonzero(e) < e.size and np.count_nonzero(y) != np.count_nonzero(e))],
              "dx": [Hint("the kept gradients are not scaled by 1 / (1 - p), as the forward's values are",
                          lambda y, e: any(same(y, e * (1 - p)) for p in (0.5, 0.25)))]},
        patterns={"forward": [Pattern("eval", "in eval (self.training is False) dropout is the identity")],
                  "dx": [Pattern("eval", "in eval dropout is the identity: dx = dout")]})
    check_layer(grader, "Concat", nn.Concat, [
        LayerCase("2 branches, N=2", lambda cls: cls(), lambda: [distinct_input((2, 3, 4, 5), 7),
                                                                 distinct_input((2, 2, 4, 5), 8)]),
        LayerCase("3 branches, N=1", lambda cls: cls(), lambda: [distinct_input((1, 1, 3, 3), 9),
                                                                 distinct_input((1, 4, 3, 3), 10),
                                                                 distinct_input((1, 2, 3, 3), 11)]),
    ], hints={"forward": [Hint("joined along the wrong axis: channels are axis 1 of (N, C, H, W)",
                               lambda y, e: y.shape != e.shape and y.size == e.size)],
              "dx": [Hint("cut along the wrong axis or at the wrong places: branch k gets channels "
                          "[C_0 + ... + C_(k-1), + C_k) of dout", lambda y, e: y.shape != e.shape)]})


# --------------------------------------------------------------------------------------- loss
def grade_loss(grader: Grader) -> None:
    def case(label, n, k, scale=1.0, seed=0, tags=()):
        labels = np.random.default_rng(seed).integers(0, k, n)
        return LayerCase(label, lambda cls: cls(), lambda: distinct_input((n, k), seed) * scale, args=(labels,),
                         tags=tags)

    check_layer(grader, "SoftmaxCrossEntropy", nn.SoftmaxCrossEntropy, [
        case("N=3, K=5", 3, 5, seed=1, tags=("batch",)), case("N=1, K=10", 1, 10, seed=2),
        case("N=4, K=3, logits near 1000 (a naive exp overflows)", 4, 3, scale=1000.0, seed=3, tags=("large", "batch")),
    ], hints={"forward": [Hint("not a number on large logits: exp overflowed (subtract each row's maximum before "
                               "exp; the softmax does not change), or a probability underflowed to 0 before its log "
                               "(compute log-softmax as (z - max) - log(sum(exp(z - max))), never log(softmax))",
                               lambda y, e: not bool(np.all(np.isfinite(y))) and abs(float(e)) > 50),
                          Hint("the loss is the MEAN over the batch, not the sum", lambda y, e: any(
                              same(y, e * n) for n in (3, 4)))],
              "dx": [Hint("the loss is a MEAN over the batch: divide the gradient by N", lambda y, e: any(
                         same(y, e * n) for n in (3, 4))),
                     Hint("multiply by dout, the gradient arriving from above (it is 1 only when the loss is the "
                          "last thing computed)", lambda y, e: same(y * 1.7, e)),
                     Hint("the sign is flipped: dlogits = softmax - onehot", lambda y, e: same(y, -e)),
                     Hint("NaN: the softmax of the backward overflowed; keep the forward's (stable) probabilities",
                          lambda y, e: not np.all(np.isfinite(y)))]},
        patterns={"forward": [Pattern("large", "exp overflowed on large logits: subtract each row's maximum first")],
                  "dx": [Pattern("batch", "right for one image, wrong for a batch: divide by N, the batch size")]})


# ---------------------------------------------------------------------------------- gradcheck
# Functions whose gradient is known by hand: (label, f(x), gradient(x), shape).
KNOWN_GRADIENTS = [
    ("sum(x^3)", lambda x: float(np.sum(x ** 3)), lambda x: 3 * x ** 2, (3, 4)),
    ("sum(sin(x) * x)", lambda x: float(np.sum(np.sin(x) * x)), lambda x: np.cos(x) * x + np.sin(x), (5,)),
    ("log(sum(exp(x)))", lambda x: float(np.log(np.exp(x).sum())), lambda x: np.exp(x) / np.exp(x).sum(), (2, 3, 2)),
]


def grade_gradcheck(grader: Grader) -> None:
    one_sided = ("a one-sided difference, (f(x + eps) - f(x)) / eps: use the centred one, "
                 "(f(x + eps) - f(x - eps)) / (2 eps), whose error is O(eps^2) instead of O(eps)")
    numeric = grader.part("numeric_gradient", hints=[
        Hint("divided by eps where the centred difference divides by 2 eps", ratio_is(2.0)),
        Hint("every entry is 0: f never saw your nudges. x.flatten() copies; nudge x itself (x.reshape(-1) is a "
             "view of x, or index x with np.ndindex)", lambda y, e: not np.any(y))])
    try:
        fn = grader.function("numeric_gradient")
        for label, f, gradient, shape in KNOWN_GRADIENTS:
            x = distinct_input(shape, seed=len(shape))
            original = x.copy()
            yours = grader.call(numeric, label, fn, lambda: f(x), x, 1e-6)
            if not same(x, original, 0.0):
                numeric.fail(label, "x is not as it was afterwards",
                             "put each entry back to its original value after nudging it (x[i] = original)")
            exact = gradient(original)
            if same(yours, one_sided_difference(f, original.copy(), 1e-6), 1e-9) and not same(yours, exact, 1e-9):
                numeric.fail(label, f"rel. error {rel_error(yours, exact):.0e} against the gradient by hand", one_sided)
            # tinysqueeze's centred differences, entry by entry: the same arithmetic, so equal to ~1e-16
            expected = reference_numeric_gradient(lambda: f(x), x, np.arange(x.size), 1e-6).reshape(shape)
            grader.compare(numeric, label, yours, expected)
    except Stop:
        pass

    relative = grader.part("rel_error", hints=[
        Hint("scale by the arrays' largest entries: max|a - b| / max(1e-8, max|a| + max|b|)", lambda y, e: True)])
    try:
        fn = grader.function("rel_error")
        rng = np.random.default_rng(3)
        for label, a, b in [("equal arrays", np.ones(3), np.ones(3)),
                            ("a small difference", np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0 + 1e-6])),
                            ("unrelated arrays", rng.standard_normal(6), rng.standard_normal(6)),
                            ("both zero", np.zeros(4), np.zeros(4)),
                            ("one tiny entry far off", np.array([10.0, 1e-9]), np.array([10.0, 2e-9]))]:
            grader.compare(relative, label, grader.call(relative, label, fn, a, b), rel_error(a, b))
    except Stop:
        pass


def one_sided_difference(f, x, eps):
    """The forward difference (f(x + eps) - f(x)) / eps of every entry: the mistake the grader spots."""
    grad, flat = np.zeros_like(x), x.reshape(-1)
    base = f(x)
    for i in range(flat.size):
        flat[i] += eps
        grad.reshape(-1)[i] = (f(x) - base) / eps
        flat[i] -= eps
    return grad


# --------------------------------------------------------------------------------------- step
def small_network(seed: int = 0) -> nn.Module:
    """conv 3x3 -> ReLU -> max-pool -> flatten -> linear: 3-channel 6x6 images to 4 classes, float64."""
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(36, 4, rng=rng))
    model.to(np.float64)
    return model


def grade_step(grader: Grader) -> None:
    loss_part = grader.part("train_step: loss and logits")
    weights = grader.part("train_step: the weights after each step", patterns=[Pattern("second", "the first step is right and the second is not: the first step's gradients "
                                    "were still in .grad. Call optimizer.zero_grad() before the forward")])
    try:
        fn = grader.function("train_step")
        rng = np.random.default_rng(1)
        batches = [(distinct_input((5, 3, 6, 6), seed=k), rng.integers(0, 4, 5)) for k in range(3)]
        ref_model, your_model = small_network(), small_network()
        ref_opt = SGD(ref_model.parameters(), lr=0.1, momentum=0.9)
        your_opt = SGD(your_model.parameters(), lr=0.1, momentum=0.9)
        ref_loss, your_loss = nn.SoftmaxCrossEntropy(), nn.SoftmaxCrossEntropy()
        for k, (x, y) in enumerate(batches):
            label = ("first", "second", "third")[k] + " step"
            before = [p.data.copy() for p in your_model.parameters()]
            expected_loss, expected_logits = reference_train_step(ref_model, ref_loss, ref_opt, x.copy(), y)
            result = grader.call(loss_part, label, fn, your_model, your_loss, your_opt, x.copy(), y)
            if not isinstance(result, tuple) or len(result) != 2:
                loss_part.fail(label, f"returned {type(result).__name__}, expected (loss, logits)")
                raise Stop
            if isinstance(result[0], np.ndarray) and np.ndim(result[1]) == 0:
                loss_part.fail(label, "returned (logits, loss)", "the order is (loss, logits)")
                raise Stop
            grader.compare(loss_part, label, np.array([result[0]]), np.array([expected_loss]))
            grader.compare(loss_part, label, result[1], expected_logits)
            moved = any(not same(b, p.data, 0.0) for b, p in zip(before, your_model.parameters()))
            if not moved:
                weights.fail(label, "no weight moved", "call optimizer.step() after model.backward(...)")
            for p_yours, p_ref in zip(your_model.parameters(), ref_model.parameters()):
                if not grader.compare(weights, label, p_yours.data, p_ref.data, tags=("second",) if k else ()):
                    break
    except Stop:
        pass


# --------------------------------------------------------------------------------------- fire
def grade_fire(grader: Grader) -> None:
    rng = np.random.default_rng
    cases = [
        LayerCase("no bypass, 4 -> squeeze 3, expand 2 + 3, N=2, 5x6", lambda cls: cls(4, 3, 2, 3, rng=rng(0)),
                  lambda: distinct_input((2, 4, 5, 6), 1)),
        LayerCase("simple bypass, 5 -> 5, N=2, 4x4", lambda cls: cls(5, 2, 3, 2, bypass="simple", rng=rng(1)),
                  lambda: distinct_input((2, 5, 4, 4), 2), tags=("bypass", "simple")),
        LayerCase("complex bypass, 3 -> 6, N=1, 5x5", lambda cls: cls(3, 2, 4, 2, bypass="complex", rng=rng(2)),
                  lambda: distinct_input((1, 3, 5, 5), 3), tags=("bypass", "complex")),
    ]
    bypass = Pattern("bypass", "right without a bypass, wrong with one: the output adds x (simple) or self.bypass(x) "
                               "(complex), so dx adds dout (simple) or self.bypass.backward(dout) (complex)")
    swapped = Hint("the two branches are joined in the wrong order: expand1x1's channels first, then expand3x3's "
                   "(torchvision's order, which its weights depend on)",
                   lambda y, e: any(same(y, np.roll(e, k, axis=1)) for k in range(1, e.shape[1])))
    check_layer(grader, "Fire", Fire, cases, hints={"forward": [swapped]},
                patterns={"forward": [bypass], "dx": [bypass]})
    squeeze = grader.parts.get("Fire.backward: dsqueeze.weight")
    expands = [grader.parts.get(f"Fire.backward: dexpand{k}.weight") for k in ("1x1", "3x3")]
    if squeeze and squeeze.status == "FAIL" and all(e and e.passed for e in expands) and not squeeze.hint:
        squeeze.hint = ("the squeeze output feeds BOTH expand layers: its gradient is the SUM of what comes back "
                        "through expand1x1 and through expand3x3")


# ---------------------------------------------------------------------------------------- sgd
def grade_sgd(grader: Grader) -> None:
    part = grader.part("SGD.step", patterns=[
        Pattern("weight_decay", "right without weight decay, wrong with it: g = grad + weight_decay * w, before "
                                "the momentum"),
        Pattern("momentum", "right without momentum, wrong with it: buf = a COPY of g on the first step (g may be "
                            "p.grad itself, which zero_grad() clears before the next step), then buf = momentum * buf "
                            "+ g, and the step is lr * buf"),
    ])
    try:
        your_class = grader.subclass(part, "SGD", SGD)
        for lr, momentum, decay in [(0.1, 0.0, 0.0), (0.1, 0.9, 0.0), (0.05, 0.9, 0.01), (0.2, 0.0, 0.1)]:
            tags = (("momentum",) if momentum else ()) + (("weight_decay",) if decay else ())
            label = f"lr={lr}, momentum={momentum}, weight_decay={decay}"
            rng = np.random.default_rng(int(lr * 100))
            shapes = [(3, 2), (4,)]
            ref_params = [nn.Parameter(rng.standard_normal(s)) for s in shapes]
            your_params = [copy.deepcopy(p) for p in ref_params]
            ref = SGD(ref_params, lr, momentum, decay)
            yours = grader.call(part, label, your_class, your_params, lr, momentum, decay)
            for step in range(4):                        # as training runs it: zero_grad, then += into .grad
                ref.zero_grad()
                grader.call(part, label, yours.zero_grad)
                for p_ref, p_yours in zip(ref_params, your_params):
                    g = rng.standard_normal(p_ref.data.shape)
                    p_ref.grad += g
                    p_yours.grad += g
                ref.step()
                grader.call(part, label, yours.step)
                for p_ref, p_yours in zip(ref_params, your_params):
                    if not grader.compare(part, f"{label}, step {step + 1}", p_yours.data, p_ref.data, tags):
                        break
    except Stop:
        pass


@dataclass
class Assignment:
    """One assignment: what the learner writes, in which lesson, and how it is graded."""

    name: str
    lesson: str                      # "lesson 1"
    lesson_file: str                 # "01-convolution-and-im2col.md"
    what: str
    grade: Callable[[Grader], None]
    layers: tuple = field(default_factory=tuple)   # the classes `train --layers` takes from the file
