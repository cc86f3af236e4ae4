"""Scoring answers against references: exact match, content correctness, ROUGE-L, embedding similarity.

Used on the held-out test set (per task family) and to measure how often the
server's pseudo-labels are right (against references the server never sees).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import numpy as np

from ..runlog import PredictionRow
from .families import REGISTRY as FAMILIES


@functools.cache
def _rouge():
    """ROUGE-L's scorer, built on first use (rouge_score imports nltk: a second at start-up otherwise)."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def normalize(text: str, keep_case: bool = False) -> str:
    """Strip, collapse whitespace, drop wrapping quotes and a trailing period; lower-case unless ``keep_case``."""
    text = re.sub(r"\s+", " ", text.strip())
    text = text if keep_case else text.lower()
    text = text.strip("\"'`")
    return text.rstrip(".").strip()


def case_matters(reference: str) -> bool:
    """True when the reference is written in capitals (two or more letters, none lower-case): then the case is what
    the task asked for (``word_transform``'s uppercase: ``VELVET``, not ``velvet``) and exact match compares it."""
    letters = [c for c in reference if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def normalize_answer(text: str) -> str:
    """The key under which two answers count as the same string (the exact-match rule, :func:`normalize`): case
    ignored unless the answer is written in capitals."""
    return normalize(text, keep_case=case_matters(text))


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised strings are equal (case compared only where :func:`case_matters`)."""
    keep = case_matters(reference)
    return float(normalize(prediction, keep) == normalize(reference, keep))


def correct(prediction: str, reference: str, family: str | None = None) -> float:
    """1.0 when the answer is right: by the family's own ``check`` where it has one (the free-form families: any wording
    stating the reference's facts), by :func:`exact_match` otherwise (exact-answer families, external data)."""
    check = FAMILIES[family].check if family in FAMILIES else None
    return float(check(prediction, reference)) if check is not None else exact_match(prediction, reference)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of tokens), in [0, 1]."""
    return float(_rouge().score(reference, prediction)["rougeL"].fmeasure)


def score_answers(
    predictions: Sequence[str],
    references: Sequence[str],
    families: Sequence[str],
    embed_fn: Callable[[list[str]], np.ndarray] | None = None,
) -> dict[str, dict[str, float]]:
    """Mean metrics per family and over all (key ``"all"``): ``{family: {"exact_match", "correct", "rouge_l",
    "embedding_sim" (only with ``embed_fn``), "n"}}``; ``correct`` is :func:`correct`."""
    if not (len(predictions) == len(references) == len(families)):
        n = f"{len(predictions)} predictions, {len(references)} references, {len(families)} families"
        raise ValueError(f"score_answers: {n}; they must align one to one.")
    per_item: dict[str, list[float]] = {
        "exact_match": [exact_match(p, r) for p, r in zip(predictions, references)],
        "correct": [correct(p, r, f) for p, r, f in zip(predictions, references, families)],
        "rouge_l": [rouge_l(p, r) for p, r in zip(predictions, references)],
    }
    if embed_fn is not None and predictions:
        a, b = embed_fn(list(predictions)), embed_fn(list(references))  # unit rows, (n, d) each
        per_item["embedding_sim"] = np.sum(a * b, axis=1).tolist()
    groups = {f: [i for i, g in enumerate(families) if g == f] for f in set(families)}
    groups["all"] = list(range(len(families)))
    return {
        fam: {m: float(np.mean([v[i] for i in idx])) if idx else 0.0 for m, v in per_item.items()} | {"n": len(idx)}
        for fam, idx in sorted(groups.items())
    }


def score_predictions(
    answers: dict[str, list[str]], test: Sequence, embed_fn: Callable | None = None
) -> tuple[dict[str, dict], list[PredictionRow]]:
    """Score each model's answers to the ``test`` examples: (model -> score table, one prediction row per answer)."""
    refs, families = [e.response for e in test], [e.family for e in test]
    scores = {a: score_answers(preds, refs, families, embed_fn) for a, preds in answers.items()}
    rows = [PredictionRow(a, e.id, e.family, p, e.response) for a, ps in answers.items() for e, p in zip(test, ps)]
    return scores, rows


def mean_over_clients(scores: Sequence[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Average per-client score tables (same families and metrics) into one."""
    return {
        fam: {m: float(np.mean([s[fam][m] for s in scores])) for m in first if m != "n"} | {"n": first["n"]}
        for fam, first in scores[0].items()
    }


def last_epoch_loss(step_losses: Sequence[float], epochs: int) -> float:
    """Mean training loss over the last epoch's steps (nan when nothing was trained)."""
    if not step_losses:
        return float("nan")
    per_epoch = max(1, len(step_losses) // max(epochs, 1))
    return float(np.mean(step_losses[-per_epoch:]))
