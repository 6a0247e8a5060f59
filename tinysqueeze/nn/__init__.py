"""tinysqueeze.nn: layers with hand-written forward and backward passes.

Read in this order: module.py (the contract), kernels.py (im2col, col2im, max-pool loops),
conv.py, pooling.py, activation.py, linear.py, concat.py, loss.py; then layout.py (the batch
inside, for speed).
"""
from .activation import Dropout, ReLU
from .concat import Concat
from .conv import Conv2d
from .init import manual_seed
from .layout import CNHWSequential, layers_in_layout, set_layout
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropy
from .module import Module, Parameter, Sequential
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "Dropout", "Flatten", "Linear", "Concat", "SoftmaxCrossEntropy", "manual_seed",
    "CNHWSequential", "set_layout", "layers_in_layout",
]
