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


def encode(symbols: np.ndarray, lengths: dict[int, int], chunk: int = 1 << 20) -> tuple[bytes, int]:
    """symbols -> (bytes, number of bits). Bits are packed most significant first.

    Symbol by symbol this is: for s in symbols: write the `length` bits of codes[s], highest first.
    The same, a million symbols at a time in NumPy (`symbol_bits`), so that a layer of 50 million
    weights takes seconds, not minutes.
    """
    codes = canonical_codes(lengths)
    table_size = max(codes, default=-1) + 1
    code_of = np.zeros(table_size, dtype=np.int64)
    length_of = np.zeros(table_size, dtype=np.int64)
    for symbol, (code, length) in codes.items():
        code_of[symbol], length_of[symbol] = code, length
    symbols = np.asarray(symbols, dtype=np.int64).ravel()
    bits = [symbol_bits(code_of[part], length_of[part]) for part in np.split(symbols, range(chunk, len(symbols), chunk))]
    bits = np.concatenate(bits) if bits else np.zeros(0, dtype=np.uint8)
    return np.packbits(bits).tobytes(), len(bits)


def symbol_bits(codes: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """codes, lengths: (n,) -> the codes' bits one after another, highest first: (lengths.sum(),) uint8.

    Row i of a (n, longest) table holds code i's bits aligned right (bit k is code >> (longest-1-k));
    of each row, only its last lengths[i] bits are the code's."""
    longest = int(lengths.max(initial=0))
    shifts = np.arange(longest - 1, -1, -1)                          # (longest,)
    table = ((codes[:, None] >> shifts) & 1).astype(np.uint8)        # (n, longest)
    used = shifts[None, :] < lengths[:, None]                        # (n, longest): the code's own bits
    return table[used]


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
