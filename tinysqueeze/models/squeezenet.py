"""SqueezeNet v1.0 and v1.1, the paper's bypass variants, and its metaparameters.

Follows torchvision's `squeezenet.py` layer for layer (same child indices, so the same state_dict
keys: `features.0.weight`, `features.3.squeeze.weight`, ..., `classifier.1.weight`) and its
initialisation: Kaiming-uniform convolutions (U(+-sqrt(6 / fan_in))), conv10 ~ N(0, 0.01), zero
biases. Deliberate differences from the paper's Caffe files, as torchvision does too:
- conv10 has no padding (the Caffe v1.0 prototxt's `pad: 1` is an accident of its generator);
- max-pools round up (ceil_mode=True), Caffe's rule, which gives 111 -> 55 -> 27 -> 13 at 227 px.

Metaparameters (paper section 5): for Fire module i (i = 0 is fire2)
    e_i = base_e + incr_e * floor(i / freq),  e3x3_i = round(pct_3x3 * e_i),
    e1x1_i = e_i - e3x3_i,                    s1x1_i = round(sr * e_i)
with v1.0's macroarchitecture; (128, 128, 0.5, 2, 0.125) gives v1.0 exactly.
Bypass (section 6): "simple" adds identities around fire3, 5, 7, 9 (where input and output channels
match); "complex" also adds 1x1-convolution bypasses around fire2, 4, 6, 8.
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from .fire import BYPASS_KINDS, Fire

# (squeeze, expand1x1, expand3x3) of fire2 ... fire9: Table 1 of the paper, shared by v1.0 and v1.1
FIRE_SIZES_V1 = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
                 (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]

# Where the max-pools stand, as "after fire k" (fire index 0 = fire2), and conv1 of each version.
MACRO = {
    "1_0": dict(conv1=(96, 7), pools_after=(2, 6)),   # maxpool1, maxpool4, maxpool8
    "1_1": dict(conv1=(64, 3), pools_after=(1, 3)),   # maxpool1, maxpool3, maxpool5
}


def check_images(network: str, x, min_size: int) -> None:
    """Refuses anything but a batch of RGB images (N, 3, H, W) of at least min_size pixels a side."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{network}: expected images of shape (N, 3, H, W), got {getattr(x, 'shape', type(x))}")
    if min(x.shape[2:]) < min_size:
        raise ValueError(f"{network}: images must be at least {min_size}x{min_size}, got {x.shape[2]}x{x.shape[3]}")


def round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def fire_sizes_from_metaparameters(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125, num_fire=8):
    """The paper's metaparameters -> [(s1x1, e1x1, e3x3)] for fire2 ... fire9.

    Raises ValueError for values outside their range or sizes that round to zero channels.
    """
    if not (isinstance(freq, int) and freq >= 1):
        raise ValueError(f"freq must be a positive integer, got {freq!r}")
    if base_e <= 0 or incr_e < 0:
        raise ValueError(f"base_e must be positive and incr_e non-negative, got base_e={base_e}, incr_e={incr_e}")
    if not 0.0 <= pct_3x3 <= 1.0:
        raise ValueError(f"pct_3x3 must be in [0, 1], got {pct_3x3}")
    if sr <= 0:
        raise ValueError(f"sr (squeeze ratio) must be positive, got {sr}")
    sizes = []
    for i in range(num_fire):
        e = base_e + incr_e * (i // freq)
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
    if bypass not in BYPASS_KINDS:
        raise ValueError(f"bypass must be one of none, simple, complex; got {bypass!r}")
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


class SqueezeNet(nn.Module):
    """features -> classifier -> flatten.

    x: (N, 3, H, W) with H, W >= 32 -> logits (N, num_classes).
    classifier = [Dropout(0.5), conv10 (1x1, num_classes), ReLU, global average pool].
    """

    def __init__(self, version: str = "1_0", num_classes: int = 1000, fire_sizes=None,
                 bypass: str | None = None, dropout: float = 0.5, seed: int = 0):
        super().__init__()
        if version not in MACRO:
            raise ValueError(f"SqueezeNet version must be one of {', '.join(MACRO)}, got {version!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.version, self.num_classes = version, int(num_classes)
        fire_sizes = list(fire_sizes or FIRE_SIZES_V1)
        rng = np.random.default_rng(seed)
        conv1_channels, conv1_kernel = MACRO[version]["conv1"]
        pools_after = MACRO[version]["pools_after"]

        channels_in, channels_out, c = [], [], conv1_channels
        for s, e1, e3 in fire_sizes:
            channels_in.append(c)
            c = e1 + e3
            channels_out.append(c)
        plan = bypass_plan(bypass, channels_in, channels_out)
        self.bypass = bypass

        layers = [nn.Conv2d(3, conv1_channels, conv1_kernel, stride=2, rng=rng), nn.ReLU(),
                  nn.MaxPool2d(3, 2, ceil_mode=True)]
        for i, ((s, e1, e3), cin, kind) in enumerate(zip(fire_sizes, channels_in, plan)):
            layers.append(Fire(cin, s, e1, e3, bypass=kind, rng=rng))
            if i in pools_after:
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        conv10 = nn.Conv2d(channels_out[-1], self.num_classes, 1, rng=rng)
        self.classifier = nn.Sequential(nn.Dropout(dropout, seed=seed), conv10, nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1))
        self.flatten = nn.Flatten()
        self.reset_parameters(rng)

    def reset_parameters(self, rng: np.random.Generator) -> None:
        """torchvision's initialisation: Kaiming-uniform convs, conv10 ~ N(0, 0.01), zero biases."""
        final = self.classifier[1]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                shape = module.weight.data.shape
                if module is final:
                    module.weight.data = rng.normal(0.0, 0.01, size=shape).astype(np.float32)
                else:
                    fan_in = int(np.prod(shape[1:]))
                    module.weight.data = nn.init.uniform(rng, nn.init.kaiming_uniform_bound(fan_in), shape)
                module.bias.data = np.zeros_like(module.bias.data)
        self.zero_grad()

    def start_classes_alive(self, x: np.ndarray, margin: float = 3.0) -> np.ndarray:
        """Data-dependent start for conv10's bias: every class begins on the live side of its ReLU.

        x: (N, 3, H, W), a batch of training images. Sets conv10's bias so that, on x, each class's
        mean conv10 output sits `margin` standard deviations (of all conv10 outputs) above zero, and
        returns the bias, (num_classes,).

        Why: the features feeding conv10 come out of ReLUs, so they share a large positive mean, and
        one SGD step moves every output of a class up or down together by about lr * g * |mean|^2
        (|mean|^2 is about 500-600 for v1.1 at 64 px). torchvision's start (conv10 ~ N(0, 0.01), zero
        bias) leaves the class scores a fraction of that step from zero: a few unlucky steps push a
        class below zero on every image, its ReLU passes no gradient, and it is dead for good. A
        common offset costs nothing -- the softmax ignores adding one number to every logit -- so the
        classes start far from that edge instead (lesson 11 measures it).
        """
        conv10 = self.classifier[1]
        was_training = self.training
        self.eval()
        conv10.bias.data[:] = 0
        scores = conv10(self.features(x))                         # (N, num_classes, h, w), before the ReLU
        self.train(was_training)
        class_means = scores.mean(axis=(0, 2, 3), dtype=np.float64)
        conv10.bias.data = (margin * scores.std(dtype=np.float64) - class_means).astype(conv10.bias.data.dtype)
        return conv10.bias.data.copy()

    def extra_repr(self) -> str:
        return f"version={self.version}, num_classes={self.num_classes}, bypass={self.bypass}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, 3, H, W) -> (N, num_classes)"""
        check_images("SqueezeNet", x, min_size=32)
        return self.flatten(self.classifier(self.features(x)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, num_classes) -> dx: (N, 3, H, W)"""
        return self.features.backward(self.classifier.backward(self.flatten.backward(dout)))


def squeezenet1_0(num_classes: int = 1000, bypass: str | None = None, seed: int = 0, **kw) -> SqueezeNet:
    """SqueezeNet v1.0: conv1 96 filters 7x7/2; 1,248,424 parameters at 1000 classes."""
    return SqueezeNet("1_0", num_classes, bypass=bypass, seed=seed, **kw)


def squeezenet1_1(num_classes: int = 1000, bypass: str | None = None, seed: int = 0, **kw) -> SqueezeNet:
    """SqueezeNet v1.1: conv1 64 filters 3x3/2, earlier pools; 1,235,496 parameters, 2.3x fewer
    multiply-accumulates than v1.0 at 224 px (349M against 819M; torchvision quotes "2.4x")."""
    return SqueezeNet("1_1", num_classes, bypass=bypass, seed=seed, **kw)


def squeezenet_from_metaparameters(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125,
                                   bypass: str | None = None, num_classes: int = 1000, seed: int = 0,
                                   version: str = "1_0", **kw) -> SqueezeNet:
    """A point of the paper's design space (section 5), on v1.0's macroarchitecture by default."""
    sizes = fire_sizes_from_metaparameters(base_e, incr_e, pct_3x3, freq, sr)
    return SqueezeNet(version, num_classes, fire_sizes=sizes, bypass=bypass, seed=seed, **kw)
