"""Command line: ``python -m fedcofit_lite run --config configs/cpu.yaml --set train.lr=1e-4``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from .config import ConfigError, RunConfig, describe, load_config

USER_ERROR, RUN_FAILED = 2, 3  # exit codes: a mistake in the command or its inputs; a run that failed on the way


def _common(config_default: str = "cpu", quiet: bool = True) -> argparse.ArgumentParser:
    """--config, --set (and --quiet): shared by every command that reads a preset."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=config_default, help=f"preset name or a YAML path [{config_default}]")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one option, e.g. --set federation.rounds=3 (repeatable)",
    )  # fmt: skip
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fedcofit_lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common, quiet = _common(), argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    run = sub.add_parser("run", parents=[common], help="run the semantic-consensus protocol and write a run folder")
    run.add_argument("--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-<time>")
    run.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue an interrupted run from its folder (its config.yaml, with --set applied; --config and --method are ignored)",
    )  # fmt: skip
    run.add_argument("--method", default=None, help="sets federation.method (a name of `options`), e.g. fedavg")

    cmp = sub.add_parser(
        "compare", parents=[common], help="several methods on one partition and seed: a table and figures"
    )
    cmp.add_argument("--methods", default=None, help="sets compare.methods, comma-separated, e.g. consensus,fedavg")
    cmp.add_argument(
        "--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-compare-<time>"
    )
    cmp.add_argument(
        "--seeds", default=None, metavar="S,S,...",
        help="once per seed into RUN_DIR/seed_S/, then means with 95%% paired bootstrap intervals, e.g. 0,1,2",
    )  # fmt: skip
    cmp.add_argument(
        "--extend", action="store_true", help="with --seeds and a finished --run-dir: add the methods it lacks"
    )
    cmp.add_argument(
        "--summarize", default=None, metavar="RUN_DIR", help="print the multi-seed table of a finished folder"
    )
    cmp.add_argument("--no-figures", action="store_true", help="skip the plotly HTML figures")

    sub.add_parser("config", parents=[_common(quiet=False)], help="print the resolved configuration of a preset")
    sub.add_parser("options", help="list every option with its default and help text")

    rob = sub.add_parser("robustness", parents=[common], help="sweep the share of bad clients: consensus vs FedAvg")
    rob.add_argument("--behaviour", default="colluder", help="random_text, constant, echo or colluder [colluder]")
    rob.add_argument("--fractions", default="0,0.25,0.5,0.75", help="fractions of bad clients [0,0.25,0.5,0.75]")
    rob.add_argument("--methods", default="consensus,fedavg")
    rob.add_argument("--run-dir", default=None)
    rob.add_argument(
        "--server-only", default=None, metavar="RUN_DIR",
        help="no training: corrupt the recorded round-1 answers of an honest consensus run and refit (seconds)",
    )  # fmt: skip

    _reading_commands(sub, quiet)
    return parser


def _reading_commands(sub: argparse._SubParsersAction, quiet: argparse.ArgumentParser) -> None:
    """The commands that read finished run folders (or nothing): replay, figures, privacy-audit, cost."""
    rep = sub.add_parser("replay", help="refit consensus rules on a run's saved answers (no language model)")
    rep.add_argument("run_dir", help="a consensus run folder, or a compare folder's consensus/ (or consensus@RULE/)")
    rep.add_argument("--rule", dest="rules", action="append", default=None, help="rule to refit, repeatable [all]")
    rep.add_argument("--round", dest="rounds", action="append", type=int, default=None, help="repeatable [all]")
    rep.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="change the run's consensus settings for the replay, e.g. consensus.min_agreement=0.5",
    )  # fmt: skip
    rep.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    rep.add_argument(
        "--private-vote", default=None, metavar="SIGMA,SIGMA,...",
        help="instead: the private consensus trade-off at these noise levels (epsilon, labels released, precision)",
    )  # fmt: skip
    rep.add_argument("--delta", type=float, default=1e-5, help="with --private-vote: delta [1e-5]")

    figs = sub.add_parser("figures", help="regenerate figures (HTML; PNG with --png and Chrome) from a run folder")
    figs.add_argument("run_dir", help="a folder written by `run` or `compare`")
    figs.add_argument("--out", default="figures", help="output folder [figures]")
    figs.add_argument("--png", action="store_true", help="also write PNG (needs kaleido and a Chrome/Chromium binary)")

    flw = sub.add_parser("flower", parents=[_common("ci")], help="the federation on Flower: one process per client")
    flw.add_argument(
        "mode", choices=["simulate", "deploy"],
        help="simulate: Flower's simulation engine (Ray); deploy: a SuperLink and one SuperNode per client on localhost",
    )  # fmt: skip
    flw.add_argument("--method", default=None, help="sets federation.method, e.g. fedavg")
    flw.add_argument(
        "--run-dir", default=None, help="write into this folder instead of <output_dir>/<name>-flower-<time>"
    )
    flw.add_argument("--client-threads", type=int, default=1, help="torch threads per client process [1]")

    aud = sub.add_parser("privacy-audit", parents=[quiet], help="membership inference on what each run's method sent")
    aud.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders written by `run` (they keep the adapters)")
    aud.add_argument("--attacks", default=None, help="comma-separated, from loss,loss_ref,query,answers,pseudo_labels")
    aud.add_argument("--no-contrast", action="store_true", help="consensus runs: skip the attacks on unsent adapters")
    aud.add_argument("--boot", type=int, default=1000, help="bootstrap draws of the intervals [1000]")

    cost = sub.add_parser("cost", help="analytic bytes per round: full FedAvg, LoRA FedAvg, consensus (no model)")
    cost.add_argument("--models", default="all", help="comma-separated shipped config names, or config.json paths")
    cost.add_argument("--rank", type=int, default=32)
    cost.add_argument("--targets", default="q_proj,v_proj", help="LoRA target modules [q_proj,v_proj]")
    cost.add_argument("--bytes-per-param", type=float, default=4.0)
    cost.add_argument("--prompts", type=int, default=1000)
    cost.add_argument("--answer-tokens", type=float, default=201.0)
    cost.add_argument("--bytes-per-token", type=float, default=4.0)


class UserError(Exception):
    """A mistake in a command's arguments: printed without a traceback, exit code 2."""


def _fail(err: BaseException, code: int = USER_ERROR, prefix: str = "error") -> int:
    print(f"{prefix}: {err}", file=sys.stderr)
    return code


def _quiet(args: argparse.Namespace) -> bool:
    """Logging and bars for a command: INFO with bars, or warnings only with --quiet."""
    quiet = getattr(args, "quiet", False)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format=fmt)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # our bars and the libraries' tqdm bars alike
    return quiet


def _load(args: argparse.Namespace) -> RunConfig:
    """The command's config: ``--config``, then ``--set`` (and ``--method``/``--methods``), checked against the registries."""
    from .federation.methods import check_names

    extra = [f"federation.method={args.method}"] if getattr(args, "method", None) else []
    if getattr(args, "methods", None):
        extra.append(f"compare.methods=[{args.methods}]")
    return check_names(load_config(args.config, [*args.overrides, *extra]))


def _numbers(text: str, kind: type, flag: str, example: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: give comma-separated {kind.__name__}s, e.g. {example}.") from None


def _cost(args: argparse.Namespace) -> int:
    from .analysis import costmodel as cm
    from .runlog import format_table

    names = [m.strip() for m in args.models.split(",")]
    archs = cm.ARCHITECTURES.values() if args.models == "all" else [cm.get_architecture(m) for m in names]
    targets = tuple(t.strip() for t in args.targets.split(","))
    protocol = cm.Protocol(
        rank=args.rank, target_modules=targets, bytes_per_param=args.bytes_per_param, n_prompts=args.prompts,
        answer_tokens=args.answer_tokens, bytes_per_token=args.bytes_per_token,
    )  # fmt: skip
    print(
        f"bytes per client per direction per round: LoRA r={protocol.rank} on {'+'.join(protocol.target_modules)}, "
        f"{protocol.bytes_per_param:g} B/param; consensus {protocol.n_prompts} prompts x {protocol.answer_tokens:g} tokens x "
        f"{protocol.bytes_per_token:g} B\n"
    )
    rows = sorted(cm.cost_table(archs, protocol), key=lambda r: r["n_parameters"])
    rows = [
        {**r, "params": f"{r['n_parameters'] / 1e9:.2f}B", **{k: cm.format_bytes(r[k]) for k in cm.PROTOCOLS}}
        for r in rows
    ]
    heads = ("model", "params", "full FedAvg", "LoRA FedAvg", "consensus", "LoRA/cons", "full/cons")
    keys = ("name", "params", *cm.PROTOCOLS, "lora_over_consensus", "full_over_consensus")
    fmts = {"lora_over_consensus": "{:,.1f}", "full_over_consensus": "{:,.0f}"}
    print(format_table(rows, [(h, k, fmts.get(k, "{}")) for h, k in zip(heads, keys)]))
    return 0


def _flower(args: argparse.Namespace) -> int:
    """``flower simulate`` / ``flower deploy``: the same run on Flower; prints the run folder and its table."""
    import time
    from pathlib import Path

    from .flower.cohort import refuse_unsupported

    cfg = _load(args)
    refuse_unsupported(cfg)  # before a SuperLink or a simulation starts
    _quiet(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir or Path(cfg.output_dir) / f"{cfg.name}-flower-{args.mode}-{stamp}").resolve()
    if args.mode == "simulate":
        from .flower.simulation import simulate

        simulate(cfg, run_dir=run_dir, threads_per_client=args.client_threads)
    else:
        from .flower.deploy import LocalDeployment

        n = cfg.federation.n_clients
        with LocalDeployment(n, client_threads=args.client_threads) as deployment:
            print(f"SuperLink on 127.0.0.1:{deployment.port}, {n} SuperNodes; logs in {deployment.log_dir}")
            timeout = cfg.federation.timeout_s * 20
            deployment.run(args.config, args.overrides, method=args.method, run_dir=run_dir, timeout=timeout)
    print(f"\nrun folder: {run_dir}\n")
    print((run_dir / "summary.txt").read_text())
    return 0


def _privacy_audit(args: argparse.Namespace) -> int:
    """``privacy-audit RUN_DIR ...``: attack each run, write its ``audit.json``, print one table."""
    from .analysis.audit import AuditError, audit_run, audit_table

    _quiet(args)
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()] if args.attacks else None
    audits = []
    for run_dir in args.run_dirs:
        try:
            audits.append(
                audit_run(run_dir, attacks, n_boot=args.boot, contrast=not args.no_contrast, progress=not args.quiet)
            )
        except (AuditError, ConfigError, FileNotFoundError) as err:  # AuditError: a bad folder, attack name or --boot
            if audits:
                print(audit_table(audits))  # what was already audited is not lost (each run also has its audit.json)
            return _fail(err)
    print(audit_table(audits))
    return 0


def _private_vote_tradeoff(args: argparse.Namespace) -> int:
    """``replay RUN_DIR --private-vote 0.5,1,2``: what a noisy vote would have released from the run's answers."""
    from .analysis.replay import tradeoff_from_run
    from .protocol.private_vote import format_tradeoff

    sigmas = _numbers(args.private_vote, float, "--private-vote", "0.5,1,2")
    rows = tradeoff_from_run(args.run_dir, sigmas, args.delta, args.rounds)
    if args.json:
        import dataclasses

        print(json.dumps([dataclasses.asdict(r) for r in rows], indent=1))
    else:
        print(
            f"private consensus on the recorded answers of {args.run_dir} (client-level DP; delta = 2 x {args.delta:g})\n"
        )
        print(format_tradeoff(rows))
    return 0


def _figures(args: argparse.Namespace) -> int:
    from .ui.report import write_run_figures

    for path in write_run_figures(args.run_dir, args.out, png=args.png):
        print(f"figure: {path}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    if args.private_vote:
        return _private_vote_tradeoff(args)
    from .analysis.replay import format_replay, replay

    rows = replay(args.run_dir, args.rules, args.rounds, args.overrides)
    print(json.dumps(rows, indent=1) if args.json else format_replay(rows))
    return 0


def _options(args: argparse.Namespace) -> int:
    from .federation.methods import choices

    known = choices()
    for name, default, help_text in describe():
        names = f" Registered: {', '.join(known[name])}." if name in known else ""
        print(f"{name:34s} {default:38s} {help_text}{names}")
    return 0


def _config(args: argparse.Namespace) -> int:
    print(_load(args).to_yaml(), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .analysis.compare import run_comparison, run_seeds, seed_table, summarize_seeds
    from .ui import plots

    if args.summarize:
        print(seed_table(summarize_seeds(args.summarize))[1])
        return 0
    cfg, quiet = _load(args), _quiet(args)
    methods = cfg.compare.methods if args.methods else None
    if args.seeds is not None:
        seeds = _numbers(args.seeds, int, "--seeds", "0,1,2")
        summary, table = run_seeds(cfg, seeds, methods, run_dir=args.run_dir, progress=not quiet, extend=args.extend)
        if not args.no_figures:
            plots.write_figures(plots.seed_figures(summary, seed_table(summary)[0]), summary.root / "figures")
        print(f"\nrun folder: {summary.root}\n\n{table}")
        return 0
    comp = run_comparison(cfg, methods, run_dir=args.run_dir, progress=not quiet)
    figures = (
        [] if args.no_figures else plots.write_figures(plots.comparison_figures(comp.metrics), comp.run_dir / "figures")
    )
    print(f"\nrun folder: {comp.run_dir}\n\n{comp.table}")
    for path in figures:
        print(f"figure: {path}")
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from .analysis.robustness import robustness_sweep, server_only_sweep

    fractions = _numbers(args.fractions, float, "--fractions", "0,0.25,0.5")
    if args.server_only:
        print(server_only_sweep(args.server_only, args.behaviour, fractions)[1])
        return 0
    cfg, quiet = _load(args), _quiet(args)
    print(
        robustness_sweep(cfg, args.behaviour, fractions, cfg.compare.methods, run_dir=args.run_dir, progress=not quiet)[
            1
        ]
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from .federation.loop import resume_federation, run_federation

    quiet = _quiet(args)
    if args.resume:
        result = resume_federation(args.resume, progress=not quiet, overrides=args.overrides)
    else:
        result = run_federation(_load(args), run_dir=args.run_dir, progress=not quiet)
    print(f"\nrun folder: {result.run_dir}\n\n{result.table}")
    return 0


COMMANDS = {
    "run": _run, "compare": _compare, "config": _config, "options": _options, "robustness": _robustness,
    "replay": _replay, "figures": _figures, "flower": _flower, "privacy-audit": _privacy_audit, "cost": _cost,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a user's mistake is a message and exit code 2, a failed run exit code 3 (no traceback)."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as err:
        return _fail(err, prefix="config error")
    except (UserError, FileNotFoundError, FileExistsError, ValueError, KeyError, ModuleNotFoundError) as err:
        return _fail(err)  # an unknown model, behaviour, rule or attack; a folder that is not a run; no flwr
    except RuntimeError as err:  # a round that failed (too few clients answered), a deployment that stopped
        return _fail(err, RUN_FAILED)


if __name__ == "__main__":
    raise SystemExit(main())
