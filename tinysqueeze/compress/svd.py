"""Low-rank factorisation by SVD: one 1x1 convolution (or linear layer) becomes two thinner ones.

W (F, C) = U S V^T. Keeping the r largest singular values gives W ~ (U_r sqrt(S_r)) (sqrt(S_r) V_r^T):
a first layer C -> r and a second r -> F, with r (C + F) weights instead of C F. The rank is chosen
as the smallest r whose singular values keep `energy` of the sum of squares (the Frobenius norm).
It pays only below the break-even rank C F / (C + F): at or above it the two layers hold at least
as many weights as the one they replace, and `low_rank` refuses.
"""
from __future__ import annotations

import numpy as np

from .. import nn


def choose_rank(singular_values: np.ndarray, energy: float) -> int:
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1], got {energy}")
    kept = np.cumsum(singular_values**2) / np.sum(singular_values**2)
    return int(np.searchsorted(kept, energy - 1e-12) + 1)


def low_rank(layer, energy: float = 0.9):
    """layer: a 1x1 Conv2d (stride 1, no padding) or a Linear -> (Sequential of two layers, info)."""
    if isinstance(layer, nn.Conv2d):
        if not layer.is_pointwise:
            raise ValueError(f"low_rank factorises 1x1 convolutions and linear layers, got {layer!r}")
        w = layer.weight.data.reshape(layer.out_channels, layer.in_channels).astype(np.float64)
    elif isinstance(layer, nn.Linear):
        w = layer.weight.data.astype(np.float64)
    else:
        raise ValueError(f"low_rank factorises Conv2d (1x1) and Linear layers, got {type(layer).__name__}")
    f, c = w.shape
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    r = choose_rank(s, energy)
    if r * (c + f) >= c * f:
        raise ValueError(f"keeping {energy:g} of the energy of this {f}x{c} layer needs rank {r}, but any rank of "
                         f"at least C*F/(C+F) = {c * f / (c + f):.1f} gives two layers with at least as many "
                         f"weights ({r * (c + f):,}) as the one they replace ({c * f:,}): keep the layer, or ask "
                         "for less energy")
    first = np.sqrt(s[:r])[:, None] * vt[:r]                # (r, C)
    second = u[:, :r] * np.sqrt(s[:r])[None, :]             # (F, r)
    if isinstance(layer, nn.Conv2d):
        conv = type(layer)                                  # a batch-inside Conv2dCNHW gives two of its kind
        a, b = conv(c, r, 1, bias=False), conv(r, f, 1, bias=layer.bias is not None)
        a.weight.data = first.reshape(r, c, 1, 1).astype(np.float32)
        b.weight.data = second.reshape(f, r, 1, 1).astype(np.float32)
    else:
        a, b = nn.Linear(c, r, bias=False), nn.Linear(r, f, bias=layer.bias is not None)
        a.weight.data, b.weight.data = first.astype(np.float32), second.astype(np.float32)
    if layer.bias is not None:
        b.bias.data = layer.bias.data.copy()
    approx = second @ first
    info = {"rank": r, "full_rank": min(f, c), "params_before": f * c, "params_after": r * (c + f),
            "relative_error": float(np.linalg.norm(w - approx) / np.linalg.norm(w))}
    for m in (a, b):
        m.zero_grad()
    return nn.Sequential(a, b), info
