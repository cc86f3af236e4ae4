"""Consensus rules, replay and the clients' use of labels (issue #13), on hand-made answers whose right consensus is known."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClusterMixin

from fedcofit_lite.analysis.replay import format_replay, load_round, replay
from fedcofit_lite.cli import main
from fedcofit_lite.config import ClientConfig, load_config
from fedcofit_lite.federation.client import Client
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.protocol.competence import SIGNALS
from fedcofit_lite.protocol.consensus import RULES, make_rule, normalize_answer
from fedcofit_lite.protocol.messages import AnswersMessage, MessageError, PseudoLabelsMessage, decode, encode
from fedcofit_lite.tasks.data import Example


def unit(angle_deg: float) -> list[float]:
    a = np.deg2rad(angle_deg)
    return [float(np.cos(a)), float(np.sin(a))]


class FixedLabels(ClusterMixin, BaseEstimator):
    """A 'clusterer' that returns the labels it is given: lets a test decide the clusters."""

    def __init__(self, labels=None):
        self.labels = labels

    def fit(self, X, y=None):
        self.labels_ = np.asarray(self.labels[: len(X)])
        return self


def test_rule_names_are_one_list():
    from fedcofit_lite.federation.methods import choices

    assert choices()["consensus.rule"] == list(RULES)
    with pytest.raises(ValueError, match="unknown consensus rule 'mode'"):
        make_rule("mode")


def test_one_confident_client_beats_two_agreeing_wrong_ones():
    # three answers to one prompt: two agree on a wrong answer (low confidence), one is right and sure
    X = [unit(0), unit(1), unit(90)]
    texts = ["06/12/1963", "06/12/1963", "12/06/1963"]
    conf = [0.30, 0.35, 0.97]
    medoid = make_rule("medoid").fit(X, ["p"] * 3, texts=texts)
    assert medoid.consensus_index_[0] in (0, 1) and medoid.agreement_[0] == pytest.approx(2 / 3)
    sure = make_rule("confidence").fit(X, ["p"] * 3, texts=texts, confidence=conf)
    assert sure.consensus_index_[0] == 2
    assert sure.agreement_[0] == pytest.approx(0.97 / 1.62)
    # and a confidence floor the winner must reach
    strict = make_rule("confidence", min_confidence=0.99).fit(X, ["p"] * 3, confidence=conf)
    assert not strict.keep_[0]


def test_a_large_group_of_unrelated_answers_loses_to_a_cohesive_pair():
    # rows 0-2 point in unrelated directions but the clusterer put them in one group; rows 3-4 agree
    X = [unit(0), unit(90), unit(180), unit(45), unit(46)]
    lumped = FixedLabels([0, 0, 0, 1, 1])
    for rule, spec in RULES.items():
        if spec.params.get("choose") == "most_competent":
            continue  # the most competent answer's group, not the heaviest: tested below
        extra = {"confidence": [0.5] * 5} if spec.needs_confidence else {}
        extra |= {"competence": [0.8] * 5} if spec.signal else {}
        texts = ["cat", "dog", "emu", "owl", "owl"]
        naive = make_rule(rule, clusterer=lumped, min_cohesion=0.0).fit(
            X, ["p"] * 5, texts=texts, clients=list("abcde"), **extra
        )
        guarded = make_rule(rule, clusterer=lumped, min_cohesion=0.5).fit(
            X, ["p"] * 5, texts=texts, clients=list("abcde"), **extra
        )
        assert guarded.consensus_index_[0] in (3, 4), rule
        assert guarded.agreement_[0] == pytest.approx(2 / 5), rule
        if rule in ("medoid", "confidence", "reliability", "competence"):  # semantic: without the floor, the lump wins
            assert naive.consensus_index_[0] in (0, 1, 2), rule


def test_vote_counts_strings_and_hybrid_merges_paraphrases():
    X = [unit(0), unit(1), unit(2), unit(80)]
    texts = ["Paris", "paris.", "The capital is Paris", "Lyon"]
    vote = make_rule("vote").fit(X, ["p"] * 4, texts=texts)
    assert vote.consensus_index_[0] == 0 and vote.agreement_[0] == pytest.approx(0.5) and vote.n_clusters_[0] == 3
    hybrid = make_rule("hybrid").fit(X, ["p"] * 4, texts=texts)  # the paraphrase joins the 'Paris' group by meaning
    assert hybrid.consensus_index_[0] == 0 and hybrid.agreement_[0] == pytest.approx(0.75)
    # what embeddings cannot tell apart, exact grouping keeps apart
    dates = make_rule("vote").fit(
        [unit(0), unit(0.5), unit(0.2)], ["q"] * 3, texts=["12/06/1963", "06/12/1963", "12/06/1963"]
    )
    assert dates.n_clusters_[0] == 2 and dates.agreement_[0] == pytest.approx(2 / 3)
    assert normalize_answer(" Paris. ") == normalize_answer("'paris'") and normalize_answer(
        "VELVET"
    ) != normalize_answer("velvet")


def test_reliability_learns_who_to_trust_from_the_answers_alone():
    # 8 calibration prompts: a, b and c agree, d always says something else
    X, groups, texts, clients = [], [], [], []
    for k in range(8):
        for c in "abcd":
            X.append(unit(10 * k + (50 if c == "d" else 0)))
            groups.append(f"p{k}")
            texts.append("x")
            clients.append(c)
    # the test prompt: d and c say one thing (d's row first, so a uniform tie goes to them), a and b another
    for c, angle in (("d", 0), ("c", 0.5), ("a", 70), ("b", 70.5)):
        X.append(unit(angle))
        groups.append("test")
        texts.append("x")
        clients.append(c)
    uniform = make_rule("medoid").fit(X, groups)
    trusted = make_rule("reliability").fit(X, groups, clients=clients)
    assert uniform.consensus_for("test").index in (32, 33)
    assert trusted.consensus_for("test").index in (34, 35)
    assert trusted.client_weights_["d"] == pytest.approx(0.05) and trusted.client_weights_["a"] > 1.0


def test_confidence_travels_in_the_message_and_is_checked():
    plain = AnswersMessage(1, "c0", ["p1", "p2"], ["a", "b"])
    assert b"confidence" not in encode(plain)  # absent unless sent: old byte counts unchanged
    sure = AnswersMessage(1, "c0", ["p1", "p2"], ["a", "b"], [0.5, 0.987])
    assert decode(encode(sure)) == sure
    assert len(encode(sure)) - len(encode(plain)) == len(',"confidence":[0.5,0.987]')
    with pytest.raises(MessageError, match="one per answer"):
        AnswersMessage(1, "c0", ["p1"], ["a"], [0.1, 0.2])
    with pytest.raises(MessageError, match=r"\[0, 1\]"):
        AnswersMessage(1, "c0", ["p1"], ["a"], [1.5])


def test_server_refuses_answers_without_confidence_under_the_confidence_rule():
    from fedcofit_lite.protocol.server import ConsensusServer

    server = ConsensusServer(["p1"], lambda t: np.eye(len(t), 3), make_rule("confidence"), rule="confidence")
    assert "carries none" in server.check(AnswersMessage(1, "c0", ["p1"], ["a"]), 1)
    assert server.check(AnswersMessage(1, "c0", ["p1"], ["a"], [0.9]), 1) is None


PUBLIC = {p: Example(p, "fam", f"question {p}", "", "") for p in ("p1", "p2", "p3")}


def test_clients_accumulate_skip_their_own_answers_and_weigh_labels():
    c = Client(
        "c0",
        "tiny-random",
        [],
        policy=ClientConfig(accumulate=True, skip_own=True, weight_by_score=True, pseudo_repeats=2),
    )
    c.answers_message(1, ["p1", "p2", "p3"], ["A", "b", "x"])
    c.receive(PseudoLabelsMessage(1, ["p1", "p2"], ["a", "Bee"], [0.75, 1.0]), PUBLIC)
    assert [r.response for r in c.pseudo_labels] == ["Bee"]  # 'a' is its own answer 'A' coming back
    assert c.pseudo_labels[0].weight == 1.0
    c.answers_message(2, ["p1", "p2", "p3"], ["a", "b", "x"])
    c.receive(PseudoLabelsMessage(2, ["p1", "p3"], ["c", "y"], [0.5, 0.75]), PUBLIC)
    assert {r.instruction: (r.response, r.weight) for r in c.pseudo_labels} == {
        "question p2": ("Bee", 1.0),  # kept from round 1
        "question p1": ("c", 0.5),
        "question p3": ("y", 0.75),
    }
    assert len(c.training_records()) == 2 * 3  # no private data here; each label twice
    fresh = Client("c1", "tiny-random", [])  # the defaults: the latest round's labels only, unweighted
    fresh.receive(PseudoLabelsMessage(1, ["p1"], ["a"], [0.5]), PUBLIC)
    fresh.receive(PseudoLabelsMessage(2, ["p2"], ["b"], [0.5]), PUBLIC)
    assert [(r.response, r.weight) for r in fresh.pseudo_labels] == [("b", 1.0)]


def test_weighted_loss():
    from fedcofit_lite.config import LoraConfig
    from fedcofit_lite.engine.batching import TrainRecord, collate, tokenize_records
    from fedcofit_lite.engine.finetune import attach_adapters
    from fedcofit_lite.engine.loss import answer_loss
    from fedcofit_lite.engine.models import load_model

    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="float32")
    model = attach_adapters(model, ["a"], LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj"]))
    model.set_adapter("a")
    recs = [
        TrainRecord("Say hi", "", "hi"),
        TrainRecord("Add 2 and 3", "", "5"),
        TrainRecord("Capital of France?", "", "Paris"),
    ]
    batch = collate(tokenize_records(tok, recs, 64), tok.pad_token_id)
    with torch.no_grad():
        plain = answer_loss(model, batch)
        ones = answer_loss(model, batch, weights=torch.ones(3))
        drop_last = answer_loss(model, batch, weights=torch.tensor([1.0, 1.0, 0.0]))
        two = collate(tokenize_records(tok, recs[:2], 64), tok.pad_token_id)
        without = answer_loss(model, two)
    torch.testing.assert_close(ones, plain)
    torch.testing.assert_close(drop_last, without, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory, answering):
    cfg = load_config("ci", [*answering, "client.accumulate=true", "consensus.rule=reliability"])
    return run_federation(cfg, run_dir=tmp_path_factory.mktemp("rules") / "run", progress=False)


def test_a_run_saves_what_replay_needs(ci_run, labels_kept_and_trained):
    assert set(labels_kept_and_trained(ci_run.run_dir)) == {1, 2}
    rows = [json.loads(x) for x in (ci_run.run_dir / "answers" / "round_1.jsonl").read_text().splitlines()]
    assert all(0.0 <= r["confidence"] <= 1.0 for r in rows)
    ra = load_round(ci_run.run_dir, 1)
    assert ra.X is not None and ra.X.shape == (len(rows), 384)  # the server's embeddings, read back: no model
    assert ra.confidence is not None
    m = ci_run.metrics[2]
    assert m["rule"] == "reliability" and m["confidence_sent"] is False


def test_replay_scores_every_rule_and_prints_a_table(ci_run, capsys):
    rows = replay(ci_run.run_dir)
    assert {(r["rule"], r["round"]) for r in rows} == {(rule, r) for rule in RULES for r in (1, 2)}
    for r in rows:
        if "skipped" in r:  # the ci run records closeness, not the signals that cost samples or held-out records
            signal = RULES[r["rule"]].signal
            assert (SIGNALS[signal].samples or SIGNALS[signal].holdout) and signal in r["skipped"]
            continue
        assert r["kept"] <= r["n_prompts"] == 12, r
        if not RULES[r["rule"]].params.get("min_confidence"):  # the clients agree on most answers: labels kept
            assert r["kept"] > 0, r
        assert r["new_correct_per_client"] <= r["kept"] and r["harmful_per_client"] <= r["kept"]
        assert set(r["coverage"]) <= {
            "date_rewrite",
            "unit_conversion",
            "number_to_words",
            "word_transform",
            "arithmetic",
            "capital",
            "list_sort",
        }
    # the medoid replay of round 1 is what the run's own server... would have done under medoid; the reliability replay is what it did
    for n in (1, 2):
        sent = [json.loads(x) for x in (ci_run.run_dir / "pseudo_labels" / f"round_{n}.jsonl").read_text().splitlines()]
        rel = next(r for r in rows if r["rule"] == "reliability" and r["round"] == n)
        assert rel["kept"] == sum(x["kept"] for x in sent) == ci_run.metrics[n + 1]["kept"] > 0
    table = format_replay(rows)
    assert "new correct/client" in table and "coverage" in table
    assert main(["replay", str(ci_run.run_dir), "--rule", "vote", "--rule", "medoid", "--round", "1"]) == 0
    out = capsys.readouterr().out
    assert "vote" in out and "medoid" in out and "reliability" not in out.split("coverage")[0]
    assert main(["replay", str(ci_run.run_dir), "--rule", "mode"]) == 2


def test_rules_side_by_side_in_one_comparison(tmp_path):
    from fedcofit_lite.experiments.compare import run_comparison

    comp = run_comparison(
        load_config("ci"), ["consensus", "consensus@vote", "local"], run_dir=tmp_path / "c", progress=False
    )
    assert list(comp.metrics) == ["consensus", "consensus@vote", "local"]
    assert comp.metrics["consensus@vote"][2]["rule"] == "vote" and comp.metrics["consensus"][2]["rule"] == "medoid"
    from fedcofit_lite.federation.methods import check_names

    with pytest.raises(Exception, match=r"'consensus@mode' is not registered; .*or consensus@X"):
        check_names(load_config("ci", ["compare.methods=[consensus@mode]"]))


def test_a_finished_comparison_can_be_extended_with_more_rules(tmp_path):
    from fedcofit_lite.analysis.compare import load_comparison
    from fedcofit_lite.experiments.compare import run_comparison

    folder = tmp_path / "ext"
    run_comparison(load_config("ci"), ["consensus", "local"], run_dir=folder, progress=False)
    before = (folder / "local" / "metrics.jsonl").read_text()
    comp = run_comparison(load_config("ci"), ["consensus@vote"], run_dir=folder, progress=False, extend=True)
    assert list(comp.metrics) == ["consensus", "local", "consensus@vote"]
    assert (folder / "local" / "metrics.jsonl").read_text() == before  # kept, not rerun
    assert list(load_comparison(folder)) == ["consensus", "local", "consensus@vote"]
    assert comp.metrics["consensus@vote"][1]["test"] == comp.metrics["local"][1]["test"]  # the same local stage
