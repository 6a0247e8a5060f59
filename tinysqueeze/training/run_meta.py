"""What a training checkpoint says about its run (`RunMeta`), and the schema its meta must match.

A checkpoint's `meta` is a JSON document written by tinysqueeze, but read back from a file anyone
can edit. Each key is checked against one table, META_SCHEMA (and CONFIG_SCHEMA for the settings
inside it), before anything uses it: a wrong value is one ValueError naming the file, the key and
what it should be, never a KeyError from deep inside, nor an allocation sized by it (an image_size
of 10^9).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..datasets import MAX_CLASSES, MAX_IMAGE_SIZE
from ..formats.checkpoint import load_checkpoint
from ..models.squeezenet import MIN_IMAGE_SIZE


# ---------------------------------------------------------------------------- the schema
@dataclass(frozen=True)
class Rule:
    """One thing a meta's key must be. `holds(value, meta)` sees the whole meta, for the rules that
    depend on another key; `should` says what the value is not when it fails (or, as a function of the
    meta, says it in the meta's terms)."""
    key: str
    holds: Callable[[object, dict], bool]
    should: str | Callable[[dict], str]
    required: bool = True


def text(value, meta=None) -> bool:
    return isinstance(value, str)


def whole(value, meta=None) -> bool:
    return type(value) is int                       # not a bool, not 32.0


def finite(value, meta=None) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def json_object(value, meta=None) -> bool:
    return isinstance(value, dict)


def list_of(item: Callable, shortest: int, longest: int) -> Callable[[object, dict], bool]:
    return lambda value, meta=None: (isinstance(value, list) and shortest <= len(value) <= longest
                                     and all(item(v) for v in value))


def model_name(value, meta=None) -> bool:
    return text(value) and value != ""


def no_class_twice(classes, meta=None) -> bool:
    return len(set(classes)) == len(classes)


def one_name_per_class(names, meta) -> bool:
    return names is None or list_of(text, len(meta["classes"]), len(meta["classes"]))(names)


def image_size(value, meta=None) -> bool:
    return whole(value) and MIN_IMAGE_SIZE <= value <= MAX_IMAGE_SIZE


def generator_states(value, meta=None) -> bool:
    return json_object(value) and all(json_object(state) for state in value.values())


META_SCHEMA = (
    Rule("model", model_name, "not a model name"),
    Rule("classes", list_of(text, 2, MAX_CLASSES), f"not a list of 2 to {MAX_CLASSES:,} class names"),
    Rule("classes", no_class_twice, "a list naming a class twice (every prediction would be ambiguous)"),
    Rule("class_names", one_name_per_class, lambda meta: f"not a list of {len(meta['classes'])} names (one per class)",
         required=False),
    Rule("mean", list_of(finite, 3, 3), "not 3 finite numbers"),
    Rule("std", list_of(finite, 3, 3), "not 3 finite numbers"),
    Rule("image_size", image_size, f"not a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}"),
    Rule("epoch", whole, "not a whole number"),
    Rule("best_top1", finite, "not a number", required=False),
    Rule("generators", generator_states, "not an object of generator states by layer name", required=False),
    Rule("config", json_object, "not a JSON object of the run's settings"),
)

# The settings inside the meta that reading a run needs (its data, and how that data was drawn).
CONFIG_SCHEMA = (
    Rule("data", text, "not text"),
    Rule("seed", whole, "not a whole number"),
    Rule("epochs", whole, "not a whole number"),
    Rule("synthetic_train", whole, "not a whole number"),
    Rule("synthetic_val", whole, "not a whole number"),
    Rule("model_args", json_object, "not a JSON object of model arguments", required=False),
)


def broken_rule(document: dict, schema, owner: str = "its meta", part: str = "") -> str | None:
    """What is wrong with `document` by `schema`: the keys it lacks ("its meta lacks ..."), else the
    first rule it breaks ("its meta's <part><key> is ..."); None when nothing is."""
    missing = list(dict.fromkeys(r.key for r in schema if r.required and r.key not in document))
    if missing:
        return f"{owner} lacks {', '.join(missing)}"
    for rule in schema:
        if rule.key in document and not rule.holds(document[rule.key], document):
            should = rule.should(document) if callable(rule.should) else rule.should
            return f"its meta's {part}{rule.key} is {shown(document[rule.key])}, {should}"
    return None


def shown(value) -> str:
    """A value as an error message quotes it: its repr, cut to 60 characters."""
    quoted = repr(value)
    return quoted if len(quoted) <= 60 else quoted[:57] + "..."


def check_run_meta(meta, path) -> None:
    """Refuses (ValueError naming `path`) a checkpoint meta that breaks META_SCHEMA or CONFIG_SCHEMA."""
    if not isinstance(meta, dict):
        wrong = f"its meta's top level is {shown(meta)}, not a JSON object"
    else:
        wrong = (broken_rule(meta, META_SCHEMA)
                 or broken_rule(meta["config"], CONFIG_SCHEMA, owner="its meta's config", part="config "))
    if wrong:
        raise ValueError(f"{path} is damaged or not a tinysqueeze checkpoint: {wrong}")


# ---------------------------------------------------------------------------- what a run is
@dataclass
class RunMeta:
    """What a training checkpoint records about its run (its `meta`, a JSON document)."""
    model: str
    classes: list[str]                 # folder names (or the synthetic shapes), in label order
    class_names: list[str]             # for display (Imagenette's "tench" for n01440764)
    mean: list[float]                  # the training set's per-channel statistics, in [0, 1]
    std: list[float]
    image_size: int
    config: dict                       # every setting of the run (train.TrainConfig as a dict)
    epoch: int = -1                    # the last finished epoch, counted from 0 (-1: none yet)
    best_top1: float = -1.0            # the best validation top-1 so far
    generators: dict = field(default_factory=dict)    # model.generator_states(): each Dropout's, by name

    @property
    def model_args(self) -> dict:
        return self.config.get("model_args", {})

    @property
    def data(self) -> str:
        return self.config["data"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def synthetic_sizes(self) -> tuple[int, int]:
        return self.config["synthetic_train"], self.config["synthetic_val"]

    @classmethod
    def from_dict(cls, meta: dict, path="the checkpoint") -> "RunMeta":
        """From a checkpoint's meta (those written before RunMeta existed hold the same keys), checked
        against the schema first: a ValueError names `path`, the key and what it should be."""
        check_run_meta(meta, path)
        return cls(model=meta["model"], classes=list(meta["classes"]),
                   class_names=list(meta.get("class_names") or meta["classes"]), mean=list(meta["mean"]),
                   std=list(meta["std"]), image_size=int(meta["image_size"]), config=dict(meta["config"]),
                   epoch=int(meta["epoch"]), best_top1=float(meta.get("best_top1", -1.0)),
                   generators=dict(meta.get("generators", {})))

    def to_dict(self) -> dict:
        """The checkpoint's meta (save_checkpoint adds the generators itself)."""
        return {"config": self.config, "epoch": self.epoch, "best_top1": self.best_top1, "classes": self.classes,
                "class_names": self.class_names, "mean": self.mean, "std": self.std, "model": self.model,
                "image_size": self.image_size}


def read_checkpoint(path, meta_only: bool = False) -> tuple[dict, dict, RunMeta]:
    """load_checkpoint, its meta checked into a RunMeta (ValueError naming the file for any damage, a
    meta nested too deeply to read included)."""
    try:
        model_state, optimizer_state, meta = load_checkpoint(path, meta_only=meta_only)
    except RecursionError:
        raise ValueError(f"{path} is damaged or not a checkpoint: its meta is nested too deeply to read") from None
    return model_state, optimizer_state, RunMeta.from_dict(meta, path)
