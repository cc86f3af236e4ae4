"""Intervals for comparisons: paired bootstrap over test items, combined over seeds.

A comparison scores every method on the same test items, under several seeds
(each seed its own partition, adapter start and sampling). The uncertainty of
a score comes from which test items happened to be drawn, so the interval
resamples items: one bootstrap draw picks, within each seed, ``n`` of its
``n`` items with replacement, the same items for every method (paired), and
takes each method's score as the mean over seeds of its mean over the drawn
items. The 2.5 and 97.5 percentiles of 2,000 draws give the 95% interval of
a score, of a difference between two methods, or of the share of the
local -> centralized gap a method closes. Numpy only: no torch, no model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Scores = Mapping[
    str, Sequence[np.ndarray]
]  # method -> per seed, one score per test item (same item order for all methods)


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
    methods = list(scores)
    if not methods:
        raise ValueError("no methods to compare.")
    n_seeds = len(scores[methods[0]])
    sizes = [len(a) for a in scores[methods[0]]]
    for m in methods:
        if len(scores[m]) != n_seeds or [len(a) for a in scores[m]] != sizes:
            raise ValueError(
                f"method {m!r} has {[len(a) for a in scores[m]]} items per seed, {methods[0]!r} has {sizes}: "
                "paired intervals need every method scored on the same items under the same seeds."
            )
    if not n_seeds or min(sizes) == 0:
        raise ValueError("every seed needs at least one test item.")
    return sizes


def bootstrap_draws(
    scores: Scores, n_boot: int = 2000, seed: int = 0
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Point estimates (method -> mean over seeds of its mean item score) and ``n_boot`` paired bootstrap draws of them (draw ``b`` used the same items for every method)."""
    sizes = _check(scores)
    rng = np.random.default_rng(seed)
    picks = [rng.integers(0, n, size=(n_boot, n)) for n in sizes]  # per seed: (n_boot, n) item indices
    point, draws = {}, {}
    for m, per_seed in scores.items():
        arrays = [np.asarray(a, dtype=float) for a in per_seed]
        point[m] = float(np.mean([a.mean() for a in arrays]))
        draws[m] = np.mean([a[idx].mean(axis=1) for a, idx in zip(arrays, picks)], axis=0)  # (n_boot,)
    return point, draws


def interval(point: float, draws: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval of ``draws`` around ``point``."""
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(draws, [tail, 100 - tail])
    return Interval(float(point), float(lo), float(hi))


def score_intervals(scores: Scores, n_boot: int = 2000, seed: int = 0) -> dict[str, Interval]:
    """Every method's score with its 95% interval."""
    point, draws = bootstrap_draws(scores, n_boot, seed)
    return {m: interval(point[m], draws[m]) for m in scores}


def derived_intervals(
    scores: Scores,
    fn: Callable[[Mapping[str, float | np.ndarray]], float | np.ndarray],
    n_boot: int = 2000,
    seed: int = 0,
) -> Interval:
    """Interval of any function of the methods' scores (a difference, a gap share), computed draw by draw."""
    point, draws = bootstrap_draws(scores, n_boot, seed)
    values = np.asarray(fn(draws), dtype=float)
    return interval(float(fn(point)), values[np.isfinite(values)] if np.isfinite(values).any() else values)


def difference(scores: Scores, a: str, b: str, n_boot: int = 2000, seed: int = 0) -> Interval:
    """Score of ``a`` minus score of ``b``, paired."""
    return derived_intervals(scores, lambda s: s[a] - s[b], n_boot, seed)


def gap_closed(
    scores: Scores, method: str, low: str = "local", high: str = "centralized", n_boot: int = 2000, seed: int = 0
) -> Interval:
    """Share of the ``low`` -> ``high`` gap that ``method`` closes: (method - low) / (high - low).

    0 means no better than training alone, 1 means as good as training on the
    pooled data. Draws where the gap is not positive are dropped (the share is
    undefined there); a wide interval then says the gap itself is uncertain.
    """

    def share(s):
        gap = np.asarray(s[high] - s[low], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(gap > 0, (s[method] - s[low]) / np.where(gap > 0, gap, 1.0), np.nan)

    return derived_intervals(scores, share, n_boot, seed)
