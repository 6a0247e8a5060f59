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
    """SGD with momentum and L2 weight decay, with torch.optim.SGD's conventions (dampening 0, no
    Nesterov): weight decay adds weight_decay times the weight to the gradient; the momentum buffer
    is a running sum of gradients that decays by `momentum` each step, and starts as the first
    step's gradient; the weight moves by -lr times the buffer (times the gradient, with no momentum).
    Lesson 11 derives each piece. Mind that the buffer must outlive zero_grad(), and that a step
    changes p.data only.

    __init__ is tinysqueeze's, so you have self.params (a list of Parameters: .data and .grad),
    self.lr, self.momentum, self.weight_decay, and self.buffers, a list with one None per parameter
    for you to fill with its momentum buffer.
    """

    def step(self) -> None:
        """Moves every parameter one step (p.data -= ...). The grader runs it as training does: each
        step after zero_grad() and a backward that adds into p.grad."""
        # TODO
        raise NotWrittenYet("SGD.step")
