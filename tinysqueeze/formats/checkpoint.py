"""Training checkpoints: one `.npz` holding everything needed to continue a run exactly.

Keys: `model.<state_dict name>` (the weights), `optimizer.<k>` (momentum buffers), and `meta`, a
JSON document stored as bytes: the run's configuration, the epoch just finished, the best
validation top-1 so far, the dataset's class names and normalisation, and the state of every
random generator the model owns (dropout masks). No pickle anywhere: `np.load(allow_pickle=False)`.

Written to a temporary file and renamed into place, so a crash while saving leaves the previous
checkpoint whole.
"""
from __future__ import annotations

import collections
import json
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .atomic import written_atomically

CHECKPOINT_MODEL_PREFIX = "model."  # the weights inside a checkpoint: model.<state_dict name>

# What one weights file or checkpoint may unpack to, all its arrays together: 2 GiB (AlexNet's weights are
# 244 MB, a checkpoint of it with Adam's two moments 732 MB). A stored (uncompressed) array is bounded by
# the file's own size too; a deflated one by deflate's best ratio (1032:1) and by this limit.
MAX_ARRAY_BYTES = 2 ** 31
DEFLATE_MAX_RATIO = 1032
# What reading a damaged zip archive raises besides BadZipFile: a flipped bit in an entry's compression
# method (NotImplementedError) or flags (RuntimeError: "encrypted"), a damaged deflate stream (zlib.error).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, struct.error, KeyError,
              OSError)


def check_zip_sizes(archive: zipfile.ZipFile, path) -> None:
    """Refuses, before anything is unpacked, an archive whose entries would unpack to more than the file
    can hold: a stored entry larger than its bytes in the file, a deflated one beyond deflate's best ratio,
    all of them together beyond MAX_ARRAY_BYTES -- and entries no NumPy or PyTorch file has (encrypted,
    another compression method: a flipped bit). Raises ValueError naming the file, the entry and the limit."""
    file_size, total = Path(path).stat().st_size, 0
    for info in archive.infolist():
        where = f"{path}: its zip entry {info.filename!r}"
        if info.flag_bits & 0x1:
            raise ValueError(f"{where} is marked encrypted, which no NumPy or PyTorch file is: the file is damaged")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(f"{where} has compression method {info.compress_type}, which no NumPy or PyTorch "
                             "file uses (0: stored, 8: deflated): the file is damaged")
        if info.header_offset + info.compress_size > file_size:
            raise ValueError(f"{where} says it takes {info.compress_size} bytes from byte {info.header_offset}, "
                             f"but the file has {file_size}: it is truncated or damaged")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            raise ValueError(f"{where} is stored uncompressed in {info.compress_size} bytes but says it holds "
                             f"{info.file_size}: the file is damaged")
        if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > DEFLATE_MAX_RATIO * info.compress_size + 64:
            raise ValueError(f"{where} says it unpacks to {info.file_size} bytes from {info.compress_size}: more than "
                             f"deflate can ({DEFLATE_MAX_RATIO}:1): the file is damaged")
        total += info.file_size
        if total > MAX_ARRAY_BYTES:
            raise ValueError(f"{path}: its zip entries unpack to more than {MAX_ARRAY_BYTES} bytes (2 GiB; "
                             f"{info.filename!r} alone to {info.file_size}): over the limit for the arrays of one "
                             "weights file or checkpoint")


def check_npz(path) -> None:
    """Refuses an `.npz` that would make `np.load` allocate more than the file holds: each `.npy` entry's
    header (its shape and dtype, from which NumPy allocates the whole array before reading a byte) must
    describe exactly the bytes the entry holds, and the entries must pass `check_zip_sizes`. Every entry
    is opened, so one whose name was damaged in the zip's directory is refused even if never read (it
    would silently go missing). Python objects (pickled data) are refused: tinysqueeze never unpickles
    an `.npz`."""
    with zipfile.ZipFile(path) as archive:
        check_zip_sizes(archive, path)
        for info in archive.infolist():
            with archive.open(info) as f:      # opening checks the entry's own header (its name) too
                if not info.filename.endswith(".npy"):
                    continue
                version = np.lib.format.read_magic(f)
                readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
                if version not in readers:
                    raise ValueError(f"{path}: {info.filename} is an .npy of version {version}, which tinysqueeze "
                                     "does not read")
                shape, _, dtype = readers[version](f)
                header = f.tell()
            if dtype.hasobject:
                raise ValueError(f"{path}: {info.filename} holds Python objects (pickled data), not numbers: "
                                 "weights never do, and tinysqueeze never unpickles an .npz")
            need = math.prod(shape) * dtype.itemsize
            if header + need != info.file_size:
                raise ValueError(f"{path}: {info.filename} says it holds a {dtype} array of shape {shape} ({need} "
                                 f"bytes), but the entry has {info.file_size - header} bytes after its header: the "
                                 "file is damaged")


def refuse_unusable_weights(arrays: dict, where) -> None:
    """Refuses, naming the tensor, an array no network can use: one that is not real numbers (complex,
    text: NumPy would drop the imaginary part with a mere warning) or that holds NaN or infinite values
    (every output would be NaN, yet a command would rank, score or compress it). `where`: the file."""
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "biuf":
            raise ValueError(f"{where}: {name} holds {value.dtype} values: refusing to load weights that are not "
                             "real numbers")
        if value.dtype.kind in "biu" and name.rsplit(".", 1)[-1] in ("weight", "bias"):
            raise ValueError(f"{where}: {name} holds {value.dtype} values, not floating-point numbers: weights cast "
                             "to whole numbers (most become 0) are not the network's; refusing to load them")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{where}: {name} has {non_finite_count(value)}: refusing to load non-finite weights")


def non_finite_count(value: np.ndarray) -> str:
    """"3 NaN values", "1 infinite value", "1 NaN value and 2 infinite values"."""
    counts = [(int(np.isnan(value).sum()), "NaN"), (int(np.isinf(value).sum()), "infinite")]
    return " and ".join(f"{n} {kind} value{'s' if n != 1 else ''}" for n, kind in counts if n)


def check_meta(meta: dict, path) -> None:
    """Refuses a meta that would give wrong answers silently: an epoch that is not a whole number from 0
    or lies beyond its own run's epochs (a resume would skip the training and report it done), and
    normalisation statistics that are not 3 finite numbers, std above 0 (images divided by 0 give NaN)."""
    epoch, config = meta["epoch"], meta["config"]
    epochs = config.get("epochs") if isinstance(config, dict) else None
    if type(epoch) is not int or epoch < 0:
        raise ValueError(f"{path} is damaged: its meta's epoch is {epoch!r}, not a whole number from 0")
    if type(epochs) is int and epoch >= epochs:
        raise ValueError(f"{path} is damaged: its meta says epoch {epoch} is finished (counted from 0: {epoch + 1} "
                         f"epochs), but its run has {epochs} epoch{'s' if epochs != 1 else ''}")
    for key in ("mean", "std"):
        if key not in meta:
            continue
        values = meta[key]
        numbers = isinstance(values, list) and len(values) == 3 and all(    # finite in float32 too (1e308 is not)
            type(v) in (int, float) and math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values)
        if numbers and key == "std":
            values = [float(np.float32(v)) for v in values]          # 1e-300 becomes 0 in float32
        if not numbers or (key == "std" and min(values) <= 0):
            raise ValueError(f"{path}: its normalisation {key} {values!r} is not 3 finite numbers"
                             f"{' above 0 (images are divided by it)' if key == 'std' else ''}: refusing the "
                             "checkpoint, whose outputs would be NaN or wrong")


FLOAT32_MAX = float(np.finfo(np.float32).max)      # a checkpoint's numbers must survive float32


def checkpoint_weights(data) -> "collections.OrderedDict[str, np.ndarray]":
    """The model.* arrays of an opened training checkpoint, without their prefix."""
    n = len(CHECKPOINT_MODEL_PREFIX)
    return collections.OrderedDict((k[n:], data[k]) for k in data.files if k.startswith(CHECKPOINT_MODEL_PREFIX))


def save_checkpoint(path, model, optimizer, meta: dict) -> Path:
    """Writes model.state_dict(), optimizer.state_dict() (if an optimizer is given), and `meta` with
    the model's random generators (`model.generator_states()`: each Dropout's) under "generators"."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{CHECKPOINT_MODEL_PREFIX}{k}": v for k, v in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer.{k}": v for k, v in optimizer.state_dict().items()})
    meta = dict(meta, generators=model.generator_states())
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with written_atomically(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def is_checkpoint(path) -> bool:
    """True for a zip archive with a `meta` member: a training checkpoint (perhaps damaged inside)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return "meta.npy" in archive.namelist()
    except (ValueError, *ZIP_ERRORS):      # (a damaged file is named by the reader it then goes to)
        return False


WEIGHTS_INSTEAD = (": weights alone do not say their classes, data or normalisation; give them to `predict --weights "
                   "FILE --model NAME` or `compress --checkpoint FILE --model NAME`, or evaluate a run's own checkpoint "
                   "(runs/NAME/best.npz)")


def refuse_weights_only(path: Path) -> None:
    """A `.pth` or `.tsq` given where a training checkpoint is expected: say so, and what to do instead."""
    with open(path, "rb") as f:
        head = f.read(4)
    kind = {b"TSQZ": "a compressed network (.tsq)"}.get(head) or ("a PyTorch file (.pth)" if head[:1] == b"\x80" else None)
    if kind is not None:
        raise ValueError(f"{path} is {kind}, not a training checkpoint{WEIGHTS_INSTEAD}")


def load_checkpoint(path, meta_only: bool = False) -> tuple[dict, dict, dict]:
    """-> (model state_dict, optimizer state, meta). Refuses a file that is not a checkpoint.
    meta_only: read the meta alone (the weights and optimizer state come back empty)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    refuse_weights_only(path)
    try:
        check_npz(path)
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                raise ValueError(f"{path} holds weights but is not a training checkpoint (no 'meta'){WEIGHTS_INSTEAD}")
            meta = json.loads(bytes(data["meta"]).decode())
            model = {} if meta_only else dict(checkpoint_weights(data))
            optim = {} if meta_only else {k[len("optimizer."):]: data[k] for k in data.files if k.startswith("optimizer.")}
    except RecursionError:      # a meta nested too deeply: training/run_meta.py read_checkpoint names it
        raise
    except (ValueError, *ZIP_ERRORS) as error:
        if isinstance(error, ValueError) and str(path) in str(error):
            raise
        raise ValueError(f"{path} is damaged or not a checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(meta, dict) or not {"epoch", "config", "classes", "model"} <= set(meta):
        raise ValueError(f"{path} is damaged or not a checkpoint (its meta lacks epoch, config, classes or model)")
    check_meta(meta, path)
    refuse_unusable_weights(model, path)
    refuse_unusable_weights({f"optimizer.{k}": v for k, v in optim.items()}, path)
    return model, optim, meta
