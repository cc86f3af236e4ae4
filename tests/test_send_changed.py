"""Adaptive communication (federation.send_changed): only changed answers go up, and the consensus is unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from rundiff import compare_runs

from fedcofit_lite.cli import main
from fedcofit_lite.config import load_config
from fedcofit_lite.protocol.cluster import AgglomerativeThreshold
from fedcofit_lite.protocol.consensus import SemanticConsensus
from fedcofit_lite.protocol.messages import AnswersMessage, Wire, changed_answers, complete_answers, encode
from fedcofit_lite.protocol.server import ConsensusServer

PROMPTS = [f"capital-public-{i:04d}" for i in range(6)]
WORDS = ["Paris", "paris", "Lyon", "Lima", "Quito", "Oslo", "Bern", "Rome"]


def embed(texts):
    """A toy embedder: one direction per word (Paris and paris close together)."""
    x = np.array([np.eye(len(WORDS))[WORDS.index(t)] + (np.eye(len(WORDS))[0] if t == "paris" else 0) for t in texts])
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def server(weighting="uniform"):
    est = SemanticConsensus(AgglomerativeThreshold(distance_threshold=0.4), min_agreement=0.5, weighting=weighting)
    return ConsensusServer(PROMPTS, embed, est)


def message(r, client, answers, confidence=None):
    return AnswersMessage(r, client, list(PROMPTS), list(answers), confidence)


# per round, each client's whole answers (and confidences); client c skips round 3 and comes back in round 4
ROUNDS = {
    1: {"a": WORDS[:6], "b": WORDS[1:7], "c": WORDS[2:8]},
    2: {"a": ["Paris", "paris", "Lima", "Lima", "Quito", "Oslo"], "b": WORDS[1:7], "c": ["Rome", *WORDS[3:8]]},
    3: {"a": ["Paris", "Paris", "Lima", "Lima", "Quito", "Oslo"], "b": ["Paris", *WORDS[2:7]]},
    4: {
        "a": ["Paris", "Paris", "Lima", "Lima", "Quito", "Bern"],
        "b": ["Paris", *WORDS[2:7]],
        "c": ["Rome", *WORDS[3:8]],
    },
}


def _rounds(weighting="uniform", changed=False):
    """The consensus of every round, the wire, and what was sent, with whole messages or changed answers only."""
    srv, wire, holds, out, sent_all = server(weighting), Wire(), {}, [], []
    for r, answers in ROUNDS.items():
        # a confidence per answer text, the same each round, but for client b's last answer, which grows surer
        conf = {c: [0.3 + 0.05 * WORDS.index(t) + 0.1 * r * (c == "b" and i == 5) for i, t in enumerate(a)]
                for c, a in answers.items()} if weighting != "uniform" else {}  # fmt: skip
        whole = [message(r, c, a, conf.get(c)) for c, a in answers.items()]
        sent = [changed_answers(m, holds.get(m.client_id)) if changed else m for m in whole]
        accepted, rejected = srv.screen(r, [wire.send(m, "up", full=w) for m, w in zip(sent, whole)])
        assert rejected == {} and accepted == whole  # the server works on whole messages, completed
        holds.update({m.client_id: m for m in accepted})
        pseudo, report = srv.aggregate(r, accepted, rejected)
        out.append((pseudo, report.consensus, report.agreement, report.kept))
        sent_all += sent
    return out, wire, sent_all


@pytest.mark.parametrize("weighting", ["uniform", "confidence"])
def test_sending_only_changed_answers_gives_the_consensus_of_whole_messages_in_fewer_bytes(weighting):
    full, full_wire, _ = _rounds(weighting)
    changed, wire, sent = _rounds(weighting, changed=True)
    assert changed == full
    up_full = sum(b["up"] for b in full_wire.bytes_by_round.values())
    up = sum(b["up"] for b in wire.bytes_by_round.values())
    saved = sum(b["up"] for b in wire.saved_by_round.values())
    assert up < up_full and up + saved == up_full
    assert wire.saved_by_round[1]["up"] == 0  # the first message of each client is whole
    partial = [m for m in sent if m.base_round is not None]
    if weighting == "uniform":
        assert [(m.round, m.client_id, m.base_round, len(m.prompt_ids)) for m in partial] == [
            (2, "a", 1, 1), (2, "b", 1, 0), (2, "c", 1, 1), (3, "a", 2, 1), (3, "b", 2, 1), (4, "a", 3, 1), (4, "b", 3, 0), (4, "c", 2, 0)
        ]  # fmt: skip
    else:  # b's last confidence moves every round: it is sent again with an unchanged text
        assert [len(m.prompt_ids) for m in partial if m.client_id == "b"] == [1, 2, 1]


def test_what_counts_as_changed_and_when_the_whole_message_goes():
    held = message(1, "a", WORDS[:6], [0.5] * 6)
    same_text_new_confidence = message(2, "a", WORDS[:6], [0.5] * 5 + [0.9])
    delta = changed_answers(same_text_new_confidence, held)
    assert (delta.prompt_ids, delta.answers, delta.confidence, delta.base_round) == ([PROMPTS[5]], ["Oslo"], [0.9], 1)
    assert complete_answers(delta, held) == same_text_new_confidence
    assert changed_answers(same_text_new_confidence, None) is same_text_new_confidence  # the server holds nothing
    everything = message(2, "a", WORDS[2:8], [0.1] * 6)
    assert changed_answers(everything, held) is everything  # no fewer bytes
    fewer = AnswersMessage(2, "a", PROMPTS[:5], WORDS[:5], [0.5] * 5)
    assert changed_answers(fewer, held) is fewer  # the server would complete it with an answer no longer given
    assert b"base_round" not in encode(message(1, "a", WORDS[:6]))  # whole messages are byte for byte as before


def test_the_server_refuses_changes_against_answers_it_does_not_hold():
    srv = server()
    stale = AnswersMessage(2, "a", PROMPTS[:1], ["Lima"], base_round=1)
    accepted, rejected = srv.screen(2, [stale])
    assert accepted == [] and "changed answers since round 1, but the server holds no answers" in rejected["a"]
    srv.screen(1, [message(1, "a", WORDS[:6])])
    accepted, rejected = srv.screen(3, [AnswersMessage(3, "a", PROMPTS[:1], ["Lima"], base_round=2)])
    assert "holds the answers of round 1" in rejected["a"]
    accepted, _ = srv.screen(2, [stale])
    assert accepted[0].answers == ["Lima", *WORDS[1:6]] and accepted[0].base_round is None


def test_a_ci_run_with_changed_answers_only_sends_fewer_bytes_for_the_same_labels(
    tmp_path, answering, labels_kept_and_trained
):
    from fedcofit_lite.federation.loop import run_federation

    whole = run_federation(load_config("ci", answering), run_dir=tmp_path / "whole", progress=False)
    changed = run_federation(
        load_config("ci", [*answering, "federation.send_changed=true"]), run_dir=tmp_path / "changed", progress=False
    )
    assert labels_kept_and_trained(whole.run_dir) == labels_kept_and_trained(changed.run_dir)
    files = [f"{d}/round_{r}.jsonl" for d in ("answers", "pseudo_labels", "predictions") for r in (1, 2)]
    assert compare_runs(whole.run_dir, changed.run_dir, files) == []
    same = [
        "stage",
        "test",
        "test_per_client",
        "bytes_down",
        "kept",
        "pseudo_label_accuracy",
        "train_loss",
        "train_steps",
    ]
    assert compare_runs(whole.run_dir, changed.run_dir, ["metrics.jsonl"], fields=same) == []
    rows = {r["stage"]: r for r in changed.metrics}
    full_rows = {r["stage"]: r for r in whole.metrics}
    assert rows["round_1"]["bytes_up_saved"] == 0 and rows["round_1"]["bytes_up"] == full_rows["round_1"]["bytes_up"]
    assert 0 < rows["round_2"]["bytes_up_saved"]
    assert rows["round_2"]["bytes_up"] + rows["round_2"]["bytes_up_saved"] == full_rows["round_2"]["bytes_up"]
    assert "bytes_up_saved" not in full_rows["round_2"]


def test_flower_refuses_it_with_a_config_error_before_any_node_starts(capsys):
    code = main(["flower", "simulate", "--config", "ci", "--set", "federation.send_changed=true"])
    assert code == 2
    err = capsys.readouterr().err
    assert "config error" in err and "federation.send_changed=false" in err and "Traceback" not in err
    from fedcofit_lite.flower.cohort import FlowerCohort

    with pytest.raises(Exception, match="send_changed"):
        FlowerCohort(None, load_config("ci", ["federation.send_changed=true"]))
