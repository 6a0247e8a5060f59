"""Resume and the run folder's lock: a resumed run continues exactly, a busy folder is refused, a killed
run's lock and temporary files are taken over, kills and damage at any moment lose nothing, a Ctrl-C
always stops the run (lesson 13)."""
import contextlib
import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.cli import main
from tinysqueeze.formats.checkpoint import load_checkpoint
from tinysqueeze.optim import SGD
from tinysqueeze.training.train import fit, prepare

from ..conftest import read_rows, tiny_argv, tiny_config
from ..hostile import refused


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["lars", "sgd", "adam"])
def test_resume_continues_exactly(tmp_path, optimizer):
    """A 3-epoch run stopped inside epoch 2 and resumed with the same arguments ends bit for bit where
    the run that never stopped does. (Not a 1-epoch run extended to 2: the schedule depends on the
    total length, so that is another run, equal only by coincidence.)"""
    straight = prepare(tiny_config(tmp_path / "straight", epochs=3, optimizer=optimizer), progress=False)
    fit(straight)
    stopped = prepare(tiny_config(tmp_path / "stopped", epochs=3, optimizer=optimizer), progress=False)
    with interrupted_at_epoch_2():
        fit(stopped)
    resumed = prepare(tiny_config(tmp_path / "stopped", epochs=3, optimizer=optimizer), resume=True, progress=False)
    assert resumed.meta.epoch == 0
    fit(resumed)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    with open(tmp_path / "stopped" / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2", "3"]


@pytest.mark.slow
def test_a_second_run_into_a_busy_folder_is_refused_naming_the_holder(tmp_path):
    import os
    first = prepare(tiny_config(tmp_path / "run", epochs=1), progress=False)
    with pytest.raises(ValueError, match=rf"{tmp_path / 'run'} is in use by another training run \(PID {os.getpid()}\)"):
        prepare(tiny_config(tmp_path / "run", epochs=1), progress=False, overwrite=True)
    fit(first)                     # the lock goes with the run
    fit(prepare(tiny_config(tmp_path / "run", epochs=1), progress=False, overwrite=True))


@pytest.mark.slow
def test_the_lock_of_a_killed_run_is_taken_over(tmp_path):
    import subprocess
    import sys
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from tinysqueeze.training.runs import RunFolder; folder = RunFolder(sys.argv[1]).claim(); "
                               "print('locked', flush=True); time.sleep(60)", str(run)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(ValueError, match=f"PID {holder.pid}"):
        prepare(tiny_config(run, epochs=1), progress=False)
    holder.kill()
    holder.wait()
    assert (run / ".lock").read_text().strip() == str(holder.pid)      # the stale lock file is still there
    fit(prepare(tiny_config(run, epochs=1), progress=False))          # ... and taken over


def test_an_unusable_out_is_refused_before_any_data_is_loaded(tmp_path, monkeypatch):
    import tinysqueeze.training.train as train_module
    monkeypatch.setattr(train_module, "load_split", lambda *a, **k: pytest.fail("data loaded first"))
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        prepare(tiny_config(tmp_path / "a-file"), progress=False)
    with pytest.raises(ValueError, match="cannot be written"):
        prepare(tiny_config(tmp_path / "a-file" / "run"), progress=False)


def test_orphaned_temporary_files_are_cleaned(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    from tinysqueeze.formats.atomic import temporary_name

    left = [temporary_name(run / name).name for name in ("last.npz", "metrics.csv", "curves.png", "config.json")]
    assert left[0].startswith("last.tmp") and left[0].endswith(".npz")
    for name in left + ["last.tmp999.npz", "last.npz.tmp", "metrics.csv.tmp"]:   # another process's; an older version's
        (run / name).write_text("half written")
    fit(prepare(tiny_config(run, epochs=1), progress=False))
    assert sorted(p.name for p in run.iterdir()) == [".lock", "best.npz", "config.json", "curves.png", "last.npz",
                                                      "metrics.csv"]


@pytest.mark.slow
@pytest.mark.parametrize("killed_in", ["write_metrics", "plot_curves"])
def test_a_kill_while_an_epoch_is_written_loses_nothing(tmp_path, monkeypatch, killed_in):
    """Killed in epoch 2 while metrics.csv or curves.png was being written: resuming runs epoch 2
    again, keeps one row per epoch, and ends equal to a run never killed. (When last.npz was written
    first, such a kill resumed at epoch 3 and epoch 2's row was gone for good.)"""
    import tinysqueeze.training.runs as runs_module
    straight = prepare(tiny_config(tmp_path / "straight", epochs=3), progress=False)
    fit(straight)
    real = getattr(runs_module, killed_in)
    calls = {"n": 0}

    def killed_at_epoch_2(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(runs_module, killed_in, killed_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        fit(prepare(tiny_config(tmp_path / "killed", epochs=3), progress=False))
    monkeypatch.setattr(runs_module, killed_in, real)
    resumed = prepare(tiny_config(tmp_path / "killed", epochs=3), resume=True, progress=False)
    assert resumed.meta.epoch == 0
    fit(resumed)
    assert [r["epoch"] for r in read_rows(tmp_path / "killed")] == ["1", "2", "3"]
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert (tmp_path / "killed" / "best.npz").is_file()


def damaged_copies(path, tmp_path):
    """Truncated, bit-flipped and empty copies of a checkpoint: {label: path}."""
    data = path.read_bytes()
    cases = {"empty": b"", "first-byte": bytes([data[0] ^ 0xFF]) + data[1:]}
    for fraction in (0.1, 0.5, 0.9, 0.999):
        cases[f"cut-{fraction}"] = data[: int(len(data) * fraction)]
    for fraction in (0.3, 0.7, 0.98):
        k = int(len(data) * fraction)
        cases[f"flip-{fraction}"] = data[:k] + bytes([data[k] ^ 0x55]) + data[k + 1:]
    out = {}
    for label, content in cases.items():
        out[label] = tmp_path / label / path.name
        out[label].parent.mkdir(parents=True)
        out[label].write_bytes(content)
    return out


def test_damaged_checkpoints_give_one_clean_error_in_every_command(tmp_path, capsys, tiny_run):
    from PIL import Image
    image = tmp_path / "x.png"
    Image.new("RGB", (40, 40)).save(image)
    capsys.readouterr()
    failures = []
    for label, bad in damaged_copies(tiny_run / "best.npz", tmp_path / "damaged").items():
        for command in (["evaluate", "--checkpoint", str(bad)], ["predict", str(image), "--checkpoint", str(bad)],
                        ["compress", "--checkpoint", str(bad), "--density", "0.5", "--bits", "4", "--out",
                         str(tmp_path / "c.tsq")]):
            try:
                code = main(command)
            except Exception as error:      # noqa: BLE001 - a traceback is the failure we look for
                failures.append(f"{label} {command[0]}: {type(error).__name__}: {error}")
                continue
            err = capsys.readouterr().err
            if code == 0 and label in ("cut-0.999", "flip-0.98"):
                continue    # damage in the zip's trailing directory comment area can be harmless
            if code != 2 or "error:" not in err:
                failures.append(f"{label} {command[0]}: exit {code}, {err[-200:]!r}")
    assert failures == []


def test_resume_from_a_damaged_last_npz_says_so_and_offers_best(tiny_run_copy):
    run = tiny_run_copy                         # a finished one-epoch tiny_config run
    last = run / "last.npz"
    last.write_bytes(last.read_bytes()[:300])
    with pytest.raises(ValueError, match=r"last.npz is damaged.*best.npz \(epoch 1\) is readable: .*cp "):
        prepare(tiny_config(run, epochs=2), resume=True, progress=False)
    import shutil
    shutil.copy(run / "best.npz", last)                    # what the message offers
    resumed = prepare(tiny_config(run, epochs=2), resume=True, progress=False)
    assert resumed.meta.epoch == 0
    fit(resumed)


def test_resume_refuses_changed_settings_and_allows_more_epochs(capsys, tiny_run_copy):
    run = tiny_run_copy
    args = ["train", *tiny_argv(run, epochs=1), "--quiet"]             # the finished one-epoch run's own flags
    assert main(args + ["--epochs", "2", "--resume", "--lr", "0.5", "--model", "alexnet"]) == 2
    err = capsys.readouterr().err
    assert "--model alexnet (the run has squeezenet1_1)" in err and "--lr 0.5 (the run has 0.001)" in err
    assert main(args + ["--epochs=1", "--image-size=48", "--resume"]) == 2
    assert "--image-size 48 (the run has 32)" in capsys.readouterr().err
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0   # nothing else typed
    assert "instead of 1" in capsys.readouterr().out or True
    assert [r["epoch"] for r in read_rows(run)] == ["1", "2"]
    assert main(args + ["--epochs", "1", "--resume"]) == 2
    assert "fewer than the run's 2" in capsys.readouterr().err


def test_interrupting_the_first_epoch_says_there_is_nothing_to_resume(tmp_path, capsys, monkeypatch):
    import tinysqueeze.training.train as train_module

    def interrupted(run, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_epoch", interrupted)
    assert main(["train", *tiny_argv(tmp_path / "run", epochs=1), "--quiet"]) == 130
    assert "interrupted before the first epoch finished: nothing to resume" in capsys.readouterr().err


@pytest.mark.slow
def test_best_npz_survives_a_worse_epoch_after_a_resume(tmp_path, monkeypatch):
    import tinysqueeze.training.train as train_module
    real = train_module.evaluate
    scores = iter([0.6, 0.2])                 # epoch 1 is the best; epoch 2, after the resume, is worse

    def scripted(*args, **kwargs):
        return dict(real(*args, **kwargs), top1=next(scores))

    monkeypatch.setattr(train_module, "evaluate", scripted)
    fit(prepare(tiny_config(tmp_path / "run", epochs=1), progress=False))
    fit(prepare(tiny_config(tmp_path / "run", epochs=2), resume=True, progress=False))
    assert load_checkpoint(tmp_path / "run" / "best.npz")[2]["epoch"] == 0      # still epoch 1's
    assert load_checkpoint(tmp_path / "run" / "last.npz")[2]["best_top1"] == 0.6


@pytest.mark.slow
def test_resume_is_exact_for_alexnet_and_its_two_dropouts(tmp_path):
    """AlexNet draws two dropout masks per step, from two generators: both must be saved and put
    back by module name (a state keyed by class would give both the same generator)."""
    config = dict(model="alexnet", optimizer="sgd", image_size=64, batch_size=10, synthetic_train=20, synthetic_val=10,
                  warmup_epochs=0.5)
    straight = prepare(tiny_config(tmp_path / "straight", epochs=2, **config), progress=False)
    fit(straight)
    partial = prepare(tiny_config(tmp_path / "stopped", epochs=2, **config), progress=False)
    with interrupted_at_epoch_2():
        fit(partial)
    resumed = prepare(tiny_config(tmp_path / "stopped", epochs=2, **config), resume=True, progress=False)
    assert resumed.meta.epoch == 0
    fit(resumed)
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


@contextlib.contextmanager
def interrupted_at_epoch_2():
    """Inside it, a run stops with a KeyboardInterrupt (as by Ctrl-C) when its epoch 2 begins."""
    import tinysqueeze.training.train as train_module
    real = train_module.train_epoch

    def train_epoch(run, epoch):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(run, epoch)
    train_module.train_epoch = train_epoch
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        train_module.train_epoch = real


def test_a_checkpoint_that_fails_half_written_leaves_the_previous_one_whole(tmp_path):
    """formats/checkpoint.py's promise, where it is kept: a save that fails part-way (a full disk, a
    crash) leaves the previous checkpoint whole and no temporary file behind. The disk is made to fail
    for real: the file-size limit (RLIMIT_FSIZE) is set to half the checkpoint's size, so the write stops
    with an OSError half-way (EFBIG, as ENOSPC would). Written straight into the final file, the old
    checkpoint would already be truncated and half the new one in its place."""
    import resource
    import signal

    from tinysqueeze.formats.atomic import leftover_temporary_files
    from tinysqueeze.formats.checkpoint import save_checkpoint

    model = nn.Sequential(nn.Linear(300, 100, rng=np.random.default_rng(0)))
    meta = {"epoch": 0, "config": {}, "classes": [], "model": "linear"}
    path = save_checkpoint(tmp_path / "last.npz", model, SGD(model.parameters(), lr=0.1), meta)
    old = path.read_bytes()
    model[0].weight.data += 1.0
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # the write fails instead of killing the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (len(old) // 2, hard))
    try:
        with pytest.raises(OSError):
            save_checkpoint(path, model, None, dict(meta, epoch=1))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert path.read_bytes() == old
    assert load_checkpoint(path)[2]["epoch"] == 0
    assert leftover_temporary_files(tmp_path) == []


SWALLOWED_CTRL_C = """
import os, signal, sys
import tinysqueeze.training.train as train_module
from tinysqueeze.cli import main

real_step, calls = train_module.train_step, []

class Finalizer:                      # like llvmlite's, whose __del__ runs while Numba compiles
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):          # the handler runs here: its KeyboardInterrupt is "ignored"
            pass

def step_with_a_swallowed_ctrl_c(*args, **kwargs):
    calls.append(1)
    if len(calls) == 1:
        Finalizer()                   # made and dropped: its __del__ runs at once
    return real_step(*args, **kwargs)

train_module.train_step = step_with_a_swallowed_ctrl_c
code = main(["train", *sys.argv[1:], "--quiet"])
print(f"steps={len(calls)}", file=sys.stderr)
sys.exit(code)
"""


def test_a_ctrl_c_swallowed_by_a_finalizer_still_stops_the_run(tmp_path):
    # Python prints "Exception ignored" for a KeyboardInterrupt raised inside a __del__ and carries
    # on; the run must stop at the end of that step all the same (CI once saw a sweep's trainer, sent
    # SIGINT while Numba compiled, train all its epochs).
    done = subprocess.run([sys.executable, "-c", SWALLOWED_CTRL_C, *tiny_argv(tmp_path / "run", epochs=3)],
                          capture_output=True, text=True, timeout=300)
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr    # it was swallowed
    assert done.returncode == 130, done.stderr
    assert "interrupted before the first epoch finished" in done.stderr and "steps=1" in done.stderr


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


def test_resume_refuses_a_metrics_csv_whose_epoch_lost_its_number(tiny_run_copy, capsys):
    path = tiny_run_copy / "metrics.csv"
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[1].split(",")
    cells[header.index("val_top1")] = "nan"
    path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    refused(capsys, ["train", "--out", str(tiny_run_copy), "--resume", "--epochs", "2", "--quiet"],
            "line 2 has no number for val_top1")


@pytest.mark.parametrize("command", [["evaluate", "--checkpoint", "RUN/best.npz", "--confusion", "RUN/curves.png"],
                                     ["compress", "--checkpoint", "RUN/best.npz", "--out", "RUN/curves.png",
                                      "--overwrite"]])
def test_another_command_may_not_replace_a_runs_own_file(tiny_run_copy, capsys, command):
    before = (tiny_run_copy / "curves.png").read_bytes()
    refused(capsys, [c.replace("RUN", str(tiny_run_copy)) for c in command], "is a file of the training run")
    assert (tiny_run_copy / "curves.png").read_bytes() == before


def test_overwrite_replaces_a_run_only_once_the_new_one_is_ready(tiny_run_copy, tmp_path, capsys):
    """--overwrite with data that cannot be read: the new run never starts, and the old one is whole."""
    before = {p.name: p.read_bytes() for p in tiny_run_copy.iterdir() if p.is_file() and p.name != ".lock"}
    refused(capsys, ["train", "--out", str(tiny_run_copy), "--overwrite", "--data", str(tmp_path / "missing"),
                     "--epochs", "1"], "missing")
    assert {p.name: p.read_bytes() for p in tiny_run_copy.iterdir() if p.is_file() and p.name in before} == before
