"""Weights that would give silent wrong answers: non-finite, complex or whole-number weights, a .tsq
whose codebook, pruned weights or header lie, a checkpoint with unusable normalisation, a class
named twice or an epoch outside its run. Each is built here, given to the command that reads it,
and must be refused with one `error:` line naming the problem (exit 2, no traceback)."""
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from tinysqueeze.cli import main
from tinysqueeze.formats.weights import load_weights, save_weights
from tinysqueeze.models import squeezenet1_1

from ..compression.test_compress import rewrite_header
from ..conftest import tiny_argv
from ..hostile import an_image, refused, rewrite_npz
from .test_io import crafted_pth


def poisoned(values, nan=0, inf=0):
    """values with its first `nan` elements NaN and the next `inf` ones +/-inf."""
    flat = values.reshape(-1)
    flat[:nan] = np.nan
    flat[nan:nan + inf] = [np.inf, -np.inf] * (inf // 2) + [np.inf] * (inf % 2)
    return values


# ------------------------------------------------------------------- (a) non-finite weights
@pytest.mark.parametrize("nan, inf, says", [(3, 0, "3 NaN values"), (0, 1, "1 infinite value"),
                                            (1, 2, "1 NaN value and 2 infinite values")])
def test_predict_refuses_non_finite_weights_in_an_npz(tmp_path, capsys, nan, inf, says):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.3.expand3x3.weight"] = poisoned(state["features.3.expand3x3.weight"].copy(), nan, inf)
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(weights)],
            f"features.3.expand3x3.weight has {says}", "refusing to load non-finite weights", str(weights))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_predict_refuses_non_finite_weights_in_a_pth(tmp_path, monkeypatch, capsys, legacy):
    storage = np.array([np.nan, 1, np.inf, 2], "<f4").tobytes()
    path = crafted_pth(tmp_path, monkeypatch, {"features.0.weight": (0, (4,), (1,))}, 4, storage, legacy)
    monkeypatch.undo()                                       # the fake torch modules are gone again
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(path)],
            "features.0.weight has 1 NaN value and 1 infinite value")


def tsq_with(path, tmp_path, codebook_entry=None, bias=None):
    """A .tsq file holding a sparse features.0.weight and a raw features.0.bias, written by hand after
    the documented layout (formats/tsq.py), with a codebook entry or a bias value replaced."""
    from tinysqueeze.formats.tsq import write_tsq

    codes = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2) % 4
    write_tsq(path, {"model": "squeezenet1_1", "bits": 2}, {"features.0.weight": (np.array([0, 1, 2, 3], np.float32), codes)},
              {"features.0.bias": np.zeros(2, np.float32)})
    data = bytearray(path.read_bytes())
    (head_len,) = struct.unpack("<I", data[5:9])
    header = json.loads(data[9:9 + head_len])
    start = 9 + head_len                                     # the first array's codebook: 4 float32
    if codebook_entry is not None:
        data[start + 4 * codebook_entry[0]:start + 4 * codebook_entry[0] + 4] = struct.pack("<f", codebook_entry[1])
    if bias is not None:
        bias_at = start + sum(header["arrays"][0]["sizes"])
        data[bias_at:bias_at + 4] = struct.pack("<f", bias)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("change, says", [
    (dict(codebook_entry=(1, float("nan"))), "features.0.weight: its codebook has 1 NaN value"),
    (dict(codebook_entry=(3, float("inf"))), "features.0.weight: its codebook has 1 infinite value"),
    (dict(codebook_entry=(0, float("nan"))), "features.0.weight: its codebook has 1 NaN value"),  # pruned weights
    (dict(bias=float("-inf")), "features.0.bias has 1 infinite value"),
])
def test_a_tsq_with_a_non_finite_codebook_is_refused(tmp_path, capsys, change, says):
    path = tsq_with(tmp_path / "x.tsq", tmp_path, **change)
    with pytest.raises(ValueError, match="refusing to load non-finite weights"):
        load_weights(path)
    refused(capsys, ["predict", an_image(tmp_path), "--weights", path], says, path)
    refused(capsys, ["compress", "--checkpoint", path, "--density", "0.5", "--bits", "2",
                     "--out", str(tmp_path / "again.tsq")], says)
    assert not (tmp_path / "again.tsq").exists()


def test_a_finite_hand_written_tsq_still_loads(tmp_path):
    state = load_weights(tsq_with(tmp_path / "x.tsq", tmp_path))
    np.testing.assert_array_equal(state["features.0.weight"].reshape(-1), np.arange(24) % 4)


def test_evaluate_and_predict_refuse_a_checkpoint_with_non_finite_weights(tiny_run, tmp_path, capsys):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                      {"model.classifier.1.weight": lambda w: poisoned(w, nan=2)})
    says = ("classifier.1.weight has 2 NaN values", "refusing to load non-finite weights", bad)
    refused(capsys, ["evaluate", "--checkpoint", bad], *says)
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], *says)


def test_compress_refuses_non_finite_weights_and_writes_nothing(tiny_run, tmp_path, capsys):
    out = tmp_path / "out.tsq"
    checkpoint = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                             {"model.features.0.weight": lambda w: np.full_like(w, np.nan)})
    n = np.load(checkpoint)["model.features.0.weight"].size
    refused(capsys, ["compress", "--checkpoint", checkpoint, "--density", "0.5", "--out", str(out)],
            f"features.0.weight has {n} NaN values")
    state = squeezenet1_1(num_classes=10, seed=0).state_dict()
    state["features.0.weight"][:] = np.nan
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["compress", "--checkpoint", str(weights), "--model", "squeezenet1_1", "--density", "0.5",
                     "--out", str(out)], "features.0.weight has")
    assert not out.exists()


@pytest.mark.parametrize("key, named", [("model.features.0.bias", "features.0.bias"),
                                        ("optimizer.0", "optimizer.0")])     # LARS's momentum of conv1
def test_resume_refuses_non_finite_weights_or_optimizer_state(tiny_run_copy, capsys, key, named):
    last = tiny_run_copy / "last.npz"
    rewrite_npz(last, last, {key: lambda v: poisoned(v, inf=1)})
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=2), "--resume", "--quiet"],
            f"{named} has 1 infinite value", str(last))


def test_a_subprocess_gets_one_error_line_for_nan_weights(tmp_path):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.0.weight"] = poisoned(state["features.0.weight"].copy(), nan=3)
    weights = save_weights(state, tmp_path / "w.npz")
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "predict", an_image(tmp_path), "--weights",
                             str(weights)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {weights}: features.0.weight has 3 NaN values: refusing to load non-finite weights"]


# ------------------------------------------------------------------- (b) normalisation statistics
@pytest.mark.parametrize("meta, says", [
    (dict(std=[0.29, 0.0, 0.31]), "std"),
    (dict(std=[0.29, -0.3, 0.31]), "std"),
    (dict(std=[0.29, float("inf"), 0.31]), "std"),
    (dict(mean=[0.5, float("nan"), 0.5]), "mean"),
    (dict(std=[0.29, 0.3]), "std"),
    (dict(mean="0.5"), "mean"),
])
def test_a_checkpoint_with_unusable_normalisation_is_refused(tiny_run, tmp_path, capsys, meta, says):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz", meta=meta)
    refused(capsys, ["evaluate", "--checkpoint", bad], bad, says)
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], bad, says)


# ------------------------------------------------------------------- (c) complex weights
def test_complex_weights_are_refused_naming_the_tensor(tmp_path, tiny_run, capsys):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.0.weight"] = state["features.0.weight"] * (1 + 0.5j)
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(weights)],
            "features.0.weight holds complex64 values", "refusing")
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                      {"model.features.0.bias": lambda b: b.astype(np.complex128)})
    refused(capsys, ["evaluate", "--checkpoint", bad], "features.0.bias holds complex128 values")
    text = rewrite_npz(tiny_run / "best.npz", tmp_path / "text.npz",
                       {"model.features.0.bias": lambda b: np.array(["x"] * b.size)})
    refused(capsys, ["evaluate", "--checkpoint", text], "features.0.bias holds <U1 values")


# ------------------------------------------------------------------- (e) the resume point's epoch
@pytest.mark.parametrize("epoch, says", [
    (10 ** 6, "epoch 1000000"),
    (5, "epoch 5"),
    (1, "epoch 1"),          # two epochs finished of a run of one
    (-3, "-3"),
    (2.5, "2.5"),
    ("1", "'1'"),
    (True, "True"),
])
def test_resume_refuses_an_epoch_that_is_not_the_runs(tiny_run_copy, capsys, epoch, says):
    last = tiny_run_copy / "last.npz"
    rewrite_npz(last, last, meta=dict(epoch=epoch))
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=3), "--resume", "--quiet"], str(last), says)
    assert "done" not in capsys.readouterr().out


@pytest.mark.parametrize("meta, says", [(dict(std=[1e-300, 1e-300, 1e-300]), "std"),
                                        (dict(mean=[1e308, 1e308, 1e308]), "mean")],
                         ids=["std 0 in float32", "mean inf in float32"])
def test_normalisation_must_be_usable_in_float32(tiny_run, tmp_path, capsys, meta, says):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz", meta=meta)
    refused(capsys, ["evaluate", "--checkpoint", bad], bad, says)
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], bad, says)


def test_finite_weights_whose_outputs_overflow_give_no_accuracy_and_no_prediction(tiny_run, tmp_path, capsys):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                      arrays={"model.features.0.weight": lambda w: w * np.float32(1e38)})
    refused(capsys, ["evaluate", "--checkpoint", bad], "not finite numbers")
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], "not finite numbers")


@pytest.fixture(scope="module")
def small_tsq(tiny_runs, tmp_path_factory):
    path = tmp_path_factory.mktemp("tsq") / "small.tsq"
    assert main(["compress", "--checkpoint", str(tiny_runs(epochs=1) / "best.npz"), "--out", str(path)]) == 0
    return path


@pytest.mark.parametrize("dtype", ["int32", "bool"])
def test_weights_cast_to_whole_numbers_are_refused_naming_the_tensor(tiny_run, tmp_path, capsys, dtype):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "cast.npz", {"model.features.0.weight": lambda a: a.astype(dtype)})
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], "features.0.weight", f"{dtype} values")
    refused(capsys, ["evaluate", "--checkpoint", bad], "not floating-point numbers")


def test_a_tsq_whose_pruned_weights_would_not_be_zero_is_refused(small_tsq, tmp_path, capsys):
    """Code 0 means pruned; its codebook entry must be 0.0, or every pruned weight silently becomes it."""
    import json
    import struct
    import zlib

    data = bytearray(small_tsq.read_bytes())
    head_len = struct.unpack("<I", data[5:9])[0]
    first = json.loads(data[9 : 9 + head_len])["arrays"][0]
    assert first["kind"] == "sparse"
    offset = 9 + head_len            # the first array's blob starts with its codebook: entry 0 first
    data[offset : offset + 4] = struct.pack("<f", 0.001)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    bad = tmp_path / "cb0.tsq"
    bad.write_bytes(bytes(data))
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(bad)], first["name"], "entry 0", "0.001")


@pytest.mark.parametrize("change, says", [
    (lambda h: h.update(model="squeezenet_meta", model_args={"num_classes": 10}), "set num_classes, which the weights"),
    (lambda h: h.update(num_classes=7), "its header says 7 classes, its last layer holds 10"),
])
def test_a_tsq_header_that_contradicts_its_weights_is_refused(small_tsq, tmp_path, capsys, change, says):
    bad = tmp_path / "bad.tsq"
    bad.write_bytes(rewrite_header(small_tsq, change))
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(bad)], str(bad), says)
    refused(capsys, ["compress", "--checkpoint", str(bad), "--out", str(tmp_path / "out.tsq")], says)


def test_a_checkpoint_naming_a_class_twice_is_refused(tiny_run, tmp_path, capsys):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "dup.npz", meta=lambda m: dict(m, classes=["a"] * 10,
                                                                                      class_names=["a"] * 10))
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], "naming a class twice")
