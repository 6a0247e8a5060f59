"""Assignment `relu_dropout_concat` (lesson 3): ReLU, inverted dropout and channel concatenation.

Write the bodies marked TODO, then grade them:

    python -m tinysqueeze check relu_dropout_concat

The grader compares your layers with tinysqueeze's (`tinysqueeze/nn/activation.py`,
`tinysqueeze/nn/concat.py`), checks each backward against centred finite differences, tries
ReLU with inplace=True (as SqueezeNet uses it), and says what is probably wrong when something is.
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.course import NotWrittenYet


class ReLU(nn.ReLU):
    """y = max(x, 0), any shape. self.inplace (from __init__): when True, write y over x itself
    (no new array), as torchvision's SqueezeNet does. The derivative at exactly 0 is 0."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: any shape -> y: the same shape. Keep in self.cache what backward needs, remembering
        that with inplace=True, x itself is overwritten by y."""
        # TODO
        raise NotWrittenYet("ReLU.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout -> dx, the same shape: dout where the input was positive, 0 elsewhere.

        Return a NEW array; never write into dout (a Fire module with a bypass uses dout again).
        """
        # TODO
        raise NotWrittenYet("ReLU.backward")


class Dropout(nn.Dropout):
    """Inverted dropout: in training, zero each element with probability self.p and scale the
    rest by 1 / (1 - p); in eval (self.training is False) or with p = 0, the identity.

    Draw the mask exactly so, from the layer's own generator, one draw per forward:
        keep = self.rng.random(x.shape) >= self.p
    (the grader replays the generator and expects that very mask).
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: any shape -> the same shape. Keep in self.cache what backward needs."""
        # TODO
        raise NotWrittenYet("Dropout.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout -> dx, the same shape, through the same mask and scale as the forward."""
        # TODO
        raise NotWrittenYet("Dropout.backward")


class Concat(nn.Concat):
    """Joins branches along the channel axis (axis 1), like torch.cat(xs, 1): how a Fire module
    joins its expand1x1 and expand3x3 outputs."""

    def forward(self, xs) -> np.ndarray:
        """xs: a list of (N, C_k, H, W) -> (N, C_0 + C_1 + ..., H, W). Keep in self.cache what
        backward needs to cut dout back into pieces."""
        # TODO
        raise NotWrittenYet("Concat.forward")

    def backward(self, dout: np.ndarray) -> list:
        """dout: (N, sum C_k, H, W) -> [dx_0 (N, C_0, H, W), dx_1 (N, C_1, H, W), ...]"""
        # TODO
        raise NotWrittenYet("Concat.backward")
