"""Assignment `linear` (lesson 0): a fully connected layer, forward and backward.

Write the two bodies marked TODO, then grade them:

    python -m tinysqueeze check linear

The grader compares your layer with tinysqueeze's (`tinysqueeze/nn/linear.py`) on several batch
sizes, checks your backward against centred finite differences, and says what is probably wrong
when something is. Lesson 0 derives every line you need.
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.course import NotWrittenYet


class Linear(nn.Linear):
    """y = x @ weight.T + bias (torch.nn.Linear).

    __init__ is tinysqueeze's, so you have: self.weight.data (out_features, in_features),
    self.bias.data (out_features,) (or self.bias is None), and each one's .grad of the same shape.
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x: (N, in_features) -> y: (N, out_features).

        Keep in self.cache what backward will need.
        """
        # TODO: one matrix product and a bias (when there is one); keep x for backward.
        raise NotWrittenYet("Linear.forward")

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dout: (N, out_features) = dL/dy -> dx: (N, in_features) = dL/dx.

        ADD (+=) dL/dweight into self.weight.grad and dL/dbias into self.bias.grad: gradients
        accumulate until zero_grad() (lesson 0's contract). Never change a weight here.
        """
        # TODO: dW from dout and x, db from dout, dx from dout and W. Check each one's shape.
        raise NotWrittenYet("Linear.backward")
