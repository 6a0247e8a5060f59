"""Assignment `sgd` (lesson 11): stochastic gradient descent with momentum and weight decay.

Write the body marked TODO, then grade it:

    python -m tinysqueeze check sgd

The grader runs several steps of your optimiser next to tinysqueeze's (`tinysqueeze/optim/optimizers.py`,
which follows torch.optim.SGD exactly), with and without momentum and weight decay, compares every
weight after each step, and says what is probably wrong when something is.
"""
import numpy as np

from tinysqueeze import optim
from tinysqueeze.course import NotWrittenYet


class SGD(optim.SGD):
    """torch.optim.SGD: for each parameter p, with g its gradient,

        g   = p.grad + weight_decay * p.data       (L2 weight decay, when weight_decay > 0)
        buf = momentum * buf + g                   (when momentum > 0; on the first step buf is a
                                                    COPY of g: g may be p.grad itself, which
                                                    zero_grad() clears before the next step)
        p.data -= lr * buf                         (lr * g when momentum is 0)

    __init__ is tinysqueeze's, so you have self.params (a list of Parameters: .data and .grad),
    self.lr, self.momentum, self.weight_decay, and self.buffers, a list with one None per parameter
    for you to fill with its momentum buffer.
    """

    def step(self) -> None:
        """Moves every parameter one step (p.data -= ...). The grader runs it as training does: each
        step after zero_grad() and a backward that adds into p.grad."""
        # TODO
        raise NotWrittenYet("SGD.step")
