"""How much bad behaviour each method survives: a sweep over the fraction of bad clients.

For each fraction the last ``round(fraction * n_clients)`` clients turn bad (a behaviour of
:mod:`fedcofit_lite.federation.adversary`; FedAvg's send the analogous parameter fault). Every setting
runs the methods from one shared local stage (bad clients train honestly and only send something
else); then every clusterer is refitted on the round-1 answers the server received: the server-side
view of where consensus breaks.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..config import ConsensusConfig, RunConfig
from ..protocol.cluster import REGISTRY
from ..runlog import RunLog, format_table
from .replay import RoundAnswers, consensus_quality, ensure_embedded, fit_as_configured, load_round

log = logging.getLogger(__name__)


def behaviours_for(n_clients: int, n_bad: int, behaviour: str) -> list[str]:
    """The last ``n_bad`` clients behave badly, the rest are honest."""
    return ["honest"] * (n_clients - n_bad) + [behaviour] * n_bad


def quality_row(ra: RoundAnswers, consensus: ConsensusConfig, algorithms: Sequence[str]) -> dict[str, Any]:
    """Pseudo-label accuracy and kept labels of one round under each clustering algorithm, as table columns."""
    row: dict[str, Any] = {}
    for algo in algorithms:
        q = consensus_quality(ra, fit_as_configured(ra, consensus, algo))
        row[f"pl_acc_{algo}"], row[f"kept_{algo}"] = q["pseudo_label_accuracy"], q["kept"]
    return row


def robustness_sweep(
    cfg: RunConfig,
    behaviour: str = "colluder",
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    methods: Sequence[str] = ("consensus", "fedavg"),
    algorithms: Sequence[str] | None = None,  # default: every clusterer of cluster.REGISTRY
    run_dir: str | Path | None = None,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], str]:
    """Run the sweep; return one row per fraction and the printed table (also in ``run_dir``)."""
    from ..engine.embed import embed_texts
    from ..federation.adversary import ANSWER_BEHAVIOURS
    from ..federation.loop import Federation
    from ..federation.methods import make_method
    from .compare import run_methods, run_shared_stages, write_tables

    algorithms = list(algorithms or REGISTRY)
    if behaviour not in ANSWER_BEHAVIOURS or behaviour == "honest":
        raise ValueError(f"behaviour {behaviour!r}: choose one of {[b for b in ANSWER_BEHAVIOURS if b != 'honest']}.")
    if cfg.federation.rounds < 1:
        raise ValueError("federation.rounds must be >= 1: the sweep reads round 1's answers.")
    cfg = replace(
        cfg, federation=replace(cfg.federation, behaviours=[]), compare=replace(cfg.compare, methods=list(methods))
    ).validate()
    root = RunLog(run_dir) if run_dir else RunLog.create(replace(cfg, name=f"{cfg.name}-robustness-{behaviour}"))
    fed = Federation(cfg, runlog=root, progress=progress)
    plan = [make_method(m, cfg) for m in methods]
    for method in plan:
        fed.prepare(method)
    # Bad clients train honestly and only send something else, so the base and
    # local stages are the same for every fraction: run them once.
    start = run_shared_stages(fed, plan)
    n = cfg.federation.n_clients
    rows: list[dict[str, Any]] = []
    for n_bad in dict.fromkeys(round(f * n) for f in fractions):  # 0.5 and 0.75 of 3 clients are both 2
        log.info("robustness: %d of %d clients %s", n_bad, n, behaviour)
        fed.set_behaviours(behaviours_for(n, n_bad, behaviour))
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
        table = _table(rows, methods, algorithms)
        root.write_json("robustness.json", rows)  # after every fraction: nothing finished is lost
        (root.dir / "robustness.txt").write_text(table + "\n")
    return rows, table


def server_only_sweep(
    run_dir: str | Path,
    behaviour: str = "colluder",
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    algorithms: Sequence[str] | None = None,  # default: every clusterer of cluster.REGISTRY
    round_index: int = 1,
) -> tuple[list[dict[str, Any]], str]:
    """The server's side only, in seconds: replace the answers of a recorded honest round and refit.

    Takes the answers an honest run sent in ``round_index``, turns the last
    clients bad (as :func:`robustness_sweep` does), and reports pseudo-label
    accuracy per algorithm. No training: it shows how the *first* consensus
    after the attack looks, not how training on it plays out over rounds.
    """
    from ..config import load_config
    from ..federation.adversary import apply_behaviours

    cfg = load_config(Path(run_dir) / "config.yaml", recorded=True)
    honest = load_round(run_dir, round_index)
    clients, prompt_ids = list(dict.fromkeys(honest.clients)), list(honest.prompts)
    by_client = {c: [t for t, cc in zip(honest.texts, honest.clients) if cc == c] for c in clients}
    reference = dict(zip(honest.prompt_ids, honest.references))
    rows = []
    for n_bad in dict.fromkeys(round(f * len(clients)) for f in fractions):
        roles = dict(zip(clients, behaviours_for(len(clients), n_bad, behaviour)))
        sent = apply_behaviours(roles, by_client, prompt_ids, honest.prompts, cfg.seed, round_index)
        ra = RoundAnswers(
            round=round_index,
            clients=[c for c in clients for _ in prompt_ids],
            prompt_ids=[p for _ in clients for p in prompt_ids],
            texts=[a for c in clients for a in sent[c]],
            references=[reference[p] for _ in clients for p in prompt_ids],
            prompts=honest.prompts,
        )
        ensure_embedded(ra, cfg.consensus.embedder)
        row = {"behaviour": behaviour, "bad_clients": f"{n_bad}/{len(clients)}", "fraction": n_bad / len(clients)}
        rows.append({**row, **quality_row(ra, cfg.consensus, list(algorithms or REGISTRY))})
    return rows, _table(rows, [], list(algorithms or REGISTRY))


def _table(rows: list[dict[str, Any]], methods: Sequence[str], algorithms: Sequence[str]) -> str:
    columns = [("bad clients", "bad_clients", "{}")]
    columns += [(f"{m} EM", f"{m}_final_em", "{:.3f}") for m in methods]
    columns += [(f"PL acc {a[:6]}", f"pl_acc_{a}", "{:.2f}") for a in algorithms]
    columns += [(f"kept {a[:6]}", f"kept_{a}", "{}") for a in algorithms]
    return f"behaviour: {rows[0]['behaviour']}\n" + format_table(rows, columns)
