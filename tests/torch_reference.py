"""torchvision's SqueezeNet written out in PyTorch (torchvision itself does not install beside the
CPU wheel here), for the optional parity tests. Same modules, same indices as torchvision."""
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


def squeezenet(version="1_1", num_classes=1000):
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    if version == "1_0":
        features = nn.Sequential(nn.Conv2d(3, 96, 7, stride=2), nn.ReLU(), pool(),
                                 Fire(96, 16, 64, 64), Fire(128, 16, 64, 64), Fire(128, 32, 128, 128), pool(),
                                 Fire(256, 32, 128, 128), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                                 Fire(384, 64, 256, 256), pool(), Fire(512, 64, 256, 256))
    else:
        features = nn.Sequential(nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(), pool(),
                                 Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
                                 Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
                                 Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
                                 Fire(512, 64, 256, 256))
    model = nn.Module()
    model.features = features
    model.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1), nn.ReLU(),
                                     nn.AdaptiveAvgPool2d((1, 1)))
    model.forward = lambda x: torch.flatten(model.classifier(model.features(x)), 1)
    return model
