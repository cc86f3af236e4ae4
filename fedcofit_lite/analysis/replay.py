"""Replay: refit consensus rules on a run's saved answers, in seconds, with no language model.

A consensus run saves every answer the clients sent, with its confidence, the competence signals the clients measured
and the server's sentence embeddings. Replay fits any rule of :data:`~fedcofit_lite.protocol.consensus.RULES` on them as
the server would (:func:`~fedcofit_lite.protocol.consensus.build_consensus`) and scores the pseudo-labels it would have
sent against the hidden references, which it reads to score, never to decide. The run's embedder is the only model it
may load (for answers the server did not embed); no widget library, no transformers (a test checks it).
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConsensusConfig, load_config
from ..protocol.cluster import REGISTRY, clusterer_params, make_clusterer
from ..protocol.competence import closeness
from ..protocol.consensus import RULES, SemanticConsensus, build_consensus, normalize_answer
from ..protocol.private_vote import TradeoffRow, tradeoff
from ..runlog import (
    PseudoLabelRow,
    label_scores,
    read_answers,
    read_embeddings,
    read_partition,
    read_pseudo_labels,
    rounds_of,
)
from ..tasks.data import build_suite
from ..tasks.evaluate import correct
from . import stats
from .compare import seed_of


@dataclass
class RoundAnswers:
    """Every answer of one round, one entry per (client, prompt), with what the teacher knows; ``X`` rows follow the
    same order once embedded (:func:`load_round` fills it when the server saved its embeddings)."""

    round: int
    clients: list[str]
    prompt_ids: list[str]
    texts: list[str]
    references: list[str]  # hidden reference of each answer's prompt (never sent to the server)
    prompts: dict[str, str]  # prompt id -> instruction (+ context) text
    families_of: dict[str, str] = field(default_factory=dict)  # prompt id -> task family
    confidence: list[float] | None = None  # each answer's confidence, when the run saved it
    signals: dict[str, list[float]] = field(default_factory=dict)  # competence signal -> per answer, when saved
    X: np.ndarray | None = None  # (n_answers, d) unit-norm sentence embeddings

    @functools.cached_property
    def correct(self) -> np.ndarray:
        """(n_answers,) bool: the answer is right (exact match; by content for a free-form family); computed once."""
        return np.array([correct(t, r, f) == 1.0 for t, r, f in zip(self.texts, self.references, self.families)])

    @property
    def families(self) -> list[str]:
        return [self.families_of.get(p, p.split("-public-")[0]) for p in self.prompt_ids]

    def embed(self, embed_fn: Callable[[list[str]], np.ndarray]) -> RoundAnswers:
        """Fill ``X`` with ``embed_fn(texts)`` (e.g. ``lambda t: flt.engine.embed.embed_texts(embedder, t)``)."""
        self.X = np.asarray(embed_fn(self.texts))
        return self

    def rows_of(self, prompt_id: str) -> np.ndarray:
        return np.array([i for i, p in enumerate(self.prompt_ids) if p == prompt_id])


def load_round(run_dir: str | Path, round_index: int = 1, embeddings: bool = True) -> RoundAnswers:
    """Read ``answers/round_R.jsonl`` of a run folder, with the prompts and hidden references of its task suite.

    The server's embeddings (``embeddings/round_R.npz``) fill ``X`` when the run saved them (and ``embeddings``).
    """
    run = Path(run_dir)
    if not (run / "answers" / f"round_{round_index}.jsonl").exists():
        raise FileNotFoundError(
            f"{run}/answers/round_{round_index}.jsonl does not exist; this run folder has rounds "
            f"{rounds_of(run) or 'none'} (is it a consensus run?)."
        )
    suite = build_suite(load_config(run / "config.yaml", recorded=True))
    prompts = {e.id: f"{e.instruction}\n{e.context}".strip() for e in suite.public}
    rows = read_answers(run, round_index)
    ids = [r.prompt_id for r in rows]
    recorded = sorted(set.intersection(*[set(r.signals or {}) for r in rows])) if rows else []  # on every answer
    ra = RoundAnswers(
        round_index,
        [r.client for r in rows],
        ids,
        [r.answer for r in rows],
        references=[suite.public_references[p] for p in ids],
        prompts={p: prompts[p] for p in dict.fromkeys(ids)},
        families_of={e.id: e.family for e in suite.public},
        confidence=[r.confidence for r in rows] if all(r.confidence is not None for r in rows) else None,
        signals={n: [r.signals[n] for r in rows] for n in recorded},
    )
    saved = read_embeddings(run, round_index) if embeddings else None
    if saved is not None:
        vectors, clients, prompt_ids = saved
        row_of = {(c, p): i for i, (c, p) in enumerate(zip(clients, prompt_ids))}
        order = [row_of.get((c, p)) for c, p in zip(ra.clients, ra.prompt_ids)]
        if all(i is not None for i in order):  # a rejected client's answers were never embedded
            ra.X = vectors[order]
    return ra


def derive_closeness(run_dir: str | Path, ra: RoundAnswers, embedder: str, device: str = "cpu") -> RoundAnswers:
    """Fill ``ra.signals["closeness"]`` for a run recorded before clients measured it, as each client would have: its
    private prompts (``partition.json``) against each public prompt, under the run's embedder; a recorded one stays."""
    if "closeness" in ra.signals:
        return ra
    from ..federation.signals import prompt_text

    run = Path(run_dir)
    suite = build_suite(load_config(run / "config.yaml", recorded=True))
    train = {e.id: e for e in suite.train}
    public = {e.id: e for e in suite.public}
    embed = _embed_fn(embedder, device)
    prompts = list(dict.fromkeys(ra.prompt_ids))
    P = np.asarray(embed([prompt_text(public[p]) for p in prompts]))
    row_of = {p: i for i, p in enumerate(prompts)}
    per_client = {}
    for client, part in read_partition(run).items():
        private = [prompt_text(train[i]) for i in part["example_ids"] if i in train]
        values = closeness(P, np.asarray(embed(private)) if private else np.zeros((0, P.shape[1])))
        per_client[client] = np.round(values, 3)
    ra.signals["closeness"] = [float(per_client[c][row_of[p]]) for c, p in zip(ra.clients, ra.prompt_ids)]
    return ra


def ensure_embedded(ra: RoundAnswers, embedder: str, device: str = "cpu") -> RoundAnswers:
    """Embed the answers with ``embedder`` when the run folder did not hold the server's embeddings."""
    return ra.embed(_embed_fn(embedder, device)) if ra.X is None else ra


@functools.lru_cache(maxsize=2)
def _embed_fn(name: str, device: str) -> Callable[[list[str]], np.ndarray]:
    """Texts -> unit vectors under the embedder ``name``, loaded once for a whole replay (every round of every seed)."""
    from ..engine.embed import embed_texts
    from ..engine.models import load_embedder

    return functools.partial(embed_texts, load_embedder(name, device=device), progress=False)


def fit_rule(ra: RoundAnswers, estimator: SemanticConsensus, signal: str | None = None) -> SemanticConsensus:
    """Fit a consensus estimator on a round's answers, with everything a server would know.

    ``signal`` names the competence signal a competence rule reads (its :class:`RuleSpec`'s ``signal``).
    """
    if ra.X is None:
        raise ValueError("embed the answers first (ensure_embedded or RoundAnswers.embed).")
    needs_confidence = estimator.weighting == "confidence" or estimator.min_confidence > 0
    if needs_confidence and ra.confidence is None:
        raise ValueError(
            "this run saved no answer confidences (runs before the confidence rule existed): "
            "the confidence rule cannot be replayed on it; run it again to record them."
        )
    needs_competence = estimator.weighting == "competence" or estimator.choose == "most_competent"
    if (needs_competence or signal) and signal not in ra.signals:
        raise ValueError(
            f"this estimator reads a competence signal, but the round holds {sorted(ra.signals) or 'none'} "
            f"(asked: {signal!r}); pass signal= a recorded one, or derive_closeness for closeness."
        )
    confidence = ra.confidence if needs_confidence else None
    competence = ra.signals[signal] if signal else None  # a weighting of one's own may read it too
    kw = dict(texts=ra.texts, clients=ra.clients, confidence=confidence, families=ra.families, competence=competence)
    return estimator.fit(ra.X, np.array(ra.prompt_ids, dtype=object), **kw)


def label_rows(ra: RoundAnswers, est: SemanticConsensus) -> list[PseudoLabelRow]:
    """The ``pseudo_labels`` rows a server fitting ``est`` would have written for this round, each one scored; as at
    the server, a prompt whose consensus is an empty (or whitespace) answer is never kept."""
    fitted = zip(est.groups_, est.consensus_index_, est.agreement_, est.cohesion_, est.n_clusters_, est.n_answers_)
    rows = []
    for (p, i, agreement, cohesion, k, n), keep in zip(fitted, est.keep_):
        empty = not ra.texts[i].strip()
        row = (ra.texts[i], float(agreement), float(cohesion), int(k), int(n), bool(keep) and not empty, empty)
        rows.append(PseudoLabelRow(ra.round, str(p), *row, float(ra.correct[i])))
    return rows


def label_quality(ra: RoundAnswers, est: SemanticConsensus) -> dict[str, Any]:
    """What the fitted rule would send, scored against the hidden references.

    ``kept`` labels of ``n_prompts``, their ``precision`` (the share that is right), ``new_correct`` and ``harmful``
    labels per client (right where the client's own answer was wrong, and the reverse), ``coverage`` per family.
    """
    return _quality(ra, label_rows(ra, est))


def recorded_quality(run_dir: str | Path, round_index: int) -> dict[str, Any]:
    """:func:`label_quality` of what the run's server did send in a round (its ``pseudo_labels``), not of a refit."""
    return _quality(load_round(run_dir, round_index, embeddings=False), read_pseudo_labels(run_dir, round_index))


def _quality(ra: RoundAnswers, rows: Sequence[PseudoLabelRow]) -> dict[str, Any]:
    """Kept labels, precision, new-correct and harmful labels per client, coverage per family of ``rows`` on ``ra``."""
    scores = label_scores(rows)
    clients = list(dict.fromkeys(ra.clients))
    own = {(c, p): bool(ok) for c, p, ok in zip(ra.clients, ra.prompt_ids, ra.correct)}  # its own answer right?
    family = dict(zip(ra.prompt_ids, ra.families))
    new_correct, harmful, fam_kept, fam_total = Counter(), Counter(), Counter(), Counter()
    for r in rows:
        fam_total[family[r.prompt_id]] += 1
        if r.kept:
            fam_kept[family[r.prompt_id]] += 1
            for c in clients:
                if (c, r.prompt_id) in own:
                    new_correct[c] += r.correct == 1 and not own[c, r.prompt_id]
                    harmful[c] += r.correct != 1 and own[c, r.prompt_id]
    n_clients = max(1, len(clients))
    return {
        "kept": scores["kept"],
        "n_prompts": scores["n_prompts"],
        "precision": _nan(scores["pseudo_label_accuracy"]),
        "new_correct_per_client": sum(new_correct.values()) / n_clients,
        "harmful_per_client": sum(harmful.values()) / n_clients,
        "new_correct": {c: new_correct[c] for c in clients},
        "harmful": {c: harmful[c] for c in clients},
        "coverage": {f: fam_kept[f] / fam_total[f] for f in sorted(fam_total)},
    }


def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


def replay(
    run_dir: str | Path,
    rules: Sequence[str] | None = None,
    rounds: Sequence[int] | None = None,
    overrides: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """One row per (rule, round): the rule refitted on the run's saved answers, and what it would have sent.

    ``run_dir`` is a consensus run folder, a compare folder's ``consensus/``, or a multi-seed compare folder
    (``compare --seeds``): then every ``seed_S/consensus`` is replayed and each row carries its ``seed``
    (:func:`mean_over_seeds` averages them). ``overrides`` (``["consensus.min_agreement=0.5"]``) change the run's
    consensus settings for the replay only.
    """
    run = Path(run_dir)
    if not (run / "config.yaml").exists():
        if seeds := _seed_folders(run):
            return [{"seed": seed_of(f.parent), **row} for f in seeds for row in replay(f, rules, rounds, overrides)]
        raise FileNotFoundError(
            f"{run} has no config.yaml: give a consensus run folder (or a compare folder's consensus/)."
        )
    cfg = load_config(run / "config.yaml", list(overrides), recorded=True)
    rules = list(rules or RULES)
    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise ValueError(f"unknown rule(s) {unknown}; choose from {list(RULES)}.")
    out = []
    for r in rounds or rounds_of(run):
        ra = ensure_embedded(load_round(run, r), cfg.consensus.embedder)
        for rule in rules:
            spec = RULES[rule]
            if spec.needs_confidence and ra.confidence is None:
                out.append({"rule": rule, "round": r, "skipped": "no confidences saved in this run"})
                continue
            if spec.signal == "closeness":
                derive_closeness(run, ra, cfg.consensus.embedder)
            if spec.signal and spec.signal not in ra.signals:
                out.append({"rule": rule, "round": r, "skipped": f"no {spec.signal} signal saved in this run"})
                continue
            est = fit_rule(ra, build_consensus(cfg.consensus, rule), spec.signal)
            out.append({"rule": rule, "round": r, **label_quality(ra, est)})
    return out


def answer_signals(ra: RoundAnswers, consensus_cfg: ConsensusConfig | None = None) -> dict[str, np.ndarray]:
    """Every per-answer number a rule could read, (n_answers,) each, higher = more likely right: the recorded ones, and
    ``agreement``, the share of the prompt's answers in the answer's own medoid-rule group."""
    out = {n: np.asarray(v, dtype=float) for n, v in ra.signals.items()}
    if ra.confidence is not None:
        out["confidence"] = np.asarray(ra.confidence, dtype=float)
    if ra.X is not None:
        est = fit_rule(ra, build_consensus(consensus_cfg, "medoid", min_agreement=0.0))
        share = np.empty(len(ra.texts))
        for rows in (ra.rows_of(p) for p in est.groups_):
            labels = est.labels_[rows]
            for j, i in enumerate(rows):
                share[i] = (np.sum(labels == labels[j]) if labels[j] >= 0 else 1) / len(rows)
        out["agreement"] = share
    return out


def signal_power(rounds: Sequence[tuple[RoundAnswers, ConsensusConfig | None]]) -> list[dict[str, Any]]:
    """ROC AUC of each signal telling a right answer from a wrong one, overall and per family (NaN where every answer is
    right, or wrong), per (round, its run's consensus settings) given, e.g. round 1 of several seeds."""
    from sklearn.metrics import roc_auc_score

    def auc(y: np.ndarray, s: np.ndarray) -> float:
        return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")

    out = []
    for i, (ra, consensus_cfg) in enumerate(rounds):
        y = ra.correct.astype(int)
        fam = np.array(ra.families)
        for name, values in answer_signals(ra, consensus_cfg).items():
            by_family = {f: auc(y[fam == f], values[fam == f]) for f in sorted(set(fam))}
            out.append(
                {"source": i, "round": ra.round, "signal": name, "auc": auc(y, values), "by_family": by_family}
                | {"right": float(y.mean()), "n": len(y)}
            )
    return out


def signal_power_of(run_dir: str | Path, rounds: Sequence[int] = (1,)) -> list[dict[str, Any]]:
    """:func:`signal_power` of a run folder's rounds, or of every seed of a multi-seed compare folder (``seed_*/consensus``)."""
    run = Path(run_dir)
    folders = [run] if (run / "config.yaml").exists() else _seed_folders(run)
    if not folders:
        raise FileNotFoundError(f"{run} has no config.yaml and no seed_*/consensus: give a consensus run folder.")
    pairs = []
    for folder in folders:
        cfg = load_config(folder / "config.yaml", recorded=True)
        for r in rounds:
            ra = ensure_embedded(load_round(folder, r), cfg.consensus.embedder)
            pairs.append((derive_closeness(folder, ra, cfg.consensus.embedder), cfg.consensus))
    return signal_power(pairs)


def _seed_folders(run: Path) -> list[Path]:
    """The ``seed_S/consensus`` folders of a multi-seed compare folder, by seed."""
    return sorted(run.glob("seed_*/consensus"), key=lambda f: seed_of(f.parent))


def format_signal_power(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`signal_power`'s rows as a table: per signal, the mean AUC over the rounds given (and its range), per family."""
    by_signal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_signal[r["signal"]].append(r)
    families = sorted({f for r in rows for f in r["by_family"]})
    n = len({r["source"] for r in rows})
    head = f"{'signal':<13}{'AUC':>7}{'range':>14}" + "".join(f"{f[:12]:>14}" for f in families)
    lines = [f"how well each signal tells a right answer from a wrong one (ROC AUC, mean over {n} round(s))", head]
    lines.append("-" * len(head))
    for name, rs in by_signal.items():
        aucs = [r["auc"] for r in rs]
        fams = [np.array([r["by_family"].get(f, np.nan) for r in rs], dtype=float) for f in families]
        span = f"{np.nanmin(aucs):.2f}-{np.nanmax(aucs):.2f}"  # a family with no AUC (all right or all wrong): "-"
        cells = (f"{np.nanmean(a):>14.2f}" if np.isfinite(a).any() else f"{'-':>14}" for a in fams)
        lines.append(f"{name:<13}{np.nanmean(aucs):>7.2f}{span:>14}" + "".join(cells))
    return "\n".join(lines)


COUNTS = ("kept", "n_prompts", "new_correct_per_client", "harmful_per_client")  # of label_quality, per seed


def seed_mean(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Means over seeds of :func:`label_quality`'s counts, and the precision over the seeds that kept a label."""
    means = {k: float(np.mean([r[k] for r in rows])) for k in COUNTS}
    return {**means, "precision": stats.mean_or_nan([r["precision"] for r in rows if r["kept"]])}


def mean_over_seeds(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several seeds (``seed`` key) averaged per (rule, round); ``n_seeds`` says over how many."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    out = []
    for r in rows:
        if "skipped" in r:
            if not any(o.get("skipped") and o["rule"] == r["rule"] and o["round"] == r["round"] for o in out):
                out.append({k: v for k, v in r.items() if k != "seed"})  # said once, not once per seed
        else:
            groups[(r["rule"], r["round"])].append(r)
    for (rule, rnd), rs in groups.items():
        row: dict[str, Any] = {"rule": rule, "round": rnd, "n_seeds": len(rs), **seed_mean(rs)}
        row["coverage"] = {f: float(np.mean([r["coverage"][f] for r in rs])) for f in rs[0]["coverage"]}
        out.append(row)
    return out


def format_replay(rows: Sequence[dict[str, Any]]) -> str:
    """The replay table, then label coverage per family; rows of several seeds are averaged first."""
    lines = []
    if len({r.get("seed") for r in rows}) > 1:
        rows = mean_over_seeds(rows)
        n_seeds = sorted({r["n_seeds"] for r in rows if "n_seeds" in r})
        lines.append(f"mean over {'/'.join(map(str, n_seeds)) or 'no'} seeds (kept: mean count)")
    head = f"{'rule':<13}{'round':>6}{'kept':>9}{'precision':>11}{'new correct/client':>20}{'harmful/client':>16}"
    lines += [head, "-" * len(head)]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['rule']:<13}{r['round']:>6}   skipped: {r['skipped']}")
            continue
        kept, new, harm = f"{r['kept']:.3g}/{r['n_prompts']:g}", r["new_correct_per_client"], r["harmful_per_client"]
        lines.append(f"{r['rule']:<13}{r['round']:>6}{kept:>9}{r['precision']:>11.2f}{new:>20.2f}{harm:>16.2f}")
    scored = [r for r in rows if "coverage" in r]
    if scored:
        families = list(scored[0]["coverage"])
        lines += ["", "coverage: kept labels / public prompts, per family", ""]
        lines.append(f"{'rule':<13}{'round':>6}" + "".join(f"{f[:12]:>14}" for f in families))
        for r in scored:
            lines.append(f"{r['rule']:<13}{r['round']:>6}" + "".join(f"{r['coverage'][f]:>14.2f}" for f in families))
    return "\n".join(lines)


# -- one round up close: a consensus fitted on it, its quality, sweeps (the explorer's analysis) --
def fit_consensus(
    ra: RoundAnswers,
    algorithm: str = "agglomerative",
    min_agreement: float | None = None,
    min_cohesion: float | None = None,
    **params: Any,
) -> SemanticConsensus:
    """Cluster every prompt's answers with ``algorithm(**params)``; the estimator the server would fit (medoid rule).

    ``min_agreement`` and ``min_cohesion`` default to the configuration's (``consensus.*``); ``min_cohesion=0``
    shows the clusterer's raw groups.
    """
    if ra.X is None:
        raise ValueError("embed the answers first: ra.embed(embed_fn).")
    given = {k: v for k, v in (("min_agreement", min_agreement), ("min_cohesion", min_cohesion)) if v is not None}
    est = build_consensus(None, "medoid", clusterer=make_clusterer(algorithm, **params), **given)
    return est.fit(ra.X, np.array(ra.prompt_ids, dtype=object))


def fit_as_configured(ra: RoundAnswers, consensus: ConsensusConfig, algorithm: str | None = None) -> SemanticConsensus:
    """:func:`fit_consensus` with a config's filters and clusterer parameters (``algorithm``: another clusterer)."""
    algorithm = algorithm or consensus.clusterer
    params = clusterer_params(consensus, algorithm)
    return fit_consensus(ra, algorithm, consensus.min_agreement, consensus.min_cohesion, **params)


def consensus_quality(ra: RoundAnswers, est: SemanticConsensus) -> dict[str, float]:
    """Pseudo-label precision (kept prompts), coverage, and consensus accuracy over all prompts.

    As at the server, a prompt whose consensus is an empty (or whitespace) answer is never a
    pseudo-label: it is counted under ``dropped_empty``, not under ``kept``.
    """
    rows = label_rows(ra, est)
    scores = label_scores(rows)
    return {
        "kept": scores["kept"],
        "dropped_empty": sum(bool(keep) and r.empty for keep, r in zip(est.keep_, rows)),
        "n_prompts": scores["n_prompts"],
        "pseudo_label_accuracy": _nan(scores["pseudo_label_accuracy"]),
        "correct_kept": int(sum(r.correct for r in rows if r.kept)),
        "consensus_accuracy_all": _nan(scores["consensus_accuracy_all_prompts"]),
        "agreement_mean": _nan(scores["agreement_mean"]),
    }


def format_quality(q: dict[str, float]) -> str:
    """:func:`consensus_quality` as a sentence a student can read (not a dict)."""
    kept, n = q["kept"], q["n_prompts"]
    right = f"{q['correct_kept']} right ({q['pseudo_label_accuracy']:.0%})" if kept else "none to score"
    dropped = q.get("dropped_empty", 0)
    empty = f" ({dropped} more agreed on an empty answer and were dropped)" if dropped else ""
    return (
        f"kept {kept} of {n} prompts as pseudo-labels{empty}, {right}; over all {n} prompts the consensus is right "
        f"on {q['consensus_accuracy_all']:.0%}; mean agreement {q['agreement_mean']:.2f}"
    )


def threshold_sweep(
    ra: RoundAnswers,
    algorithm: str = "agglomerative",
    values: Sequence[float] | None = None,
    min_agreement: float | None = None,
    **fixed: Any,
) -> list[dict[str, float]]:
    """:func:`consensus_quality` for each value of the algorithm's knob (``cluster.REGISTRY``), other parameters ``fixed``."""
    spec = REGISTRY[algorithm]
    if values is None:  # every 5th step of a continuous knob, every step of a count
        stride = spec.step * (1 if isinstance(spec.step, int) else 5)
        values = np.round(np.arange(spec.low, spec.high + spec.step / 2, stride), 4).tolist()
    return [
        {spec.knob: v, **consensus_quality(ra, fit_consensus(ra, algorithm, min_agreement, **{**fixed, spec.knob: v}))}
        for v in map(spec.value, values)
    ]


def tradeoff_from_run(
    run_dir: str | Path, sigmas: Sequence[float], delta: float = 1e-5, rounds: Sequence[int] | None = None
) -> list[TradeoffRow]:
    """Private consensus (:func:`~fedcofit_lite.protocol.private_vote.tradeoff`) on a consensus run's recorded votes.

    A vote is a client's answer keyed by :func:`~fedcofit_lite.protocol.consensus.normalize_answer`; a released key
    is right when it passes the run's own check. Later rounds' answers came after the run's own (non-private)
    pseudo-labels: replay round 1 alone for a clean first-round trade-off.
    """
    rounds = list(rounds or rounds_of(run_dir))
    if not rounds:
        raise FileNotFoundError(f"{run_dir} holds no answers/round_R.jsonl: give the folder of a consensus run.")
    seed = load_config(Path(run_dir) / "config.yaml", recorded=True).seed
    votes_by_round, truth = {}, {}
    for r in rounds:
        ra = load_round(run_dir, r)
        prompts = list(dict.fromkeys(ra.prompt_ids))
        keys = [(normalize_answer(t), p) for t, p in zip(ra.texts, ra.prompt_ids)]
        votes_by_round[r] = [[k for k, p in keys if p == q and k] for q in prompts]  # an empty answer abstains
        refs = dict(zip(ra.prompt_ids, ra.references))
        truth[r] = [(refs[q], ra.families_of.get(q)) for q in prompts]
    return tradeoff(votes_by_round, lambda r, p, key: correct(key, *truth[r][p]) >= 1.0, sigmas, delta, seed)
