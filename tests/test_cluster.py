"""Tests for fedcofit_lite.protocol.cluster: the scikit-learn contract on tiny per-prompt inputs."""

from __future__ import annotations

import dataclasses
import doctest
import inspect

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import check_estimator

from fedcofit_lite.protocol import cluster
from fedcofit_lite.protocol.cluster import (
    REGISTRY,
    AgglomerativeThreshold,
    DBSCANCosine,
    HDBSCANCosine,
    SilhouetteKMeans,
    check_embeddings,
    make_clusterer,
)

ALL = [AgglomerativeThreshold, DBSCANCosine, HDBSCANCosine, SilhouetteKMeans]
# a non-default value for one parameter of each, for the set_params round trip
OTHER_PARAMS = {
    AgglomerativeThreshold: {"distance_threshold": 0.1, "linkage": "complete"},
    DBSCANCosine: {"eps": 0.05, "min_samples": 3},
    HDBSCANCosine: {"min_cluster_size": 3, "min_samples": 1},
    SilhouetteKMeans: {"k_max": 3, "random_state": 7},
}


def two_groups() -> np.ndarray:
    """Five unnormalised answers, rows A B A B A: A near e1, B near e2."""
    return np.array(
        [
            [1.0, 0.05, 0.0],
            [0.0, 3.0, 0.2],
            [2.0, -0.1, 0.1],
            [0.1, 1.0, 0.0],
            [0.5, 0.0, 0.02],
        ]
    )  # (5, 3)


@pytest.mark.parametrize("cls", ALL)
def test_clone_and_params_round_trip(cls):
    est = cls(**OTHER_PARAMS[cls])
    assert clone(est).get_params() == est.get_params()
    fresh = cls().set_params(**OTHER_PARAMS[cls])
    assert fresh.get_params() == est.get_params()
    assert not hasattr(cls(), "labels_")  # __init__ stores parameters only


@pytest.mark.parametrize("cls", ALL)
def test_fit_contract(cls):
    X = two_groups()
    X_before = X.copy()
    est = cls()
    assert est.fit(X) is est
    assert est.labels_.shape == (5,)
    assert est.labels_.dtype == np.int64
    assert est.n_features_in_ == 3
    np.testing.assert_array_equal(X, X_before)  # X untouched
    np.testing.assert_array_equal(cls().fit_predict(X), est.labels_)
    np.testing.assert_array_equal(cls().fit(X).labels_, est.labels_)  # deterministic


@pytest.mark.parametrize("cls", ALL)
def test_two_separated_groups_give_two_clusters_numbered_by_first_appearance(cls):
    est = cls().fit(two_groups())
    np.testing.assert_array_equal(est.labels_, [0, 1, 0, 1, 0])
    assert est.n_clusters_ == 2


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (AgglomerativeThreshold, [0]),
        (DBSCANCosine, [-1]),  # min_samples=2: a lone answer is noise
        (HDBSCANCosine, [-1]),  # 1 answer < min_cluster_size=2: noise
        (SilhouetteKMeans, [0]),
    ],
)
def test_single_answer(cls, expected):
    est = cls().fit([[0.3, -2.0, 1.0]])
    np.testing.assert_array_equal(est.labels_, expected)
    assert est.n_clusters_ == (1 if expected == [0] else 0)


@pytest.mark.parametrize("cls", ALL)
def test_two_close_answers_are_one_cluster(cls):
    est = cls().fit([[1.0, 0.0], [0.99, 0.05]])
    np.testing.assert_array_equal(est.labels_, [0, 0])
    assert est.n_clusters_ == 1


@pytest.mark.parametrize(
    ("cls", "expected"),
    [(AgglomerativeThreshold, [0, 1]), (DBSCANCosine, [-1, -1]), (SilhouetteKMeans, [0, 0])],
)
def test_two_orthogonal_answers(cls, expected):
    # SilhouetteKMeans never splits fewer than 3 answers (no silhouette exists)
    np.testing.assert_array_equal(cls().fit([[1.0, 0.0], [0.0, 2.0]]).labels_, expected)


@pytest.mark.parametrize("cls", ALL)
def test_identical_rows_are_one_cluster(cls):
    X = np.tile([0.2, -1.0, 0.5], (4, 1))  # (4, 3)
    est = cls().fit(X)
    np.testing.assert_array_equal(est.labels_, [0, 0, 0, 0])
    assert est.n_clusters_ == 1


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.ones(3), "2-D"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.ones((0, 3)), "0 sample"),
        (np.ones((2, 0)), "0 feature"),
        ([[1.0, np.nan], [1.0, 0.0]], "NaN"),
        ([[1.0, np.inf], [1.0, 0.0]], "infinity"),
        ([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], r"all-zero row\(s\) at index \[1\]"),
    ],
)
@pytest.mark.parametrize("cls", ALL)
def test_bad_inputs_raise(cls, X, match):
    with pytest.raises(ValueError, match=match):
        cls().fit(X)


@pytest.mark.parametrize(
    ("est", "match"),
    [
        (AgglomerativeThreshold(linkage="ward"), "ward.*cosine"),
        (AgglomerativeThreshold(linkage="median"), "linkage must be one of"),
        (AgglomerativeThreshold(distance_threshold=-0.1), "distance_threshold"),
        (DBSCANCosine(eps=0.0), "eps"),
        (DBSCANCosine(min_samples=0), "min_samples"),
        (HDBSCANCosine(min_cluster_size=1), "min_cluster_size"),
        (HDBSCANCosine(min_samples=2.5), "min_samples"),
        (SilhouetteKMeans(k_max=1), "k_max"),
        (SilhouetteKMeans(min_silhouette=1.5), "min_silhouette"),
        (SilhouetteKMeans(n_init=0), "n_init"),
    ],
)
def test_bad_params_raise_at_fit(est, match):
    with pytest.raises(ValueError, match=match):
        est.fit(two_groups())


def test_check_embeddings_keeps_values_and_accepts_unnormalised_rows():
    X = check_embeddings([[3, 4], [0, -2]])
    assert X.dtype == np.float64
    np.testing.assert_array_equal(X, [[3.0, 4.0], [0.0, -2.0]])


def test_agglomerative_threshold_controls_the_split():
    # the two rows are ~0.2 apart in cosine distance (cos = 0.8)
    X = [[1.0, 0.0], [0.8, 0.6]]
    assert AgglomerativeThreshold(distance_threshold=0.3).fit(X).n_clusters_ == 1
    assert AgglomerativeThreshold(distance_threshold=0.1).fit(X).n_clusters_ == 2


def test_dbscan_marks_outlier_as_noise():
    X = [[1.0, 0.0], [0.95, 0.05], [0.0, 1.0]]
    est = DBSCANCosine().fit(X)
    np.testing.assert_array_equal(est.labels_, [0, 0, -1])
    assert est.n_clusters_ == 1


def test_hdbscan_fewer_answers_than_min_cluster_size_is_all_noise():
    est = HDBSCANCosine(min_cluster_size=3).fit([[1.0, 0.0], [1.0, 0.01]])
    np.testing.assert_array_equal(est.labels_, [-1, -1])
    assert est.n_clusters_ == 0


def test_hdbscan_min_samples_larger_than_n_is_clipped():
    est = HDBSCANCosine(min_samples=10).fit(two_groups())
    assert est.labels_.shape == (5,)


def test_silhouette_kmeans_attributes():
    assert np.isnan(SilhouetteKMeans().fit([[1.0, 0.0], [0.0, 1.0]]).silhouette_)
    assert np.isnan(SilhouetteKMeans().fit(np.ones((4, 2))).silhouette_)
    est = SilhouetteKMeans().fit(two_groups())
    assert est.silhouette_ > 0.9
    # an unreachable min_silhouette keeps one cluster but still reports the best score
    strict = SilhouetteKMeans(min_silhouette=1.0).fit(two_groups())
    np.testing.assert_array_equal(strict.labels_, [0, 0, 0, 0, 0])
    assert strict.silhouette_ == pytest.approx(est.silhouette_)


def test_silhouette_kmeans_finds_three_groups():
    X = np.array([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [0, 1, 0.05], [0, 0, 1], [0.05, 0, 1.0]])
    est = SilhouetteKMeans(k_max=4).fit(X)
    np.testing.assert_array_equal(est.labels_, [0, 0, 1, 1, 2, 2])


def test_make_clusterer():
    assert set(REGISTRY) == {"agglomerative", "dbscan", "hdbscan", "kmeans"}
    est = make_clusterer("agglomerative", distance_threshold=0.5)
    assert isinstance(est, AgglomerativeThreshold) and est.distance_threshold == 0.5
    for name, cls in ((n, s.cls) for n, s in REGISTRY.items()):
        assert type(make_clusterer(name)) is cls


def test_make_clusterer_errors():
    with pytest.raises(ValueError, match=r"unknown clusterer 'optics'.*'agglomerative'.*'kmeans'"):
        make_clusterer("optics")
    match = r"no parameter\(s\) \['epsilon'\].*\['eps', 'min_samples'\]"
    with pytest.raises(ValueError, match=match):
        make_clusterer("dbscan", epsilon=0.2)


@pytest.mark.skipif(
    "expected_failed_checks" not in inspect.signature(check_estimator).parameters,
    reason="needs scikit-learn >= 1.6",
)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("cls", ALL)
def test_sklearn_check_estimator(cls):
    expected = {
        # its test data has an all-zero row, which we reject on purpose
        "check_estimators_dtypes": "zero rows have no cosine direction",
    }
    if cls is HDBSCANCosine:
        # 2-D standardised Euclidean blobs are not separable by direction alone
        expected["check_clustering"] = "blobs are Euclidean, HDBSCANCosine is cosine"
    check_estimator(cls(), expected_failed_checks=expected)


def test_docstring_examples_run():
    assert doctest.testmod(cluster).failed == 0


def test_one_registry_drives_config_explorer_and_sweeps():
    """cluster.REGISTRY is the one place a clusterer's class, knob and parameters live."""
    from fedcofit_lite.config import ConsensusConfig
    from fedcofit_lite.federation.methods import choices
    from fedcofit_lite.protocol import cluster

    assert choices()["consensus.clusterer"] == list(cluster.REGISTRY)
    for name, spec in cluster.REGISTRY.items():
        params = cluster.clusterer_params(ConsensusConfig(clusterer=name))
        assert set(params) == {f.name for f in dataclasses.fields(spec.params)} and spec.knob in params
        assert isinstance(cluster.make_clusterer(name, **params), spec.cls)
        assert type(spec.value(spec.low)) is (int if isinstance(spec.step, int) else float)  # a count stays a count


def test_the_analysis_layer_imports_no_widget_and_no_model_library():
    """Loading a round, fitting a consensus, sweeps and replay work without ipywidgets or transformers."""
    import subprocess
    import sys

    code = (
        "import sys, fedcofit_lite.analysis.replay; "
        "print(sorted(m for m in ('ipywidgets', 'transformers', 'torch', 'plotly') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", f"fedcofit_lite.analysis.replay pulled in {out}"


def test_the_figures_command_runs_without_widget_torch_or_model_libraries(tmp_path):
    """`figures` on a finished run draws from its files alone: ipywidgets, torch and transformers cannot even be imported."""
    import subprocess
    import sys

    from fedcofit_lite.config import load_config
    from fedcofit_lite.federation.loop import run_federation

    run = run_federation(load_config("ci", ["federation.rounds=1"]), run_dir=tmp_path / "run", progress=False).run_dir
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('ipywidgets', 'transformers', 'torch', 'peft', 'sentence_transformers'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from fedcofit_lite.cli import main\n"
        f"sys.exit(main(['figures', {str(run)!r}, '--out', {str(tmp_path / 'figs')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    written = {p.stem for p in (tmp_path / "figs").glob("*.html")}
    assert {"round1_embedding_cluster", "round1_threshold_sweep", "bytes_measured_vs_analytic"} <= written, written
