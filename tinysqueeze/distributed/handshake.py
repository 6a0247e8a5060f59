"""The handshake of a run on several processes, before its first step and around its epochs: every
rank trains with rank 0's settings (`agreed_settings`), reads the same data (`data_fingerprint`),
starts from rank 0's weights, optimizer state and place in the run (`share_state`), and adds its
counts into the whole batch's (`world_total`, `world_max`). training/train.py calls these; on one
process none of them is needed."""
from __future__ import annotations

import hashlib

import numpy as np

from .world import World


def agreed_settings(given: dict, settings: dict, world: World) -> dict:
    """The settings every rank trains with: rank 0's `settings` (a resumed run's come from its
    checkpoint, which rank 0 alone reads). given: this rank's settings as typed; a rank started with
    other settings than rank 0 is refused, naming it and them."""
    typed = world.gather_object(given)
    for rank, theirs in enumerate(typed):
        differ = sorted(k for k in typed[0] if theirs.get(k) != typed[0][k])
        if differ:
            raise ValueError(f"rank {rank} was started with other settings than rank 0: "
                             + ", ".join(f"{k}={theirs.get(k)!r} (rank 0: {typed[0][k]!r})" for k in differ)
                             + "; every process must run the same command")
    return world.broadcast_object(settings)


def data_fingerprint(train_set, val_set) -> tuple:
    """What every rank's data must agree on: the image counts, classes, and a hash of every image and
    label (two files swapped on one machine change the labels). (The normalisation is rank 0's on all.)"""
    digest = hashlib.sha256()
    for dataset in (train_set, val_set):
        digest.update(np.ascontiguousarray(dataset.labels, dtype=np.int64).tobytes())
        for start in range(0, len(dataset), 4096):                 # memory-mapped: a few MB at a time
            digest.update(np.ascontiguousarray(dataset.images[start : start + 4096]).tobytes())
    return len(train_set), len(val_set), train_set.classes, digest.hexdigest()


def share_state(world: World, model, optimizer, meta, rows: list[dict], data) -> list[dict]:
    """Rank 0's weights, optimizer state, dropout generators and place in the run, on every rank; then
    every rank checks that its data and weights are rank 0's. meta: the run's RunMeta (training/run_meta.py;
    its epoch and best top-1 are set here); data: `data_fingerprint`'s. -> metrics.csv's rows so far."""
    state = world.broadcast_object({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "generators": model.generator_states(), "epoch": meta.epoch,
                                    "best_top1": meta.best_top1, "rows": rows})
    if not world.is_writer:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        model.set_generator_states(state["generators"])
        meta.epoch, meta.best_top1 = state["epoch"], state["best_top1"]
    fingerprint = hashlib.sha256(b"".join(np.ascontiguousarray(v).tobytes() for v in model.state_dict().values()))
    seen = world.gather_object((data, fingerprint.hexdigest()))
    names = ("training images", "validation images", "classes", "images and labels (hash)")
    for rank, (their_data, their_weights) in enumerate(seen):
        for name, theirs, ours in zip(names, their_data, seen[0][0]):
            if theirs != ours:
                raise ValueError(f"rank {rank} sees other data than rank 0: its {name} are {str(theirs)[:60]} (rank 0: "
                                 f"{str(ours)[:60]}); every process must read the same --data")
        if their_weights != seen[0][1]:
            raise ValueError(f"rank {rank}'s weights differ from rank 0's after rank 0 sent them")
    return state["rows"]


def world_total(world: World, count: int) -> int:
    """count summed over the ranks."""
    buffer = np.array([count], dtype=np.float64)
    world.sum(buffer)
    return int(round(buffer[0]))


def world_max(world: World, values: np.ndarray) -> np.ndarray:
    """values (C,), the element-wise maximum over the ranks."""
    buffer = np.ascontiguousarray(values, dtype=np.float64).copy()
    world.max(buffer)
    return buffer
