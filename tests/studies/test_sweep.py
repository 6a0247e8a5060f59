"""Design-space sweeps end to end on a tiny synthetic set; refusals of bad sweeps."""
import csv

import numpy as np
import pytest

from tinysqueeze.cli import main
from tinysqueeze.studies import sweep
from tinysqueeze.training.train import TrainConfig

from ..conftest import tiny_config

TINY = tiny_config(epochs=1, synthetic_train=32)


def tiny_sweep(kind, values, seeds, out):
    return sweep.Sweep(kind, sweep.make_points(kind, values), seeds, TINY, out)


@pytest.mark.slow
def test_a_two_point_sweep_over_two_seeds_runs_collects_plots_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "sr"
    summary = sweep.run_sweep(tiny_sweep("sr", ["0.25", "0.5"], [0, 1], out), progress=False)
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
    again = sweep.run_sweep(tiny_sweep("sr", ["0.25", "0.5"], [0, 1], out), progress=False)
    assert [r["top1"] for r in again] == [r["top1"] for r in summary]


def test_resuming_a_sweep_continues_a_partly_trained_point_and_skips_a_finished_one(tmp_path, tiny_runs,
                                                                                   monkeypatch):
    """A sweep of 2 epochs, stopped: seed 0's run has finished epoch 1 only (its last.npz says so), seed 1's
    both. Run again, the sweep must train seed 0 again, continuing it (train --resume), and leave seed 1
    alone. The training processes are recorded, not started."""
    import shutil

    plan = sweep.Sweep("sr", sweep.make_points("sr", ["0.5"]), [0, 1], tiny_config(epochs=2), tmp_path / "sr")
    point = plan.points[0]
    shutil.copytree(tiny_runs(epochs=1), plan.folder(point, 0).path)      # stopped after epoch 1 of 2
    shutil.copytree(tiny_runs(epochs=2), plan.folder(point, 1).path)      # finished
    started = []

    class Recorded:
        """A trainer's process, recorded and not started: it ends at once, successfully."""

        def __init__(self, command, **kwargs):
            started.append(command)

        def wait(self):
            return 0

    monkeypatch.setattr(sweep.subprocess, "Popen", Recorded)
    sweep.run_sweep(plan, progress=False)
    assert len(started) == 1, started
    command = started[0]
    assert command[command.index("--out") + 1] == str(plan.folder(point, 0).path)
    assert command[command.index("--seed") + 1] == "0" and "--resume" in command


def test_points_the_seeds_cannot_tell_apart_are_named():
    def point(name, top1s):
        runs = [{"top1": t, "top5": 1.0} for t in top1s]
        return {"point": name, "seeds": len(runs), "top1": float(np.mean(top1s)),
                "top1_sd": float(np.std(top1s, ddof=1)), "runs": runs}
    close = [point("a", [0.50, 0.54]), point("b", [0.53, 0.55]), point("c", [0.80, 0.81])]
    # a: 0.52 ± 0.028, b: 0.54 ± 0.014 -> 0.02 apart, less than 0.042: not distinguishable; c is far from both
    assert sweep.indistinguishable(close) == [("a", "b")]


def test_mean_and_spread_by_hand():
    from tinysqueeze.studies.stats import format_mean_spread, labelled_groups, mean_and_spread

    assert mean_and_spread([66.7, 70.1, 67.2]) == pytest.approx((68.0, np.sqrt(((66.7 - 68) ** 2 + (70.1 - 68) ** 2
                                                                               + (67.2 - 68) ** 2) / 2)))
    assert mean_and_spread([5.0]) == (5.0, 0.0) and format_mean_spread([66.7, 70.1, 67.2]) == "68.0 ± 1.8%"
    assert labelled_groups(["a=b=x,y", "c=z"]) == [("a=b", ["x", "y"]), ("c", ["z"])]
    with pytest.raises(ValueError, match="LABEL=path"):
        labelled_groups(["nolabel"])


@pytest.mark.slow
def test_bypass_sweep_writes_table_3(tmp_path):
    rows = sweep.run_sweep(tiny_sweep("bypass", ["none", "complex"], [0], tmp_path / "bp"), progress=False)
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


@pytest.mark.slow
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


def test_every_run_of_a_sweep_is_the_base_config_with_its_point_and_seed(tmp_path):
    """A sweep point is a TrainConfig: the base with the point's model, the seed and the run's folder,
    and nothing else changed."""
    from dataclasses import asdict

    plan = tiny_sweep("pct3x3", ["0.25", "0.75"], [3, 4], tmp_path)
    for point, seed in plan.runs():
        config = plan.config(point, seed)
        changed = {k for k, v in asdict(config).items() if v != asdict(TINY)[k]}
        assert changed == set(sweep.SET_PER_RUN) == {"model", "model_args", "seed", "out"}
        assert (config.model, config.model_args, config.seed) == ("squeezenet_meta", point.model_args, seed)
        assert config.out == str(tmp_path / "points" / f"{point.name}-seed{seed}")


def test_a_printed_job_line_parses_back_to_its_runs_config(capsys, tmp_path):
    """The cluster's job lines come from the same configs the sweep trains locally: each line, parsed
    as `train` parses it, is exactly that run's TrainConfig (every field, lr and recipes included)."""
    import shlex

    from tinysqueeze.cli import parse_arguments, train_config

    args = ["sweep", "custom", "--values", "sr=0.25", "sr=0.5,bypass=simple", "--seeds", "0", "7", "--epochs", "3",
            "--optimizer", "adam", "--class-margin", "0", "--dtype", "float64", "--out", str(tmp_path)]
    assert main(args + ["--print-commands"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    base = TrainConfig(epochs=3, optimizer="adam", class_margin=0.0, dtype="float64")
    plan = sweep.Sweep("custom", sweep.make_points("custom", ["sr=0.25", "sr=0.5,bypass=simple"]), [0, 7], base, tmp_path)
    assert len(lines) == 4
    for line, (point, seed) in zip(lines, plan.runs()):
        argv = shlex.split(line)[3:]                       # after: python -m tinysqueeze
        assert train_config(parse_arguments(argv)) == plan.config(point, seed)


@pytest.mark.slow
def test_a_run_starts_from_a_saved_config(tmp_path, capsys):
    """`train --config run/config.json --out other` trains the same run again: same settings, same weights."""
    from dataclasses import replace

    from tinysqueeze.formats.checkpoint import load_checkpoint

    first, again = tmp_path / "first", tmp_path / "again"
    assert main(["train", *replace(TINY, out=str(first)).to_argv(), "--quiet"]) == 0
    assert main(["train", "--config", str(first / "config.json"), "--out", str(again), "--quiet"]) == 0
    a, b = load_checkpoint(first / "last.npz"), load_checkpoint(again / "last.npz")
    assert all(np.array_equal(a[0][k], b[0][k]) for k in a[0])
    assert {**a[2]["config"], "out": ""} == {**b[2]["config"], "out": ""}
    assert main(["train", "--config", str(first / "config.json"), "--epochs", "2", "--out", str(tmp_path / "longer"),
                 "--quiet"]) == 0                               # a flag beside --config changes that setting
    assert load_checkpoint(tmp_path / "longer" / "last.npz")[2]["config"]["epochs"] == 2
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "config.json").write_text((first / "config.json").read_text())
    assert main(["train", "--config", str(copy / "config.json"), "--resume", "--epochs", "3", "--quiet"]) == 2
    assert "names the run folder" in capsys.readouterr().err        # it would have continued `first`
    assert load_checkpoint(first / "last.npz")[2]["epoch"] == 0


def test_a_config_with_another_optimizer_takes_that_optimizers_recipe(tmp_path):
    """config.json holds the recipe's values (lr 0.001 for lars); `--config it --optimizer sgd` means
    SGD's recipe (lr 0.01), as `--optimizer sgd` alone would, unless a rate is typed too."""
    from dataclasses import asdict

    from tinysqueeze.cli import parse_arguments, train_config
    from tinysqueeze.training.config import RECIPES

    saved = tmp_path / "config.json"
    saved.write_text(__import__("json").dumps(asdict(TINY)))

    def parsed(*flags):
        return train_config(parse_arguments(["diagnose", "--config", str(saved), *flags]))

    assert parsed().lr == TINY.lr == 1e-3
    sgd = parsed("--optimizer", "sgd")
    assert (sgd.optimizer, sgd.lr, sgd.weight_decay, sgd.warmup_epochs) == ("sgd", *RECIPES["sgd"].values())
    assert parsed("--optimizer", "sgd", "--lr", "0.5").lr == 0.5
    assert sgd.epochs == TINY.epochs and sgd.image_size == TINY.image_size       # the rest from the file


@pytest.mark.parametrize("command", ["train", "diagnose", "sweep sr", "compare squeezenet1_1"])
def test_abbreviated_training_flags_are_refused(command, capsys, tmp_path):
    """`--optim sgd` would be taken for --optimizer by argparse but not seen as typed beside --config."""
    with pytest.raises(SystemExit):
        main([*command.split(), "--optim", "sgd", "--out", str(tmp_path / "x")])
    assert "unrecognized arguments: --optim" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a JSON file of settings"),
    ("[1, 2]", "must hold a JSON object"),
    ('{"epochs": 2, "colour": "red"}', "unknown settings colour"),
])
def test_a_bad_config_file_is_refused_in_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "config.json"
    bad.write_text(content)
    assert main(["train", "--config", str(bad), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
