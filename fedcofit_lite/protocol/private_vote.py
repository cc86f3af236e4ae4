"""Private consensus at the server: a client-level DP majority vote on normalized answers (PATE-style).

:class:`NoisyVote` is the differentially private exact-string majority vote. For each prompt of a round (one *query*)
it adds Gaussian noise N(0, sigma^2) to the vote count of every key present (the normalized answer) and releases the
key with the largest noisy count only if that count is at least the threshold T.

Guarantee
---------
The privacy unit is one client's whole dataset: neighbouring runs differ by one client, who casts at most one vote per
query, on a key that is a function of its own answer alone. After Q queries (prompts x rounds) the released keys are
(epsilon, delta_rdp + delta_sel)-DP, where:

* the Gaussian part gives epsilon: on keys present in both runs the Q count histograms stacked have L2 sensitivity
  sqrt(Q), so their noisy release is (alpha, Q alpha / (2 sigma^2))-RDP, converted to (epsilon, delta_rdp) as Opacus'
  ``get_privacy_spent`` does over its ``DEFAULT_ALPHAS``;
* delta_sel = Q * Phi_bar((T - 1) / sigma) bounds the chance that a key voted for only by the added client (count 1
  with it, absent without it) is ever released (union bound over the Q queries).

This is the Gaussian partition-selection ("Gaussian thresholding") argument; the argmax and the threshold test are
post-processing, and RDP composition and the union bound both hold when a round's answers depend on earlier releases.
Adding a client: on the event that none of its own keys passes T (probability >= 1 - delta_sel) the output is
post-processing of the Gaussian part. Removing one: the run with it withholds its own keys with probability >= 1 -
delta_sel, which costs at most -ln(1 - delta_sel) / 2 <= delta_sel when epsilon + ln(1 - delta_sel) >= Q / (2 sigma^2)
(the median privacy loss); that holds in the usual range but not always at the edge of the order grid (very large
sigma), so :func:`client_epsilon` checks it and warns.

What it does not cover
----------------------
* Which prompts exist and which rounds run (public); the number of clients and who answered what: ``Release.n_votes``,
  ``top_count`` and a withheld prompt's ``noisy_top`` are for evaluation at the server, only ``key`` (and
  ``noisy_top`` when ``key`` is set) may leave it.
* The seed: the noise is reproducible from (seed, round, prompt); whoever knows the seed can subtract it. The
  federation draws a secret seed unless ``consensus.dp_seed`` names one.
* A round re-run after a crash votes again with the same noise: in process its answers are the same, so it releases
  the same labels; an engine whose answers differ on a re-run releases twice, uncounted.
* The server itself, which receives the raw answers, and anything else a client sends (adapters, test answers): each
  composes separately (record-level DP-SGD: :mod:`fedcofit_lite.engine.privacy`).
* Semantic clusters: one answer can bridge two clusters and move many votes, so their counts have no sensitivity of 1.
  That is why the private vote counts normalized strings.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- validation
def _check(sigma=None, threshold=None, n_queries=None, delta=None, *, least: int = 0, delta_name: str = "delta"):
    """Raise a ValueError for the first argument given that is out of its range (nan fails every test)."""
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0 (the noise standard deviation, in votes), got {sigma!r}.")
    if threshold is not None and not threshold >= 0:
        raise ValueError(f"threshold must be >= 0 (a noisy vote count; see threshold_for), got {threshold!r}.")
    if n_queries is not None and not n_queries >= least:
        raise ValueError(f"n_queries must be >= {least} (prompts x rounds voted on), got {n_queries!r}.")
    if delta is not None and not 0 < delta < 1:
        raise ValueError(f"{delta_name} must lie in (0, 1) (e.g. 1e-5), got {delta!r}.")


# -------------------------------------------------------------- the mechanism
@dataclass(frozen=True)
class Release:
    """What the vote on one prompt gives: only ``key`` (and ``noisy_top`` when ``key`` is not None) is covered by the
    privacy guarantee; ``top_count`` and ``n_votes`` are exact, for evaluation."""

    key: str | None  # the released key; None when the noisy winner missed the threshold (or no votes)
    noisy_top: float  # noisy count of the noisy winner (nan when no votes)
    top_count: int  # true count of the noisy winner's key (0 when no votes)
    n_votes: int


@dataclass(frozen=True)
class NoisyVote:
    """Noisy exact-string majority vote with a release threshold (client-level DP).

    ``sigma`` is the noise's standard deviation, in votes; the noisy winner is released only if its
    noisy count is at least ``threshold`` (:func:`threshold_for` picks it from a target delta_sel);
    prompt ``p`` of round ``r`` draws from ``np.random.default_rng([seed, r, p])``: keep ``seed`` secret.

    Examples
    --------
    >>> vote = NoisyVote(sigma=1e-6, threshold=2.5)
    >>> [r.key for r in vote.release([["lima", "lima", "lima", "quito"], ["a", "b"]], round_index=0)]
    ['lima', None]
    """

    sigma: float
    threshold: float
    seed: int = 0

    def __post_init__(self):
        _check(self.sigma, self.threshold)
        if not self.seed >= 0:
            raise ValueError(f"seed must be >= 0 (numpy seeds are non-negative), got {self.seed!r}.")

    def release(self, votes: Sequence[Sequence[str]], round_index: int) -> list[Release]:
        """One :class:`Release` per prompt; ``votes[p]`` holds the keys of the clients that answered prompt ``p``."""
        if not round_index >= 0:
            raise ValueError(f"round_index must be >= 0, got {round_index!r}.")
        return [self._one(keys, np.random.default_rng([self.seed, round_index, p]), p) for p, keys in enumerate(votes)]

    def _one(self, keys: Sequence[str], rng: np.random.Generator, position: int) -> Release:
        """Count, add noise, take the argmax, test it against the threshold."""
        if isinstance(keys, str):
            raise TypeError(
                f"votes[{position}] is the string {keys!r}: pass one list of keys per prompt (one per client)."
            )
        if not keys:
            return Release(None, math.nan, 0, 0)
        counts = Counter(keys)  # key -> votes, in order of first vote
        names = list(counts)
        noisy = np.fromiter(counts.values(), float, len(names)) + rng.normal(0.0, self.sigma, len(names))  # (K,)
        top = int(np.argmax(noisy))  # ties (measure zero) go to the first key in vote order
        key = names[top] if noisy[top] >= self.threshold else None
        return Release(key, float(noisy[top]), counts[names[top]], len(keys))


# ---------------------------------------------------------------- accounting
# The RDP orders of opacus' RDPAccountant (DEFAULT_ALPHAS), so both accountants of the package agree.
RDP_ORDERS = np.array([1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), dtype=float)  # (A,)


def _gaussian_epsilon(sigma: float, n_queries: int, delta: float) -> float:
    """Epsilon of the Gaussian part at ``delta``: Q queries of sensitivity 1, (alpha, Q alpha / (2 sigma^2))-RDP,
    converted as opacus' ``get_privacy_spent`` does (Balle et al. 2020, Theorem 21), in numpy (no torch)."""
    a = RDP_ORDERS
    rdp = a * n_queries / (2 * sigma**2)  # (A,)
    eps = rdp - (math.log(delta) + np.log(a)) / (a - 1) + np.log((a - 1) / a)  # (A,)
    best = int(np.nanargmin(eps))
    if best in (0, len(a) - 1):  # the optimal order at the edge of the grid (large sigma): valid but loose
        log.debug("RDP conversion at sigma=%g, Q=%d: optimal order %g at the grid's edge", sigma, n_queries, a[best])
    return max(0.0, float(eps[best]))


def client_epsilon(sigma: float, threshold: float, n_queries: int, delta: float) -> tuple[float, float]:
    """Client-level (epsilon, total delta) of ``n_queries`` noisy votes with noise ``sigma`` and threshold T: epsilon
    of the Gaussian part at ``delta``, plus ``Q * norm.sf((T - 1) / sigma)`` in the delta (0.0, 0.0 for no queries)."""
    _check(sigma, threshold, n_queries, delta)
    if n_queries == 0:
        return 0.0, 0.0
    eps = _gaussian_epsilon(sigma, n_queries, delta)
    delta_sel = n_queries * float(norm.sf((threshold - 1) / sigma))
    # Removing a client costs at most delta_sel more only past the median privacy loss (module docstring).
    if delta_sel >= 0.79 or eps + math.log1p(-delta_sel) < n_queries / (2 * sigma**2):
        warnings.warn(
            f"client_epsilon: delta={delta:g} and delta_sel={delta_sel:.3g} (threshold={threshold:g}) are outside the "
            "range where (epsilon, delta + delta_sel) is proven for removing a client; use delta <= 1e-3 and a "
            "larger threshold (threshold_for).",
            stacklevel=2,
        )
    return eps, delta + delta_sel


def threshold_for(sigma: float, n_queries: int, delta_sel: float) -> float:
    """Smallest T >= 0 with ``n_queries * norm.sf((T - 1) / sigma) <= delta_sel`` (0.0 for no queries)."""
    _check(sigma, n_queries=n_queries, delta=delta_sel, delta_name="delta_sel")
    if n_queries == 0:
        return 0.0
    t = max(0.0, 1.0 + sigma * float(norm.isf(delta_sel / n_queries)))
    while n_queries * norm.sf((t - 1) / sigma) > delta_sel:  # isf rounding can land a hair short
        t = float(np.nextafter(t, math.inf))
    return t


def sigma_for(target_epsilon: float, n_queries: int, delta: float) -> float:
    """Smallest sigma (to a relative 1e-3) whose Gaussian part reaches epsilon <= ``target_epsilon`` at ``delta``,
    by bisection; the threshold's delta_sel is not included: pick T with :func:`threshold_for` afterwards."""
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be > 0, got {target_epsilon!r}.")
    _check(n_queries=n_queries, delta=delta, least=1)
    hi = 1.0
    while _gaussian_epsilon(hi, n_queries, delta) > target_epsilon:  # 1. bracket: hi reaches the target ...
        hi *= 2
    lo = hi / 2
    while _gaussian_epsilon(lo, n_queries, delta) <= target_epsilon:  # ... and lo misses it
        lo, hi = lo / 2, lo
    while hi - lo > 1e-3 * hi:  # 2. bisect, keeping eps(lo) > target >= eps(hi)
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if _gaussian_epsilon(mid, n_queries, delta) <= target_epsilon else (mid, hi)
    return hi


# ------------------------------------------------------------------ tradeoff
@dataclass(frozen=True)
class TradeoffRow:
    """Privacy and label quality of one noise level over a whole run."""

    sigma: float
    threshold: float
    epsilon: float
    delta: float  # total: delta_rdp + delta_sel
    n_queries: int
    released: int  # prompts with a released label
    correct: int  # released labels that are correct
    precision: float | None  # correct / released (None if nothing released)


def tradeoff(
    votes_by_round: Mapping[int, Sequence[Sequence[str]]],
    is_correct: Callable[[int, int, str], bool],
    sigmas: Sequence[float],
    delta: float = 1e-5,
    seed: int = 0,
) -> list[TradeoffRow]:
    """Released labels, their precision and the client-level (epsilon, delta) at each noise level of ``sigmas``.

    ``votes_by_round`` maps a round to the clients' keys per prompt (as for :meth:`NoisyVote.release`);
    ``is_correct(round, prompt_position, key)`` judges a released label. ``delta`` is used as delta_sel to
    pick T (:func:`threshold_for`) and as delta_rdp, so every row's total delta is ``2 * delta``. The same
    ``seed`` at every sigma scales the same standard normal draws: rows differ by the noise level alone.
    """
    _check(delta=delta)
    n_queries = sum(len(prompts) for prompts in votes_by_round.values())
    rows = []
    for sigma in sigmas:
        threshold = threshold_for(sigma, n_queries, delta)
        vote = NoisyVote(sigma, threshold, seed)
        released = correct = 0
        for r, prompts in votes_by_round.items():
            for p, rel in enumerate(vote.release(prompts, r)):
                if rel.key is not None:
                    released += 1
                    correct += bool(is_correct(r, p, rel.key))
        eps, total_delta = client_epsilon(sigma, threshold, n_queries, delta)
        precision = correct / released if released else None
        rows.append(TradeoffRow(sigma, threshold, eps, total_delta, n_queries, released, correct, precision))
    return rows


def format_tradeoff(rows: Sequence[TradeoffRow]) -> str:
    """Plain-text table: sigma, T, epsilon, delta, released (of Q), precision."""
    lines = [f"{'sigma':>8} {'T':>8} {'epsilon':>9} {'delta':>9} {'released':>11} {'precision':>9}"]
    for r in rows:
        precision, released = "-" if r.precision is None else f"{r.precision:.3f}", f"{r.released}/{r.n_queries}"
        lines.append(
            f"{r.sigma:>8.3g} {r.threshold:>8.2f} {r.epsilon:>9.3f} {r.delta:>9.1e} {released:>11} {precision:>9}"
        )
    return "\n".join(lines)
