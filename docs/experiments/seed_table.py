"""The seed tables of docs/RESULTS.md and lesson 11, from run folders.

    python docs/experiments/seed_table.py LABEL=runs/a,runs/b,... [LABEL=...] [--copy docs/results/seeds]

For each labelled group of runs (one `train` run folder per seed), prints a markdown row per run
(seed, final validation top-1 and top-5, the lowest recall of any class, classes never predicted,
classes that went silent in any epoch) and the group's mean, sample standard deviation and minimum
of top-1. Per-class recall comes from evaluating each run's last.npz on its validation split.
With --copy, each run's metrics.csv is copied there as <label, as a slug>-seed<k>-metrics.csv.
"""
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tinysqueeze.studies.stats import format_mean_spread, labelled_groups
from tinysqueeze.training.runs import RunFolder


def evaluate(run: RunFolder) -> dict:
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "evaluate", "--checkpoint", str(run.last),
                             "--json", "--confusion", str(run.path / "last-confusion-val.png")],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def row_of(run: RunFolder) -> dict:
    epochs, config = run.metrics(), run.config()
    evaluation = evaluate(run)
    return {"run": run, "seed": config["seed"], "epochs": len(epochs), "top1": float(epochs[-1]["val_top1"]),
            "top5": float(epochs[-1]["val_top5"]), "min_recall": min(evaluation["recall"].values()),
            "never_predicted": evaluation["never_predicted"],
            "silent": max(0 if math.isnan(e["silent_classes"]) else int(e["silent_classes"]) for e in epochs),
            "minutes": sum(float(e["seconds"]) for e in epochs) / 60}


def main(argv):
    copy_to = None
    if "--copy" in argv:
        copy_to = Path(argv[argv.index("--copy") + 1])
        argv = argv[: argv.index("--copy")] + argv[argv.index("--copy") + 2:]
        copy_to.mkdir(parents=True, exist_ok=True)
    print("| runs | seed | top-1 | top-5 | lowest class recall | classes never predicted | silent classes | minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for label, runs in labelled_groups(argv):
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        rows = [row_of(RunFolder(r)) for r in runs]
        for r in rows:
            print(f"| {label} | {r['seed']} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% | "
                  f"{100 * r['min_recall']:.0f}% | {len(r['never_predicted'])} | {r['silent']} | {r['minutes']:.1f} |")
            if copy_to:
                shutil.copy(r["run"].metrics_csv, copy_to / f"{slug}-seed{r['seed']}-metrics.csv")
        top1 = [100 * r["top1"] for r in rows]
        print(f"| **{label}: {len(rows)} seed(s)** | | **{format_mean_spread(top1)}** "
              f"(min {min(top1):.1f}%) | | | | | |")


if __name__ == "__main__":
    main(sys.argv[1:])
