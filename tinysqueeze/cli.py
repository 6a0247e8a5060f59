"""The command line: `python -m tinysqueeze COMMAND ...` (see `--help` of each command)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from .distributed.launch import launched_rank, launched_size
from .distributed.threads import let_idle_threads_sleep, share_cores

share_cores()   # one of several processes on this machine: its share of the cores, set before NumPy loads
let_idle_threads_sleep()   # idle threads sleep after a short spin, so Numba's loops may use every core (threads.py)

try:     # NumPy, Pillow and Numba load here (about half a second): Ctrl-C meanwhile is one line too
    from .datasets import MAX_CLASSES, MAX_IMAGE_SIZE  # the largest sizes a flag may ask for
    from .distributed.world import DistributedError
except KeyboardInterrupt:
    print("\ninterrupted", file=sys.stderr)
    raise SystemExit(130) from None


def gradcheck_arguments(p) -> None:
    p.add_argument("--only", help="check only layers whose name contains this text")
    p.add_argument("--layers-only", action="store_true", help="skip the Fire module and network checks")
    p.add_argument("--verbose", action="store_true", help="print the error of every array")


def cmd_gradcheck(args) -> int:
    from .evaluation.gradcheck import all_cases, run_cases

    return 1 if run_cases(all_cases(args.layers_only, args.only), args.verbose) else 0


def check_arguments(p) -> None:
    p.add_argument("assignment", nargs="?", help="which assignment: value, linear, conv, pooling, "
                                                 "relu_dropout_concat, loss, gradcheck, step, fire, sgd (default: "
                                                 "all, one line each)")
    p.add_argument("--impl", help="the file to grade (default: FOLDER/ASSIGNMENT.py)")
    p.add_argument("--folder", default="assignments",
                   help="where your assignment files are; the starting files are copied there when missing "
                        "(default assignments)")


def cmd_check(args) -> int:
    from .course.assignments import check, check_all, write_starting_files

    if args.impl and not args.assignment:
        raise ValueError("--impl grades one file: say which assignment it is, e.g. `check conv --impl my_conv.py`")
    folder = Path(args.folder)
    if not args.impl:
        written = write_starting_files(folder)
        if written:
            files = f"{len(written)} starting file{'s' * (len(written) != 1)}"
            print(f"wrote {files} to {folder}/ (the files already there are left as they are): write each TODO, "
                  "then run this again\n", file=sys.stderr)
    if args.assignment is None:
        return 0 if check_all(folder) else 1
    path = Path(args.impl) if args.impl else folder / f"{args.assignment}.py"
    return 0 if check(args.assignment, path) else 1


def models_arguments(p) -> None:
    """`models` takes no arguments."""


def cmd_models(args) -> int:
    from .models.registry import DESCRIPTIONS, model_names

    for name in model_names():
        print(f"{name:<30} {DESCRIPTIONS.get(name, '')}")
    return 0


def summary_arguments(p) -> None:
    p.add_argument("--model", default="squeezenet1_0", help="a name from `models` (default squeezenet1_0)")
    p.add_argument("--image-size", type=image_size, default=227,
                   help=f"input side in pixels, at most {MAX_IMAGE_SIZE} (default 227)")
    p.add_argument("--num-classes", type=class_count, default=1000, help=f"at most {MAX_CLASSES:,} (default 1000)")


def cmd_summary(args) -> int:
    from .models import get_model
    from .models.summary import format_table

    print(format_table(get_model(args.model, num_classes=args.num_classes), args.model, args.image_size))
    return 0


def predict_arguments(p) -> None:
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--weights", help="weights file: .npz, or a PyTorch/torchvision .pth")
    p.add_argument("--checkpoint", help="a training checkpoint (runs/NAME/best.npz): model, classes and "
                                        "preprocessing come from it")
    p.add_argument("--model", help="architecture of --weights from an .npz or .pth (default squeezenet1_1); "
                                   "a checkpoint or .tsq file names its own")
    p.add_argument("--classes", help="class names file: one per line, or wnid<TAB>name")
    p.add_argument("--image-size", type=image_size, default=224,
                   help=f"centre crop, at most {MAX_IMAGE_SIZE} (default 224, after resize 256; a training "
                        "checkpoint sets its own)")
    p.add_argument("--topk", type=positive_int, default=5)


def cmd_predict(args) -> int:
    from .evaluation.predict import format_predictions, predict_files, preprocessing, read_class_names
    from .training.loading import check_named_model, load_model, load_run

    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"no image file at {', '.join(missing)}")
    if bool(args.weights) == bool(args.checkpoint):
        raise ValueError("give either --weights FILE (with --model) or --checkpoint FILE from a training run")
    if args.checkpoint:
        model, meta = load_run(args.checkpoint)[:2]
        check_named_model(args.checkpoint, meta.model, args.model)
    else:
        model, meta = load_model(args.weights, args.model, default_model="squeezenet1_1")
    check_size_not_overridden(args, meta)
    names = read_class_names(args.classes) if args.classes else (meta.class_names if meta else None)
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f"{len(names)} class names for a model of {model.num_classes} classes")
    results = predict_files(model, args.images, topk=min(args.topk, model.num_classes),
                            **preprocessing(meta, args.image_size))
    print(format_predictions(args.images, results, names))
    return 0


def check_size_not_overridden(args, meta) -> None:
    """A training checkpoint fixes the image size its preprocessing uses: refuse a typed --image-size
    that says otherwise rather than ignore it."""
    if meta is not None and "image_size" in args.explicit and args.image_size != meta.image_size:
        raise ValueError(f"--image-size {args.image_size}: the checkpoint was trained at {meta.image_size} px "
                         f"and its preprocessing uses that size; leave out --image-size")


def train_arguments(p) -> None:
    add_training_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")


def cmd_train(args) -> int:
    from .distributed.world import current_world
    from .training.interrupts import sigint_remembered

    config = train_config(args)
    config.validate()
    world = current_world(config.allreduce)      # one process, or this rank of an mpiexec / srun job
    if args.config and args.resume and "out" not in args.explicit and Path(config.out) != Path(args.config).parent:
        raise ValueError(f"--resume --config {args.config}: that file names the run folder {config.out}, not the "
                         f"folder it is in; add --out to say which run to continue")
    explicit = None if args.config else args.explicit       # a --config's every setting counts as typed
    with sigint_remembered():                    # a Ctrl-C that a finalizer swallows still stops training
        return train_and_report(config, args, explicit, world)


def train_and_report(config, args, explicit, world) -> int:
    """prepare and fit, with the one line a user reads at the end (done, interrupted, or diverged)."""
    from .training.train import TrainingDiverged, fit, prepare

    run = prepare(config, args.resume, args.overwrite, not args.quiet, explicit, world=world)
    try:
        rows = fit(run)
    except TrainingDiverged as error:             # every rank sees the same summed loss: all stop here
        if world.is_writer:
            print(f"error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        if not world.is_writer:                  # rank 0 knows what its folder holds, and says it
            return 130
        last = run.folder.last
        print(f"\ninterrupted: {last} holds the last finished epoch; continue with --resume" if last.exists() else
              f"\ninterrupted before the first epoch finished: nothing to resume in {run.out}; "
              "run the same command again to start over", file=sys.stderr)
        return 130
    if rows and world.is_writer:
        print(f"done: val top-1 {100 * rows[-1]['val_top1']:.1f}% (best {100 * run.meta.best_top1:.1f}%) after "
              f"{int(rows[-1]['epoch'])} epochs; {run.folder.metrics_csv}, {run.folder.curves.name}, "
              f"{run.folder.best.name}")
    return 0


def diagnose_arguments(p) -> None:
    add_training_arguments(p)
    p.add_argument("--steps", type=positive_int, default=150, help="optimiser steps to trace (default 150)")
    p.add_argument("--plot", help="also draw the trace into this PNG")


def cmd_diagnose(args) -> int:
    from .formats.atomic import check_output
    from .training.diagnose import format_trace, plot_trace, trace_recipe
    from .training.runs import refuse_run_file

    config = train_config(args)
    if args.plot is not None:
        check_output(args.plot, "--plot", ".png", {"--data": config.data, "--config": getattr(args, "config", None)})
        refuse_run_file(args.plot, "--plot")
    records, names = trace_recipe(config, args.steps, progress=not args.quiet)
    print(format_trace(records, max(1, args.steps // 15), names))
    if args.plot:
        label = f"{config.optimizer} lr {config.lr:g}, class margin {config.class_margin:g}"
        plot_trace({label: records}, args.plot, f"{config.model} on {config.data}: the first {args.steps} steps")
        print(f"plot: {args.plot}")
    return 0


def evaluate_arguments(p) -> None:
    p.add_argument("--checkpoint", required=True, help="runs/NAME/best.npz or last.npz")
    p.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--split", choices=["val", "train"], default="val")
    p.add_argument("--batch-size", type=positive_int, default=100)
    p.add_argument("--confusion", help="where to write the confusion-matrix PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, n, loss, ...)")


def cmd_evaluate(args) -> int:
    from .evaluation.evaluate import evaluate, format_evaluation, summary
    from .evaluation.plots import plot_confusion
    from .formats.atomic import check_output
    from .training.loading import data_for, load_run, loader_for
    from .training.runs import refuse_run_file

    confusion = (args.confusion if args.confusion is not None
                 else Path(args.checkpoint).with_name(f"{Path(args.checkpoint).stem}-confusion-{args.split}.png"))
    confusion = check_output(confusion, "--confusion", ".png", {"--checkpoint": args.checkpoint, "--data": args.data})
    refuse_run_file(confusion, "--confusion")
    model, meta, _ = load_run(args.checkpoint)
    dataset = data_for(meta, args.split, args.data, progress=not args.json)
    result = evaluate(model, loader_for(meta, dataset, args.batch_size), len(meta.classes), progress=not args.json)
    names = dataset.display_names or meta.class_names
    try:
        plot_confusion(result["confusion"], names, confusion,
                       f"{meta.model} on {args.data or meta.data} ({args.split}): top-1 {100 * result['top1']:.1f}%")
    except OSError as error:
        print(f"warning: the confusion matrix could not be written to {confusion} ({error.strerror}); "
              "choose another place with --confusion", file=sys.stderr)
        confusion = None
    report = dict(summary(result, names), checkpoint=str(args.checkpoint), data=args.data or meta.data,
                  split=args.split, confusion_png=confusion and str(confusion))
    print(json.dumps(report) if args.json else format_evaluation(report, meta.model))
    if report["silent_classes"] and not args.json:
        print(f"warning: {len(report['silent_classes'])} class(es) never scored above 0 on any image, so they can "
              f"never be predicted (dead classes): {', '.join(report['silent_classes'])}", file=sys.stderr)
    return 0


def cmd_data_get(args) -> int:
    from .datasets.download import get_dataset

    path = get_dataset(args.name, Path(args.root))
    print(f"{args.name} is ready in {path}; train with: python -m tinysqueeze train --data {path}")
    return 0


def compress_arguments(p) -> None:
    p.add_argument("--model", help="architecture of the weights (default squeezenet1_1); a checkpoint or "
                                   ".tsq file names its own")
    p.add_argument("--checkpoint", help="any weights file (.npz, training checkpoint, .pth); none: fresh weights")
    p.add_argument("--num-classes", type=class_count, default=1000,
                   help=f"classes (of fresh weights, without a checkpoint), at most {MAX_CLASSES:,} (default 1000)")
    p.add_argument("--density", type=float, default=0.33, help="share of each layer's weights kept, in (0, 1]")
    p.add_argument("--bits", type=int, default=6, help="bits per shared-weight code, 1..8 (2^bits clusters)")
    p.add_argument("--policy", choices=["paper", "uniform"], default="paper",
                   help="per-layer densities: 'paper' prunes the 3x3 and final layers only (as the paper's "
                        "released model), 'uniform' every layer alike")
    p.add_argument("--out", required=True, help="the .tsq file to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing file at --out that is not a .tsq file (never an input of the command)")
    p.add_argument("--finetune-epochs", type=non_negative_int, default=0,
                   help="fine-tune after pruning and after sharing (default 0: no fine-tuning)")
    p.add_argument("--data", help="dataset for fine-tuning and accuracy (a checkpoint's own by default)")
    p.add_argument("--image-size", type=image_size, default=64,
                   help=f"without a training checkpoint, at most {MAX_IMAGE_SIZE} (default 64)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (Adam)")


def cmd_compress(args) -> int:
    from .compress import deep_compress, format_sizes, save_compressed
    from .compress.prune import check_density
    from .compress.quantize import check_bits
    from .formats.atomic import check_output
    from .models import get_model
    from .training.loading import compression_data, load_model
    from .training.runs import refuse_run_file

    check_density(args.density), check_bits(args.bits)
    check_output(args.out, "--out", ".tsq", {"--checkpoint": args.checkpoint, "--data": args.data}, args.overwrite)
    refuse_run_file(args.out, "--out")
    if args.checkpoint:
        if "num_classes" in args.explicit:
            raise ValueError("--num-classes is for fresh weights: the classes of --checkpoint come from its weights; "
                             "leave it out")
        model, meta = load_model(args.checkpoint, args.model, default_model="squeezenet1_1")
        check_size_not_overridden(args, meta)
    else:
        args.model = args.model or "squeezenet1_1"
        print(f"no --checkpoint: compressing freshly initialised {args.model} weights (sizes only)")
        model, meta = get_model(args.model, num_classes=args.num_classes), None
    train, val = compression_data(meta, args.data, args.finetune_epochs, args.image_size, args.batch_size)
    compressed = deep_compress(model, args.density, args.bits, args.policy, train, val, args.finetune_epochs,
                               lr=args.lr, report=lambda stage: print(
                                   f"{stage.label:<40} val top-1 {100 * stage.top1:.2f}%  top-5 {100 * stage.top5:.2f}%"))
    name = meta.model if meta else stored_model_name(args.checkpoint) or args.model or "squeezenet1_1"
    rows = save_compressed(args.out, compressed, name, meta.model_args if meta else None)
    print(format_sizes(rows, f"{name}: density {args.density}, {args.bits} bits -> {args.out}"))
    return 0


def stored_model_name(path) -> str | None:
    """The model a .tsq file says it holds, or None for any other file (or none)."""
    from .formats.tsq import is_tsq, read_tsq

    return read_tsq(path)[1].get("model") if path and is_tsq(path) else None


def add_sweep_arguments(p, each: str) -> None:
    """What a sweep or a comparison takes: every training flag but those each run sets itself
    (studies/sweep.py SET_PER_RUN: model, model args, seed and folder), then its own."""
    from .studies.sweep import SET_PER_RUN

    add_training_arguments(p, SET_PER_RUN)
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help=f"train every {each} once per seed (default: 0); results.csv keeps every seed")
    p.add_argument("--out", required=True, help="the sweep's folder (each run in OUT/points/NAME-seedS/)")
    p.add_argument("--workers", type=positive_int, default=1, help="runs trained at once on this machine")
    p.add_argument("--print-commands", action="store_true",
                   help="print one train command per run (for a cluster's job array) and stop")
    p.add_argument("--collect-only", action="store_true", help="gather results and plots, train nothing")


def sweep_of(args, kind: str, points):
    from .studies.sweep import SET_PER_RUN, Sweep

    if not args.out.strip():                             # Path("") would be the current folder
        raise ValueError("--out is empty: name the sweep's folder (e.g. runs/sweep-sr)")
    return Sweep(kind, points, args.seeds, train_config(args, SET_PER_RUN), Path(args.out))


def run_sweep_command(args, sweep) -> list[dict]:
    from .studies.sweep import run_sweep

    try:
        return run_sweep(sweep, workers=args.workers, print_commands=args.print_commands,
                         collect_only=args.collect_only, progress=not args.quiet)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the sweep stopped: finished runs are kept, a stopped run continues from its "
                                f"last epoch; the same command carries on ({sweep.out})") from None


def sweep_arguments(p) -> None:
    p.add_argument("kind", choices=["sr", "pct3x3", "bypass", "custom"])
    p.add_argument("--values", nargs="+", help="the swept values (custom: key=value,... per point)")
    p.add_argument("--version", choices=["1_0", "1_1"], default="1_1", help="macroarchitecture (default 1_1)")
    add_sweep_arguments(p, "point")


def cmd_sweep(args) -> int:
    from .studies.sweep import format_rows, make_points

    rows = run_sweep_command(args, sweep_of(args, args.kind, make_points(args.kind, args.values, args.version)))
    if not args.print_commands:
        print(format_rows(rows))
        written = "bypass_table.md" if args.kind == "bypass" else ("figure3.png" if rows else None)
        print(f"{args.out}/results.csv" + (f", {args.out}/{written}" if written else ""))
    return 0


def compare_arguments(p) -> None:
    p.add_argument("models", nargs="+", help="model names, e.g. squeezenet1_1 alexnet")
    add_sweep_arguments(p, "model")


def cmd_compare(args) -> int:
    from .studies.sweep import compare_points, format_rows

    rows = run_sweep_command(args, sweep_of(args, "compare", compare_points(args.models)))
    if args.print_commands:
        return 0
    print(format_rows(rows))
    if len(rows) == 2:
        a, b = rows
        print(f"{b['point']} has {b['parameters'] / a['parameters']:.1f}x the parameters of {a['point']}; "
              f"top-1 {100 * a['top1']:.1f}% against {100 * b['top1']:.1f}% (mean of {a['seeds']} seed(s))")
    return 0


def bench_arguments(p) -> None:
    p.add_argument("--model", help="one model to measure (default: the standard three configurations)")
    p.add_argument("--image-size", type=image_size, default=64, help=f"at most {MAX_IMAGE_SIZE} (default 64)")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--rounds", type=positive_int, default=None,
                   help="alternations of ours and PyTorch's (default 15, --quick 7); the median of the rounds' "
                        "ratios is reported, with its spread")
    p.add_argument("--steps", type=positive_int, default=1, help="timed steps per side in each round (default 1)")
    p.add_argument("--quick", action="store_true",
                   help="one configuration (squeezenet1_1, 64 px, batch 64, or --model's), 7 rounds, "
                        "without the one-process comparison and the NumPy twins")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--worker", choices=["ours", "torch", "both"], help=argparse.SUPPRESS)


def cmd_bench(args) -> int:
    from .studies.bench import CONFIGS, QUICK_CONFIG, QUICK_ROUNDS, run_bench, serve

    if args.worker:
        serve(args.worker, args.model, args.image_size, args.batch_size)
        return 0
    if args.model is not None:
        configs = [(args.model, args.image_size, args.batch_size)]
    else:
        configs = [QUICK_CONFIG] if args.quick else CONFIGS
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else 15)
    print(run_bench(configs, rounds, args.steps, with_torch=False if args.no_torch else None, quick=args.quick))
    return 0


COMMANDS = [  # name, add_parser's options (the help line), the function adding its flags, the command
    ("gradcheck", dict(help="check every layer's backward against finite differences"), gradcheck_arguments, cmd_gradcheck),
    ("check", dict(help="grade your assignment (the course: write each backward yourself, lessons 0-11)"),
     check_arguments, cmd_check),
    ("models", dict(help="list the models tinysqueeze can build"), models_arguments, cmd_models),
    ("summary", dict(help="print the paper's Table 1 for a model"), summary_arguments, cmd_summary),
    ("predict", dict(help="classify images (top-5 with probabilities)"), predict_arguments, cmd_predict),
    ("train", dict(help="train a model (progress bar, metrics.csv, curves.png, checkpoints)", allow_abbrev=False),
     train_arguments, cmd_train),
    ("diagnose", dict(help="the first steps of a training run: each layer's update / weight ratio and which "
                           "classes are alive", allow_abbrev=False), diagnose_arguments, cmd_diagnose),
    ("evaluate", dict(help="top-1 / top-5 and a confusion matrix of a checkpoint"), evaluate_arguments, cmd_evaluate),
    ("compress", dict(help="prune, share weights by k-means, Huffman-code into a .tsq file"), compress_arguments, cmd_compress),
    ("sweep", dict(help="train one model per design point (paper sections 5-6) and plot", allow_abbrev=False),
     sweep_arguments, cmd_sweep),
    ("compare", dict(help="train models with the same budget and compare them side by side", allow_abbrev=False),
     compare_arguments, cmd_compare),
    ("bench", dict(help="time training and inference, per layer, against PyTorch if installed"), bench_arguments, cmd_bench),
]


def data_arguments(p) -> None:
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("get", help="download, verify and extract a public dataset into data/")
    q.add_argument("name", help="imagenette-160, imagenette-320, tiny-imagenet, ...")
    q.add_argument("--root", default="data", help="where datasets live (default data/)")
    q.set_defaults(func=cmd_data_get)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinysqueeze", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, options, add_arguments, command in COMMANDS:
        p = sub.add_parser(name, **options)
        add_arguments(p)
        p.set_defaults(func=command)
    data_arguments(sub.add_parser("data", help="datasets: `data get NAME` downloads one (needs the internet)"))
    return parser


def add_training_arguments(p, set_per_run: tuple[str, ...] = ()) -> None:
    """One flag per TrainConfig field (its default and help come from the field), shared by `train`,
    `diagnose`, `sweep` and `compare` (which leave out the fields `set_per_run`: each run of theirs
    sets its own model, seed and folder)."""
    from dataclasses import MISSING, fields

    from .training.config import RECIPES, TrainConfig

    parsers = {"int": int, "float": float, "float | None": float, "str": str, "dict": json_object}
    for f in fields(TrainConfig):
        if f.name in set_per_run:
            continue
        options = dict(f.metadata)
        default = {} if f.default is MISSING else f.default
        parse = positive_int if options.pop("positive", False) else parsers[str(f.type)]
        maximum = options.pop("maximum", None)
        if maximum is not None:
            parse = image_size if maximum == MAX_IMAGE_SIZE else at_most(maximum, f.name.replace("_", " "))
        if default is None:          # the optimizer's (RECIPES) unless given
            options["help"] += f" [{', '.join(f'{name}: {r[f.name]:g}' for name, r in RECIPES.items())}]"
        else:
            options["help"] += f" (default {json.dumps(default) if isinstance(default, dict) else default})"
        p.add_argument(f"--{f.name.replace('_', '-')}", type=parse, default=default, **options)
    if not set_per_run:
        p.add_argument("--config", help="start from the settings in this JSON file (a run's config.json); "
                                        "flags given beside it change them")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def train_config(args, set_per_run: tuple[str, ...] = ()):
    """The TrainConfig that the arguments describe: the flags' values, or the settings of --config
    with the flags typed beside it (args.explicit) on top. (Sweeps: the base every run starts from.)"""
    from dataclasses import fields

    from .training.train import TrainConfig

    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name not in set_per_run}
    if getattr(args, "config", None):
        return TrainConfig.from_json(args.config, **{k: v for k, v in given.items() if k in args.explicit})
    return TrainConfig(**given)


def explicit_settings(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options actually typed in argv (`--lr 0.1` or `--lr=0.1`)."""
    given = set()
    for action in parser._actions:
        for option in action.option_strings:
            if any(token == option or token.startswith(option + "=") for token in argv):
                given.add(action.dest)
    return given


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r} ({error})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"sr\": 0.25}}', got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def at_most(maximum: int, what: str):
    """A positive whole number up to `maximum` (sizes that would allocate without bound are refused)."""
    def parse(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"expected at most {maximum} ({what}), got {value}")
        return value
    return parse


image_size = at_most(MAX_IMAGE_SIZE, "pixels a side")
class_count = at_most(MAX_CLASSES, "classes")


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """The parsed command line, with `explicit`: the settings typed in it (not left to their defaults)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command:
        command_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        args.explicit = explicit_settings(command_parser, argv)
    return args


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as the user should see it ("warning: skipped 3 unreadable images: ..."), without the
    file, line and source line of the code that raised it."""
    return f"warning: {message}\n"


def main(argv=None) -> int:
    warnings.formatwarning = one_line_warning
    try:
        args = parse_arguments(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:                    # Ctrl-C while the flags' tables load (Numba): one line too
        print("\ninterrupted", file=sys.stderr)
        return 130
    if getattr(args, "worker", None) not in ("torch", "both"):  # the bench's PyTorch side, and both sides in one
        # process as in a notebook, run with the allocator as it comes
        from .nn import keep_freed_memory
        keep_freed_memory()                      # each step reuses the memory the last one freed (nn/fast/memory.py)
    ranks, variable = launched_size()
    if ranks == 1:
        return run_command(args)
    if args.command != "train":                  # N copies of another command would each do all of it
        print(f"error: `{args.command}` runs as one process; only `train` shares its work among the {ranks} "
              f"processes this launcher started ({variable}={ranks}): run it without mpiexec or srun", file=sys.stderr)
        return 2
    return run_rank(args)


def run_rank(args) -> int:
    """`train` as one rank of several: any error ends every rank (MPI's abort), naming this one, so that
    no rank waits forever for one that has stopped."""
    from .distributed.world import DistributedError, current_world, started

    try:
        current_world()         # MPI first: a rank that fails from here on can end the others (MPI_Abort)
    except DistributedError as error:
        print(f"error{rank_prefix()}: {error}", file=sys.stderr)
        return 2
    try:
        code = run_command(args, prefix=rank_prefix)
    except BaseException:                        # not a known error: its traceback, then everyone stops
        import traceback
        traceback.print_exc()
        code = 1
    if code != 0 and started():                  # MPI is running: the others may be waiting for this rank
        current_world().abort(code)
    return code


def rank_prefix() -> str:
    """" (rank 1 of 4)": which process an error line comes from (as the launcher numbers them)."""
    return f" (rank {launched_rank()} of {launched_size()[0]})"


def run_command(args, prefix=lambda: "") -> int:
    """The command, with every error a user can cause as one `error:` line and an exit status."""
    try:
        if "TINYSQUEEZE_KERNELS" in os.environ:      # a bad value refused before any command starts its work
            from .nn.backend import backend
            backend()
        return args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError, DistributedError) as error:
        print(f"error{prefix()}: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:                     # settings within bounds that this machine cannot hold
        print(f"error{prefix()}: out of memory ({error or 'an allocation failed'}): try a smaller --batch-size or "
              "--image-size", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:           # Ctrl-C in any command (train says more itself)
        print(f"\ninterrupted{': ' + str(interrupt) if str(interrupt) else ''}", file=sys.stderr)
        return 130
    except OSError as error:                         # a full disk, a read-only folder, a file in a folder's place
        where = f": {error.filename}" if error.filename else ""
        print(f"error{prefix()}: {error.strerror or error}{where}", file=sys.stderr)
        return 2
