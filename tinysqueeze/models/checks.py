"""Gradient-check cases for the Fire module and whole (small) networks, used by
`python -m tinysqueeze gradcheck` and tests/test_models.py."""
from __future__ import annotations

import numpy as np

from ..gradcheck import Case
from .fire import Fire
from .squeezenet import squeezenet_from_metaparameters


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
