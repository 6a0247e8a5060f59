"""Lesson 12's figure: conv1's 64 filters at the start and after training.

    python docs/experiments/conv1_filters.py runs/NAME/last.npz [out.png]

The start is rebuilt from the run's own model and seed (initialisation is seeded), so only the
trained checkpoint is needed.
"""
import sys

from tinysqueeze.formats.checkpoint import load_checkpoint
from tinysqueeze.models import get_model
from tinysqueeze.evaluation.pictures import filter_grid


def main(checkpoint, out="docs/results/conv1-filters.png"):
    state, _, meta = load_checkpoint(checkpoint)
    config = meta["config"]
    start = get_model(meta["model"], num_classes=len(meta["classes"]), seed=config["seed"],
                      **config.get("model_args", {}))
    key = "features.0.weight"
    print(filter_grid({"conv1 at the start (seed %d)" % config["seed"]: start.state_dict()[key],
                       f"after {meta['epoch'] + 1} epochs on {config['data'].rstrip('/').split('/')[-1]}": state[key]},
                      out, f"{meta['model']}: the first layer's filters (each scaled to its own range)"))


if __name__ == "__main__":
    main(*sys.argv[1:3])
