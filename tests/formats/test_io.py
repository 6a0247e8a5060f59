"""Weights in and out: .npz, and PyTorch .pth files read without PyTorch."""
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinysqueeze.formats.weights import load_weights, save_weights
from tinysqueeze.models import squeezenet1_1

FIXTURES = Path(__file__).parents[1] / "fixtures"


def test_npz_round_trip_is_exact(tmp_path):
    model = squeezenet1_1(num_classes=10, seed=3)
    path = save_weights(model, tmp_path / "w.npz")
    state = load_weights(path)
    assert list(state) == list(model.state_dict())
    other = squeezenet1_1(num_classes=10, seed=4)
    other.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
    np.testing.assert_array_equal(model.eval()(x), other.eval()(x))
    assert sorted(tmp_path.iterdir()) == [path]                         # no temporary file left beside it


def test_format_is_recognised_by_content_not_name(tmp_path):
    path = save_weights({"a": np.arange(3.0)}, tmp_path / "weights.npz")
    renamed = tmp_path / "weights.bin"
    path.rename(renamed)
    np.testing.assert_array_equal(load_weights(renamed)["a"], np.arange(3.0))
    pth_named_npz = tmp_path / "actually_torch.npz"
    pth_named_npz.write_bytes((FIXTURES / "tiny_zip.pth").read_bytes())
    assert "counts" in load_weights(pth_named_npz)


@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_pytorch_checkpoints_load_without_pytorch(name):
    expected = np.load(FIXTURES / "tiny_expected.npz")
    state = load_weights(FIXTURES / name)
    assert list(state) == list(expected.files)
    for key in expected.files:
        assert state[key].dtype == expected[key].dtype, key
        np.testing.assert_array_equal(state[key], expected[key])  # incl. a transposed and an offset view


def test_malformed_weights_are_refused_naming_the_key(tmp_path):
    model = squeezenet1_1(num_classes=10)
    state = dict(model.state_dict())
    state["features.3.squeeze.weight"] = np.zeros((16, 64, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"wrong shape for features.3.squeeze.weight"):
        model.load_state_dict(load_weights(save_weights(state, tmp_path / "bad.npz")))
    del state["classifier.1.bias"]
    with pytest.raises(ValueError, match="missing keys: classifier.1.bias"):
        model.load_state_dict(state)


def test_corrupt_and_unknown_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no weights file"):
        load_weights(tmp_path / "missing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not weights at all")
    with pytest.raises(ValueError, match="not a weights file tinysqueeze knows"):
        load_weights(junk)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURES / "tiny_legacy.pth").read_bytes()[:-40])
    with pytest.raises(ValueError, match="truncated|could not be read"):
        load_weights(truncated)
    cut_zip = tmp_path / "cut.pth"
    cut_zip.write_bytes((FIXTURES / "tiny_zip.pth").read_bytes()[:500])
    with pytest.raises(ValueError):
        load_weights(cut_zip)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_never_run(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"w": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="refusing to load (__builtin__|builtins).print"):
        load_weights(path)
    assert "must never run" not in capsys.readouterr().out


# --- Hostile .pth files: built only from allowed names, lying about their tensors ---

def crafted_pth(tmp_path, monkeypatch, tensors: dict, storage_numel: int, storage_bytes: bytes, legacy=False,
                byteorder=None):
    """A PyTorch file written without PyTorch: fake `torch` modules stand in while pickling, so the
    stream names exactly what a real one names (torch._utils._rebuild_tensor_v2, torch.FloatStorage).
    tensors: name -> (offset, size, stride), all views of one float32 storage '0'."""
    import collections
    import struct
    import sys
    import types

    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while pickling")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    FloatStorage = type("FloatStorage", (), {"__module__": "torch"})
    utils._rebuild_tensor_v2, torch.FloatStorage, torch._utils = _rebuild_tensor_v2, FloatStorage, utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)

    class StorageRef:
        pass

    class Tensor:
        def __init__(self, offset, size, stride):
            self.args = (offset, size, stride)

        def __reduce__(self):
            return (_rebuild_tensor_v2, (StorageRef(), *self.args, False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", FloatStorage, "0", "cpu", storage_numel) if isinstance(obj, StorageRef) else None

    def dumps(obj):
        buffer = __import__("io").BytesIO()
        Pickler(buffer, protocol=2).dump(obj)
        return buffer.getvalue()

    state = collections.OrderedDict((k, Tensor(*v)) for k, v in tensors.items())
    path = tmp_path / "crafted.pth"
    if legacy:
        system = {"little_endian": byteorder != "big"} if byteorder in (None, "little", "big") else byteorder
        plain = [pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, system)]
        path.write_bytes(b"".join(plain) + dumps(state) + pickle.dumps(["0"], protocol=2)
                         + struct.pack("<q", storage_numel) + storage_bytes)
    else:
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", dumps(state))
            z.writestr("archive/data/0", storage_bytes)
            if byteorder is not None:                     # PyTorch >= 1.12 writes it: b"little" or b"big"
                z.writestr("archive/byteorder", byteorder)
    return path


FOUR_FLOATS = np.arange(4, dtype="<f4").tobytes()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_well_formed_crafted_file_loads(tmp_path, monkeypatch, legacy):
    path = crafted_pth(tmp_path, monkeypatch, {"w": (1, (3,), (1,)), "t": (0, (2, 2), (1, 2))}, 4, FOUR_FLOATS, legacy)
    state = load_weights(path)
    np.testing.assert_array_equal(state["w"], [1, 2, 3])
    np.testing.assert_array_equal(state["t"], [[0, 2], [1, 3]])     # a transposed view, by hand


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("byteorder, dtype", [("little", "<f4"), ("big", ">f4")])
def test_the_stored_byte_order_is_honoured(tmp_path, monkeypatch, legacy, byteorder, dtype):
    raw = np.array([1.5, -2.0, 3.25, 1e-3], dtype=dtype).tobytes()    # the same numbers, bytes in either order
    state = load_weights(crafted_pth(tmp_path, monkeypatch, {"w": (0, (4,), (1,))}, 4, raw, legacy, byteorder))
    np.testing.assert_array_equal(state["w"], np.array([1.5, -2.0, 3.25, 1e-3], dtype=np.float32))
    assert state["w"].dtype.isnative


@pytest.mark.parametrize("legacy, byteorder", [(False, "middle"), (False, ""), (True, {"little_endian": "yes"}),
                                               (True, ["little"])])
def test_an_unknown_byte_order_is_refused(tmp_path, monkeypatch, legacy, byteorder):
    path = crafted_pth(tmp_path, monkeypatch, {"w": (0, (4,), (1,))}, 4, FOUR_FLOATS, legacy, byteorder)
    with pytest.raises(ValueError, match="byte order"):
        load_weights(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("offset, size, stride, says", [
    (0, (1000000,), (1,), "reach element 999999, but the storage holds 4"),
    (3, (2,), (1,), "reach element 4, but the storage holds 4"),
    (0, (2, 2), (1, 3), "reach element 4"),
    (0, (4,), (-1,), "negative offset, size or stride"),
    (-2, (2,), (1,), "negative offset, size or stride"),
    (0, (2, 2), (1,), "2 sizes and 1 strides"),
])
def test_a_tensor_larger_than_its_storage_is_refused_naming_it(tmp_path, monkeypatch, legacy, offset, size, stride,
                                                               says):
    path = crafted_pth(tmp_path, monkeypatch, {"features.0.weight": (offset, size, stride)}, 4, FOUR_FLOATS, legacy)
    with pytest.raises(ValueError, match=r"tensor 'features.0.weight' \(storage 0\).*" + re.escape(says)):
        load_weights(path)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_storage_claiming_more_bytes_than_the_file_has_is_refused(tmp_path, monkeypatch, legacy):
    path = crafted_pth(tmp_path, monkeypatch, {"w": (0, (4,), (1,))}, 10**12, FOUR_FLOATS, legacy)
    with pytest.raises(ValueError, match="storage 0 (should hold|claims) 1000000000000 elements"):
        load_weights(path)
    short = crafted_pth(tmp_path, monkeypatch, {"w": (0, (4,), (1,))}, 8, FOUR_FLOATS, legacy)
    with pytest.raises(ValueError, match="storage 0"):
        load_weights(short)


def test_predict_refuses_a_hostile_pth_cleanly(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys
    path = crafted_pth(tmp_path, monkeypatch, {"features.0.weight": (0, (64, 3, 3, 3), (0, 0, 0, 10**9))}, 4,
                       FOUR_FLOATS)
    image = tmp_path / "x.png"
    from PIL import Image
    Image.new("RGB", (40, 40)).save(image)
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "predict", str(image), "--weights", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2, result.stderr[-500:]
    assert "features.0.weight" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_two_processes_writing_one_file_never_leave_a_mixture(tmp_path):
    """formats/atomic.py promises a reader the old file or the new one, never a mixture, and two writers
    of one path their own temporary files. Two processes write 1 MB files of their own byte 200 times
    each into one path while this one reads it: every read is one writer's whole file, and nothing
    temporary is left."""
    import subprocess
    import sys

    target = tmp_path / "shared.bin"
    writer = ("import sys; from tinysqueeze.formats.atomic import write_bytes_atomically\n"
              "for _ in range(200): write_bytes_atomically(sys.argv[1], bytes([int(sys.argv[2])]) * 1_000_000)")
    writers = [subprocess.Popen([sys.executable, "-c", writer, str(target), str(b)]) for b in (1, 2)]
    seen = set()
    while any(w.poll() is None for w in writers):
        if target.exists():
            data = target.read_bytes()
            assert len(data) == 1_000_000 and len(set(data)) == 1, "a reader saw a half-written or mixed file"
            seen.add(data[0])
    assert [w.wait() for w in writers] == [0, 0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.bin"]
    assert seen <= {1, 2}
