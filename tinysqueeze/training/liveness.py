"""Is the network still alive? After each epoch, the classes that never scored above zero (their conv10
outputs negative everywhere: no gradient reaches them) are named, and a network whose every class
went silent stops the run (lesson 11)."""
from __future__ import annotations

import math
import sys

import numpy as np

from .runs import RunFolder


class TrainingDiverged(RuntimeError):
    """The loss stopped being a finite number."""


class NetworkDied(TrainingDiverged):
    """Every class score was zero on a whole epoch: no gradient can flow, the run cannot recover."""


def check_alive(silent: np.ndarray, names: list[str], epoch: int, images: int, loss: float, folder: RunFolder) -> None:
    """Stops the run (NetworkDied) when every class was silent for a whole epoch; warns when some were."""
    if len(silent) == 0:
        return
    message = liveness_message(silent, names, epoch, images, loss)
    if len(silent) == len(names):
        raise NetworkDied(message + f" The run stopped; {folder.last} holds this epoch.")
    print(message, file=sys.stderr, flush=True)


def liveness_message(silent: np.ndarray, names: list[str], epoch: int, images: int, loss: float) -> str:
    """What a user should read when classes (or the whole network) went silent in an epoch."""
    num_classes = len(names)
    if len(silent) == num_classes:
        return (f"the network is dead: in epoch {epoch}, every class score was exactly 0 on all {images} "
                f"training images (train loss {loss:.5f}; ln({num_classes}) = {math.log(num_classes):.5f}). "
                "conv10's outputs are negative everywhere before its ReLU, so every gradient is zero and "
                "no step can revive it. Likely cause: steps too large for conv10 early in training. Try a "
                "lower --lr, a longer --warmup-epochs, or the default optimizer (lars) if you changed it.")
    listed = ", ".join(names[k] for k in silent[:10]) + (", ..." if len(silent) > 10 else "")
    return (f"warning: in epoch {epoch}, {len(silent)} of {num_classes} classes never scored above 0 on any of "
            f"{images} training images: {listed}. Their conv10 outputs are negative everywhere, so they get "
            "no gradient and will likely never be predicted (dead classes). Likely cause: steps too large "
            "for conv10; try a lower --lr or a longer --warmup-epochs.")
