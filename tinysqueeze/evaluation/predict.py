"""Classify image files with a model: top-k classes with their probabilities (loading.load_model
builds the model from any weights file)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn
from ..datasets import stored_size
from ..datasets.transforms import IMAGENET_MEAN, IMAGENET_STD, eval_image


def softmax(logits: np.ndarray) -> np.ndarray:
    """(N, K) -> (N, K) probabilities (stable: the row maximum is subtracted first)."""
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def read_class_names(path) -> list[str]:
    """One class per line; `wnid<TAB>name` lines (as in classes.txt) give the name. A folder, a missing or
    unreadable file, or one that is not UTF-8 text is a one-line error naming it (`--classes`)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--classes {path} is a folder: give a text file of class names, one per line")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"--classes {path}: no such file of class names") from None
    except UnicodeDecodeError as error:
        raise ValueError(f"--classes {path} is not UTF-8 text ({error.reason} at byte {error.start}): give a "
                         "text file of class names, one per line") from None
    except OSError as error:
        raise ValueError(f"--classes {path} cannot be read ({error.strerror})") from None
    lines = [ln.rstrip("\n") for ln in text.splitlines() if ln.strip()]
    return [ln.split("\t", 1)[1] if "\t" in ln else ln for ln in lines]


def predict_files(model, paths, crop=224, resize=None, mean=IMAGENET_MEAN, std=IMAGENET_STD, topk=5):
    """-> for each path, a list of (class index, probability), most probable first.

    Each image: shorter side to `resize` (default crop / 0.875, i.e. 256 for 224), centre crop,
    normalise by mean and std.
    """
    batch = np.stack([eval_image(p, crop, resize, mean, std) for p in paths])    # (N, 3, crop, crop)
    with np.errstate(over="ignore", invalid="ignore"):                           # checked just below
        with nn.no_grad():                                                       # inference: nothing kept
            logits = model.eval()(batch)                                         # (N, K)
    if not np.all(np.isfinite(logits)):
        raise ValueError("the network's outputs are not finite numbers (NaN or inf): its weights or its "
                         "normalisation overflow, and no prediction can be made")
    probs = softmax(logits.astype(np.float64))
    top = np.argsort(-probs, axis=1)[:, :topk]
    return [[(int(c), float(probs[i, c])) for c in row] for i, row in enumerate(top)]


def preprocessing(meta=None, image_size: int = 224) -> dict:
    """predict_files' keyword arguments: a training run's own crop, resize and statistics (meta: a
    run_meta.RunMeta), or ImageNet's at `image_size` for weights without a run."""
    if meta is None:
        return dict(crop=image_size)
    return dict(crop=meta.image_size, resize=stored_size(meta.image_size), mean=meta.mean, std=meta.std)


def format_predictions(paths, results, names=None) -> str:
    """Each path, then its top classes: rank, probability, name (or "class k" without names)."""
    lines = []
    for path, top in zip(paths, results):
        lines.append(str(path))
        for rank, (cls, prob) in enumerate(top, 1):
            lines.append(f"  {rank}. {prob * 100:6.2f}%  {names[cls] if names else f'class {cls}'}")
    return "\n".join(lines)
