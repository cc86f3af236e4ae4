"""Intervals for comparisons: a two-level paired bootstrap over seeds, then test items within each seed.

A score is uncertain for two reasons: which test items were drawn, and which training runs the seeds gave (each seed
its own partition, adapter start, sampling and training noise). An interval over the items of fixed seeds speaks of
those runs only; a reader takes it for a statement about the method. So one draw here resamples at both levels (a
hierarchical bootstrap, the stratified-over-runs habit of ``rliable``, Agarwal et al., NeurIPS 2021): ``S`` of the
``S`` seeds with replacement, then within each picked seed ``n`` of its ``n`` items (afresh for a seed picked twice),
the same for every method (paired); a method's score is the mean over the picked seeds of its mean over their items.
The 2.5 and 97.5 percentiles of 2,000 draws give the 95% interval of a score, a difference, or a share of a gap.

With one seed the interval is the item bootstrap of that run: it says nothing about another training run. With few
seeds (3-5) the seed level is coarse and, like every bootstrap of few units, somewhat narrow; ``over="items"`` gives
the item-only interval of earlier releases, for comparison. :func:`probability_of_improvement` is ``rliable``'s
P(X > Y) between two methods' runs. Numpy only: no torch, no model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

Scores = Mapping[str, Sequence[np.ndarray]]  # method -> per seed, one score per item (one item order for all methods)
Over = Literal["seeds_and_items", "items"]  # what a bootstrap draw resamples


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95% interval."""

    mean: float
    lo: float
    hi: float

    def excludes(self, value: float = 0.0) -> bool:
        """True when ``value`` lies outside the interval (e.g. a difference distinguishable from zero)."""
        return not (self.lo <= value <= self.hi)

    def format(self, fmt: str = "{:.3f}") -> str:
        return f"{fmt.format(self.mean)} [{fmt.format(self.lo)}, {fmt.format(self.hi)}]"


def _check(scores: Scores) -> list[int]:
    if not scores:
        raise ValueError("no methods to compare.")
    first = next(iter(scores))
    sizes = [len(a) for a in scores[first]]
    for m, per_seed in scores.items():
        if [len(a) for a in per_seed] != sizes:
            raise ValueError(
                f"method {m!r} has {[len(a) for a in per_seed]} items per seed, {first!r} has {sizes}: "
                "paired intervals need every method scored on the same items under the same seeds."
            )
    if not sizes or min(sizes) == 0:
        raise ValueError("every seed needs at least one test item.")
    return sizes


def resample(sizes: Sequence[int], n_boot: int, seed: int = 0, over: Over = "seeds_and_items"):
    """The draws of the two-level bootstrap, as ``(slot, seed, rows, items)``: the draws ``rows`` put ``seed`` in ``slot``.

    A draw has one slot per seed, filled with seeds picked with replacement (``over="items"``: every seed once);
    ``items`` (len(rows), n) are the seed's item indices, resampled afresh per slot (a seed picked twice, twice).
    """
    if over not in ("seeds_and_items", "items"):
        raise ValueError(f"over must be 'seeds_and_items' or 'items', got {over!r}.")
    rng = np.random.default_rng(seed)
    n_seeds = len(sizes)
    if over == "items" or n_seeds == 1:
        slots = np.broadcast_to(np.arange(n_seeds), (n_boot, n_seeds))
    else:
        slots = rng.integers(0, n_seeds, size=(n_boot, n_seeds))  # (n_boot, S): the seed in each slot
    for j in range(n_seeds):
        for k, n in enumerate(sizes):
            rows = np.flatnonzero(slots[:, j] == k)
            if rows.size:
                yield j, k, rows, rng.integers(0, n, size=(rows.size, n))


def bootstrap_draws(
    scores: Scores, n_boot: int = 2000, seed: int = 0, over: Over = "seeds_and_items"
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Point estimates (method -> mean over seeds of its mean item score) and ``n_boot`` paired bootstrap draws of them,
    each the mean over a draw's slots of the method's mean over the slot's items (:func:`resample`)."""
    sizes = _check(scores)
    arrays = {m: [np.asarray(a, dtype=float) for a in per_seed] for m, per_seed in scores.items()}
    point = {m: float(np.mean([a.mean() for a in per])) for m, per in arrays.items()}
    draws = {m: np.zeros(n_boot) for m in arrays}
    for _, k, rows, idx in resample(sizes, n_boot, seed, over):
        for m, per in arrays.items():
            draws[m][rows] += per[k][idx].mean(axis=1)
    return point, {m: d / len(sizes) for m, d in draws.items()}


def interval(point: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of ``draws`` around ``point``."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(point), float(lo), float(hi))


def score_intervals(
    scores: Scores, n_boot: int = 2000, seed: int = 0, over: Over = "seeds_and_items"
) -> dict[str, Interval]:
    """Every method's score with its 95% interval."""
    point, draws = bootstrap_draws(scores, n_boot, seed, over)
    return {m: interval(point[m], draws[m]) for m in scores}


def of_draws(fn: Callable[[Mapping], float | np.ndarray], point: Mapping, draws: Mapping) -> Interval:
    """``fn`` of the point estimates, with the interval of ``fn`` draw by draw (non-finite draws left out)."""
    values = np.asarray(fn(draws), dtype=float)
    return interval(float(fn(point)), values[np.isfinite(values)] if np.isfinite(values).any() else values)


def difference(
    scores: Scores, a: str, b: str, n_boot: int = 2000, seed: int = 0, over: Over = "seeds_and_items"
) -> Interval:
    """Score of ``a`` minus score of ``b``, paired."""
    return of_draws(lambda s: s[a] - s[b], *bootstrap_draws(scores, n_boot, seed, over))


def gap_closed(scores: Scores, method: str, n_boot: int = 2000) -> Interval:
    """Share of the local -> centralized gap that ``method`` closes: (method - local) / (centralized - local).

    0 means no better than training alone, 1 means as good as training on the pooled data. Draws where the gap is not
    positive are dropped (the share is undefined there); a wide interval then says the gap itself is uncertain.
    """
    return of_draws(lambda s: gap_share(s[method], s["local"], s["centralized"]), *bootstrap_draws(scores, n_boot))


def gap_share(x: float | np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """(x - low) / (high - low), element-wise; NaN where the gap is not positive."""
    gap = np.asarray(high - low, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, (x - low) / np.where(gap > 0, gap, 1.0), np.nan)


def mean_or_nan(values: Sequence[float]) -> float:
    """The mean; NaN when there is no value (the precision of seeds that kept no label)."""
    return float(np.mean(values)) if len(values) else float("nan")


def probability_of_improvement(scores: Scores, a: str, b: str, n_boot: int = 2000, seed: int = 0) -> Interval:
    """P(X > Y) of ``rliable``: how likely a run of ``a`` scores above a run of ``b`` (ties count half).

    X and Y are the two methods' per-seed scores (mean over the test items); the point estimate is the
    Mann-Whitney share over all seed pairs, its interval the same statistic over the two-level draws
    of :func:`resample` (paired). 0.5 means neither tends to beat the other.
    """
    sizes = _check({a: scores[a], b: scores[b]})
    xa = [np.asarray(v, dtype=float) for v in scores[a]]
    xb = [np.asarray(v, dtype=float) for v in scores[b]]
    point = _mann_whitney(np.array([[v.mean() for v in xa]]), np.array([[v.mean() for v in xb]]))[0]
    x, y = np.zeros((n_boot, len(sizes))), np.zeros((n_boot, len(sizes)))  # each draw's run scores, per slot
    for j, k, rows, idx in resample(sizes, n_boot, seed):
        x[rows, j], y[rows, j] = xa[k][idx].mean(axis=1), xb[k][idx].mean(axis=1)
    return interval(float(point), _mann_whitney(x, y))


def _mann_whitney(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row of (B, m) ``x`` and (B, n) ``y``: the share of pairs with x > y, ties counting half. (B,)"""
    diff = x[:, :, None] - y[:, None, :]  # (B, m, n)
    return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(1, 2))
