"""The paper's design space (sections 5 and 6): a SqueezeNet from its metaparameters.

For Fire module i (i = 0 is fire2)
    e_i = base_e + incr_e * floor(i / freq),  e3x3_i = round(pct_3x3 * e_i),
    e1x1_i = e_i - e3x3_i,                    s1x1_i = round(sr * e_i)
on v1.0's macroarchitecture (or v1.1's). The paper's values (128, 128, 0.5, 2, 0.125) give v1.0
exactly, and a test holds this generator to the literal layer lists of squeezenet.py. The sweeps
(`python -m tinysqueeze sweep`) train points of this space.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from .squeezenet import SqueezeNet, bypasses, feature_layers

# Where each version puts conv1 and its max-pools ("after fire k", fire index 0 = fire2).
MACRO = {
    "1_0": dict(conv1=(96, 7), pools_after=(2, 6)),   # maxpool1, maxpool4, maxpool8
    "1_1": dict(conv1=(64, 3), pools_after=(1, 3)),   # maxpool1, maxpool3, maxpool5
}


def round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


MAX_CHANNELS = 16384    # per layer: 16x the paper's widest (1024); beyond it, memory, not a network


def fire_sizes_from_metaparameters(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125, num_fire=8):
    """The paper's metaparameters -> [(s1x1, e1x1, e3x3)] for fire2 ... fire9.

    Raises ValueError for values outside their range or sizes that round to zero channels.
    """
    if not (isinstance(freq, int) and freq >= 1):
        raise ValueError(f"freq must be a positive integer, got {freq!r}")
    for name, value in (("base_e", base_e), ("incr_e", incr_e), ("pct_3x3", pct_3x3), ("sr", sr)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
    if base_e <= 0 or incr_e < 0:
        raise ValueError(f"base_e must be positive and incr_e non-negative, got base_e={base_e}, incr_e={incr_e}")
    if not 0.0 <= pct_3x3 <= 1.0:
        raise ValueError(f"pct_3x3 must be in [0, 1], got {pct_3x3}")
    if sr <= 0:
        raise ValueError(f"sr (squeeze ratio) must be positive, got {sr}")
    sizes = []
    for i in range(num_fire):
        e = base_e + incr_e * (i // freq)
        if max(e, sr * e) > MAX_CHANNELS:
            raise ValueError(f"fire{i + 2} would have {max(e, sr * e):,.0f} channels (base_e = {base_e}, incr_e = "
                             f"{incr_e}, sr = {sr}); tinysqueeze builds at most {MAX_CHANNELS:,} per layer")
        e3 = round_half_up(pct_3x3 * e)
        e1 = e - e3
        s = round_half_up(sr * e)
        if min(s, e1, e3) <= 0:
            raise ValueError(
                f"fire{i + 2} would have squeeze={s}, expand1x1={e1}, expand3x3={e3} channels "
                f"(e_{i} = {e}, pct_3x3 = {pct_3x3}, sr = {sr}): every branch needs at least one channel")
        sizes.append((s, e1, e3))
    return sizes


def bypass_plan(bypass: str | None, channels_in: list[int], channels_out: list[int]) -> list[str | None]:
    """Which bypass each Fire module gets, as the paper places them."""
    bypasses(bypass)                        # refuses an unknown kind
    plan = []
    for i, (cin, cout) in enumerate(zip(channels_in, channels_out)):
        if bypass is None:
            plan.append(None)
        elif bypass == "simple":
            if i % 2 == 1 and cin != cout:
                raise ValueError(f"simple bypass around fire{i + 2} needs equal input and output channels, "
                                 f"got {cin} in and {cout} out; use bypass='complex'")
            plan.append("simple" if i % 2 == 1 else None)
        else:
            plan.append("simple" if cin == cout else "complex")
    return plan


def design_space_features(rng: np.random.Generator, fire_sizes: list, version: str = "1_0",
                          bypass: str | None = None, image_grad: bool = True, fast: bool = True) -> list:
    """conv1 to fire9 for `fire_sizes` [(s1x1, e1x1, e3x3)] on the macroarchitecture of `version`
    (fast: the batch-inside layers, as squeezenet.py builds them)."""
    if version not in MACRO:
        raise ValueError(f"SqueezeNet version must be one of {', '.join(MACRO)}, got {version!r}")
    conv1_channels, conv1_kernel = MACRO[version]["conv1"]
    channels_in, channels_out, c = [], [], conv1_channels
    for s, e1, e3 in fire_sizes:
        channels_in.append(c)
        c = e1 + e3
        channels_out.append(c)
    plan = bypass_plan(bypass, channels_in, channels_out)
    conv, relu, fire = feature_layers(rng, fast)
    layers = [conv(3, conv1_channels, conv1_kernel, stride=2, input_grad=image_grad), relu(),
              nn.MaxPool2d(3, 2, ceil_mode=True)]
    for i, ((s, e1, e3), cin, kind) in enumerate(zip(fire_sizes, channels_in, plan)):
        layers.append(fire(cin, s, e1, e3, bypass=kind))
        if i in MACRO[version]["pools_after"]:
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    return layers


def squeezenet_from_metaparameters(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125,
                                   bypass: str | None = None, num_classes: int = 1000, seed: int = 0,
                                   version: str = "1_0", image_grad: bool = True, fast: bool = True,
                                   **kw) -> SqueezeNet:
    """A point of the paper's design space (section 5), on v1.0's macroarchitecture by default."""
    sizes = fire_sizes_from_metaparameters(base_e, incr_e, pct_3x3, freq, sr)
    rng = np.random.default_rng(seed)
    return SqueezeNet(design_space_features(rng, sizes, version, bypass, image_grad, fast), num_classes, rng, version,
                      bypass, seed=seed, fast=fast, **kw)
