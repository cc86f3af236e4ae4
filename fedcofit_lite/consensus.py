"""Semantic consensus: one pseudo-label per public prompt from the clients' answers.

The server embeds every answer of a round, then, prompt by prompt, clusters
the answers in that embedding space (see :mod:`fedcofit_lite.cluster`). The
consensus answer of a prompt is the medoid of its dominant cluster; the
share of answers in that cluster is the prompt's agreement, and prompts with
too little agreement are filtered out of the pseudo-labels.

This module imports numpy, scikit-learn and the standard library only.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.utils.validation import check_is_fitted

from fedcofit_lite.cluster import AgglomerativeThreshold, check_embeddings, make_clusterer

__all__ = ["PromptConsensus", "SemanticConsensus", "cosine_similarity_matrix"]

logger = logging.getLogger(__name__)

# Two cohesions or medoid scores closer than this are a tie (float noise).
TIE_TOL = 1e-9


def cosine_similarity_matrix(X: ArrayLike) -> NDArray[np.float64]:
    """Return the (n, n) cosine similarities of the rows of validated ``X`` (n, d).

    Examples
    --------
    >>> cosine_similarity_matrix([[1.0, 0.0], [1.0, 1.0]]).round(3)
    array([[1.   , 0.707],
           [0.707, 1.   ]])
    """
    return cosine_similarity(check_embeddings(X))


@dataclass(frozen=True)
class PromptConsensus:
    """Consensus of one prompt, as stored in ``SemanticConsensus.results_``.

    Attributes: ``prompt_id`` (the group id), ``index`` (row of X holding the
    consensus answer), ``agreement`` (dominant cluster size / ``n_answers``),
    ``cohesion`` (mean pairwise cosine inside the dominant cluster),
    ``n_answers``, ``n_clusters`` (noise points counted as singletons) and
    ``kept`` (``agreement >= min_agreement``). All fields are plain Python
    values, so ``dataclasses.asdict`` is JSON-serialisable.
    """

    prompt_id: Hashable
    index: int
    agreement: float
    cohesion: float
    n_answers: int
    n_clusters: int
    kept: bool


class SemanticConsensus(BaseEstimator):
    """Per-prompt consensus answer, agreement score and pseudo-label filter.

    The rules below define the method:

    1. The rows of each prompt (rows of ``X`` sharing a ``groups`` value) are
       clustered independently with ``sklearn.base.clone(clusterer)``. A
       prompt with a single answer is not clustered: it is one cluster.
    2. Noise points (label -1) count as singleton clusters.
    3. The dominant cluster is the largest. Ties go to the higher cohesion
       (mean pairwise cosine similarity of its members; 1.0 for a singleton);
       if cohesions are also tied (within 1e-9), to the cluster holding the
       smallest row index.
    4. The consensus answer is the medoid of the dominant cluster: the member
       with the highest sum of cosine similarities to the other members; ties
       (within 1e-9) go to the smallest row index.
    5. Agreement = dominant cluster size / number of answers of the prompt (a
       prompt with one answer has agreement 1.0).
    6. A prompt is kept as a pseudo-label when ``agreement >= min_agreement``.

    Parameters
    ----------
    clusterer : estimator, str or None, default=None
        Unfitted per-prompt clusterer with a scikit-learn ``fit(X)`` that sets
        ``labels_``; a name from :data:`fedcofit_lite.cluster.CLUSTERERS`
        builds that clusterer with its defaults; None means
        ``AgglomerativeThreshold()``.
    min_agreement : float, default=0.0
        Agreement in [0, 1] a prompt needs for ``keep_``.

    Attributes
    ----------
    groups_ : ndarray of shape (n_prompts,), dtype object
        Unique prompt ids in order of first appearance (numpy scalars are
        converted to Python values).
    labels_ : ndarray of shape (n_answers,), dtype int64
        Cluster of each row within its prompt; noise stays -1.
    n_clusters_ : ndarray of shape (n_prompts,), dtype int64
        Clusters per prompt, each noise point counted as one.
    n_answers_ : ndarray of shape (n_prompts,), dtype int64
        Answers per prompt.
    consensus_index_ : ndarray of shape (n_prompts,), dtype int64
        Row of ``X`` holding each prompt's consensus answer.
    agreement_ : ndarray of shape (n_prompts,), dtype float64
        Share of the prompt's answers in the dominant cluster.
    cohesion_ : ndarray of shape (n_prompts,), dtype float64
        Mean pairwise cosine similarity inside the dominant cluster.
    keep_ : ndarray of shape (n_prompts,), dtype bool
        ``agreement_ >= min_agreement``: the pseudo-label filter.
    in_dominant_ : ndarray of shape (n_answers,), dtype bool
        Whether each row belongs to its prompt's dominant cluster (which
        clients agreed with the consensus).
    results_ : list of PromptConsensus
        One record per prompt, in the order of ``groups_``.
    n_features_in_ : int
        Embedding dimension seen in ``fit``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0],   # prompt "a"
    ...               [0.0, 1.0], [0.1, 1.0]])              # prompt "b"
    >>> sc = SemanticConsensus(min_agreement=0.75).fit(X, ["a", "a", "a", "b", "b"])
    >>> sc.consensus_index_, sc.agreement_.round(3), sc.keep_
    (array([0, 3]), array([0.667, 1.   ]), array([False,  True]))
    >>> sc.consensus_for("b").index
    3
    """

    def __init__(
        self,
        clusterer: BaseEstimator | str | None = None,
        min_agreement: float = 0.0,
    ) -> None:
        self.clusterer = clusterer
        self.min_agreement = min_agreement

    def fit(self, X: ArrayLike, groups: ArrayLike) -> SemanticConsensus:
        """Find the consensus answer of every prompt.

        Parameters
        ----------
        X : array-like of shape (n_answers, d)
            Embeddings of all answers of a round; rows need not be normalised.
        groups : array-like of shape (n_answers,)
            Prompt id (hashable, e.g. str or int) of each row. Prompts may have
            different numbers of answers.

        Returns
        -------
        self : SemanticConsensus
        """
        # 1. validate parameters and inputs
        clusterer = self._resolve_clusterer()
        self._check_min_agreement()
        X = check_embeddings(X)  # (n, d)
        codes, prompt_ids = _encode_groups(groups, n_rows=X.shape[0])  # (n,), (p,)
        self.n_features_in_ = X.shape[1]

        # 2. cluster each prompt and pick its consensus
        n_prompts = len(prompt_ids)
        labels = np.full(X.shape[0], -1, dtype=np.int64)  # (n,)
        in_dominant = np.zeros(X.shape[0], dtype=bool)  # (n,)
        index = np.empty(n_prompts, dtype=np.int64)
        agreement = np.empty(n_prompts, dtype=np.float64)
        cohesion = np.empty(n_prompts, dtype=np.float64)
        n_clusters = np.empty(n_prompts, dtype=np.int64)
        n_answers = np.bincount(codes, minlength=n_prompts).astype(np.int64)
        for p in range(n_prompts):
            rows = np.flatnonzero(codes == p)  # (m,), ascending row indices
            lab = _cluster_rows(clusterer, X[rows])  # (m,)
            members, cohesion[p], n_clusters[p] = _dominant_cluster(X[rows], lab)
            labels[rows] = lab
            in_dominant[rows[members]] = True
            index[p] = rows[_medoid(X[rows[members]], members)]
            agreement[p] = members.size / rows.size

        # 3. store the learned attributes
        self.groups_ = np.empty(n_prompts, dtype=object)
        self.groups_[:] = prompt_ids
        self.labels_ = labels
        self.in_dominant_ = in_dominant
        self.n_clusters_ = n_clusters
        self.n_answers_ = n_answers
        self.consensus_index_ = index
        self.agreement_ = agreement
        self.cohesion_ = cohesion
        self.keep_ = agreement >= self.min_agreement
        self.results_ = [
            PromptConsensus(
                prompt_id=pid,
                index=int(index[p]),
                agreement=float(agreement[p]),
                cohesion=float(cohesion[p]),
                n_answers=int(n_answers[p]),
                n_clusters=int(n_clusters[p]),
                kept=bool(self.keep_[p]),
            )
            for p, pid in enumerate(prompt_ids)
        ]
        self._position = {pid: p for p, pid in enumerate(prompt_ids)}
        logger.debug(
            "consensus over %d prompts: mean agreement %.3f, %d kept (min_agreement=%s)",
            n_prompts, agreement.mean(), int(self.keep_.sum()), self.min_agreement,
        )
        return self

    def consensus_for(self, prompt_id: Hashable) -> PromptConsensus:
        """Return the :class:`PromptConsensus` of one prompt id."""
        check_is_fitted(self, "results_")
        try:
            return self.results_[self._position[_native(prompt_id)]]
        except KeyError:
            raise KeyError(
                f"prompt id {prompt_id!r} was not in the groups passed to fit "
                f"({len(self.results_)} prompts, e.g. {list(self._position)[:3]})."
            ) from None

    def to_records(self) -> list[dict[str, Any]]:
        """Return one JSON-serialisable dict per prompt, in the order of ``groups_``."""
        check_is_fitted(self, "results_")
        return [asdict(r) for r in self.results_]

    def _resolve_clusterer(self) -> BaseEstimator:
        """Return an unfitted clusterer from the ``clusterer`` parameter."""
        if self.clusterer is None:
            return AgglomerativeThreshold()
        if isinstance(self.clusterer, str):
            return make_clusterer(self.clusterer)
        if not (hasattr(self.clusterer, "fit") and hasattr(self.clusterer, "get_params")):
            raise TypeError(
                "clusterer must be a scikit-learn clusterer (with fit and get_params), "
                f"a name from CLUSTERERS or None; got {type(self.clusterer).__name__}."
            )
        return self.clusterer

    def _check_min_agreement(self) -> None:
        """Raise ValueError unless ``min_agreement`` is a number in [0, 1]."""
        m = self.min_agreement
        ok = isinstance(m, (int, float, np.integer, np.floating)) and not isinstance(m, bool)
        if not (ok and 0.0 <= m <= 1.0):
            raise ValueError(
                f"min_agreement must be a number in [0, 1] (share of a prompt's answers "
                f"in the dominant cluster), got {m!r}."
            )


def _native(value: Any) -> Any:
    """Convert a numpy scalar to the equal Python value (for JSON and dict keys)."""
    return value.item() if isinstance(value, np.generic) else value


def _encode_groups(groups: ArrayLike, *, n_rows: int) -> tuple[NDArray[np.int64], list[Hashable]]:
    """Map prompt ids to codes 0..p-1 in order of first appearance."""
    if isinstance(groups, np.ndarray) and groups.ndim != 1:
        raise ValueError(
            f"groups must be 1-D (one prompt id per row of X), got shape {groups.shape}."
        )
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
        raise ValueError(
            "groups must be a sequence of prompt ids, one per row of X; "
            f"got {type(groups).__name__}."
        )
    values = [_native(g) for g in groups]
    if len(values) != n_rows:
        raise ValueError(
            f"groups has {len(values)} entries but X has {n_rows} rows; "
            "pass one prompt id per answer embedding."
        )
    position: dict[Hashable, int] = {}
    codes = np.empty(n_rows, dtype=np.int64)
    for i, g in enumerate(values):
        try:
            codes[i] = position.setdefault(g, len(position))
        except TypeError:
            raise ValueError(
                f"groups[{i}] = {g!r} is not hashable; use str or int prompt ids."
            ) from None
    return codes, list(position)


def _cluster_rows(clusterer: BaseEstimator, Xp: NDArray[np.float64]) -> NDArray[np.int64]:
    """Cluster one prompt's rows (m, d) with a fresh clone; one row is one cluster."""
    if Xp.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    labels = np.asarray(clone(clusterer).fit(Xp).labels_, dtype=np.int64)
    if labels.shape != (Xp.shape[0],):
        raise ValueError(
            f"{type(clusterer).__name__} returned labels_ of shape {labels.shape} for "
            f"{Xp.shape[0]} answers; a clusterer must label every row."
        )
    return labels


def _dominant_cluster(
    Xp: NDArray[np.float64], labels: NDArray[np.int64]
) -> tuple[NDArray[np.int64], float, int]:
    """Return (local member indices, cohesion, number of clusters) of the dominant cluster."""
    S = cosine_similarity(Xp)  # (m, m)
    # noise points become singleton clusters
    clusters = [np.flatnonzero(labels == lab) for lab in np.unique(labels[labels >= 0])]
    clusters += [np.array([i]) for i in np.flatnonzero(labels < 0)]
    cohesions = [_cohesion(S[np.ix_(c, c)]) for c in clusters]
    largest = max(c.size for c in clusters)
    best = max(h for c, h in zip(clusters, cohesions) if c.size == largest)
    # among the largest, those within TIE_TOL of the best cohesion; smallest row wins
    tied = [(int(c.min()), c, h) for c, h in zip(clusters, cohesions)
            if c.size == largest and h >= best - TIE_TOL]
    _, members, cohesion = min(tied, key=lambda t: t[0])
    return members, float(cohesion), len(clusters)


def _cohesion(S_c: NDArray[np.float64]) -> float:
    """Mean off-diagonal entry of a cluster's (k, k) similarity block; 1.0 if k == 1."""
    k = S_c.shape[0]
    if k == 1:
        return 1.0
    return float((S_c.sum() - np.trace(S_c)) / (k * (k - 1)))


def _medoid(Xc: NDArray[np.float64], members: NDArray[np.int64]) -> int:
    """Return the local index (from ``members``) of the cluster's medoid."""
    S = cosine_similarity(Xc)  # (k, k)
    scores = S.sum(axis=1) - np.diag(S)  # (k,), similarity to the other members
    # members are ascending, so the first within tolerance is the smallest row index
    return int(members[np.flatnonzero(scores >= scores.max() - TIE_TOL)[0]])
