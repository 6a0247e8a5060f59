"""AlexNet as torchvision defines it (the one-tower variant of Krizhevsky's "One weird trick" paper).

61,100,840 parameters at 1000 classes: the baseline of SqueezeNet's "50x fewer parameters".
Same child indices as torchvision (features.0, features.3, ..., classifier.1, classifier.4,
classifier.6) and PyTorch's default initialisation (U(+-1/sqrt(fan_in)) for weights and biases).
Max-pools round down, as torchvision's do. Needs images of at least 63x63. Its features are built
with the batch inside, as SqueezeNet's (models/squeezenet.py; fast=False: the plain layers).
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .. import nn
from .squeezenet import check_images


class AlexNet(nn.Module):
    """x: (N, 3, H, W) -> logits (N, num_classes)"""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5, seed: int = 0, image_grad: bool = True,
                 fast: bool = True):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        self.num_classes = int(num_classes)
        rng = np.random.default_rng(seed)
        conv = partial(nn.Conv2dCNHW if fast else nn.Conv2d, rng=rng)   # the batch inside: one GEMM each
        self.features = (nn.CNHWSequential if fast else nn.Sequential)(
            conv(3, 64, 11, stride=4, padding=2, input_grad=image_grad), nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
            conv(64, 192, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
            conv(192, 384, 3, padding=1), nn.ReLU(inplace=True),
            conv(384, 256, 3, padding=1), nn.ReLU(inplace=True),
            conv(256, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(6)
        self.flatten = nn.Flatten()
        self.classifier = nn.Sequential(
            nn.Dropout(dropout, seed=seed), nn.Linear(256 * 6 * 6, 4096, rng=rng), nn.ReLU(inplace=True),
            nn.Dropout(dropout, seed=seed + 1), nn.Linear(4096, 4096, rng=rng), nn.ReLU(inplace=True),
            nn.Linear(4096, self.num_classes, rng=rng),
        )

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, 3, H, W) -> (N, num_classes)"""
        check_images("AlexNet", x, min_size=63)
        return self.classifier(self.flatten(self.avgpool(self.features(x))))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, num_classes) -> dx: (N, 3, H, W)"""
        d = self.flatten.backward(self.classifier.backward(dout))
        return self.features.backward(self.avgpool.backward(d))


def alexnet(num_classes: int = 1000, seed: int = 0, **kw) -> AlexNet:
    return AlexNet(num_classes, seed=seed, **kw)
