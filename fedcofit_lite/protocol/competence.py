"""Competence signals: what a client can say, in a few bytes per answer, about how likely its answer is right.

Consensus by headcount passes only what most clients already know: the one client that was trained on a kind of
prompt is outvoted by three that guess. A client knows more about its own answer than its vote: what it was trained
on, and whether it answers the same way twice. Each signal of :data:`SIGNALS` is one number per answer in [0, 1],
higher meaning "more likely right", computed by the client and sent beside its answer only when the server's rule asks
for it: ``closeness`` (:func:`closeness`: a client that never saw a prompt of this kind answers it from its base
model), ``calibrated`` (:func:`calibrate`; it costs answering the records held out of training, ``competence.holdout``,
each round) and ``consistency`` (:func:`consistency`; it costs ``k`` more generations of the public prompts per round).

What a signal leaks: closeness tells the server which public prompts resemble the client's private prompts, so which
kinds of prompt (task families, topics) the client holds; nothing of a private answer (``docs/privacy.md`` measures it).

Numpy and scikit-learn only: the client's engine generates and embeds, this module only measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, clone

__all__ = ["SIGNALS", "SignalSpec", "calibrate", "closeness", "consistency", "check_signals"]


@dataclass(frozen=True)
class SignalSpec:
    """One competence signal: what it measures, and whether computing it costs generations (``samples``)."""

    description: str
    samples: bool = False  # needs the client's k sampled answers (competence.samples)
    holdout: bool = False  # needs records held out of training (competence.holdout)


SIGNALS: dict[str, SignalSpec] = {
    "closeness": SignalSpec("largest cosine similarity between the public prompt and the client's private prompts"),
    "consistency": SignalSpec("1 - semantic entropy of the client's k sampled answers (clustered by meaning)", True),
    "calibrated": SignalSpec(
        "confidence mapped to the chance of being right on held-out private records", holdout=True
    ),
}


def check_signals(names: Sequence[str], field: str = "competence.record") -> list[str]:
    """``names`` when each is a registered signal; else a ValueError naming the field and the choices."""
    unknown = [n for n in names if n not in SIGNALS]
    if unknown:
        raise ValueError(f"{field}: unknown competence signal(s) {unknown}; choose from {list(SIGNALS)}.")
    return list(names)


def closeness(public: NDArray[np.floating], private: NDArray[np.floating]) -> NDArray[np.float64]:
    """Per public prompt, the largest cosine similarity to any private prompt, clipped to [0, 1].

    ``public`` (p, d) and ``private`` (n, d): unit-norm embeddings by the server's sentence embedder. No private: 0.

    Examples
    --------
    >>> closeness(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.6, 0.8]])).round(2)
    array([0.6, 0.8])
    """
    public, private = np.asarray(public, dtype=np.float64), np.asarray(private, dtype=np.float64)
    if private.shape[0] == 0:
        return np.zeros(public.shape[0])
    return np.clip((public @ private.T).max(axis=1), 0.0, 1.0)  # (p,)


def calibrate(
    held_confidence: NDArray[np.floating], held_right: NDArray[np.bool_], confidence: NDArray[np.floating]
) -> NDArray[np.float64]:
    """The chance of being right at each of ``confidence``, from held-out answers' confidences and rightness.

    Platt scaling: a logistic regression of ``held_right`` on logit(``held_confidence``), with one
    pseudo-observation right and one wrong at the held-out mean (a weak prior, so that few records all
    right or all wrong still give a finite, monotone curve). No held-out answer: the confidence itself.

    Examples
    --------
    >>> got = calibrate(np.array([0.99, 0.98, 0.6, 0.55]), np.array([True, True, False, False]), np.array([0.99, 0.6]))
    >>> bool(got[0] > 0.5 > got[1])
    True
    """
    from sklearn.linear_model import LogisticRegression

    held = np.clip(np.asarray(held_confidence, dtype=np.float64), 1e-4, 1 - 1e-4)
    conf = np.clip(np.asarray(confidence, dtype=np.float64), 1e-4, 1 - 1e-4)
    if held.size == 0:
        return conf
    logit = np.log(held / (1 - held))
    x = np.concatenate([logit, [logit.mean(), logit.mean()]])[:, None]
    y = np.concatenate([np.asarray(held_right, dtype=int), [1, 0]])
    model = LogisticRegression(C=1.0).fit(x, y)
    return model.predict_proba(np.log(conf / (1 - conf))[:, None])[:, 1]


def consistency(samples: Sequence[NDArray[np.floating]], clusterer: BaseEstimator) -> NDArray[np.float64]:
    """Per prompt, 1 - (entropy of the cluster sizes of its k sampled answers) / log k, in [0, 1].

    This is semantic entropy (Kuhn et al., ICLR 2023; Farquhar et al., Nature 2024), with the server's embedder and
    clusterer: a model that knows the answer says it the same way every time. ``samples[i]`` (k, d) holds the
    unit-norm embeddings of the client's k sampled answers to prompt i; ``clusterer`` is an unfitted scikit-learn
    clusterer (noise points, label -1, are singletons). All k samples in one cluster: 1; all apart: 0.

    Examples
    --------
    >>> from fedcofit_lite.protocol.cluster import AgglomerativeThreshold
    >>> same = np.array([[1.0, 0.0]] * 4)
    >>> apart = np.eye(4)
    >>> consistency([same, apart], AgglomerativeThreshold()).round(3)
    array([1., 0.])
    """
    out = np.empty(len(samples))
    for i, X in enumerate(samples):
        X = np.asarray(X, dtype=np.float64)
        k = X.shape[0]
        if k < 2:
            out[i] = 1.0
            continue
        labels = np.asarray(clone(clusterer).fit(X).labels_)
        sizes = np.concatenate([np.bincount(labels[labels >= 0]), np.ones(np.sum(labels < 0))])  # noise: singletons
        p = sizes[sizes > 0] / k
        out[i] = 1.0 - float(-(p * np.log(p)).sum() / np.log(k))
    return np.clip(out, 0.0, 1.0)
