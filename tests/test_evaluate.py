from __future__ import annotations

import numpy as np
import pytest

from fedcofit_lite.tasks.evaluate import exact_match, mean_over_clients, normalize, rouge_l, score_answers


@pytest.mark.parametrize(
    "pred, ref, hit",
    [
        ("04/03/2021", "04/03/2021", 1.0),
        ("  04/03/2021. ", "04/03/2021", 1.0),
        ('"Paris"', "Paris", 1.0),
        ("PARIS", "paris", 1.0),
        ("forty  seven", "forty seven", 1.0),
        ("The capital is Paris.", "Paris", 0.0),
        ("3500 m", "3500 m", 1.0),
        ("3500", "3500 m", 0.0),
        # a reference in capitals asks for capitals (word_transform's uppercase operation)
        ("VELVET", "VELVET", 1.0),
        ("velvet", "VELVET", 0.0),
        ("Velvet", "VELVET", 0.0),
        (" VELVET. ", "VELVET", 1.0),
        ("Paris", "PARIS", 0.0),
        ("vel", "vel", 1.0),
        ("VEL", "vel", 1.0),  # a lower-case reference still ignores case
        ("a", "A", 1.0),  # a single letter is not a request for capitals
    ],
)
def test_exact_match_normalises(pred, ref, hit):
    assert exact_match(pred, ref) == hit


def test_normalize_keeps_inner_punctuation():
    assert normalize("1, 3, 7, 9.") == "1, 3, 7, 9"


def test_rouge_l_known_values():
    assert rouge_l("the capital is paris", "paris") == pytest.approx(2 * (1 / 4) * 1 / (1 / 4 + 1))
    assert rouge_l("paris", "paris") == 1.0
    assert rouge_l("lyon", "paris") == 0.0


def test_score_answers_per_family_and_overall():
    preds = ["a", "b", "x", "d"]
    refs = ["a", "b", "c", "d"]
    fams = ["f1", "f1", "f2", "f2"]

    def embed(texts):
        return np.array([[1.0, 0.0] if t != "x" else [0.0, 1.0] for t in texts])

    s = score_answers(preds, refs, fams, embed)
    assert s["f1"]["exact_match"] == 1.0 and s["f2"]["exact_match"] == 0.5
    assert s["all"]["exact_match"] == 0.75 and s["all"]["n"] == 4
    assert s["f2"]["embedding_sim"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="align"):
        score_answers(preds, refs[:2], fams)


def test_mean_over_clients():
    a = {"all": {"exact_match": 1.0, "rouge_l": 1.0, "n": 2}}
    b = {"all": {"exact_match": 0.0, "rouge_l": 0.5, "n": 2}}
    assert mean_over_clients([a, b]) == {"all": {"exact_match": 0.5, "rouge_l": 0.75, "n": 2}}
