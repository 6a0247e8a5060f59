"""Assignment `pooling` (lesson 2): max-pooling, average pooling and global average pooling.

Write the bodies marked TODO, then grade them:

    python -m tinysqueeze check pooling

The grader tries your layers on SqueezeNet's 3x3/2 windows with ceil_mode (windows that overlap and
hang over the edge), on 2x2/2 windows (no overlap), with padding, and on one image and a batch;
compares them with tinysqueeze's (`tinysqueeze/nn/pooling.py`), checks each backward against
centred finite differences, and says what is probably wrong when something is.
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.course import NotWrittenYet


class MaxPool2d(nn.MaxPool2d):
    """out[n, c, oh, ow] = max of x[n, c] over the KHxKW window whose top-left corner is at
    (oh*stride - padding, ow*stride - padding). Padding counts as -inf (it never wins).

    __init__ is tinysqueeze's: self.kernel_size = (KH, KW), self.stride, self.padding,
    self.ceil_mode, and self.output_shape(x.shape) -> (N, C, H_out, W_out), PyTorch's rule. With
    ceil_mode the last window may hang over the bottom or right edge: only its pixels inside count.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H_out, W_out). Keep in self.cache which pixel won each window."""
        # TODO: pad with -inf (enough on the bottom/right for the windows that hang over); for
        # each tap (i, j) of the window compare that tap's values with the best so far.
        raise NotWrittenYet("MaxPool2d.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W).

        Each output's gradient goes to the one pixel that won its window (on a tie, the first in
        row-major window order, as PyTorch). Windows overlap when stride < kernel: a pixel that
        wins two windows gets both gradients.
        """
        # TODO
        raise NotWrittenYet("MaxPool2d.backward")


class AvgPool2d(nn.AvgPool2d):
    """The mean of each KHxKW window (no padding, floor rounding).

    __init__ is tinysqueeze's: self.kernel_size = (KH, KW), self.stride.
    x: (N, C, H, W) -> (N, C, H_out, W_out), H_out = (H - KH) // stride + 1.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, H_out, W_out). Keep in self.cache what backward needs."""
        # TODO
        raise NotWrittenYet("AvgPool2d.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, H_out, W_out) -> dx: (N, C, H, W): each output's gradient, shared out
        equally among the KH*KW pixels of its window (overlapping windows add up)."""
        # TODO
        raise NotWrittenYet("AvgPool2d.backward")


class AdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """Global average pooling, SqueezeNet's last layer: only output_size=1 is asked of you.

    x: (N, C, H, W) -> (N, C, 1, 1), the mean of each channel of each image.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> (N, C, 1, 1). Keep in self.cache what backward needs."""
        # TODO
        raise NotWrittenYet("AdaptiveAvgPool2d.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, C, 1, 1) -> dx: (N, C, H, W)."""
        # TODO
        raise NotWrittenYet("AdaptiveAvgPool2d.backward")
