"""Consensus rules: one pseudo-label per public prompt from the clients' answers.

Every rule is the one estimator, :class:`SemanticConsensus` (its steps are in its docstring), with the choices that its
entry of :data:`RULES` (a :class:`RuleSpec`) fixes; docs/methods.md says what each rule does and when it helps.
Numpy, scikit-learn and the evaluation's text normalisation only: no model code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, clone
from sklearn.metrics.pairwise import cosine_similarity
from sklearn.utils.validation import check_is_fitted

from ..config import ConsensusConfig
from ..tasks.evaluate import case_matters, normalize_answer
from .cluster import AgglomerativeThreshold, check_embeddings, clusterer_from_config, make_clusterer

logger = logging.getLogger(__name__)

# Two cohesions or medoid scores closer than this are a tie (float noise).
TIE_TOL = 1e-9
GROUPINGS = ("semantic", "exact", "hybrid")
GUARDS = ("none", "numbers")
WEIGHTINGS = ("uniform", "confidence", "reliability", "competence")
CHOICES = ("heaviest", "most_competent")
DEFAULTS = ConsensusConfig()  # one default per threshold: the estimator's are the configuration's


@dataclass(frozen=True)
class RuleSpec:
    """One consensus rule: the estimator parameters it fixes, what the clients must send for it, how it is shown.

    ``params`` are the :class:`SemanticConsensus` parameters the rule fixes; the clusterer, ``min_agreement``,
    ``min_cohesion`` and the ``ConsensusConfig`` fields named in ``reads`` come from the configuration. Every client
    sends the competence ``signal`` the rule reads. ``private``: the private vote may release its labels (one vote per
    client on its normalized answer: an exact, unweighted grouping only). ``label``, ``color``: its legend and colour.
    """

    params: Mapping[str, Any]
    label: str
    color: str
    reads: tuple[str, ...] = ()
    signal: str | None = None
    private: bool = False

    @property
    def needs_confidence(self) -> bool:
        """True when the rule weighs or filters answers by the clients' confidence (so they send it)."""
        return (
            self.params.get("weighting") == "confidence"
            or "min_confidence" in self.reads
            or self.params.get("min_confidence", 0) > 0
        )

    @property
    def sends(self) -> tuple[str, ...]:
        """What each client sends beside its answers under this rule: ``confidence`` and/or a signal name."""
        return (*(("confidence",) if self.needs_confidence else ()), *((self.signal,) if self.signal else ()))


# The one registry of rules: the server, replay, the explorer, the config's checks and the figures read it.
_SEMANTIC = {"grouping": "semantic"}
_MEDOID, _COMPETENT = {**_SEMANTIC, "weighting": "uniform"}, {**_SEMANTIC, "weighting": "competence"}
_CHOOSER = {**_COMPETENT, "choose": "most_competent"}  # one client's answer, the most competent, is the consensus
RULES: dict[str, RuleSpec] = {
    "medoid": RuleSpec(_MEDOID, "semantic medoid", "#1f77b4"),
    "vote": RuleSpec({"grouping": "exact", "weighting": "uniform"}, "exact-string vote", "#17becf", private=True),
    "hybrid": RuleSpec({"grouping": "hybrid", "weighting": "uniform"}, "exact groups merged by meaning", "#8c564b"),
    "confidence": RuleSpec(
        {**_SEMANTIC, "weighting": "confidence"}, "weighted by confidence", "#e377c2", ("min_confidence",)
    ),
    "reliability": RuleSpec(
        {**_SEMANTIC, "weighting": "reliability"}, "weighted by reliability", "#bcbd22", ("reliability_by",)
    ),
    "guarded": RuleSpec({**_MEDOID, "guard": "numbers"}, "medoid, numbers guarded", "#393b79"),
    "closest": RuleSpec({**_CHOOSER, "min_confidence": 0.9}, "closest client's answer", "#e6550d", signal="closeness"),
    "competence": RuleSpec(
        {**_COMPETENT, "competence_temperature": 0.05}, "weighted by closeness", "#31a354", signal="closeness"
    ),
    "consistent": RuleSpec(
        {**_CHOOSER, "min_confidence": 0.9}, "most self-consistent answer", "#756bb1", signal="consistency"
    ),
    "calibrated": RuleSpec(
        {**_CHOOSER, "min_competence": 0.5}, "most likely right, calibrated", "#a55194", signal="calibrated"
    ),
}


def build_consensus(consensus_cfg: Any = None, rule: str | None = None, **overrides: Any) -> SemanticConsensus:
    """The one builder of a consensus estimator: ``rule`` (default ``consensus_cfg.rule``) under a ``ConsensusConfig``.

    The configuration (None: the package's defaults) gives the clusterer, the thresholds and the fields the rule
    ``reads``; ``overrides`` (``clusterer=``, ``min_agreement=``, ...) replace those, never what the rule fixes.

    Examples
    --------
    >>> build_consensus(None, "vote").grouping
    'exact'
    >>> build_consensus(None, "medoid", min_agreement=0.75).min_agreement
    0.75
    """
    c = consensus_cfg if consensus_cfg is not None else DEFAULTS
    rule = rule or c.rule
    if rule not in RULES:
        raise ValueError(f"unknown consensus rule {rule!r}; choose one of {list(RULES)} (consensus.rule).")
    spec = RULES[rule]
    clash = {k: v for k, v in overrides.items() if k in spec.params and v != spec.params[k]}
    if clash:
        raise ValueError(
            f"rule {rule!r} fixes {dict(spec.params)}; {clash} contradicts it (use SemanticConsensus(...) for another mix)."
        )
    base = {"clusterer": clusterer_from_config(c), "min_agreement": c.min_agreement, "min_cohesion": c.min_cohesion}
    return SemanticConsensus(**{**base, **{k: getattr(c, k) for k in spec.reads}, **overrides, **spec.params})


def make_rule(rule: str, **params: Any) -> SemanticConsensus:
    """The estimator of a rule name from :data:`RULES` under the package's defaults, with ``params`` replacing them."""
    return build_consensus(None, rule, **params)


_NUMBER = re.compile(r"(?<!\w)-?\d+(?:\.\d+)?")  # a minus sign only where it is not a separator (12-06-1963)


def guard_key(text: str) -> tuple[tuple[str, ...], bool]:
    """What ``guard="numbers"`` keeps apart: the answer's numbers in order (leading zeros dropped, signs kept),
    and whether it is written in capitals (:func:`fedcofit_lite.tasks.evaluate.case_matters`: ``VELVET`` is not ``velvet``).

    Examples
    --------
    >>> guard_key("12/06/1963") == guard_key("06/12/1963")
    False
    >>> guard_key("The capital is Lima.") == guard_key("Lima is the capital.")
    True
    """
    # an integer's leading zeros dropped, its sign kept: 06 -> 6, -05 -> -5, 0 -> 0
    numbers = tuple(
        x if "." in x else ("-" if x[0] == "-" else "") + (x.lstrip("-").lstrip("0") or "0")
        for x in _NUMBER.findall(text)
    )
    return numbers, case_matters(text)


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
class RoundInputs:
    """What a weighting function sees (``weighting=callable``): a round's answers and every side input given to fit.

    ``rows_of[p]`` are the rows of prompt ``p``; ``parts[p]`` its groups (local indices into ``rows_of[p]``),
    ``sims[p]`` their (m, m) cosine similarities. A weighting returns one weight >= 0 per row of ``X``.
    """

    X: NDArray[np.float64]
    rows_of: list[NDArray[np.int64]]
    parts: list[list[NDArray[np.int64]]]
    sims: list[NDArray[np.float64]]
    texts: list[str] | None
    clients: list[Hashable] | None
    confidence: NDArray[np.float64] | None
    families: list[Hashable] | None
    competence: NDArray[np.float64] | None


@dataclass(frozen=True)
class PromptConsensus:
    """Consensus of one prompt (:meth:`SemanticConsensus.consensus_for`), JSON-serialisable: ``index`` the row of X
    holding the consensus answer, ``agreement`` the dominant group's share of the weight, ``cohesion`` its mean
    pairwise cosine, ``n_clusters`` the groups (noise points singletons), ``kept`` the filter's verdict."""

    prompt_id: Hashable
    index: int
    agreement: float
    cohesion: float
    n_answers: int
    n_clusters: int
    kept: bool


class SemanticConsensus(BaseEstimator):
    """Per-prompt consensus answer, agreement score and pseudo-label filter, under any rule of :data:`RULES`.

    1. The rows of each prompt (rows of ``X`` sharing a ``groups`` value) form groups: ``grouping="semantic"``
       clusters them with a clone of ``clusterer`` (noise points, label -1, are singletons; one answer is one group);
       ``"exact"`` groups answers equal after :func:`normalize_answer`; ``"hybrid"`` makes the exact groups, then
       merges those whose representatives the clusterer puts in one cluster. ``guard="numbers"`` then splits semantic
       and hybrid groups so that answers with different :func:`guard_key` never share one.
    2. A group of two or more whose cohesion (mean pairwise cosine similarity) is below ``min_cohesion`` is broken
       into single answers.
    3. Every answer has a weight (``weighting``; a callable of :class:`RoundInputs` is a weighting of one's own): 1
       (``uniform``), the client's ``confidence`` in it, its client's reliability (:meth:`_reliability`; per client
       and task family with ``reliability_by="family"``, re-estimated ``n_iter`` times), or a softmax over the
       prompt's answers of the ``competence`` the clients sent, ``exp((c - max c) / competence_temperature)``.
    4. The dominant group has the largest total weight. Ties go to the higher cohesion (1.0 for a singleton), then to
       the group holding the smallest row index. With ``choose="most_competent"`` it is instead the group of the most
       competent answer (ties: the smallest row), and that answer itself is the consensus.
    5. The consensus answer: for semantic groups the weighted medoid (the member with the highest weighted sum of
       cosine similarities to the others); for exact and hybrid groups the most weighted answer string (first row
       holding it). Ties go to the smallest row index.
    6. Agreement = the dominant group's weight / the prompt's total weight.
    7. A prompt is kept when ``agreement >= min_agreement`` and, with ``min_confidence > 0`` (or ``min_competence >
       0``), when the dominant group's most confident (most competent) answer reaches it. With
       ``choose="most_competent"`` no agreement is asked (one client's answer may stand against all others): it is
       kept when the chosen answer's own confidence and competence reach ``min_confidence`` and ``min_competence``.

    The defaults are the medoid of the largest cluster (FedCoFiT's rule) with the safe filters: a prompt needs half the
    answers, and a group of unrelated answers never wins by size. ``clusterer`` is an unfitted scikit-learn clusterer,
    a name of :data:`fedcofit_lite.protocol.cluster.REGISTRY`, or None (``AgglomerativeThreshold()``).

    Attributes
    ----------
    groups_ : ndarray (n_prompts,) of prompt ids, in order of first appearance (Python values)
    labels_ : ndarray (n_answers,), each row's group within its prompt (-1: a singleton)
    n_clusters_, n_answers_ : ndarray (n_prompts,), groups (noise points one each) and answers
    consensus_index_ : ndarray (n_prompts,), the row of ``X`` holding each prompt's consensus
    agreement_, cohesion_ : ndarray (n_prompts,), of the dominant group
    keep_ : ndarray (n_prompts,) of bool, the pseudo-label filter
    in_dominant_ : ndarray (n_answers,) of bool, which rows (clients) agreed with the consensus
    weights_ : ndarray (n_answers,), each answer's weight
    client_weights_ : dict, with ``weighting="reliability"``: client (or (client, family)) -> weight
    results_ : list of PromptConsensus, one per prompt, in the order of ``groups_``

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0],   # prompt "a"
    ...               [0.0, 1.0], [0.1, 1.0]])              # prompt "b"
    >>> sc = SemanticConsensus(min_agreement=0.75, min_cohesion=0.0).fit(X, ["a", "a", "a", "b", "b"])
    >>> sc.consensus_index_, sc.agreement_.round(3), sc.keep_
    (array([0, 3]), array([0.667, 1.   ]), array([False,  True]))
    >>> sc.consensus_for("b").index
    3
    >>> vote = make_rule("vote", min_cohesion=0.0).fit(X, ["a", "a", "a", "b", "b"], texts=["x", "y", "x", "z", "z"])
    >>> vote.consensus_index_, vote.agreement_.round(3)
    (array([0, 3]), array([0.667, 1.   ]))
    """

    def __init__(
        self,
        clusterer: BaseEstimator | str | None = None,
        min_agreement: float = DEFAULTS.min_agreement,
        grouping: str = "semantic",
        weighting: str = "uniform",
        min_cohesion: float = DEFAULTS.min_cohesion,
        min_confidence: float = DEFAULTS.min_confidence,
        reliability_by: str = DEFAULTS.reliability_by,
        n_iter: int = 3,
        guard: str = "none",
        choose: str = "heaviest",
        competence_temperature: float = 0.05,
        min_competence: float = 0.0,
    ) -> None:
        self.clusterer, self.min_agreement, self.grouping, self.weighting = (
            clusterer, min_agreement, grouping, weighting,
        )  # fmt: skip
        self.min_cohesion, self.min_confidence, self.reliability_by = min_cohesion, min_confidence, reliability_by
        self.n_iter, self.guard, self.choose = n_iter, guard, choose
        self.competence_temperature, self.min_competence = competence_temperature, min_competence

    def fit(
        self,
        X: ArrayLike,
        groups: ArrayLike,
        *,
        texts: Sequence[str] | None = None,
        clients: Sequence[Hashable] | None = None,
        confidence: ArrayLike | None = None,
        families: Sequence[Hashable] | None = None,
        competence: ArrayLike | None = None,
    ) -> SemanticConsensus:
        """Find the consensus answer of every prompt; return ``self``.

        ``X`` (n_answers, d) holds the embeddings of all answers of a round (rows need not be normalised)
        and ``groups`` the prompt id of each row; prompts may have different numbers of answers. The side
        inputs, one per row, are needed by some rules only: ``texts`` by exact and hybrid grouping and the
        guard, ``clients`` by reliability weighting, ``confidence`` (in [0, 1]) by confidence weighting,
        ``families`` (each row's task family) by ``reliability_by="family"``, ``competence`` (in [0, 1],
        the signal each client sent with its answer) by competence weighting and ``choose="most_competent"``.
        """
        # 1. validate parameters and inputs
        clusterer = self._resolve_clusterer()
        self._check_params()
        X = check_embeddings(X)  # (n, d)
        n = X.shape[0]
        codes, prompt_ids = _encode_groups(groups, n_rows=n)  # (n,), (p,)
        texts, clients, conf, families, comp = self._check_side_inputs(
            n, texts, clients, confidence, families, competence
        )
        self.n_features_in_ = X.shape[1]

        # 2. group each prompt's answers, then split groups that are not cohesive
        n_prompts = len(prompt_ids)
        rows_of = [np.flatnonzero(codes == p) for p in range(n_prompts)]  # ascending row indices
        labels, parts, sims = self._group_prompts(clusterer, X, texts, rows_of)

        # 3. weight every answer
        if self.weighting == "confidence":
            weights = conf
        elif self.weighting == "reliability":
            weights, self.client_weights_ = self._reliability(rows_of, parts, sims, clients, families)
        elif self.weighting == "competence":  # per prompt a softmax of the competence; the most competent weighs 1
            weights = np.empty(n)
            for rows in rows_of:
                weights[rows] = np.exp((comp[rows] - comp[rows].max()) / self.competence_temperature)
        elif callable(self.weighting):
            inputs = RoundInputs(X, rows_of, parts, sims, texts, clients, conf, families, comp)
            weights = np.asarray(self.weighting(inputs), dtype=np.float64)
            if weights.shape != (n,) or not np.all(np.isfinite(weights)) or weights.min(initial=0.0) < 0:
                raise ValueError(f"the weighting function must return {n} finite weights >= 0, one per answer.")
        else:
            weights = np.ones(n)
        self.weights_ = weights

        # 4. per prompt: dominant group, consensus answer, agreement, filter
        index, agreement, cohesion, keep, in_dominant = self._decide(rows_of, parts, sims, weights, texts, conf, comp)
        n_clusters = np.array([len(part) for part in parts], dtype=np.int64)
        n_answers = np.array([len(rows) for rows in rows_of], dtype=np.int64)

        # 5. store the learned attributes
        self.groups_ = np.empty(len(prompt_ids), dtype=object)
        self.groups_[:] = prompt_ids
        self.labels_, self.in_dominant_, self.n_clusters_, self.n_answers_ = labels, in_dominant, n_clusters, n_answers
        self.consensus_index_, self.agreement_, self.cohesion_, self.keep_ = index, agreement, cohesion, keep
        self.results_ = [
            PromptConsensus(pid, int(i), float(a), float(c), int(m), int(k), bool(kept))
            for pid, i, a, c, m, k, kept in zip(prompt_ids, index, agreement, cohesion, n_answers, n_clusters, keep)
        ]
        self._position = {pid: p for p, pid in enumerate(prompt_ids)}
        logger.debug(
            "consensus (%s/%s) over %d prompts: mean agreement %.3f, %d kept (min_agreement=%s)",
            self.grouping, self.weighting, n_prompts, agreement.mean(), int(keep.sum()), self.min_agreement,
        )  # fmt: skip
        return self

    def _group_prompts(
        self, clusterer: Any, X: NDArray, texts: Sequence[str] | None, rows_of: list[NDArray[np.int64]]
    ) -> tuple[NDArray[np.int64], list[list[NDArray[np.int64]]], list[NDArray[np.float64]]]:
        """Step 2 of :meth:`fit`: each prompt's groups (split where not cohesive), row labels, similarities."""
        labels = np.full(X.shape[0], -1, dtype=np.int64)  # (n,)
        sims = [cosine_similarity(X[rows]) for rows in rows_of]  # per prompt: (m, m) cosine similarities
        parts: list[list[NDArray[np.int64]]] = []  # per prompt: groups as local indices
        for rows, S in zip(rows_of, sims):
            lab = self._group(clusterer, X[rows], [texts[i] for i in rows] if texts is not None else None)
            part = _split_incohesive(_groups_of(lab), S, self.min_cohesion)
            labels[rows] = _labels_of(part, lab, len(rows))
            parts.append(part)
        return labels, parts, sims

    def _decide(self, rows_of, parts, sims, weights, texts, conf, comp) -> tuple[NDArray, ...]:
        """Step 4 of :meth:`fit`: per prompt the consensus row, agreement, cohesion, kept; rows in a dominant group."""
        n_prompts, n = len(rows_of), len(weights)
        index, keep = np.empty(n_prompts, dtype=np.int64), np.empty(n_prompts, dtype=bool)
        agreement, cohesion = np.empty(n_prompts), np.empty(n_prompts)
        in_dominant = np.zeros(n, dtype=bool)
        chooser = self.choose == "most_competent"
        for p, rows in enumerate(rows_of):
            w = weights[rows]
            if chooser:  # the group of the most competent answer; that answer is the consensus
                best = int(np.flatnonzero(comp[rows] >= comp[rows].max() - TIE_TOL)[0])
                members = next(g for g in parts[p] if best in g)
                cohesion[p], index[p] = _cohesion(sims[p][np.ix_(members, members)]), rows[best]
            else:
                members, cohesion[p] = _dominant(parts[p], sims[p], w)
                if self.grouping == "semantic":
                    index[p] = rows[_weighted_medoid(sims[p], members, w)]
                else:
                    index[p] = rows[_most_weighted_string(members, [texts[i] for i in rows], w)]
            in_dominant[rows[members]] = True
            total = w.sum()
            agreement[p] = w[members].sum() / total if total > 0 else 0.0
            judged = rows[[best]] if chooser else rows[members]  # the chosen answer, or the dominant group's best
            keep[p] = chooser or agreement[p] >= self.min_agreement - TIE_TOL  # a chosen answer needs no agreement
            if self.min_confidence > 0 and conf is not None:
                keep[p] &= bool(conf[judged].max() >= self.min_confidence)
            if self.min_competence > 0 and comp is not None:
                keep[p] &= bool(comp[judged].max() >= self.min_competence - TIE_TOL)
        return index, agreement, cohesion, keep, in_dominant

    def consensus_for(self, prompt_id: Hashable) -> PromptConsensus:
        """Return the :class:`PromptConsensus` of one prompt id."""
        check_is_fitted(self, "results_")
        try:
            return self.results_[self._position[_native(prompt_id)]]
        except KeyError:
            known = f"{len(self.results_)} prompts, e.g. {list(self._position)[:3]}"
            raise KeyError(f"prompt id {prompt_id!r} was not in the groups passed to fit ({known}).") from None

    def to_records(self) -> list[dict[str, Any]]:
        """Return one JSON-serialisable dict per prompt, in the order of ``groups_``."""
        check_is_fitted(self, "results_")
        return [asdict(r) for r in self.results_]

    # -- the steps ------------------------------------------------------------------
    def _group(self, clusterer: BaseEstimator, Xp: NDArray[np.float64], texts: list[str] | None) -> NDArray[np.int64]:
        """Group labels of one prompt's rows (m,); -1 = a singleton (clusterer noise)."""
        if self.grouping == "semantic":
            return self._guarded(_cluster_rows(clusterer, Xp), texts)
        code: dict[str, int] = {}  # normalized answer -> group 0..k-1, in order of first row
        exact = np.array([code.setdefault(normalize_answer(t), len(code)) for t in texts], dtype=np.int64)
        if self.grouping == "exact" or len(code) == 1:
            return exact
        reps = np.array([int(np.flatnonzero(exact == g)[0]) for g in range(len(code))])  # each group's first row
        merged = _cluster_rows(clusterer, Xp[reps])  # (k,), -1 = its own group
        merged = np.where(merged < 0, merged.max() + 1 + np.arange(len(reps)), merged)
        return self._guarded(merged[exact], texts)

    def _guarded(self, labels: NDArray[np.int64], texts: list[str] | None) -> NDArray[np.int64]:
        """Split every group whose members' :func:`guard_key` differ (``guard="numbers"``); -1 stays a singleton."""
        if self.guard == "none":
            return labels
        code: dict[tuple[int, Hashable], int] = {}  # (group, key) -> new group, in order of first row
        return np.array(
            [code.setdefault((int(lab), guard_key(t)), len(code)) if lab >= 0 else -1 for lab, t in zip(labels, texts)],
            dtype=np.int64,
        )

    def _reliability(
        self,
        rows_of: list[NDArray[np.int64]],
        parts: list[list[NDArray[np.int64]]],
        sims: list[NDArray[np.float64]],
        clients: list[Hashable],
        families: list[Hashable] | None,
    ) -> tuple[NDArray[np.float64], dict]:
        """Answer weights: the log-odds (>= 0.05) of how often a client's answer falls in the group the *other*
        clients' weighted vote picks, smoothed ``(agree + 1) / (answered + 2)``, re-estimated ``n_iter`` times from
        equal weights (after Dawid and Skene, 1979); leave-one-out, so a client cannot vouch for itself."""
        by_family = self.reliability_by == "family" and families is not None
        key = [(c, families[i]) if by_family else c for i, c in enumerate(clients)]  # whose reliability each row is
        keys = sorted(set(key), key=str)
        weight_of = dict.fromkeys(keys, 1.0)
        for _ in range(max(1, self.n_iter)):
            agree, seen = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
            for rows, part, S in zip(rows_of, parts, sims):
                if len(rows) < 2:
                    continue
                w = np.array([weight_of[key[i]] for i in rows])
                for j, i in enumerate(rows):
                    others = w.copy()
                    others[j] = 0.0  # leave this answer out of the vote it is judged by
                    members, _ = _dominant(part, S, others)
                    seen[key[i]] += 1
                    agree[key[i]] += int(j in members)  # the groups partition the rows
            for k in keys:
                rate = (agree[k] + 1) / (seen[k] + 2)
                weight_of[k] = max(0.05, float(np.log(rate / (1 - rate))))
        return np.array([weight_of[k] for k in key]), {str(k): v for k, v in weight_of.items()}

    # -- validation -----------------------------------------------------------------
    def _check_side_inputs(self, n: int, texts, clients, confidence, families, competence=None):
        def column(values, name):
            if values is not None and len(values := list(values)) != n:
                raise ValueError(f"{name} has {len(values)} entries but X has {n} rows; pass one per answer.")
            return values

        def unit(values, name, what):  # (n,) numbers in [0, 1], or None
            if values is None:
                return None
            v = np.asarray(column(values, name), dtype=np.float64)
            if not np.all(np.isfinite(v)) or v.min(initial=1.0) < 0 or v.max(initial=0.0) > 1:
                raise ValueError(f"{name} must hold numbers in [0, 1], one per answer ({what}).")
            return v

        texts, clients, families = column(texts, "texts"), column(clients, "clients"), column(families, "families")
        conf = unit(confidence, "confidence", "e.g. exp of the mean token log-probability")
        comp = unit(competence, "competence", "a signal the clients sent")
        if (self.grouping in ("exact", "hybrid") or self.guard != "none") and texts is None:
            raise ValueError(
                f"exact and hybrid grouping and the guard read the answers' text (grouping={self.grouping!r}, "
                f"guard={self.guard!r}): pass texts= to fit."
            )
        if (self.weighting == "confidence" or self.min_confidence > 0) and conf is None:
            raise ValueError(
                "weighting='confidence' and min_confidence > 0 need each answer's confidence: pass confidence= to fit "
                "(clients send it with their answers)."
            )
        if self.weighting == "reliability" and clients is None:
            raise ValueError("weighting='reliability' estimates a weight per client: pass clients= to fit.")
        if (self.weighting == "competence" or self.choose == "most_competent") and comp is None:
            raise ValueError(
                "weighting='competence' and choose='most_competent' need each answer's competence signal: pass "
                "competence= to fit (clients send it with their answers, e.g. closeness)."
            )
        return texts, clients, conf, families, comp

    def _resolve_clusterer(self) -> BaseEstimator:
        """Return an unfitted clusterer from the ``clusterer`` parameter."""
        if self.clusterer is None:
            return AgglomerativeThreshold()
        if isinstance(self.clusterer, str):
            return make_clusterer(self.clusterer)
        if not (hasattr(self.clusterer, "fit") and hasattr(self.clusterer, "get_params")):
            raise TypeError(
                f"clusterer must be a scikit-learn clusterer (with fit and get_params), a name from cluster.REGISTRY or None; got {type(self.clusterer).__name__}."
            )
        return self.clusterer

    def _check_params(self) -> None:
        """Raise ValueError naming the parameter and its valid values."""
        m = self.min_agreement
        if not (isinstance(m, (int, float, np.integer, np.floating)) and not isinstance(m, bool) and 0.0 <= m <= 1.0):
            raise ValueError(
                f"min_agreement must be a number in [0, 1] (share of a prompt's answers in the dominant cluster), got {m!r}."
            )
        if not (callable(self.weighting) or self.weighting in WEIGHTINGS):
            raise ValueError(
                f"weighting must be one of {WEIGHTINGS} or a function of RoundInputs, got {self.weighting!r}."
            )
        choices = {"grouping": GROUPINGS, "guard": GUARDS, "reliability_by": ("client", "family"), "choose": CHOICES}
        for name, valid in choices.items():
            if (value := getattr(self, name)) not in valid:
                raise ValueError(f"{name} must be one of {valid}, got {value!r}.")
        units = {"min_cohesion": "a mean cosine; 0 = off", "min_confidence": "0 = off", "min_competence": "0 = off"}
        for name, what in units.items():
            if not (isinstance(value := getattr(self, name), (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1] ({what}), got {value!r}.")
        if not (isinstance(self.competence_temperature, (int, float)) and self.competence_temperature > 0):
            raise ValueError(f"competence_temperature must be > 0, got {self.competence_temperature!r}.")


def _native(value: Any) -> Any:
    """Convert a numpy scalar to the equal Python value (for JSON and dict keys)."""
    return value.item() if isinstance(value, np.generic) else value


def _encode_groups(groups: ArrayLike, *, n_rows: int) -> tuple[NDArray[np.int64], list[Hashable]]:
    """Map prompt ids to codes 0..p-1 in order of first appearance."""
    if isinstance(groups, np.ndarray) and groups.ndim != 1:
        raise ValueError(f"groups must be 1-D (one prompt id per row of X), got shape {groups.shape}.")
    if isinstance(groups, (str, bytes)) or not hasattr(groups, "__iter__"):
        raise ValueError(f"groups must be a sequence of prompt ids, one per row of X; got {type(groups).__name__}.")
    values = [_native(g) for g in groups]
    if len(values) != n_rows:
        raise ValueError(
            f"groups has {len(values)} entries but X has {n_rows} rows; pass one prompt id per answer embedding."
        )
    position: dict[Hashable, int] = {}
    codes = np.empty(n_rows, dtype=np.int64)
    for i, g in enumerate(values):
        try:
            codes[i] = position.setdefault(g, len(position))
        except TypeError:
            raise ValueError(f"groups[{i}] = {g!r} is not hashable; use str or int prompt ids.") from None
    return codes, list(position)


def _cluster_rows(clusterer: BaseEstimator, Xp: NDArray[np.float64]) -> NDArray[np.int64]:
    """Cluster one prompt's rows (m, d) with a fresh clone; one row is one cluster."""
    if Xp.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    labels = np.asarray(clone(clusterer).fit(Xp).labels_, dtype=np.int64)
    if labels.shape != (Xp.shape[0],):
        raise ValueError(
            f"{type(clusterer).__name__} returned labels_ of shape {labels.shape} for {Xp.shape[0]} answers; a clusterer must label every row."
        )
    return labels


def _groups_of(labels: NDArray[np.int64]) -> list[NDArray[np.int64]]:
    """Groups as arrays of local indices; each noise point (-1) is its own group."""
    groups = [np.flatnonzero(labels == lab) for lab in np.unique(labels[labels >= 0])]
    return groups + [np.array([i]) for i in np.flatnonzero(labels < 0)]


def _split_incohesive(
    groups: list[NDArray[np.int64]], S: NDArray[np.float64], min_cohesion: float
) -> list[NDArray[np.int64]]:
    """Break every group of 2+ whose cohesion is below ``min_cohesion`` into singletons."""
    if min_cohesion <= 0.0:  # 0 = off
        return groups
    out = []
    for g in groups:
        if g.size > 1 and _cohesion(S[np.ix_(g, g)]) < min_cohesion - TIE_TOL:
            out += [np.array([i]) for i in g]
        else:
            out.append(g)
    return out


def _labels_of(groups: list[NDArray[np.int64]], before: NDArray[np.int64], m: int) -> NDArray[np.int64]:
    """Labels 0..k-1 for groups of 2+ (in order of first row), -1 for singletons that were noise or split."""
    labels = np.full(m, -1, dtype=np.int64)
    multi = sorted((g for g in groups if g.size > 1 or before[g[0]] >= 0), key=lambda g: int(g.min()))
    for k, g in enumerate(multi):
        labels[g] = k
    return labels


def _dominant(
    groups: list[NDArray[np.int64]], S: NDArray[np.float64], w: NDArray[np.float64]
) -> tuple[NDArray[np.int64], float]:
    """(local member indices, cohesion) of the group with the most weight; ties: cohesion, then smallest row."""
    weight = [float(w[g].sum()) for g in groups]
    cohesions = [_cohesion(S[np.ix_(g, g)]) for g in groups]
    heaviest = max(weight)
    heavy = [i for i, wt in enumerate(weight) if wt >= heaviest - TIE_TOL]
    best = max(cohesions[i] for i in heavy)
    i = min((i for i in heavy if cohesions[i] >= best - TIE_TOL), key=lambda i: int(groups[i].min()))
    return groups[i], float(cohesions[i])


def _cohesion(S_c: NDArray[np.float64]) -> float:
    """Mean off-diagonal entry of a cluster's (k, k) similarity block; 1.0 if k == 1."""
    k = S_c.shape[0]
    return 1.0 if k == 1 else float((S_c.sum() - np.trace(S_c)) / (k * (k - 1)))


def _weighted_medoid(S: NDArray[np.float64], members: NDArray[np.int64], w: NDArray[np.float64]) -> int:
    """Local index of the member with the highest weighted similarity to the other members (ties: smallest)."""
    block = S[np.ix_(members, members)]  # (k, k)
    scores = (block - np.diag(np.diag(block))) @ w[members]  # (k,)
    if members.size > 1 and np.allclose(w[members], w[members][0]):
        scores = block.sum(axis=1) - np.diag(block)  # equal weights: the plain medoid, free of weight rounding
    return int(members[np.flatnonzero(scores >= scores.max() - TIE_TOL)[0]])


def _most_weighted_string(members: NDArray[np.int64], texts: list[str], w: NDArray[np.float64]) -> int:
    """Local index of the first member whose normalised answer carries the most weight in the group."""
    keys = [normalize_answer(texts[i]) for i in members]
    totals = {k: sum(float(w[i]) for i, key in zip(members, keys) if key == k) for k in keys}
    best = max(totals.values())
    return int(next(i for i, k in zip(members, keys) if totals[k] >= best - TIE_TOL))
