"""A sweep that fails, is interrupted or is killed stops cleanly (issue 23): one error line for a
failing run, nothing more started after it; Ctrl-C stops the running trainers and exits 130 without
a traceback; `kill -9` of the sweep leaves no trainer behind (each would hold its run's lock)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinysqueeze.cli import main

# Long enough to be interrupted while its first run trains (a few seconds per epoch at 32 px).
SWEEP = ["sweep", "custom", "--values", "sr=0.5", "sr=0.25", "--image-size", "32", "--epochs", "20",
         "--synthetic-train", "512", "--synthetic-val", "64", "--quiet"]


def processes_mentioning(text: str) -> list[int]:
    """The pids of processes whose command line contains `text` (Linux /proc)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [pid for pid in found if pid != os.getpid()]


def start_sweep(out: Path) -> subprocess.Popen:
    """The sweep in a session of its own (a signal to it reaches nobody else); returns once its first
    trainer is running."""
    sweep = subprocess.Popen([sys.executable, "-m", "tinysqueeze", *SWEEP, "--out", str(out)], cwd=out.parent,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 90
    first = out / "points" / "custom-sr0.5-seed0" / "config.json"        # written as its training starts
    while not first.exists():
        assert time.time() < deadline and sweep.poll() is None, "the sweep's first trainer never started"
        time.sleep(0.2)
    return sweep


def test_a_failing_run_is_one_error_line_and_nothing_more_starts(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "custom", "--values", "sr=0.5", "sr=0.25", "--epochs", "1", "--data",
                 str(tmp_path / "missing"), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training custom-sr0.5-seed0 failed (exit 2): error: --data") and err.count("\n") == 1
    assert "train.log" in err
    assert not (out / "points" / "custom-sr0.25-seed0").exists()          # the queued run never started


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_stops_the_sweep_and_its_trainers_promptly(tmp_path):
    out = tmp_path / "sweep"
    sweep = start_sweep(out)
    sweep.send_signal(signal.SIGINT)
    try:
        _, err = sweep.communicate(timeout=60)
    finally:
        sweep.kill()
    assert sweep.returncode == 130, err
    assert "Traceback" not in err and "interrupted: the sweep stopped" in err
    log = (out / "points" / "custom-sr0.5-seed0" / "train.log").read_text()
    assert "interrupted" in log and "Traceback" not in log, log  # stopped as by a Ctrl-C of its own, not killed
    time.sleep(0.5)
    assert processes_mentioning(str(out / "points")) == []
    assert not (out / "points" / "custom-sr0.25-seed0").exists()          # the queued run never started


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_kill_9_of_the_sweep_leaves_no_trainer_behind(tmp_path):
    out = tmp_path / "sweep"
    sweep = start_sweep(out)
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.communicate(timeout=30)
    deadline = time.time() + 20
    while processes_mentioning(str(out / "points")) and time.time() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(out / "points")) == []
