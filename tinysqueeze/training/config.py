"""The settings of a training run: `TrainConfig`, every setting and its default in one place (the
command line's `train` flags are built from its fields), `RECIPES` (each optimizer's defaults), the
checks a config must pass, its JSON form (`--config run/config.json`), and what `--resume` may
change (`continued_config`)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..datasets import MAX_IMAGE_SIZE, SYNTHETIC_SIZES
from ..models.registry import RESERVED_MODEL_ARGS
from ..models.squeezenet import MIN_IMAGE_SIZE

# The recipe, one row per optimizer: what `train` uses when a setting is not given. Each uses the
# paper's momentum 0.9 and poly decay, after a one-epoch linear warm-up (which the paper did not use).
# lars (the default; You, Gitman and Ginsburg 2017, not the paper's): SGD with momentum whose learning
#   rate is scaled per layer to the layer's size -- lr 0.001 moves every layer 0.1% of its size per
#   step. Trains from scratch on every seed tried.
# sgd: the paper's plain SGD (0.01 at batch 64); from scratch it crawls on the ln(C) plateau.
# adam: fast at first, but moves conv10 1-2% of its size per step and can kill classes.
# Lesson 11 has the measurements behind each row.
RECIPES = {
    "lars": {"lr": 0.001, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "sgd": {"lr": 0.01, "weight_decay": 2e-4, "warmup_epochs": 1.0},
    "adam": {"lr": 5e-4, "weight_decay": 0.0, "warmup_epochs": 1.0},
}


# The synthetic set is drawn in memory: a million images (ImageNet's size) at 64 px are 16 GB.
MAX_SYNTHETIC = 1_000_000


def setting(default, help: str, **options):
    """A TrainConfig field with the help text (and argparse options) of its command-line flag."""
    if isinstance(default, dict):
        return field(default_factory=dict, metadata={"help": help, **options})
    return field(default=default, metadata={"help": help, **options})


@dataclass
class TrainConfig:
    """Every setting of a training run. `python -m tinysqueeze train --help` lists these fields as flags."""
    model: str = setting("squeezenet1_1", "a name from `models`")
    model_args: dict = setting({}, "JSON object of model arguments, for squeezenet_meta: "
                                   "'{\"sr\": 0.25, \"bypass\": \"simple\"}'")
    data: str = setting("synthetic", "'synthetic' (no download) or a dataset folder")
    image_size: int = setting(64, f"training crop in pixels, at most {MAX_IMAGE_SIZE}", positive=True,
                              maximum=MAX_IMAGE_SIZE)
    epochs: int = setting(10, "epochs to train", positive=True)
    batch_size: int = setting(64, "images per step", positive=True)
    optimizer: str = setting("lars", "lars (SGD with momentum and a learning rate per layer scaled to its size; "
                                     "You et al. 2017), sgd (the paper's plain SGD, one rate for all) or adam",
                             choices=list(RECIPES))
    lr: float | None = setting(None, "base learning rate (default: the optimizer's, RECIPES)")
    momentum: float = setting(0.9, "SGD momentum (Adam's beta1)")
    weight_decay: float | None = setting(None, "L2 weight decay (default: the optimizer's)")
    schedule: str = setting("poly", "learning-rate decay after warm-up (poly: linear to zero, the paper's)",
                            choices=["poly", "cosine", "constant"])
    warmup_epochs: float | None = setting(None, "linear warm-up length in epochs (default: the optimizer's)")
    class_margin: float = setting(3.0, "start conv10's bias so every class scores this many standard "
                                       "deviations above zero on the first batch (0 keeps torchvision's start)")
    dtype: str = setting("float32", "precision of the whole run (float64 is slower, for checking that "
                                    "rounding decides nothing)", choices=["float32", "float64"])
    seed: int = setting(0, "seed of everything random: weights, shuffle, crops, dropout")
    out: str = setting("runs/default", "run folder")
    synthetic_train: int = setting(SYNTHETIC_SIZES[0], f"synthetic training images, at most {MAX_SYNTHETIC:,}",
                                   positive=True, maximum=MAX_SYNTHETIC)
    synthetic_val: int = setting(SYNTHETIC_SIZES[1], f"synthetic validation images, at most {MAX_SYNTHETIC:,}",
                                 positive=True, maximum=MAX_SYNTHETIC)
    layers: str = setting("", "a folder of your own layers, the course's assignments (e.g. assignments): "
                              "train a network made of them; each file must pass `check` first")
    accumulate: int = setting(1, "compute each batch in this many slices, one after another (gradient "
                                 "accumulation: the same step in less memory)", positive=True)
    allreduce: str = setting("mpi", "under mpiexec: how the processes sum their gradients, mpi (MPI's own "
                                    "Allreduce) or ring (distributed/ring.py, written from first principles)",
                             choices=["mpi", "ring"])

    def __post_init__(self):
        if self.optimizer not in RECIPES:
            raise ValueError(f"optimizer must be one of {', '.join(RECIPES)}, got {self.optimizer!r}")
        for name, value in RECIPES[self.optimizer].items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def validate(self) -> None:
        if not str(self.out).strip():
            raise ValueError("--out is empty: name the run's folder (e.g. runs/mine)")
        reserved = sorted(set(self.model_args) & RESERVED_MODEL_ARGS) if isinstance(
            self.model_args, dict) else []
        if reserved:
            raise ValueError(f"--model-args may not set {', '.join(reserved)}: those have flags of their own "
                             "(the classes come from the data; --seed)")
        if self.epochs <= 0 or self.batch_size <= 0 or not MIN_IMAGE_SIZE <= self.image_size <= MAX_IMAGE_SIZE:
            raise ValueError(f"epochs and batch_size must be positive and image_size from {MIN_IMAGE_SIZE} to "
                             f"{MAX_IMAGE_SIZE}, got "
                             f"epochs={self.epochs}, batch_size={self.batch_size}, image_size={self.image_size}")
        for name in ("synthetic_train", "synthetic_val"):
            if not 0 < getattr(self, name) <= MAX_SYNTHETIC:
                raise ValueError(f"{name} must be from 1 to {MAX_SYNTHETIC:,}, got {getattr(self, name)}")
        if self.allreduce not in ("mpi", "ring"):
            raise ValueError(f"allreduce must be mpi or ring, got {self.allreduce!r}")
        if not 1 <= self.accumulate <= self.batch_size:
            raise ValueError(f"accumulate must be from 1 to the batch size ({self.batch_size}), got {self.accumulate}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.warmup_epochs > self.epochs:
            raise ValueError(f"warmup_epochs ({self.warmup_epochs:g}) is longer than the run ({self.epochs} epochs): "
                             "the learning rate would never reach its base value")
        for name in ("lr", "weight_decay", "warmup_epochs", "class_margin", "momentum"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0) or (name == "lr" and value == 0):
                raise ValueError(f"{name} must be a finite number, {'positive' if name == 'lr' else '>= 0'}; "
                                 f"got {value}")

    def to_argv(self) -> list[str]:
        """The `train` flags that give exactly this config (a sweep's job lines for a cluster): every
        setting, defaults included, so that a saved line means the same run if a default changes."""
        argv = []
        for f in fields(self):
            value = getattr(self, f.name)
            argv += [f"--{f.name.replace('_', '-')}", json.dumps(value) if isinstance(value, dict) else str(value)]
        return argv

    @classmethod
    def from_json(cls, path, **changes) -> "TrainConfig":
        """The config saved in `path` (a run's config.json, or one written by hand: fields left out keep
        their defaults), with `changes` applied. Refuses unknown settings, naming them."""
        path = Path(path)
        try:
            saved = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"--config: no file {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
            raise ValueError(f"--config: {path} is not a JSON file of settings ({error})") from None
        if not isinstance(saved, dict):
            raise ValueError(f"--config: {path} must hold a JSON object of settings, like a run's config.json")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(f"--config: {path} has unknown settings {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        kinds = {f.name: f.type for f in fields(cls)}
        wrong = [f"{k}={v!r}"[:80] for k, v in saved.items() if not of_its_type(v, kinds[k])]
        if wrong:
            raise ValueError(f"--config: {path} has settings of the wrong kind: {', '.join(wrong)} (each as in a "
                             "run's config.json: numbers, text, or an object for model_args)")
        if changes.get("optimizer", saved.get("optimizer")) != saved.get("optimizer"):
            for name in RECIPES.get(changes["optimizer"], {}):   # another optimizer brings its own recipe, unless typed
                saved.pop(name, None)
        return cls(**dict(saved, **changes))


# What --resume may change; everything else must match the run. How a batch is computed (in slices, by how
# many processes, summed how) changes its step only by rounding.
RESUMABLE_CHANGES = ("epochs", "out", "accumulate", "allreduce")


def of_its_type(value, annotation: str) -> bool:
    """Is a saved setting of its field's kind ("int", "float", "float | None", "str", "dict")?"""
    kinds = {"int": (int,), "float": (int, float), "float | None": (int, float, type(None)), "str": (str,),
             "dict": (dict,)}[str(annotation)]
    return isinstance(value, kinds) and not isinstance(value, bool)


def continued_config(given: TrainConfig, saved: dict, explicit: set[str] | None, progress: bool,
                     where="its checkpoint") -> TrainConfig:
    """The settings of a resumed run: the saved ones, with --epochs grown if asked. Refuses any other
    change, naming it. explicit: the settings the user typed (None: all of `given`'s, as from Python)."""
    changes = [f"--{f.name.replace('_', '-')} {getattr(given, f.name)} (the run has {saved[f.name]})"
               for f in fields(TrainConfig)
               if f.name not in RESUMABLE_CHANGES and f.name in saved and (explicit is None or f.name in explicit)
               and getattr(given, f.name) != saved[f.name]]
    wrong = [f"{f.name}={saved[f.name]!r}"[:80] for f in fields(TrainConfig) if f.name in saved
             and not of_its_type(saved[f.name], f.type)]
    if wrong:
        raise ValueError(f"--resume: the settings saved in {where} are damaged ({', '.join(wrong)}: not of their "
                         f"kind); it cannot be continued")
    if changes:
        raise ValueError(f"--resume continues {given.out} as it was started; these settings differ: "
                         f"{'; '.join(changes)}. Only --epochs may grow. Drop them, or start a new run "
                         "with another --out")
    if given.epochs < saved["epochs"]:
        raise ValueError(f"--resume: --epochs {given.epochs} is fewer than the run's {saved['epochs']}; "
                         "only --epochs may grow")
    if given.epochs > saved["epochs"] and progress:
        print(f"resuming {given.out} for {given.epochs} epochs instead of {saved['epochs']}: the "
              "learning-rate schedule is recomputed for the new length from here on", flush=True)
    saved = dict(saved, epochs=given.epochs, out=given.out)
    for name in ("accumulate", "allreduce"):                 # how a batch is computed: changed when asked
        if explicit is None or name in explicit:
            saved[name] = getattr(given, name)
    config = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
    config.validate()
    return config
