"""Models by name, so every command can say `--model squeezenet1_1`."""
from __future__ import annotations

from functools import partial

from .alexnet import alexnet
from .squeezenet import squeezenet1_0, squeezenet1_1

MODELS = {
    "squeezenet1_0": squeezenet1_0,
    "squeezenet1_1": squeezenet1_1,
    "squeezenet1_0_simple_bypass": partial(squeezenet1_0, bypass="simple"),
    "squeezenet1_0_complex_bypass": partial(squeezenet1_0, bypass="complex"),
    "squeezenet1_1_simple_bypass": partial(squeezenet1_1, bypass="simple"),
    "alexnet": alexnet,
}

DESCRIPTIONS = {
    "squeezenet1_0": "SqueezeNet v1.0 (paper's Table 1, torchvision squeezenet1_0)",
    "squeezenet1_1": "SqueezeNet v1.1 (torchvision squeezenet1_1: 2.4x less compute)",
    "squeezenet1_0_simple_bypass": "v1.0 + identity bypass around fire3/5/7/9 (paper section 6)",
    "squeezenet1_0_complex_bypass": "v1.0 + identity and 1x1-conv bypasses around every fire (section 6)",
    "squeezenet1_1_simple_bypass": "v1.1 + identity bypass around fire3/5/7/9",
    "alexnet": "AlexNet (torchvision alexnet), the baseline of '50x fewer parameters'",
}


def model_names() -> list[str]:
    return list(MODELS)


def get_model(name: str, num_classes: int = 1000, seed: int = 0):
    """Builds the model `name` (see `model_names()`); an unknown name lists the known ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    return MODELS[name](num_classes=num_classes, seed=seed)
