"""tinysqueeze.nn: layers with hand-written forward and backward passes.

Read in this order: scalar.py (backpropagation on single numbers: the start lesson), module.py
(the contract), kernels.py (im2col, col2im, max-pool loops, and the one place that chooses their
Numba or NumPy twins), conv.py, pooling.py, activation.py, linear.py, concat.py, loss.py; then
batch_inside.py (the same convolution and concatenation with the batch inside, for speed).
"""
from .activation import Dropout, ReLU, batch_rows, train_without_dropout
from .batch_inside import CNHWSequential, ConcatCNHW, Conv2dCNHW, to_batch_inside
from .concat import Concat
from .conv import Conv2d
from .init import manual_seed
from .linear import Flatten, Linear
from .loss import SoftmaxCrossEntropy
from .memory import keep_freed_memory
from .module import Module, Parameter, Sequential
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d

__all__ = [
    "Module", "Parameter", "Sequential", "Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d",
    "ReLU", "Dropout", "Flatten", "Linear", "Concat", "SoftmaxCrossEntropy", "manual_seed",
    "CNHWSequential", "Conv2dCNHW", "ConcatCNHW", "to_batch_inside", "batch_rows",
    "train_without_dropout", "keep_freed_memory",
]
