"""Lesson 11's figure: the first 300 steps of three recipes on the synthetic set (64 px, seed 0).

    python docs/experiments/first_steps.py [out.png]

1. the paper's SGD (lr 0.01 at batch 64) from torchvision's start (conv10 ~ N(0, 0.01), zero bias);
2. Adam 5e-4 from the same start;
3. tinysqueeze's default: LARS (lr 0.001 of each layer's size per step) with the class margin.
Each row: the update / weight ratio of conv1, a middle layer and conv10 per step, and the share of
each class's conv10 outputs above zero.
"""
import sys

from tinysqueeze.training.diagnose import dead_classes, plot_trace, trace_recipe
from tinysqueeze.training.train import TrainConfig

RECIPES = {
    "paper's SGD 0.01, torchvision start": dict(optimizer="sgd", class_margin=0.0),
    "Adam 5e-4, torchvision start": dict(optimizer="adam", class_margin=0.0),
    "default: LARS 0.001, class margin 3": dict(),
}


def main(out="docs/results/first-steps.png", steps=300):
    traces = {}
    for label, settings in RECIPES.items():
        config = TrainConfig(data="synthetic", image_size=64, epochs=15, seed=0, **settings)
        records, names = trace_recipe(config, steps)
        traces[label] = records
        live = [name for k, name in enumerate(names) if k not in dead_classes(records)]
        print(f"{label}: loss {records[0].loss:.3f} -> {records[-1].loss:.3f}; "
              f"{len(live)} of {len(names)} classes alive after {steps} steps")
    plot_trace(traces, out, f"squeezenet1_1 on synthetic (64 px, batch 64): the first {steps} steps")
    print(f"plot: {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
