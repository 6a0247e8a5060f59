"""Design-space sweeps (paper sections 5-6) and the SqueezeNet-vs-AlexNet comparison, at small scale.

`python -m tinysqueeze sweep sr|pct3x3|bypass|custom --data PATH --image-size S --epochs E --out DIR
[--seeds 0 1 2]` trains one model per design point and seed with the same budget, each as its own
`python -m tinysqueeze train` process writing `DIR/points/<name>-seed<k>/`, and collects
`DIR/results.csv` (one row per point and seed: parameters, size in MB, top-1, top-5, training time)
and the paper's plots, with the mean and spread over seeds: Figure 3 style (accuracy against model
size, labelled by the swept value; every seed a dot, the mean with a bar of one standard deviation)
for sr / pct3x3 / custom, and a Table 3 style table for bypass (`DIR/bypass_table.md`), which says
which points the seeds cannot tell apart.

- Resume: a point whose run finished all its epochs is not trained again; an interrupted point
  continues from its last checkpoint (`train --resume`).
- Parallel: `--workers N` runs N points at once on this machine (each process gets cores/N BLAS
  threads, unless OPENBLAS_NUM_THREADS is set).
- More machines: `--print-commands` prints one self-contained command per point, for a cluster's job
  array; then run the sweep command again (or with `--collect-only`) to gather results and plots.

A `Sweep` is a base TrainConfig (every training flag the sweep was given) and its points x seeds;
each run is `Sweep.config(point, seed)`, the base with the point's model, the seed and the run's
folder (`dataclasses.replace`), trained by the same `train` command line a cluster would run
(`train_command`: `TrainConfig.to_argv`), and read back through its `RunFolder`.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..formats.atomic import write_text_atomically, written_atomically
from ..models import get_model
from ..models.size import fp32_megabytes
from ..training.runs import RunFolder
from ..training.train import TrainConfig
from .stats import mean_and_spread

KINDS = ("sr", "pct3x3", "bypass", "custom")
DEFAULT_VALUES = {
    "sr": ["0.125", "0.25", "0.5", "0.75", "1.0"],
    "pct3x3": ["0.01", "0.125", "0.25", "0.5", "0.75", "0.99"],
    "bypass": ["none", "simple", "complex"],
}
RESULT_COLUMNS = ["point", "seed", "model", "model_args", "value", "parameters", "size_mb", "top1", "top5",
                  "train_seconds", "epochs"]


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
    if not text.replace(",", "").strip():
        raise ValueError(f"custom point {text!r} is empty: give key=value pairs, e.g. sr=0.25,pct_3x3=0.5")
    for item in filter(None, text.split(",")):
        if "=" not in item:
            raise ValueError(f"custom point {text!r}: expected key=value pairs, e.g. sr=0.25,pct_3x3=0.5")
        key, value = (part.strip() for part in item.split("=", 1))
        if key not in allowed:
            raise ValueError(f"custom point {text!r}: unknown metaparameter {key!r}; known: {', '.join(sorted(allowed))}")
        if key in ("bypass", "version"):
            args[key] = value
        elif key in ("base_e", "incr_e", "freq"):
            args[key] = _whole_number(value, key)
        else:
            args[key] = _number(value, key)
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


def _whole_number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} values must be whole numbers, got {text!r}") from None


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} values must be numbers, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} values must be finite numbers, got {text!r}")
    return value


# ---------------------------------------------------------------------------- a sweep: configs
SET_PER_RUN = ("model", "model_args", "seed", "out")    # the TrainConfig fields Sweep.config sets for each run


@dataclass
class Sweep:
    """Every run of a sweep: each point trained once per seed, each run a TrainConfig made from `base`
    (what all runs share: data, budget, recipe) with the point's model, the seed and the run's folder."""
    kind: str
    points: list[Point]
    seeds: list[int]
    base: TrainConfig
    out: Path

    def __post_init__(self):
        self.out, self.seeds = Path(self.out), [int(s) for s in self.seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"--seeds must list distinct seeds, got {self.seeds}")
        self.base.validate()

    def folder(self, point: Point, seed: int) -> RunFolder:
        return RunFolder(self.out / "points" / f"{point.name}-seed{seed}")

    def config(self, point: Point, seed: int) -> TrainConfig:
        """The base with SET_PER_RUN set for this run: the point's model, the seed, the run's folder."""
        return replace(self.base, model=point.model, model_args=dict(point.model_args), seed=seed,
                       out=str(self.folder(point, seed).path))

    def runs(self) -> list[tuple[Point, int]]:
        return [(p, seed) for p in self.points for seed in self.seeds]


def train_command(config: TrainConfig) -> list[str]:
    """The command that trains `config` in a process of its own (as a cluster's job would)."""
    return [sys.executable, "-m", "tinysqueeze", "train", *config.to_argv(), "--quiet"]


class RunFailed(ValueError):
    """A run of the sweep ended with an error; the message names it, its last error line and its log."""


# The trainers running now (one per busy worker), so that a Ctrl-C can stop them at once.
_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


def _die_with_the_sweep() -> None:
    """Runs in a trainer's process before it starts (Linux): ask the kernel for SIGTERM when the
    thread that started it dies -- even by `kill -9` of the sweep -- so no trainer is left orphaned,
    holding its run folder's lock."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)        # 1: PR_SET_PDEATHSIG


def run_point(config: TrainConfig, threads: int) -> None:
    """Trains one run in its own process (resuming it if it has a checkpoint). Raises RunFailed."""
    folder = RunFolder(config.out)
    command = train_command(config) + (["--resume"] if folder.has_resume_point() else [])
    threads = os.environ.get("OPENBLAS_NUM_THREADS", str(threads))      # a thread count you set wins
    env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
    folder.path.mkdir(parents=True, exist_ok=True)
    with open(folder.log, "a") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   preexec_fn=_die_with_the_sweep if sys.platform.startswith("linux") else None)
        with _running_lock:
            _running.add(process)
        try:
            returncode = process.wait()
        finally:
            with _running_lock:
                _running.discard(process)
    if returncode != 0:
        errors = [line.strip() for line in folder.log.read_text(errors="replace").splitlines() if line.startswith("error:")]
        reason = f": {errors[-1]}" if errors else ""
        raise RunFailed(f"training {folder.path.name} failed (exit {returncode}){reason}; its log: {folder.log}")


def stop_running_trainers(timeout: float = 30.0) -> None:
    """Sends every running trainer SIGINT (it stops as after a Ctrl-C: its folder stays resumable) and
    waits for them; SIGKILL for one that has not stopped within `timeout` seconds."""
    with _running_lock:
        processes = list(_running)
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()


def collect(sweep: Sweep, num_classes: int) -> list[dict]:
    """One row per finished (point, seed), read from each run's metrics.csv; also writes results.csv."""
    rows = []
    for point in sweep.points:
        params = point.parameters(num_classes)
        for seed in sweep.seeds:
            epochs = sweep.folder(point, seed).metrics()
            if not epochs:
                continue
            last = epochs[-1]
            rows.append({"point": point.name, "seed": seed, "model": point.model,
                         "model_args": json.dumps(point.model_args), "value": point.value, "parameters": params,
                         "size_mb": fp32_megabytes(params), "top1": float(last["val_top1"]),
                         "top5": float(last["val_top5"]), "train_seconds": sum(float(e["seconds"]) for e in epochs),
                         "epochs": len(epochs)})
    with written_atomically(sweep.out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.6g}" if isinstance(row[k], float) else row[k]) for k in RESULT_COLUMNS})
    return rows


def read_results(path) -> list[dict]:
    """results.csv back into the rows `collect` made (numbers as numbers), so a sweep's summary and
    table can be re-made from the file alone, e.g. `format_rows(summarise(read_results(path)))`."""
    kinds = {"seed": int, "parameters": int, "epochs": int, "size_mb": float, "top1": float, "top5": float,
             "train_seconds": float}
    with open(path, newline="") as f:
        return [{k: kinds.get(k, str)(v) for k, v in row.items()} for row in csv.DictReader(f)]


def summarise(rows: list[dict]) -> list[dict]:
    """One row per point, in sweep order: the seeds' mean and sample standard deviation (0 for one seed)."""
    summary = {}
    for row in rows:
        summary.setdefault(row["point"], []).append(row)
    out = []
    for name, runs in summary.items():
        top1, top1_sd = mean_and_spread([r["top1"] for r in runs])
        top5, top5_sd = mean_and_spread([r["top5"] for r in runs])
        out.append({**{k: runs[0][k] for k in ("point", "model", "value", "parameters", "size_mb")},
                    "seeds": len(runs), "top1": top1, "top1_sd": top1_sd, "top5": top5, "top5_sd": top5_sd,
                    "train_seconds": float(np.mean([r["train_seconds"] for r in runs])), "runs": runs})
    return out


def indistinguishable(summary: list[dict]) -> list[tuple[str, str]]:
    """Pairs of points whose mean top-1 differ by less than the sum of their standard deviations:
    with these seeds the sweep cannot tell them apart. (Only for points with at least 2 seeds.)"""
    pairs = []
    for i, a in enumerate(summary):
        for b in summary[i + 1:]:
            if min(a["seeds"], b["seeds"]) >= 2 and abs(a["top1"] - b["top1"]) < a["top1_sd"] + b["top1_sd"]:
                pairs.append((a["point"], b["point"]))
    return pairs


def plot_figure3(summary: list[dict], kind: str, path: Path, title: str) -> None:
    """Accuracy (top-1 and top-5) against model size, each point labelled by its swept value: every
    seed a dot, the mean joined by a line, with a bar of one standard deviation."""
    from ..evaluation.plots import pyplot, save_figure

    plt = pyplot()
    summary = sorted(summary, key=lambda r: r["size_mb"])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sizes = [r["size_mb"] for r in summary]
    for key, style, label in (("top5", "s--", "top-5"), ("top1", "o-", "top-1")):
        line = ax.errorbar(sizes, [100 * r[key] for r in summary], yerr=[100 * r[f"{key}_sd"] for r in summary],
                           fmt=style, capsize=3, label=f"{label} (mean ± sd)", alpha=0.8 if key == "top5" else 1)
        for r in summary:
            ax.plot([r["size_mb"]] * len(r["runs"]), [100 * run[key] for run in r["runs"]], ".",
                    color=line[0].get_color(), alpha=0.5)
    for r in summary:
        ax.annotate(f"{kind}={r['value']}", (r["size_mb"], 100 * r["top1"]), textcoords="offset points",
                    xytext=(4, -12), fontsize=8)
    seeds = max(r["seeds"] for r in summary)
    ax.set_xlabel("model size (MB at 32 bits)")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title(f"{title} ({seeds} seed{'s' if seeds > 1 else ''})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def bypass_table(summary: list[dict]) -> str:
    """Table 3 of the paper, with our numbers: mean ± standard deviation over the seeds."""
    paper = {"none": (57.5, 80.3, 4.8), "simple": (60.4, 82.5, 4.8), "complex": (58.8, 82.0, 7.7)}
    lines = ["| architecture | seeds | top-1 | top-5 | size (MB) | paper top-1 / top-5 / size as it prints it (ImageNet) |",
             "|---|---|---|---|---|---|"]
    for r in summary:
        p = paper.get(r["value"])
        ref = f"{p[0]} / {p[1]} / {p[2]}" if p else ""
        name = "no bypass" if r["value"] == "none" else f"{r['value']} bypass"
        lines.append(f"| SqueezeNet, {name} | {r['seeds']} | {100 * r['top1']:.1f} ± {100 * r['top1_sd']:.1f}% | "
                     f"{100 * r['top5']:.1f} ± {100 * r['top5_sd']:.1f}% | {r['size_mb']:.2f} | {ref} |")
    pairs = indistinguishable(summary)
    if pairs:
        lines.append("")
        lines.append("Not distinguishable with these seeds (means closer than the sum of their standard deviations): "
                     + "; ".join(f"{a} and {b}" for a, b in pairs) + ".")
    return "\n".join(lines)


def run_sweep(sweep: Sweep, workers: int = 1, print_commands: bool = False, collect_only: bool = False,
              num_classes: int | None = None, progress: bool = True) -> list[dict]:
    """Trains every (point, seed) of `sweep` not yet finished; -> the summary (one row per point, mean
    and sd over seeds, each with its `runs`). results.csv keeps every seed. print_commands: print each
    run's `train` command (for a cluster's job array) and train nothing."""
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    jobs = sweep.runs()
    if print_commands:
        for p, seed in jobs:
            print(shlex.join(train_command(sweep.config(p, seed))))
        return []
    if collect_only and not sweep.out.is_dir():
        raise ValueError(f"--collect-only: {sweep.out} is not a sweep's folder (no such folder): nothing to collect")
    if collect_only and not (sweep.out / "sweep.json").is_file() and not (sweep.out / "points").is_dir():
        raise ValueError(f"--collect-only: {sweep.out} is not a sweep's folder (no sweep.json, no points/): nothing "
                         "to collect" + (" -- it holds a training run" if RunFolder(sweep.out).config_json.is_file() else ""))
    sweep.out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(sweep.out / "sweep.json", json.dumps(
        {"kind": sweep.kind, "seeds": sweep.seeds,
         "shared": {k: v for k, v in asdict(sweep.base).items() if k not in SET_PER_RUN},   # what every run has
         "points": [asdict(p) for p in sweep.points]}, indent=1) + "\n")
    todo = [(p, seed) for p, seed in jobs if sweep.folder(p, seed).finished_epochs() < sweep.base.epochs]
    if not collect_only and todo:
        threads = max(1, (os.cpu_count() or 2) // workers)
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool, \
                tqdm(total=len(todo), desc=f"sweep {sweep.kind}", unit="run", disable=not progress) as bar:
            stop = threading.Event()                 # set by a failure or Ctrl-C: start nothing more

            def train_unless_stopped(config: TrainConfig) -> None:
                if stop.is_set():
                    return
                try:
                    run_point(config, threads)
                except BaseException:
                    stop.set()
                    raise

            futures = [pool.submit(train_unless_stopped, sweep.config(p, seed)) for p, seed in todo]
            try:
                for future in as_completed(futures):
                    future.result()
                    bar.update(1)
            except BaseException:            # a run failed, or Ctrl-C: start nothing more
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                if not isinstance(sys.exc_info()[1], RunFailed):
                    stop_running_trainers()  # Ctrl-C: the running ones stop too (a failure lets them finish)
                raise
        if progress:
            print(f"trained {len(todo)} run(s) in {time.perf_counter() - start:.0f}s; "
                  f"{len(jobs) - len(todo)} already done")
    summary = summarise(collect(sweep, num_classes or _num_classes_of_runs(sweep)))
    if sweep.kind == "bypass":
        write_text_atomically(sweep.out / "bypass_table.md", bypass_table(summary) + "\n")
    elif summary:
        base = sweep.base
        plot_figure3(summary, sweep.kind, sweep.out / "figure3.png",
                     f"{sweep.kind} sweep on {Path(base.data).name} at {base.image_size}px, {base.epochs} epochs")
    return summary


def _num_classes_of_runs(sweep: Sweep) -> int:
    for p, seed in sweep.runs():
        folder = sweep.folder(p, seed)
        if folder.has_resume_point():
            return len(folder.meta().classes)
    return 10


def format_rows(summary: list[dict]) -> str:
    lines = [f"{'point':<22} {'parameters':>11} {'MB':>7} {'seeds':>5} {'top-1 (mean ± sd)':>18} "
             f"{'top-5':>14} {'train s':>8}"]
    for r in summary:
        lines.append(f"{r['point']:<22} {r['parameters']:>11,} {r['size_mb']:>7.2f} {r['seeds']:>5} "
                     f"{100 * r['top1']:>10.1f} ± {100 * r['top1_sd']:4.1f}% {100 * r['top5']:>6.1f} ± "
                     f"{100 * r['top5_sd']:4.1f}% {r['train_seconds']:>8.0f}")
    pairs = indistinguishable(summary)
    if pairs:
        lines.append("not distinguishable with these seeds: " + "; ".join(f"{a} / {b}" for a, b in pairs))
    return "\n".join(lines)


def compare_points(models: list[str]) -> list[Point]:
    """Points for `compare`: named models from the registry, trained with the same budget. A model
    named twice is refused (it would be counted as two seeds of one point)."""
    repeated = sorted({name for name in models if models.count(name) > 1})
    if repeated:
        raise ValueError(f"compare: {', '.join(repeated)} named more than once; name each model once "
                         "(--seeds trains it on several seeds)")
    return [Point(name, name, {}, name) for name in models]
