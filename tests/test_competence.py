"""Competence signals and the rules that read them: the math by hand, the wire, the server, a run, replay."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedcofit_lite.config import load_config
from fedcofit_lite.protocol.cluster import AgglomerativeThreshold
from fedcofit_lite.protocol.competence import SIGNALS, closeness, consistency
from fedcofit_lite.protocol.consensus import RULES, make_rule
from fedcofit_lite.protocol.messages import (
    AnswersMessage,
    MessageError,
    Wire,
    changed_answers,
    complete_answers,
    decode,
    encode,
)
from fedcofit_lite.protocol.server import ConsensusServer


def unit(angle_deg: float) -> list[float]:
    a = np.deg2rad(angle_deg)
    return [float(np.cos(a)), float(np.sin(a))]


# ------------------------------------------------------------------ the measures


def test_closeness_is_the_nearest_private_prompt():
    public = np.array([unit(0), unit(90), unit(200)])
    private = np.array([unit(10), unit(60)])
    got = closeness(public, private)
    np.testing.assert_allclose(got, [np.cos(np.deg2rad(10)), np.cos(np.deg2rad(30)), 0.0], atol=1e-12)  # clipped at 0
    assert closeness(public, np.zeros((0, 2))).tolist() == [0.0, 0.0, 0.0]


def test_consistency_is_one_minus_the_normalized_semantic_entropy():
    k = 4
    same = np.array([unit(0)] * k)
    two_two = np.array([unit(0), unit(1), unit(90), unit(91)])  # two meanings, two samples each
    three_one = np.array([unit(0), unit(1), unit(2), unit(90)])
    got = consistency([same, two_two, three_one], AgglomerativeThreshold(distance_threshold=0.15))
    h31 = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    np.testing.assert_allclose(got, [1.0, 1.0 - np.log(2) / np.log(k), 1.0 - h31 / np.log(k)], atol=1e-12)


# ------------------------------------------------------------------ the rules


def test_the_closest_rule_keeps_one_confident_experts_answer_against_three_guessers():
    # one prompt, four clients: three guessers agree on a wrong answer; the expert (closest) answers alone
    X = [unit(0), unit(1), unit(2), unit(90)]
    texts = ["05/06/2020", "05/06/2020", "05/06/2020", "06/05/2020"]
    comp = [0.3, 0.25, 0.28, 0.91]
    medoid = make_rule("medoid").fit(X, ["p"] * 4, texts=texts)
    assert medoid.consensus_index_[0] in (0, 1, 2) and medoid.keep_[0]  # headcount passes the guess
    sure = make_rule("closest").fit(X, ["p"] * 4, texts=texts, competence=comp, confidence=[0.6, 0.6, 0.6, 0.95])
    assert sure.consensus_index_[0] == 3 and sure.keep_[0]
    unsure = make_rule("closest").fit(X, ["p"] * 4, texts=texts, competence=comp, confidence=[0.6, 0.6, 0.6, 0.5])
    assert unsure.consensus_index_[0] == 3 and not unsure.keep_[0]  # the rule's 0.9 confidence gate
    weighted = make_rule("competence", min_agreement=0.75).fit(X, ["p"] * 4, texts=texts, competence=comp)
    # softmax at 0.05: the guessers weigh exp(-12) each; the expert's group holds nearly all the weight
    assert weighted.consensus_index_[0] == 3 and weighted.keep_[0] and weighted.agreement_[0] > 0.99


def test_competence_weights_are_uniform_when_every_client_is_as_close():
    X = [unit(0), unit(1), unit(90)]
    texts = ["a", "a", "b"]
    same = [0.8, 0.8, 0.8]
    medoid = make_rule("medoid", min_agreement=0.6).fit(X, ["p"] * 3, texts=texts)
    weighted = make_rule("competence", min_agreement=0.6).fit(X, ["p"] * 3, texts=texts, competence=same)
    assert weighted.consensus_index_.tolist() == medoid.consensus_index_.tolist()
    assert weighted.agreement_[0] == pytest.approx(medoid.agreement_[0]) == pytest.approx(2 / 3)
    assert weighted.keep_.tolist() == medoid.keep_.tolist() == [True]


def test_a_competence_rule_without_the_signal_says_what_to_pass():
    with pytest.raises(ValueError, match="competence="):
        make_rule("closest").fit([unit(0), unit(5)], ["p", "p"], confidence=[0.9, 0.9])
    with pytest.raises(ValueError, match=r"competence must hold numbers in \[0, 1\]"):
        make_rule("competence").fit([unit(0), unit(5)], ["p", "p"], competence=[0.5, 1.5])


def test_every_rule_says_what_clients_send_for_it():
    assert RULES["medoid"].sends == ()
    assert RULES["confidence"].sends == ("confidence",)
    assert RULES["closest"].sends == ("confidence", "closeness")
    assert RULES["competence"].sends == ("closeness",)
    assert RULES["consistent"].sends == ("confidence", "consistency")
    assert all(spec.signal is None or spec.signal in SIGNALS for spec in RULES.values())
    assert [r for r, spec in RULES.items() if spec.private] == ["vote"]


# ------------------------------------------------------------------ the wire and the server


def _message(signals=None, answers=("x", "y"), conf=None) -> AnswersMessage:
    return AnswersMessage(1, "c0", ["p0", "p1"], list(answers), conf, signals)


def test_signals_travel_as_json_and_are_counted():
    plain, signed = _message(), _message({"closeness": [0.912, 0.25]})
    assert decode(encode(signed)) == signed
    wire = Wire()
    wire.send(plain, "up")
    wire.send(signed, "up")
    extra = len(encode(signed)) - len(encode(plain))
    assert extra == len(',"signals":{"closeness":[0.912,0.25]}')  # canonical JSON: the signal's bytes, no more
    assert wire.totals()["up"] == 2 * len(encode(plain)) + extra
    with pytest.raises(MessageError, match="signal 'closeness' must lie in"):
        _message({"closeness": [0.5, 1.2]})
    with pytest.raises(MessageError, match="values of signal"):
        _message({"closeness": [0.5]})
    with pytest.raises(MessageError, match="signals"):
        decode(encode(plain).replace(b'"type"', b'"signals":{"closeness":["a"]},"type"'))


def test_changed_answers_carry_their_signals_and_the_server_completes_them():
    many_ids = [f"p{i}" for i in range(12)]
    held = AnswersMessage(1, "c0", many_ids, ["x"] * 12, None, {"closeness": [0.5] * 12})
    full = AnswersMessage(2, "c0", many_ids, ["x"] * 11 + ["z"], None, {"closeness": [0.5] * 11 + [0.7]})
    delta = changed_answers(full, held)
    assert delta.prompt_ids == ["p11"] and delta.signals == {"closeness": [0.7]} and delta.base_round == 1
    assert complete_answers(delta, held) == full


def test_the_server_refuses_a_message_without_the_rules_signal_and_uses_it():
    vectors = {"right": unit(90), "wrong": unit(0)}
    server = ConsensusServer(
        ["p"], lambda texts: np.array([vectors[t] for t in texts]), make_rule("closest"), rule="closest"
    )
    assert server.asks == ("confidence", "closeness")
    msgs = [AnswersMessage(1, f"c{i}", ["p"], ["wrong"], [0.7], {"closeness": [0.3]}) for i in range(3)] + [
        AnswersMessage(1, "c3", ["p"], ["right"], [0.95], {"closeness": [0.9]})
    ]
    bare = AnswersMessage(1, "c4", ["p"], ["wrong"], [0.7])
    assert "closeness" in server.check(bare, 1)
    labels, report = server.aggregate(1, [*msgs, bare])
    assert "closeness" in report.rejected["c4"] and "c4" not in report.clients
    assert labels.answers == ["right"] and report.kept == [True]


# ------------------------------------------------------------------ a run and its replay


@pytest.fixture(scope="module")
def closest_run(tmp_path_factory):
    from fedcofit_lite.federation.loop import run_federation

    cfg = load_config("ci", ["federation.rounds=1", "federation.method=consensus@closest"])
    return run_federation(cfg, run_dir=tmp_path_factory.mktemp("closest") / "run", progress=False)


def test_a_run_sends_the_rules_signal_and_records_it(closest_run):
    run = closest_run.run_dir
    rows = [json.loads(x) for x in (run / "answers" / "round_1.jsonl").read_text().splitlines()]
    assert rows and all(set(r["signals"]) == {"closeness"} and 0 <= r["signals"]["closeness"] <= 1 for r in rows)
    row = closest_run.metrics[-1]
    assert row["rule"] == "closest" and row["signal_sent"] == "closeness" and row["confidence_sent"] is True
    # what went up is the answers, the confidences and the closeness: one number more per answer than confidence alone
    n_clients = len({r["client"] for r in rows})
    per_client = [
        AnswersMessage(
            1,
            c,
            [r["prompt_id"] for r in rows if r["client"] == c],
            [r["answer"] for r in rows if r["client"] == c],
            [r["confidence"] for r in rows if r["client"] == c],
            {"closeness": [r["signals"]["closeness"] for r in rows if r["client"] == c]},
        )
        for c in dict.fromkeys(r["client"] for r in rows)
    ]
    assert row["bytes_up"] == sum(len(encode(m)) for m in per_client) and n_clients == 3


def test_replay_derives_the_closeness_each_client_measured(closest_run):
    from fedcofit_lite.analysis.replay import derive_closeness, load_round

    ra = load_round(closest_run.run_dir, 1)
    measured = list(ra.signals["closeness"])
    ra.signals.clear()
    derived = derive_closeness(closest_run.run_dir, ra, "all-MiniLM-L6-v2").signals["closeness"]
    assert len(set(measured)) > 1  # the clients' closeness differs between prompts: something to compare
    np.testing.assert_allclose(derived, measured, atol=2e-3)  # from partition.json alone, 3 decimals as sent


def test_signal_power_is_the_auc_of_right_against_wrong_answers():
    from fedcofit_lite.analysis.replay import RoundAnswers, format_signal_power, signal_power

    # two prompts of one family, three clients: the right answer is "5" and "7"
    ra = RoundAnswers(
        round=1,
        clients=["a", "b", "c"] * 2,
        prompt_ids=["arithmetic-public-0"] * 3 + ["arithmetic-public-1"] * 3,
        texts=["5", "6", "6", "7", "7", "8"],
        references=["5"] * 3 + ["7"] * 3,
        prompts={},
        confidence=[0.9, 0.4, 0.5, 0.8, 0.7, 0.3],  # every right answer above every wrong one
        signals={"closeness": [0.5] * 6},  # no information
    )
    ra.X = np.array([unit(0), unit(40), unit(41), unit(80), unit(81), unit(170)])
    rows = {r["signal"]: r for r in signal_power([(ra, None)])}
    assert rows["confidence"]["auc"] == 1.0 and rows["closeness"]["auc"] == 0.5
    # agreement: right answers hold 1/3, 2/3, 2/3 of their prompt's answers, wrong ones 2/3, 2/3, 1/3: no better than chance
    assert rows["agreement"]["auc"] == pytest.approx(0.5)
    assert rows["confidence"]["right"] == pytest.approx(0.5) and "arithmetic" in rows["confidence"]["by_family"]
    assert "confidence" in format_signal_power(list(rows.values()))


def test_closeness_tells_the_server_which_families_a_client_holds(closest_run):
    from fedcofit_lite.analysis.audit import family_inference

    leak = family_inference([closest_run.run_dir])
    assert leak["held"] >= 2 and leak["not_held"] >= 2  # the ci split leaves some families out of each client
    assert leak["auc"].mean > 0.8  # measured 1.00 here: the signal names the families each client was trained on


def test_calibration_maps_confidence_to_the_chance_of_being_right():
    from fedcofit_lite.protocol.competence import calibrate

    held = np.array([0.99, 0.98, 0.97, 0.7, 0.65, 0.6])
    right = np.array([True, True, True, False, False, False])
    got = calibrate(held, right, np.array([0.99, 0.8, 0.6]))
    assert got[0] > got[1] > got[2] and got[0] > 0.5 > got[2]  # monotone, and it separates
    all_right = calibrate(np.array([0.99] * 4), np.array([True] * 4), np.array([0.99, 0.5]))
    # the prior keeps it finite and inside (0, 1); held-out confidences that do not vary give a flat curve
    assert np.isfinite(all_right).all() and 0.5 < all_right.min() and all_right.max() < 1
    assert abs(all_right[0] - all_right[1]) < 1e-3
    np.testing.assert_allclose(calibrate(np.array([]), np.array([], dtype=bool), np.array([0.3])), [0.3])


def test_a_run_with_held_out_records_sends_calibrated_confidence_and_trains_without_them(tmp_path):
    from fedcofit_lite.federation.loop import run_federation

    cfg = load_config("ci", ["federation.rounds=1", "federation.method=consensus@calibrated", "competence.holdout=4"])
    run = run_federation(cfg, run_dir=tmp_path / "run", progress=False)
    parts = json.loads((tmp_path / "run" / "partition.json").read_text())
    assert all(p["n_examples"] == cfg.data.max_train_per_client - 4 for p in parts.values())  # 4 held out each
    rows = [json.loads(x) for x in (tmp_path / "run" / "answers" / "round_1.jsonl").read_text().splitlines()]
    assert all(0 <= r["signals"]["calibrated"] <= 1 for r in rows)
    assert run.metrics[-1]["signal_sent"] == "calibrated"
    from fedcofit_lite.config import ConfigError
    from fedcofit_lite.federation.methods import check_names

    with pytest.raises(ConfigError, match="set competence.holdout"):  # refused before any training
        check_names(load_config("ci", ["federation.rounds=1", "federation.method=consensus@calibrated"]))
