from __future__ import annotations

import json

import pytest

from fedcofit_lite.protocol.messages import AnswersMessage, MessageError, PseudoLabelsMessage, Wire, decode, encode


def test_answers_message_bytes_match_hand_arithmetic():
    msg = AnswersMessage(round=1, client_id="c0", prompt_ids=["p1", "p2"], answers=["04/03/2021", "é"])
    expected = '{"answers":["04/03/2021","é"],"client_id":"c0","prompt_ids":["p1","p2"],"round":1,"type":"answers"}'
    # {"answers": 11 + ["04/03/2021","é"] 18 + ,"client_id":"c0" 17 + ,"prompt_ids":["p1","p2"] 25
    # + ,"round":1 10 + ,"type":"answers"} 18 = 99 characters; 'é' is 2 bytes in UTF-8: 100 bytes.
    assert len(expected) == 99
    assert encode(msg) == expected.encode("utf-8")
    assert len(encode(msg)) == 100


def test_pseudo_labels_bytes_grow_by_answer_length():
    def size(answers):
        ids = [f"p{i}" for i in range(len(answers))]
        return len(
            encode(PseudoLabelsMessage(round=2, prompt_ids=ids, answers=answers, agreement=[0.5] * len(answers)))
        )

    # adding one character to one answer adds exactly one byte
    assert size(["abc", "de"]) + 1 == size(["abcd", "de"])
    # one more prompt: id "pN" (4 bytes quoted) + answer "x" (3 bytes quoted) + 0.5 (3) + 3 commas
    assert size(["x"]) + 13 == size(["x", "x"])


def test_round_trip_and_canonical():
    msg = PseudoLabelsMessage(round=3, prompt_ids=["a"], answers=["Paris"], agreement=[0.75])
    assert decode(encode(msg)) == msg
    assert encode(decode(encode(msg))) == encode(msg)


def test_wire_counts_per_round_and_direction():
    wire = Wire()
    up = AnswersMessage(round=1, client_id="c0", prompt_ids=["p"], answers=["a"])
    down = PseudoLabelsMessage(round=1, prompt_ids=["p"], answers=["a"], agreement=[1.0])
    received = wire.send(up, "up")
    wire.send(down, "down")
    wire.send(down, "down")
    assert received == up
    assert wire.bytes_by_round[1] == {"up": len(encode(up)), "down": 2 * len(encode(down))}
    assert wire.messages_by_round[1] == {"up": 1, "down": 2}
    assert wire.totals() == {"up": len(encode(up)), "down": 2 * len(encode(down))}


def _answers(**fields) -> bytes:
    return json.dumps({"type": "answers", "round": 1, "client_id": "c", **fields}).encode()


@pytest.mark.parametrize(
    "payload, match",  # every message names the field at fault
    [
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[1, 2]", r"'type' must be one of"),
        (json.dumps({"type": "nope"}).encode(), r"'type' must be one of \['answers', 'pseudo_labels'\]"),
        (_answers(), r"missing fields \['answers', 'prompt_ids'\]"),
        (_answers(prompt_ids=["p"], answers=[7]), r"field 'answers' must be list\[str\]"),
        (_answers(round="1", prompt_ids=[], answers=[]), "field 'round' must be int, got str"),
        (_answers(prompt_ids=["p", "q"], answers=["a"]), "2 prompt_ids but 1 answers; send one answer per prompt id"),
        (_answers(prompt_ids=[], answers=[], x=1), r"unknown fields \['x'\]"),
    ],
)
def test_decode_rejects_malformed(payload, match):
    with pytest.raises(MessageError, match=match):
        decode(payload)
