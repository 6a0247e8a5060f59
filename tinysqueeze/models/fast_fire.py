"""The Fire module with the batch inside, whose expand branches write into one output: what
SqueezeNet's features run (fast=True), beside the Fire module of lesson 6 (fire.py).

Fire(batch_inside=True) runs both expand convolutions, each into an array of its own, and then
concatenates the two: a copy of the module's whole output, 1-5% of a training step (lesson 14). With
the channels first, (C, N, H, W), each branch's part of the concatenation is one contiguous block,
so `FireCNHW` lets each expand convolution write its output straight into its block
(`ConcatCNHW.blocks`, nn/fast/layers.py), and nothing is left to copy. The same layers, weights and
arithmetic, the same state_dict keys, the same bits (tests/models/test_fast_fire.py); backward is
Fire's own.
"""
from __future__ import annotations

import numpy as np

from .fire import Fire


class FireCNHW(Fire):
    """Fire(batch_inside=True), the concatenation's copy left out. x: (C_in, N, H, W) -> (e1 + e3, N, H, W).

    Each expand convolution's output, and so each block of the module's output, is also its ReLU's
    output, which its backward reads (Conv2dReLUCNHW): so a bypass is added into a new array, never
    into the output in place, as Fire does."""

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int,
                 bypass: str | None = None, rng=None):
        super().__init__(in_channels, squeeze, expand1x1, expand3x3, bypass, rng, batch_inside=True)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (C_in, N, H, W) -> (e1 + e3, N, H, W)"""
        s = self.squeeze(x)                                                # (s1x1, N, H, W), ReLU fused in
        out, (e1, e3) = self.concat.blocks([self.expand1x1.output_shape(s.shape),
                                            self.expand3x3.output_shape(s.shape)], s.dtype)
        self.expand1x1(s, out=e1)                                          # (e1x1, N, H, W), a block of out
        self.expand3x3(s, out=e3)                                          # (e3x3, N, H, W), the other block
        if self.bypass_kind == "simple":
            return out + x
        if self.bypass_kind == "complex":
            return out + self.bypass(x)
        return out
