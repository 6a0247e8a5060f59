"""Deep Compression end to end (Han et al. 2016; SqueezeNet section 4), the one pipeline that the
`compress` command, `docs/experiments/compression.py` and lesson 17 all call:

    prune -> fine-tune the kept weights -> share weights by k-means -> fine-tune the centroids
          -> Huffman-code into a `.tsq` file

Fine-tuning and the accuracy after each stage need data (a training and a validation DataLoader);
without it the pipeline still prunes and shares, which is all the size accounting needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import nn
from ..evaluation.evaluate import evaluate
from ..formats.tsq import write_tsq
from .finetune import finetune_pruned, finetune_shared
from .prune import check_density, prunable, prune
from .quantize import SharedWeights, check_bits
from .sizes import LayerSize, layer_sizes


@dataclass
class Stage:
    """The accuracy after one stage of the pipeline."""
    label: str
    top1: float
    top5: float


@dataclass
class Compressed:
    model: nn.Module              # pruned and shared, in place
    shared: SharedWeights         # the codebooks and each weight's code
    density: float
    bits: int
    stages: list[Stage] = field(default_factory=list)   # empty without validation data


def deep_compress(model: nn.Module, density: float, bits: int, policy: str = "paper", train=None, val=None,
                  finetune_epochs: int = 0, centroid_epochs: int | None = None, lr: float = 1e-4,
                  progress: bool = True, report=None) -> Compressed:
    """Prunes `model` in place to `density`, fine-tunes, shares its weights with 2^bits centroids and
    fine-tunes those.

    train, val: DataLoaders (or None). finetune_epochs: epochs after pruning (Adam, `lr`, pruned
    weights held at zero); centroid_epochs: after sharing (default: finetune_epochs).
    report(stage): called with each Stage as it is measured (the command line prints them).
    """
    check_density(density)
    check_bits(bits)
    centroid_epochs = finetune_epochs if centroid_epochs is None else centroid_epochs
    if (finetune_epochs or centroid_epochs) and train is None:
        raise ValueError("fine-tuning needs training data (--data)")
    result = Compressed(model, None, density, bits)

    def measure(label: str) -> None:
        if val is not None:
            scores = evaluate(model, val, model.num_classes, progress=progress)
            result.stages.append(Stage(label, scores["top1"], scores["top5"]))
            if report:
                report(result.stages[-1])

    measure("uncompressed")
    masks = prune(model, density, policy)
    measure(f"pruned to {100 * density:.0f}% density ({policy})")
    if finetune_epochs:
        finetune_pruned(model, masks, train, finetune_epochs, lr, progress)
        measure("pruned + fine-tuned")
    result.shared = SharedWeights(model, bits, [name for name, _ in prunable(model)])
    measure(f"+ {bits}-bit weight sharing")
    if centroid_epochs:
        finetune_shared(model, result.shared, train, centroid_epochs, lr, progress)
        measure("+ centroids fine-tuned")
    return result


def save_compressed(path, compressed: Compressed, model_name: str, model_args: dict | None = None) -> list[LayerSize]:
    """Writes the `.tsq` file (formats/tsq.py) and returns the size of every layer at every stage."""
    model, shared = compressed.model, compressed.shared
    params = dict(model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    sparse = {names[id(w)]: (cb.data, codes) for w, cb, codes in shared.entries}
    raw = {n: p.data for n, p in params.items() if n not in sparse}
    header = {"model": model_name, "num_classes": int(model.num_classes), "bits": compressed.bits,
              "density": compressed.density}
    if model_args:
        header["model_args"] = model_args
    written = write_tsq(path, header, sparse, raw)
    return layer_sizes(sparse, raw, compressed.bits, written)
