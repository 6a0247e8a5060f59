"""How good is a model on a dataset: loss, top-1, top-5, the confusion matrix, each class's recall,
and the classes that can never be predicted (lessons 11-12).

Used by training (every epoch's validation), the `evaluate` command and compression (the accuracy
after each stage).
"""
from __future__ import annotations

import math

import numpy as np
from tqdm import tqdm

from .. import nn


def topk_correct(logits: np.ndarray, labels: np.ndarray, k: int) -> int:
    """How many rows have their label among the k largest logits.

    logits: (N, C), labels: (N,)."""
    k = min(k, logits.shape[1])
    top = np.argpartition(-logits, k - 1, axis=1)[:, :k]
    return int((top == labels[:, None]).any(axis=1).sum())


def final_relu(model: nn.Module) -> nn.ReLU | None:
    """The ReLU right after the last layer with parameters, if there is one (SqueezeNet's after
    conv10); None for a network whose logits come straight out of a layer (AlexNet), whose scores
    may be negative and still win."""
    relu, seen_layer = None, False
    for module in model.modules():
        if module._parameters:
            relu, seen_layer = None, True
        elif isinstance(module, nn.ReLU) and seen_layer and relu is None:
            relu = module
    return relu


def silent_classes(max_scores: np.ndarray) -> np.ndarray:
    """Indices of the classes whose score was never above zero.

    max_scores: (C,) the largest logit each class reached over an epoch. SqueezeNet's logits come
    out of a ReLU (conv10 -> ReLU -> average pool): a class whose score is 0 on every image has a
    negative conv10 output everywhere, so its gradient is zero and it cannot learn again.
    """
    return np.flatnonzero(~(max_scores > 0))


def silent_classes_of(model: nn.Module, max_scores: np.ndarray) -> np.ndarray:
    """silent_classes, for a model whose scores pass a final ReLU; none for any other (AlexNet's
    scores may be negative and still win)."""
    return silent_classes(max_scores) if final_relu(model) is not None else np.array([], dtype=np.int64)


@nn.no_grad()                          # inference: no layer keeps anything for a backward
def evaluate(model: nn.Module, loader, num_classes: int, progress: bool = False, world=None) -> dict:
    """Loss, top-1, top-5, the confusion matrix (rows: true class, columns: predicted), each class's
    recall (the fraction of its images predicted as it) and the classes that never scored above zero.

    loader: a DataLoader; its epoch 0 is every image once (an evaluation loader does not shuffle).
    world: several processes (distributed/world.py), each evaluating its rows of every batch (the
    loader's rank): the counts are summed over them, so every process returns the same figures.
    """
    model.eval()
    loss_fn = nn.SoftmaxCrossEntropy()
    total_loss, top1, top5, n = 0.0, 0, 0, 0
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    max_scores = np.full(num_classes, -np.inf)
    params = model.parameters()
    dtype = params[0].data.dtype if params else np.float32      # the images in the model's precision
    for x, y in tqdm(loader.epoch(0), total=len(loader), desc="evaluating", disable=not progress, leave=False):
        if len(y) == 0:                                          # a last batch smaller than the processes
            continue
        with np.errstate(over="ignore", invalid="ignore"):       # overflow is checked just below
            logits = model(x.astype(dtype, copy=False))                   # (B, C)
        if not np.all(np.isfinite(logits)):
            raise ValueError(f"the network's outputs are not finite numbers (NaN or inf) on {int((~np.isfinite(logits)).any(axis=1).sum())} "
                             "of a batch's images: its weights or its normalisation overflow; no accuracy can be measured")
        total_loss += loss_fn(logits, y) * len(y)
        top1 += topk_correct(logits, y, 1)
        top5 += topk_correct(logits, y, 5)
        np.add.at(confusion, (y, logits.argmax(axis=1)), 1)
        max_scores = np.maximum(max_scores, logits.max(axis=0))
        n += len(y)
    if world is not None and world.size > 1:
        total_loss, top1, top5, n, confusion, max_scores = summed_over(world, total_loss, top1, top5, n, confusion,
                                                                       max_scores)
    recall = confusion.diagonal() / np.maximum(1, confusion.sum(axis=1))
    silent = silent_classes_of(model, max_scores)
    return {"loss": total_loss / n, "top1": top1 / n, "top5": top5 / n, "n": n, "confusion": confusion,
            "recall": recall, "silent": silent}


def summed_over(world, total_loss, top1, top5, n, confusion, max_scores):
    """Each process's counts -> the sums over all (the largest scores: the maximum), in two all-reduces."""
    counts = np.concatenate([[total_loss, top1, top5, n], confusion.reshape(-1)]).astype(np.float64)
    world.sum(counts)
    scores = np.ascontiguousarray(max_scores, dtype=np.float64).copy()
    world.max(scores)
    confusion = np.rint(counts[4:]).astype(np.int64).reshape(confusion.shape)
    return float(counts[0]), int(round(counts[1])), int(round(counts[2])), int(round(counts[3])), confusion, scores


def summary(result: dict, names: list[str]) -> dict:
    """evaluate's result as plain JSON values, classes by name (NaN loss -> null: JSON has no NaN)."""
    loss = result["loss"] if math.isfinite(result["loss"]) else None
    recall = {name: float(r) for name, r in zip(names, result["recall"])}
    return {"top1": result["top1"], "top5": result["top5"], "n": result["n"], "loss": loss,
            "loss_finite": loss is not None, "recall": recall,
            "never_predicted": [n for n, r in recall.items() if r == 0],
            "silent_classes": [names[k] for k in result["silent"]]}


def format_evaluation(report: dict, model_name: str) -> str:
    """The `evaluate` command's text: accuracy, each class's recall, where the confusion matrix is."""
    loss = "nan" if report["loss"] is None else f"{report['loss']:.4f}"
    lines = [f"{model_name} on {report['data']} ({report['split']}, {report['n']} images): top-1 "
             f"{100 * report['top1']:.2f}%  top-5 {100 * report['top5']:.2f}%  loss {loss}",
             "recall per class: " + ", ".join(f"{name} {100 * r:.0f}%" for name, r in report["recall"].items())]
    if report.get("confusion_png"):
        lines.append(f"confusion matrix: {report['confusion_png']}")
    return "\n".join(lines)
