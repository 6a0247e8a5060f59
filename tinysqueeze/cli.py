"""The command line: `python -m tinysqueeze COMMAND ...` (see `--help` of each command)."""
from __future__ import annotations

import argparse
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
    model = load_model(args.model, args.weights)
    names = read_class_names(args.classes) if args.classes else None
    if names is not None and len(names) != model.num_classes:
        raise ValueError(f"{args.classes} names {len(names)} classes, but the weights have {model.num_classes}")
    results = predict_files(model, args.images, crop=args.image_size, topk=min(args.topk, model.num_classes))
    for path, top in zip(args.images, results):
        print(path)
        for rank, (cls, prob) in enumerate(top, 1):
            label = names[cls] if names else f"class {cls}"
            print(f"  {rank}. {prob * 100:6.2f}%  {label}")
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
    p.add_argument("--weights", required=True, help="weights file: .npz, or a PyTorch/torchvision .pth")
    p.add_argument("--model", default="squeezenet1_1", help="architecture of the weights (default squeezenet1_1)")
    p.add_argument("--classes", help="class names file: one per line, or wnid<TAB>name")
    p.add_argument("--image-size", type=positive_int, default=224, help="centre crop (default 224, after resize 256)")
    p.add_argument("--topk", type=positive_int, default=5)
    p.set_defaults(func=cmd_predict)
    return parser


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
