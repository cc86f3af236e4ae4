"""The comparison the method exists for: several methods, one partition, one seed, one budget.

:func:`run_comparison` loads the models once, scores the base, runs the local
stage once for every method that starts from it (consensus, FedAvg, FedProx,
local), snapshots the clients' adapters, and then runs each method's rounds
from that same snapshot with a fresh wire. The centralized baseline trains its
own adapter on the pooled data. Layout of the run folder::

    <run_dir>/
        config.yaml, partition.json, metrics.jsonl   shared stages (base, local)
        <method>/metrics.jsonl, summary.txt, ...     one folder per method, written as it goes
        comparison.json, comparison.txt              the final table (rewritten after each method)
        figures/*.html                               plotly figures (+ plotly.min.js, offline)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .config import RunConfig, load_config
from .federation import Federation
from .methods import Method, make_method
from .runlog import RunLog, format_table

log = logging.getLogger(__name__)

TABLE_COLUMNS: list[tuple[str, str, str]] = [
    ("method", "method", "{}"),
    ("local EM", "local_em", "{:.3f}"),
    ("final EM", "final_em", "{:.3f}"),
    ("final ROUGE-L", "final_rouge_l", "{:.3f}"),
    ("bytes up", "bytes_up", "{:,}"),
    ("bytes down", "bytes_down", "{:,}"),
    ("bytes total", "bytes_total", "{:,}"),
    ("x consensus", "bytes_vs_consensus", "{:,.0f}"),
    ("rounds s", "seconds_rounds", "{:.0f}"),
    ("total s", "seconds_total", "{:.0f}"),
]


@dataclass
class Comparison:
    """What :func:`run_comparison` returns; everything is also in ``run_dir``."""

    run_dir: Path
    metrics: dict[str, list[dict[str, Any]]]  # method -> metrics rows (base, local, round_1..R)
    rows: list[dict[str, Any]]
    table: str
    figures: list[Path]


def comparison_rows(metrics: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One summary row per method: scores at the local stage and at the end, bytes, seconds."""
    rows = []
    for method, ms in metrics.items():
        local = next((m for m in ms if m["stage"] == "local"), None)
        final = ms[-1]
        up = sum(m.get("bytes_up", 0) for m in ms)
        down = sum(m.get("bytes_down", 0) for m in ms)
        seconds = [sum(m.get("seconds", {}).values()) for m in ms]
        rows.append(
            {
                "method": method,
                "local_em": local["test"]["all"]["exact_match"] if local else None,
                "final_em": final["test"]["all"]["exact_match"],
                "final_rouge_l": final["test"]["all"]["rouge_l"],
                "final_stage": final["stage"],
                "bytes_up": up,
                "bytes_down": down,
                "bytes_total": up + down,
                "seconds_rounds": sum(s for m, s in zip(ms, seconds) if m["round"] >= 1),
                "seconds_total": sum(seconds),  # a shared stage counts for every method that used it
            }
        )
    consensus = next((r for r in rows if r["method"] == "consensus"), None)
    for r in rows:
        if consensus and consensus["bytes_total"] and r["bytes_total"]:
            r["bytes_vs_consensus"] = r["bytes_total"] / consensus["bytes_total"]
    return rows


def per_round_table(metrics: dict[str, list[dict[str, Any]]], metric: str = "exact_match") -> str:
    """Test score per stage (columns) and method (rows)."""
    stages = list(dict.fromkeys(m["stage"] for ms in metrics.values() for m in ms))
    columns = [("method", "method", "{}")] + [(s, s, "{:.3f}") for s in stages]
    rows = [{"method": method, **{m["stage"]: m["test"]["all"][metric] for m in ms}} for method, ms in metrics.items()]
    return format_table(rows, columns)


def run_comparison(
    cfg: RunConfig,
    methods: list[str] | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
    figures: bool = True,
) -> Comparison:
    """Run several methods on the same partition, seed and budget; write the table and figures.

    Parameters
    ----------
    cfg : RunConfig
        One configuration for all methods (``compare.methods`` names them
        unless ``methods`` is given).
    methods : list of str, optional
        Method names, e.g. ``["consensus", "fedavg", "local", "centralized"]``.
    run_dir : path, optional
        Folder to write; default ``<output_dir>/<name>-compare-<time>``.

    Raises
    ------
    IncompatibleAdaptersError
        Before any training, when FedAvg/FedProx is asked for clients whose
        adapters cannot be averaged (mixed architectures).
    """
    names = list(methods or cfg.compare.methods)
    cfg = replace(cfg, compare=replace(cfg.compare, methods=names)).validate()
    if run_dir is not None and (Path(run_dir) / "metrics.jsonl").exists():
        raise FileExistsError(f"{run_dir} already holds a comparison; load it with load_comparison() or choose a new run_dir.")
    runlog = RunLog(run_dir) if run_dir is not None else RunLog.create(replace(cfg, name=f"{cfg.name}-compare"))
    fed = Federation(cfg, runlog=runlog, progress=progress)
    root = fed.runlog
    plan: list[Method] = [make_method(n, prox_mu=cfg.train.prox_mu) for n in names]
    for method in plan:
        method.prepare(fed)  # refusals (FedAvg across architectures) happen here, before any training
    start = run_shared_stages(fed, plan)
    metrics = run_methods(fed, plan, start, root)
    rows, table = _write_tables(root, metrics)
    paths: list[Path] = []
    if figures:
        from .plots import comparison_figures, write_figures

        paths = write_figures(comparison_figures(metrics), root.dir / "figures")
    return Comparison(root.dir, metrics, rows, table, paths)


@dataclass
class SharedStart:
    """Where every method of a comparison starts: the shared metrics rows and the clients' adapters after the local stage."""

    rows: list[dict[str, Any]]  # base (and local, when a method shares the local stage)
    adapters: dict[str, dict] | None  # client id -> adapter tensors after the local stage
    privacy: dict[str, list] | None  # adapter id -> DP accountant history spent by the local stage


def run_shared_stages(fed: Federation, plan: list[Method]) -> SharedStart:
    """Score the base, then run the local stage once for every method that starts from it."""
    fed.method_name = "shared"
    rows = [fed.run_base()]
    sharing = [m for m in plan if m.shares_local_stage]
    if not sharing:
        return SharedStart(rows, None, None)
    rows.append(fed.run_local_stage(sharing[0]))
    adapters = {c.client_id: fed.pool.get_tensors(c.client_id) for c in fed.clients}
    privacy = {a: list(acc.history) for a, acc in fed.accountants.items()}
    return SharedStart(rows, adapters, privacy)


def run_methods(fed: Federation, plan: list[Method], start: SharedStart, root: RunLog) -> dict[str, list[dict[str, Any]]]:
    """Run each method's rounds from ``start``, with its own wire and folder under ``root``; return its metrics."""
    metrics: dict[str, list[dict[str, Any]]] = {}
    for method in plan:
        log.info("compare: method %s", method.name)
        if method.shares_local_stage:
            fed.start_method(method, RunLog(root.dir / method.name), start.adapters, start.rows, start.privacy)
        else:
            fed.start_method(method, RunLog(root.dir / method.name), None, start.rows[:1])
            method.prepare(fed)  # e.g. reset the centralized adapter to its initial weights
            fed.run_local_stage(method)
        fed.run_rounds(method)
        fed.finish()
        metrics[method.name] = list(fed.metrics)
        _write_tables(root, metrics)  # after every method: an interrupted comparison keeps what finished
    return metrics


def _write_tables(root: RunLog, metrics: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], str]:
    rows = comparison_rows(metrics)
    table = format_table(rows, TABLE_COLUMNS) + "\n\ntest exact match per stage\n" + per_round_table(metrics)
    root.write_json("comparison.json", {"rows": rows, "metrics": metrics})
    (root.dir / "comparison.txt").write_text(table + "\n")
    return rows, table


def load_comparison(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Per-method metrics of a finished (or interrupted) comparison folder."""
    root = Path(run_dir)
    out = {}
    # the order the comparison ran them in (its config), then any other method folder
    order = load_config(root / "config.yaml").compare.methods if (root / "config.yaml").exists() else []
    subs = sorted((p for p in root.iterdir() if (p / "metrics.jsonl").exists()), key=lambda p: (p.name not in order, order.index(p.name) if p.name in order else 0, p.name))
    for sub in subs:
        out[sub.name] = RunLog(sub).read_metrics()
    if not out:
        raise FileNotFoundError(f"{root} holds no method folders with metrics.jsonl; is it a compare run folder?")
    return out
