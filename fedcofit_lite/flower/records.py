"""The package's typed messages in Flower records, and back.

Text travels in ``ConfigRecord`` s, tensors in ``ArrayRecord`` s. The receiver rebuilds the same typed
message (:mod:`fedcofit_lite.protocol.messages`), which checks its fields, and the server counts its
bytes with the same ``Wire`` as in process, so both engines report the same numbers;
:func:`record_bytes` gives what Flower's own records hold, for comparison.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from ..federation.cohort import ClientInfo
from ..protocol.messages import AdapterMessage, AnswersMessage, GlobalAdapterMessage, MessageError, PseudoLabelsMessage


def answers_to_record(m: AnswersMessage) -> ConfigRecord:
    rec: dict[str, Any] = {
        "round": m.round,
        "client_id": m.client_id,
        "prompt_ids": list(m.prompt_ids),
        "answers": list(m.answers),
    }
    if m.confidence is not None:
        rec["confidence"] = [float(c) for c in m.confidence]
    rec |= {SIGNAL + name: [float(v) for v in values] for name, values in (m.signals or {}).items()}
    return ConfigRecord(rec)


SIGNAL = "signal:"  # a competence signal travels as its own list of floats, keyed by its name


def answers_from_record(rec: ConfigRecord) -> AnswersMessage:
    conf = rec.get("confidence")
    signals = {k.removeprefix(SIGNAL): [float(v) for v in rec[k]] for k in rec if k.startswith(SIGNAL)}
    confidence = [float(c) for c in conf] if conf is not None else None
    ids, answers = list(rec["prompt_ids"]), list(rec["answers"])
    return AnswersMessage(int(rec["round"]), str(rec["client_id"]), ids, answers, confidence, signals or None)


def labels_to_record(m: PseudoLabelsMessage) -> ConfigRecord:
    agreement = [float(a) for a in m.agreement]
    return ConfigRecord(
        {"round": m.round, "prompt_ids": list(m.prompt_ids), "answers": list(m.answers), "agreement": agreement}
    )


def labels_from_record(rec: ConfigRecord) -> PseudoLabelsMessage:
    agreement = [float(a) for a in rec["agreement"]]
    return PseudoLabelsMessage(int(rec["round"]), list(rec["prompt_ids"]), list(rec["answers"]), agreement)


def tensors_to_record(tensors: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(tensors[k])) for k in sorted(tensors)})


def tensors_from_record(rec: ArrayRecord) -> dict[str, np.ndarray]:
    return {k: np.asarray(v.numpy()) for k, v in rec.items()}


def adapter_to_records(m: AdapterMessage) -> RecordDict:
    meta = ConfigRecord({"round": m.round, "client_id": m.client_id, "n_examples": m.n_examples})
    return RecordDict({"adapter": tensors_to_record(m.tensors), "adapter-meta": meta})


def adapter_from_records(content: RecordDict) -> AdapterMessage:
    meta, tensors = content["adapter-meta"], tensors_from_record(content["adapter"])
    return AdapterMessage(int(meta["round"]), str(meta["client_id"]), int(meta["n_examples"]), tensors)


def global_to_records(m: GlobalAdapterMessage) -> RecordDict:
    return RecordDict({"global": tensors_to_record(m.tensors), "global-meta": ConfigRecord({"round": m.round})})


def global_from_records(content: RecordDict) -> GlobalAdapterMessage:
    return GlobalAdapterMessage(int(content["global-meta"]["round"]), tensors_from_record(content["global"]))


def info_to_record(info: ClientInfo) -> ConfigRecord:
    return ConfigRecord({"info": json.dumps(dataclasses.asdict(info), sort_keys=True)})


def info_from_record(rec: ConfigRecord) -> ClientInfo:
    try:
        return ClientInfo(**json.loads(rec["info"]))
    except (TypeError, KeyError, json.JSONDecodeError) as err:
        raise MessageError(f"client description is malformed: {err}") from None


def record_bytes(content: RecordDict) -> int:
    """Bytes of what Flower's records in ``content`` carry: keys and values, as ``count_bytes`` counts them (Flower
    1.42's ``ConfigRecord.count_bytes`` fails on an empty list, so config records are counted here the same way:
    UTF-8 text, raw bytes, 8 bytes per number, 1 per bool)."""
    total = 0
    for rec in content.values():
        if isinstance(rec, ArrayRecord):
            total += rec.count_bytes()
            continue
        for k, v in rec.items():
            total += len(k.encode("utf-8")) + sum(_value_bytes(x) for x in (v if isinstance(v, list) else [v]))
    return total


def _value_bytes(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode("utf-8"))
    return len(v) if isinstance(v, bytes) else 1 if isinstance(v, bool) else 8
