"""Gradient checking: compare a module's hand-written backward with centred finite differences.

For a module f and a fixed random upstream gradient G (same shape as the output), the scalar
L(x, params) = sum(f(x) * G) has dL/dx = backward(G). Each entry v of the input and of every
parameter is nudged both ways and

    numeric dL/dv = (L(v + eps) - L(v - eps)) / (2 eps)        (error O(eps^2))

is compared with the analytic gradient, all in float64. The reported relative error of an array is

    max|analytic - numeric| / max(1e-8, max|analytic| + max|numeric|)

(scaled by the array's largest entry, so that entries that are nearly zero do not turn rounding
noise into a large ratio). Choose inputs where f is differentiable: `distinct_input` makes arrays of
distinct values away from 0, so no max-pool window has a tie and nothing sits at ReLU's kink.

Usable on your own layer: `gradcheck(MyLayer(), distinct_input((2, 3, 5, 5)))`.

The cases `python -m tinysqueeze gradcheck` runs: `layer_cases` (every layer of nn) and `model_cases`
(the Fire module and whole small SqueezeNets); `run_cases` prints their table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import nn
from ..models import Fire, squeezenet_from_metaparameters

TOLERANCE = 1e-6


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """max|a - b| / max(1e-8, max|a| + max|b|)"""
    a, b = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(1e-8, np.abs(a).max() + np.abs(b).max()))


def distinct_input(shape: tuple, seed: int = 0, low: float = 0.05, high: float = 1.0) -> np.ndarray:
    """float64 array of the given shape whose entries are all different, with |x| in [low, high].

    Magnitudes are evenly spaced and shuffled, signs random: no ties (max-pool is differentiable)
    and no zeros (ReLU is differentiable).
    """
    rng = np.random.default_rng(seed)
    size = int(np.prod(shape))
    magnitudes = rng.permutation(np.linspace(low, high, size))
    signs = rng.choice([-1.0, 1.0], size=size)
    return (magnitudes * signs).reshape(shape)


def numeric_gradient(loss: Callable[[], float], array: np.ndarray, indices, eps: float) -> np.ndarray:
    """Centred differences of loss() with respect to array[index] for each index (array nudged in place)."""
    grads = np.zeros(len(indices))
    flat = array.reshape(-1)
    for k, index in enumerate(indices):
        original = flat[index]
        flat[index] = original + eps
        plus = loss()
        flat[index] = original - eps
        minus = loss()
        flat[index] = original
        grads[k] = (plus - minus) / (2 * eps)
    return grads


def _chosen_indices(size: int, max_entries: int | None, rng) -> np.ndarray:
    if max_entries is None or size <= max_entries:
        return np.arange(size)
    return np.sort(rng.choice(size, max_entries, replace=False))


def gradcheck(module: nn.Module, inputs, *args, eps: float = 1e-6, seed: int = 0,
              max_entries: int | None = None, dtype=np.float64) -> dict[str, float]:
    """Relative error of backward against finite differences, for the input(s) and every parameter.

    module: any Module; it is cast to `dtype` (and left so). Always float64 for real checks: in
    float32 the rounding noise of the differences swamps the errors you are looking for (lesson 5
    measures how much; `dtype=np.float32` is there to see it).
    inputs: an array, or a list of arrays for modules whose forward takes a list (Concat).
    args: further forward arguments that are not differentiated (the labels of a loss).
    max_entries: check at most this many randomly chosen entries of each array (None: all).
    returns: {"x": err, "weight": err, ...}; a list input gives "x[0]", "x[1]", ...
    """
    rng = np.random.default_rng(seed)
    module.to(dtype)
    is_list = isinstance(inputs, (list, tuple))
    xs = [np.array(x, dtype=dtype) for x in (inputs if is_list else [inputs])]
    forward_input = xs if is_list else xs[0]
    # Every evaluation must be of the same function: each forward starts from the same dropout
    # generator states, so every Dropout draws the same mask each time.
    generators = module.generator_states()

    def forward():
        module.set_generator_states(generators)
        return module(forward_input, *args)

    module.zero_grad()
    out = forward()
    scalar = np.ndim(out) == 0
    upstream = 1.0 if scalar else rng.standard_normal(np.shape(out))
    dx = module.backward(upstream)
    dxs = list(dx) if is_list else [dx]

    def loss() -> float:
        return float(np.sum(forward() * upstream))

    targets = [(f"x[{k}]" if is_list else "x", x, g) for k, (x, g) in enumerate(zip(xs, dxs))]
    targets += [(name, p.data, p.grad.copy()) for name, p in module.named_parameters()]
    errors = {}
    for name, array, analytic in targets:
        idx = _chosen_indices(array.size, max_entries, rng)
        numeric = numeric_gradient(loss, array, idx, eps)
        errors[name] = rel_error(np.asarray(analytic).reshape(-1)[idx], numeric)
    return errors


# ------------------------------------------------------------------------------ the catalogue
@dataclass
class Case:
    """One gradient-check configuration: a layer, how to build it and the input it is checked on."""

    layer: str
    config: str
    build: Callable[[], nn.Module]
    input_shape: tuple | list
    args: tuple = ()
    train: bool = True
    max_entries: int | None = None
    seed: int = 0
    tolerance: float = TOLERANCE

    def inputs(self):
        if isinstance(self.input_shape, list):
            return [distinct_input(s, seed=self.seed + k) for k, s in enumerate(self.input_shape)]
        return distinct_input(self.input_shape, seed=self.seed)

    def run(self) -> dict[str, float]:
        module = self.build()
        module.train(self.train)
        return gradcheck(module, self.inputs(), *self.args, seed=self.seed, max_entries=self.max_entries)


def layer_cases() -> list[Case]:
    """Every layer of tinysqueeze.nn over a grid of configurations (kernel 1/3/7, stride 1/2,
    padding 0/1/3, odd and non-square sizes, batch 1 and 2, ceil_mode on and off, ...)."""
    cases = []
    for k in (1, 3, 7):
        for stride in (1, 2):
            for pad in (0, 1, 3):
                batch = 1 if (k + stride + pad) % 2 else 2
                cases.append(Case("Conv2d", f"k={k} s={stride} p={pad} N={batch} 9x11",
                                  lambda k=k, s=stride, p=pad: nn.Conv2d(2, 3, k, s, p, rng=np.random.default_rng(k)),
                                  (batch, 2, 9, 11)))
    cases.append(Case("Conv2d", "k=(3,1) s=2 p=1 no bias 7x6",
                      lambda: nn.Conv2d(3, 2, (3, 1), 2, 1, bias=False, rng=np.random.default_rng(1)),
                      (2, 3, 7, 6)))
    for k, stride, pad, ceil in [(3, 2, 0, True), (3, 2, 0, False), (3, 2, 1, True), (2, 2, 0, False),
                                 (3, 1, 1, False), (2, 1, 0, True), (3, 3, 1, True)]:
        cases.append(Case("MaxPool2d", f"k={k} s={stride} p={pad} ceil={ceil} 9x8",
                          lambda k=k, s=stride, p=pad, c=ceil: nn.MaxPool2d(k, s, p, ceil_mode=c),
                          (2, 2, 9, 8)))
    cases.append(Case("MaxPool2d", "k=3 s=2 ceil=True N=1 13x13 (SqueezeNet's)",
                      lambda: nn.MaxPool2d(3, 2, ceil_mode=True), (1, 3, 13, 13)))
    for k, stride in [(2, 2), (3, 1), (3, 2)]:
        cases.append(Case("AvgPool2d", f"k={k} s={stride} 7x8", lambda k=k, s=stride: nn.AvgPool2d(k, s), (2, 2, 7, 8)))
    cases.append(Case("AdaptiveAvgPool2d", "output 1 (global) 5x7", lambda: nn.AdaptiveAvgPool2d(1), (2, 3, 5, 7)))
    cases.append(Case("AdaptiveAvgPool2d", "output 3x2 from 7x5", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5)))
    cases.append(Case("ReLU", "(2, 3, 4, 5)", nn.ReLU, (2, 3, 4, 5)))
    cases.append(Case("Dropout", "p=0.5 train (fixed mask)", lambda: nn.Dropout(0.5, seed=3), (2, 3, 4, 5)))
    cases.append(Case("Dropout", "p=0.5 eval", lambda: nn.Dropout(0.5, seed=3), (2, 3, 4, 5), train=False))
    cases.append(Case("Flatten", "(2, 3, 4, 5)", nn.Flatten, (2, 3, 4, 5)))
    cases.append(Case("Linear", "7 -> 4 N=3", lambda: nn.Linear(7, 4, rng=np.random.default_rng(2)), (3, 7)))
    cases.append(Case("Linear", "5 -> 2 N=1 no bias", lambda: nn.Linear(5, 2, bias=False, rng=np.random.default_rng(2)), (1, 5)))
    cases.append(Case("Concat", "2 branches", nn.Concat, [(2, 3, 4, 5), (2, 2, 4, 5)]))
    cases.append(Case("Concat", "3 branches N=1", nn.Concat, [(1, 1, 3, 3), (1, 4, 3, 3), (1, 2, 3, 3)]))
    labels3 = np.array([2, 0, 4])
    cases.append(Case("SoftmaxCrossEntropy", "N=3 K=5", nn.SoftmaxCrossEntropy, (3, 5), args=(labels3,)))
    cases.append(Case("SoftmaxCrossEntropy", "N=1 K=10", nn.SoftmaxCrossEntropy, (1, 10), args=(np.array([7]),)))
    cases.append(Case("Sequential", "conv-relu-pool-flatten-linear",
                      lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=np.random.default_rng(5)), nn.ReLU(),
                                            nn.MaxPool2d(2), nn.Flatten(),
                                            nn.Linear(12, 4, rng=np.random.default_rng(6))),
                      (2, 2, 4, 4)))
    # The fast layers (nn/fast/layers.py): a convolution (alone and with its ReLU fused in) and a
    # concatenation on (C, N, H, W), a CNHWSequential, which takes (N, C, H, W) and transposes at its
    # edges, and conv10's Conv2dSmallMaps.
    cases.append(Case("Conv2dCNHW", "k=3 s=2 p=1 N=2 9x8",
                      lambda: nn.Conv2dCNHW(3, 4, 3, 2, 1, rng=np.random.default_rng(7)), (3, 2, 9, 8)))
    cases.append(Case("Conv2dCNHW", "1x1 N=3 5x4", lambda: nn.Conv2dCNHW(4, 2, 1, rng=np.random.default_rng(8)),
                      (4, 3, 5, 4)))
    cases.append(Case("Conv2dReLUCNHW", "k=3 p=1 N=2 6x5 (ReLU fused)",
                      lambda: nn.Conv2dReLUCNHW(3, 4, 3, padding=1, rng=np.random.default_rng(13)), (3, 2, 6, 5)))
    cases.append(Case("Conv2dReLUCNHW", "1x1 N=3 5x4 (ReLU fused)",
                      lambda: nn.Conv2dReLUCNHW(4, 3, 1, rng=np.random.default_rng(14)), (4, 3, 5, 4)))
    cases.append(Case("ConcatCNHW", "2 branches", nn.ConcatCNHW, [(3, 2, 4, 5), (2, 2, 4, 5)]))
    cases.append(Case("CNHWSequential", "conv-relu-pool-conv 1x1",
                      lambda: nn.CNHWSequential(nn.Conv2dCNHW(2, 3, 3, padding=1, rng=np.random.default_rng(9)), nn.ReLU(),
                                                nn.MaxPool2d(2), nn.Conv2dCNHW(3, 2, 1, rng=np.random.default_rng(10))),
                      (2, 2, 6, 6)))
    cases.append(Case("Conv2dSmallMaps", "3x3 p=1 N=3 4x5 (batch-wide dW)",
                      lambda: nn.Conv2dSmallMaps(3, 4, 3, padding=1, rng=np.random.default_rng(11)), (3, 3, 4, 5)))
    cases.append(Case("Conv2dSmallMaps", "1x1 256 -> 256 N=2 3x3 (every product batch-wide)",
                      lambda: nn.Conv2dSmallMaps(256, 256, 1, rng=np.random.default_rng(12)), (2, 256, 3, 3),
                      max_entries=24))
    return cases


# ---------------------------------------------------------------------------- Fire and whole networks
NETWORK_TOLERANCE = 1e-5


def tiny_squeezenet(version="1_1", bypass=None, num_classes=5, seed=0):
    """A point of the design space small enough to gradient-check: e_i = 4, 4, 8, 8, ..., sr = 0.5."""
    return squeezenet_from_metaparameters(base_e=4, incr_e=4, pct_3x3=0.5, freq=2, sr=0.5, bypass=bypass,
                                          num_classes=num_classes, seed=seed, version=version)


def with_nonzero_biases(model, seed=0):
    """Sets every bias to a random value with |b| in [0.05, 0.2].

    torchvision's initialisation zeroes the biases. Then a position where every input channel is
    zero (all ReLUs below it off) has a pre-activation of exactly 0: ReLU's kink, where no
    derivative exists and finite differences disagree with any backward. Non-zero biases move the
    check away from it.
    """
    rng = np.random.default_rng(seed)
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.data = (rng.uniform(0.05, 0.2, p.data.shape) * rng.choice([-1, 1], p.data.shape)).astype(p.data.dtype)
    return model


def model_cases() -> list[Case]:
    rng = np.random.default_rng
    cases = [
        Case("Fire", "4 -> s3, e1x1 2, e3x3 3, 5x6", lambda: Fire(4, 3, 2, 3, rng=rng(0)), (2, 4, 5, 6)),
        Case("Fire", "simple bypass 5 -> 5, 4x4", lambda: Fire(5, 2, 3, 2, bypass="simple", rng=rng(1)), (2, 5, 4, 4)),
        Case("Fire", "complex bypass 3 -> 6, N=1 5x5", lambda: Fire(3, 2, 4, 2, bypass="complex", rng=rng(2)), (1, 3, 5, 5)),
    ]
    # Whole networks: 8 random entries of the input and of every parameter array, and a looser bound
    # (NETWORK_TOLERANCE) since rounding noise of ~60 stacked layers adds up.
    for version, bypass, batch in [("1_1", None, 2), ("1_0", "simple", 1), ("1_1", "complex", 2)]:
        cases.append(Case("SqueezeNet", f"v{version} tiny, bypass={bypass}, N={batch} 35x35, dropout on",
                          lambda v=version, b=bypass: with_nonzero_biases(tiny_squeezenet(v, b)),
                          (batch, 3, 35, 35), max_entries=8, tolerance=NETWORK_TOLERANCE))
    return cases


def all_cases(layers_only: bool = False, only: str | None = None) -> list[Case]:
    """The cases of the `gradcheck` command; `only` keeps those whose layer name contains it."""
    cases = layer_cases() + ([] if layers_only else model_cases())
    if only:
        cases = [c for c in cases if only.lower() in c.layer.lower()]
        if not cases:
            raise ValueError(f"no gradient-check case matches --only {only!r}")
    return cases


def run_cases(cases: list[Case], verbose: bool = False) -> int:
    """Runs the cases, printing one line each (and every array's error when asked or failing);
    -> the number that failed."""
    print(f"{'layer':<20} {'configuration':<50} {'dx':>8} {'params':>7} {'worst param (name)':<42} result")
    failures = 0
    for case in cases:
        errors = case.run()
        inputs = {k: v for k, v in errors.items() if k.startswith("x")}
        params = {k: v for k, v in errors.items() if not k.startswith("x")}
        ok = max(errors.values()) < case.tolerance
        failures += not ok
        worst = max(params, key=params.get) if params else None
        worst_text = f"{params[worst]:.1e} ({worst})" if worst else "-"
        print(f"{case.layer:<20} {case.config:<50} {max(inputs.values()):>8.1e} {len(params):>7} "
              f"{worst_text:<42} {'pass' if ok else 'FAIL'}")
        if verbose or not ok:
            for name, err in errors.items():
                print(f"{'':<22}d{name}: {err:.2e}")
    print(f"\n{len(cases) - failures} passed, {failures} failed "
          f"(relative error, float64, centred differences; tolerance {TOLERANCE:.0e} per layer, "
          f"{NETWORK_TOLERANCE:.0e} for whole networks)")
    return failures
