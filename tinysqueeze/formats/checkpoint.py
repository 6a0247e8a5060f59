"""Training checkpoints: one `.npz` holding everything needed to continue a run exactly.

Keys: `model.<state_dict name>` (the weights), `optimizer.<k>` (momentum buffers), and `meta`, a
JSON document stored as bytes: the run's configuration, the epoch just finished, the best
validation top-1 so far, the dataset's class names and normalisation, and the state of every
random generator the model owns (dropout masks). No pickle anywhere: `np.load(allow_pickle=False)`.

Written to a temporary file and renamed into place, so a crash while saving leaves the previous
checkpoint whole.
"""
from __future__ import annotations

import collections
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .atomic import written_atomically

CHECKPOINT_MODEL_PREFIX = "model."  # the weights inside a checkpoint: model.<state_dict name>


def checkpoint_weights(data) -> "collections.OrderedDict[str, np.ndarray]":
    """The model.* arrays of an opened training checkpoint, without their prefix."""
    n = len(CHECKPOINT_MODEL_PREFIX)
    return collections.OrderedDict((k[n:], data[k]) for k in data.files if k.startswith(CHECKPOINT_MODEL_PREFIX))


def save_checkpoint(path, model, optimizer, meta: dict) -> Path:
    """Writes model.state_dict(), optimizer.state_dict() (if an optimizer is given), and `meta` with
    the model's random generators (`model.generator_states()`: each Dropout's) under "generators"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{CHECKPOINT_MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    meta = dict(meta, generators=model.generator_states())
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with written_atomically(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def is_checkpoint(path) -> bool:
    """True for a zip archive with a `meta` member: a training checkpoint (perhaps damaged inside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def load_checkpoint(path, meta_only: bool = False) -> tuple[dict, dict, dict]:
    """-> (model state_dict, optimizer state, meta). Refuses a file that is not a checkpoint.
    meta_only: read the meta alone (the weights and optimizer state come back empty)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise ValueError(f"{path} holds weights but is not a training checkpoint (no 'meta')")
            meta = json.loads(bytes(data["meta"]).decode())
            model = {} if meta_only else dict(checkpoint_weights(data))
            optim = {} if meta_only else {k[len("optimizer."):]: data[k] for k in data.files if k.startswith("optimizer.")}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, ValueError) and "training checkpoint" in str(error):
            raise
        raise ValueError(f"{path} is damaged or not a checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(meta, dict) or not {"epoch", "config", "classes", "model"} <= set(meta):
        raise ValueError(f"{path} is damaged or not a checkpoint (its meta lacks epoch, config, classes or model)")
    return model, optim, meta
