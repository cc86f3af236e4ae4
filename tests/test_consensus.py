"""Tests for fedcofit_lite.protocol.consensus on hand-made embeddings whose answer is known."""

from __future__ import annotations

import doctest
import json
from dataclasses import replace

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from fedcofit_lite.protocol import consensus
from fedcofit_lite.protocol.cluster import REGISTRY, DBSCANCosine, SilhouetteKMeans
from fedcofit_lite.protocol.consensus import PromptConsensus, SemanticConsensus, cosine_similarity_matrix


def rot(deg: float) -> list[float]:
    """Unit vector at ``deg`` degrees in the (e1, e2) plane."""
    return [np.cos(np.radians(deg)), np.sin(np.radians(deg))]


# One prompt, 5 answers: A = rows 1, 3, 4 near e1 at angles atan(0.2), 0, atan(-0.1);
# B = rows 0, 2 near e2. Row 3 lies between the other A rows, so it has the highest
# sum of cosines to them: it is the medoid (and it is scaled x5: cosine ignores norm).
FIVE = np.array(
    [
        [0.1, 1.0, 0.0],
        [1.0, 0.2, 0.0],
        [0.0, 1.0, 0.1],
        [5.0, 0.0, 0.0],
        [1.0, -0.1, 0.0],
    ]
)  # (5, 3)
A_ANGLES = np.arctan([0.2, 0.0, -0.1])  # rows 1, 3, 4
A_COHESION = np.mean([np.cos(A_ANGLES[i] - A_ANGLES[j]) for i, j in [(0, 1), (0, 2), (1, 2)]])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_three_versus_two_medoid_and_agreement(name):
    sc = SemanticConsensus(clusterer=name).fit(FIVE, ["p"] * 5)
    np.testing.assert_array_equal(sc.consensus_index_, [3])
    np.testing.assert_allclose(sc.agreement_, [0.6])
    np.testing.assert_allclose(sc.cohesion_, [A_COHESION], rtol=1e-12)
    np.testing.assert_array_equal(sc.n_clusters_, [2])
    np.testing.assert_array_equal(sc.labels_, [0, 1, 0, 1, 1])
    np.testing.assert_array_equal(sc.in_dominant_, [False, True, False, True, True])


def test_several_interleaved_prompts_with_different_counts():
    rows = [  # (prompt, embedding); comments give the role of each row
        ("p", FIVE[0]),  # 0  p: B
        ("q", [0, 0, 1]),  # 1  q: majority, medoid (2-member tie -> smaller row)
        ("p", FIVE[1]),  # 2  p: A
        ("r", [1, 1, 1]),  # 3  r: the only answer
        ("q", [1, 0, 0]),  # 4  q: outlier
        ("p", FIVE[2]),  # 5  p: B
        ("s", [0, 1, 0]),  # 6  s: medoid, tied with row 12 (same direction)
        ("q", [0, 0.05, 1]),  # 7  q: majority
        ("p", FIVE[3]),  # 8  p: A, medoid
        ("s", [0, 1, 0.05]),  # 9  s
        ("p", FIVE[4]),  # 10 p: A
        ("s", [0.05, 1, 0]),  # 11 s
        ("s", [0, 2, 0]),  # 12 s
    ]
    groups = [g for g, _ in rows]
    X = np.array([v for _, v in rows], dtype=float)  # (13, 3)
    sc = SemanticConsensus(min_agreement=0.65).fit(X, groups)

    assert list(sc.groups_) == ["p", "q", "r", "s"]
    np.testing.assert_array_equal(sc.consensus_index_, [8, 1, 3, 6])
    np.testing.assert_allclose(sc.agreement_, [0.6, 2 / 3, 1.0, 1.0])
    np.testing.assert_array_equal(sc.n_answers_, [5, 3, 1, 4])
    np.testing.assert_array_equal(sc.n_clusters_, [2, 2, 1, 1])
    np.testing.assert_array_equal(sc.keep_, [False, True, True, True])
    assert sc.cohesion_[2] == 1.0  # singleton
    assert sc.cohesion_[0] == pytest.approx(A_COHESION, rel=1e-12)
    assert sc.cohesion_[1] == pytest.approx(1 / np.sqrt(1 + 0.05**2), rel=1e-12)
    np.testing.assert_array_equal(np.flatnonzero(sc.in_dominant_), [1, 2, 3, 6, 7, 8, 9, 10, 11, 12])

    q = sc.consensus_for("q")
    assert q == PromptConsensus("q", 1, 2 / 3, q.cohesion, 3, 2, True)
    assert [r.prompt_id for r in sc.results_] == ["p", "q", "r", "s"]


@pytest.mark.parametrize(
    ("min_agreement", "kept"),
    [(0.0, [True, True, True]), (0.5, [True, True, False]), (0.6, [True, False, False]), (1.0, [True, False, False])],
)
def test_min_agreement_filter(min_agreement, kept):
    # agreements: prompt 0 = 1.0 (3 same), 1 = 0.5 (2 v 1 v 1 with DBSCAN noise), 2 = 1/3
    X = np.array(
        [
            [1, 0, 0],
            [1, 0.01, 0],
            [1, 0, 0.01],
            [0, 1, 0],
            [0, 1, 0.01],
            [1, 0, 0],
            [0, 0, 1],
            [1, 0, 0],
            [0, 1, 0],
            [0, 0, 1],
        ],
        dtype=float,
    )  # (10, 3)
    groups = [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    sc = SemanticConsensus(clusterer=DBSCANCosine(), min_agreement=min_agreement).fit(X, groups)
    np.testing.assert_allclose(sc.agreement_, [1.0, 0.5, 1 / 3])
    np.testing.assert_array_equal(sc.keep_, kept)
    assert [r.kept for r in sc.results_] == kept


def test_two_versus_two_decided_by_cohesion():
    # A (rows 0, 1) is 20 degrees wide, B (rows 2, 3) 5 degrees: B is more cohesive
    X = np.array([rot(10), rot(-10), rot(92.5), rot(87.5)])
    sc = SemanticConsensus().fit(X, ["x"] * 4)
    np.testing.assert_array_equal(sc.n_clusters_, [2])
    np.testing.assert_array_equal(sc.consensus_index_, [2])  # medoid tie -> smaller row
    np.testing.assert_allclose(sc.agreement_, [0.5])
    np.testing.assert_allclose(sc.cohesion_, [np.cos(np.radians(5))], rtol=1e-12)
    np.testing.assert_array_equal(sc.in_dominant_, [False, False, True, True])


@pytest.mark.parametrize("order", [[0, 1, 2, 3], [1, 0, 3, 2], [2, 0, 1, 3], [3, 2, 0, 1]])
def test_exact_symmetric_tie_goes_to_cluster_with_smallest_row(order):
    # A = +-20 degrees around e1, B = +-20 degrees around e2: same size, same cohesion
    vecs = np.array([rot(20), rot(-20), rot(70), rot(110)])[order]
    sc = SemanticConsensus().fit(vecs, ["x"] * 4)
    np.testing.assert_array_equal(sc.consensus_index_, [0])  # row 0's cluster, then its medoid tie
    # row 0's cluster mate is the other dominant row
    mate = [i for i in range(1, 4) if (order[i] < 2) == (order[0] < 2)]
    np.testing.assert_array_equal(np.flatnonzero(sc.in_dominant_), [0, *mate])


def test_all_noise_prompt_picks_smallest_row():
    X = np.eye(4)[[1, 0, 2, 3]][:3]  # three orthogonal answers (3, 4)
    sc = SemanticConsensus(clusterer=DBSCANCosine()).fit(X, ["x", "x", "x"])
    np.testing.assert_array_equal(sc.labels_, [-1, -1, -1])  # noise kept as given
    np.testing.assert_array_equal(sc.n_clusters_, [3])  # each noise point a singleton
    np.testing.assert_array_equal(sc.consensus_index_, [0])
    np.testing.assert_allclose(sc.agreement_, [1 / 3])
    np.testing.assert_allclose(sc.cohesion_, [1.0])


def test_medoid_tie_goes_to_smallest_row():
    # rows 1..3 sit symmetrically on a cone around e3: every pair has the same cosine
    a = np.radians(20)
    cone = [[np.sin(a) * np.cos(t), np.sin(a) * np.sin(t), np.cos(a)] for t in np.radians([0, 120, 240])]
    X = np.array([[1.0, 0.0, -1.0], *cone])  # (4, 3)
    sc = SemanticConsensus().fit(X, ["x"] * 4)
    np.testing.assert_array_equal(sc.consensus_index_, [1])
    np.testing.assert_allclose(sc.agreement_, [0.75])


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_row_permutation_gives_same_consensus_vectors(name):
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3]  # (3, 8)
    X, groups = [], []
    for prompt, (n_major, n_minor) in enumerate([(4, 2), (5, 1), (3, 3)]):
        for k, count in enumerate([n_major, n_minor]):
            c = centres[(prompt + k) % 3]
            X += list(c + 0.03 * rng.standard_normal((count, 8)))
            groups += [f"prompt-{prompt}"] * count
    X, groups = np.array(X), np.array(groups)  # (18, 8), (18,)

    perm = rng.permutation(len(X))
    a = SemanticConsensus(clusterer=name).fit(X, groups)
    b = SemanticConsensus(clusterer=name).fit(X[perm], groups[perm])
    n_compared = 0
    for pid in a.groups_:
        ra, rb = a.consensus_for(pid), b.consensus_for(pid)
        dom_a = X[a.in_dominant_ & (groups == pid)]
        dom_b = X[perm][b.in_dominant_ & (groups[perm] == pid)]
        np.testing.assert_array_equal(np.sort(dom_a, axis=0), np.sort(dom_b, axis=0))
        assert ra.agreement == rb.agreement
        assert ra.cohesion == pytest.approx(rb.cohesion, rel=1e-12)
        if len(dom_a) > 2:  # a 2-member cluster is an exact medoid tie: row order decides
            np.testing.assert_array_equal(X[ra.index], X[perm][rb.index])
            n_compared += 1
    assert n_compared >= 2


def test_numpy_int_prompt_ids_and_json_records():
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    sc = SemanticConsensus().fit(X, np.array([10, 20, 10]))
    assert sc.groups_.tolist() == [10, 20]
    assert type(sc.groups_[0]) is int
    assert sc.consensus_for(np.int64(20)).index == 1
    records = sc.to_records()
    assert json.loads(json.dumps(records)) == records
    assert records[0] == {
        "prompt_id": 10,
        "index": 0,
        "agreement": 1.0,
        "cohesion": pytest.approx(1 / np.sqrt(1.01)),
        "n_answers": 2,
        "n_clusters": 1,
        "kept": True,
    }
    with pytest.raises(KeyError, match="30"):
        sc.consensus_for(30)


def test_estimator_contract():
    inner = DBSCANCosine(eps=0.2)
    sc = SemanticConsensus(clusterer=inner, min_agreement=0.5)
    params = sc.get_params()
    assert params["clusterer__eps"] == 0.2 and params["min_agreement"] == 0.5
    assert clone(sc).get_params()["clusterer__eps"] == 0.2
    with pytest.raises(NotFittedError):
        check_is_fitted(sc)
    with pytest.raises(NotFittedError):
        sc.to_records()
    with pytest.raises(NotFittedError):
        sc.consensus_for("p")
    X = FIVE.copy()
    assert sc.fit(X, ["p"] * 5) is sc
    check_is_fitted(sc)
    np.testing.assert_array_equal(X, FIVE)  # X untouched
    assert not hasattr(inner, "labels_")  # the given clusterer is cloned, never fitted
    assert isinstance(SemanticConsensus(clusterer="kmeans")._resolve_clusterer(), SilhouetteKMeans)


def test_any_sklearn_clusterer_works():
    # plain Euclidean k-means: give it unit rows so that it agrees with cosine
    X = FIVE / np.linalg.norm(FIVE, axis=1, keepdims=True)
    sc = SemanticConsensus(clusterer=KMeans(n_clusters=2, n_init=3, random_state=0))
    np.testing.assert_array_equal(sc.fit(X, ["p"] * 5).consensus_index_, [3])


@pytest.mark.parametrize(
    ("kwargs", "X", "groups", "error", "match"),
    [
        ({}, FIVE, ["p"] * 4, ValueError, "groups has 4 entries but X has 5 rows"),
        ({}, FIVE, np.zeros((5, 1)), ValueError, "1-D"),
        ({}, FIVE, 7, ValueError, "sequence of prompt ids"),
        ({}, FIVE[:2], [[1], [2]], ValueError, r"groups\[0\] = \[1\] is not hashable"),
        ({}, [[1.0, np.nan]], ["p"], ValueError, "NaN"),
        ({}, [[1.0, 0.0], [0.0, 0.0]], ["p", "p"], ValueError, "all-zero row"),
        ({}, [1.0, 0.0], ["p", "p"], ValueError, "2-D"),
        ({"min_agreement": 1.5}, FIVE, ["p"] * 5, ValueError, r"min_agreement .*\[0, 1\]"),
        ({"min_agreement": float("nan")}, FIVE, ["p"] * 5, ValueError, "min_agreement"),
        ({"clusterer": "optics"}, FIVE, ["p"] * 5, ValueError, "unknown clusterer"),
        ({"clusterer": object()}, FIVE, ["p"] * 5, TypeError, "scikit-learn clusterer"),
    ],
)
def test_bad_inputs_raise(kwargs, X, groups, error, match):
    with pytest.raises(error, match=match):
        SemanticConsensus(**kwargs).fit(X, groups)


def test_cosine_similarity_matrix():
    S = cosine_similarity_matrix([[2.0, 0.0], [1.0, 1.0], [0.0, -3.0]])
    r = 0.5**0.5
    np.testing.assert_allclose(S, [[1, r, 0], [r, 1, -r], [0, -r, 1]], atol=1e-12)


def test_docstring_examples_run():
    assert doctest.testmod(consensus).failed == 0


@pytest.mark.parametrize("clusterer", sorted(REGISTRY))
@pytest.mark.parametrize("preset", ["cpu", "small", "freeform"])
def test_the_measured_cohesion_floor_keeps_every_clusterer_from_letting_unrelated_answers_win(preset, clusterer):
    from fedcofit_lite.config import load_config
    from fedcofit_lite.protocol.consensus import build_consensus

    # 6 answers, pairwise cosine 0.5: far apart for MiniLM (right paraphrases measured >= 0.75), and
    # one loose group for a clusterer that lumps (k-means finds no split worth its silhouette)
    n = 6
    X = np.hstack([np.eye(n), np.ones((n, 1))])  # cos(i, j) = 1 / 2 for i != j
    loose = {
        "agglomerative": ["consensus.clusterer_params.distance_threshold=0.6"],
        "dbscan": ["consensus.clusterer_params.eps=0.6"],
    }.get(clusterer, [])
    cfg = load_config(preset, [f"consensus.clusterer={clusterer}", "consensus.min_agreement=0.5", *loose])
    assert cfg.consensus.min_cohesion >= 0.7  # the preset's own floor: benchmarks/min_cohesion.py measured 0.7 as safe
    est = build_consensus(cfg.consensus).fit(X, ["p"] * n, texts=[f"answer {i}" for i in range(n)])
    assert est.agreement_[0] == pytest.approx(1 / n) and not est.keep_[0]
    # without the floor, a clusterer that lumps lets the six unrelated answers win together
    off = build_consensus(replace(cfg.consensus, min_cohesion=0.0)).fit(
        X, ["p"] * n, texts=[f"answer {i}" for i in range(n)]
    )
    if clusterer in ("kmeans", "agglomerative", "dbscan"):
        assert off.agreement_[0] == pytest.approx(1.0) and off.keep_[0]
    # the same answers, close together (cosine 0.95), stay one group and win
    close = np.hstack([0.3 * np.eye(n), np.ones((n, 1))])
    est = build_consensus(cfg.consensus).fit(close, ["p"] * n, texts=[f"answer {i}" for i in range(n)])
    assert est.agreement_[0] == pytest.approx(1.0) and est.keep_[0]
