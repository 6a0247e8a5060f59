"""What a hostile battery (602 attempts, after the first round of hardening) still found, each
attacked again: a first epoch killed while its files were written, normalisation that is finite in
float64 but not in float32, finite weights whose outputs overflow, empty --out for sweeps, model
arguments that shadow flags, a non-Python --impl, an empty --confusion."""
import numpy as np
import pytest

from tinysqueeze.cli import main

from .conftest import tiny_argv
from .test_hostile import an_image, refused, rewrite_npz


def test_a_first_epoch_stopped_while_its_files_were_written_starts_again_without_overwrite(tmp_path, capsys,
                                                                                          monkeypatch):
    """Ctrl-C after epoch 1's best.npz and metrics.csv but before its last.npz: `train` says there is
    nothing to resume and to run the same command again -- which must then work."""
    from tinysqueeze.training import runs

    real_save = runs.save_checkpoint

    def interrupted_before_the_resume_point(path, *args, **kwargs):
        if path.name == "last.npz":
            raise KeyboardInterrupt
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(runs, "save_checkpoint", interrupted_before_the_resume_point)
    run = tmp_path / "run"
    assert main(["train", *tiny_argv(run, epochs=1), "--quiet"]) == 130
    assert "run the same command again" in capsys.readouterr().err
    assert (run / "best.npz").exists() and not (run / "last.npz").exists()
    monkeypatch.setattr(runs, "save_checkpoint", real_save)
    assert main(["train", *tiny_argv(run, epochs=1), "--quiet"]) == 0
    assert (run / "last.npz").exists()


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


@pytest.mark.parametrize("argv, says", [
    (["sweep", "sr", "--values", "0.25", "--out", ""], "--out is empty"),
    (["compare", "squeezenet1_1", "--out", ""], "--out is empty"),
    (["train", "--model", "squeezenet_meta", "--model-args", '{"num_classes": 0}', "--out", "x"], "may not set num_classes"),
    (["check", "linear", "--impl", "classes.txt"], "is not a Python file"),
])
def test_more_bad_arguments_are_one_error_line(argv, says, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    refused(capsys, [*argv, *(["--epochs", "1"] if argv[0] in ("sweep", "compare", "train") else [])], says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["classes.txt"]       # nothing written


def test_an_empty_confusion_path_is_refused(tiny_run, capsys):
    refused(capsys, ["evaluate", "--checkpoint", str(tiny_run / "best.npz"), "--confusion", ""], "--confusion is empty")


def test_compare_refuses_a_model_named_twice_and_collect_only_a_missing_folder(tmp_path, capsys):
    refused(capsys, ["compare", "squeezenet1_1", "squeezenet1_1", "--out", str(tmp_path / "c"), "--epochs", "1"],
            "named more than once")
    refused(capsys, ["sweep", "sr", "--values", "0.25", "--collect-only", "--out", str(tmp_path / "missing")],
            "nothing to collect")
    assert not (tmp_path / "missing").exists() and not (tmp_path / "c").exists()
