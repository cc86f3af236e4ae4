"""Measured bytes against the analytic model, for a run folder the package wrote.

The analytic model (:mod:`fedcofit_lite.analysis.costmodel`) counts payload; what crosses the
:class:`~fedcofit_lite.protocol.messages.Wire` adds framing, stated here exactly so the two can be
checked against each other. Consensus messages are canonical JSON: an answer costs its UTF-8 bytes
plus ``len(prompt_id) + 6`` (two quoted strings, two commas), a pseudo-label also its agreement and a
comma, a message the bytes of its empty form; JSON escaping of the answers is the only remaining
difference. Adapter messages are safetensors: raw bytes plus an 8-byte length and a JSON header
(:func:`~fedcofit_lite.protocol.messages.safetensors_overhead`), under 1% for real adapters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ..federation.methods import method_spec
from ..protocol.messages import AnswersMessage, PseudoLabelsMessage, encode
from ..runlog import read_answers, read_jsonl, read_pseudo_labels, read_records, rounds_of
from . import costmodel

ANSWER_FRAMING = 6  # '"id"' + ',' in prompt_ids and '"..."' + ',' in answers, beyond the id and answer bytes


def _json_framing(empty: Any, prompt_ids: Sequence[str], lists: int, numbers: float = 0.0) -> tuple[float, float]:
    """(bytes per message, mean bytes per item) of the JSON framing of a message (``empty``: its empty form) carrying
    ``prompt_ids`` and ``numbers`` bytes of other items; the last element of each of its ``lists`` has no comma."""
    per_item = (sum(len(p.encode()) + ANSWER_FRAMING for p in prompt_ids) + numbers) / max(1, len(prompt_ids))
    return float(len(encode(empty)) - (lists if prompt_ids else 0)), per_item


def _json_bytes(texts: Sequence[str], n_items: int, per_item: float, per_msg: float, n_clients: int) -> float:
    """The analytic bytes of ``n_clients`` messages of ``n_items`` texts (of ``texts``' mean UTF-8 size) each."""
    protocol = costmodel.Protocol(
        n_prompts=n_items,
        answer_tokens=max(sum(len(t.encode("utf-8")) for t in texts) / max(1, len(texts)), 1e-9),
        bytes_per_token=1,
        overhead_per_answer=per_item,
        overhead_per_message=per_msg,
        n_clients=n_clients,
    )
    any_arch = costmodel.Architecture("any", 1, 1, 1, 1, 1, 1, 1, True)  # consensus bytes do not depend on it
    return costmodel.round_bytes(any_arch, protocol)["consensus"]


def _consensus_rows(run: Path, metrics: list[dict[str, Any]], method: str) -> list[dict]:
    rows = []
    exchanged = set(rounds_of(run))  # a method may exchange answers in some rounds only
    for m in (m for m in metrics if m["round"] in exchanged):
        r = m["round"]
        answers, labels = read_answers(run, r), read_pseudo_labels(run, r)
        clients = list(dict.fromkeys(a.client for a in answers))
        prompts = list(dict.fromkeys(a.prompt_id for a in answers))
        per_msg, per_answer = _json_framing(AnswersMessage(r, clients[0], [], []), prompts, lists=2)
        # client ids may differ in length: correct the per-message framing by the mean id length
        per_msg += sum(len(c) for c in clients) / len(clients) - len(clients[0])
        if m.get("confidence_sent"):  # the confidence rule: each message also carries its list of confidences
            lists = [
                json.dumps([a.confidence for a in answers if a.client == c], separators=(",", ":")) for c in clients
            ]
            per_msg += sum(len(',"confidence":') + len(x) for x in lists) / len(clients)
        up = _json_bytes([a.answer for a in answers], len(prompts), per_answer, per_msg, len(clients))
        rows.append(_row(method, r, "up", m["bytes_up"], up))
        kept = [x for x in labels if x.kept]
        if kept:
            numbers = sum(len(json.dumps(round(float(x.agreement), 4))) + 1 for x in kept)  # each agreement, a comma
            empty = PseudoLabelsMessage(r, [], [], [])
            per_msg_d, per_label = _json_framing(empty, [x.prompt_id for x in kept], lists=3, numbers=numbers)
            down = _json_bytes([x.consensus for x in kept], len(kept), per_label, per_msg_d, len(clients))
            rows.append(_row(method, r, "down", m["bytes_down"], down))
    return rows


def _fedavg_rows(
    models_json: Path, cfg: dict[str, Any], metrics: list[dict[str, Any]], method: str, factors: str
) -> list[dict]:
    ((name, hf_config),) = read_records(models_json).items()  # one architecture: FedAvg refuses several
    arch = costmodel.Architecture.from_hf_config(hf_config, name=name)
    rank, targets = cfg["lora"]["r"], tuple(cfg["lora"]["target_modules"])
    params = costmodel.lora_parameters(arch, rank, targets, factors=factors)
    n_clients = cfg["federation"]["n_clients"]
    rows = []
    for m in (m for m in metrics if m["round"] >= 1):
        taking_part = n_clients - len(m.get("dropped_clients") or {})  # dropped clients send nothing
        for direction in ("up", "down"):
            # round 1 also broadcasts the shared start down
            messages = taking_part + (n_clients if direction == "down" and m["round"] == 1 else 0)
            analytic = messages * (params * 4 + costmodel.Protocol().overhead_per_message)
            rows.append(_row(method, m["round"], direction, m[f"bytes_{direction}"], analytic))
    return rows


def _row(method: str, r: int, direction: str, measured: int, analytic: float) -> dict[str, Any]:
    overhead = int(measured) - analytic
    row = {"method": method, "round": r, "direction": direction, "measured": int(measured), "analytic": float(analytic)}
    return {**row, "overhead": overhead, "relative": overhead / analytic if analytic else float("nan")}


def measured_vs_analytic(run_dir: str | Path) -> list[dict[str, Any]]:
    """Per round and direction: bytes counted on the wire vs the analytic model, for a ``run`` folder or a compare method folder.

    What is counted follows what the method sends (``MethodSpec.sends``); round 1 of a parameter method
    also carries the broadcast of the shared start. ``overhead`` is measured minus analytic.
    """
    run = Path(run_dir)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    metrics = read_jsonl(run / "metrics.jsonl")
    methods = {m.get("method") for m in metrics if m["round"] >= 1}
    method = (methods - {None, "shared"} or {cfg["federation"]["method"]}).pop()
    sends = getattr(method_spec(method), "sends", "nothing")
    if sends == "answers":
        return _consensus_rows(run, metrics, method)
    if sends in ("adapter", "adapter_b"):
        # a compare folder keeps models.json at its top, beside the method folders
        models_json = run / "models.json" if (run / "models.json").exists() else run.parent / "models.json"
        return _fedavg_rows(models_json, cfg, metrics, method, "B" if sends == "adapter_b" else "AB")
    return []
