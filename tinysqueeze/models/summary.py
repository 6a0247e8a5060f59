"""The paper's Table 1 for any model: per layer the output size, filters, parameters and
multiply-accumulates (MACs), then totals, size and the ratio to AlexNet.

Shapes are not computed by hand: the model runs once on a zero image and each layer's output
shape is read off, so the table can never disagree with the code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..nn.fast.layers import to_cnhw, to_nchw
from .fire import Fire
from .size import ALEXNET_PARAMETERS, megabytes



@dataclass
class Row:
    name: str
    kind: str          # "7x7/2, 96" for a conv, "3x3/2" for a pool, "fire" ...
    output: tuple      # (H, W, C) as the paper writes it
    s1x1: int | None
    e1x1: int | None
    e3x3: int | None
    parameters: int
    macs: int


def conv_macs(conv: nn.Conv2d, output_hw: tuple) -> int:
    """Multiply-accumulates of one image through a convolution: F * C * KH * KW * H_out * W_out."""
    kh, kw = conv.kernel_size
    return conv.out_channels * conv.in_channels * kh * kw * output_hw[0] * output_hw[1]


def module_macs(module: nn.Module, x_shape: tuple, batch_inside: bool = False) -> tuple[np.ndarray, int]:
    """Runs `module` on zeros of x_shape (N, C, H, W) and returns (output, MACs per image) from its
    convs/linears. batch_inside: `module` is a layer of a CNHWSequential, so it is given (C, N, H, W)
    and its output is transposed back to (N, C, H, W)."""
    x = np.zeros(x_shape, dtype=np.float32)
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    inputs = {}                                  # id(conv) -> the shape of its input, seen as it runs

    def recording(conv):
        def forward(x, **options):               # options: FireCNHW's out=
            inputs[id(conv)] = x.shape
            return type(conv).forward(conv, x, **options)
        return forward
    for conv in convs:
        conv.forward = recording(conv)
    try:
        out = to_nchw(module(to_cnhw(x))) if batch_inside else module(x)
    finally:
        for conv in convs:
            del conv.forward                     # the class's own method shows through again
    macs = sum(conv_macs(m, m.output_shape(inputs[id(m)])[2:]) for m in convs)
    macs += sum(m.in_features * m.out_features for m in module.modules() if isinstance(m, nn.Linear))
    return out, macs


@nn.no_grad()
def table(model: nn.Module, image_size: int = 227) -> list[Row]:
    """One row per layer of `model.features` and `model.classifier` (ReLUs folded into their conv).

    The layers run one by one; those of a CNHWSequential (the batch inside) on (C, N, H, W) arrays."""
    model.eval()
    rows, shape, number = [], (1, 3, image_size, image_size), 0
    stages = [model.features]
    if hasattr(model, "avgpool"):
        stages.append(model.avgpool)
    stages.append(model.classifier)
    layers = [(m, isinstance(stage, nn.CNHWSequential))
              for stage in stages for m in (stage if isinstance(stage, nn.Sequential) else [stage])]
    for layer, inside in layers:
        if isinstance(layer, nn.Linear) and len(shape) != 2:
            shape = (shape[0], int(np.prod(shape[1:])))
        out, macs = module_macs(layer, shape, inside)
        params = layer.num_parameters()
        hwc = (out.shape[2], out.shape[3], out.shape[1]) if out.ndim == 4 else (1, 1, out.shape[1])
        s1 = e1 = e3 = None
        if isinstance(layer, nn.Conv2d):
            number += 1
            kh, kw = layer.kernel_size
            name, kind = f"conv{number}", f"{kh}x{kw}/{layer.stride}, {layer.out_channels}"
        elif isinstance(layer, Fire):
            number += 1
            name, kind = f"fire{number}", "fire" + (f" + {layer.bypass_kind} bypass" if layer.bypass_kind else "")
            s1, e1, e3 = layer.squeeze_channels, layer.e1, layer.e3
        elif isinstance(layer, nn.MaxPool2d):
            name, kind = f"maxpool{number}", f"{layer.kernel_size[0]}x{layer.kernel_size[1]}/{layer.stride}"
        elif isinstance(layer, nn.AdaptiveAvgPool2d):
            name = f"avgpool{number}"
            kind = "global" if layer.output_size == (1, 1) else f"to {layer.output_size[0]}x{layer.output_size[1]}"
        elif isinstance(layer, nn.Linear):
            number += 1
            name, kind = f"fc{number}", f"{layer.in_features} -> {layer.out_features}"
        elif isinstance(layer, nn.Dropout):
            name, kind = f"dropout{number}", f"p={layer.p}"
        else:
            shape = out.shape
            continue  # ReLU: folded into the layer before it
        rows.append(Row(name, kind, hwc, s1, e1, e3, params, macs))
        shape = out.shape
    return rows


def format_table(model: nn.Module, name: str, image_size: int = 227) -> str:
    rows = table(model, image_size)
    lines = [f"{name} at {image_size}x{image_size} input",
             f"{'layer':<11} {'kernel / kind':<18} {'output':>14} {'s1x1':>5} {'e1x1':>5} {'e3x3':>5} "
             f"{'parameters':>12} {'MACs':>15}"]
    blank = lambda v: "" if v is None else str(v)  # noqa: E731
    for r in rows:
        out = "x".join(str(v) for v in r.output)
        lines.append(f"{r.name:<11} {r.kind:<18} {out:>14} {blank(r.s1x1):>5} {blank(r.e1x1):>5} {blank(r.e3x3):>5} "
                     f"{r.parameters:>12,} {r.macs:>15,}")
    total_params = model.num_parameters()
    total_macs = sum(r.macs for r in rows)
    size = total_params * 4
    lines.append(f"{'total':<11} {'':<18} {'':>14} {'':>5} {'':>5} {'':>5} {total_params:>12,} {total_macs:>15,}")
    ratio = ALEXNET_PARAMETERS / total_params
    comparison = (f"{ratio:.1f}x fewer parameters than AlexNet ({ALEXNET_PARAMETERS:,})" if ratio >= 1
                  else f"{1 / ratio:.1f}x more parameters than AlexNet ({ALEXNET_PARAMETERS:,})")
    lines.append(f"size at 32 bits: {size:,} bytes = {megabytes(size):.2f} MB = {size / 2**20:.2f} MiB; "
                 + ("this is AlexNet" if total_params == ALEXNET_PARAMETERS else comparison))
    return "\n".join(lines)
