"""Assignment `step` (lesson 5b): one training step.

Write the body marked TODO, then grade it:

    python -m tinysqueeze check step

The grader runs three of your steps on a small network next to tinysqueeze's
(`tinysqueeze/optim/step.py`), compares the loss, the logits and every weight afterwards, and says
what is probably wrong when something is.
"""
from tinysqueeze.course import NotWrittenYet


def train_step(model, loss_fn, optimizer, x, y):
    """One step of training on the batch x: (B, 3, S, S), y: (B,) integer labels.

    model: a Module (forward: model(x) -> logits (B, C); backward: model.backward(dlogits));
    loss_fn: a SoftmaxCrossEntropy (loss_fn(logits, y) -> float; loss_fn.backward() -> dlogits);
    optimizer: has zero_grad() and step().
    -> (loss: float, logits: (B, C)).
    """
    # TODO: five lines. Gradients are ADDED into .grad by backward (lesson 0): what must happen
    # before the forward?
    raise NotWrittenYet("train_step")
