"""torchvision's SqueezeNet written out in PyTorch, the one PyTorch model tinysqueeze compares itself
with: the benchmark (`bench.py`) and the optional parity tests (`tests/models/test_torch_parity.py`).
torchvision itself does not install beside the CPU wheel here. Same modules, same child indices,
so the same state_dict keys as torchvision's and as tinysqueeze's own `models/squeezenet.py`.

Imports torch: only import this module where PyTorch is installed (tinysqueeze itself never needs it).
"""
import torch
from torch import nn


class Fire(nn.Module):
    def __init__(self, inplanes, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Conv2d(inplanes, squeeze, 1)
        self.squeeze_activation = nn.ReLU()
        self.expand1x1 = nn.Conv2d(squeeze, e1, 1)
        self.expand1x1_activation = nn.ReLU()
        self.expand3x3 = nn.Conv2d(squeeze, e3, 3, padding=1)
        self.expand3x3_activation = nn.ReLU()

    def forward(self, x):
        x = self.squeeze_activation(self.squeeze(x))
        return torch.cat([self.expand1x1_activation(self.expand1x1(x)),
                          self.expand3x3_activation(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    def __init__(self, version="1_1", num_classes=1000):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        if version == "1_0":
            self.features = nn.Sequential(nn.Conv2d(3, 96, 7, stride=2), nn.ReLU(), pool(),
                                          Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128),
                                          pool(), Fire(256, 32, 128, 128), Fire(256, 48, 192, 192),
                                          Fire(384, 48, 192, 192), Fire(384, 64, 256, 256), pool(),
                                          Fire(512, 64, 256, 256))
        else:
            self.features = nn.Sequential(nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), pool(),
                                          Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
                                          Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
                                          Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                                          Fire(512, 64, 256, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d((1, 1)))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def squeezenet(version="1_1", num_classes=1000) -> SqueezeNet:
    """version: "1_0" or "1_1" (or a tinysqueeze model name, squeezenet1_0 / squeezenet1_1)."""
    return SqueezeNet(version.replace("squeezenet", ""), num_classes)
