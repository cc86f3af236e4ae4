"""How much bad behaviour consensus survives, read from run folders: the server's view of a share of bad clients.

For each fraction the last ``round(fraction * n_clients)`` clients turn bad (a behaviour of
:mod:`fedcofit_lite.federation.adversary`); every clusterer is refitted on the round's answers the server
received. :func:`server_only_sweep` corrupts the recorded answers of an honest run (no training);
:mod:`fedcofit_lite.experiments.robustness` trains every method with the bad clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import ConsensusConfig, load_config
from ..protocol.cluster import REGISTRY
from ..runlog import format_table
from .replay import RoundAnswers, consensus_quality, ensure_embedded, fit_as_configured, load_round


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


def server_only_sweep(
    run_dir: str | Path,
    behaviour: str = "colluder",
    fractions: Sequence[float] = (0.0, 0.25, 0.5, 0.75),
    algorithms: Sequence[str] | None = None,  # default: every clusterer of cluster.REGISTRY
    round_index: int = 1,
) -> tuple[list[dict[str, Any]], str]:
    """The server's side only, in seconds: turn the last clients of an honest run's ``round_index`` bad and refit. No
    training: it shows how the *first* consensus after the attack looks, not how training on it plays out."""
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
        ids, texts = [p for _ in clients for p in prompt_ids], [a for c in clients for a in sent[c]]
        who = [c for c in clients for _ in prompt_ids]
        ra = RoundAnswers(round_index, who, ids, texts, [reference[p] for p in ids], honest.prompts)
        ensure_embedded(ra, cfg.consensus.embedder)
        row = {"behaviour": behaviour, "bad_clients": f"{n_bad}/{len(clients)}", "fraction": n_bad / len(clients)}
        rows.append({**row, **quality_row(ra, cfg.consensus, list(algorithms or REGISTRY))})
    return rows, robustness_table(rows, [], list(algorithms or REGISTRY))


def robustness_table(rows: list[dict[str, Any]], methods: Sequence[str], algorithms: Sequence[str]) -> str:
    """One line per share of bad clients: each method's final exact match, each clusterer's labels."""
    columns = [("bad clients", "bad_clients", "{}")]
    columns += [(f"{m} EM", f"{m}_final_em", "{:.3f}") for m in methods]
    columns += [(f"PL acc {a[:6]}", f"pl_acc_{a}", "{:.2f}") for a in algorithms]
    columns += [(f"kept {a[:6]}", f"kept_{a}", "{}") for a in algorithms]
    return f"behaviour: {rows[0]['behaviour']}\n" + format_table(rows, columns)
