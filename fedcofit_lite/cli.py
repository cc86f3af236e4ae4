"""Command line: ``python -m fedcofit_lite run --config configs/cpu.yaml --set train.lr=1e-4``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .config import METHODS, ConfigError, describe, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fedcofit_lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the semantic-consensus protocol and write a run folder")
    run.add_argument("--config", default="cpu", help="preset name (ci, cpu, gpu, large) or a YAML path [cpu]")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override one option, e.g. --set federation.rounds=3 (repeatable)")
    run.add_argument("--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-<time>")
    run.add_argument("--resume", default=None, metavar="RUN_DIR",
                     help="continue an interrupted run from its folder (its config.yaml is used; --config/--set are ignored)")
    run.add_argument("--method", default=None, choices=list(METHODS),
                     help="what clients exchange (default: federation.method of the config, normally consensus)")
    run.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    cmp = sub.add_parser("compare", help="run several methods on one partition and seed; write a table and figures")
    cmp.add_argument("--config", default="cpu", help="preset name or YAML path [cpu]")
    cmp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cmp.add_argument("--methods", default=None,
                     help=f"comma-separated, from {','.join(METHODS)} (default: compare.methods of the config)")
    cmp.add_argument("--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-compare-<time>")
    cmp.add_argument("--no-figures", action="store_true", help="skip the plotly HTML figures")
    cmp.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    show = sub.add_parser("config", help="print the resolved configuration of a preset")
    show.add_argument("--config", default="cpu")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("options", help="list every option with its default and help text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "options":
        for name, default, help_text in describe():
            print(f"{name:34s} {default:38s} {help_text}")
        return 0
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(cfg.to_yaml(), end="")
        return 0

    quiet = args.quiet
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # our bars and the libraries' tqdm bars alike
    # heavy imports only when running
    from .fedavg import IncompatibleAdaptersError
    from .federation import RoundFailedError, resume_federation, run_federation

    try:
        if args.command == "compare":
            from .compare import run_comparison

            methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
            unknown = [m for m in methods or [] if m not in METHODS]
            if unknown:
                print(f"config error: --methods {unknown}: choose from {list(METHODS)}.", file=sys.stderr)
                return 2
            comp = run_comparison(cfg, methods, run_dir=args.run_dir, progress=not quiet, figures=not args.no_figures)
            print(f"\nrun folder: {comp.run_dir}\n")
            print(comp.table)
            for path in comp.figures:
                print(f"figure: {path}")
            return 0
        if args.resume:
            result = resume_federation(args.resume, progress=not quiet)
        else:
            result = run_federation(cfg, run_dir=args.run_dir, progress=not quiet, method=args.method)
    except IncompatibleAdaptersError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RoundFailedError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"\nrun folder: {result.run_dir}\n")
    print(result.table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
