"""The `.tsq` file: a pruned, quantized, Huffman-coded network, byte by byte (lesson 17).

    offset  size  what
    0       4     magic b"TSQZ"
    4       1     format version (1)
    5       4     H: length of the JSON header (uint32, little-endian)
    9       H     JSON header: model name, classes, bits, density, and for every array its name,
                  shape and kind ("sparse" or "raw") with the byte sizes of its blobs, in file order
    ...           blobs, in header order. For a sparse (pruned + quantized) weight:
                    codebook      2^bits float32 (entry 0 is 0.0: pruned weights)
                    code lengths  2^bits uint8   Huffman length of each code (0: unused)
                    gap lengths   16 uint8       Huffman length of each index gap 0..15
                    codes         Huffman bit stream of the entries' codes
                    gaps          Huffman bit stream of the entries' gaps
                  For a raw array (biases): its float32 values.
    end-4   4     CRC-32 of every byte before it: a truncated or damaged file is refused

Entries (Deep Compression's relative sparse index): the kept weights in flattened order, each stored
as (code, gap) with gap = position - previous position - 1. A gap over 15 is bridged by filler
entries (code 0, gap 15) that only move the position on by 16. Loading rebuilds exactly the weights
`codebook[code]` the compressor produced: bit-identical.

The header is checked before anything is allocated (`check_header`): a crafted one, its CRC-32 made
right, gets a ValueError naming the limit it breaks -- at most MAX_TOTAL_ELEMENTS weights in all (a
pruned layer's zeros take no bytes, so only this bounds what a small file decodes to), and no more
entries than their bit streams can code -- never a MemoryError.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from .atomic import write_bytes_atomically
from .checkpoint import non_finite_count, refuse_unusable_weights
from .huffman import code_lengths, decode, encode

MAGIC = b"TSQZ"
VERSION = 1
MAX_GAP = 15
MAX_BITS = 8          # a weight's code is one byte (uint8): at most 2^8 shared values per layer


def sparse_entries(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """flat codes (0 = pruned) -> (entry codes, entry gaps), fillers included.

    Entry by entry: the gap to each kept weight is the count of pruned weights before it; a gap over
    MAX_GAP first emits fillers (code 0, gap MAX_GAP, standing for MAX_GAP + 1 positions) until what
    is left fits. Here for all entries at once: entry i gets gap // (MAX_GAP + 1) fillers before it
    and keeps the remainder."""
    positions = np.flatnonzero(codes)
    gaps = np.diff(positions, prepend=-1) - 1                       # pruned weights before each kept one
    fillers = gaps // (MAX_GAP + 1)
    slot = np.arange(len(positions)) + np.cumsum(fillers)           # where each kept weight's entry goes
    entry_codes = np.zeros(len(positions) + int(fillers.sum()), dtype=np.int64)
    entry_gaps = np.full(len(entry_codes), MAX_GAP, dtype=np.int64)  # every filler's gap
    entry_codes[slot] = codes[positions]
    entry_gaps[slot] = gaps % (MAX_GAP + 1)
    return entry_codes, entry_gaps


def dense_codes(entry_codes: np.ndarray, entry_gaps: np.ndarray, size: int) -> np.ndarray:
    """The inverse of sparse_entries: -> flat codes of `size` entries."""
    codes = np.zeros(size, dtype=np.uint8)
    positions = np.cumsum(entry_gaps + 1) - 1
    if len(positions) and positions[-1] >= size:
        raise ValueError("sparse index points past the end of its layer")
    codes[positions] = entry_codes
    return codes


def _lengths_table(symbols: np.ndarray, n: int) -> np.ndarray:
    counts = np.bincount(symbols, minlength=n)
    lengths = code_lengths({s: int(c) for s, c in enumerate(counts)})
    table = np.zeros(n, dtype=np.uint8)
    for s, length in lengths.items():
        table[s] = length
    return table


def write_tsq(path, header: dict, sparse: dict, raw: dict) -> dict:
    """sparse: name -> (codebook, codes) ; raw: name -> float array. Returns per-array byte counts."""
    bits = header["bits"]
    if not _whole(bits, 1, MAX_BITS):
        raise ValueError(f"bits must be a whole number from 1 to {MAX_BITS} (a code is one byte), got {bits!r}")
    n_codes = 2 ** bits
    arrays, blobs, sizes = [], [], {}
    for name, (codebook, codes) in sparse.items():
        entry_codes, entry_gaps = sparse_entries(codes.reshape(-1))
        code_table = _lengths_table(entry_codes, n_codes)
        gap_table = _lengths_table(entry_gaps, MAX_GAP + 1)
        code_bytes, code_bits = encode(entry_codes, {s: int(v) for s, v in enumerate(code_table) if v})
        gap_bytes, gap_bits = encode(entry_gaps, {s: int(v) for s, v in enumerate(gap_table) if v})
        parts = [np.asarray(codebook, np.float32).tobytes(), code_table.tobytes(), gap_table.tobytes(), code_bytes,
                 gap_bytes]
        arrays.append({"name": name, "kind": "sparse", "shape": list(codes.shape), "entries": len(entry_codes),
                       "code_bits": code_bits, "gap_bits": gap_bits, "sizes": [len(p) for p in parts]})
        blobs += parts
        sizes[name] = sum(len(p) for p in parts)
    for name, values in raw.items():
        data = np.asarray(values, np.float32).tobytes()
        arrays.append({"name": name, "kind": "raw", "shape": list(np.shape(values)), "sizes": [len(data)]})
        blobs.append(data)
        sizes[name] = len(data)
    head = json.dumps(dict(header, arrays=arrays), separators=(",", ":")).encode()
    body = MAGIC + struct.pack("<BI", VERSION, len(head)) + head + b"".join(blobs)
    body += struct.pack("<I", zlib.crc32(body))
    path = Path(path)
    write_bytes_atomically(path, body)
    sizes["_header"] = len(head) + 13  # magic, version, length, CRC-32
    return sizes


def is_tsq(path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == MAGIC


MAX_ELEMENTS = 2 ** 28     # per array: 268 million weights (AlexNet has 61 million in all)
MAX_TOTAL_ELEMENTS = 2 ** 27   # all arrays together: 134 million weights, twice AlexNet (a pruned layer's
                               # zeros take no bytes, so only this bounds what a small file decodes to)
MAX_DIMS = 8


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def check_header(header, blob_bytes: int, path) -> None:
    """Refuses a header that does not describe arrays this file can hold, before anything is
    allocated: a crafted header (its CRC-32 can be made right) must give a clear error, never a
    MemoryError or a TypeError. blob_bytes: the bytes between the header and the CRC."""
    def bad(what):
        raise ValueError(f"{path}: bad .tsq header: {what}")

    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        bad("expected an object with a list of arrays")
    if not isinstance(header.get("model", ""), str):
        bad(f"model must be a model's name, got {str(header.get('model'))[:60]!r}")
    model_args = header.get("model_args", {})
    if not (isinstance(model_args, dict) and all(isinstance(k, str) for k in model_args)):
        bad(f"model_args must be an object of named settings, got {str(model_args)[:60]!r}")
    if not _whole(header.get("bits"), 1, MAX_BITS):
        bad(f"bits must be a whole number from 1 to {MAX_BITS}, got {header.get('bits')!r}")
    n_codes = 2 ** header["bits"]
    total = weights = 0
    for k, entry in enumerate(header["arrays"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            bad(f"array {k} has no name")
        name, shape, sizes = entry["name"], entry.get("shape"), entry.get("sizes")
        if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(_whole(n, 0, MAX_ELEMENTS) for n in shape)):
            bad(f"{name}: shape must be a list of at most {MAX_DIMS} whole numbers, got {shape!r}")
        elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if elements > MAX_ELEMENTS:
            bad(f"{name}: shape {shape} has {elements} elements, more than {MAX_ELEMENTS}")
        weights += elements
        if weights > MAX_TOTAL_ELEMENTS:
            bad(f"its arrays up to {name} hold {weights} weights, over the limit of {MAX_TOTAL_ELEMENTS} for one "
                ".tsq (twice AlexNet's 61 million)")
        kind = entry.get("kind")
        expected_parts = {"raw": 1, "sparse": 5}.get(kind)
        if expected_parts is None:
            bad(f"{name}: kind must be 'raw' or 'sparse', got {kind!r}")
        if not (isinstance(sizes, list) and len(sizes) == expected_parts and all(_whole(n, 0, blob_bytes) for n in sizes)):
            bad(f"{name}: sizes must be {expected_parts} byte counts within the file, got {sizes!r}")
        total += sum(sizes)
        if kind == "raw" and sizes[0] != 4 * elements:
            bad(f"{name}: {elements} float32 values need {4 * elements} bytes, the header says {sizes[0]}")
        if kind == "sparse":
            if sizes[:3] != [4 * n_codes, n_codes, MAX_GAP + 1]:
                bad(f"{name}: codebook and tables must take {[4 * n_codes, n_codes, MAX_GAP + 1]} bytes, got {sizes[:3]}")
            most_entries = elements + elements // (MAX_GAP + 1) + 1    # every weight kept, plus fillers
            if not _whole(entry.get("entries"), 0, most_entries):
                bad(f"{name}: entries must be a whole number up to {most_entries}, got {entry.get('entries')!r}")
            for bits_key, size in (("code_bits", sizes[3]), ("gap_bits", sizes[4])):
                if not _whole(entry.get(bits_key), 0, 8 * size):
                    bad(f"{name}: {bits_key} must be a whole number up to {8 * size}, got {entry.get(bits_key)!r}")
                if entry["entries"] > entry[bits_key]:      # every entry's code and gap take a bit at least
                    bad(f"{name}: {entry['entries']} entries cannot fit in {bits_key} = {entry[bits_key]} bits")
    if total != blob_bytes:
        bad(f"the arrays take {total} bytes, the file holds {blob_bytes}")


def read_tsq(path) -> tuple[dict, dict]:
    """-> (state: name -> float32 array, header). Refuses damaged, truncated or foreign files."""
    data = Path(path).read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path} is not a .tsq file (no TSQZ magic)")
    if len(data) < 13 or struct.unpack("<I", data[-4:])[0] != zlib.crc32(data[:-4]):
        raise ValueError(f"{path} is damaged or truncated (CRC-32 mismatch)")
    version, head_len = struct.unpack("<BI", data[4:9])
    if version != VERSION:
        raise ValueError(f"{path}: .tsq version {version} is not supported (expected {VERSION})")
    try:
        header = json.loads(data[9 : 9 + head_len])
    except (ValueError, RecursionError) as error:     # RecursionError: brackets nested thousands deep
        raise ValueError(f"{path}: the header is not valid JSON ({type(error).__name__}: {error})") from None
    offset = 9 + head_len
    check_header(header, len(data) - 4 - offset, path)
    n_codes = 2 ** int(header["bits"])
    state = {}
    for entry in header["arrays"]:
        parts = []
        for size in entry["sizes"]:
            parts.append(data[offset : offset + size])
            offset += size
        shape = tuple(entry["shape"])
        if entry["kind"] == "raw":
            state[entry["name"]] = np.frombuffer(parts[0], dtype=np.float32).reshape(shape).copy()
            refuse_unusable_weights({entry["name"]: state[entry["name"]]}, path)
            continue
        codebook = np.frombuffer(parts[0], dtype=np.float32)
        if not np.isfinite(codebook).all():     # even an entry no weight uses: the file is not what was written
            raise ValueError(f"{path}: {entry['name']}: its codebook has {non_finite_count(codebook)}: refusing to "
                             "load non-finite weights")
        if codebook[0] != 0.0:                  # code 0 is a pruned weight: it must decode to zero
            raise ValueError(f"{path}: {entry['name']}: its codebook's entry 0 (the pruned weights) is "
                             f"{float(codebook[0])!r}, not 0.0: the file is damaged")
        code_table, gap_table = np.frombuffer(parts[1], np.uint8), np.frombuffer(parts[2], np.uint8)
        codes = decode(parts[3], entry["code_bits"], entry["entries"],
                       {s: int(v) for s, v in enumerate(code_table) if v})
        gaps = decode(parts[4], entry["gap_bits"], entry["entries"], {s: int(v) for s, v in enumerate(gap_table) if v})
        if codes.size and codes.max() >= n_codes:
            raise ValueError(f"{path}: a code of {entry['name']} is outside its codebook")
        flat = dense_codes(codes, gaps, int(np.prod(shape)))
        state[entry["name"]] = codebook[flat].reshape(shape)
    if offset != len(data) - 4:
        raise ValueError(f"{path}: {len(data) - 4 - offset} unexpected bytes after the last array")
    return state, header
