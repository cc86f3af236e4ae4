"""Comparisons: several methods trained on one partition, one seed, one budget; and over several seeds.

:func:`run_comparison` loads the models once, scores the base, runs the local stage once for every method that
starts from it (consensus, FedAvg, FedProx, local), snapshots the clients' adapters, and then runs each method's
rounds from that same snapshot with a fresh wire. The centralized baseline trains its own adapter on the pooled
data. The folder (the shared stages at its top, one folder per method, the table rewritten after each method; its
layout in docs/cli.md) is read by :mod:`fedcofit_lite.analysis.compare`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..analysis.compare import SeedSummary, comparison_table, load_comparison, seed_table, summarize_seeds
from ..config import RunConfig
from ..federation.loop import Federation
from ..federation.methods import Method, make_method
from ..runlog import RunLog

log = logging.getLogger(__name__)


@dataclass
class Comparison:
    """What :func:`run_comparison` returns; everything is also in ``run_dir``."""

    run_dir: Path
    metrics: dict[str, list[dict[str, Any]]]  # method -> metrics rows (base, local, round_1..R)
    rows: list[dict[str, Any]]
    table: str


def run_comparison(
    cfg: RunConfig,
    methods: list[str] | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
    extend: bool = False,
) -> Comparison:
    """Run several methods on the same partition, seed and budget; write the table (``ui.plots`` draws the figures).

    ``methods`` default to ``compare.methods``; ``run_dir`` to ``<output_dir>/<name>-compare-<time>``.
    ``extend`` adds methods to a finished comparison in ``run_dir``: the methods it holds are kept, the
    shared stages run again (same seed, same result; checked) and only the missing methods run. A method
    that cannot run on these clients (FedAvg across architectures) is refused before any training.
    """
    names = list(methods or cfg.compare.methods)
    data = replace(cfg.data, n_test_per_family=cfg.compare.n_test_per_family)
    cfg = replace(cfg, compare=replace(cfg.compare, methods=names), data=data).validate()
    earlier: dict[str, list[dict[str, Any]]] = {}
    if run_dir is not None and (Path(run_dir) / "metrics.jsonl").exists():
        if not extend:
            raise FileExistsError(
                f"{run_dir} already holds a comparison; load it with load_comparison(), extend it, or choose a new run_dir."
            )
        earlier = load_comparison(run_dir)
        earlier_shared = RunLog(run_dir).read_metrics()
        names = [n for n in names if n not in earlier]
        (Path(run_dir) / "metrics.jsonl").rename(Path(run_dir) / "metrics.before.jsonl")
        root_config = (Path(run_dir) / "config.yaml").read_text()
    runlog = RunLog(run_dir) if run_dir is not None else RunLog.create(replace(cfg, name=f"{cfg.name}-compare"))
    fed = Federation(cfg, runlog=runlog, progress=progress)
    root = fed.runlog
    plan: list[Method] = [make_method(n, cfg) for n in names]
    for method in plan:
        fed.prepare(method)  # refusals (FedAvg across architectures) happen here, before any training
    start = run_shared_stages(fed, plan)
    if earlier:  # the shared stages must have come out as before, or the methods would not start alike
        (root.dir / "config.yaml").write_text(root_config)
        before = {r["stage"]: r["test"] for r in earlier_shared}
        for row in start.rows:
            if row["stage"] in before and not _same_scores(row["test"], before[row["stage"]]):
                raise RuntimeError(
                    f"extending {root.dir}: the {row['stage']} stage scored {row['test']['all']} now and "
                    f"{before[row['stage']]['all']} before; the methods would not share a start. Run a new comparison."
                )
        (root.dir / "metrics.before.jsonl").unlink()
    metrics = {**earlier, **run_methods(fed, plan, start, root)}
    rows, table = write_tables(root, metrics)
    return Comparison(root.dir, metrics, rows, table)


@dataclass
class SharedStart:
    """Where every method of a comparison starts: the shared metrics rows and the clients' adapters after the local stage."""

    rows: list[dict[str, Any]]  # base (and local, when a method shares the local stage)
    adapters: dict[str, dict] | None  # client id -> adapter tensors after the local stage
    privacy: dict[str, list] | None  # adapter id -> DP accountant history spent by the local stage
    initial: dict[str, dict]  # client id -> adapter tensors before any training (the shared start)


def run_shared_stages(fed: Federation, plan: list[Method]) -> SharedStart:
    """Score the base, then run the local stage once for every method that starts from it."""
    fed.method_name = "shared"
    rows = [fed.run_base()]
    initial = {c.client_id: c.model.get_tensors() for c in fed.clients if c.trainable}
    sharing = [m for m in plan if m.shares_local_stage]
    if not sharing:
        return SharedStart(rows, None, None, initial)
    rows.append(fed.run_local_stage(sharing[0]))
    adapters = {c.client_id: c.model.get_tensors() for c in fed.clients if c.trainable}
    privacy = fed.cohort.privacy_state()
    return SharedStart(rows, adapters, privacy, initial)


def run_methods(
    fed: Federation, plan: list[Method], start: SharedStart, root: RunLog
) -> dict[str, list[dict[str, Any]]]:
    """Run each method's rounds from ``start``, with its own wire and folder under ``root``; return its metrics."""
    metrics: dict[str, list[dict[str, Any]]] = {}
    for method in plan:
        metrics[method.name] = run_method(fed, method, start, root.dir / method.name)
        write_tables(root, metrics)  # after every method: an interrupted comparison keeps what finished
    return metrics


def run_method(fed: Federation, method: Method, start: SharedStart, folder: Path) -> list[dict[str, Any]]:
    """One method's rounds from ``start`` (its own local stage when it shares none), in ``folder``; its metrics rows."""
    log.info("compare: method %s", method.name)
    if method.shares_local_stage:
        fed.start_method(method, RunLog(folder), start.adapters, start.rows, start.privacy)
        fed.prepare(method)  # e.g. reset the server's global adapter to the shared start
    else:
        fed.start_method(method, RunLog(folder), start.initial, start.rows[:1])
        fed.prepare(method)  # e.g. reset the centralized adapter to its initial weights
        fed.run_local_stage(method)
    fed.run_rounds(method)
    fed.finish()
    return list(fed.metrics)


def _same_scores(now: dict[str, dict[str, float]], before: dict[str, dict[str, float]]) -> bool:
    """Equal scores on every family and every metric both rows have (a folder written before a metric existed lacks it)."""
    return set(now) == set(before) and all(now[f][m] == before[f][m] for f in now for m in set(now[f]) & set(before[f]))


def write_tables(root: RunLog, metrics: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], str]:
    """Write ``comparison.json`` and ``comparison.txt`` of the methods so far; return the rows and the table."""
    rows, table = comparison_table(root.dir, metrics)
    root.write_json("comparison.json", {"rows": rows, "metrics": metrics})
    (root.dir / "comparison.txt").write_text(table + "\n")
    return rows, table


def run_seeds(
    cfg: RunConfig,
    seeds: list[int],
    methods: list[str] | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
    extend: bool = False,
) -> tuple[SeedSummary, str]:
    """:func:`run_comparison` once per seed into ``<run_dir>/seed_<s>/`` (the partition, adapter start and sampling move
    with it), then the paired multi-seed table; a finished seed is kept, or with ``extend`` gets its missing methods."""
    if not seeds:
        raise ValueError("--seeds needs at least one seed, e.g. 0,1,2.")
    root = Path(run_dir) if run_dir is not None else RunLog.create(replace(cfg, name=f"{cfg.name}-compare")).dir
    root.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        folder = root / f"seed_{s}"
        if (folder / "comparison.json").exists():
            missing = [m for m in (methods or cfg.compare.methods) if not (folder / m / "summary.json").exists()]
            if not (extend and missing):
                log.info("compare: seed %d already in %s, kept", s, folder)
                continue
        run_comparison(replace(cfg, seed=s), methods, run_dir=folder, progress=progress, extend=extend)
    summary = summarize_seeds(root, seeds)
    rows, table = seed_table(summary)
    (root / "comparison_seeds.txt").write_text(table + "\n")
    return summary, table
