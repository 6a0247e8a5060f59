"""Flags a careless or hostile user types: each gives one `error:` line and exit 2, before any work
(issue 23: overflowing numbers, a file where a folder belongs, a warm-up longer than the run)."""
import pytest

from tinysqueeze.cli import main

from ..conftest import tiny_argv

CASES = [
    (["train", "--model", "squeezenet_meta", "--model-args", '{"sr": 1e308}'], "fire2 would have inf channels"),
    (["train", "--model", "squeezenet_meta", "--model-args", '{"base_e": 1e9}'], "at most 16,384 per layer"),
    (["train", "--model", "squeezenet_meta", "--model-args", '{"pct_3x3": NaN}'], "must be a finite number"),
    (["train", "--warmup-epochs", "1e308"], "longer than the run"),
    (["sweep", "sr", "--values", "inf"], "finite numbers"),
    (["sweep", "pct3x3", "--values", "nan"], "finite numbers"),
    (["sweep", "custom", "--values", ""], "custom point '' is empty"),
    (["sweep", "custom", "--values", "sr=0.5", ","], "custom point ',' is empty"),
    (["sweep", "custom", "--values", "base_e=many"], "base_e values must be whole numbers, got 'many'"),
    (["sweep", "custom", "--values", "sr=inf"], "sr values must be finite numbers"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:3]) + " " + a[-1] for a, _ in CASES])
def test_a_bad_flag_is_one_error_line(argv, message, tmp_path, capsys):
    out = ["--out", str(tmp_path / "out")]
    assert main([*argv, *out, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out" / "last.npz").exists()


@pytest.mark.parametrize("flag, value", [("--synthetic-train", "100000000000"), ("--synthetic-val", "1000001")])
def test_a_synthetic_set_beyond_a_million_images_is_refused_by_the_parser(flag, value, tmp_path, capsys):
    """(It used to run out of memory, telling the user to lower --batch-size.)"""
    with pytest.raises(SystemExit) as stop:
        main(["train", flag, value, "--out", str(tmp_path / "out")])
    assert stop.value.code == 2
    assert f"{flag}: expected at most 1000000 ({flag[2:].replace('-', ' ')}), got {value}" in capsys.readouterr().err
    from tinysqueeze.training.train import TrainConfig
    with pytest.raises(ValueError, match="synthetic_train must be from 1 to 1,000,000"):   # a config.json too
        TrainConfig(synthetic_train=10 ** 7).validate()


def test_a_file_where_a_folder_belongs_is_one_error_line(tmp_path, capsys):
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a folder")
    assert main(["data", "get", "imagenette-160", "--root", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(blocker) in err
    assert blocker.read_text() == "a file, not a folder"


def test_a_full_disk_during_a_checkpoint_is_one_error_line_and_loses_nothing(tmp_path, capsys, monkeypatch):
    """ENOSPC while epoch 2's last.npz is written: one error line, exit 2, and epoch 1's last.npz
    (the resume point) intact, so --resume continues."""
    import errno

    from tinysqueeze.formats.checkpoint import load_checkpoint
    from tinysqueeze.training import runs

    real_save, calls = runs.save_checkpoint, []

    def save_until_the_disk_is_full(path, *args, **kwargs):
        calls.append(path)
        if path.name == "last.npz" and sum(c.name == "last.npz" for c in calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(runs, "save_checkpoint", save_until_the_disk_is_full)
    run = tmp_path / "run"
    assert main(["train", *tiny_argv(run, epochs=2), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: No space left on device: {run / 'last.npz'}\n"
    assert load_checkpoint(run / "last.npz", meta_only=True)[2]["epoch"] == 0
    monkeypatch.setattr(runs, "save_checkpoint", real_save)
    assert main(["train", *tiny_argv(run, epochs=2), "--quiet", "--resume"]) == 0


def a_png(tmp_path):
    import numpy as np
    from PIL import Image

    path = tmp_path / "a.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


@pytest.mark.parametrize("flags, says", [
    (["--checkpoint", "RUN/best.npz", "--image-size", "64"], "trained at 32 px"),
    (["--checkpoint", "RUN/best.npz", "--model", "squeezenet1_0"], "holds squeezenet1_1, not squeezenet1_0"),
    (["--weights", "RUN/best.npz", "--model", "alexnet"], "holds squeezenet1_1, not alexnet"),
    (["--weights", "RUN/best.npz", "--image-size", "48"], "trained at 32 px"),
])
def test_predict_refuses_a_flag_its_weights_contradict(tiny_run, tmp_path, capsys, flags, says):
    """A typed --image-size or --model that a checkpoint overrides is refused, never silently ignored."""
    flags = [f.replace("RUN", str(tiny_run)) for f in flags]
    assert main(["predict", a_png(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and says in err, err


def test_predict_takes_flags_that_agree_with_its_weights(tiny_run, tmp_path, capsys):
    image = a_png(tmp_path)
    assert main(["predict", image, "--checkpoint", str(tiny_run / "best.npz"), "--image-size", "32",
                 "--model", "squeezenet1_1"]) == 0
    assert main(["compress", "--checkpoint", str(tiny_run / "best.npz"), "--out", str(tmp_path / "c.tsq")]) == 0
    assert main(["predict", image, "--weights", str(tmp_path / "c.tsq"), "--model", "squeezenet1_0"]) == 2
    assert "c.tsq holds squeezenet1_1, not squeezenet1_0" in capsys.readouterr().err
    assert main(["predict", image, "--weights", str(tmp_path / "c.tsq")]) == 0
