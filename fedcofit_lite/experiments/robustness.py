"""How much bad behaviour each method survives, trained: a sweep over the fraction of bad clients.

The bad clients are chosen as in :mod:`fedcofit_lite.analysis.robustness` (FedAvg's send the analogous parameter
fault). Every setting runs the methods from one shared local stage; then every clusterer is refitted on the round-1
answers the server received: the server-side view of where consensus breaks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..analysis.replay import load_round
from ..analysis.robustness import behaviours_for, quality_row, robustness_table
from ..config import RunConfig
from ..engine.embed import embed_texts
from ..federation.adversary import ANSWER_BEHAVIOURS
from ..federation.loop import Federation
from ..federation.methods import make_method
from ..protocol.cluster import REGISTRY
from ..runlog import RunLog
from .compare import run_methods, run_shared_stages, write_tables

log = logging.getLogger(__name__)


def robustness_sweep(
    cfg: RunConfig,
    behaviour: str = "colluder",
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    methods: Sequence[str] = ("consensus", "fedavg"),
    algorithms: Sequence[str] | None = None,
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Run the sweep; return one row per fraction and the printed table (also in ``run_dir``). ``algorithms``: the
    clusterers refitted (default: every one of ``cluster.REGISTRY``)."""
    algorithms = list(algorithms or REGISTRY)
    if behaviour not in ANSWER_BEHAVIOURS or behaviour == "honest":
        raise ValueError(f"behaviour {behaviour!r}: choose one of {[b for b in ANSWER_BEHAVIOURS if b != 'honest']}.")
    if cfg.federation.rounds < 1:
        raise ValueError("federation.rounds must be >= 1: the sweep reads round 1's answers.")
    honest = replace(cfg.federation, behaviours=[])
    cfg = replace(cfg, federation=honest, compare=replace(cfg.compare, methods=list(methods))).validate()
    root = RunLog(run_dir) if run_dir else RunLog.create(replace(cfg, name=f"{cfg.name}-robustness-{behaviour}"))
    fed = Federation(cfg, runlog=root, progress=progress)
    plan = [make_method(m, cfg) for m in methods]
    for method in plan:
        fed.prepare(method)
    # bad clients train honestly and only send something else: the shared stages are the same for every fraction
    start = run_shared_stages(fed, plan)
    n = cfg.federation.n_clients
    rows: list[dict[str, Any]] = []
    for n_bad in dict.fromkeys(round(f * n) for f in fractions):  # 0.5 and 0.75 of 3 clients are both 2
        log.info("robustness: %d of %d clients %s", n_bad, n, behaviour)
        bad = behaviours_for(n, n_bad, behaviour)
        fed.reconfigure(replace(fed.cfg, federation=replace(fed.cfg.federation, behaviours=bad)))
        sub = RunLog(root.dir / f"bad_{n_bad}_of_{n}")
        sub.write_config(fed.cfg)
        metrics = run_methods(fed, plan, start, sub)
        summary, _ = write_tables(sub, metrics)
        row: dict[str, Any] = {"behaviour": behaviour, "bad_clients": f"{n_bad}/{n}", "fraction": n_bad / n}
        row.update({f"{r['method']}_final_em": r["final_em"] for r in summary})
        if "consensus" in metrics:  # the server's view: every clusterer refitted on the answers it received
            ra = load_round(sub.dir / "consensus", 1).embed(lambda t: embed_texts(fed.embedder, t, progress=False))
            row.update(quality_row(ra, cfg.consensus, algorithms))
        rows.append(row)
        table = robustness_table(rows, methods, algorithms)
        root.write_json("robustness.json", rows)  # after every fraction: nothing finished is lost
        (root.dir / "robustness.txt").write_text(table + "\n")
    return rows, table
