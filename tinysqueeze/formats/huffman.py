"""Huffman coding, by hand: frequent symbols get short codes, rare ones long codes, no code is the
prefix of another, so a bit stream decodes without separators.

`code_lengths(counts)` builds the tree with a heap (merge the two rarest subtrees until one is left;
a symbol's depth is its code length). `canonical_codes(lengths)` assigns codes from lengths alone
(shorter codes first, then by symbol), so a file stores only the lengths. `encode` / `decode` turn
symbols into bytes and back. Deep Compression applies this to the cluster indices and the index gaps.
"""
from __future__ import annotations

import heapq

import numpy as np


def code_lengths(counts: dict[int, int]) -> dict[int, int]:
    """symbol -> code length in bits, for the symbols with a non-zero count."""
    live = {s: c for s, c in counts.items() if c > 0}
    if not live:
        return {}
    if len(live) == 1:  # one symbol still needs one bit per occurrence
        return {next(iter(live)): 1}
    heap = [(count, i, [symbol]) for i, (symbol, count) in enumerate(sorted(live.items()))]
    heapq.heapify(heap)
    depth = dict.fromkeys(live, 0)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, s1 = heapq.heappop(heap)
        c2, _, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            depth[s] += 1  # every symbol under the merged node sinks one level
        heapq.heappush(heap, (c1 + c2, tie, s1 + s2))
        tie += 1
    return depth


def canonical_codes(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code as an integer, length): canonical Huffman, ordered by (length, symbol)."""
    codes, code, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= length - previous
        codes[symbol] = (code, length)
        code += 1
        previous = length
    return codes


def encode(symbols: np.ndarray, lengths: dict[int, int]) -> tuple[bytes, int]:
    """symbols -> (bytes, number of bits). Bits are packed most significant first."""
    codes = canonical_codes(lengths)
    bits = []
    for s in np.asarray(symbols).tolist():
        code, length = codes[s]
        bits.extend((code >> (length - 1 - k)) & 1 for k in range(length))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes(), len(bits)


def decode(data: bytes, n_bits: int, count: int, lengths: dict[int, int]) -> np.ndarray:
    """The inverse of `encode`: `count` symbols from the first n_bits bits of data."""
    table = {(code, length): symbol for symbol, (code, length) in canonical_codes(lengths).items()}
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))[:n_bits]
    if len(bits) < n_bits:
        raise ValueError(f"Huffman stream truncated: {len(bits)} of {n_bits} bits")
    out = np.empty(count, dtype=np.int64)
    code = length = k = 0
    max_length = max(lengths.values(), default=0)
    for bit in bits.tolist():
        code, length = (code << 1) | bit, length + 1
        symbol = table.get((code, length))
        if symbol is not None:
            if k == count:
                raise ValueError("Huffman stream holds more symbols than announced")
            out[k] = symbol
            k += 1
            code = length = 0
        elif length > max_length:
            raise ValueError("corrupt Huffman stream: no code matches")
    if k != count:
        raise ValueError(f"Huffman stream ended after {k} of {count} symbols")
    return out
