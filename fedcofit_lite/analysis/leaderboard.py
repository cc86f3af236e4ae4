"""The rule leaderboard: every consensus rule scored on a shipped corpus of recorded answers, in seconds, with no model.

The corpus (``notebooks/reference/corpus.json``) lists recorded groups of clients (a compare seed folder, a sweep
group), each with its setting and seed. A group's round-1 answers were given by the clients' local-stage models,
the same whichever rule ran after, so every rule is scored on exactly the same answers. Per (rule, setting) the
board reports replay's label quality (:func:`~fedcofit_lite.analysis.replay.label_quality`), its coverage of the
prompts, and how well agreement alone predicts a right answer (ROC AUC); means over the seeds with a bootstrap
interval over seeds.

**Validity.** Where the corpus also holds the *trained* outcome of a rule (a ``consensus@RULE`` cell of the same
group), the board measures how well the replay score (net new correct labels per client, new minus harmful)
predicts the trained gain over local training (same seed): a Spearman rank correlation with a bootstrap interval
over the (rule, setting, seed) cases, and the cases where they disagree most. If replay does not predict training,
the board says so at its top.

A rule, clusterer or whole estimator of one's own joins from outside (:func:`load_plugin`). The answers' sentence
embeddings are computed once and cached (``~/.cache/fedcofit_lite/corpus``, or ``$FEDCOFIT_CACHE``). The shipped
corpus's embeddings ship beside it (``notebooks/reference/corpus_embeddings/``, written by :func:`ship_embeddings`):
another CPU's arithmetic moves embeddings in their last digits, enough to flip a label near a clustering threshold,
so the board reads the recorded ones and is the same on every machine.
"""

from __future__ import annotations

import glob
import hashlib
import importlib
import importlib.util
import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_config
from ..progress import bar
from ..protocol.consensus import RULES, RuleSpec, SemanticConsensus, build_consensus
from ..runlog import read_jsonl
from . import stats
from .compare import seed_of
from .markdown import md_table
from .replay import RoundAnswers, derive_closeness, ensure_embedded, fit_rule, label_quality, load_round, signal_power

CORPUS = Path(__file__).resolve().parents[2] / "notebooks" / "reference" / "corpus.json"
SHIPPED = CORPUS.parent / "corpus_embeddings"  # the shipped corpus's embeddings and closeness, by content hash
USED: set[str] = set()  # the content hashes this process read or computed (what ship_embeddings keeps)


@dataclass(frozen=True)
class Group:
    """One recorded group of clients: its folder, setting and seed, the cell whose answers are replayed, the trained cells."""

    setting: str
    seed: int
    folder: Path
    answers: Path  # a consensus cell: its round-R answers are every rule's input
    trained: dict[str, Path] = field(default_factory=dict)  # rule -> its trained consensus cell
    local: Path | None = None  # the local-training cell of the group (the trained gain's reference)


def load_corpus(path: str | Path = CORPUS) -> list[Group]:
    """The corpus manifest's groups, expanded: each entry names a setting and a glob of group folders.

    An entry: ``{"setting": "expert (one family per client)", "groups": "study/expert/clients_4/seed_*",
    "cells": "public_48"}``; ``cells`` is the sub-folder of a group holding its consensus cells (a sweep's
    budget; omitted for compare folders). Paths are relative to the manifest's folder.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no corpus manifest (notebooks/reference/corpus.json lists the corpus).")
    out = []
    for entry in json.loads(path.read_text())["entries"]:
        matches = map(Path, glob.glob(str(path.parent / entry["groups"])))  # an absolute pattern too
        for folder in sorted(matches, key=seed_of):
            cells = folder / entry.get("cells", "")
            consensus = sorted(c for c in cells.glob("consensus*") if (c / "summary.json").exists())
            if not consensus:
                continue  # a group whose consensus cells have not landed yet
            trained = {_rule_of(c): c for c in consensus}
            local = folder / "local" if (folder / "local" / "summary.json").exists() else None
            out.append(Group(entry["setting"], seed_of(folder), folder, consensus[0], trained, local))
    if not out:
        raise FileNotFoundError(f"{path}: no entry matched a finished group of consensus cells.")
    return out


def _rule_of(cell: Path) -> str:
    """The rule a consensus cell ran under (its metrics rows say), else the part of its name after @."""
    for row in read_jsonl(cell / "metrics.jsonl"):
        if row.get("rule"):
            return str(row["rule"])
    return cell.name.partition("@")[2] or load_config(cell / "config.yaml", recorded=True).consensus.rule


# -- the answers, embedded once ------------------------------------------------------------------


def cached_round(group: Group, round_index: int = 1) -> tuple[RoundAnswers, Any]:
    """A group's round of answers with their embeddings and closeness (each cached on disk by content), and its consensus config."""
    cfg = load_config(group.answers / "config.yaml", recorded=True)
    ra = load_round(group.answers, round_index)
    embedder = cfg.consensus.embedder
    if ra.X is None:
        ra.X = _cached(["answers", embedder, ra.texts], lambda: ensure_embedded(ra, embedder).X)
    if "closeness" not in ra.signals:  # a run recorded before the clients measured it: derived from its partition
        part = next(p for p in (group.answers, group.folder) if (p / "partition.json").exists()) / "partition.json"
        key = ["closeness", embedder, ra.clients, ra.prompt_ids, part.read_text()]
        ra.signals["closeness"] = _cached(
            key, lambda: np.asarray(derive_closeness(group.answers, ra, embedder).signals["closeness"])
        ).tolist()
    return ra, cfg.consensus


def _cache() -> Path:
    return Path(os.environ.get("FEDCOFIT_CACHE", Path.home() / ".cache" / "fedcofit_lite")) / "corpus"


def _cached(key: Any, compute: Any) -> np.ndarray:
    """``compute()``'s array under a hash of ``key``: the shipped one (:data:`SHIPPED`), else the one computed here once
    and stored (``$FEDCOFIT_CACHE`` or ``~/.cache/fedcofit_lite``)."""
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:24]
    USED.add(digest)
    for file in (SHIPPED / f"{digest}.npy", _cache() / f"{digest}.npy"):
        if file.exists():
            return np.load(file)
    value = np.asarray(compute(), dtype=np.float32)
    _cache().mkdir(parents=True, exist_ok=True)
    np.save(_cache() / f"{digest}.npy", value)
    return value


def ship_embeddings() -> tuple[list[str], list[str]]:
    """Keep in :data:`SHIPPED` exactly the arrays this process used (:data:`USED`, after a board of the whole corpus):
    copy the ones computed here, delete the ones no group reads any more. Returns (added, removed) file names."""
    import shutil

    if not USED:  # nothing was boarded here: keep what is shipped
        return [], []
    SHIPPED.mkdir(parents=True, exist_ok=True)
    added = [f"{d}.npy" for d in sorted(USED) if not (SHIPPED / f"{d}.npy").exists()]
    for name in added:
        shutil.copyfile(_cache() / name, SHIPPED / name)
    removed = sorted(p.name for p in SHIPPED.glob("*.npy") if p.stem not in USED)
    for name in removed:
        (SHIPPED / name).unlink()
    return added, removed


def unshipped() -> list[str]:
    """The arrays this process used that are not shipped (their values are this machine's, not the recorded ones)."""
    return sorted(d for d in USED if not (SHIPPED / f"{d}.npy").exists())


# -- scoring ---------------------------------------------------------------------------------------

Entrant = RuleSpec | SemanticConsensus


def score_rule(ra: RoundAnswers, consensus_cfg: Any, name: str, entrant: Entrant | None = None) -> dict[str, Any]:
    """One rule (a registered name, or an entrant of one's own) refitted on one round: replay's label quality."""
    entrant = entrant if entrant is not None else RULES[name]
    if isinstance(entrant, RuleSpec):
        spec = entrant
        if name not in RULES or RULES[name] is not entrant:  # what build_consensus takes from the configuration
            base = build_consensus(consensus_cfg, "medoid")
            given = {k: getattr(base, k) for k in ("clusterer", "min_agreement", "min_cohesion")}
            given |= {k: getattr(consensus_cfg, k) for k in spec.reads}
            est = SemanticConsensus(**{**given, **spec.params})
        else:
            est = build_consensus(consensus_cfg, name)
    else:
        spec, est = None, entrant
    # an estimator of one's own that reads competence reads closeness
    competent = est.weighting == "competence" or getattr(est, "choose", "heaviest") == "most_competent"
    signal = spec.signal if spec is not None else "closeness" if competent else None
    if signal and signal not in ra.signals:
        return {"skipped": f"no {signal} recorded"}
    if (est.weighting == "confidence" or est.min_confidence > 0) and ra.confidence is None:
        return {"skipped": "no confidences recorded"}
    q = label_quality(ra, fit_rule(ra, est, signal))
    q["net_per_client"] = q["new_correct_per_client"] - q["harmful_per_client"]
    q["coverage"] = q["kept"] / q["n_prompts"] if q["n_prompts"] else float("nan")
    return q


@dataclass
class Board:
    """The leaderboard: per (setting, rule) rows with intervals over seeds, the per-case rows, validity."""

    rows: list[dict[str, Any]]
    cases: list[dict[str, Any]]
    validity: dict[str, Any]
    auc: dict[str, stats.Interval]  # setting -> agreement's AUC as a predictor of a right answer
    seconds: float = 0.0


def leaderboard(
    groups: Sequence[Group],
    entrants: Mapping[str, Entrant] | None = None,
    rules: Sequence[str] | None = None,
    rounds: Sequence[int] = (1,),
    n_boot: int = 1000,
    progress: bool = True,
) -> Board:
    """Score every rule of the registry (or ``rules``) and every entrant on every group and round; rank them.

    Steps: 1. per group and round, the answers (embedded once, cached) and their signals; 2. every rule
    refitted on them (:func:`score_rule`); 3. per (setting, rule) the means over seeds with intervals;
    4. validity: replay's net new correct labels against the trained gain, where a group trained the rule.
    """
    start = time.perf_counter()
    names = {**{r: RULES[r] for r in (rules or RULES)}, **dict(entrants or {})}
    cases = []
    auc_cases: dict[str, list[float]] = {}
    with bar(total=len(groups) * len(rounds), desc="corpus", disable=not progress) as pbar:
        for g in groups:
            for r in rounds:
                ra, consensus_cfg = cached_round(g, r)
                for p in signal_power([(ra, consensus_cfg)]):
                    if p["signal"] == "agreement" and np.isfinite(p["auc"]):  # does headcount predict a right answer?
                        auc_cases.setdefault(g.setting, []).append(p["auc"])
                for name, entrant in names.items():
                    q = score_rule(ra, consensus_cfg, name, entrant)
                    cases.append({"setting": g.setting, "seed": g.seed, "round": r, "rule": name, **q})
                pbar.update(1)
    rows = _rank(cases, n_boot)
    validity = _validity(groups, cases, n_boot)
    auc = {s: _mean_interval(v, n_boot) for s, v in auc_cases.items()}
    return Board(rows, cases, validity, auc, time.perf_counter() - start)


def _mean_interval(values: Sequence[float], n_boot: int) -> stats.Interval:
    """Mean of per-seed values with a bootstrap interval over the seeds."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return stats.Interval(float("nan"), float("nan"), float("nan"))
    draws = v[np.random.default_rng(0).integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    return stats.interval(float(v.mean()), draws)


def _rank(cases: Sequence[dict[str, Any]], n_boot: int) -> list[dict[str, Any]]:
    """Per (setting, rule): each metric's mean over seeds (rounds pooled) with an interval; ranked by net new correct."""
    keys = sorted({(c["setting"], c["rule"]) for c in cases if "skipped" not in c})
    out = []
    for setting, rule in keys:
        mine = [c for c in cases if (c["setting"], c["rule"]) == (setting, rule) and "skipped" not in c]
        row: dict[str, Any] = {"setting": setting, "rule": rule, "n": len(mine)}
        for m in ("kept", "precision", "new_correct_per_client", "harmful_per_client", "net_per_client", "coverage"):
            row[m] = _mean_interval([c[m] for c in mine], n_boot)
        out.append(row)
    settings = list(dict.fromkeys(c["setting"] for c in cases))
    return sorted(out, key=lambda r: (settings.index(r["setting"]), -r["net_per_client"].mean))


def trained_gain(group: Group, rule: str, metric: str = "exact_match") -> float | None:
    """The rule's trained cell's final score minus the local cell's (same group), or None when either is missing."""
    cell = group.trained.get(rule)
    if cell is None or group.local is None:
        return None

    trained, local = (float(read_jsonl(f / "metrics.jsonl")[-1]["test"]["all"][metric]) for f in (cell, group.local))
    return trained - local


def _validity(groups: Sequence[Group], cases: Sequence[dict[str, Any]], n_boot: int) -> dict[str, Any]:
    """Spearman correlation of replay's net new correct labels (round 1) with the trained gain over local."""
    from scipy.stats import rankdata, spearmanr

    by_case = {(c["setting"], c["seed"], c["round"], c["rule"]): c for c in reversed(cases)}  # the first of each
    pairs = []
    for g in groups:
        metric = load_config(g.answers / "config.yaml", recorded=True).compare.metric
        for rule in g.trained:
            gain = trained_gain(g, rule, metric)
            case = by_case.get((g.setting, g.seed, 1, rule))
            if gain is not None and case is not None and "skipped" not in case:
                pairs.append({"setting": g.setting, "seed": g.seed, "rule": rule, "replay": case["net_per_client"]})
                pairs[-1]["trained"] = gain
    if len(pairs) < 4:
        return {"n": len(pairs), "rho": None, "pairs": pairs}
    x = np.array([p["replay"] for p in pairs])
    y = np.array([p["trained"] for p in pairs])
    rho = float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(0)
    draws = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(pairs), len(pairs))
        if len(set(x[idx])) > 1 and len(set(y[idx])) > 1:
            draws.append(spearmanr(x[idx], y[idx]).statistic)
    ci = stats.interval(rho, np.array(draws))
    # where they disagree most: the cases furthest apart in rank
    rx, ry = rankdata(x), rankdata(y)
    worst = sorted(range(len(pairs)), key=lambda i: -abs(rx[i] - ry[i]))[:5]
    return {"n": len(pairs), "rho": ci, "pairs": pairs, "disagree": [pairs[i] for i in worst]}


# -- entering from outside ------------------------------------------------------------------------


def load_plugin(spec: str) -> dict[str, Entrant]:
    """Entrants from ``path/to/file.py:object`` or ``package.module:object``: a :class:`RuleSpec` (entered under its
    object name), an unfitted :class:`SemanticConsensus` (any clusterer, thresholds, weighting), or a dict of them."""
    where, _, attr = spec.rpartition(":")
    if not where or not attr:
        raise ValueError(f"--plugin {spec!r}: give path/to/file.py:object or package.module:object.")
    if where.endswith(".py") or os.sep in where:
        path = Path(where)
        if not path.exists():
            raise FileNotFoundError(f"--plugin {spec!r}: {path} does not exist.")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    if not hasattr(module, attr):
        raise ValueError(f"--plugin {spec!r}: {where} has no {attr!r}.")
    obj = getattr(module, attr)
    entrants = obj if isinstance(obj, Mapping) else {attr: obj}
    bad = [k for k, v in entrants.items() if not isinstance(v, (RuleSpec, SemanticConsensus))]
    if bad:
        raise ValueError(
            f"--plugin {spec!r}: {bad} are neither a RuleSpec nor an unfitted SemanticConsensus; enter one of those."
        )
    return dict(entrants)


# -- the table -------------------------------------------------------------------------------------

METRICS = [("kept", "{:.1f}"), ("precision", "{:.2f}"), ("new_correct_per_client", "{:.2f}")]  # as the tables show them
METRICS += [("harmful_per_client", "{:.2f}"), ("net_per_client", "{:+.2f}")]


def _settings(board: Board) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """Per setting: its name, what agreement's AUC says of it, and its ranked rows."""
    for setting in dict.fromkeys(r["setting"] for r in board.rows):
        auc = board.auc.get(setting)
        told = f" (agreement predicts a right answer with AUC {auc.format('{:.2f}')})" if auc else ""
        yield setting, told, [r for r in board.rows if r["setting"] == setting]


def format_board(board: Board) -> str:
    """The leaderboard as text: validity first, then per setting the rules ranked by net new correct labels."""
    v = board.validity
    lines = []
    if v.get("rho") is None:
        lines.append(
            f"validity: only {v['n']} trained (rule, setting, seed) cases: too few to say whether replay predicts training."
        )
    else:
        rho = v["rho"]
        says = "REPLAY DOES NOT RELIABLY PREDICT TRAINING here: read the ranking as label quality, not as accuracy"
        if rho.lo > 0:
            says = "replay's ranking predicts training's"
        lines.append(
            f"validity: Spearman correlation of replay's net new correct labels per client (round 1) with the trained "
            f"gain over local training, over {v['n']} (rule, setting, seed) cases: {rho.format('{:+.2f}')}: {says}."
        )
    heads = ["kept", "precision", "new correct/client", "harmful/client", "net/client"]
    cols = f"{'rule':<14}{'seeds':>6}" + "".join(f"{h:>23}" for h in heads)
    for setting, told, rows in _settings(board):
        lines += ["", f"== {setting} =={told}", cols, "-" * len(cols)]
        lines += [f"{r['rule']:<14}{r['n']:>6}" + "".join(f"{r[m].format(f):>23}" for m, f in METRICS) for r in rows]
    lines += ["", f"scored in {board.seconds:.1f} s"]
    return "\n".join(lines)


def board_markdown(board: Board) -> str:
    """The leaderboard as Markdown (the docs page): validity, then per setting the ranked rules."""
    v = board.validity
    if v.get("rho") is None:
        head = f"Too few trained cases ({v['n']}) to say whether replay predicts training."
    else:
        rho = v["rho"]
        tell = "**replay does not reliably predict training here**: read the ranking as label quality, not accuracy"
        if rho.lo > 0:
            tell = "replay's ranking predicts training's"
        head = (
            f"**Validity.** Over {v['n']} (rule, setting, seed) cases where the rule was also trained, the Spearman "
            f"correlation of replay's net new correct labels per client (round 1) with the trained gain over local "
            f"training is {rho.format('{:+.2f}')}: {tell}."
        )
        if v.get("disagree"):
            worst = "; ".join(
                f"{p['rule']} ({p['setting']}, seed {p['seed']}): replay {p['replay']:+.2f}, trained {p['trained']:+.3f}"
                for p in v["disagree"][:3]
            )
            head += f" Where they disagree most: {worst}."
    out = [head]
    columns = ["rule", "seeds", "kept", "precision", "new correct / client", "harmful / client", "net / client"]
    for setting, told, rows in _settings(board):
        body = [[f"`{r['rule']}`", r["n"], *(r[m].format(fmt) for m, fmt in METRICS)] for r in rows]
        out += ["", f"**{setting}**{told}", "", md_table(columns, body)]
    return "\n".join(out)
