"""Per-prompt clusterers: group one prompt's answers by cosine in embedding space.

Each estimator clusters the embeddings of the answers to ONE public prompt, so ``n`` is tiny (2 to ~20), by cosine
(rows need not be normalised; a zero row is rejected). The scikit-learn contract: ``fit(X)`` sets ``labels_`` (n,),
``n_clusters_`` (non-noise clusters) and ``n_features_in_``. Labels are renumbered in order of first appearance, so a
grouping has the same labels whatever algorithm made it; ``-1`` is noise (DBSCAN, HDBSCAN). The one registry of
clusterers is :data:`REGISTRY`. Numpy and scikit-learn only.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import DBSCAN, HDBSCAN, AgglomerativeClustering, KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.metrics.pairwise import cosine_distances
from sklearn.preprocessing import normalize
from sklearn.utils.validation import check_array
from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

from ..config import ConfigError, from_dict, option

logger = logging.getLogger(__name__)

_LINKAGES = ("average", "complete", "single")


def check_embeddings(X: ArrayLike, *, name: str = "X") -> NDArray[np.float64]:
    """Validate answer embeddings (n_answers, d) for cosine clustering; return them as float64.

    A ``ValueError`` naming ``name`` says what is wrong: not 2-D, empty, NaN or inf, or an all-zero row.

    Examples
    --------
    >>> check_embeddings([[1, 0], [0, 2]]).shape
    (2, 2)
    >>> check_embeddings([[1, 0], [0, 0]])
    Traceback (most recent call last):
    ...
    ValueError: X has all-zero row(s) at index [1]: a zero vector has no cosine direction; drop those answers or re-embed them.
    """
    if np.ndim(X) != 2:
        raise ValueError(
            f"{name} must be 2-D (n_answers, d), got shape {np.shape(X)}; stack one embedding per answer into rows."
        )
    # check_array rejects sparse input, NaN/inf, 0 rows and 0 columns with messages
    # that name the problem; dtype float64 keeps the cosine sums reproducible.
    X = check_array(X, dtype=np.float64, input_name=name)  # (n, d)
    zero = np.flatnonzero(~np.any(X != 0.0, axis=1))
    if zero.size:
        raise ValueError(
            f"{name} has all-zero row(s) at index {zero.tolist()}: a zero vector has "
            "no cosine direction; drop those answers or re-embed them."
        )
    return X


def _labelled(est: BaseEstimator, labels: ArrayLike) -> BaseEstimator:
    """Set ``labels_`` (renumbered 0, 1, ... in order of first appearance; -1, noise, kept) and ``n_clusters_``."""
    raw = np.asarray(labels, dtype=np.int64).tolist()  # (n,)
    code = {lab: k for k, lab in enumerate(dict.fromkeys(lab for lab in raw if lab != -1))}
    est.labels_ = np.array([code.get(lab, -1) for lab in raw], dtype=np.int64)
    est.n_clusters_ = len(code)
    return est


def _check_number(
    value: Any, name: str, *, low: float, high: float = np.inf, low_inclusive: bool = True, integer: bool = False
) -> None:
    """Raise ValueError unless ``value`` is a real (or integer) number in range."""
    types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, types) and not isinstance(value, (bool, np.bool_))
    if ok:  # NaN fails both comparisons
        ok = (value >= low if low_inclusive else value > low) and value <= high
    if not ok:
        what = "an integer" if integer else "a number"
        bracket = "[" if low_inclusive else "("
        raise ValueError(f"{name} must be {what} in {bracket}{low}, {high}], got {value!r}.")


class AgglomerativeThreshold(ClusterMixin, BaseEstimator):
    """Agglomerative clustering cut at a cosine-distance threshold.

    Clusters merge while their linkage distance (cosine distance ``1 - cos``) is below
    ``distance_threshold``, so the number of clusters is not fixed in advance; one answer is one cluster.

    Parameters
    ----------
    distance_threshold : float, default=0.3
        Cosine distance in [0, 2] at and above which clusters are not merged.
    linkage : {"average", "complete", "single"}, default="average"
        Linkage criterion ("ward" needs Euclidean distances).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> AgglomerativeThreshold(distance_threshold=0.3).fit(X).labels_
    array([0, 0, 1])
    """

    def __init__(self, distance_threshold: float = 0.3, linkage: str = "average") -> None:
        self.distance_threshold, self.linkage = distance_threshold, linkage

    def fit(self, X: ArrayLike, y: None = None) -> AgglomerativeThreshold:
        """Cluster the rows of ``X`` (n_answers, d) by cosine distance."""
        _check_number(self.distance_threshold, "distance_threshold", low=0.0, high=2.0)
        if self.linkage not in _LINKAGES:
            why = {"ward": " ('ward' needs Euclidean distances, answers are compared by cosine)"}.get(self.linkage, "")
            raise ValueError(f"linkage must be one of {list(_LINKAGES)}, got {self.linkage!r}{why}.")
        X = check_embeddings(X)
        self.n_features_in_ = X.shape[1]
        if X.shape[0] == 1:  # sklearn needs >= 2 samples; one answer is one cluster
            labels = np.zeros(1, dtype=np.int64)
        else:
            threshold = float(self.distance_threshold)
            model = AgglomerativeClustering(None, metric="cosine", linkage=self.linkage, distance_threshold=threshold)
            labels = model.fit(X).labels_
        return _labelled(self, labels)


class DBSCANCosine(ClusterMixin, BaseEstimator):
    """DBSCAN with cosine distance; answers in no dense region are noise (-1).

    Parameters
    ----------
    eps : float, default=0.3
        Cosine distance within which two answers are neighbours (> 0).
    min_samples : int, default=2
        Neighbours (itself included) an answer needs to be a core point: with the default, one answer
        alone, or two farther apart than ``eps``, are noise.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> DBSCANCosine(eps=0.3, min_samples=2).fit(X).labels_
    array([ 0,  0, -1])
    """

    def __init__(self, eps: float = 0.3, min_samples: int = 2) -> None:
        self.eps, self.min_samples = eps, min_samples

    def fit(self, X: ArrayLike, y: None = None) -> DBSCANCosine:
        """Cluster the rows of ``X`` (n_answers, d) by cosine distance."""
        _check_number(self.eps, "eps", low=0.0, low_inclusive=False)
        _check_number(self.min_samples, "min_samples", low=1, integer=True)
        X = check_embeddings(X)
        self.n_features_in_ = X.shape[1]
        model = DBSCAN(eps=float(self.eps), min_samples=int(self.min_samples), metric="cosine")
        return _labelled(self, model.fit(X).labels_)


class HDBSCANCosine(ClusterMixin, BaseEstimator):
    """HDBSCAN on a precomputed cosine-distance matrix.

    HDBSCAN has no absolute distance scale: it finds clusters dense *relative to the other answers*, erratic on a
    handful of points: with ``allow_single_cluster=True`` (so that "every client agrees" is one cluster, not all noise)
    answers all far apart can come back as one cluster, and a tight group can be split into micro-clusters plus noise.
    With fewer than ~20 answers per prompt prefer :class:`AgglomerativeThreshold`. (``cluster_selection_epsilon``
    would add a scale but raises a TypeError with NumPy 2, scikit-learn/scikit-learn#33219.)

    Parameters
    ----------
    min_cluster_size : int, default=2
        Smallest group that counts as a cluster (>= 2); a prompt with fewer answers is all noise.
    min_samples : int or None, default=None
        Neighbourhood size for the core distance (None: ``min_cluster_size``), clipped to the answers.
    allow_single_cluster : bool, default=True
        Let HDBSCAN return one cluster holding all non-noise answers.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.99, 0.1], [0.98, 0.12], [0.0, 1.0], [0.1, 0.99]])
    >>> HDBSCANCosine(min_cluster_size=2).fit(X).labels_
    array([0, 0, 0, 1, 1])
    """

    def __init__(self, min_cluster_size: int = 2, min_samples: int | None = None, allow_single_cluster: bool = True):
        self.min_cluster_size, self.min_samples = min_cluster_size, min_samples
        self.allow_single_cluster = allow_single_cluster

    def fit(self, X: ArrayLike, y: None = None) -> HDBSCANCosine:
        """Cluster the rows of ``X`` (n_answers, d) by cosine distance."""
        _check_number(self.min_cluster_size, "min_cluster_size", low=2, integer=True)
        if self.min_samples is not None:
            _check_number(self.min_samples, "min_samples", low=1, integer=True)
        X = check_embeddings(X)
        self.n_features_in_ = X.shape[1]
        n = X.shape[0]
        if n < self.min_cluster_size:
            logger.debug("HDBSCANCosine: %d answers < min_cluster_size=%d, all noise", n, self.min_cluster_size)
            labels = np.full(n, -1, dtype=np.int64)
        else:
            min_samples = self.min_cluster_size if self.min_samples is None else self.min_samples
            model = HDBSCAN(
                min_cluster_size=int(self.min_cluster_size),
                min_samples=min(int(min_samples), n),
                metric="precomputed",  # sklearn's HDBSCAN trees do not support cosine
                allow_single_cluster=bool(self.allow_single_cluster),
                copy=False,  # the distance matrix is ours to overwrite
            )
            labels = model.fit(cosine_distances(X)).labels_  # fit on (n, n)
        return _labelled(self, labels)


class SilhouetteKMeans(ClusterMixin, BaseEstimator):
    """K-means on L2-normalised rows, k chosen by the best cosine silhouette.

    Tries k = 2 .. min(k_max, n - 1) and keeps the k with the highest cosine silhouette (ties: the smaller k),
    stored in ``silhouette_`` (NaN when no k was tried). One cluster when n < 3, when every pairwise cosine distance is
    <= ``identical_tol``, or when the best silhouette is below ``min_silhouette``. The silhouette has no absolute
    scale: slight paraphrases can be split; raise ``identical_tol`` (e.g. to 0.05) to keep such prompts whole.

    Parameters
    ----------
    k_max : int, default=4
        Largest number of clusters tried (>= 2).
    min_silhouette : float, default=0.2
        Best silhouette (in [-1, 1]) needed to split at all.
    random_state : int, RandomState instance or None, default=0
        Seed of the k-means initialisation.
    n_init : int or "auto", default=10
        Number of k-means restarts per k.
    identical_tol : float, default=1e-6
        Largest pairwise cosine distance at which all rows are one answer (float32 embeddings of a text differ ~1e-7).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> SilhouetteKMeans().fit(X).labels_
    array([0, 0, 1, 1])
    """

    def __init__(
        self,
        k_max: int = 4,
        min_silhouette: float = 0.2,
        random_state: int | np.random.RandomState | None = 0,
        n_init: int | str = 10,
        identical_tol: float = 1e-6,
    ) -> None:
        self.k_max, self.min_silhouette, self.random_state = k_max, min_silhouette, random_state
        self.n_init, self.identical_tol = n_init, identical_tol

    def fit(self, X: ArrayLike, y: None = None) -> SilhouetteKMeans:
        """Cluster the rows of ``X`` (n_answers, d); see the class docstring."""
        _check_number(self.k_max, "k_max", low=2, integer=True)
        _check_number(self.min_silhouette, "min_silhouette", low=-1.0, high=1.0)
        if self.n_init != "auto":
            _check_number(self.n_init, "n_init", low=1, integer=True)
        _check_number(self.identical_tol, "identical_tol", low=0.0, high=2.0)
        X = check_embeddings(X)
        self.n_features_in_ = X.shape[1]
        n = X.shape[0]
        Xn = normalize(X)  # (n, d), unit rows: Euclidean k-means ~ cosine
        self.silhouette_ = float("nan")
        labels = np.zeros(n, dtype=np.int64)
        if n >= 3 and cosine_distances(Xn).max() > self.identical_tol:
            best_k, best_labels = self._search_k(Xn)
            if best_k and self.silhouette_ >= self.min_silhouette:
                labels = best_labels
            logger.debug("SilhouetteKMeans: best k=%s silhouette=%.3f", best_k, self.silhouette_)
        return _labelled(self, labels)

    def _search_k(self, Xn: NDArray[np.float64]) -> tuple[int, NDArray[np.int64]]:
        """Return the k with the best silhouette and its labels; set ``silhouette_``."""
        n = Xn.shape[0]
        best_k, best_labels = 0, np.zeros(n, dtype=np.int64)
        # One thread: on ~20 rows OpenMP start-up and spin-waits cost 20x the work.
        with threadpool_limits(limits=1):
            for k in range(2, min(int(self.k_max), n - 1) + 1):
                with warnings.catch_warnings():  # fewer distinct rows than k: k-means warns, returns < k clusters
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    labels = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state).fit(Xn).labels_
                if np.unique(labels).size < 2:
                    continue
                score = float(silhouette_score(Xn, labels, metric="cosine"))
                if best_k == 0 or score > self.silhouette_:
                    best_k, best_labels, self.silhouette_ = k, labels, score
        return best_k, best_labels


# -- the registry: each clusterer with its own typed parameters ----------------------------------------
@dataclass(frozen=True)
class AgglomerativeParams:
    """The configured parameters of :class:`AgglomerativeThreshold`."""

    distance_threshold: float = option(0.15, "Cosine distance at and above which two groups are not merged.")
    linkage: Literal["average", "complete", "single"] = option("average", "Linkage criterion.")

    def checks(self) -> list[tuple[bool, str, str]]:
        return [(0 < self.distance_threshold <= 2, "distance_threshold", "cosine distance lies in (0, 2]")]


@dataclass(frozen=True)
class DBSCANParams:
    """The configured parameters of :class:`DBSCANCosine`."""

    eps: float = option(0.15, "Neighbourhood radius in cosine distance.")
    min_samples: int = option(2, "Core-point neighbourhood size (itself included).")

    def checks(self) -> list[tuple[bool, str, str]]:
        return [
            (0 < self.eps <= 2, "eps", "cosine distance lies in (0, 2]"),
            (self.min_samples >= 1, "min_samples", "must be >= 1"),
        ]


@dataclass(frozen=True)
class HDBSCANParams:
    """The configured parameters of :class:`HDBSCANCosine`."""

    min_cluster_size: int = option(2, "Smallest cluster.")

    def checks(self) -> list[tuple[bool, str, str]]:
        return [(self.min_cluster_size >= 2, "min_cluster_size", "must be >= 2")]


@dataclass(frozen=True)
class KMeansParams:
    """The configured parameters of :class:`SilhouetteKMeans`."""

    k_max: int = option(4, "Largest k tried (k is chosen by silhouette).")
    min_silhouette: float = option(0.2, "Below this best silhouette, one cluster is kept.")

    def checks(self) -> list[tuple[bool, str, str]]:
        return [
            (self.k_max >= 2, "k_max", "must be >= 2"),
            (-1 <= self.min_silhouette <= 1, "min_silhouette", "a silhouette lies in [-1, 1]"),
        ]


@dataclass(frozen=True)
class ClustererSpec:
    """One registered clusterer: its class, its own parameters, and the knob a sweep or a slider moves.

    ``params`` is a dataclass of the parameters a configuration may set (``consensus.clusterer_params``),
    with their defaults and help; an optional ``checks()`` method returns ``(ok, field, fix)`` triples.
    ``knob`` is one of them, swept from ``low`` to ``high`` in steps of ``step``.
    """

    cls: type[BaseEstimator]
    params: type
    knob: str
    low: float
    high: float
    step: float

    def value(self, v: float) -> float | int:
        """A slider's or a sweep's value as the clusterer takes it (a knob with an integer step is a count)."""
        return int(v) if isinstance(self.step, int) else float(v)

    def parse(self, given: Mapping[str, Any], where: str = "consensus.clusterer_params") -> dict[str, Any]:
        """Every parameter, ``given`` over the defaults, typed and checked; a mistake is a ConfigError naming ``where``."""
        params = from_dict(self.params, dict(given), where)
        for ok, name, fix in getattr(params, "checks", list)():
            if not ok:
                raise ConfigError(f"{where}.{name} = {getattr(params, name)!r}: {fix}.")
        return {f.name: getattr(params, f.name) for f in fields(params)}


# The one registry of clusterers: config checks, the server, replay, the explorer, robustness and benchmarks read it.
# To add a clusterer: REGISTRY[name] = ClustererSpec(cls, params, knob, low, high, step).
REGISTRY: dict[str, ClustererSpec] = {
    "agglomerative": ClustererSpec(AgglomerativeThreshold, AgglomerativeParams, "distance_threshold", 0.01, 0.6, 0.01),
    "dbscan": ClustererSpec(DBSCANCosine, DBSCANParams, "eps", 0.01, 0.6, 0.01),
    "hdbscan": ClustererSpec(HDBSCANCosine, HDBSCANParams, "min_cluster_size", 2, 6, 1),
    "kmeans": ClustererSpec(SilhouetteKMeans, KMeansParams, "min_silhouette", -0.2, 0.9, 0.05),
}


def clusterer_params(consensus: Any, name: str | None = None) -> dict[str, Any]:
    """The constructor parameters of clusterer ``name`` (default: the configured one) under a ``ConsensusConfig``:
    the configured clusterer's ``consensus.clusterer_params`` over its spec's defaults, another's defaults."""
    name = name or consensus.clusterer
    if name not in REGISTRY:
        raise ConfigError(f"consensus.clusterer = {name!r} is not registered; choose one of {list(REGISTRY)}.")
    return REGISTRY[name].parse(consensus.clusterer_params if name == consensus.clusterer else {})


def clusterer_from_config(consensus: Any, name: str | None = None) -> BaseEstimator:
    """The unfitted clusterer a ``ConsensusConfig`` names (or clusterer ``name``), with its parameters.

    Examples
    --------
    >>> from fedcofit_lite.config import ConsensusConfig
    >>> clusterer_from_config(ConsensusConfig(clusterer="dbscan", clusterer_params={"eps": 0.2}))
    DBSCANCosine(eps=0.2)
    """
    name = name or consensus.clusterer
    return make_clusterer(name, **clusterer_params(consensus, name))


def make_clusterer(name: str, **params: Any) -> BaseEstimator:
    """An unfitted clusterer of :data:`REGISTRY` by name, with ``params`` for its constructor (a ``ValueError`` lists the valid ones).

    Examples
    --------
    >>> make_clusterer("dbscan", eps=0.2)
    DBSCANCosine(eps=0.2)
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown clusterer {name!r}; choose one of {sorted(REGISTRY)}.")
    cls = REGISTRY[name].cls
    valid = sorted(cls().get_params())
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"clusterer {name!r} ({cls.__name__}) has no parameter(s) {unknown}; its parameters are {valid}."
        )
    return cls(**params)
