"""Lesson 11's table: can a recipe memorise 32 fixed images? (CS231n's first sanity check)

    python docs/experiments/overfit_recipes.py

squeezenet1_1 without dropout, 32 synthetic images at 32 px (seeds 0-3), no augmentation, a 10-step
warm-up then a constant rate, at most 400 steps. Prints, per recipe and seed, the step at which
train accuracy reached 100% (or the accuracy after 400 steps) and how many classes were dead
(no conv10 output above zero on any of the 32 images).
"""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.datasets import DataLoader, channel_stats, load_split
from tinysqueeze.models import squeezenet1_1
from tinysqueeze.optim import LARS, SGD, NonFiniteLoss, layer_groups, learning_rate, train_step


class TwoRates:
    """Plain SGD with conv10 (the classifier) at `factor` times the others' rate."""

    def __init__(self, model, lr, factor):
        head = model.classifier.parameters()
        body = [p for p in model.parameters() if all(p is not h for h in head)]
        self.parts = [(SGD(body, lr, 0.9, 2e-4), 1.0), (SGD(head, lr, 0.9, 2e-4), factor)]
        self.lr = lr

    def zero_grad(self):
        for opt, _ in self.parts:
            opt.zero_grad()

    def step(self):
        for opt, factor in self.parts:
            opt.lr = self.lr * factor
            opt.step()


RECIPES = {
    "paper's SGD 0.01, torchvision start": (lambda m: SGD(m.parameters(), 0.01, 0.9, 2e-4), 0.01, 0.0),
    "paper's SGD 0.01, margin 3": (lambda m: SGD(m.parameters(), 0.01, 0.9, 2e-4), 0.01, 3.0),
    "SGD 0.02, conv10 at 0.1x, margin 3": (lambda m: TwoRates(m, 0.02, 0.1), 0.02, 3.0),
    "LARS 0.001, torchvision start": (lambda m: LARS(layer_groups(m), 0.001, 0.9, 2e-4), 0.001, 0.0),
    "LARS 0.003, margin 3": (lambda m: LARS(layer_groups(m), 0.003, 0.9, 2e-4), 0.003, 3.0),
    "LARS 0.001, margin 3 (default)": (lambda m: LARS(layer_groups(m), 0.001, 0.9, 2e-4), 0.001, 3.0),
}


def overfit(make_optimizer, lr, margin, seed, steps=400):
    dead = 0
    data = load_split("synthetic", "train", 32, seed=seed, synthetic_sizes=(32, 10), progress=False)
    x, y = next(DataLoader(data, 32, 32, False, *channel_stats(data.images)).batches(0))
    model = squeezenet1_1(num_classes=10, dropout=0.0, seed=seed, image_grad=False)
    if margin:
        model.start_classes_alive(x, margin)
    optimizer = make_optimizer(model)
    loss_fn = nn.SoftmaxCrossEntropy()
    for step in range(steps):
        optimizer.lr = learning_rate(step, 10 ** 9, lr, warmup_steps=10, schedule="constant")
        try:
            _, logits = train_step(model, loss_fn, optimizer, x, y)   # logits: this step's forward, before its update
        except NonFiniteLoss:
            return f"diverged at step {step}", dead
        accuracy = float((logits.argmax(axis=1) == y).mean())
        dead = int((logits.max(axis=0) <= 0).sum())
        if accuracy == 1.0:
            return f"100% at step {step}", dead
    return f"{accuracy:.0%} after {steps}", dead


def main():
    print(f"{'recipe':<38} " + "  ".join(f"{'seed ' + str(s):<22}" for s in range(4)))
    for name, (make_optimizer, lr, margin) in RECIPES.items():
        cells = []
        for seed in range(4):
            result, dead = overfit(make_optimizer, lr, margin, seed)
            cells.append(f"{result}, {dead} dead")
        print(f"{name:<38} " + "  ".join(f"{c:<22}" for c in cells), flush=True)


if __name__ == "__main__":
    np.seterr(over="ignore", invalid="ignore")
    main()
