"""Models by name, so every command can say `--model squeezenet1_1`."""
from __future__ import annotations

from functools import partial

from .alexnet import alexnet
from .design_space import squeezenet_from_metaparameters
from .squeezenet import squeezenet1_0, squeezenet1_1

MODELS = {
    "squeezenet1_0": squeezenet1_0,
    "squeezenet1_1": squeezenet1_1,
    "squeezenet1_0_simple_bypass": partial(squeezenet1_0, bypass="simple"),
    "squeezenet1_0_complex_bypass": partial(squeezenet1_0, bypass="complex"),
    "squeezenet1_1_simple_bypass": partial(squeezenet1_1, bypass="simple"),
    "alexnet": alexnet,
    "squeezenet_meta": squeezenet_from_metaparameters,
}

DESCRIPTIONS = {
    "squeezenet1_0": "SqueezeNet v1.0 (paper's Table 1, torchvision squeezenet1_0)",
    "squeezenet1_1": "SqueezeNet v1.1 (torchvision squeezenet1_1: 2.4x less compute)",
    "squeezenet1_0_simple_bypass": "v1.0 + identity bypass around fire3/5/7/9 (paper section 6)",
    "squeezenet1_0_complex_bypass": "v1.0 + identity and 1x1-conv bypasses around every fire (section 6)",
    "squeezenet1_1_simple_bypass": "v1.1 + identity bypass around fire3/5/7/9",
    "alexnet": "AlexNet (torchvision alexnet), the baseline of '50x fewer parameters'",
    "squeezenet_meta": "any point of the design space: model args base_e, incr_e, pct_3x3, freq, sr, bypass, version",
}


def model_names() -> list[str]:
    return list(MODELS)


# What a file's or a user's model arguments may never set: get_model's own arguments (the class count
# comes from the data or the weights, the seed from --seed; image_grad is for training to choose).
RESERVED_MODEL_ARGS = frozenset({"num_classes", "seed", "image_grad"})


def get_model(name: str, num_classes: int = 1000, seed: int = 0, image_grad: bool = True, fast: bool = True,
              **model_args):
    """Builds the model `name` (see `model_names()`); an unknown name lists the known ones.

    model_args go to the builder: e.g. get_model("squeezenet_meta", sr=0.25, bypass="simple").
    image_grad=False builds the first convolution, the one that sees the images, with
    input_grad=False: training needs no gradient with respect to the images (PyTorch's
    input.requires_grad=False), so that layer skips computing it (W.T @ dY and col2im, most of its
    backward) and `model.backward` returns None. Training and the benchmark build models so; the
    gradient checker does not (it checks the images' gradient too).
    fast=False builds the network of the plain (N, C, H, W) layers instead of the batch-inside ones:
    the same weights and, to rounding, the same numbers (models/squeezenet.py).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    if model_args and name != "squeezenet_meta":
        raise ValueError(f"model {name!r} takes no model arguments (got {', '.join(model_args)}); "
                         "use squeezenet_meta for a point of the design space")
    reserved = sorted(set(model_args) & (RESERVED_MODEL_ARGS | {"fast"}))
    if reserved:
        raise ValueError(f"model arguments may not set {', '.join(reserved)}: those are get_model's own arguments "
                         "(--num-classes comes from the data, --seed)")
    if model_args.get("bypass") == "none":
        model_args["bypass"] = None
    try:
        return MODELS[name](num_classes=num_classes, seed=seed, image_grad=image_grad, fast=fast, **model_args)
    except TypeError as error:
        raise ValueError(f"bad model arguments for {name}: {error}") from None

