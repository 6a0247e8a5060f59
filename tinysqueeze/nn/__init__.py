"""tinysqueeze.nn: layers with hand-written forward and backward passes.

Read in this order: scalar.py (backpropagation on single numbers: the start lesson), module.py (the
contract), kernels.py (im2col, col2im, max-pool: the loops in plain NumPy), conv.py, pooling.py,
activation.py, linear.py, concat.py, loss.py. backend.py is the one switch that sends every layer
through those kernels or their fast twins.

fast/ is the fast path, beside the layers and not inside them (lesson 14): the Numba twins of the
kernels, Conv2d and Concat with the batch inside (what SqueezeNet's features run), the allocator setting.
"""
from .activation import Dropout, ReLU
from .concat import Concat
from .conv import Conv2d
from .fast.layers import CNHWSequential, ConcatCNHW, Conv2dCNHW, Conv2dReLUCNHW, Conv2dSmallMaps
from .fast.memory import keep_freed_memory
from .init import manual_seed
from .linear import Flatten, Identity, Linear
from .loss import SoftmaxCrossEntropy
from .module import Module, Parameter, Sequential, is_grad_enabled, no_grad
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "no_grad", "is_grad_enabled", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "Dropout", "Identity", "Flatten", "Linear", "Concat", "SoftmaxCrossEntropy", "manual_seed",
    "CNHWSequential", "Conv2dCNHW", "Conv2dReLUCNHW", "ConcatCNHW", "Conv2dSmallMaps",
    "keep_freed_memory",
]
