"""SqueezeNet v1.0 and v1.1, written out layer by layer as in the paper's Table 1, with the bypass
connections of its section 6 (Figure 2).

Follows torchvision's `squeezenet.py` layer for layer (same child indices, so the same state_dict
keys: `features.0.weight`, `features.3.squeeze.weight`, ..., `classifier.1.weight`) and its
initialisation: Kaiming-uniform convolutions (U(+-sqrt(6 / fan_in))), conv10 ~ N(0, 0.01), zero
biases. Deliberate differences from the paper's Caffe files, as torchvision does too:
- conv10 has no padding (the Caffe v1.0 prototxt's `pad: 1` is an accident of its generator);
- max-pools round up (ceil_mode=True), Caffe's rule, which gives 111 -> 55 -> 27 -> 13 at 227 px.

Bypass (section 6): "simple" adds identities around fire3, 5, 7, 9 (where input and output channels
match); "complex" also adds 1x1-convolution bypasses around fire2, 4, 6, 8.
Any other point of the paper's design space (section 5): design_space.py, whose generator gives
these same two networks back (a test holds it to these lists).

The layers these lists build are the fast ones (fast=True, the default): every convolution of the
features is a Conv2dCNHW (with the ReLU after it fused in: Conv2dReLUCNHW, an Identity in the ReLU's
place) and every Fire module is a FireCNHW (fast_fire.py: its two expand branches write into one
output, which a ConcatCNHW hands out), so that inside the features' CNHWSequential the batch sits
inside, (C, N, H, W), and each convolution is ONE matrix product for the whole batch; conv10 is a
Conv2dSmallMaps (nn/fast/layers.py; lesson 14). fast=False
builds the same network from the plain (N, C, H, W) layers of lessons 1-6, Conv2d and Concat in a
Sequential: the same weights from the same seed, the same outputs and gradients to rounding (a test
holds the two equal in float64), slower.
"""
from __future__ import annotations

import numpy as np

from functools import partial

from .. import nn
from .fast_fire import FireCNHW
from .fire import BYPASS_KINDS, Fire, fire_layers


MIN_IMAGE_SIZE = 32      # the smallest side SqueezeNet takes: its stride-2 conv and three pools leave 1x1


def check_images(network: str, x, min_size: int) -> None:
    """Refuses anything but a batch of RGB images (N, 3, H, W) of at least min_size pixels a side."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{network}: expected images of shape (N, 3, H, W), got {getattr(x, 'shape', type(x))}")
    if min(x.shape[2:]) < min_size:
        raise ValueError(f"{network}: images must be at least {min_size}x{min_size}, got {x.shape[2]}x{x.shape[3]}")


def bypasses(bypass: str | None) -> tuple[str | None, str | None]:
    """-> (the bypass of fire2, 4, 6, 8, the bypass of fire3, 5, 7, 9) for a network's bypass kind.

    fire3, 5, 7, 9 have as many input as output channels: an identity fits ("simple"). fire2, 4, 6, 8
    widen the network: only a 1x1 convolution can carry their input across ("complex")."""
    if bypass not in BYPASS_KINDS:
        raise ValueError(f"bypass must be one of none, simple, complex; got {bypass!r}")
    return ("complex" if bypass == "complex" else None), (None if bypass is None else "simple")


def feature_layers(rng: np.random.Generator, fast: bool = True):
    """-> (conv, relu, fire): the convolution, its ReLU and the Fire module the features are built of,
    drawing their weights from `rng`. fast: with the batch inside (Conv2dReLUCNHW, which applies its
    ReLU itself, so an Identity stands in the ReLU's place; FireCNHW, Fire with the batch inside whose
    expand branches write into one output), else the plain (N, C, H, W) layers."""
    conv, relu, _ = fire_layers(batch_inside=fast)
    return partial(conv, rng=rng), relu, partial(FireCNHW if fast else Fire, rng=rng)


def squeezenet1_0_features(rng: np.random.Generator, bypass: str | None = None, image_grad: bool = True,
                           fast: bool = True) -> list:
    """conv1 to fire9 of SqueezeNet v1.0: Table 1, row by row. fire(in, squeeze, expand1x1, expand3x3).
    image_grad=False: conv1 computes no gradient for the images (training needs none; see Conv2d).
    fast: the batch-inside layers (see the top of this file), or the plain ones."""
    widen, same = bypasses(bypass)
    conv, relu, fire = feature_layers(rng, fast)
    return [
        conv(3, 96, 7, stride=2, input_grad=image_grad), relu(),                    # conv1: 96 7x7/2
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool1
        fire(96, 16, 64, 64, widen),                        # fire2
        fire(128, 16, 64, 64, same),                        # fire3
        fire(128, 32, 128, 128, widen),                     # fire4
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool4
        fire(256, 32, 128, 128, same),                      # fire5
        fire(256, 48, 192, 192, widen),                     # fire6
        fire(384, 48, 192, 192, same),                      # fire7
        fire(384, 64, 256, 256, widen),                     # fire8
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool8
        fire(512, 64, 256, 256, same),                      # fire9
    ]


def squeezenet1_1_features(rng: np.random.Generator, bypass: str | None = None, image_grad: bool = True,
                           fast: bool = True) -> list:
    """conv1 to fire9 of SqueezeNet v1.1 (torchvision's): v1.0's Fire modules, a smaller conv1 and
    the max-pools moved earlier, so the later layers see smaller activations."""
    widen, same = bypasses(bypass)
    conv, relu, fire = feature_layers(rng, fast)
    return [
        conv(3, 64, 3, stride=2, input_grad=image_grad), relu(),                    # conv1: 64 3x3/2
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool1
        fire(64, 16, 64, 64, widen),                        # fire2
        fire(128, 16, 64, 64, same),                        # fire3
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool3
        fire(128, 32, 128, 128, widen),                     # fire4
        fire(256, 32, 128, 128, same),                      # fire5
        nn.MaxPool2d(3, 2, ceil_mode=True),                 # maxpool5
        fire(256, 48, 192, 192, widen),                     # fire6
        fire(384, 48, 192, 192, same),                      # fire7
        fire(384, 64, 256, 256, widen),                     # fire8
        fire(512, 64, 256, 256, same),                      # fire9
    ]


class SqueezeNet(nn.Module):
    """features -> classifier -> flatten.

    x: (N, 3, H, W) with H, W >= MIN_IMAGE_SIZE (32) -> logits (N, num_classes).
    features: the layers from conv1 to fire9 (built with `rng`, as squeezenet1_0_features does);
    classifier = [Dropout(0.5), conv10 (1x1, num_classes), ReLU, global average pool].
    fast: the features were built with the batch inside (they then run in a CNHWSequential, and conv10
    is a Conv2dSmallMaps), or of the plain layers (a Sequential, and a Conv2d).
    """

    def __init__(self, features: list, num_classes: int = 1000, rng: np.random.Generator | None = None,
                 version: str = "1_0", bypass: str | None = None, dropout: float = 0.5, seed: int = 0,
                 fast: bool = True):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.version, self.num_classes, self.bypass_kind = version, int(num_classes), bypass
        rng = np.random.default_rng(seed) if rng is None else rng
        self.features = (nn.CNHWSequential if fast else nn.Sequential)(*features)
        conv10 = (nn.Conv2dSmallMaps if fast else nn.Conv2d)(features[-1].out_channels, self.num_classes, 1, rng=rng)
        self.classifier = nn.Sequential(nn.Dropout(dropout, seed=seed), conv10, nn.ReLU(inplace=True),
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
        with nn.no_grad():
            scores = conv10(self.features(x))                     # (N, num_classes, h, w), before the ReLU
        self.train(was_training)
        class_means = scores.mean(axis=(0, 2, 3), dtype=np.float64)
        conv10.bias.data = (margin * scores.std(dtype=np.float64) - class_means).astype(conv10.bias.data.dtype)
        return conv10.bias.data.copy()

    def extra_repr(self) -> str:
        return f"version={self.version}, num_classes={self.num_classes}, bypass={self.bypass_kind}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, 3, H, W) -> (N, num_classes)"""
        check_images("SqueezeNet", x, min_size=MIN_IMAGE_SIZE)
        return self.flatten(self.classifier(self.features(x)))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, num_classes) -> dx: (N, 3, H, W)"""
        return self.features.backward(self.classifier.backward(self.flatten.backward(dout)))


def squeezenet1_0(num_classes: int = 1000, bypass: str | None = None, seed: int = 0, image_grad: bool = True,
                  fast: bool = True, **kw) -> SqueezeNet:
    """SqueezeNet v1.0: conv1 96 filters 7x7/2; 1,248,424 parameters at 1000 classes.
    fast=False: the same network of the plain layers (see the top of this file)."""
    rng = np.random.default_rng(seed)
    return SqueezeNet(squeezenet1_0_features(rng, bypass, image_grad, fast), num_classes, rng, "1_0", bypass,
                      seed=seed, fast=fast, **kw)


def squeezenet1_1(num_classes: int = 1000, bypass: str | None = None, seed: int = 0, image_grad: bool = True,
                  fast: bool = True, **kw) -> SqueezeNet:
    """SqueezeNet v1.1: conv1 64 filters 3x3/2, earlier pools; 1,235,496 parameters, 2.3x fewer
    multiply-accumulates than v1.0 at 224 px (349M against 819M; torchvision quotes "2.4x").
    fast=False: the same network of the plain layers (see the top of this file)."""
    rng = np.random.default_rng(seed)
    return SqueezeNet(squeezenet1_1_features(rng, bypass, image_grad, fast), num_classes, rng, "1_1", bypass,
                      seed=seed, fast=fast, **kw)
