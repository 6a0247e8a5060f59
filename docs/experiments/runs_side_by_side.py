"""Runs side by side (issue 14's SqueezeNet against AlexNet): a table and one picture of their curves.

    python docs/experiments/runs_side_by_side.py OUT.png LABEL=runs/a[,runs/b,...] LABEL=runs/c,... [--title TEXT]

Each LABEL names a model's runs (one per seed). The table: parameters, size (MB at 32 bits),
final and best validation top-1, top-5 (mean ± sd over the runs), what the last five epochs added
to the best top-1 (a run has converged when that is about zero), epochs, training minutes; the
picture: every run's curves, validation top-1/top-5 and train/val loss per epoch.
"""
import argparse
import statistics
from pathlib import Path

from tinysqueeze.evaluation.plots import plot_runs
from tinysqueeze.models.size import fp32_megabytes
from tinysqueeze.studies.stats import format_mean_spread, labelled_groups
from tinysqueeze.training.loading import load_run
from tinysqueeze.training.runs import RunFolder


def gain_in_last_epochs(epochs, last=5):
    """Points of best validation top-1 won in the last `last` epochs (0 when they found nothing better)."""
    before = max((e["val_top1"] for e in epochs[:-last]), default=0.0)
    return 100 * max(0.0, max(e["val_top1"] for e in epochs[-last:]) - before)


def main(out, *groups, title="runs side by side"):
    print("| model | runs | parameters | MB | top-1 (last epoch) | best top-1 | top-5 | gained in the last 5 epochs "
          "| epochs | minutes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    curves = {}
    for label, folders in labelled_groups(groups):
        runs = [RunFolder(f) for f in folders]
        rows = {run.path.name: run.metrics() for run in runs}
        model, _, _ = load_run(runs[0].last)
        params = model.num_parameters()
        last = [100 * r[-1]["val_top1"] for r in rows.values()]
        best = [100 * max(e["val_top1"] for e in r) for r in rows.values()]
        top5 = [100 * r[-1]["val_top5"] for r in rows.values()]
        gains = ", ".join(f"{gain_in_last_epochs(r):.1f}" for r in rows.values())
        minutes = statistics.mean(sum(e["seconds"] for e in r) / 60 for r in rows.values())
        print(f"| {label} | {len(rows)} | {params:,} | {fp32_megabytes(params):.2f} | {format_mean_spread(last)} | "
              f"{format_mean_spread(best)} | {format_mean_spread(top5)} | {gains} | {max(len(r) for r in rows.values())} | {minutes:.0f} |")
        curves[label] = list(rows.values())
    plot_runs(curves, Path(out), title)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the picture to write, e.g. docs/results/squeezenet-vs-alexnet.png")
    parser.add_argument("groups", nargs="+", help="LABEL=run_folder[,run_folder...], one per model")
    parser.add_argument("--title", default="runs side by side")
    args = parser.parse_args()
    main(args.out, *args.groups, title=args.title)
