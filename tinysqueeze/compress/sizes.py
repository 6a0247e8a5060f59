"""How many bytes a network takes at each stage of Deep Compression, layer by layer.

Deep Compression's accounting: fp32 dense = 4 bytes a weight; pruned = each kept weight as a
4-byte value plus a 4-bit relative index; quantized = each entry (fillers included) as a `bits`-bit
code plus a 4-bit gap, plus the codebook; Huffman = the actual bytes in the `.tsq` file. Biases
stay float32 throughout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..formats.tsq import sparse_entries
from ..models.size import ALEXNET_PARAMETERS, megabytes

ALEXNET_FP32_BYTES = ALEXNET_PARAMETERS * 4


@dataclass
class LayerSize:
    name: str
    weights: int
    kept: int
    entries: int
    bits: int
    dense_bytes: int
    pruned_bytes: float
    quantized_bytes: float
    huffman_bytes: int


def layer_sizes(sparse: dict, raw: dict, bits: int, written: dict) -> list[LayerSize]:
    """sparse: name -> (codebook, codes) of the shared weights; raw: name -> float32 array (biases);
    written: name -> bytes in the file (and "_header") -> one LayerSize per array, then the header's."""
    rows = []
    for name, (codebook, codes) in sparse.items():
        size = codes.size
        kept = int(np.count_nonzero(codes))
        entries = len(sparse_entries(codes.reshape(-1))[0])
        rows.append(LayerSize(name, size, kept, entries, bits, 4 * size, kept * 4.5,
                              entries * (bits + 4) / 8 + 4 * codebook.size, written[name]))
    for name, values in raw.items():
        n = int(np.size(values))
        rows.append(LayerSize(name, n, n, n, 32, 4 * n, 4 * n, 4 * n, written[name]))
    rows.append(LayerSize("(header, tables, CRC)", 0, 0, 0, 0, 0, 0, 0, written["_header"]))
    return rows


def format_sizes(rows: list[LayerSize], title: str) -> str:
    lines = [title, f"{'layer':<34} {'weights':>9} {'kept':>6} {'bits':>4} {'fp32 B':>10} {'pruned B':>10} "
                    f"{'quant. B':>10} {'Huffman B':>10}"]
    for r in rows:
        if r.weights == 0:
            lines.append(f"{r.name:<34} {'':>9} {'':>6} {'':>4} {'':>10} {'':>10} {'':>10} {r.huffman_bytes:>10,}")
            continue
        density = f"{100 * r.kept / r.weights:.0f}%"
        lines.append(f"{r.name:<34} {r.weights:>9,} {density:>6} {r.bits:>4} {r.dense_bytes:>10,} "
                     f"{r.pruned_bytes:>10,.0f} {r.quantized_bytes:>10,.0f} {r.huffman_bytes:>10,}")
    dense = sum(r.dense_bytes for r in rows)
    pruned = sum(r.pruned_bytes for r in rows)
    quant = sum(r.quantized_bytes for r in rows)
    huff = sum(r.huffman_bytes for r in rows)
    weights = sum(r.weights for r in rows)
    kept = sum(r.kept for r in rows if r.bits != 32)
    total_w = sum(r.weights for r in rows if r.bits != 32)
    lines.append(f"{'total':<34} {weights:>9,} {100 * kept / max(1, total_w):>5.1f}% {'':>4} {dense:>10,} "
                 f"{pruned:>10,.0f} {quant:>10,.0f} {huff:>10,}")
    lines.append(f"file: {huff:,} bytes = {megabytes(huff):.3f} MB; {dense / huff:.1f}x smaller than the fp32 model "
                 f"({megabytes(dense):.2f} MB), {ALEXNET_FP32_BYTES / huff:.0f}x smaller than AlexNet's "
                 f"{megabytes(ALEXNET_FP32_BYTES):.0f} MB")
    return "\n".join(lines)
