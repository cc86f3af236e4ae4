"""The server on hand-made embeddings: known consensus, bad messages set aside."""

from __future__ import annotations

import numpy as np
import pytest

from fedcofit_lite.protocol.cluster import AgglomerativeThreshold
from fedcofit_lite.protocol.consensus import SemanticConsensus
from fedcofit_lite.protocol.messages import AnswersMessage
from fedcofit_lite.protocol.server import ConsensusServer

# A toy "embedder": each known answer maps to a fixed direction.
VECTORS = {
    "Paris": [1.0, 0.0, 0.0],
    "paris": [0.99, 0.1, 0.0],
    "Lyon": [0.0, 1.0, 0.0],
    "42": [0.0, 0.0, 1.0],
    "forty-two": [0.1, 0.0, 0.99],
    "41": [0.0, 0.7, 0.7],
}


def toy_embed(texts):
    x = np.array([VECTORS[t] for t in texts], dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_server(min_agreement=0.0, max_answer_chars=100):
    est = SemanticConsensus(AgglomerativeThreshold(distance_threshold=0.1), min_agreement=min_agreement)
    return ConsensusServer(["q1", "q2"], toy_embed, est, max_answer_chars=max_answer_chars)


def msg(client, answers, round_index=1, prompt_ids=("q1", "q2")):
    return AnswersMessage(round=round_index, client_id=client, prompt_ids=list(prompt_ids), answers=list(answers))


def test_majority_meaning_wins_and_agreement_is_its_share():
    server = make_server()
    pseudo, report = server.aggregate(
        1, [msg("a", ["Paris", "42"]), msg("b", ["paris", "41"]), msg("c", ["Lyon", "forty-two"])]
    )
    assert report.prompt_ids == ["q1", "q2"]
    assert report.consensus[0] in ("Paris", "paris")
    assert report.consensus[1] in ("42", "forty-two")
    assert report.agreement == pytest.approx([2 / 3, 2 / 3])
    assert pseudo.prompt_ids == ["q1", "q2"] and pseudo.answers == report.consensus


def test_agreement_filter_drops_split_prompts():
    server = make_server(min_agreement=0.6)
    pseudo, report = server.aggregate(
        1, [msg("a", ["Paris", "42"]), msg("b", ["Lyon", "forty-two"]), msg("c", ["paris", "41"])]
    )
    # q1: Paris/paris agree (2/3 kept); q2: 42/forty-two agree (2/3 kept)
    assert report.kept == [True, True]
    pseudo, report = server.aggregate(1, [msg("a", ["Paris", "42"]), msg("b", ["Lyon", "41"])])
    assert report.kept == [False, False] and pseudo.prompt_ids == []


@pytest.mark.parametrize(
    "bad, why",
    [
        (msg("x", ["Paris", "42"], round_index=2), "round 2"),
        (msg("x", ["Paris"], prompt_ids=("q9",)), "unknown prompt ids"),
        (msg("x", ["Paris", "Paris"], prompt_ids=("q1", "q1")), "duplicate"),
        (msg("x", ["Paris" * 30, "42"]), "max_answer_chars"),
    ],
)
def test_a_bad_message_is_set_aside_and_the_round_goes_on(bad, why):
    server = make_server()
    pseudo, report = server.aggregate(1, [msg("a", ["Paris", "42"]), bad, msg("b", ["paris", "forty-two"])])
    assert why in report.rejected["x"]
    assert report.clients == ["a", "b"]
    assert report.n_answers == [2, 2]
    assert len(pseudo.answers) == 2


def test_partial_answers_count_per_prompt():
    server = make_server()
    _, report = server.aggregate(1, [msg("a", ["Paris", "42"]), msg("b", ["paris"], prompt_ids=("q1",))])
    assert report.n_answers == [2, 1]
    assert report.agreement[1] == 1.0


def test_no_acceptable_message_fails_clearly():
    with pytest.raises(RuntimeError, match="no acceptable answers"):
        make_server().aggregate(1, [msg("a", ["Paris", "42"], round_index=5)])


def test_private_vote_sends_only_released_keys_with_no_agreement():
    from fedcofit_lite.protocol.consensus import make_rule
    from fedcofit_lite.protocol.private_vote import NoisyVote

    private = NoisyVote(sigma=1e-6, threshold=2.5, seed=0)  # noise too small to matter: release = at least 3 votes

    def embed(texts):  # the vote groups by normalized string: the vectors do not matter here
        return np.ones((len(texts), 3), dtype=np.float32) / np.sqrt(3)

    server = ConsensusServer(["q1", "q2"], embed, make_rule("vote"), rule="vote", private=private)
    answers = [msg("a", ["Paris.", "42"]), msg("b", ["paris", "41"]), msg("c", ["Paris", "42"]), msg("d", ["Lyon", ""])]
    pseudo, report = server.aggregate(1, answers)
    assert pseudo.prompt_ids == ["q1"] and pseudo.answers == ["paris"]  # the normalized key, not a client's raw text
    assert pseudo.agreement == [1.0]  # the true vote share (3/4) is not private: not sent
    assert (
        report.kept == [True, False] and report.consensus[1] == "42"
    )  # withheld; the server's own record keeps the plain winner
    with pytest.raises(ValueError, match="needs rule 'vote'"):
        ConsensusServer(["q1"], embed, make_rule("medoid"), rule="medoid", private=private)
