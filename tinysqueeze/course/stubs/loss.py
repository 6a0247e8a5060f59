"""Assignment `loss` (lesson 4): softmax cross-entropy, stable, forward and backward.

Write the two bodies marked TODO, then grade them:

    python -m tinysqueeze check loss

The grader compares your loss with tinysqueeze's (`tinysqueeze/nn/loss.py`) on several batches,
including logits of 1000 (where a naive exp overflows), checks the backward against centred finite
differences, and says what is probably wrong when something is.
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.course import NotWrittenYet


class SoftmaxCrossEntropy(nn.SoftmaxCrossEntropy):
    """loss = mean over n of -log softmax(logits[n])[labels[n]]  (torch.nn.CrossEntropyLoss)."""

    def forward(self, logits: np.ndarray, labels) -> float:
        """logits: (N, K) floats, labels: (N,) integers in [0, K) -> the loss, a Python float.

        Keep in self.cache what backward needs. Compute it stably: subtract each row's maximum
        before exp (the log-sum-exp trick) so that exp never overflows.
        """
        # TODO
        raise NotWrittenYet("SoftmaxCrossEntropy.forward")

    def backward(self, dout: float = 1.0) -> np.ndarray:
        """-> dlogits: (N, K) = dL/dlogits, times dout (1 when the loss is the last thing)."""
        # TODO: softmax minus one-hot, and remember the loss is a MEAN over the batch.
        raise NotWrittenYet("SoftmaxCrossEntropy.backward")
