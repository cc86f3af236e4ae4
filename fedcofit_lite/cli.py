"""Command line: ``python -m fedcofit_lite run --config configs/cpu.yaml --set train.lr=1e-4``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from .config import METHODS, ConfigError, describe, load_config, method_known


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fedcofit_lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the semantic-consensus protocol and write a run folder")
    run.add_argument("--config", default="cpu", help="preset name (ci, cpu, gpu, large) or a YAML path [cpu]")
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. --set federation.rounds=3 (repeatable)",
    )
    run.add_argument("--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-<time>")
    run.add_argument(
        "--resume",
        default=None,
        metavar="RUN_DIR",
        help="continue an interrupted run from its folder (its config.yaml is used, with --set overrides applied; --config and --method are ignored)",
    )
    run.add_argument(
        "--method",
        default=None,
        choices=list(METHODS),
        help="what clients exchange (default: federation.method of the config, normally consensus)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    cmp = sub.add_parser("compare", help="run several methods on one partition and seed; write a table and figures")
    cmp.add_argument("--config", default="cpu", help="preset name or YAML path [cpu]")
    cmp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    cmp.add_argument(
        "--methods",
        default=None,
        help=f"comma-separated, from {','.join(METHODS)} (default: compare.methods of the config)",
    )
    cmp.add_argument(
        "--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-compare-<time>"
    )
    cmp.add_argument(
        "--seeds",
        default=None,
        metavar="S,S,...",
        help="run the comparison once per seed (partition, adapter start, sampling) into RUN_DIR/seed_S/ "
        "and report means with 95%% paired bootstrap intervals, e.g. 0,1,2",
    )
    cmp.add_argument(
        "--extend",
        action="store_true",
        help="with --seeds and an existing --run-dir: add the methods its seeds lack (the rest is kept)",
    )
    cmp.add_argument(
        "--summarize",
        default=None,
        metavar="RUN_DIR",
        help="print the multi-seed table of an existing comparison folder (no training)",
    )
    cmp.add_argument("--no-figures", action="store_true", help="skip the plotly HTML figures")
    cmp.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    show = sub.add_parser("config", help="print the resolved configuration of a preset")
    show.add_argument("--config", default="cpu")
    show.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("options", help="list every option with its default and help text")

    rob = sub.add_parser(
        "robustness", help="sweep the fraction of bad clients: consensus (per clustering algorithm) vs FedAvg"
    )
    rob.add_argument("--config", default="cpu")
    rob.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    rob.add_argument("--behaviour", default="colluder", help="random_text, constant, echo or colluder [colluder]")
    rob.add_argument("--fractions", default="0,0.25,0.5,0.75", help="fractions of bad clients [0,0.25,0.5,0.75]")
    rob.add_argument("--methods", default="consensus,fedavg")
    rob.add_argument("--run-dir", default=None)
    rob.add_argument(
        "--server-only",
        default=None,
        metavar="RUN_DIR",
        help="no training: corrupt the recorded round-1 answers of an honest consensus run and refit (seconds)",
    )
    rob.add_argument("--quiet", action="store_true")

    rep = sub.add_parser(
        "replay", help="refit consensus rules on a run's saved answers (no language model) and score them"
    )
    rep.add_argument(
        "run_dir", help="a consensus run folder, or a compare folder's consensus/ (or consensus@RULE/) folder"
    )
    rep.add_argument(
        "--rule",
        dest="rules",
        action="append",
        default=None,
        help="rule to refit, repeatable (default: every rule): medoid, vote, hybrid, confidence, reliability",
    )
    rep.add_argument(
        "--round",
        dest="rounds",
        action="append",
        type=int,
        default=None,
        help="round to replay, repeatable (default: all)",
    )
    rep.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change the run's consensus settings for the replay, e.g. consensus.min_agreement=0.5",
    )
    rep.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    rep.add_argument(
        "--private-vote",
        default=None,
        metavar="SIGMA,SIGMA,...",
        help="instead: the private consensus trade-off at these noise levels (client-level epsilon, labels released, precision)",
    )
    rep.add_argument(
        "--delta", type=float, default=1e-5, help="with --private-vote: delta of the threshold and of epsilon [1e-5]"
    )

    figs = sub.add_parser(
        "figures", help="regenerate figures (HTML, and PNG with --png where Chrome/Chromium exists) from a run folder"
    )
    figs.add_argument("run_dir", help="a folder written by `run` or `compare`")
    figs.add_argument("--out", default="figures", help="output folder [figures]")
    figs.add_argument("--png", action="store_true", help="also write PNG (needs kaleido and a Chrome/Chromium binary)")

    flw = sub.add_parser(
        "flower",
        help="run the federation on Flower: each client a process owning its model (simulation or a local deployment)",
    )
    flw.add_argument(
        "mode",
        choices=["simulate", "deploy"],
        help="simulate: Flower's simulation engine (Ray) on this machine; deploy: a SuperLink and one SuperNode per "
        "client on localhost, then `flwr run` (insecure, localhost only: see the README for several machines)",
    )
    flw.add_argument("--config", default="ci", help="preset name or YAML path [ci]")
    flw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    flw.add_argument("--method", default=None, choices=list(METHODS), help="default: federation.method of the config")
    flw.add_argument(
        "--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-flower-<time>"
    )
    flw.add_argument("--client-threads", type=int, default=1, help="torch threads per client process [1]")
    flw.add_argument("--quiet", action="store_true")

    aud = sub.add_parser(
        "privacy-audit", help="membership inference on what each run's method sent (ROC-AUC, TPR at 1%% FPR, intervals)"
    )
    aud.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN_DIR",
        help="folders written by `run` (one method each; they keep the adapters)",
    )
    aud.add_argument(
        "--attacks",
        default=None,
        help="comma-separated, from loss,loss_ref,query,answers,pseudo_labels (default: all the method allows)",
    )
    aud.add_argument(
        "--no-contrast", action="store_true", help="consensus runs: skip the attacks on the adapters they never send"
    )
    aud.add_argument("--boot", type=int, default=1000, help="bootstrap draws of the intervals [1000]")
    aud.add_argument("--quiet", action="store_true")

    cost = sub.add_parser(
        "cost", help="analytic bytes per round: full FedAvg, LoRA FedAvg, consensus (no model needed)"
    )
    cost.add_argument(
        "--models", default="all", help="comma-separated names from the shipped configs, or config.json paths [all]"
    )
    cost.add_argument("--rank", type=int, default=32)
    cost.add_argument("--targets", default="q_proj,v_proj", help="LoRA target modules [q_proj,v_proj]")
    cost.add_argument("--bytes-per-param", type=float, default=4.0)
    cost.add_argument("--prompts", type=int, default=1000)
    cost.add_argument("--answer-tokens", type=float, default=201.0)
    cost.add_argument("--bytes-per-token", type=float, default=4.0)
    return parser


def _cost(args: argparse.Namespace) -> int:
    from .analysis import costmodel as cm

    try:
        archs = (
            list(cm.ARCHITECTURES.values())
            if args.models == "all"
            else [cm.get_architecture(m.strip()) for m in args.models.split(",")]
        )
        protocol = cm.Protocol(
            rank=args.rank,
            target_modules=tuple(t.strip() for t in args.targets.split(",")),
            bytes_per_param=args.bytes_per_param,
            n_prompts=args.prompts,
            answer_tokens=args.answer_tokens,
            bytes_per_token=args.bytes_per_token,
        )
    except (ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"bytes per client per direction per round: LoRA r={protocol.rank} on {'+'.join(protocol.target_modules)}, "
        f"{protocol.bytes_per_param:g} B/param; consensus {protocol.n_prompts} prompts x {protocol.answer_tokens:g} tokens x "
        f"{protocol.bytes_per_token:g} B\n"
    )
    print(
        f"{'model':16s} {'params':>10s} {'full FedAvg':>12s} {'LoRA FedAvg':>12s} {'consensus':>10s} {'LoRA/cons':>10s} {'full/cons':>12s}"
    )
    for row in sorted(cm.cost_table(archs, protocol), key=lambda r: r["n_parameters"]):
        print(
            f"{row['name']:16s} {row['n_parameters'] / 1e9:9.2f}B {cm.format_bytes(row['full_fedavg']):>12s} "
            f"{cm.format_bytes(row['lora_fedavg']):>12s} {cm.format_bytes(row['consensus']):>10s} "
            f"{row['lora_over_consensus']:10,.1f} {row['full_over_consensus']:12,.0f}"
        )
    return 0


def _flower(args: argparse.Namespace, cfg) -> int:
    """``flower simulate`` / ``flower deploy``: the same run on Flower; prints the run folder and its table."""
    import time
    from pathlib import Path

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_dir = Path(
        args.run_dir or Path(cfg.output_dir) / f"{cfg.name}-flower-{args.mode}-{time.strftime('%Y%m%d-%H%M%S')}"
    ).resolve()
    try:
        if args.mode == "simulate":
            from .flower.simulation import simulate

            simulate(cfg, run_dir=run_dir, method=args.method, threads_per_client=args.client_threads)
        else:
            from .flower.deploy import LocalDeployment

            with LocalDeployment(cfg.federation.n_clients, client_threads=args.client_threads) as deployment:
                print(
                    f"SuperLink on 127.0.0.1:{deployment.port}, {cfg.federation.n_clients} SuperNodes; logs in {deployment.log_dir}"
                )
                deployment.run(
                    args.config,
                    args.overrides,
                    method=args.method,
                    run_dir=run_dir,
                    timeout=cfg.federation.timeout_s * 20,
                )
    except ImportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"\nrun folder: {run_dir}\n")
    print((run_dir / "summary.txt").read_text())
    return 0


def _privacy_audit(args: argparse.Namespace) -> int:
    """``privacy-audit RUN_DIR ...``: attack each run, write its ``audit.json``, print one table."""
    from .analysis.audit import AuditError, audit_run, audit_table

    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.quiet:
        os.environ["TQDM_DISABLE"] = "1"
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()] if args.attacks else None
    audits = []
    for run_dir in args.run_dirs:
        try:
            audits.append(
                audit_run(run_dir, attacks, n_boot=args.boot, contrast=not args.no_contrast, progress=not args.quiet)
            )
        except (AuditError, ConfigError, FileNotFoundError) as err:  # AuditError: a bad folder, attack name or --boot
            print(f"error: {err}", file=sys.stderr)
            if audits:
                print(audit_table(audits))  # what was already audited is not lost (each run also has its audit.json)
            return 2
    print(audit_table(audits))
    return 0


def _private_vote_tradeoff(args: argparse.Namespace) -> int:
    """``replay RUN_DIR --private-vote 0.5,1,2``: what a noisy vote would have released from the run's answers."""
    from .analysis.replay import tradeoff_from_run
    from .protocol.private_vote import format_tradeoff

    try:
        sigmas = [float(x) for x in args.private_vote.split(",") if x.strip()]
        rows = tradeoff_from_run(args.run_dir, sigmas, args.delta, args.rounds)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        import dataclasses

        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    else:
        print(
            f"private consensus on the recorded answers of {args.run_dir} (client-level DP; delta = 2 x {args.delta:g})\n"
        )
        print(format_tradeoff(rows))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "cost":
        return _cost(args)
    if args.command == "privacy-audit":
        return _privacy_audit(args)
    if args.command == "figures":
        from .ui.report import write_run_figures

        try:
            paths = write_run_figures(args.run_dir, args.out, png=args.png)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        for path in paths:
            print(f"figure: {path}")
        return 0
    if args.command == "replay":
        from .analysis.replay import format_replay, replay

        if args.private_vote:
            return _private_vote_tradeoff(args)
        try:
            rows = replay(args.run_dir, args.rules, args.rounds, args.overrides)
        except (FileNotFoundError, ValueError, ConfigError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(json.dumps(rows, indent=1) if args.json else format_replay(rows))
        return 0
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
    if args.command == "flower":
        return _flower(args, cfg)

    quiet = args.quiet
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # our bars and the libraries' tqdm bars alike
    # heavy imports only when running
    from .engine.models import ModelNotFoundError
    from .federation.loop import RoundFailedError, resume_federation, run_federation
    from .protocol.fedavg import IncompatibleAdaptersError

    try:
        if args.command == "compare":
            from .analysis.compare import run_comparison, run_seeds, seed_table, summarize_seeds
            from .ui import plots

            methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
            unknown = [m for m in methods or [] if not method_known(m)]
            if unknown:
                print(
                    f"config error: --methods {unknown}: choose from {list(METHODS)}, or consensus@RULE.",
                    file=sys.stderr,
                )
                return 2
            if args.summarize:
                print(seed_table(summarize_seeds(args.summarize))[1])
                return 0
            if args.seeds is not None:
                try:
                    seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
                except ValueError:
                    print(
                        f"config error: --seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2.",
                        file=sys.stderr,
                    )
                    return 2
                summary, table = run_seeds(
                    cfg, seeds, methods, run_dir=args.run_dir, progress=not quiet, extend=args.extend
                )
                if not args.no_figures:
                    plots.write_figures(plots.seed_figures(summary, seed_table(summary)[0]), summary.root / "figures")
                print(f"\nrun folder: {summary.root}\n")
                print(table)
                return 0
            comp = run_comparison(cfg, methods, run_dir=args.run_dir, progress=not quiet)
            paths = (
                []
                if args.no_figures
                else plots.write_figures(plots.comparison_figures(comp.metrics), comp.run_dir / "figures")
            )
            print(f"\nrun folder: {comp.run_dir}\n")
            print(comp.table)
            for path in paths:
                print(f"figure: {path}")
            return 0
        if args.command == "robustness":
            from .analysis.robustness import robustness_sweep

            try:
                fractions = [float(f) for f in args.fractions.split(",")]
            except ValueError:
                print(
                    f"config error: --fractions {args.fractions!r}: give comma-separated numbers, e.g. 0,0.25,0.5.",
                    file=sys.stderr,
                )
                return 2
            methods = [m.strip() for m in args.methods.split(",") if m.strip()]
            if args.server_only:
                from .analysis.robustness import server_only_sweep

                print(server_only_sweep(args.server_only, args.behaviour, fractions)[1])
                return 0
            _, table = robustness_sweep(
                cfg, args.behaviour, fractions, methods, run_dir=args.run_dir, progress=not quiet
            )
            print(table)
            return 0
        if args.resume:
            result = resume_federation(args.resume, progress=not quiet, overrides=args.overrides)
        else:
            result = run_federation(cfg, run_dir=args.run_dir, progress=not quiet, method=args.method)
    except (IncompatibleAdaptersError, ModelNotFoundError) as err:  # a user's choice, not a bug: the message alone
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ValueError as err:  # e.g. an unknown behaviour
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RoundFailedError, FileNotFoundError, FileExistsError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    print(f"\nrun folder: {result.run_dir}\n")
    print(result.table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
