"""The command line: `python -m tinysqueeze COMMAND ...` (see `--help` of each command)."""
from __future__ import annotations

import argparse
import sys


def cmd_gradcheck(args) -> int:
    from .gradcheck import TOLERANCE, layer_cases

    cases = layer_cases()
    if not args.layers_only:
        from .models.checks import model_cases
        cases += model_cases()
    if args.only:
        cases = [c for c in cases if args.only.lower() in c.layer.lower()]
    print(f"{'layer':<20} {'configuration':<44} {'max rel. error (per array)':<40} result")
    failures = 0
    for case in cases:
        errors = case.run()
        worst = max(errors.values())
        ok = worst < TOLERANCE
        failures += not ok
        detail = ", ".join(f"d{name}={err:.1e}" for name, err in errors.items())
        print(f"{case.layer:<20} {case.config:<44} {detail:<40} {'pass' if ok else 'FAIL'}")
    print(f"\n{len(cases) - failures} passed, {failures} failed (tolerance {TOLERANCE:.0e}, float64, centred differences)")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinysqueeze", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradcheck", help="check every layer's backward against finite differences")
    p.add_argument("--only", help="check only layers whose name contains this text")
    p.add_argument("--layers-only", action="store_true", help="skip the Fire module and network checks")
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
