"""Commands refuse bad input in one `error:` line that says what was wrong and what was expected:
settings, flags, paths, folders; and the happy path of train, evaluate and predict."""
import csv
import json

import pytest

from tinysqueeze.cli import main
from tinysqueeze.training.train import prepare

from ..conftest import tiny_argv, tiny_config
from ..hostile import refused


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        tiny_config(tmp_path, optimizer="lbfgs")
    with pytest.raises(ValueError, match="image_size from 32 to 1024"):
        prepare(tiny_config(tmp_path, image_size=16), progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        prepare(tiny_config(tmp_path / "nothing"), resume=True, progress=False)


@pytest.mark.slow
def test_cli_train_evaluate_predict(tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = main(["train", *tiny_argv(out, epochs=1, synthetic_train=32), "--quiet"])
    assert code == 0 and "done: val top-1" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and 0 <= result["top1"] <= result["top5"] <= 1
    assert (out / "best-confusion-val.png").is_file()
    from PIL import Image
    from tinysqueeze.datasets import make_synthetic
    images, labels = make_synthetic(10, 48, seed=5)
    path = tmp_path / "shape.png"
    Image.fromarray(images[0].transpose(1, 2, 0)).save(path)
    assert main(["predict", str(path), "--checkpoint", str(out / "best.npz")]) == 0
    printed = capsys.readouterr().out
    assert "1. " in printed and any(name in printed for name in ("circle", "square", "star", "ring"))
    tsq = tmp_path / "small.tsq"
    assert main(["compress", "--checkpoint", str(out / "best.npz"), "--density", "0.5", "--bits", "4",
                 "--finetune-epochs", "1", "--out", str(tsq)]) == 0
    printed = capsys.readouterr().out
    assert "uncompressed" in printed and "centroids fine-tuned" in printed and tsq.is_file()
    assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--json"]) == 0  # the original is untouched


@pytest.mark.parametrize("flag", ["--weight-decay", "--warmup-epochs", "--lr", "--class-margin"])
def test_nan_settings_are_refused(tmp_path, capsys, flag):
    assert main(["train", "--out", str(tmp_path / "run"), flag, "nan", "--quiet"]) == 2
    assert f"{flag[2:].replace('-', '_')} must be a finite number" in capsys.readouterr().err


def test_compress_refuses_negative_finetune_epochs(capsys):
    with pytest.raises(SystemExit):
        main(["compress", "--model", "squeezenet1_1", "--finetune-epochs", "-3", "--out", "x.tsq"])
    assert "expected 0 or more, got -3" in capsys.readouterr().err


def test_a_train_folder_without_val_is_named_as_such(tmp_path, capsys):
    from PIL import Image
    for name in ("cat", "dog"):
        (tmp_path / "set" / "train" / name).mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(tmp_path / "set" / "train" / name / "a.png")
    assert main(["train", "--data", str(tmp_path / "set"), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "has a train/ folder but no val/" in err and str(tmp_path / "set" / "train") in err


def test_evaluate_json_is_json_even_with_a_nan_loss_or_an_unwritable_png(tmp_path, capsys, monkeypatch, tiny_run):
    import tinysqueeze.evaluation.evaluate as evaluate_module
    real = evaluate_module.evaluate
    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: dict(real(*a, **k), loss=float("nan")))
    (tmp_path / "blocked").write_text("a file where a folder should be")
    assert main(["evaluate", "--checkpoint", str(tiny_run / "best.npz"), "--json",
                 "--confusion", str(tmp_path / "blocked" / "c.png")]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert result["loss"] is None and result["loss_finite"] is False and result["confusion_png"] is None
    assert "could not be written" in captured.err


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


def test_compress_refuses_num_classes_beside_a_checkpoint(tiny_run, tmp_path, capsys):
    refused(capsys, ["compress", "--checkpoint", str(tiny_run / "best.npz"), "--num-classes", "5", "--out",
                     str(tmp_path / "c.tsq")], "--num-classes is for fresh weights")
    assert not (tmp_path / "c.tsq").exists()


def test_collect_only_refuses_a_training_runs_folder(tiny_run_copy, capsys):
    refused(capsys, ["sweep", "sr", "--collect-only", "--out", str(tiny_run_copy)], "not a sweep's folder",
            "it holds a training run")
    assert not (tiny_run_copy / "results.csv").exists() and not (tiny_run_copy / "sweep.json").exists()


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
