"""What a sweep folder says: score against public budget, bytes, round, client count and simulated wall-clock.

Reads only the folder :mod:`fedcofit_lite.analysis.sweep` describes. Every score carries the package's interval: 95%
paired bootstrap over seeds and the test items within each, means over seeds (:mod:`fedcofit_lite.analysis.stats`);
one set of draws serves every entry, budget and stage of a client count, so differences and "first round at which"
stay paired. Seeds count for a client count only where every planned cell of it has finished. Simulated time on a
stated :class:`Link` is the compute seconds measured (every phase but evaluation) plus each round's bytes per client
over the link. :mod:`fedcofit_lite.analysis.sweepreport` lays these out as text; :mod:`fedcofit_lite.ui.sweepplots`
draws them.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..federation.methods import METHODS, has_global_model, method_spec
from ..runlog import RunLog, read_predictions, read_records, rounds_of
from . import markdown, stats
from .compare import energy_total, item_scores
from .sweep import Cell, SweepPlan, cells

log = logging.getLogger(__name__)

Key = tuple[str, int | None, str]  # (entry, budget or None, stage); entry: a method, or "fedavg (global)"


@dataclass(frozen=True)
class Link:
    """A client's network link: ``up_mbit`` and ``down_mbit`` megabits per second."""

    name: str
    up_mbit: float
    down_mbit: float

    def seconds(self, up_bytes: float, down_bytes: float) -> float:
        """Seconds to send ``up_bytes`` and receive ``down_bytes`` over this link."""
        return up_bytes * 8 / (self.up_mbit * 1e6) + down_bytes * 8 / (self.down_mbit * 1e6)


DEFAULT_LINKS = (Link("home 1/10 Mbit/s", 1.0, 10.0), Link("100 Mbit/s", 100.0, 100.0))


def parse_link(text: str) -> Link:
    """``NAME=UP/DOWN`` in Mbit/s, e.g. ``home=1/10`` or ``fibre=100/100``."""
    name, _, speeds = text.partition("=")
    up, _, down = speeds.partition("/")
    with contextlib.suppress(ValueError):  # a speed that is no number
        link = Link(name.strip(), float(up), float(down))
        if link.name and not (link.up_mbit <= 0 or link.down_mbit <= 0):
            return link
    raise ValueError(f"--link {text!r}: give NAME=UP/DOWN in Mbit/s, both > 0, e.g. home=1/10.")


@dataclass
class SweepResults:
    """A sweep folder as read: its plan, finished cells and their metrics rows, and the complete seeds per client count."""

    root: Path
    plan: SweepPlan
    preset: str
    metric: str  # compare.metric of the sweep's configuration
    metrics: dict[Cell, list[dict[str, Any]]]
    seeds: dict[int, list[int]]  # client count -> seeds whose every planned cell has finished
    commands: list[dict[str, str]] = field(default_factory=list)

    @property
    def last_round(self) -> int:
        return max(self.plan.rounds)

    def stages(self) -> list[str]:
        """Every stage a cell ran (its costs are counted at each); the test set is scored after ``scored()`` only."""
        return ["local", *(f"round_{r}" for r in range(1, self.last_round + 1))]

    def scored(self) -> list[str]:
        """The local stage and the rounds the plan reports: a cell made since ``eval.rounds`` scores no other."""
        return ["local", *(f"round_{r}" for r in sorted(self.plan.rounds))]

    def cells_of(self, clients: int) -> list[Cell]:
        return [c for c in self.metrics if c.clients == clients and c.seed in self.seeds[clients]]

    def seed_groups(self, clients: int) -> list[list[Cell]]:
        """The cells of each complete seed of ``clients`` clients; none finished is a FileNotFoundError."""
        if not self.seeds[clients]:
            raise FileNotFoundError(f"{self.root}: no seed has finished every cell of {clients} clients yet.")
        return [[c for c in self.cells_of(clients) if c.seed == s] for s in self.seeds[clients]]

    def entries(self, clients: int) -> list[tuple[str, int | None]]:
        """(entry, budget) pairs of a client count, budget-free ones first; FedAvg's global model beside it."""
        out: list[tuple[str, int | None]] = []
        for c in self.cells_of(clients):
            out.append((c.method, c.budget))
            if has_global_model(c.method):
                out.append((f"{c.method} (global)", None))
        return sorted(dict.fromkeys(out), key=lambda e: (e[1] is not None, e[1] or 0, order(e[0])))


SENDS_ORDER = ("nothing", "records", "adapter", "adapter_b", "answers")


def order(entry: str) -> tuple[int, int, bool]:
    """Where an entry sits in tables: by what the method sends (:data:`SENDS_ORDER`: the references, the parameter
    methods each with its global model, the consensus rules), then its place in the registry; an unknown name last."""
    name, glob = entry.removesuffix(" (global)"), entry.endswith(" (global)")
    spec = method_spec(name)
    if spec is None:
        return len(SENDS_ORDER), 0, glob
    return SENDS_ORDER.index(spec.sends), list(METHODS).index(name.partition("@")[0]), glob


def load_sweep(root: str | Path) -> SweepResults:
    """Read a sweep folder (``sweep.json`` and its finished cells)."""
    root = Path(root)
    if not (root / "sweep.json").exists():
        raise FileNotFoundError(f"{root} has no sweep.json: not a folder written by `python -m fedcofit_lite sweep`.")
    meta = json.loads((root / "sweep.json").read_text())
    plan = SweepPlan(**meta["plan"])
    planned = cells(root, plan)
    metrics = {c: RunLog(c.path).read_metrics() for c in planned if c.done}
    unfinished = {(c.clients, c.seed) for c in planned if not c.done}
    seeds = {n: [s for s in plan.seeds if (n, s) not in unfinished] for n in plan.clients}
    missing = [
        f"{n} clients: seeds {sorted(set(plan.seeds) - set(s))}" for n, s in seeds.items() if set(s) != set(plan.seeds)
    ]
    if missing:
        log.warning("%s: left out, not finished: %s", root, "; ".join(missing))
    metric = meta["config"].get("compare", {}).get("metric", "exact_match")
    return SweepResults(root, plan, meta.get("preset", "?"), metric, metrics, seeds, meta.get("commands", []))


# -- scores, paired over seeds and test items --------------------------------------------------------------
@dataclass
class SweepScores:
    """Point scores and paired bootstrap draws of every (entry, budget, stage) of one client count."""

    clients: int
    seeds: list[int]
    point: dict[Key, float]
    draws: dict[Key, np.ndarray]  # (n_boot,)
    n_items: int
    items: dict[Key, list[np.ndarray]] = field(default_factory=dict)  # per seed, each test item's score
    item_ids: list[list[str]] = field(default_factory=list)  # per seed, the test items' ids, in the arrays' order

    def interval(self, key: Key) -> stats.Interval:
        return stats.interval(self.point[key], self.draws[key])

    def difference(self, a: Key, b: Key) -> stats.Interval:
        """``a``'s score minus ``b``'s, paired draw by draw (seeds and items)."""
        return stats.interval(self.point[a] - self.point[b], self.draws[a] - self.draws[b])

    def beats(self, a: Key, b: Key, n_boot: int = 1000) -> stats.Interval:
        """rliable's probability that a run of ``a`` scores above a run of ``b`` (:func:`stats.probability_of_improvement`)."""
        return stats.probability_of_improvement({"a": self.items[a], "b": self.items[b]}, "a", "b", n_boot)

    def has(self, key: Key) -> bool:
        return key in self.point


def _tags(cell: Cell, global_model: bool) -> list[tuple[str, str]]:
    """(prediction tag, entry) of a cell: its clients' models, and its server's global model when it has one."""
    return [("", cell.method)] + ([("_global", f"{cell.method} (global)")] if global_model else [])


def sweep_scores(res: SweepResults, clients: int, n_boot: int = 1000, metric: str | None = None) -> SweepScores:
    """Paired bootstrap draws of every entry's score at every stage, for ``clients`` clients (complete seeds only)."""
    metric, groups = metric or res.metric, res.seed_groups(clients)
    per_key: dict[Key, list[np.ndarray]] = {}
    item_ids = [sorted({r.id for r in read_predictions(g[0].group, "base") or []}) for g in groups]
    for group, ids in zip(groups, item_ids, strict=True):
        for cell in group:
            for tag, entry in _tags(cell, has_global_model(cell.method)):
                for stage in res.stages():
                    # a shared stage's predictions live in the group's folder
                    rows = read_predictions(cell.path, stage + tag) or (
                        read_predictions(cell.group, stage) if not tag else None
                    )
                    if rows:
                        items = item_scores(rows, metric)
                        per_key.setdefault((entry, cell.budget, stage), []).append(np.array([items[i] for i in ids]))
    complete = {k: v for k, v in per_key.items() if len(v) == len(groups)}
    point, draws = stats.bootstrap_draws(complete, n_boot)
    return SweepScores(clients, res.seeds[clients], point, draws, len(item_ids[0]), complete, item_ids)


# -- what each stage cost -----------------------------------------------------------------------
def _stage_costs(rows: Sequence[dict[str, Any]], n_clients: int, stages: list[str]) -> dict[str, dict[str, float]]:
    """Cumulative bytes, compute seconds and energy of one cell, from its local stage to each stage."""
    by_stage = {r["stage"]: r for r in rows}
    out, total = {}, dict.fromkeys(("bytes_up", "bytes_down", "bytes_up_saved", "compute_s", "energy_j"), 0.0)
    comm: list[tuple[float, float]] = []  # per stage: bytes up and down per client that took part
    for stage in stages:
        r = by_stage.get(stage)
        if r is None:
            break
        for k in ("bytes_up", "bytes_down", "bytes_up_saved", "energy_j"):
            total[k] += r.get(k) or 0
        total["compute_s"] += sum(v for phase, v in r.get("seconds", {}).items() if phase != "eval")
        took_part = len(r.get("train_steps") or {}) or n_clients
        comm.append(((r.get("bytes_up") or 0) / took_part, (r.get("bytes_down") or 0) / took_part))
        out[stage] = {**total, "comm": list(comm)}
    return out


def costs(res: SweepResults, clients: int) -> dict[tuple[str, int | None], dict[str, dict[str, Any]]]:
    """(method, budget) -> stage -> means over the complete seeds of the cumulative costs (``comm``: per-round bytes per client)."""
    groups: dict[tuple[str, int | None], list[dict[str, dict[str, Any]]]] = {}
    for cell in res.cells_of(clients):
        groups.setdefault((cell.method, cell.budget), []).append(_stage_costs(res.metrics[cell], clients, res.stages()))
    out: dict[tuple[str, int | None], dict[str, dict[str, Any]]] = {}
    for (method, budget), per_seed in groups.items():
        reached = [s for s in res.stages() if all(s in c for c in per_seed)]
        out[(method, budget)] = {s: _mean_costs([c[s] for c in per_seed]) for s in reached}
        if has_global_model(method):  # the global model cost what its clients sent
            out[(f"{method} (global)", budget)] = out[(method, budget)]
    return out


def _mean_costs(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Means over seeds of one stage's costs, ``comm`` round by round."""
    mean = {k: float(np.mean([c[k] for c in per_seed])) for k in per_seed[0] if k != "comm"}
    return {**mean, "comm": np.mean([c["comm"] for c in per_seed], axis=0).tolist()}


def simulated_seconds(cost: Mapping[str, Any], link: Link) -> float:
    """Compute seconds as measured plus every round's bytes per client over ``link``."""
    return cost["compute_s"] + sum(link.seconds(up, down) for up, down in cost["comm"])


def budget_rows(res: SweepResults, sc: SweepScores, stage: str) -> list[dict[str, Any]]:
    """One row per (entry, budget) at ``stage``: score, gap closed, bytes (and whole-message bytes), kept, precision, energy."""
    cost = costs(res, sc.clients)
    gap_ok = sc.has(("local", None, stage)) and sc.has(("centralized", None, stage))
    rows = []
    for entry, budget in res.entries(sc.clients):
        key = (entry, budget, stage)
        if not sc.has(key):
            continue
        c = cost.get((entry, budget), {}).get(stage, {})
        row: dict[str, Any] = {"clients": sc.clients, "method": entry, "budget": budget, "stage": stage}
        row["score"] = sc.interval(key)
        if gap_ok and entry not in ("local", "centralized"):
            row["gap"] = _gap(sc, key, stage)
        row["bytes"] = c.get("bytes_up", 0) + c.get("bytes_down", 0)
        row["bytes_whole"] = row["bytes"] + c.get("bytes_up_saved", 0)
        row["energy_j"] = c.get("energy_j")
        cells_here = [x for x in res.cells_of(sc.clients) if (x.method, x.budget) == (entry, budget)]
        at = [next((r for r in res.metrics[x] if r["stage"] == stage), {}) for x in cells_here]
        if at and all("kept" in r for r in at):
            row["kept"] = float(np.mean([r["kept"] for r in at]))
            row["precision"] = _nanmean([r.get("pseudo_label_accuracy") for r in at])
        sources = {energy_total(res.metrics[x]).get("energy_source") for x in cells_here}
        row["energy_source"] = sources.pop() if len(sources) == 1 else None
        rows.append(row)
    return rows


def _nanmean(values: Sequence[float | None]) -> float:
    """The mean of the finite values (None is missing too); NaN when there is none (no warning)."""
    return stats.mean_or_nan([v for v in values if v is not None and np.isfinite(v)])


def _gap(sc: SweepScores, key: Key, stage: str) -> stats.Interval:
    low, high = ("local", None, stage), ("centralized", None, stage)
    return stats.of_draws(lambda s: stats.gap_share(s[key], s[low], s[high]), sc.point, sc.draws)


def round_rows(res: SweepResults, sc: SweepScores) -> list[dict[str, Any]]:
    """One row per (entry, budget): the score with its interval after the local stage and each reported round."""
    stages = ["local", *(f"round_{r}" for r in res.plan.rounds)]
    got = {(e, b): {s: sc.interval((e, b, s)) for s in stages if sc.has((e, b, s))} for e, b in res.entries(sc.clients)}
    return [{"clients": sc.clients, "method": e, "budget": b, "scores": g} for (e, b), g in got.items() if g]


def wall_clock_rows(res: SweepResults, sc: SweepScores, links: Sequence[Link] = DEFAULT_LINKS) -> list[dict[str, Any]]:
    """One row per (entry, budget, stage): the score and the simulated seconds to reach that stage on each link."""
    cost = costs(res, sc.clients)
    rows = []
    for entry, budget in res.entries(sc.clients):
        for stage in res.stages():
            c = cost.get((entry, budget), {}).get(stage)
            if c is None or not sc.has((entry, budget, stage)):
                continue
            seconds = {link.name: simulated_seconds(c, link) for link in links}
            row = {"method": entry, "budget": budget, "stage": stage, "score": sc.interval((entry, budget, stage))}
            rows.append({**row, "compute_s": c["compute_s"], "seconds": seconds})
    return rows


# -- time to accuracy, and where consensus meets FedAvg -------------------------------------------
def time_to_accuracy(
    res: SweepResults,
    sc: SweepScores,
    links: Sequence[Link] = DEFAULT_LINKS,
    fraction: float = 0.5,
    target: float | None = None,
) -> tuple[float, list[dict[str, Any]]]:
    """The target score, and per (entry, budget) the first round whose score reaches it, with its interval.

    Round 0 is the local stage. Per bootstrap draw the round is the first whose drawn score reaches the drawn target
    (the default target moves with its draws: local + ``fraction`` x the gap to centralized after the last round); the
    interval is that round's 2.5 and 97.5 percentiles, ``None`` where a share of draws never reaches it. Bytes and
    seconds are those of the point estimate's round (means over seeds), seconds on each link.
    """
    stages = res.scored()  # a folder that extends an older one may hold other rounds' scores in some cells only
    point_t = draws_t = target
    if target is None:  # local + fraction x (centralized - local) after the last scored round
        lo, hi = ("local", None, stages[-1]), ("centralized", None, stages[-1])
        if not (sc.has(lo) and sc.has(hi)):
            raise ValueError(
                "time to accuracy measures against local + a share of the local -> centralized gap: add local and "
                "centralized to the sweep's --methods, or state the score (--target)."
            )
        point_t, draws_t = (s[lo] + fraction * (s[hi] - s[lo]) for s in (sc.point, sc.draws))
    cost = costs(res, sc.clients)
    rows = []
    for entry, budget in res.entries(sc.clients):
        here = [s for s in stages if sc.has((entry, budget, s))]  # FedAvg's global model starts at round 1
        if here != stages[len(stages) - len(here) :] or not here:
            continue
        index = np.array([0 if s == "local" else int(s.removeprefix("round_")) for s in here])  # local = round 0
        curve = np.array([sc.point[(entry, budget, s)] for s in here])
        drawn = np.stack([sc.draws[(entry, budget, s)] for s in here])  # (stages, n_boot)
        first = np.where((drawn >= draws_t).any(axis=0), index[(drawn >= draws_t).argmax(axis=0)], np.inf)
        reached = np.flatnonzero(curve >= point_t)
        at = int(index[reached[0]]) if len(reached) else None
        lo, hi = np.percentile(first, 2.5, method="lower"), np.percentile(first, 97.5, method="higher")
        row = {"method": entry, "budget": budget, "target": point_t, "rounds": at}
        row["rounds_lo"], row["rounds_hi"] = (int(x) if np.isfinite(x) else None for x in (lo, hi))
        row["share_reached"] = float(np.isfinite(first).mean())
        c = cost.get((entry, budget), {}).get(f"round_{at}" if at else "local") if at is not None else None
        row["bytes"] = c["bytes_up"] + c["bytes_down"] if c else None
        row["seconds"] = {link.name: simulated_seconds(c, link) for link in links} if c else None
        rows.append(row)
    return point_t, rows


def label_rows(res: SweepResults, clients: int) -> list[dict[str, Any]]:
    """Per consensus method, budget and round, what its labels did: the recorded rounds'
    :func:`~fedcofit_lite.analysis.replay.label_quality`, :func:`~fedcofit_lite.analysis.replay.seed_mean` of them."""
    from .replay import recorded_quality, seed_mean

    groups: dict[tuple[str, int | None, int], list[dict[str, Any]]] = {}
    for cell in (c for c in res.cells_of(clients) if c.budget is not None):
        for r in rounds_of(cell.path, "pseudo_labels"):
            groups.setdefault((cell.method, cell.budget, r), []).append(recorded_quality(cell.path, r))
    ordered = sorted(groups.items(), key=lambda g: (g[0][1], order(g[0][0]), g[0][0], g[0][2]))
    return [{"method": m, "budget": b, "round": r, "seeds": len(got), **seed_mean(got)} for (m, b, r), got in ordered]


@dataclass
class Verdict:
    """Where the best consensus rule first meets the reference (:func:`verdict`), or what bounds it."""

    reached: bool
    reference: list[str]  # the entries it is held against
    budget: int | None = None
    round: int | None = None
    rule: str | None = None
    best: stats.Interval | None = None
    against: dict[str, stats.Interval] = field(default_factory=dict)
    text: str = ""
    bounds: list[dict[str, Any]] = field(default_factory=list)  # label_rows of every budget (when not reached)


def verdict(res: SweepResults, sc: SweepScores, criterion: str | None = None) -> Verdict:
    """The smallest budget, then round, at which the best consensus rule meets the reference.

    ``paired`` (the default with FedAvg-LoRA): the paired difference (seeds and items) from FedAvg-LoRA, personalized
    and global, after the same round, is not below zero; ``matches``: the mean lies at or above the lower end of each
    reference's own 95% interval (weaker: it holds the reference's spread over seeds); ``beats`` (the default without
    FedAvg, as across architectures): the paired difference from local training is above zero. Smallest budget first.
    """
    last = f"round_{res.last_round}"
    fedavg = [e for e in ("fedavg", "fedavg (global)") if sc.has((e, None, last))]
    criterion = criterion or ("paired" if fedavg else "beats")
    reference = ["local"] if criterion == "beats" else fedavg
    rules = sorted(dict.fromkeys(e for e, b in res.entries(sc.clients) if b is not None), key=order)  # not a set
    best_seen: tuple[int, int, str, stats.Interval, dict[str, stats.Interval]] | None = None
    for budget in sorted(res.plan.budgets):
        for r in sorted(res.plan.rounds):
            stage = f"round_{r}"
            here = [rule for rule in rules if sc.has((rule, budget, stage))]
            if not here or not all(sc.has((ref, None, stage)) for ref in reference):
                continue
            rule = max(here, key=lambda x: sc.point[(x, budget, stage)])
            best = sc.interval((rule, budget, stage))
            against = {ref: sc.interval((ref, None, stage)) for ref in reference}
            best_seen = (budget, r, rule, best, against)
            if _meets(sc, (rule, budget, stage), reference, criterion):
                how = HOW[criterion]
                refs = " and ".join(f"{k} ({v.format()})" for k, v in against.items())
                text = f"Reached: at {budget} public prompts, after round {r}, the best consensus rule ({rule}, "
                text += f"{best.format()}) is {how} {refs}.{_paired(sc, (rule, budget, stage), reference)}"
                return Verdict(True, reference, budget, r, rule, best, against, text)
    return _not_reached(res, sc, reference, criterion, best_seen)


def _paired(sc: SweepScores, key: Key, reference: list[str]) -> str:
    """`` Paired over seeds and items, RULE minus REF: +d [lo, hi] (above / below / not distinguishable)``: the
    interval of a reference holds its own spread over seeds, so lying inside it is a weaker claim than this one."""
    diffs = {ref: sc.difference(key, (ref, None, key[2])) for ref in reference}
    parts = [f"minus {ref} {d.format('{:+.3f}')} ({markdown.verdict(d)})" for ref, d in diffs.items()]
    return f" Paired over seeds and items, {key[0]} {', '.join(parts)}." if parts else ""


HOW = {  # verdict criterion -> how the best rule stands to the references when it meets them
    "paired": "above or not distinguishable from",  # _paired's sentence says how: paired over seeds and items
    "matches": "within (or above) the 95% interval of",
    "beats": "distinguishably above",
}


def _meets(sc: SweepScores, key: Key, reference: list[str], criterion: str) -> bool:
    if criterion == "matches":
        return all(sc.point[key] >= sc.interval((ref, None, key[2])).lo for ref in reference)
    if criterion == "paired":
        return all(sc.difference(key, (ref, None, key[2])).hi >= 0 for ref in reference)
    return sc.difference(key, (reference[0], None, key[2])).lo > 0


@dataclass(frozen=True)
class Answer:
    """One sweep's answer to "with how much public data does consensus meet its reference": its :func:`verdict`, the
    best rule minus each reference there (paired over seeds and items), and the bytes it saved there."""

    seeds: list[int]
    budgets: list[int]
    rounds: list[int]  # the rounds the sweep reports
    verdict: Verdict
    minus: dict[str, stats.Interval]  # reference -> the best rule minus it where the verdict is reached; else empty
    fewer_bytes: float | None  # FedAvg-LoRA's bytes over the rule's, up to that round; None without FedAvg-LoRA


def answer(res: SweepResults, sc: SweepScores) -> Answer:
    """:class:`Answer` of a sweep with a public-budget axis (notebook 12's last table, the README's first)."""
    v, minus, ratio = verdict(res, sc), {}, None
    if v.reached:
        stage, cost = f"round_{v.round}", costs(res, sc.clients)
        minus = {ref: sc.difference((v.rule, v.budget, stage), (ref, None, stage)) for ref in v.reference}
        if ("fedavg", None) in cost:
            sent = {
                k: cost[k][stage]["bytes_up"] + cost[k][stage]["bytes_down"]
                for k in (("fedavg", None), (v.rule, v.budget))
            }
            ratio = sent[("fedavg", None)] / sent[(v.rule, v.budget)]
    return Answer(list(sc.seeds), sorted(res.plan.budgets), sorted(res.plan.rounds), v, minus, ratio)


def _not_reached(
    res: SweepResults, sc: SweepScores, reference: list[str], criterion: str, best: tuple | None
) -> Verdict:
    bounds = label_rows(res, sc.clients)
    if best is None:
        text = (
            f"nothing to compare: the sweep has no consensus rule and {' and '.join(reference)} after the same round."
        )
        return Verdict(False, reference, text=text, bounds=bounds)
    budget, r, rule, interval, against = best
    last = [b for b in bounds if b["budget"] == budget and b["method"] == rule]
    why = ""
    if last:
        kept, n = np.mean([b["kept"] for b in last]), last[0]["n_prompts"]
        prec = _nanmean([b["precision"] for b in last])
        new, harm = (np.mean([b[k] for b in last]) for k in ("new_correct_per_client", "harmful_per_client"))
        why = (
            f" At {budget} prompts {rule} kept {kept:.1f} of {n:.0f} labels a round at precision "
            f"{f'{prec:.2f}' if np.isfinite(prec) else '-'}: "
            f"{new:.1f} new-correct against {harm:.1f} harmful labels per client per round."
        )
    text = (
        f"Not reached: up to {max(res.plan.budgets)} public prompts and round {max(res.plan.rounds)}, no consensus rule "
        f"is {HOW[criterion]} {' and '.join(reference)}; "
        f"the last tried ({rule}, {budget} prompts, round {r}) scores {interval.format()} against "
        + ", ".join(f"{k} {v.format()}" for k, v in against.items())
        + "."
    )
    met = [ref for ref in reference if _meets(sc, (rule, budget, f"round_{r}"), [ref], criterion)]
    if met:  # say which reference it did meet, so "not within A and B" does not read as "below both"
        text += f" It meets {' and '.join(met)}, not {' and '.join(x for x in reference if x not in met)}."
    text += _paired(sc, (rule, budget, f"round_{r}"), reference) if criterion != "beats" else ""
    text += why
    return Verdict(False, reference, budget, r, rule, interval, against, text, bounds)


# -- every entry against the references --------------------------------------------------------------
REFERENCES = ("local", "fedavg", "fedavg (global)")  # the study's question: above training alone, as good as FedAvg


def difference_rows(
    res: SweepResults, sc: SweepScores, stage: str, references: Sequence[str] = REFERENCES, n_boot: int = 1000
) -> list[dict[str, Any]]:
    """Per (entry, budget) at ``stage``: its score minus each reference's in the sweep, paired over seeds and items,
    and the probability that one of its runs beats one of the reference's (rliable's P(X > Y))."""
    refs = [r for r in references if sc.has((r, None, stage))]
    rows = []
    for entry, budget in res.entries(sc.clients):
        key = (entry, budget, stage)
        if not sc.has(key) or entry in refs:
            continue
        row: dict[str, Any] = {"method": entry, "budget": budget, "score": sc.interval(key)}
        for ref in refs:
            row[f"minus {ref}"] = sc.difference(key, (ref, None, stage))
            row[f"beats {ref}"] = sc.beats(key, (ref, None, stage), n_boot) if key in sc.items else None
        rows.append(row)
    return rows


# -- what each client learned of what it never saw ----------------------------------------------
@dataclass(frozen=True)
class TransferRow:
    """One entry's scores on the test items of the families a client held no private record of, and of those it held."""

    entry: str
    budget: int | None
    unknown: stats.Interval  # mean over clients of the score on its unknown families (the knowledge that moved)
    known: stats.Interval  # on its own families (the knowledge it kept)
    gain_over_local: stats.Interval | None  # unknown-family score minus local training's, paired


def transfer_rows(
    res: SweepResults, clients: int, stage: str | None = None, n_boot: int = 1000, metric: str | None = None
) -> list[TransferRow]:
    """How much of the task families each client holds no private record of (``partition.json``) each entry learned, and
    of its own; one scored item per (client, test item), paired across entries; ``stage``: default the last round."""
    metric, groups = metric or res.metric, res.seed_groups(clients)
    stage = stage or f"round_{res.last_round}"
    unknown: dict[tuple[str, int | None], list[np.ndarray]] = {}
    known: dict[tuple[str, int | None], list[np.ndarray]] = {}
    for group in groups:
        holds = {c: set(p["families"]) for c, p in read_records(group[0].group / "partition.json").items()}
        for cell in group:
            for tag, entry in _tags(cell, any((cell.path / "predictions").glob("*_global.jsonl"))):
                rows = read_predictions(cell.path, stage + tag)
                if not rows:
                    continue
                values = [item_scores([r], metric)[r.id] for r in rows]  # each row's own score, not a mean over models
                score = {(r.client, r.id): v for r, v in zip(rows, values)}
                family = {r.id: r.family for r in rows}
                # each client's own model where the cell scored the clients; else its one model (centralized, global)
                own = set(holds) <= {r.client for r in rows}
                single = {r.id: v for r, v in zip(rows, values)}
                for out, wanted in ((unknown, False), (known, True)):
                    pairs = [(c, i) for c in sorted(holds) for i in sorted(family) if (family[i] in holds[c]) == wanted]
                    got = [score[c, i] if own else single[i] for c, i in pairs]
                    out.setdefault((entry, cell.budget), []).append(np.array(got))
    # in the cells' order (a list, not a set): the sort below ties the rules of one method
    full = [k for k in unknown if len(unknown[k]) == len(groups)]
    if not full:
        return []
    # a seed whose every client held every family has no unknown-family pair (a Dirichlet split can): left out
    some_u = [j for j, a in enumerate(unknown[next(iter(full))]) if len(a)]
    some_k = [j for j, a in enumerate(known[next(iter(full))]) if len(a)]
    if not some_u or not some_k:
        return []
    point_u, draws_u = stats.bootstrap_draws({k: [unknown[k][j] for j in some_u] for k in full}, n_boot)
    point_k, draws_k = stats.bootstrap_draws({k: [known[k][j] for j in some_k] for k in full}, n_boot)
    out, base = [], ("local", None)
    for k in sorted(full, key=lambda e: (e[1] is not None, e[1] or 0, order(e[0]))):
        gain = None
        if base in full and k != base:
            gain = stats.interval(point_u[k] - point_u[base], draws_u[k] - draws_u[base])
        unknown_k, known_k = stats.interval(point_u[k], draws_u[k]), stats.interval(point_k[k], draws_k[k])
        out.append(TransferRow(k[0], k[1], unknown_k, known_k, gain))
    return out


# -- a federation of several architectures: each model's clients on their own -------------------
@dataclass(frozen=True)
class ArchitectureRow:
    """One entry's score on the clients of one model (their own models' answers) in a federation of several models."""

    entry: str
    budget: int | None
    model: str
    clients: int  # how many of the federation's clients run ``model``
    score: stats.Interval  # mean over those clients
    gain_over_local: stats.Interval | None  # minus local training on the same clients, paired


def architecture_rows(
    res: SweepResults, clients: int, stage: str | None = None, n_boot: int = 1000, metric: str | None = None
) -> list[ArchitectureRow]:
    """Per (entry, budget, model): the entry's score on that model's clients and its gain over local training on the
    same clients, paired over the seeds and the test items; ``[]`` for one architecture. Entries scored on one model
    only (pooled training) have no row; ``stage``: default the last round."""
    from ..config import load_config

    metric, groups = metric or res.metric, res.seed_groups(clients)
    stage = stage or f"round_{res.last_round}"
    per: dict[tuple[str, int | None, str], list[np.ndarray]] = {}
    arch: dict[str, str] = {}
    for group in groups:
        cfg = load_config(group[0].group / "config.yaml", recorded=True)
        models = {f"client{i}": cfg.model_of_client(i) for i in range(clients)}
        if arch and models != arch:
            raise ValueError(f"{group[0].group}: the clients' models differ from the other seeds' ({arch}).")
        arch = models
        if len(set(arch.values())) < 2:
            return []
        ids = sorted({r.id for r in read_predictions(group[0].group, "base") or []})
        for cell in group:
            rows = read_predictions(cell.path, stage) or []
            if not set(arch) <= {r.client for r in rows}:
                continue  # scored on one model (pooled training): no client's own answers
            for model in sorted(set(arch.values())):
                got = item_scores([r for r in rows if arch.get(r.client) == model], metric)
                per.setdefault((cell.method, cell.budget, model), []).append(np.array([got[i] for i in ids]))
    full = {k: v for k, v in per.items() if len(v) == len(groups)}
    if not full:
        return []
    point, draws = stats.bootstrap_draws(full, n_boot)
    out = []
    plan = {m: i for i, m in enumerate(res.plan.methods)}  # the rules of one method in the plan's order
    for k in sorted(full, key=lambda k: (k[2], k[1] or 0, order(k[0]), plan.get(k[0], 0))):
        local = ("local", None, k[2])
        gain = None
        if k[0] != "local" and local in full:
            gain = stats.interval(point[k] - point[local], draws[k] - draws[local])
        n = sum(m == k[2] for m in arch.values())
        out.append(ArchitectureRow(k[0], k[1], k[2], n, stats.interval(point[k], draws[k]), gain))
    return out
