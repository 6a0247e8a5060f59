"""The Fire module (SqueezeNet paper, section 3.2), with the bypass connections of section 6.

Follows torchvision's `Fire`: children `squeeze`, `expand1x1`, `expand3x3` (and their ReLUs), so
state_dict keys match torchvision's. The bypass child (`bypass`, a 1x1 convolution) exists only in
the paper's "complex bypass" variant, which torchvision does not have.

A Fire module takes PyTorch's (N, C, H, W), as lesson 6 builds it. With `batch_inside=True` it is the
same module made of the batch-inside convolutions (each with its ReLU fused in) and concatenation
(nn/fast/layers.py), taking (C, N, H, W), as inside SqueezeNet's CNHWSequential features (lesson 14);
what those features run is its subclass `FireCNHW` (fast_fire.py), which skips the concatenation's
copy.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .. import nn

BYPASS_KINDS = (None, "simple", "complex")


def fire_layers(batch_inside: bool):
    """-> (conv, relu, concat): what a Fire module is built of. The plain ones: Conv2d, ReLU (in place,
    as torchvision's) and Concat. With the batch inside (nn/fast/layers.py): each convolution applies
    its ReLU itself (Conv2dReLUCNHW: one pass over its output instead of two), so the ReLU's place
    holds an Identity, and the branches are joined by ConcatCNHW."""
    if batch_inside:
        return nn.Conv2dReLUCNHW, nn.Identity, nn.ConcatCNHW
    return nn.Conv2d, partial(nn.ReLU, inplace=True), nn.Concat


class Fire(nn.Module):
    """squeeze (1x1) -> ReLU -> [expand1x1 (1x1) -> ReLU, expand3x3 (3x3, pad 1) -> ReLU] -> concat.

    x: (N, in_channels, H, W) -> (N, expand1x1 + expand3x3, H, W); with batch_inside=True the same with
    the first two axes swapped, (in_channels, N, H, W) -> (expand1x1 + expand3x3, N, H, W).

    bypass=None: no bypass. "simple": the input is added to the output (needs in_channels equal to
    the output channels). "complex": a 1x1 convolution of the input (child `bypass`) is added.

    Backward: the squeeze output feeds both expand branches, so its gradient is the SUM of the
    gradients that come back through expand1x1 and expand3x3. With a bypass, the input's gradient
    is that of the main path plus that of the bypass path.
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int,
                 bypass: str | None = None, rng=None, batch_inside: bool = False):
        super().__init__()
        self.in_channels = int(in_channels)
        self.squeeze_channels, self.e1, self.e3 = int(squeeze), int(expand1x1), int(expand3x3)
        self.out_channels = self.e1 + self.e3
        if bypass not in BYPASS_KINDS:
            raise ValueError(f"Fire: bypass must be one of None, 'simple', 'complex', got {bypass!r}")
        if min(self.in_channels, self.squeeze_channels, self.e1, self.e3) <= 0:
            raise ValueError(f"Fire({in_channels}, {squeeze}, {expand1x1}, {expand3x3}): every channel count "
                             "must be a positive integer")
        if bypass == "simple" and self.in_channels != self.out_channels:
            raise ValueError(f"Fire({in_channels}, {squeeze}, {expand1x1}, {expand3x3}): a simple bypass adds "
                             f"the input to the output, so it needs in_channels ({in_channels}) equal to "
                             f"expand1x1 + expand3x3 ({self.out_channels}); use bypass='complex' instead")
        self.bypass_kind = bypass
        conv, relu, concat = fire_layers(batch_inside)
        self.squeeze = conv(self.in_channels, self.squeeze_channels, 1, rng=rng)
        self.squeeze_activation = relu()
        self.expand1x1 = conv(self.squeeze_channels, self.e1, 1, rng=rng)
        self.expand1x1_activation = relu()
        self.expand3x3 = conv(self.squeeze_channels, self.e3, 3, padding=1, rng=rng)
        self.expand3x3_activation = relu()
        self.concat = concat()
        if bypass == "complex":
            self.bypass = (nn.Conv2dCNHW if batch_inside else nn.Conv2d)(self.in_channels, self.out_channels, 1, rng=rng)

    def extra_repr(self) -> str:
        extra = f", bypass={self.bypass_kind!r}" if self.bypass_kind else ""
        return f"{self.in_channels}, squeeze={self.squeeze_channels}, expand1x1={self.e1}, expand3x3={self.e3}{extra}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C_in, H, W) -> (N, e1 + e3, H, W)"""
        s = self.squeeze_activation(self.squeeze(x))                       # (N, s1x1, H, W)
        e1 = self.expand1x1_activation(self.expand1x1(s))                  # (N, e1x1, H, W)
        e3 = self.expand3x3_activation(self.expand3x3(s))                  # (N, e3x3, H, W)
        out = self.concat([e1, e3])                                        # (N, e1x1 + e3x3, H, W)
        if self.bypass_kind == "simple":
            out += x
        elif self.bypass_kind == "complex":
            out += self.bypass(x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, e1 + e3, H, W) -> dx: (N, C_in, H, W)"""
        de1, de3 = self.concat.backward(dout)
        ds = self.expand1x1.backward(self.expand1x1_activation.backward(de1))
        ds = ds + self.expand3x3.backward(self.expand3x3_activation.backward(de3))  # two uses: sum
        dx = self.squeeze.backward(self.squeeze_activation.backward(ds))
        if self.bypass_kind == "simple":
            dx = dx + dout
        elif self.bypass_kind == "complex":
            dx = dx + self.bypass.backward(dout)
        return dx
