"""Random initialisation, seeded.

Every layer that draws random numbers takes an `rng` (a `numpy.random.Generator`). Without one it
uses this module's default generator, which `manual_seed(seed)` resets (PyTorch's
`torch.manual_seed`), so a script that seeds once is reproducible.
"""
from __future__ import annotations

import math

import numpy as np

_default_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Resets the default generator used by layers created without an explicit `rng`."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def get_rng(rng: np.random.Generator | None = None) -> np.random.Generator:
    return _default_rng if rng is None else rng


def uniform(rng: np.random.Generator, bound: float, shape: tuple) -> np.ndarray:
    """U(-bound, bound) as float32."""
    return rng.uniform(-bound, bound, size=shape).astype(np.float32)


def default_bound(fan_in: int) -> float:
    """PyTorch's default for Conv2d and Linear (kaiming_uniform with a=sqrt(5)): 1/sqrt(fan_in)."""
    return 1.0 / math.sqrt(fan_in)


def kaiming_uniform_bound(fan_in: int) -> float:
    """He initialisation for ReLU networks (torch.nn.init.kaiming_uniform_, a=0): sqrt(6/fan_in)."""
    return math.sqrt(6.0 / fan_in)
