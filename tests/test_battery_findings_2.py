"""What the hostile battery found on its second run (691 attempts, 18 left): each one attacked again.
Weights cast to whole numbers, a .tsq whose pruned weights would not decode to zero or whose header
contradicts its weights, model arguments that set the class count, a flag the checkpoint overrides,
a damaged metrics.csv cell, a run folder taken for a sweep's, a class named twice, a learner's endless loop."""
import numpy as np
import pytest

from tinysqueeze.cli import main

from .test_compress import rewrite_header
from .test_hostile import an_image, refused, rewrite_npz


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


def test_compress_refuses_num_classes_beside_a_checkpoint(tiny_run, tmp_path, capsys):
    refused(capsys, ["compress", "--checkpoint", str(tiny_run / "best.npz"), "--num-classes", "5", "--out",
                     str(tmp_path / "c.tsq")], "--num-classes is for fresh weights")
    assert not (tmp_path / "c.tsq").exists()


def test_resume_refuses_a_metrics_csv_whose_epoch_lost_its_number(tiny_run_copy, capsys):
    path = tiny_run_copy / "metrics.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("val_top1")] = "nan"
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    refused(capsys, ["train", "--out", str(tiny_run_copy), "--resume", "--epochs", "2", "--quiet"],
            "line 2 has no number for val_top1")


def test_collect_only_refuses_a_training_runs_folder(tiny_run_copy, capsys):
    refused(capsys, ["sweep", "sr", "--collect-only", "--out", str(tiny_run_copy)], "not a sweep's folder",
            "it holds a training run")
    assert not (tiny_run_copy / "results.csv").exists() and not (tiny_run_copy / "sweep.json").exists()


def test_a_checkpoint_naming_a_class_twice_is_refused(tiny_run, tmp_path, capsys):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "dup.npz", meta=lambda m: dict(m, classes=["a"] * 10,
                                                                                      class_names=["a"] * 10))
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], "naming a class twice")


def test_a_learners_endless_loop_is_stopped_with_a_message(tmp_path, capsys):
    from tinysqueeze.course.assignments import grade

    loop = tmp_path / "linear.py"
    loop.write_text("while True:\n    pass\n")
    with pytest.raises(ValueError, match=r"still running after 0.5 s.*a loop"):
        grade("linear", loop, seconds=0.5)
    import signal
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)          # no timer left behind


@pytest.mark.parametrize("command", [["evaluate", "--checkpoint", "RUN/best.npz", "--confusion", "RUN/curves.png"],
                                     ["compress", "--checkpoint", "RUN/best.npz", "--out", "RUN/curves.png",
                                      "--overwrite"]])
def test_another_command_may_not_replace_a_runs_own_file(tiny_run_copy, capsys, command):
    before = (tiny_run_copy / "curves.png").read_bytes()
    refused(capsys, [c.replace("RUN", str(tiny_run_copy)) for c in command], "is a file of the training run")
    assert (tiny_run_copy / "curves.png").read_bytes() == before


def test_a_warning_is_one_line_without_the_code_that_raised_it(tmp_path, capsys):
    """(It printed `dataset.py:104: UserWarning: ...` and then that line of tinysqueeze's source.)"""
    import warnings

    from tinysqueeze.cli import one_line_warning
    assert one_line_warning(UserWarning("skipped 1 unreadable image: a.png"), UserWarning, "dataset.py", 104,
                            "images, labels = ...") == "warning: skipped 1 unreadable image: a.png\n"
    before = warnings.formatwarning
    try:
        main(["models"])
        assert warnings.formatwarning is one_line_warning
    finally:
        warnings.formatwarning = before


def test_overwrite_replaces_a_run_only_once_the_new_one_is_ready(tiny_run_copy, tmp_path, capsys):
    """--overwrite with data that cannot be read: the new run never starts, and the old one is whole."""
    before = {p.name: p.read_bytes() for p in tiny_run_copy.iterdir() if p.is_file() and p.name != ".lock"}
    refused(capsys, ["train", "--out", str(tiny_run_copy), "--overwrite", "--data", str(tmp_path / "missing"),
                     "--epochs", "1"], "missing")
    assert {p.name: p.read_bytes() for p in tiny_run_copy.iterdir() if p.is_file() and p.name in before} == before
