"""Design-space sweeps end to end on a tiny synthetic set; refusals of bad sweeps."""
import csv

import pytest

from tinysqueeze import sweep
from tinysqueeze.cli import main

TINY = ["--synthetic-train", "32", "--synthetic-val", "20", "--warmup-epochs", "0.5", "--lr", "1e-3"]


def test_a_two_point_sweep_runs_collects_plots_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "sr"
    rows = sweep.run_sweep("sr", "synthetic", 32, 1, out, values=["0.25", "0.5"], batch_size=16, extra=TINY,
                           progress=False)
    assert [r["point"] for r in rows] == ["sr-0.25", "sr-0.5"]
    assert rows[0]["parameters"] < rows[1]["parameters"]  # a larger squeeze ratio, a larger model
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 2 and {"parameters", "size_mb", "top1", "top5", "train_seconds"} <= set(table[0])
    assert 0 <= float(table[0]["top1"]) <= 1 and (out / "figure3.png").is_file()
    for row in table:   # each point's numbers are its own run's last epoch, read here independently
        with open(out / "points" / row["point"] / "metrics.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
        assert float(row["top1"]) == float(last["val_top1"]) and float(row["top5"]) == float(last["val_top5"])
        assert float(row["train_seconds"]) == pytest.approx(float(last["seconds"]))      # one epoch

    def no_training(*a, **k):
        raise AssertionError("a finished point was trained again")

    monkeypatch.setattr(sweep, "run_point", no_training)
    again = sweep.run_sweep("sr", "synthetic", 32, 1, out, values=["0.25", "0.5"], batch_size=16, extra=TINY,
                            progress=False)
    assert [r["top1"] for r in again] == [r["top1"] for r in rows]


def test_bypass_sweep_writes_table_3(tmp_path):
    rows = sweep.run_sweep("bypass", "synthetic", 32, 1, tmp_path / "bp", values=["none", "complex"], batch_size=16,
                           extra=TINY, progress=False)
    assert rows[1]["parameters"] > rows[0]["parameters"]
    table = (tmp_path / "bp" / "bypass_table.md").read_text()
    assert "complex bypass" in table and "57.5 / 80.3 / 4.8" in table


@pytest.mark.parametrize("kind,values,message", [
    ("sr", ["0"], "sr .* must be positive"),
    ("sr", ["abc"], "sr values must be numbers"),
    ("pct3x3", ["1.5"], r"pct_3x3 must be in \[0, 1\]"),
    ("bypass", ["sideways"], "bypass values are none, simple and complex"),
    ("custom", ["sr=0.5,colour=red"], "unknown metaparameter 'colour'"),
    ("custom", None, "a custom sweep needs --values"),
    ("sr", ["0.5", "0.5"], "repeat a point"),
])
def test_invalid_sweeps_are_refused(kind, values, message):
    with pytest.raises(ValueError, match=message):
        sweep.make_points(kind, values)


def test_print_commands_for_a_cluster(capsys, tmp_path):
    assert main(["sweep", "pct3x3", "--values", "0.25", "0.5", "--out", str(tmp_path), "--print-commands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and all("tinysqueeze train --model squeezenet_meta" in line for line in lines)
    assert '"pct_3x3": 0.25' in lines[0] and not (tmp_path / "points").exists()
