"""Paired two-level bootstrap intervals (seeds, then items): checked against scipy and against cases worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats

from fedcofit_lite.analysis import stats


def test_one_seed_interval_matches_scipy_percentile_bootstrap():
    rng = np.random.default_rng(3)
    scores = rng.binomial(1, 0.3, size=175).astype(float)  # exact match of 175 test items
    ours = stats.score_intervals({"m": [scores]}, n_boot=20_000, seed=1)["m"]
    ref = scipy_stats.bootstrap(
        (scores,), np.mean, n_resamples=20_000, method="percentile", random_state=1
    ).confidence_interval
    assert ours.mean == pytest.approx(scores.mean())
    assert ours.lo == pytest.approx(ref.low, abs=0.006)
    assert ours.hi == pytest.approx(ref.high, abs=0.006)


def test_paired_difference_is_tighter_than_the_scores_and_exact_for_a_constant_shift():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, size=(3, 100))
    b = a + 0.05  # b beats a by exactly 0.05 on every item of every seed
    scores = {"a": list(a), "b": list(b)}
    d = stats.difference(scores, "b", "a", n_boot=500)
    assert d.mean == pytest.approx(0.05) and d.lo == pytest.approx(0.05) and d.hi == pytest.approx(0.05)
    assert d.excludes(0.0)
    single = stats.score_intervals(scores, n_boot=500)["a"]
    assert single.hi - single.lo > 0.05  # each score alone is far less certain than their paired difference


def test_seeds_are_combined_by_their_mean_and_their_spread_counts():
    scores = {"m": [np.ones(10), np.zeros(10), np.full(10, 0.5)]}
    items_only = stats.score_intervals(scores, n_boot=200, over="items")["m"]
    assert items_only.mean == pytest.approx(0.5) and items_only.lo == pytest.approx(0.5) == items_only.hi
    ci = stats.score_intervals(scores, n_boot=2000)["m"]  # seeds resampled: a run can score 0 or 1
    assert ci.mean == pytest.approx(0.5) and ci.lo < 0.25 and ci.hi > 0.75


def test_seeds_that_disagree_in_sign_give_an_interval_that_covers_zero_where_items_alone_did_not():
    rng = np.random.default_rng(7)
    n = 300
    a = [rng.binomial(1, 0.4, n).astype(float) for _ in range(3)]
    shift = [0.12, 0.15, -0.10]  # b beats a under two seeds and loses under the third
    b = [np.clip(x + rng.binomial(1, abs(d), n) * np.sign(d), 0, 1) for x, d in zip(a, shift)]
    scores = {"a": a, "b": b}
    per_seed = [float(np.mean(y - x)) for x, y in zip(a, b)]
    assert min(per_seed) < 0 < max(per_seed)  # the seeds disagree in sign
    items_only = stats.difference(scores, "b", "a", over="items")
    both = stats.difference(scores, "b", "a")
    assert items_only.mean == both.mean and items_only.excludes(0.0)  # fixed runs: "b is better"
    assert not both.excludes(0.0)  # over seeds too: not distinguishable
    assert both.hi - both.lo > items_only.hi - items_only.lo


def test_one_seed_is_the_item_bootstrap_of_that_run():
    rng = np.random.default_rng(1)
    scores = {"m": [rng.binomial(1, 0.3, 80).astype(float)]}
    assert stats.score_intervals(scores, seed=4) == stats.score_intervals(scores, seed=4, over="items")


def test_probability_of_improvement_by_hand():
    hi, lo = [np.full(20, 0.6), np.full(20, 0.7)], [np.full(20, 0.2), np.full(20, 0.3)]
    assert stats.probability_of_improvement({"a": hi, "b": lo}, "a", "b").mean == 1.0
    assert stats.probability_of_improvement({"a": lo, "b": hi}, "a", "b").mean == 0.0
    same = {"a": lo, "b": lo}
    p = stats.probability_of_improvement(same, "a", "b")
    assert p.mean == 0.5 and p.lo == p.hi == 0.5  # ties count half, in every draw
    mixed = {"a": [np.full(20, 0.5), np.full(20, 0.1)], "b": [np.full(20, 0.3), np.full(20, 0.3)]}
    assert stats.probability_of_improvement(mixed, "a", "b").mean == 0.5  # 0.5 > 0.3 twice, 0.1 > 0.3 never


def test_every_draw_fills_each_slot_once():
    seen = np.zeros((500, 4), dtype=int)
    for j, _, rows, idx in stats.resample([5, 6, 7, 8], 500, seed=2):
        seen[rows, j] += 1
        assert idx.shape[0] == rows.size
    assert (seen == 1).all()


def test_gap_closed_by_hand():
    local, central = np.full(50, 0.2), np.full(50, 0.6)
    scores = {"local": [local], "centralized": [central], "half": [np.full(50, 0.4)], "worse": [np.full(50, 0.1)]}
    assert stats.gap_closed(scores, "half").mean == pytest.approx(0.5)
    assert stats.gap_closed(scores, "worse").mean == pytest.approx(-0.25)
    assert stats.gap_closed(scores, "centralized").mean == pytest.approx(1.0)


def test_unpaired_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="same items under the same seeds"):
        stats.score_intervals({"a": [np.ones(5)], "b": [np.ones(6)]})
