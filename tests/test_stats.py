"""Paired bootstrap intervals (issue #12): checked against scipy and against cases worked by hand."""

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


def test_seeds_are_combined_by_their_mean():
    scores = {"m": [np.ones(10), np.zeros(10), np.full(10, 0.5)]}
    ci = stats.score_intervals(scores, n_boot=200)["m"]
    assert ci.mean == pytest.approx(0.5) and ci.lo == pytest.approx(0.5) and ci.hi == pytest.approx(0.5)


def test_gap_closed_by_hand():
    local, central = np.full(50, 0.2), np.full(50, 0.6)
    scores = {"local": [local], "centralized": [central], "half": [np.full(50, 0.4)], "worse": [np.full(50, 0.1)]}
    assert stats.gap_closed(scores, "half").mean == pytest.approx(0.5)
    assert stats.gap_closed(scores, "worse").mean == pytest.approx(-0.25)
    assert stats.gap_closed(scores, "centralized").mean == pytest.approx(1.0)


def test_unpaired_inputs_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="same items under the same seeds"):
        stats.score_intervals({"a": [np.ones(5)], "b": [np.ones(6)]})
