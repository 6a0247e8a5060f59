"""Classify image files with a model and weights: top-k classes with their probabilities."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import load_weights, strip_module_prefix
from .models import get_model
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_image


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) -> (N, K) probabilities (stable: the row maximum is subtracted first)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def read_class_names(path) -> list[str]:
    """One class per line; `wnid<TAB>name` lines (as in classes.txt) give the name."""
    lines = [ln.rstrip("\n") for ln in Path(path).read_text().splitlines() if ln.strip()]
    return [ln.split("\t", 1)[1] if "\t" in ln else ln for ln in lines]


def num_classes_of(state: dict) -> int:
    """The number of classes a state_dict was trained for: the rows of its last weight."""
    last = [k for k in state if k.endswith("weight")][-1]
    return int(state[last].shape[0])


def load_model(model_name: str, weights_path) -> object:
    """Builds `model_name` sized to the weights' class count and loads the weights into it."""
    state = strip_module_prefix(load_weights(weights_path))
    model = get_model(model_name, num_classes=num_classes_of(state))
    model.load_state_dict(state)
    return model.eval()


def predict_files(model, paths, crop=224, resize=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, topk=5):
    """-> for each path, a list of (class index, probability), most probable first.

    Each image: shorter side to `resize` (default crop / 0.875, i.e. 256 for 224), centre crop,
    normalise by mean and std.
    """
    batch = np.stack([eval_image(p, crop, resize, mean, std) for p in paths])    # (N, 3, crop, crop)
    probs = softmax(model.eval()(batch).astype(np.float64))                      # (N, K)
    top = np.argsort(-probs, axis=1)[:, :topk]
    return [[(int(c), float(probs[i, c])) for c in row] for i, row in enumerate(top)]
