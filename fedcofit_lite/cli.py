"""Command line: ``python -m fedcofit_lite run --config configs/cpu.yaml --set train.lr=1e-4``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .config import ConfigError, RunConfig, describe, load_config

USER_ERROR, RUN_FAILED = 2, 3  # exit codes: a mistake in the command or its inputs; a run that failed on the way


def _common(config_default: str = "cpu", quiet: bool = True) -> argparse.ArgumentParser:
    """--config, --set (and --quiet): shared by every command that reads a preset."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--config", default=config_default, help=f"preset name or a YAML path [{config_default}]")
    _set_flag(p, "override one option, e.g. --set federation.rounds=3 (repeatable)")
    if quiet:
        p.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")
    return p


def _set_flag(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help_text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fedcofit_lite", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common, quiet = _common(), argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bars, warnings only")

    run = sub.add_parser("run", parents=[common], help="run the semantic-consensus protocol and write a run folder")
    run.add_argument("--run-dir", help="write into this folder instead of <output_dir>/<name>-<time>")
    run.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its folder (its config.yaml, with --set applied; --config and --method are ignored)",
    )
    run.add_argument("--method", help="sets federation.method (a name of `options`), e.g. fedavg")

    cmp = sub.add_parser(
        "compare", parents=[common], help="several methods on one partition and seed: a table and figures"
    )
    cmp.add_argument("--methods", help="sets compare.methods, comma-separated, e.g. consensus,fedavg")
    cmp.add_argument("--run-dir", help="write into this folder instead of <output_dir>/<name>-compare-<time>")
    cmp.add_argument(
        "--seeds",
        metavar="S,S,...",
        help="once per seed into RUN_DIR/seed_S/, then means with 95%% paired bootstrap intervals, e.g. 0,1,2",
    )
    cmp.add_argument(
        "--extend", action="store_true", help="with --seeds and a finished --run-dir: add the methods it lacks"
    )
    cmp.add_argument("--summarize", metavar="RUN_DIR", help="print the multi-seed table of a finished folder")
    cmp.add_argument("--no-figures", action="store_true", help="skip the plotly HTML figures")

    _sweep_command(sub, common)
    sub.add_parser("config", parents=[_common(quiet=False)], help="print the resolved configuration of a preset")
    sub.add_parser("options", help="list every option with its default and help text")

    rob = sub.add_parser("robustness", parents=[common], help="sweep the share of bad clients: consensus vs FedAvg")
    rob.add_argument("--behaviour", default="colluder", help="random_text, constant, echo or colluder [colluder]")
    rob.add_argument("--fractions", default="0,0.25,0.5,0.75", help="fractions of bad clients [0,0.25,0.5,0.75]")
    rob.add_argument("--methods", default="consensus,fedavg")
    rob.add_argument("--run-dir")
    rob.add_argument(
        "--server-only",
        metavar="RUN_DIR",
        help="no training: corrupt the recorded round-1 answers of an honest consensus run and refit (seconds)",
    )

    _reading_commands(sub, quiet)
    return parser


def _sweep_command(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``sweep`` command's arguments (its description is :func:`_sweep`'s docstring)."""
    sw = sub.add_parser(
        "sweep",
        parents=[common],
        help="public budget x rounds x clients: consensus against FedAvg, local, centralized",
        description=_sweep.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sw.add_argument("--budgets", metavar="B,B,...", help="public prompts per round [data.n_public]")
    sw.add_argument("--seeds", default="0", metavar="S,S,...", help="seeds [0]")
    sw.add_argument("--methods", help="comma-separated, e.g. consensus,consensus@vote,fedavg [compare.methods]")
    sw.add_argument(
        "--rounds",
        metavar="R,R,...",
        help="report the scores after these rounds; cells run to the largest [federation.rounds]",
    )
    sw.add_argument("--clients", metavar="N,N,...", help="client counts [federation.n_clients]")
    sw.add_argument(
        "--client-data",
        choices=["per-client", "total"],
        default="per-client",
        help="what stays fixed across client counts: each client's data.max_train_per_client, or the preset's total [per-client]",
    )
    sw.add_argument(
        "--send-changed", action="store_true", help="federation.send_changed: clients send only changed answers"
    )
    sw.add_argument("--watts-per-core", type=float, help="eval.watts_per_core of the energy estimate [10]")
    sw.add_argument(
        "--run-dir", help="the sweep folder (run again to resume or extend it) [<output_dir>/<name>-sweep-<time>]"
    )
    sw.add_argument(
        "--reuse",
        metavar="SWEEP_DIR",
        help="copy this sweep folder's finished cells (same --config and --set, or a public pool of its records)",
    )
    sw.add_argument("--summarize", metavar="RUN_DIR", help="no training: print the tables of a sweep folder")
    sw.add_argument(
        "--link",
        dest="links",
        action="append",
        metavar="NAME=UP/DOWN",
        help="a client link in Mbit/s for the simulated wall-clock, repeatable [home=1/10, 100 Mbit/s=100/100]",
    )
    sw.add_argument(
        "--target", type=float, help="time to accuracy: this score [local + FRACTION x (centralized - local)]"
    )
    sw.add_argument(
        "--fraction", type=float, default=0.5, help="time to accuracy: share of the local -> centralized gap [0.5]"
    )
    sw.add_argument("--boot", type=int, default=1000, help="bootstrap draws of the intervals [1000]")
    sw.add_argument("--no-figures", action="store_true", help="skip the plotly HTML figures")


def _reading_commands(sub: argparse._SubParsersAction, quiet: argparse.ArgumentParser) -> None:
    """The commands that read finished run folders (or nothing): replay, leaderboard, figures, privacy-audit, cost."""
    rep = sub.add_parser("replay", help="refit consensus rules on a run's saved answers (no language model)")
    rep.add_argument("run_dir", help="a consensus run folder, or a compare folder's consensus/ (or consensus@RULE/)")
    rep.add_argument("--rule", dest="rules", action="append", help="rule to refit, repeatable [all]")
    rep.add_argument("--round", dest="rounds", action="append", type=int, help="repeatable [all]")
    _set_flag(rep, "change the run's consensus settings for the replay, e.g. consensus.min_agreement=0.5")
    rep.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    rep.add_argument(
        "--signals",
        action="store_true",
        help="instead: how well each per-answer signal (confidence, closeness, consistency, agreement) tells a right "
        "answer from a wrong one (ROC AUC per family), over the rounds asked (default round 1) of every seed",
    )
    rep.add_argument(
        "--private-vote",
        metavar="SIGMA,SIGMA,...",
        help="instead: the private consensus trade-off at these noise levels (epsilon, labels released, precision)",
    )
    rep.add_argument("--delta", type=float, default=1e-5, help="with --private-vote: delta [1e-5]")

    lb = sub.add_parser(
        "leaderboard",
        parents=[quiet],
        help="rank every consensus rule on the shipped corpus of recorded answers (no model)",
    )
    lb.add_argument("--corpus", help="a corpus manifest [notebooks/reference/corpus.json]")
    lb.add_argument(
        "--plugin",
        dest="plugins",
        action="append",
        default=[],
        metavar="FILE.py:OBJECT",
        help="enter a rule of your own: a RuleSpec, an unfitted SemanticConsensus, or a dict of them (repeatable)",
    )
    lb.add_argument("--rule", dest="rules", action="append", help="registered rule to score [all]")
    lb.add_argument("--round", dest="rounds", action="append", type=int, help="rounds to score [1]")
    lb.add_argument("--boot", type=int, default=1000, help="bootstrap draws of the intervals [1000]")
    lb.add_argument("--json", action="store_true", help="print the per-case rows as JSON instead of the board")

    figs = sub.add_parser("figures", help="regenerate figures (HTML; PNG with --png and Chrome) from a run folder")
    figs.add_argument("run_dir", help="a folder written by `run` or `compare`")
    figs.add_argument("--out", default="figures", help="output folder [figures]")
    figs.add_argument("--png", action="store_true", help="also write PNG (needs kaleido and a Chrome/Chromium binary)")

    flw = sub.add_parser("flower", parents=[_common("ci")], help="the federation on Flower: one process per client")
    flw.add_argument(
        "mode",
        choices=["simulate", "deploy"],
        help="simulate: Flower's simulation engine (Ray); deploy: a SuperLink and one SuperNode per client on localhost",
    )
    flw.add_argument("--method", help="sets federation.method, e.g. fedavg")
    flw.add_argument("--run-dir", help="write into this folder instead of <output_dir>/<name>-flower-<time>")
    flw.add_argument("--client-threads", type=int, default=1, help="torch threads per client process [1]")

    aud = sub.add_parser("privacy-audit", parents=[quiet], help="membership inference on what each run's method sent")
    aud.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders written by `run` (they keep the adapters)")
    aud.add_argument("--attacks", help="comma-separated, from loss,loss_ref,query,answers,pseudo_labels")
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
    rows = [
        {**r, "params": f"{r['n_parameters'] / 1e9:.2f}B", **{k: cm.format_bytes(r[k]) for k in cm.PROTOCOLS}}
        for r in sorted(cm.cost_table(archs, protocol), key=lambda r: r["n_parameters"])
    ]
    heads = ("model", "params", "full FedAvg", "LoRA FedAvg", "consensus", "LoRA/cons", "full/cons")
    keys = ("name", "params", *cm.PROTOCOLS, "lora_over_consensus", "full_over_consensus")
    fmts = {"lora_over_consensus": "{:,.1f}", "full_over_consensus": "{:,.0f}"}
    print(format_table(rows, [(h, k, fmts.get(k, "{}")) for h, k in zip(heads, keys)]))
    return 0


def _flower(args: argparse.Namespace) -> int:
    """``flower simulate`` / ``flower deploy``: the same run on Flower; prints the run folder and its table."""
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


def _figures(args: argparse.Namespace) -> int:
    from .ui.report import write_run_figures

    for path in write_run_figures(args.run_dir, args.out, png=args.png):
        print(f"figure: {path}")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from .analysis.replay import format_replay, format_signal_power, replay, signal_power_of, tradeoff_from_run
    from .protocol.private_vote import format_tradeoff

    if args.private_vote:  # what a noisy vote would have released from the run's answers
        sigmas = _numbers(args.private_vote, float, "--private-vote", "0.5,1,2")
        rows, fmt = tradeoff_from_run(args.run_dir, sigmas, args.delta, args.rounds), format_tradeoff
        if not args.json:
            print(
                f"private consensus on the recorded answers of {args.run_dir} (client-level DP; delta = 2 x {args.delta:g})\n"
            )
    elif args.signals:
        rows, fmt = signal_power_of(args.run_dir, args.rounds or [1]), format_signal_power
    else:
        rows, fmt = replay(args.run_dir, args.rules, args.rounds, args.overrides), format_replay
    print(json.dumps(rows, indent=1, default=dataclasses.asdict) if args.json else fmt(rows))
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from .analysis import leaderboard as lb

    entrants = {k: v for p in args.plugins for k, v in lb.load_plugin(p).items()}
    groups = lb.load_corpus(args.corpus or lb.CORPUS)
    board = lb.leaderboard(groups, entrants, args.rules, args.rounds or [1], args.boot, progress=not _quiet(args))
    print(json.dumps(board.cases, indent=1, default=str) if args.json else lb.format_board(board))
    return 0


def _options(args: argparse.Namespace) -> int:
    from .federation.methods import choices
    from .protocol.cluster import REGISTRY

    known = choices()
    for name, default, help_text in describe():
        names = f" Registered: {', '.join(known[name])}." if name in known else ""
        print(f"{name:34s} {default:38s} {help_text}{names}")
    for clusterer, spec in REGISTRY.items():  # each clusterer's own parameters
        for name, default, help_text in describe(spec.params, "consensus.clusterer_params."):
            print(f"{name:34s} {default:38s} ({clusterer}) {help_text}")
    return 0


def _config(args: argparse.Namespace) -> int:
    print(_load(args).to_yaml(), end="")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .analysis.compare import seed_table, summarize_seeds
    from .experiments.compare import run_comparison, run_seeds
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


def _sweep(args: argparse.Namespace) -> int:
    """How much public data, how many rounds, how many clients: where consensus meets parameter averaging.

    Runs every cell of budgets x seeds x methods x client counts into one folder (layout in
    fedcofit_lite/analysis/sweep.py), then prints and writes (sweep.txt, figures/) the score against budget, bytes,
    round and simulated wall-clock with 95% paired intervals, time to accuracy, what the pseudo-labels did at each
    budget, what each client learned of the families it held no record of, each model's clients in a federation of
    several architectures, and the smallest budget at which the best consensus rule is not below FedAvg-LoRA
    (personalized and global), paired over seeds and items. Shared stages run once per group (client count, seed); the methods that read
    no public prompt run once per group, beside every budget; one run to the last of --rounds gives every earlier
    round. The same command resumes an interrupted sweep; with more values it adds only the new cells. The study's
    commands are in docs/reproducing.md.
    """
    from .analysis import frontier, sweepreport
    from .analysis.sweep import SweepPlan
    from .experiments.sweep import run_sweep
    from .ui import plots, sweepplots

    links = [frontier.parse_link(x) for x in args.links] if args.links else list(frontier.DEFAULT_LINKS)
    if args.summarize:
        res = frontier.load_sweep(args.summarize)
        print(sweepreport.sweep_report(res, links, args.fraction, args.target, args.boot))
        return 0
    extra = ["federation.send_changed=true"] if args.send_changed else []
    extra += [f"eval.watts_per_core={args.watts_per_core}"] if args.watts_per_core is not None else []
    args.overrides = [*args.overrides, *extra]
    cfg, quiet = _load(args), _quiet(args)
    budgets = _numbers(args.budgets, int, "--budgets", "48,96,192") if args.budgets else [cfg.data.n_public]
    clients = _numbers(args.clients, int, "--clients", "4,8,16") if args.clients else [cfg.federation.n_clients]
    rounds = _numbers(args.rounds, int, "--rounds", "2,4,8") if args.rounds else [cfg.federation.rounds]
    seeds, client_data = _numbers(args.seeds, int, "--seeds", "0,1,2"), args.client_data.replace("-", "_")
    plan = SweepPlan(budgets, seeds, list(cfg.compare.methods), clients, rounds, client_data)
    run_dir = args.run_dir or str(Path(cfg.output_dir) / f"{cfg.name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    command = " ".join(["python -m fedcofit_lite", *sys.argv[1:]])
    root = run_sweep(cfg, plan, run_dir, progress=not quiet, command=command, reuse=args.reuse)
    res = frontier.load_sweep(root)
    report = sweepreport.sweep_report(res, links, args.fraction, args.target, args.boot)
    (root / "sweep.txt").write_text(report + "\n")
    if not args.no_figures:
        plots.write_figures(sweepplots.sweep_figures(res, links, args.boot), root / "figures")
    print(f"\nsweep folder: {root}\n\n{report}")
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from .analysis.robustness import server_only_sweep
    from .experiments.robustness import robustness_sweep

    fractions = _numbers(args.fractions, float, "--fractions", "0,0.25,0.5")
    if args.server_only:
        print(server_only_sweep(args.server_only, args.behaviour, fractions)[1])
        return 0
    cfg, quiet = _load(args), _quiet(args)
    _, table = robustness_sweep(
        cfg, args.behaviour, fractions, cfg.compare.methods, run_dir=args.run_dir, progress=not quiet
    )
    print(table)
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
    "sweep": _sweep, "leaderboard": _leaderboard,
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
