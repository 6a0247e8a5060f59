"""A SqueezeNet made of the learner's own layers: what `train --layers assignments` trains.

    classes = your_classes("assignments")      # grades each file first; refuses one that fails
    model = with_your_layers(get_model("squeezenet1_1", num_classes=10, fast=False), classes)

`with_your_layers` puts, in place of every tinysqueeze layer of the model, the learner's class of
the same name, holding the very same Parameters (so the weights, the state_dict keys and the
checkpoints are exactly tinysqueeze's, and `evaluate` or `predict` read them as usual). The
learner's layers take PyTorch's (N, C, H, W), so the model must be built of the plain layers
(fast=False), not with the batch inside (lesson 14): slower, and every number is theirs.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from .. import nn
from ..models import Fire
from .assignments import BY_NAME, grade, load_file

# What a SqueezeNet needs from the learner, and which assignment each class comes from.
SQUEEZENET_ASSIGNMENTS = ("conv", "pooling", "relu_dropout_concat", "loss", "fire")
REFERENCE = {"Linear": nn.Linear, "Conv2d": nn.Conv2d, "MaxPool2d": nn.MaxPool2d, "AvgPool2d": nn.AvgPool2d,
             "AdaptiveAvgPool2d": nn.AdaptiveAvgPool2d, "ReLU": nn.ReLU, "Dropout": nn.Dropout, "Concat": nn.Concat,
             "SoftmaxCrossEntropy": nn.SoftmaxCrossEntropy, "Fire": Fire}


def your_classes(folder, assignments=SQUEEZENET_ASSIGNMENTS, optional=("sgd", "linear")) -> dict[str, type]:
    """{"Conv2d": your Conv2d, ...} from the assignment files in `folder`, each graded first.

    Every assignment of `assignments` must be there and pass every check; an `optional` one is
    used when its file is there and passes, and left out otherwise. Raises ValueError naming each
    file that is missing or fails, and the command that says why."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--layers {folder}: no such folder (python -m tinysqueeze check writes the starting "
                         "files to assignments/)")
    classes, problems = {}, []
    for name in list(assignments) + list(optional):
        path = folder / f"{name}.py"
        if not path.is_file():
            if name in assignments:
                problems.append(f"{path} is missing")
            continue
        try:
            parts = grade(name, path)
        except ValueError as error:
            problems.append(str(error))
            continue
        failing = [p.name for p in parts if not p.passed]
        if failing:
            if name in assignments:
                problems.append(f"{path} does not pass yet ({', '.join(failing)}): "
                                f"python -m tinysqueeze check {name} --folder {shlex.quote(str(folder))} says why")
            continue
        module = load_file(path)
        classes.update({c: getattr(module, c) for c in BY_NAME[name].layers if hasattr(module, c)})
    if problems:
        raise ValueError("--layers: a network is trained only on layers that pass their checks:\n  "
                         + "\n  ".join(problems))
    return classes


def adopt(layer: nn.Module, cls: type) -> nn.Module:
    """`layer` as an instance of `cls` (the learner's subclass of its class): the same settings and
    the very same Parameter objects; `cls.__init__` is not run (it would draw new weights)."""
    new = object.__new__(cls)
    nn.Module.__init__(new)
    for name, value in vars(layer).items():
        if name not in ("_parameters", "_modules"):
            setattr(new, name, value)
    return new


def with_your_layers(model: nn.Module, classes: dict[str, type]) -> nn.Module:
    """Puts the learner's class in place of every layer of `model` that has one (at any depth).
    model: built of the plain (N, C, H, W) layers (get_model(..., fast=False)). -> model (changed in place)."""
    fast = [name for name, m in model.named_modules() if isinstance(m, (nn.CNHWSequential, nn.Conv2dSmallMaps))]
    if fast:
        raise ValueError(f"with_your_layers: {fast[0]} is a fast layer (batch inside); your layers take "
                         "(N, C, H, W): build the model with get_model(..., fast=False)")
    for name, child in list(model.named_children()):
        yours = classes.get(type(child).__name__) if REFERENCE.get(type(child).__name__) is type(child) else None
        if type(child) is nn.AdaptiveAvgPool2d and child.output_size != (1, 1):
            yours = None                                 # the assignment asks only for global pooling
        if yours is not None:
            child = adopt(child, yours)
            setattr(model, name, child)
        with_your_layers(child, classes)
    return model
