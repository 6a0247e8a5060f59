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
NumPy array straight from the raw little-endian bytes of its storage.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from .atomic import written_atomically
from .checkpoint import checkpoint_weights, refuse_unusable_weights
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
    except (pickle.UnpicklingError, zipfile.BadZipFile, KeyError, EOFError, struct.error, OSError) as error:
        raise ValueError(f"{path} could not be read as weights: {error}") from None
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
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"storage {key!r} has no known type or a bad element count {numel!r}")
        if len(saved_id) > 5 and saved_id[5] is not None:
            raise pickle.UnpicklingError("storage views (legacy shared storages) are not supported")
        if key not in self.storages:
            self.storages[key] = _Storage(storage_type.dtype, key, numel)
        return self.storages[key]


MAX_TENSOR_DIMS = 8


def _tensor_view(storage, offset, size, stride, name: str) -> np.ndarray:
    """A copy of the tensor (offset, size, stride) of `storage`, after proving every element it
    reads lies inside the storage. A crafted file must get an error naming the tensor, never a read
    outside the buffer (as_strided trusts its arguments blindly)."""
    where = f"tensor {name!r} (storage {storage.key})"
    if not (isinstance(offset, int) and all(isinstance(v, int) for v in (*size, *stride))):
        raise ValueError(f"{where}: offset, sizes and strides must be whole numbers")
    if len(size) != len(stride) or len(size) > MAX_TENSOR_DIMS:
        raise ValueError(f"{where}: {len(size)} sizes and {len(stride)} strides (at most {MAX_TENSOR_DIMS} "
                         "dimensions, one stride per size)")
    if offset < 0 or any(v < 0 for v in size) or any(v < 0 for v in stride):
        raise ValueError(f"{where}: negative offset, size or stride ({offset}, {size}, {stride})")
    base = storage.array
    if base is None:
        raise ValueError(f"{where}: the file holds no data for its storage")
    if 0 in size:
        return np.zeros(size, dtype=base.dtype)
    last = offset + sum((n - 1) * st for n, st in zip(size, stride))
    if last >= base.size:
        raise ValueError(f"{where}: sizes {size} with strides {stride} from offset {offset} reach element "
                         f"{last}, but the storage holds {base.size}")
    item = base.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(base[offset:], shape=size, strides=[st * item for st in stride])
    return view.copy()


def _materialise(obj, name: str = ""):
    """Turns the ("tensor", storage, offset, size, stride) tuples left by unpickling into arrays."""
    if isinstance(obj, tuple) and len(obj) == 5 and obj[0] == "tensor":
        _, storage, offset, size, stride = obj
        return _tensor_view(storage, offset, size, stride, name)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _materialise(v, f"{name}.{k}" if name else str(k))) for k, v in obj.items())
    return obj


def _storage_bytes(raw: bytes, storage, where: str) -> np.ndarray:
    """The storage's elements from its raw bytes, which must be exactly numel * itemsize long."""
    expected = storage.numel * storage.dtype.itemsize
    if storage.numel < 0 or len(raw) != expected:
        raise ValueError(f"{where}: storage {storage.key} should hold {storage.numel} elements "
                         f"({expected} bytes), the file has {len(raw)} bytes for it")
    return np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))


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
        member = f"{prefix}data/{key}"
        if member not in names:
            raise ValueError(f"the PyTorch file has no data for storage {key} ({member})")
        if archive.getinfo(member).file_size != storage.numel * storage.dtype.itemsize:
            raise ValueError(f"storage {key} should hold {storage.numel} elements, its member {member} has "
                             f"{archive.getinfo(member).file_size} bytes")
        storage.array = _storage_bytes(archive.read(member), storage, "the PyTorch file")
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
        if not isinstance(keys, list) or any(key not in storages for key in keys):
            raise ValueError(f"{path}: the list of storage keys does not match the tensors")
        remaining = path.stat().st_size
        for key in keys:
            storage = storages[key]
            (numel,) = struct.unpack("<q", f.read(8))
            if numel != storage.numel or numel * storage.dtype.itemsize > remaining:
                raise ValueError(f"{path}: storage {key} claims {numel} elements (its tensors say "
                                 f"{storage.numel}); the file is truncated or inconsistent")
            storage.array = _storage_bytes(f.read(numel * storage.dtype.itemsize), storage, str(path))
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
