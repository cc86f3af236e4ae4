"""What crosses the wire: typed messages, one serialization, bytes counted there.

Two message types carry the whole protocol:

* :class:`AnswersMessage` (client -> server): a client's answers to the public
  prompts of a round. Prompts are public and known to everyone beforehand,
  so only their ids travel, never their text.
* :class:`PseudoLabelsMessage` (server -> client): the consensus answers kept
  after the agreement filter, with their agreement scores.

Both are encoded as canonical UTF-8 JSON (sorted keys, no spaces, non-ASCII
kept as UTF-8): no pickle, so a message from an untrusted client is data and
never code. :class:`Wire` is the only place messages are encoded, and it counts
the bytes of every message per direction per round as it does so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, Union

Direction = Literal["up", "down"]  # up = client -> server, down = server -> client


class MessageError(ValueError):
    """A message is malformed: wrong type, missing field, inconsistent lengths."""


@dataclass(frozen=True)
class AnswersMessage:
    """A client's answers to the public prompts of one round (client -> server)."""

    kind: ClassVar[str] = "answers"
    round: int
    client_id: str
    prompt_ids: list[str]
    answers: list[str]

    def __post_init__(self) -> None:
        if len(self.prompt_ids) != len(self.answers):
            raise MessageError(
                f"answers message from {self.client_id!r}: {len(self.prompt_ids)} prompt_ids but "
                f"{len(self.answers)} answers; send one answer per prompt id."
            )


@dataclass(frozen=True)
class PseudoLabelsMessage:
    """Consensus answers kept after the agreement filter (server -> client)."""

    kind: ClassVar[str] = "pseudo_labels"
    round: int
    prompt_ids: list[str]
    answers: list[str]
    agreement: list[float]

    def __post_init__(self) -> None:
        if not (len(self.prompt_ids) == len(self.answers) == len(self.agreement)):
            raise MessageError(
                f"pseudo-labels message: prompt_ids ({len(self.prompt_ids)}), answers ({len(self.answers)}) "
                f"and agreement ({len(self.agreement)}) must have the same length."
            )


Message = Union[AnswersMessage, PseudoLabelsMessage]
MESSAGE_TYPES: dict[str, type] = {cls.kind: cls for cls in (AnswersMessage, PseudoLabelsMessage)}


def encode(msg: Message) -> bytes:
    """Canonical JSON bytes of a message (the same bytes for the same message, everywhere)."""
    payload = {"type": msg.kind, **asdict(msg)}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode(data: bytes) -> Message:
    """Parse and type-check a message; raise :class:`MessageError` naming the problem."""
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MessageError(f"message is not UTF-8 JSON: {err}") from None
    if not isinstance(payload, dict) or payload.get("type") not in MESSAGE_TYPES:
        raise MessageError(f"message 'type' must be one of {sorted(MESSAGE_TYPES)}.")
    cls = MESSAGE_TYPES[payload.pop("type")]
    expected = {f.name: f.type for f in fields(cls)}
    missing, unknown = set(expected) - set(payload), set(payload) - set(expected)
    if missing or unknown:
        raise MessageError(f"{cls.kind} message: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}.")
    for name, value in payload.items():
        _check_field(cls.kind, name, value, expected[name])
    return cls(**payload)


_FIELD_CHECKS: dict[str, tuple[type, type | None]] = {
    "int": (int, None),
    "str": (str, None),
    "list[str]": (list, str),
    "list[float]": (list, (int, float)),  # type: ignore[dict-item]
}


def _check_field(kind: str, name: str, value: Any, annotation: Any) -> None:
    outer, inner = _FIELD_CHECKS[str(annotation)]
    ok = isinstance(value, outer) and not isinstance(value, bool)
    if ok and inner is not None:
        ok = all(isinstance(v, inner) and not isinstance(v, bool) for v in value)
    if not ok:
        raise MessageError(f"{kind} message: field {name!r} must be {annotation}, got {type(value).__name__}.")


def _zero_counts() -> dict[str, int]:
    return {"up": 0, "down": 0}


@dataclass
class Wire:
    """The in-process channel: encodes, counts and decodes every message.

    A real transport (gRPC, Flower, HTTP) would replace :meth:`send` with a
    network hop; the messages and their bytes stay the same.
    """

    bytes_by_round: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(_zero_counts))
    messages_by_round: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(_zero_counts))

    def send(self, msg: Message, direction: Direction) -> Message:
        """Serialize ``msg``, count its bytes, and return what the receiver decodes."""
        data = encode(msg)
        self.bytes_by_round[msg.round][direction] += len(data)
        self.messages_by_round[msg.round][direction] += 1
        return decode(data)

    def totals(self) -> dict[str, int]:
        return {d: sum(r[d] for r in self.bytes_by_round.values()) for d in ("up", "down")}
