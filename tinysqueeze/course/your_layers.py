"""A SqueezeNet made of the learner's own layers: what `train --layers assignments` trains.

    classes = your_classes("assignments")      # grades each file first; refuses one that fails
    model = with_your_layers(get_model("squeezenet1_1", num_classes=10), classes)

`with_your_layers` puts, in place of every tinysqueeze layer of the model, the learner's class of
the same name, holding the very same Parameters (so the weights, the state_dict keys and the
checkpoints are exactly tinysqueeze's, and `evaluate` or `predict` read them as usual). The
learner's layers take PyTorch's (N, C, H, W), so the features run in that layout, not with the
batch inside (lesson 14): slower, and every number is theirs.
"""
from __future__ import annotations

from pathlib import Path

from .. import nn
from ..models import Fire
from ..nn.batch_inside import CNHWSequential, Conv2dCNHW, ConcatCNHW
from .assignments import BY_NAME, grade, load_file

# What a SqueezeNet needs from the learner, and which assignment each class comes from.
SQUEEZENET_ASSIGNMENTS = ("conv", "pooling", "relu_dropout_concat", "loss", "fire")
# A batch-inside layer is its plain layer, as far as the learner is concerned.
PLAIN = {Conv2dCNHW: nn.Conv2d, ConcatCNHW: nn.Concat}
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
                                f"python -m tinysqueeze check {name} says why")
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
    """Puts the learner's class in place of every layer of `model` that has one (at any depth), and
    runs the features in (N, C, H, W): each CNHWSequential becomes a plain Sequential of the same
    layers. -> model (changed in place)."""
    for name, child in list(model.named_children()):
        if isinstance(child, CNHWSequential):
            child = nn.Sequential(*child.children())
        plain = PLAIN.get(type(child), type(child))
        yours = classes.get(plain.__name__) if REFERENCE.get(plain.__name__) is plain else None
        if plain is nn.AdaptiveAvgPool2d and child.output_size != (1, 1):
            yours = None                                 # the assignment asks only for global pooling
        if yours is not None:
            child = adopt(child, yours)
        elif plain is not type(child):
            child = adopt(child, plain)                  # a batch-inside twin back to its plain layer
        with_your_layers(child, classes)
        setattr(model, name, child)
    return model
