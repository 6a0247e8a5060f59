"""The command line: `python -m tinysqueeze COMMAND ...` (see `--help` of each command)."""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path


def cmd_gradcheck(args) -> int:
    from .gradcheck import TOLERANCE, layer_cases

    cases = layer_cases()
    if not args.layers_only:
        from .models.checks import model_cases
        cases += model_cases()
    if args.only:
        cases = [c for c in cases if args.only.lower() in c.layer.lower()]
        if not cases:
            raise ValueError(f"no gradient-check case matches --only {args.only!r}")
    print(f"{'layer':<20} {'configuration':<50} {'dx':>8} {'params':>7} {'worst param (name)':<42} result")
    failures = 0
    for case in cases:
        errors = case.run()
        inputs = {k: v for k, v in errors.items() if k.startswith("x")}
        params = {k: v for k, v in errors.items() if not k.startswith("x")}
        ok = max(errors.values()) < case.tolerance
        failures += not ok
        worst = max(params, key=params.get) if params else None
        worst_text = f"{params[worst]:.1e} ({worst})" if worst else "-"
        print(f"{case.layer:<20} {case.config:<50} {max(inputs.values()):>8.1e} {len(params):>7} "
              f"{worst_text:<42} {'pass' if ok else 'FAIL'}")
        if args.verbose or not ok:
            for name, err in errors.items():
                print(f"{'':<22}d{name}: {err:.2e}")
    print(f"\n{len(cases) - failures} passed, {failures} failed "
          f"(relative error, float64, centred differences; tolerance {TOLERANCE:.0e} per layer, "
          "1e-05 for whole networks)")
    return 1 if failures else 0


def cmd_models(args) -> int:
    from .models.registry import DESCRIPTIONS, model_names

    for name in model_names():
        print(f"{name:<30} {DESCRIPTIONS.get(name, '')}")
    return 0


def cmd_summary(args) -> int:
    from .models import get_model
    from .models.summary import format_table

    model = get_model(args.model, num_classes=args.num_classes)
    print(format_table(model, args.model, args.image_size))
    return 0


def cmd_predict(args) -> int:
    from .predict import load_model, predict_files, read_class_names

    missing = [p for p in args.images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"no image file at {', '.join(missing)}")
    if bool(args.weights) == bool(args.checkpoint):
        raise ValueError("give either --weights FILE (with --model) or --checkpoint FILE from a training run")
    if args.checkpoint:
        from .datasets import stored_size
        from .train import model_from_checkpoint

        model, meta = model_from_checkpoint(args.checkpoint)
        names = meta.get("class_names", meta["classes"])
        crop = meta["image_size"]
        transform = dict(crop=crop, resize=stored_size(crop), mean=meta["mean"], std=meta["std"])
    else:
        model = load_model(args.model, args.weights)
        names = None
        transform = dict(crop=args.image_size)
    if args.classes:
        names = read_class_names(args.classes)
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f"{len(names)} class names for a model of {model.num_classes} classes")
    results = predict_files(model, args.images, topk=min(args.topk, model.num_classes), **transform)
    for path, top in zip(args.images, results):
        print(path)
        for rank, (cls, prob) in enumerate(top, 1):
            label = names[cls] if names else f"class {cls}"
            print(f"  {rank}. {prob * 100:6.2f}%  {label}")
    return 0


def train_config(args):
    """The TrainConfig that `train`'s (and `diagnose`'s) arguments describe."""
    from .train import TrainConfig

    return TrainConfig(model=args.model, model_args=args.model_args, data=args.data, image_size=args.image_size,
                       epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
                       momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
                       warmup_epochs=args.warmup_epochs, class_margin=args.class_margin, dtype=args.dtype,
                       seed=args.seed, out=args.out, synthetic_train=args.synthetic_train,
                       synthetic_val=args.synthetic_val)


def cmd_train(args) -> int:
    from .train import Trainer, TrainingDiverged

    config = train_config(args)
    trainer = Trainer(config, resume=args.resume, progress=not args.quiet, overwrite=args.overwrite,
                      explicit=args.explicit)
    try:
        rows = trainer.run()
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        last = trainer.out / "last.npz"
        if last.exists():
            print(f"\ninterrupted: {last} holds the last finished epoch; continue with --resume", file=sys.stderr)
        else:
            print(f"\ninterrupted before the first epoch finished: nothing to resume in {trainer.out}; "
                  "run the same command again to start over", file=sys.stderr)
        return 130
    if rows:
        best = max(r["val_top1"] for r in rows)
        print(f"done: val top-1 {100 * rows[-1]['val_top1']:.1f}% (best {100 * best:.1f}%) after {int(rows[-1]['epoch'])} "
              f"epochs; {trainer.out}/metrics.csv, curves.png, best.npz")
    return 0


def explicit_settings(parser: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The destinations of the options actually typed in argv (`--lr 0.1` or `--lr=0.1`)."""
    given = set()
    for action in parser._actions:
        for option in action.option_strings:
            if any(token == option or token.startswith(option + "=") for token in argv):
                given.add(action.dest)
    return given


def cmd_diagnose(args) -> int:
    from .diagnose import format_trace, plot_trace, trace_recipe

    config = train_config(args)
    records, names = trace_recipe(config, args.steps, progress=not args.quiet)
    print(format_trace(records, max(1, args.steps // 15), names))
    if args.plot:
        label = f"{config.optimizer} lr {config.lr:g}, class margin {config.class_margin:g}"
        plot_trace({label: records}, args.plot, f"{config.model} on {config.data}: the first {args.steps} steps")
        print(f"plot: {args.plot}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    from .datasets import DataLoader, load_split
    from .train import evaluate, model_from_checkpoint, plot_confusion

    model, meta = model_from_checkpoint(args.checkpoint)
    data = args.data or meta["config"]["data"]
    sizes = (meta["config"]["synthetic_train"], meta["config"]["synthetic_val"])
    dataset = load_split(data, args.split, meta["image_size"], seed=meta["config"]["seed"], synthetic_sizes=sizes,
                         progress=not args.json)
    if dataset.classes != meta["classes"]:
        raise ValueError(f"{data} has classes {dataset.classes[:5]}..., the checkpoint was trained on "
                         f"{meta['classes'][:5]}...")
    loader = DataLoader(dataset, args.batch_size, meta["image_size"], False, meta["mean"], meta["std"])
    result = evaluate(model, loader, len(meta["classes"]), progress=not args.json)
    confusion_path = Path(args.confusion) if args.confusion else Path(args.checkpoint).with_name(
        Path(args.checkpoint).stem + f"-confusion-{args.split}.png")
    names = dataset.display_names or meta.get("class_names") or meta["classes"]
    try:
        plot_confusion(result["confusion"], names, confusion_path,
                       f"{meta['model']} on {data} ({args.split}): top-1 {100 * result['top1']:.1f}%")
    except OSError as error:
        print(f"warning: the confusion matrix could not be written to {confusion_path} ({error.strerror}); "
              "choose another place with --confusion", file=sys.stderr)
        confusion_path = None
    loss = result["loss"] if math.isfinite(result["loss"]) else None      # JSON has no NaN: null, said below
    recall = {name: float(r) for name, r in zip(names, result["recall"])}
    silent = [names[k] for k in result["silent"]]
    if args.json:
        print(json.dumps({"top1": result["top1"], "top5": result["top5"], "n": result["n"], "loss": loss,
                          "loss_finite": loss is not None,
                          "recall": recall, "never_predicted": [n for n, r in recall.items() if r == 0],
                          "silent_classes": silent, "checkpoint": str(args.checkpoint), "data": data,
                          "split": args.split, "confusion_png": confusion_path and str(confusion_path)}))
    else:
        print(f"{meta['model']} on {data} ({args.split}, {result['n']} images): top-1 {100 * result['top1']:.2f}%  "
              f"top-5 {100 * result['top5']:.2f}%  loss {result['loss']:.4f}")
        print("recall per class: " + ", ".join(f"{name} {100 * r:.0f}%" for name, r in recall.items()))
        if silent:
            print(f"warning: {len(silent)} class(es) never scored above 0 on any image, so they can never be "
                  f"predicted (dead classes): {', '.join(silent)}", file=sys.stderr)
        if confusion_path:
            print(f"confusion matrix: {confusion_path}")
    return 0


def cmd_data_get(args) -> int:
    from .datasets.download import get_dataset

    path = get_dataset(args.name, Path(args.root))
    print(f"{args.name} is ready in {path}; train with: python -m tinysqueeze train --data {path}")
    return 0


def cmd_compress(args) -> int:
    from .compress.finetune import finetune_pruned, finetune_shared
    from .compress.pipeline import format_sizes, save_compressed
    from .compress.prune import check_density, prunable, prune
    from .compress.quantize import SharedWeights, check_bits
    from .models import get_model
    from .predict import load_model
    from .train import model_from_checkpoint

    check_density(args.density)
    check_bits(args.bits)
    meta = None
    if args.checkpoint:
        try:  # a training checkpoint knows its model (metaparameters included), classes and data
            model, meta = model_from_checkpoint(args.checkpoint)
        except ValueError:  # any other weights file: --model says what it is
            model = load_model(args.model, args.checkpoint)
    else:
        print(f"no --checkpoint: compressing freshly initialised {args.model} weights (sizes only)")
        model = get_model(args.model, num_classes=args.num_classes)
    loaders = None
    if args.data is None and meta is not None and args.finetune_epochs:
        args.data = meta["config"]["data"]  # a training checkpoint knows its own dataset
    if args.finetune_epochs or args.data:
        if not args.data:
            raise ValueError("--finetune-epochs needs --data (the images to fine-tune and evaluate on)")
        loaders = _compression_loaders(args, meta)

    def accuracy(label):
        if loaders:
            from .train import evaluate
            result = evaluate(model, loaders[1], model.num_classes)
            print(f"{label:<40} val top-1 {100 * result['top1']:.2f}%  top-5 {100 * result['top5']:.2f}%")
            return result["top1"]
        return None

    accuracy("uncompressed")
    masks = prune(model, args.density, args.policy)
    accuracy(f"pruned to {100 * args.density:.0f}% density ({args.policy})")
    if args.finetune_epochs:
        finetune_pruned(model, masks, loaders[0], args.finetune_epochs, args.lr)
        accuracy("pruned + fine-tuned")
    shared = SharedWeights(model, args.bits, [name for name, _ in prunable(model)])
    accuracy(f"+ {args.bits}-bit weight sharing")
    if args.finetune_epochs:
        finetune_shared(model, shared, loaders[0], args.finetune_epochs, args.lr)
        accuracy("+ centroids fine-tuned")
    rows = save_compressed(args.out, model, shared, args.model, args.density, args.bits)
    print(format_sizes(rows, f"{args.model}: density {args.density}, {args.bits} bits -> {args.out}"))
    return 0


def _compression_loaders(args, meta):
    from .datasets import DataLoader, channel_stats, load_split
    from .transforms import IMAGENET_MEAN, IMAGENET_STD

    size = meta["image_size"] if meta else args.image_size
    sizes = (meta["config"]["synthetic_train"], meta["config"]["synthetic_val"]) if meta else (8000, 2000)
    seed = meta["config"]["seed"] if meta else 0
    train = load_split(args.data, "train", size, seed=seed, synthetic_sizes=sizes)
    val = load_split(args.data, "val", size, seed=seed, synthetic_sizes=sizes)
    if meta:
        mean, std = meta["mean"], meta["std"]
    elif args.data == "synthetic":
        mean, std = channel_stats(train.images)
    else:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    return (DataLoader(train, min(args.batch_size, len(train)), size, True, mean, std, seed=0),
            DataLoader(val, 100, size, False, mean, std))


def cmd_sweep(args) -> int:
    from .sweep import format_rows, run_sweep

    rows = run_sweep(args.kind, args.data, args.image_size, args.epochs, args.out, values=args.values,
                     workers=args.workers, batch_size=args.batch_size, seeds=args.seeds, version=args.version,
                     print_commands=args.print_commands, collect_only=args.collect_only,
                     extra=synthetic_args(args))
    if not args.print_commands:
        print(format_rows(rows))
        extra = "bypass_table.md" if args.kind == "bypass" else "figure3.png"
        print(f"{args.out}/results.csv, {args.out}/{extra}")
    return 0


def cmd_compare(args) -> int:
    from .sweep import compare_points, format_rows, run_sweep

    rows = run_sweep("compare", args.data, args.image_size, args.epochs, args.out, workers=args.workers,
                     batch_size=args.batch_size, seeds=args.seeds, points=compare_points(args.models),
                     extra=synthetic_args(args))
    print(format_rows(rows))
    if len(rows) == 2:
        a, b = rows
        print(f"{b['point']} has {b['parameters'] / a['parameters']:.1f}x the parameters of {a['point']}; "
              f"top-1 {100 * a['top1']:.1f}% against {100 * b['top1']:.1f}% (mean of {a['seeds']} seed(s))")
    return 0


def synthetic_args(args) -> list[str]:
    return ["--synthetic-train", str(args.synthetic_train), "--synthetic-val", str(args.synthetic_val)]


def cmd_bench(args) -> int:
    from .bench import CONFIGS, run_bench, run_one

    if args.one:
        run_one(args.one, args.model, args.image_size, args.batch_size, args.repeats)
        return 0
    configs = CONFIGS if args.model is None else [(args.model, args.image_size, args.batch_size)]
    print(run_bench(configs, repeats=args.repeats, with_torch=False if args.no_torch else None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinysqueeze", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="check every layer's backward against finite differences")
    p.add_argument("--only", help="check only layers whose name contains this text")
    p.add_argument("--layers-only", action="store_true", help="skip the Fire module and network checks")
    p.add_argument("--verbose", action="store_true", help="print the error of every array")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("models", help="list the models tinysqueeze can build")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("summary", help="print the paper's Table 1 for a model")
    p.add_argument("--model", default="squeezenet1_0", help="a name from `models` (default squeezenet1_0)")
    p.add_argument("--image-size", type=positive_int, default=227, help="input side in pixels (default 227)")
    p.add_argument("--num-classes", type=positive_int, default=1000)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("predict", help="classify images (top-5 with probabilities)")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--weights", help="weights file: .npz, or a PyTorch/torchvision .pth")
    p.add_argument("--checkpoint", help="a training checkpoint (runs/NAME/best.npz): model, classes and "
                                        "preprocessing come from it")
    p.add_argument("--model", default="squeezenet1_1", help="architecture of the weights (default squeezenet1_1)")
    p.add_argument("--classes", help="class names file: one per line, or wnid<TAB>name")
    p.add_argument("--image-size", type=positive_int, default=224, help="centre crop (default 224, after resize 256)")
    p.add_argument("--topk", type=positive_int, default=5)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("train", help="train a model (progress bar, metrics.csv, curves.png, checkpoints)",
                       allow_abbrev=False)
    add_training_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.npz")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("diagnose", help="the first steps of a training run: each layer's update / weight "
                                        "ratio and which classes are alive")
    add_training_arguments(p)
    p.add_argument("--steps", type=positive_int, default=150, help="optimiser steps to trace (default 150)")
    p.add_argument("--plot", help="also draw the trace into this PNG")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("evaluate", help="top-1 / top-5 and a confusion matrix of a checkpoint")
    p.add_argument("--checkpoint", required=True, help="runs/NAME/best.npz or last.npz")
    p.add_argument("--data", help="dataset (default: the one the checkpoint was trained on)")
    p.add_argument("--split", choices=["val", "train"], default="val")
    p.add_argument("--batch-size", type=positive_int, default=100)
    p.add_argument("--confusion", help="where to write the confusion-matrix PNG")
    p.add_argument("--json", action="store_true", help="print one JSON object (top1, top5, n, loss, ...)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("compress", help="prune, share weights by k-means, Huffman-code into a .tsq file")
    p.add_argument("--model", default="squeezenet1_1", help="architecture of the weights")
    p.add_argument("--checkpoint", help="any weights file (.npz, training checkpoint, .pth); none: fresh weights")
    p.add_argument("--num-classes", type=positive_int, default=1000, help="classes, without --checkpoint")
    p.add_argument("--density", type=float, default=0.33, help="share of each layer's weights kept, in (0, 1]")
    p.add_argument("--bits", type=int, default=6, help="bits per shared-weight code, 1..8 (2^bits clusters)")
    p.add_argument("--policy", choices=["paper", "uniform"], default="paper",
                   help="per-layer densities: 'paper' prunes the 3x3 and final layers only (as the paper's "
                        "released model), 'uniform' every layer alike")
    p.add_argument("--out", required=True, help="the .tsq file to write")
    p.add_argument("--finetune-epochs", type=non_negative_int, default=0,
                   help="fine-tune after pruning and after sharing (default 0: no fine-tuning)")
    p.add_argument("--data", help="dataset for fine-tuning and accuracy (a checkpoint's own by default)")
    p.add_argument("--image-size", type=positive_int, default=64, help="without a training checkpoint")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--lr", type=float, default=1e-4, help="fine-tuning learning rate (Adam)")
    p.set_defaults(func=cmd_compress)

    p = sub.add_parser("sweep", help="train one model per design point (paper sections 5-6) and plot")
    p.add_argument("kind", choices=["sr", "pct3x3", "bypass", "custom"])
    p.add_argument("--data", default="synthetic")
    p.add_argument("--image-size", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--values", nargs="+", help="the swept values (custom: key=value,... per point)")
    p.add_argument("--version", choices=["1_0", "1_1"], default="1_1", help="macroarchitecture (default 1_1)")
    p.add_argument("--workers", type=positive_int, default=1, help="runs trained at once on this machine")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="train every point once per seed (default: 0); results.csv keeps every seed")
    p.add_argument("--out", required=True)
    p.add_argument("--print-commands", action="store_true", help="print one train command per point and stop")
    p.add_argument("--collect-only", action="store_true", help="gather results and plots, train nothing")
    p.add_argument("--synthetic-train", type=positive_int, default=8000)
    p.add_argument("--synthetic-val", type=positive_int, default=2000)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("compare", help="train models with the same budget and compare them side by side")
    p.add_argument("models", nargs="+", help="model names, e.g. squeezenet1_1 alexnet")
    p.add_argument("--data", default="synthetic")
    p.add_argument("--image-size", type=positive_int, default=64)
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--workers", type=positive_int, default=1)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="train every model once per seed")
    p.add_argument("--out", required=True)
    p.add_argument("--synthetic-train", type=positive_int, default=8000)
    p.add_argument("--synthetic-val", type=positive_int, default=2000)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("bench", help="time training and inference, per layer, against PyTorch if installed")
    p.add_argument("--model", help="one model to measure (default: the standard three configurations)")
    p.add_argument("--image-size", type=positive_int, default=64)
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--repeats", type=positive_int, default=5, help="timed iterations (median is reported)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch even if it is installed")
    p.add_argument("--one", choices=["ours", "torch"], help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("data", help="datasets: `data get NAME` downloads one (needs the internet)")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    q = data_sub.add_parser("get", help="download, verify and extract a public dataset into data/")
    q.add_argument("name", help="imagenette-160, imagenette-320, tiny-imagenet, ...")
    q.add_argument("--root", default="data", help="where datasets live (default data/)")
    q.set_defaults(func=cmd_data_get)
    return parser


def add_training_arguments(p) -> None:
    """The settings of a training run (a TrainConfig), shared by `train` and `diagnose`."""
    from .train import RECIPES, TrainConfig

    p.add_argument("--model", default="squeezenet1_1", help="a name from `models` (default squeezenet1_1)")
    p.add_argument("--model-args", type=json_object, default={},
                   help="JSON object of model arguments, for squeezenet_meta: '{\"sr\": 0.25, \"bypass\": \"simple\"}'")
    p.add_argument("--data", default="synthetic", help="'synthetic' (no download) or a dataset folder")
    p.add_argument("--image-size", type=positive_int, default=64, help="training crop in pixels (default 64)")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch-size", type=positive_int, default=64)
    recipes = "; ".join(f"{name}: lr {r['lr']:g}, weight decay {r['weight_decay']:g}, warm-up {r['warmup_epochs']:g} "
                        f"epoch" for name, r in RECIPES.items())
    p.add_argument("--optimizer", choices=list(RECIPES), default=TrainConfig.optimizer,
                   help="lars (default: the paper's SGD with momentum, with a learning rate per layer scaled to its "
                        f"size), sgd (the paper's, one rate for all) or adam. Defaults: {recipes}")
    p.add_argument("--lr", type=float, help="base learning rate (default: the optimizer's, see --optimizer)")
    p.add_argument("--momentum", type=float, default=TrainConfig.momentum, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (default: the optimizer's)")
    p.add_argument("--schedule", choices=["poly", "cosine", "constant"], default=TrainConfig.schedule,
                   help="learning-rate decay after warm-up (default poly: linear to zero, the paper's)")
    p.add_argument("--warmup-epochs", type=float, help="linear warm-up length (default: the optimizer's)")
    p.add_argument("--class-margin", type=float, default=TrainConfig.class_margin,
                   help="start conv10's bias so every class scores this many standard deviations above zero "
                        f"on the first batch (default {TrainConfig.class_margin:g}; 0 keeps torchvision's start)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=TrainConfig.dtype,
                   help="precision of the whole run (default float32; float64 is slower, for checking that "
                        "rounding decides nothing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/default", help="run folder (default runs/default)")
    p.add_argument("--synthetic-train", type=positive_int, default=8000, help="synthetic training images")
    p.add_argument("--synthetic-val", type=positive_int, default=2000, help="synthetic validation images")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")


def json_object(text: str) -> dict:
    import json

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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        train_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
        args.explicit = explicit_settings(train_parser, argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ConnectionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
