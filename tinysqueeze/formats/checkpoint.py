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
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .atomic import written_atomically

CHECKPOINT_MODEL_PREFIX = "model."  # the weights inside a checkpoint: model.<state_dict name>


def refuse_unusable_weights(arrays: dict, where) -> None:
    """Refuses, naming the tensor, an array no network can use: one that is not real numbers (complex,
    text: NumPy would drop the imaginary part with a mere warning) or that holds NaN or infinite values
    (every output would be NaN, yet a command would rank, score or compress it). `where`: the file."""
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{where}: {name} holds {value.dtype} values: refusing to load weights that are not "
                             "real numbers")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{where}: {name} has {non_finite_count(value)}: refusing to load non-finite weights")


def non_finite_count(value: np.ndarray) -> str:
    """"3 NaN values", "1 infinite value", "1 NaN value and 2 infinite values"."""
    counts = [(int(np.isnan(value).sum()), "NaN"), (int(np.isinf(value).sum()), "infinite")]
    return " and ".join(f"{n} {kind} value{'s' if n != 1 else ''}" for n, kind in counts if n)


def check_meta(meta: dict, path) -> None:
    """Refuses a meta that would give wrong answers silently: an epoch that is not a whole number from 0
    or lies beyond its own run's epochs (a resume would skip the training and report it done), and
    normalisation statistics that are not 3 finite numbers, std above 0 (images divided by 0 give NaN)."""
    epoch, config = meta["epoch"], meta["config"]
    epochs = config.get("epochs") if isinstance(config, dict) else None
    if type(epoch) is not int or epoch < 0:
        raise ValueError(f"{path} is damaged: its meta's epoch is {epoch!r}, not a whole number from 0")
    if type(epochs) is int and epoch >= epochs:
        raise ValueError(f"{path} is damaged: its meta says epoch {epoch} is finished (counted from 0: {epoch + 1} "
                         f"epochs), but its run has {epochs} epoch{'s' if epochs != 1 else ''}")
    for key in ("mean", "std"):
        if key not in meta:
            continue
        values = meta[key]
        numbers = isinstance(values, list) and len(values) == 3 and all(
            type(v) in (int, float) and math.isfinite(v) for v in values)
        if not numbers or (key == "std" and min(values) <= 0):
            raise ValueError(f"{path}: its normalisation {key} {values!r} is not 3 finite numbers"
                             f"{' above 0 (images are divided by it)' if key == 'std' else ''}: refusing the "
                             "checkpoint, whose outputs would be NaN or wrong")


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
    check_meta(meta, path)
    refuse_unusable_weights(model, path)
    refuse_unusable_weights({f"optimizer.{k}": v for k, v in optim.items()}, path)
    return model, optim, meta
