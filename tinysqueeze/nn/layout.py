"""The batch inside: a Sequential whose layers work on activations laid out (C, N, H, W).

Every layer of tinysqueeze.nn takes PyTorch's (N, C, H, W). For a convolution that means one matrix
product per image, and SqueezeNet's products are thin: at 64 px a Fire module's squeeze is
(16 x 128) @ (128 x 225) per image. With the channels first and the batch inside, (C, N, H, W),
the columns of all images sit side by side and each layer is ONE product, (16 x 128) @ (128 x 14400),
which BLAS runs far closer to its peak (lesson 14 has the measurements). Pooling, ReLU and dropout
work element by element or plane by plane, so they do not care which axis is which; a convolution
and a concatenation do, and have a `layout` attribute that `set_layout` sets.

`CNHWSequential` keeps PyTorch's interface at its edges: it takes and returns (N, C, H, W),
transposing once on the way in and once on the way out (and back in backward), so
`model.features(x)` is what it is in torchvision and the state_dict keys are unchanged.
"""
from __future__ import annotations

import contextlib

import numpy as np

from .module import Module, Sequential

LAYOUTS = ("NCHW", "CNHW")


def layers_with_a_layout(module: Module) -> list[Module]:
    """The layers below `module` whose arithmetic depends on the layout (Conv2d, Concat)."""
    return [m for m in module.modules() if hasattr(m, "layout")]


def set_layout(module: Module, layout: str) -> None:
    """Sets `layout` on every layer below `module` that has one."""
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    for m in layers_with_a_layout(module):
        m.layout = layout


@contextlib.contextmanager
def layers_in_layout(module: Module, layout: str):
    """Within it, the layers below `module` work in `layout` (e.g. to run them one by one on
    (N, C, H, W) inputs, as models/summary.py does); their own layouts are put back after."""
    saved = [(m, m.layout) for m in layers_with_a_layout(module)]
    set_layout(module, layout)
    try:
        yield module
    finally:
        for m, previous in saved:
            m.layout = previous


def to_cnhw(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (C, N, H, W), contiguous (and back: the same transpose twice is the identity)."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3))


class CNHWSequential(Sequential):
    """A Sequential run with the batch inside. x: (N, C, H, W) -> (N, C', H', W'), like any layer;
    inside, every child sees (C, N, H, W)."""

    def __init__(self, *modules: Module):
        super().__init__(*modules)
        set_layout(self, "CNHW")

    def forward(self, x: np.ndarray) -> np.ndarray:
        return to_cnhw(super().forward(to_cnhw(x)))

    def backward(self, dout: np.ndarray):
        dx = super().backward(to_cnhw(dout))
        return None if dx is None else to_cnhw(dx)        # None: the first layer needed no input gradient
