"""Weights in and out: `.npz` of our own, and PyTorch `.pth` files read without PyTorch.

`save_weights(model_or_state_dict, path)` writes an `.npz` keyed by state_dict names
(`features.0.weight`, ...). `load_weights(path)` reads any weights file tinysqueeze knows and
decides by content, not by the file name:

- a zip archive holding `.npy` members: our `.npz` (or a training checkpoint: its `model.*` arrays);
- a zip archive holding `<name>/data.pkl`: PyTorch's format since 1.6 (`torch.save`);
- a `.tsq` file (magic `TSQZ`): a compressed network, decoded to dense arrays (compress/tsq.py);
- a pickle stream that starts with PyTorch's magic number: the legacy format of PyTorch < 1.6,
  in which torchvision's published SqueezeNet weights (`squeezenet1_1-b8a52dc0.pth`) are stored.

A `.pth` file is pickled Python. Unpickling runs whatever the file names, so it is never done
blindly here: `RestrictedUnpickler` accepts only the handful of names a state_dict of tensors uses
(an OrderedDict, `torch._utils._rebuild_tensor_v2`, storage types) and rebuilds every tensor as a
NumPy array straight from the raw little-endian bytes of its storage.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

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
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in state.items()})
    os.replace(tmp, path)
    return path


def load_weights(path) -> "collections.OrderedDict[str, np.ndarray]":
    """Reads a weights file of any known kind (by content) -> OrderedDict name -> array.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for one that is
    corrupt, truncated or of an unknown kind.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    try:
        return _load_any(path)
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, struct.error, OSError) as error:
        raise ValueError(f"{path} could not be read as weights: {error}") from None


def _load_any(path: Path):
    from .compress.tsq import is_tsq, read_tsq  # the compressed format (tinysqueeze/compress/tsq.py)

    if is_tsq(path):
        return collections.OrderedDict(read_tsq(path)[0])
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK"):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if any(n.endswith("data.pkl") for n in names):
                return _load_torch_zip(archive, names)
        if names and all(n.endswith(".npy") for n in names):
            with np.load(path, allow_pickle=False) as data:
                if "meta" in data.files:  # a training checkpoint: its weights are the model.* arrays
                    return checkpoint_weights(data)
                return collections.OrderedDict((k, data[k]) for k in data.files)
        raise ValueError(f"{path} is a zip archive, but neither an .npz of weights nor a PyTorch checkpoint")
    if head.startswith(b"\x80"):  # a pickle stream (protocol 2+): PyTorch's legacy format
        return _load_torch_legacy(path)
    raise ValueError(f"{path} is not a weights file tinysqueeze knows (.npz, .tsq, PyTorch .pth)")


CHECKPOINT_MODEL_PREFIX = "model."  # how checkpoint.py names the weights inside a training checkpoint


def checkpoint_weights(data) -> "collections.OrderedDict[str, np.ndarray]":
    """The model.* arrays of an opened training checkpoint, without their prefix."""
    n = len(CHECKPOINT_MODEL_PREFIX)
    return collections.OrderedDict((k[n:], data[k]) for k in data.files if k.startswith(CHECKPOINT_MODEL_PREFIX))


# --------------------------------------------------------------------------- PyTorch, no PyTorch
class _Storage:
    """Stands for a PyTorch storage while unpickling: its dtype, key, and (later) its bytes."""

    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel = np.dtype(dtype), str(key), int(numel)
        self.array = None  # filled in from the file's raw bytes


class _StorageType:
    def __init__(self, name):
        self.dtype = STORAGE_DTYPES[name]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return ("tensor", storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles a PyTorch state_dict and nothing else: any other global is refused by name."""

    ALLOWED = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    }

    def __init__(self, file, storages: dict):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weights file holds only tensors")

    def persistent_load(self, saved_id):
        kind = saved_id[0].decode() if isinstance(saved_id[0], bytes) else saved_id[0]
        if kind != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {kind!r} in a PyTorch file")
        storage_type, key, _location, numel = saved_id[1:5]
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise pickle.UnpicklingError("storage views (legacy shared storages) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, key, numel)
        return self.storages[key]


def _materialise(obj):
    """Turns the ("tensor", storage, offset, size, stride) tuples left by unpickling into arrays."""
    if isinstance(obj, tuple) and len(obj) == 5 and obj[0] == "tensor":
        _, storage, offset, size, stride = obj
        item = storage.dtype.itemsize
        base = storage.array
        if base is None:
            raise ValueError(f"the file holds no data for storage {storage.key}")
        view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=[s * item for s in stride])
        return view.copy()
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v)) for k, v in obj.items())
    return obj


def _state_dict_of(obj) -> "collections.OrderedDict[str, np.ndarray]":
    state = _materialise(obj)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, np.ndarray) for v in state.values()):
        raise ValueError("the PyTorch file does not hold a state_dict (a dict of tensors)")
    return collections.OrderedDict((k, v) for k, v in state.items())


def _load_torch_zip(archive: zipfile.ZipFile, names: list[str]):
    pkl = next(n for n in names if n.endswith("data.pkl"))
    prefix = pkl[: -len("data.pkl")]
    storages: dict = {}
    obj = RestrictedUnpickler(io.BytesIO(archive.read(pkl)), storages).load()
    for key, storage in storages.items():
        raw = archive.read(f"{prefix}data/{key}")
        storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=storage.numel)
    return _state_dict_of(obj)


def _load_torch_legacy(path: Path):
    """PyTorch < 1.6: magic number, protocol, system info, the pickled object, the storage keys,
    then each storage as an int64 element count followed by its raw bytes."""
    with open(path, "rb") as f:
        # one unpickler per pickle: an unpickler may read ahead, so none is reused after another ran
        if _load_plain(f) != TORCH_MAGIC_NUMBER:
            raise ValueError(f"{path} starts with a pickle but is not a PyTorch file (wrong magic number)")
        if _load_plain(f) != TORCH_PROTOCOL_VERSION:
            raise ValueError(f"{path}: unsupported PyTorch protocol version")
        _load_plain(f)  # system info: byte order and type sizes
        storages: dict = {}
        obj = RestrictedUnpickler(f, storages).load()
        keys = _load_plain(f)
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            raw = f.read(numel * storage.dtype.itemsize)
            if len(raw) != numel * storage.dtype.itemsize:
                raise ValueError(f"{path} is truncated (storage {key})")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return _state_dict_of(obj)


class _NoGlobalsUnpickler(pickle.Unpickler):
    """For the plain values around a legacy file's object (numbers, a dict, a list of keys)."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _load_plain(f):
    try:
        return _NoGlobalsUnpickler(f).load()
    except (pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"not a readable PyTorch file: {error}") from None


def strip_module_prefix(state: dict) -> dict:
    """Drops the `module.` prefix that nn.DataParallel checkpoints carry, so they load too."""
    if state and all(k.startswith("module.") for k in state):
        return collections.OrderedDict((k[len("module."):], v) for k, v in state.items())
    return state
