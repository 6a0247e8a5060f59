"""No command destroys what it was given or what a finished run left (issue 23, data loss).

Each promise attacked: a finished run whose last.npz was deleted, `compress` writing over its own
checkpoint (by the same path and through a link), an output that is a folder or an existing file of
another kind, `evaluate --confusion` naming the checkpoint, an empty --out. After each refusal the
files are byte for byte what they were.
"""
import os
import shutil

import pytest

from tinysqueeze.cli import main
from tinysqueeze.formats.weights import save_weights
from tinysqueeze.models import squeezenet1_1

from ..conftest import tiny_argv


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("deleted", [["last.npz"], ["last.npz", "best.npz"], ["last.npz", "best.npz", "curves.png"]])
def test_a_finished_run_is_never_replaced_without_overwrite(tiny_run, tmp_path, capsys, deleted):
    """A user deletes last.npz (twice best.npz's size) to save space; the run's other files must survive
    a new `train` into the same folder, which must say why it stopped."""
    run = shutil.copytree(tiny_run, tmp_path / "run")
    for name in deleted:
        (run / name).unlink()
    before = snapshot(run)
    assert main(["train", *tiny_argv(run), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "already holds a run" in error and "cannot be resumed" in error and "--overwrite" in error
    assert "metrics.csv" in error
    assert snapshot(run) == before
    assert main(["train", *tiny_argv(run, epochs=1), "--quiet", "--overwrite"]) == 0


def test_a_run_killed_before_its_first_epoch_starts_again_without_overwrite(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{}")                   # what a run stopped before epoch 1 leaves
    assert main(["train", *tiny_argv(run, epochs=1), "--quiet"]) == 0
    assert (run / "best.npz").is_file()


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "weights.npz"
    save_weights(squeezenet1_1(num_classes=10), path)
    return path


def compress(checkpoint, out, *more):
    return main(["compress", "--model", "squeezenet1_1", "--checkpoint", str(checkpoint), "--density", "0.5",
                 "--bits", "8", "--out", str(out), *more])


def test_compress_refuses_to_write_over_its_own_checkpoint(checkpoint, tmp_path, capsys):
    before = checkpoint.read_bytes()
    assert compress(checkpoint, checkpoint) == 2
    assert "is also this command's input (--checkpoint" in capsys.readouterr().err
    link = tmp_path / "another-name.tsq"
    os.link(checkpoint, link)                                  # the same file under another name
    assert compress(checkpoint, link, "--overwrite") == 2      # not even with --overwrite
    assert "is also this command's input" in capsys.readouterr().err
    assert checkpoint.read_bytes() == before


def test_compress_refuses_a_folder_or_a_file_of_another_kind(checkpoint, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    assert compress(checkpoint, folder) == 2
    assert "is a folder" in capsys.readouterr().err
    assert list(tmp_path.glob("results*")) == [folder]          # no results.tmp left beside it
    notes = tmp_path / "notes.tsq"
    notes.write_text("my notes, not a compressed network")
    assert compress(checkpoint, notes) == 2
    assert "pass --overwrite" in capsys.readouterr().err and notes.read_text().startswith("my notes")
    assert compress(checkpoint, notes, "--overwrite") == 0
    assert notes.read_bytes()[:4] == b"TSQZ"
    assert compress(checkpoint, notes) == 0                     # a .tsq file it wrote: replaced as usual


def test_evaluate_refuses_a_confusion_picture_over_its_checkpoint(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    before = (run / "best.npz").read_bytes()
    assert main(["evaluate", "--checkpoint", str(run / "best.npz"), "--confusion", str(run / "best.npz")]) == 2
    assert "is also this command's input" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(run / "best.npz"), "--confusion", str(run / "metrics.csv")]) == 2
    assert "already exists and is not a .png file" in capsys.readouterr().err
    assert (run / "best.npz").read_bytes() == before


def test_an_empty_out_is_refused_not_the_current_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *tiny_argv(""), "--quiet"]) == 2
    assert "--out is empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
