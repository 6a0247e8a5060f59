"""Weights in and out: .npz, and PyTorch .pth files read without PyTorch."""
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinysqueeze.io import load_weights, save_weights
from tinysqueeze.models import squeezenet1_1

FIXTURES = Path(__file__).parent / "fixtures"


def test_npz_round_trip_is_exact(tmp_path):
    model = squeezenet1_1(num_classes=10, seed=3)
    path = save_weights(model, tmp_path / "w.npz")
    state = load_weights(path)
    assert list(state) == list(model.state_dict())
    other = squeezenet1_1(num_classes=10, seed=4)
    other.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((2, 3, 40, 40)).astype(np.float32)
    np.testing.assert_array_equal(model.eval()(x), other.eval()(x))
    assert not list(tmp_path.glob("*.tmp"))


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
