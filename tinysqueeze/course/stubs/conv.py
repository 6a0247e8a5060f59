"""Assignment `conv` (lesson 1): convolution as im2col + one matrix product, forward and backward.

Write the four bodies marked TODO, in order, then grade them:

    python -m tinysqueeze check conv

The grader runs each function on several shapes (stride 1 and 2, padding 0 and 1, a 1x1 kernel,
odd sizes, one image and a batch), compares it with tinysqueeze's (`tinysqueeze/nn/kernels.py`,
`tinysqueeze/nn/conv.py`), checks your backward against centred finite differences, and says what
is probably wrong when something is. Lesson 1 explains im2col and col2im.
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.course import NotWrittenYet


def im2col(x, kh, kw, stride, padding, h_out, w_out):
    """Unfolds every KHxKW window of x into a column.

    x: (N, C, H, W) -> cols: (N, C*KH*KW, H_out*W_out), with, for xp = x zero-padded by `padding`
    on every side,
        cols[n, c*KH*KW + i*KW + j, oh*W_out + ow] = xp[n, c, oh*stride + i, ow*stride + j]
    so that weight.reshape(F, C*KH*KW) @ cols[n] is the convolution of image n.
    """
    # TODO: pad (np.pad), then fill cols. Looping over the KH*KW taps (i, j) and slicing every
    # output pixel at once, with a step of `stride`, is short and fast enough.
    raise NotWrittenYet("im2col")


def col2im(dcols, x_shape, kh, kw, stride, padding, h_out, w_out):
    """The backward of im2col: every entry of dcols goes back to the pixel it was copied from.

    dcols: (N, C*KH*KW, H_out*W_out) -> dx: x_shape = (N, C, H, W).
    Windows overlap (a pixel is read by several windows when stride < kernel), so a pixel gets the
    SUM of what comes back from every window it is in. Padding is cut off at the end.
    """
    # TODO: the same loops as im2col, in the other direction, into a padded zero array.
    raise NotWrittenYet("col2im")


class Conv2d(nn.Conv2d):
    """y[n, f] = sum over c of weight[f, c] (*) x[n, c] + bias[f]  (torch.nn.Conv2d, no kernel flip).

    __init__ is tinysqueeze's, so you have: self.weight.data (F, C, KH, KW), self.bias.data (F,),
    self.kernel_size = (KH, KW), self.stride, self.padding, and self.output_size(H, W) ->
    (H_out, W_out) = ((H + 2*padding - KH) // stride + 1, ...). Use YOUR im2col and col2im above.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C, H, W) -> y: (N, F, H_out, W_out). Keep in self.cache what backward needs."""
        # TODO: cols = im2col(...); weight as an (F, C*KH*KW) matrix; one product per image
        # (np.matmul broadcasts over the batch); add the bias to every pixel; reshape.
        raise NotWrittenYet("Conv2d.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, F, H_out, W_out) -> dx: (N, C, H, W).

        ADD into self.weight.grad (F, C, KH, KW) and self.bias.grad (F,): every image of the batch
        contributes to them.
        """
        # TODO: dY = dout as (N, F, L); dW = sum over n of dY[n] @ cols[n].T; db = sum of dY over
        # n and L; dcols = W.T @ dY[n]; dx = col2im(dcols, ...).
        raise NotWrittenYet("Conv2d.backward")
