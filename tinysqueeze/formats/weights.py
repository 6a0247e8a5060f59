"""Weights in and out: `.npz` of our own, and PyTorch `.pth` files read without PyTorch.

`save_weights(model_or_state_dict, path)` writes an `.npz` keyed by state_dict names
(`features.0.weight`, ...). `load_weights(path)` reads any weights file tinysqueeze knows and
decides by content, not by the file name:

- a zip archive holding `.npy` members: our `.npz` (or a training checkpoint: its `model.*` arrays);
- a zip archive holding `<name>/data.pkl`: PyTorch's format since 1.6 (`torch.save`);
- a `.tsq` file (magic `TSQZ`): a compressed network, decoded to dense arrays (formats/tsq.py);
- a pickle stream that starts with PyTorch's magic number: the legacy format of PyTorch < 1.6,
  in which torchvision's published SqueezeNet weights (`squeezenet1_1-b8a52dc0.pth`) are stored.

A `.pth` file is pickled Python. Unpickling runs whatever the file names, so it is never done
blindly here: `RestrictedUnpickler` accepts only the handful of names a state_dict of tensors uses
(an OrderedDict, `torch._utils._rebuild_tensor_v2`, storage types) and rebuilds every tensor as a
NumPy array straight from the raw bytes of its storage (little-endian, or big where the file says so).

A file is data, never trusted: whatever its pickle calls, nests or claims, `load_weights` gives a
ValueError naming the file (and the tensor), before allocating more than the file can hold -- a stored
array its own bytes, a deflated one deflate's ratio, all arrays together `MAX_ARRAY_BYTES` (2 GiB); the
tensors of a `.pth` no more than their storages (views and zero strides may add `VIEW_SLACK`, 64 MiB).
"""
from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
import zipfile
from pathlib import Path

import numpy as np

from .atomic import written_atomically
from .checkpoint import (MAX_ARRAY_BYTES, ZIP_ERRORS, check_npz, check_zip_sizes, checkpoint_weights,
                         refuse_unusable_weights)
from .tsq import is_tsq, read_tsq

# PyTorch storage class name -> NumPy dtype
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
TORCH_PROTOCOL_VERSION = 1001


def save_weights(model_or_state_dict, path) -> Path:
    """Writes the weights as an uncompressed `.npz` (one array per state_dict key); returns the path.

    Written to a temporary file first and renamed, so an interrupted save never leaves half a file.
    """
    state = model_or_state_dict.state_dict() if hasattr(model_or_state_dict, "state_dict") else model_or_state_dict
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in state.items()})
    return path


def load_weights(path) -> "collections.OrderedDict[str, np.ndarray]":
    """Reads a weights file of any known kind (by content) -> OrderedDict name -> array.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for one that is
    corrupt, truncated or of an unknown kind, and (naming the tensor) for weights that are not finite
    real numbers: NaN, infinite or complex values are refused, never loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        state = _load_any(path)
    except ValueError as error:
        if str(path) in str(error):
            raise
        raise ValueError(f"{path} could not be read as weights: {error}") from None
    except (pickle.UnpicklingError, RecursionError, OverflowError, *ZIP_ERRORS) as error:
        raise ValueError(f"{path} could not be read as weights: {type(error).__name__}: {error}") from None
    refuse_unusable_weights(state, path)
    return state


def _load_any(path: Path):
    if is_tsq(path):
        return collections.OrderedDict(read_tsq(path)[0])
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(n.endswith("data.pkl") for n in names):
                check_zip_sizes(archive, path)
                return _load_torch_zip(archive, names)
        if names and all(n.endswith(".npy") for n in names):
            check_npz(path)
            with np.load(path, allow_pickle=False) as data:
                if "meta" in data.files:  # a training checkpoint: its weights are the model.* arrays
                    return checkpoint_weights(data)
                return collections.OrderedDict((k, data[k]) for k in data.files)
        raise ValueError(f"{path} is a zip archive, but neither an .npz of weights nor a PyTorch checkpoint")
    if head.startswith(b"\x80"):  # a pickle stream (protocol 2+): PyTorch's legacy format
        return _load_torch_legacy(path)
    raise ValueError(f"{path} is not a weights file tinysqueeze knows (.npz, .tsq, PyTorch .pth)")


# --------------------------------------------------------------------------- PyTorch, no PyTorch
class _Sealed:
    """What the reader makes while unpickling (a storage, its type, a tensor's arguments): a pickle may
    not set its fields (the BUILD opcode: a storage whose dtype is "evil"), so what the reader checked
    when it made the object is what the object holds."""

    def __setstate__(self, state):
        raise pickle.UnpicklingError(f"the pickle sets the fields of a {type(self).__name__.strip('_').lower()} "
                                     f"(to {_short(state)}): not a PyTorch state_dict")


class _Storage(_Sealed):
    """Stands for a PyTorch storage while unpickling: its dtype, key, and (later) its bytes."""

    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = np.dtype(dtype), str(key), int(numel)
        self.array = None  # filled in from the file's raw bytes


class _StorageType(_Sealed):
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


class _Tensor(_Sealed):
    """What `_rebuild_tensor_v2(storage, offset, size, stride, ...)` left: its arguments as the file gave
    them, checked only when the tensor is made (`_tensor_view`), where its name is known."""

    def __init__(self, args):
        self.args = args


def _rebuild_tensor_v2(*args):
    return _Tensor(args)


def _rebuild_parameter(data=None, *_):
    return data


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch state_dict and nothing else: any other global is refused by name."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.file, self.storages = file, storages

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weights file holds only tensors")

    def load(self):
        """The unpickled object. What the pickle calls, builds or nests wrongly (an unhashable key,
        OrderedDict(5), a storage type called) is an UnpicklingError, never another exception."""
        check_pickle_lengths(self.file)
        try:
            return super().load()
        except (TypeError, AttributeError, IndexError, RecursionError, OverflowError) as error:
            raise pickle.UnpicklingError(f"not a PyTorch state_dict: its pickle fails ({type(error).__name__}: "
                                         f"{str(error)[:200]})") from None

    def persistent_load(self, saved_id):
        if not (isinstance(saved_id, tuple) and len(saved_id) >= 5):
            raise pickle.UnpicklingError(f"unsupported persistent id {_short(saved_id)} in a PyTorch file (expected "
                                         "('storage', type, key, location, size))")
        kind = saved_id[0].decode(errors="replace") if isinstance(saved_id[0], bytes) else saved_id[0]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {_short(kind)} in a PyTorch file")
        storage_type, key, _location, numel = saved_id[1:5]
        if not isinstance(key, str):
            raise pickle.UnpicklingError(f"a storage's key is {_short(key)}, not text")
        if not isinstance(storage_type, _StorageType) or not _whole(numel) or numel < 0:
            raise pickle.UnpicklingError(f"storage {key!r} has no known type or a bad element count {_short(numel)}")
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise pickle.UnpicklingError("storage views (legacy shared storages) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, key, numel)
        return self.storages[key]


MAX_TENSOR_DIMS = 8
VIEW_SLACK = 64 * 2 ** 20  # tensors may take this much more than their storages (views of one storage, zero strides)
MAX_NESTING = 8          # a state_dict is a dict of tensors, perhaps inside a dict or two ("state_dict": ...)


def _short(value) -> str:
    text = repr(value) if not isinstance(value, (dict, list, tuple)) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _tensor_view(tensor: _Tensor, name: str, budget: list) -> np.ndarray:
    """A copy of the tensor (offset, size, stride) of its storage, after proving every element it
    reads lies inside the storage and that it fits the budget (the bytes still allowed for the file's
    tensors: a zero stride can make a huge tensor of one element). A crafted file must get an
    error naming the tensor, never a read outside the buffer (as_strided trusts its arguments blindly),
    a MemoryError or an overflow."""
    args = tensor.args
    storage = args[0] if args else None
    if not isinstance(storage, _Storage) or len(args) < 4:
        raise ValueError(f"tensor {name!r}: expected (storage, offset, sizes, strides, ...), got {len(args)} "
                         f"arguments{'' if isinstance(storage, _Storage) else ' and no storage'}")
    offset, size, stride = args[1:4]
    where = f"tensor {name!r} (storage {storage.key})"
    if not (_whole(offset) and isinstance(size, tuple) and isinstance(stride, tuple)
            and all(_whole(v) for v in (*size, *stride))):
        raise ValueError(f"{where}: offset, sizes and strides must be a whole number and two tuples of them, got "
                         f"{_short(offset)}, {_short(size)}, {_short(stride)}")
    if len(size) != len(stride) or len(size) > MAX_TENSOR_DIMS:
        raise ValueError(f"{where}: {len(size)} sizes and {len(stride)} strides (at most {MAX_TENSOR_DIMS} "
                         "dimensions, one stride per size)")
    if offset < 0 or any(v < 0 for v in size) or any(v < 0 for v in stride):
        raise ValueError(f"{where}: negative offset, size or stride ({offset}, {size}, {stride})")
    base = storage.array
    if base is None:
        raise ValueError(f"{where}: the file holds no data for its storage")
    item = base.dtype.itemsize
    nbytes = math.prod(size) * item
    if max(size, default=0) > MAX_ARRAY_BYTES:
        raise ValueError(f"{where}: a size of {max(size)} is over the limit of {MAX_ARRAY_BYTES} (2 GiB) for the "
                         "arrays of one weights file")
    if nbytes > budget[0]:
        raise ValueError(f"{where}: sizes {size} make {nbytes} bytes, over the limit: a file's tensors may take "
                         f"no more than their storages ({budget[1]} bytes) or 64 MiB, whichever is more "
                         f"({budget[0]} bytes left)")
    budget[0] -= nbytes
    if nbytes == 0:
        return np.zeros(size, dtype=base.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= base.size:
        raise ValueError(f"{where}: sizes {size} with strides {stride} from offset {offset} reach element "
                         f"{last}, but the storage holds {base.size}")
    strides = [st * item if n > 1 else 0 for n, st in zip(size, stride)]   # a length-1 axis never steps
    view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=strides)
    return view.copy()


def _materialise(obj, budget: list, name: str = "", depth: int = 0):
    """Turns the tensors left by unpickling (_Tensor) into arrays; dicts keyed by text, nested a little.
    budget: [bytes left for the tensors, bytes of the storages]."""
    if isinstance(obj, _Tensor):
        return _tensor_view(obj, name, budget)
    if isinstance(obj, dict):
        if depth >= MAX_NESTING:
            raise ValueError(f"the PyTorch file's dicts nest deeper than {MAX_NESTING} levels (at {name[:60]!r}...): "
                             "not a state_dict")
        for k in obj:
            if not isinstance(k, str):
                raise ValueError(f"the PyTorch file's state_dict has a key {_short(k)} that is not text")
        return collections.OrderedDict((k, _materialise(v, budget, f"{name}.{k}" if name else k, depth + 1))
                                       for k, v in obj.items())
    return obj


def _storage_bytes(raw: bytes, storage, where: str, byteorder: str = "<") -> np.ndarray:
    """The storage's elements from its raw bytes, which must be exactly numel * itemsize long, stored
    with `byteorder` ("<" little-endian, as PyTorch writes on every common CPU, or ">" big-endian);
    -> an array in this machine's byte order."""
    expected = storage.numel * storage.dtype.itemsize
    if storage.numel < 0 or len(raw) != expected:
        raise ValueError(f"{where}: storage {storage.key} should hold {storage.numel} elements "
                         f"({expected} bytes), the file has {len(raw)} bytes for it")
    stored = np.frombuffer(raw, dtype=storage.dtype.newbyteorder(byteorder))
    return stored if stored.dtype.isnative else stored.astype(storage.dtype)


def _zip_byteorder(archive: zipfile.ZipFile, prefix: str, names: list[str]) -> str:
    """The byte order of a zip-format .pth's storages: its `byteorder` member says "little" or "big"
    (files written before PyTorch 1.12 have none and are little-endian)."""
    member = f"{prefix}byteorder"
    if member not in names:
        return "<"
    text = archive.read(member)[:16]
    orders = {b"little": "<", b"big": ">"}
    if text not in orders:
        raise ValueError(f"the PyTorch file's byte order ({member}) is {text[:16]!r}, expected 'little' or 'big'")
    return orders[text]


def _legacy_byteorder(system_info, path) -> str:
    """The byte order a legacy (< 1.6) .pth records in its system information: {"little_endian": bool, ...}."""
    little = system_info.get("little_endian", True) if isinstance(system_info, dict) else None
    if not isinstance(little, bool):
        raise ValueError(f"{path}: its system information does not say the byte order (little_endian: "
                         f"{_short(little)}), expected True or False")
    return "<" if little else ">"


def _state_dict_of(obj, storages: dict) -> "collections.OrderedDict[str, np.ndarray]":
    held = sum(s.array.nbytes for s in storages.values() if s.array is not None)
    state = _materialise(obj, [max(held, VIEW_SLACK), held])
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError("the PyTorch file does not hold a state_dict (a dict of tensors)")
    return collections.OrderedDict((k, v) for k, v in state.items())


def _load_torch_zip(archive: zipfile.ZipFile, names: list[str]):
    pkl = next(n for n in names if n.endswith("data.pkl"))
    prefix = pkl[: -len("data.pkl")]
    storages: dict = {}
    obj = RestrictedUnpickler(io.BytesIO(archive.read(pkl)), storages).load()     # sizes checked: check_zip_sizes
    byteorder = _zip_byteorder(archive, prefix, names)
    for key, storage in storages.items():
        member = f"{prefix}data/{key}"
        if member not in names:
            raise ValueError(f"the PyTorch file has no data for storage {key} ({member})")
        if archive.getinfo(member).file_size != storage.numel * storage.dtype.itemsize:
            raise ValueError(f"storage {key} should hold {storage.numel} elements, its member {member} has "
                             f"{archive.getinfo(member).file_size} bytes")
        storage.array = _storage_bytes(archive.read(member), storage, "the PyTorch file", byteorder)
    return _state_dict_of(obj, storages)


def _load_torch_legacy(path: Path):
    """PyTorch < 1.6: magic number, protocol, system info, the pickled object, the storage keys,
    then each storage as an int64 element count followed by its raw bytes."""
    with io.BytesIO(path.read_bytes()) as f:    # (a file object would allocate any length a pickle declares)
        # one unpickler per pickle: an unpickler may read ahead, so none is reused after another ran
        if _load_plain(f) != TORCH_MAGIC_NUMBER:
            raise ValueError(f"{path} starts with a pickle but is not a PyTorch file (wrong magic number)")
        if _load_plain(f) != TORCH_PROTOCOL_VERSION:
            raise ValueError(f"{path}: unsupported PyTorch protocol version")
        byteorder = _legacy_byteorder(_load_plain(f), path)  # system info: byte order and type sizes
        storages: dict = {}
        obj = RestrictedUnpickler(f, storages).load()
        keys = _load_plain(f)
        if not isinstance(keys, list) or any(not isinstance(key, str) or key not in storages for key in keys):
            raise ValueError(f"{path}: the list of storage keys does not match the tensors")
        remaining = path.stat().st_size
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel or numel * storage.dtype.itemsize > remaining:
                raise ValueError(f"{path}: storage {key} claims {numel} elements (its tensors say "
                                 f"{storage.numel}); the file is truncated or inconsistent")
            storage.array = _storage_bytes(f.read(numel * storage.dtype.itemsize), storage, str(path), byteorder)
    return _state_dict_of(obj, storages)


def check_pickle_lengths(f: io.BytesIO) -> None:
    """Reads the next pickle's opcodes (pickletools) without building anything, then rewinds: a length the
    pickle declares (bytes, text, a frame) must be there. The unpickler allocates a declared length before
    reading it, so a 9-byte opcode saying 2^40 bytes would be a MemoryError; here it is an error naming it."""
    start = f.tell()
    try:
        for _ in pickletools.genops(f):
            pass
    except (ValueError, EOFError) as error:
        raise pickle.UnpicklingError(f"the pickle is damaged or truncated ({str(error)[:120]})") from None
    f.seek(start)


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the plain values around a legacy file's object (numbers, a dict, a list of keys)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_plain(f):
    try:
        check_pickle_lengths(f)
        return _NoGlobalsUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, RecursionError,
            OverflowError) as error:
        raise ValueError(f"not a readable PyTorch file: {error}") from None


def strip_module_prefix(state: dict) -> dict:
    """Drops the `module.` prefix that nn.DataParallel checkpoints carry, so they load too."""
    if state and all(k.startswith("module.") for k in state):
        return collections.OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state
