"""Design-space sweeps (paper sections 5-6) and the SqueezeNet-vs-AlexNet comparison, at small scale.

`python -m tinysqueeze sweep sr|pct3x3|bypass|custom --data PATH --image-size S --epochs E --out DIR`
trains one model per design point with the same budget and seed, each as its own
`python -m tinysqueeze train` process writing `DIR/points/<name>/`, and collects `DIR/results.csv`
(the point, parameters, size in MB, top-1, top-5, training time) and the paper's plots: Figure 3
style (accuracy against model size, labelled by the swept value) for sr / pct3x3 / custom, and a
Table 3 style table for bypass (`DIR/bypass_table.md`).

- Resume: a point whose run finished all its epochs is not trained again; an interrupted point
  continues from its last checkpoint (`train --resume`).
- Parallel: `--workers N` runs N points at once on this machine (each process gets 2/N threads).
- More machines: `--print-commands` prints one self-contained command per point, for a cluster's job
  array; then run the sweep command again (or with `--collect-only`) to gather results and plots.
"""
from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from .models import get_model

KINDS = ("sr", "pct3x3", "bypass", "custom")
DEFAULT_VALUES = {
    "sr": ["0.125", "0.25", "0.5", "0.75", "1.0"],
    "pct3x3": ["0.01", "0.125", "0.25", "0.5", "0.75", "0.99"],
    "bypass": ["none", "simple", "complex"],
}
RESULT_COLUMNS = ["point", "model", "model_args", "value", "parameters", "size_mb", "top1", "top5", "train_seconds",
                  "epochs"]


@dataclass
class Point:
    name: str
    model: str
    model_args: dict
    value: str

    def parameters(self, num_classes: int) -> int:
        return get_model(self.model, num_classes=num_classes, **dict(self.model_args)).num_parameters()


def parse_custom(text: str) -> dict:
    """'sr=0.25,pct_3x3=0.5,bypass=simple' -> {'sr': 0.25, 'pct_3x3': 0.5, 'bypass': 'simple'}."""
    allowed = {"base_e", "incr_e", "pct_3x3", "freq", "sr", "bypass", "version"}
    args = {}
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise ValueError(f"custom point {text!r}: expected key=value pairs, e.g. sr=0.25,pct_3x3=0.5")
        key, value = (part.strip() for part in item.split("=", 1))
        if key not in allowed:
            raise ValueError(f"custom point {text!r}: unknown metaparameter {key!r}; known: {', '.join(sorted(allowed))}")
        if key in ("bypass", "version"):
            args[key] = value
        elif key in ("base_e", "incr_e", "freq"):
            args[key] = int(value)
        else:
            args[key] = float(value)
    return args


def make_points(kind: str, values: list[str] | None, version: str = "1_1") -> list[Point]:
    """The design points of a sweep, each checked by building it (bad values are refused up front)."""
    if kind not in KINDS:
        raise ValueError(f"sweep kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "custom" and not values:
        raise ValueError("a custom sweep needs --values, e.g. --values sr=0.25 sr=0.5,pct_3x3=0.25")
    values = values or DEFAULT_VALUES[kind]
    points = []
    for value in values:
        if kind == "sr":
            args = {"sr": _number(value, "sr")}
        elif kind == "pct3x3":
            args = {"pct_3x3": _number(value, "pct3x3"), "sr": 0.5}  # the paper sweeps pct_3x3 at SR 0.5
        elif kind == "bypass":
            if value not in DEFAULT_VALUES["bypass"]:
                raise ValueError(f"bypass values are none, simple and complex; got {value!r}")
            args = {"bypass": value}
        else:
            args = parse_custom(value)
        args = {"version": version, **args}
        point = Point(f"{kind}-{value}".replace("=", "").replace(",", "-"), "squeezenet_meta", args, value)
        point.parameters(10)  # raises a clear ValueError for an impossible point
        points.append(point)
    if len({p.name for p in points}) != len(points):
        raise ValueError("the sweep's values repeat a point")
    return points


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{what} values must be numbers, got {text!r}") from None


def train_command(point: Point, data: str, image_size: int, epochs: int, batch_size: int, seed: int, out: Path,
                  extra: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "tinysqueeze", "train", "--model", point.model, "--data", data,
           "--image-size", str(image_size), "--epochs", str(epochs), "--batch-size", str(batch_size),
           "--seed", str(seed), "--out", str(out), "--quiet"]
    if point.model_args:
        cmd += ["--model-args", json.dumps(point.model_args)]
    return cmd + extra


def finished_epochs(run: Path) -> int:
    metrics = run / "metrics.csv"
    if not metrics.is_file():
        return 0
    with open(metrics, newline="") as f:
        return len(list(csv.DictReader(f)))


def run_point(command: list[str], run: Path, threads: int) -> None:
    """Trains one point in its own process (resuming it if a checkpoint exists)."""
    if (run / "last.npz").exists():
        command = command + ["--resume"]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    run.mkdir(parents=True, exist_ok=True)
    with open(run / "train.log", "a") as log:
        result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"training {run.name} failed (exit {result.returncode}); see {run / 'train.log'}")


def collect(points: list[Point], out: Path, num_classes: int) -> list[dict]:
    rows = []
    for point in points:
        run = out / "points" / point.name
        metrics = run / "metrics.csv"
        if not metrics.is_file():
            continue
        with open(metrics, newline="") as f:
            epochs = list(csv.DictReader(f))
        last = epochs[-1]
        params = point.parameters(num_classes)
        rows.append({"point": point.name, "model": point.model, "model_args": json.dumps(point.model_args),
                     "value": point.value, "parameters": params, "size_mb": params * 4 / 2**20,
                     "top1": float(last["val_top1"]), "top5": float(last["val_top5"]),
                     "train_seconds": sum(float(e["seconds"]) for e in epochs), "epochs": len(epochs)})
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in RESULT_COLUMNS})
    return rows


def plot_figure3(rows: list[dict], kind: str, path: Path, title: str) -> None:
    """Accuracy (top-1 and top-5) against model size, each point labelled by its swept value."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: r["size_mb"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = [r["size_mb"] for r in rows]
    ax.plot(sizes, [100 * r["top5"] for r in rows], "s--", label="top-5", alpha=0.7)
    ax.plot(sizes, [100 * r["top1"] for r in rows], "o-", label="top-1")
    for r in rows:
        ax.annotate(f"{kind}={r['value']}", (r["size_mb"], 100 * r["top1"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    ax.set_xlabel("model size (MB at 32 bits)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def bypass_table(rows: list[dict]) -> str:
    """Table 3 of the paper, with our numbers."""
    paper = {"none": (57.5, 80.3, 4.8), "simple": (60.4, 82.5, 4.8), "complex": (58.8, 82.0, 7.7)}
    lines = ["| architecture | top-1 | top-5 | size (MB) | paper top-1 / top-5 / MB (ImageNet) |", "|---|---|---|---|---|"]
    for r in rows:
        p = paper.get(r["value"])
        ref = f"{p[0]} / {p[1]} / {p[2]}" if p else ""
        name = "no bypass" if r["value"] == "none" else f"{r['value']} bypass"
        lines.append(f"| SqueezeNet, {name} | {100 * r['top1']:.1f}% | {100 * r['top5']:.1f}% | "
                     f"{r['size_mb']:.2f} | {ref} |")
    return "\n".join(lines)


def run_sweep(kind: str, data: str, image_size: int, epochs: int, out, values=None, workers: int = 1,
              batch_size: int = 64, seed: int = 0, version: str = "1_1", print_commands: bool = False,
              collect_only: bool = False, extra: list[str] | None = None, points: list[Point] | None = None,
              num_classes: int | None = None, progress: bool = True) -> list[dict]:
    out = Path(out)
    points = points if points is not None else make_points(kind, values, version)
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    extra = extra or []
    commands = {p.name: train_command(p, data, image_size, epochs, batch_size, seed, out / "points" / p.name, extra)
                for p in points}
    if print_commands:
        for p in points:
            print(shlex.join(commands[p.name]))
        return []
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps({"kind": kind, "data": data, "image_size": image_size, "epochs": epochs,
                                                "batch_size": batch_size, "seed": seed,
                                                "points": [p.__dict__ for p in points]}, indent=1) + "\n")
    todo = [p for p in points if finished_epochs(out / "points" / p.name) < epochs]
    if not collect_only and todo:
        threads = max(1, (os.cpu_count() or 2) // workers)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                tqdm(total=len(todo), desc=f"sweep {kind}", unit="point", disable=not progress) as bar:
            futures = [pool.submit(run_point, commands[p.name], out / "points" / p.name, threads) for p in todo]
            for future in futures:
                future.result()
                bar.update(1)
        if progress:
            print(f"trained {len(todo)} point(s) in {time.perf_counter() - start:.0f}s; "
                  f"{len(points) - len(todo)} already done")
    classes = num_classes or _num_classes_of_runs(out, points)
    rows = collect(points, out, classes)
    if kind == "bypass":
        (out / "bypass_table.md").write_text(bypass_table(rows) + "\n")
    elif rows:
        plot_figure3(rows, kind, out / "figure3.png", f"{kind} sweep on {Path(data).name} at {image_size}px, "
                                                       f"{epochs} epochs")
    return rows


def _num_classes_of_runs(out: Path, points: list[Point]) -> int:
    from .checkpoint import load_checkpoint

    for p in points:
        last = out / "points" / p.name / "last.npz"
        if last.exists():
            return len(load_checkpoint(last)[2]["classes"])
    return 10


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'point':<22} {'parameters':>11} {'MB':>7} {'top-1':>7} {'top-5':>7} {'train s':>8}"]
    for r in rows:
        lines.append(f"{r['point']:<22} {r['parameters']:>11,} {r['size_mb']:>7.2f} {100 * r['top1']:>6.1f}% "
                     f"{100 * r['top5']:>6.1f}% {r['train_seconds']:>8.0f}")
    return "\n".join(lines)


def compare_points(models: list[str]) -> list[Point]:
    """Points for `compare`: named models from the registry, trained with the same budget."""
    return [Point(name, name, {}, name) for name in models]
