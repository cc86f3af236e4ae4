"""What crosses the wire: typed messages, one serialization, bytes counted there.

Consensus sends :class:`AnswersMessage` up (the answers by prompt id, with one number per answer, 3 decimals, for the
confidence or each competence signal the rule reads; with ``federation.send_changed`` only the changed ones,
:func:`changed_answers`, which the server completes, :func:`complete_answers`) and :class:`PseudoLabelsMessage` down,
both canonical UTF-8 JSON (sorted keys, no spaces). The parameter baselines send :class:`AdapterMessage` up and
:class:`GlobalAdapterMessage` down as safetensors (the scalar fields as JSON in ``__metadata__``, then raw little-endian
arrays; the header is under 1% for real adapters, :func:`safetensors_overhead`). No pickle anywhere: a message from an
untrusted client is data, never code. :class:`Wire` is the one place messages are encoded, and counts their bytes.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal

import numpy as np
import safetensors.numpy

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
    confidence: list[float] | None = None  # per answer, in [0, 1]; only when the server's rule uses it
    # competence signal name -> one value per answer, in [0, 1]; only the signals the server's rule asks for
    signals: dict[str, list[float]] | None = None
    # federation.send_changed: only the answers that changed since this client's answers of round base_round,
    # which the server holds and completes this message with (changed_answers, complete_answers); None: all of them
    base_round: int | None = None

    def __post_init__(self) -> None:
        if len(self.prompt_ids) != len(self.answers):
            raise MessageError(
                f"answers message from {self.client_id!r}: {len(self.prompt_ids)} prompt_ids but "
                f"{len(self.answers)} answers; send one answer per prompt id."
            )
        signals = {f"values of signal {n!r}": v for n, v in (self.signals or {}).items()}
        for what, values in {"confidences": self.confidence, **signals}.items():
            if values is not None and len(values) != len(self.answers):
                raise MessageError(
                    f"answers message from {self.client_id!r}: {len(values)} {what} for {len(self.answers)} answers; "
                    "send one per answer."
                )
            if values is not None and not all(0.0 <= v <= 1.0 for v in values):
                raise MessageError(f"answers message from {self.client_id!r}: {what} must lie in [0, 1].")


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


Tensors = dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class AdapterMessage:
    """A client's LoRA adapter tensors after local training (client -> server)."""

    kind: ClassVar[str] = "adapter"
    round: int
    client_id: str
    n_examples: int  # FedAvg weight: how many private examples the client trained on
    tensors: Tensors

    def __post_init__(self) -> None:
        _check_tensors(self.kind, self.tensors)
        if self.n_examples < 0:
            raise MessageError(
                f"adapter message from {self.client_id!r}: n_examples must be >= 0, got {self.n_examples}."
            )


@dataclass(frozen=True, eq=False)
class GlobalAdapterMessage:
    """The server's averaged adapter tensors (server -> client)."""

    kind: ClassVar[str] = "global_adapter"
    round: int
    tensors: Tensors

    def __post_init__(self) -> None:
        _check_tensors(self.kind, self.tensors)


Message = AnswersMessage | PseudoLabelsMessage | AdapterMessage | GlobalAdapterMessage
MESSAGE_TYPES: dict[str, type] = {cls.kind: cls for cls in (AnswersMessage, PseudoLabelsMessage)}
TENSOR_MESSAGE_TYPES: dict[str, type] = {cls.kind: cls for cls in (AdapterMessage, GlobalAdapterMessage)}


def _check_tensors(kind: str, tensors: Any) -> None:
    if not isinstance(tensors, dict) or not tensors:
        raise MessageError(f"{kind} message: 'tensors' must be a non-empty dict of name -> numpy array.")
    bad = [k for k, v in tensors.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise MessageError(f"{kind} message: tensors {bad[:3]} are not numpy arrays keyed by str.")


def encode(msg: Message) -> bytes:
    """Bytes of a message: canonical JSON, or safetensors for tensor messages (same bytes everywhere)."""
    if isinstance(msg, (AdapterMessage, GlobalAdapterMessage)):
        fields_ = {"type": msg.kind, **{f.name: getattr(msg, f.name) for f in fields(msg) if f.name != "tensors"}}
        # One metadata key holding canonical JSON: safetensors stores metadata in a
        # hash map, so several keys would come out in a different order each run.
        meta = {"message": json.dumps(fields_, sort_keys=True, separators=(",", ":"), ensure_ascii=False)}
        tensors = {k: np.ascontiguousarray(msg.tensors[k]) for k in sorted(msg.tensors)}  # C order for safetensors
        return safetensors.numpy.save(tensors, metadata=meta)
    payload = {"type": msg.kind, **{k: v for k, v in asdict(msg).items() if v is not None}}  # an unset field is absent
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def safetensors_overhead(data: bytes) -> int:
    """Bytes of a safetensors message that are not tensor data (length prefix + JSON header)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    return 8 + header_len


def _decode_tensor_message(data: bytes) -> Message:
    try:
        header = json.loads(data[8 : safetensors_overhead(data)].decode("utf-8"))
        tensors = safetensors.numpy.load(data)
    except Exception as err:  # noqa: BLE001 - any parse failure is a malformed message
        raise MessageError(f"message is neither JSON nor valid safetensors: {err}") from None
    try:
        meta = json.loads((header.get("__metadata__") or {}).get("message", "null"))
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict) or meta.get("type") not in TENSOR_MESSAGE_TYPES:
        raise MessageError(f"tensor message metadata 'message.type' must be one of {sorted(TENSOR_MESSAGE_TYPES)}.")
    return _typed(TENSOR_MESSAGE_TYPES[meta.pop("type")], meta, tensors=tensors)


def decode(data: bytes) -> Message:
    """Parse and type-check a message; raise :class:`MessageError` naming the problem."""
    # safetensors: an 8-byte little-endian header length, then a JSON header at byte 8 (never '{' in a JSON message)
    if len(data) >= 10 and data[8:9] == b"{" and safetensors_overhead(data) <= len(data):
        return _decode_tensor_message(data)
    try:
        payload = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MessageError(f"message is not UTF-8 JSON: {err}") from None
    if not isinstance(payload, dict) or payload.get("type") not in MESSAGE_TYPES:
        raise MessageError(f"message 'type' must be one of {sorted(MESSAGE_TYPES)}.")
    return _typed(MESSAGE_TYPES[payload.pop("type")], payload)


def _of_type(value: Any, annotation: str) -> bool:
    """Whether a decoded JSON value is of the field type ``annotation`` (``list[float]``, ...); a bool is no number."""
    outer, _, inner = annotation.removesuffix("]").partition("[")
    if outer == "list":
        return isinstance(value, list) and all(_of_type(v, inner) for v in value)
    if outer == "dict":  # str -> inner: signal name -> list of numbers
        inner = inner.removeprefix("str, ")
        return isinstance(value, dict) and all(isinstance(k, str) and _of_type(v, inner) for k, v in value.items())
    return isinstance(value, {"int": int, "str": str, "float": (int, float)}[outer]) and not isinstance(value, bool)


def _typed(cls: type, values: dict[str, Any], **tensors: Any) -> Message:
    """``cls`` from its decoded JSON fields, each type-checked (a ``X | None`` field may be absent)."""
    expected = {f.name: str(f.type) for f in fields(cls) if f.name not in tensors}
    optional = {name for name, annotation in expected.items() if annotation.endswith("| None")}
    missing, unknown = set(expected) - set(values) - optional, set(values) - set(expected)
    if missing or unknown:
        raise MessageError(f"{cls.kind} message: missing fields {sorted(missing)}, unknown fields {sorted(unknown)}.")
    for name, value in values.items():
        if not _of_type(value, annotation := expected[name].removesuffix(" | None")):
            raise MessageError(f"{cls.kind} message: field {name!r} must be {annotation}, got {type(value).__name__}.")
    return cls(**values, **tensors)


def _entries(msg: AnswersMessage) -> dict[str, tuple[str, float | None, tuple[float, ...]]]:
    """Prompt id -> (answer, confidence as sent, its signals' values in name order) of a message."""
    conf = msg.confidence if msg.confidence is not None else [None] * len(msg.answers)
    names = sorted(msg.signals or {})
    sig = [tuple(msg.signals[n][i] for n in names) for i in range(len(msg.answers))]  # () without signals
    return {p: (a, c, s) for p, a, c, s in zip(msg.prompt_ids, msg.answers, conf, sig)}


def changed_answers(full: AnswersMessage, held: AnswersMessage | None) -> AnswersMessage:
    """What a client sends under ``federation.send_changed``: the answers of ``full`` whose text, confidence or a
    signal (as sent) differ from ``held`` (the server's copy), with ``base_round=held.round``; ``full`` itself when the
    server holds nothing, ``held`` has a prompt or signals ``full`` lacks, or the changes would not be fewer bytes."""
    if held is None or full.base_round is not None or sorted(full.signals or {}) != sorted(held.signals or {}):
        return full
    before, now = _entries(held), _entries(full)
    if set(before) - set(now):
        return full  # the server would complete the message with an answer the client no longer gives
    changed = [p for p in full.prompt_ids if before.get(p) != now[p]]
    confidence = [now[p][1] for p in changed] if full.confidence is not None else None
    signals = {n: [now[p][2][j] for p in changed] for j, n in enumerate(sorted(full.signals))} if full.signals else None
    answers = [now[p][0] for p in changed]
    delta = AnswersMessage(full.round, full.client_id, changed, answers, confidence, signals, base_round=held.round)
    return delta if len(encode(delta)) < len(encode(full)) else full


def complete_answers(msg: AnswersMessage, held: AnswersMessage) -> AnswersMessage:
    """The server's side of ``federation.send_changed``: ``msg`` (the changes since ``held``) completed with ``held``'s
    other answers, in ``held``'s prompt order (new prompts after): the client's whole message of this round."""
    before, now = _entries(held), _entries(msg)
    order = [*held.prompt_ids, *(p for p in msg.prompt_ids if p not in before)]
    merged = [now.get(p, before.get(p)) for p in order]
    confidence = None
    if msg.confidence is not None:
        confidence = [e[1] for e in merged]
        if any(c is None for c in confidence):
            raise MessageError(
                f"answers message from {msg.client_id!r}: confidences of changed answers only, but the server holds "
                f"none from round {held.round}; send every answer with its confidence."
            )
    signals = None
    if msg.signals:
        if sorted(msg.signals) != sorted(held.signals or {}):
            raise MessageError(
                f"answers message from {msg.client_id!r}: signals {sorted(msg.signals)} of changed answers only, but "
                f"the server holds {sorted(held.signals or {})} from round {held.round}; send every answer."
            )
        names = sorted(msg.signals)
        signals = {n: [e[2][names.index(n)] for e in merged] for n in names}
    return AnswersMessage(msg.round, msg.client_id, order, [e[0] for e in merged], confidence, signals)


def _zero_counts() -> dict[str, int]:
    return {"up": 0, "down": 0}


@dataclass
class Wire:
    """The in-process channel: encodes, counts and decodes every message (a real transport replaces :meth:`send`
    with a network hop; the messages and their bytes stay the same)."""

    bytes_by_round: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(_zero_counts))
    messages_by_round: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(_zero_counts))
    saved_by_round: dict[int, dict[str, int]] = field(default_factory=lambda: defaultdict(_zero_counts))

    def send(self, msg: Message, direction: Direction, full: Message | None = None) -> Message:
        """Serialize ``msg``, count its bytes, and return what the receiver decodes; when ``msg`` is only a part of
        ``full`` (``federation.send_changed``), the bytes not sent are counted in ``saved_by_round``."""
        data = encode(msg)
        self.bytes_by_round[msg.round][direction] += len(data)
        self.messages_by_round[msg.round][direction] += 1
        if full is not None and full is not msg:
            self.saved_by_round[msg.round][direction] += len(encode(full)) - len(data)
        return decode(data)

    def totals(self) -> dict[str, int]:
        return {d: sum(r[d] for r in self.bytes_by_round.values()) for d in ("up", "down")}
