"""Deep Compression end to end: prune -> (fine-tune) -> share weights by k-means -> (fine-tune the
centroids) -> Huffman-code into a `.tsq` file, with the size of every stage, layer by layer.

Sizes follow Deep Compression's accounting: fp32 dense = 4 bytes a weight; pruned = each kept
weight as a 4-byte value plus a 4-bit relative index; quantized = each entry (fillers included) as a
`bits`-bit code plus a 4-bit gap, plus the codebook; Huffman = the actual bytes in the file.
Biases stay float32 throughout.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .prune import check_density, prunable, prune
from .quantize import SharedWeights, check_bits
from .tsq import sparse_entries, write_tsq

ALEXNET_FP32_BYTES = 61_100_840 * 4


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


def compress_weights(model, density: float, bits: int, policy: str = "paper") -> SharedWeights:
    """Prunes `model` in place to `density` (per-layer densities by `policy`, see prune.py) and shares
    its weights (bits per code); returns the codebooks."""
    check_density(density)
    check_bits(bits)
    prune(model, density, policy)
    return SharedWeights(model, bits, [name for name, _ in prunable(model)])


def save_compressed(path, model, shared: SharedWeights, model_name: str, density: float, bits: int) -> list[LayerSize]:
    """Writes the .tsq file and returns the per-layer size table."""
    params = dict(model.named_parameters())
    names = {id(p): n for n, p in params.items()}
    sparse = {names[id(w)]: (cb.data, codes) for w, cb, codes in shared.entries}
    raw = {n: p.data for n, p in params.items() if n not in sparse}
    header = {"model": model_name, "num_classes": int(model.num_classes), "bits": bits, "density": density}
    written = write_tsq(path, header, sparse, raw)
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
    lines.append(f"file: {huff:,} bytes = {huff / 1e6:.3f} MB; {dense / huff:.1f}x smaller than the fp32 model "
                 f"({dense / 1e6:.2f} MB), {ALEXNET_FP32_BYTES / huff:.0f}x smaller than AlexNet's "
                 f"{ALEXNET_FP32_BYTES / 1e6:.0f} MB")
    return "\n".join(lines)
