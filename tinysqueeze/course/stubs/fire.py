"""Assignment `fire` (lesson 6): the Fire module's forward and backward, with its bypasses.

Write the two bodies marked TODO, then grade them:

    python -m tinysqueeze check fire

Your Fire module calls its children (tinysqueeze's Conv2d, ReLU and Concat, already checked), so
only the wiring is yours: which output feeds which layer, and which gradients add up. The grader
compares it with tinysqueeze's (`tinysqueeze/models/fire.py`) without a bypass, with the simple
and with the complex bypass, checks it against centred finite differences, and says what is
probably wrong when something is.
"""
import numpy as np

from tinysqueeze.course import NotWrittenYet
from tinysqueeze.models import Fire as ReferenceFire


class Fire(ReferenceFire):
    """squeeze (1x1) -> ReLU -> [expand1x1 (1x1) -> ReLU, expand3x3 (3x3, pad 1) -> ReLU] -> concat.

    __init__ is tinysqueeze's, so you have the children self.squeeze, self.squeeze_activation,
    self.expand1x1, self.expand1x1_activation, self.expand3x3, self.expand3x3_activation,
    self.concat (a Concat: a list in, one array out), and self.bypass_kind: None, "simple" (add the
    input to the output) or "complex" (add self.bypass(x), a 1x1 convolution, to the output).
    Each child keeps its own cache: call each one's forward once, and its backward once.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, C_in, H, W) -> (N, e1 + e3, H, W)."""
        # TODO
        raise NotWrittenYet("Fire.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, e1 + e3, H, W) -> dx: (N, C_in, H, W). The children add their own
        parameter gradients; you route dout back through them, in the reverse order."""
        # TODO: the squeeze output feeds TWO layers; the input feeds two paths when there is a bypass.
        raise NotWrittenYet("Fire.backward")
