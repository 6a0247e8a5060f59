"""Design-space sweeps end to end on a tiny synthetic set; refusals of bad sweeps."""
import csv

import numpy as np
import pytest

from tinysqueeze import sweep
from tinysqueeze.cli import main

TINY = ["--synthetic-train", "32", "--synthetic-val", "20", "--warmup-epochs", "0.5", "--lr", "1e-3"]


def test_a_two_point_sweep_over_two_seeds_runs_collects_plots_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "sr"
    summary = sweep.run_sweep("sr", "synthetic", 32, 1, out, values=["0.25", "0.5"], seeds=[0, 1], batch_size=16,
                              extra=TINY, progress=False)
    assert [r["point"] for r in summary] == ["sr-0.25", "sr-0.5"] and [r["seeds"] for r in summary] == [2, 2]
    assert summary[0]["parameters"] < summary[1]["parameters"]  # a larger squeeze ratio, a larger model
    with open(out / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["point"], r["seed"]) for r in table] == [("sr-0.25", "0"), ("sr-0.25", "1"), ("sr-0.5", "0"),
                                                        ("sr-0.5", "1")]
    assert {"parameters", "size_mb", "top1", "top5", "train_seconds"} <= set(table[0]) and (out / "figure3.png").is_file()
    for row in table:   # each row's numbers are its own run's last epoch, read here independently
        with open(out / "points" / f"{row['point']}-seed{row['seed']}" / "metrics.csv", newline="") as f:
            last = list(csv.DictReader(f))[-1]
        assert float(row["top1"]) == float(last["val_top1"]) and float(row["top5"]) == float(last["val_top5"])
        assert float(row["train_seconds"]) == pytest.approx(float(last["seconds"]))      # one epoch
    for point in summary:       # mean and sample standard deviation of the two seeds, by hand
        a, b = (float(r["top1"]) for r in table if r["point"] == point["point"])
        assert point["top1"] == pytest.approx((a + b) / 2, abs=1e-6)
        assert point["top1_sd"] == pytest.approx(abs(a - b) / 2 ** 0.5, abs=1e-6)
    from_file = sweep.summarise(sweep.read_results(out / "results.csv"))    # the table again, from the file alone
    assert sweep.format_rows(from_file) == sweep.format_rows(summary)

    def no_training(*a, **k):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(sweep, "run_point", no_training)
    again = sweep.run_sweep("sr", "synthetic", 32, 1, out, values=["0.25", "0.5"], seeds=[0, 1], batch_size=16,
                            extra=TINY, progress=False)
    assert [r["top1"] for r in again] == [r["top1"] for r in summary]


def test_points_the_seeds_cannot_tell_apart_are_named():
    def point(name, top1s):
        runs = [{"top1": t, "top5": 1.0} for t in top1s]
        return {"point": name, "seeds": len(runs), "top1": float(np.mean(top1s)),
                "top1_sd": float(np.std(top1s, ddof=1)), "runs": runs}
    close = [point("a", [0.50, 0.54]), point("b", [0.53, 0.55]), point("c", [0.80, 0.81])]
    # a: 0.52 ± 0.028, b: 0.54 ± 0.014 -> 0.02 apart, less than 0.042: not distinguishable; c is far from both
    assert sweep.indistinguishable(close) == [("a", "b")]


def test_bypass_sweep_writes_table_3(tmp_path):
    rows = sweep.run_sweep("bypass", "synthetic", 32, 1, tmp_path / "bp", values=["none", "complex"], batch_size=16,
                           extra=TINY, progress=False)
    assert rows[1]["parameters"] > rows[0]["parameters"]
    table = (tmp_path / "bp" / "bypass_table.md").read_text()
    assert "complex bypass | 1 |" in table and "57.5 / 80.3 / 4.8" in table and " ± 0.0%" in table


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
    assert main(["sweep", "pct3x3", "--values", "0.25", "0.5", "--seeds", "0", "1", "2", "--out", str(tmp_path),
                 "--print-commands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6 and all("tinysqueeze train --model squeezenet_meta" in line for line in lines)
    assert [line.split("--seed ")[1].split()[0] for line in lines] == ["0", "1", "2"] * 2
    assert '"pct_3x3": 0.25' in lines[0] and not (tmp_path / "points").exists()


def test_the_cluster_recipe_of_docs_cluster_md_runs_one_array_task_and_gathers(tmp_path, capsys):
    """docs/cluster.md: --print-commands, one line run as a Slurm array task would run it, --collect-only."""
    import subprocess
    out = tmp_path / "sr"
    args = ["sweep", "sr", "--values", "0.25", "0.5", "--seeds", "0", "1", "--image-size", "32", "--epochs", "1",
            "--batch-size", "16", "--synthetic-train", "32", "--synthetic-val", "20", "--out", str(out)]
    assert main(args + ["--print-commands"]) == 0
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(capsys.readouterr().out)
    task = subprocess.run(["bash", "-c", 'line=$(sed -n "${SLURM_ARRAY_TASK_ID}p" "$1"); eval "$line"', "_", str(jobs)],
                          env={**__import__("os").environ, "SLURM_ARRAY_TASK_ID": "2"}, capture_output=True, text=True)
    assert task.returncode == 0, task.stderr[-500:]
    assert (out / "points" / "sr-0.25-seed1" / "metrics.csv").is_file()         # line 2: point 1, seed 1
    assert main(args + ["--collect-only"]) == 0
    with open(out / "results.csv", newline="") as f:
        assert [(r["point"], r["seed"]) for r in csv.DictReader(f)] == [("sr-0.25", "1")]
