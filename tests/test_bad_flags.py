"""Flags a careless or hostile user types: each gives one `error:` line and exit 2, before any work
(issue 23: overflowing numbers, a file where a folder belongs, a warm-up longer than the run)."""
import pytest

from tinysqueeze.cli import main

from .conftest import tiny_argv

CASES = [
    (["train", "--model", "squeezenet_meta", "--model-args", '{"sr": 1e308}'], "fire2 would have inf channels"),
    (["train", "--model", "squeezenet_meta", "--model-args", '{"base_e": 1e9}'], "at most 16,384 per layer"),
    (["train", "--model", "squeezenet_meta", "--model-args", '{"pct_3x3": NaN}'], "must be a finite number"),
    (["train", "--warmup-epochs", "1e308"], "longer than the run"),
    (["sweep", "sr", "--values", "inf"], "finite numbers"),
    (["sweep", "pct3x3", "--values", "nan"], "finite numbers"),
]


@pytest.mark.parametrize("argv, message", CASES, ids=[" ".join(a[:3]) + " " + a[-1] for a, _ in CASES])
def test_a_bad_flag_is_one_error_line(argv, message, tmp_path, capsys):
    out = ["--out", str(tmp_path / "out")]
    assert main([*argv, *out, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out" / "last.npz").exists()


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
