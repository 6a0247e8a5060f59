"""What each layer of a network sends forward and receives back, before any step: the activation
statistics of lesson 11b.

`record_layers` runs one forward and one backward pass (softmax cross-entropy, as a training step
does, without the step) and keeps, for each layer it watches, a copy of the layer's output and of
the gradient of the loss with respect to that output. `squeezenet_layers` names the layers worth
watching in a SqueezeNet (conv1, each Fire module, conv10); `plot_layer_histograms` draws the
histograms of lesson 11b's figure.

The recording works like PyTorch's forward and backward hooks: each watched module's `forward` and
`backward` are wrapped, for the one pass only, by functions that copy what goes through them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn


@dataclass
class LayerRecord:
    """One layer's signals in one forward-backward pass.

    name: the module's dotted name ("features.3"); label: a short name for tables ("fire2").
    activation: a copy of the module's output (in the layout the module works in: inside
                SqueezeNet's features that is (C, N, H, W), nn/fast/layers.py).
    gradient: a copy of dL/d(activation), the same shape, as the backward pass handed it down.
    """
    name: str
    label: str
    activation: np.ndarray
    gradient: np.ndarray


def squeezenet_layers(model: nn.Module) -> dict[str, str]:
    """{dotted name: label} of a SqueezeNet's layers in forward order: conv1 after its ReLU
    ("features.1"), each Fire module's output (fire2 ... fire9) and conv10's output before its ReLU
    ("classifier.1")."""
    from ..models.fire import Fire

    layers = {"features.1": "conv1"}
    fires = [name for name, module in model.features.named_modules("features") if isinstance(module, Fire)]
    layers.update({name: f"fire{k}" for k, name in enumerate(fires, start=2)})
    layers["classifier.1"] = "conv10"
    return layers


def record_layers(model: nn.Module, x: np.ndarray, y: np.ndarray, layers: dict[str, str],
                  train_mode: bool = True) -> tuple[float, list[LayerRecord]]:
    """One forward and one backward pass of `model` on (x, y) with softmax cross-entropy, recording
    each layer named in `layers` ({dotted name: label}). No weight changes; the parameters' .grad
    are zeroed first and hold this pass's gradients afterwards.

    x: (N, ...) inputs, y: (N,) class indices. train_mode: run as a training step does (dropout on);
    False: dropout off (the Dropout layers in eval mode, the identity), every other layer in training
    mode, which keeps what backward needs.
    -> (the loss, [LayerRecord] in forward order)."""
    modules = dict(model.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f"record_layers: the model has no module named {', '.join(missing)}")
    outputs, gradients = {}, {}

    def watch(name: str, module: nn.Module) -> None:
        forward, backward = module.forward, module.backward

        def recording_forward(inp, **options):              # options: FireCNHW's out=
            out = forward(inp, **options)
            outputs[name] = np.array(out, copy=True)        # a copy: an in-place ReLU above may overwrite it
            return out

        def recording_backward(dout):
            gradients[name] = np.array(dout, copy=True)
            return backward(dout)
        module.forward, module.backward = recording_forward, recording_backward

    loss_fn = nn.SoftmaxCrossEntropy()
    was_training = model.training
    if train_mode:
        model.train()
    else:
        model.eval()                                         # dropout off; backward still runs
    model.zero_grad()
    try:
        for name in layers:
            watch(name, modules[name])
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    finally:
        for name in layers:                                  # back to the class's own methods
            for method in ("forward", "backward"):
                if method in vars(modules[name]):
                    delattr(modules[name], method)
        model.train(was_training)
    return float(loss), [LayerRecord(name, label, outputs[name], gradients[name]) for name, label in layers.items()]


def plot_layer_histograms(runs: dict[str, list[LayerRecord]], path, title: str = ""):
    """One row per run (e.g. per initialisation), two panels: the activations and the gradients of
    every recorded layer, one histogram line per layer, light (first layer) to dark (last).

    The x axis is log10 |value|, with exact zeros left out (a ReLU's output is zero about half the
    time): a layer whose values are 1000 times smaller sits 3 units further left, so layers whose
    scales differ by orders of magnitude can be compared on one axis. Each histogram is scaled to
    peak at 1 (their shapes and places matter here, not their heights), from at most ~200,000 of
    the layer's values. -> path (a PNG)."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(runs), 2, figsize=(11, 2.6 * len(runs)), squeeze=False, sharex="col")
    for (label, records), row in zip(runs.items(), axes):
        colours = plt.cm.viridis_r(np.linspace(0.15, 1.0, len(records)))
        for ax, kind in zip(row, ("activation", "gradient")):
            for record, colour in zip(records, colours):
                values = np.abs(getattr(record, kind)).ravel()
                values = values[:: max(1, values.size // 200_000)]         # a histogram needs no more
                counts, edges = np.histogram(np.log10(values[values > 0].astype(np.float64)), bins=60)
                ax.stairs(counts / max(1, counts.max()), edges, color=colour, lw=1.2, label=record.label)
            ax.set_title(f"{label}: {kind}s", fontsize=9)
            ax.set_yticks([])
            ax.grid(alpha=0.3)
        row[1].legend(fontsize=6, ncol=2, loc="upper left")
    axes[-1][0].set_xlabel("log10 |activation| (zeros left out)")
    axes[-1][1].set_xlabel("log10 |dL/d activation| (zeros left out)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
