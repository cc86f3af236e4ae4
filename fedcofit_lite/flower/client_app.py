"""The Flower ClientApp: one client of the federation, owning its model, its adapter and its data partition.

Each SuperNode is one client, named by its ``partition-id`` (node config;
Flower's simulation sets it). The node builds the same task suite and
partition as every other engine from the run's config (sent by the server in
its first message) and keeps only its own part and its own model: a
:class:`~fedcofit_lite.federation.cohort.LocalCohort` of one client. The handlers turn
Flower messages into that cohort's calls:

=====================  ==========================================================
message type           what the client does
=====================  ==========================================================
``query.hello``        describe itself (:class:`~fedcofit_lite.federation.cohort.ClientInfo`)
``query.start``        send the adapter it starts from (FedAvg's initial model)
``query.answer``       answer the public prompts (an ``AnswersMessage``)
``train``              take pseudo-labels or a global adapter, then fine-tune
``query.upload``       send its adapter (an ``AdapterMessage``)
``evaluate``           answer the test set (scored by the server)
=====================  ==========================================================

In deployment every message runs in a fresh process, so what the client must
remember between messages (its adapter, pseudo-labels, last answers, DP
accountant, the run's config) lives in Flower's ``context.state``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ..config import ConfigError, config_from_dict
from ..engine.batching import TrainRecord
from ..federation.cohort import LocalCohort, TrainPlan
from .records import (
    adapter_to_records,
    answers_to_record,
    global_from_records,
    info_to_record,
    labels_from_record,
    tensors_from_record,
    tensors_to_record,
)

app = ClientApp()

_NODES: dict[
    tuple[str, int], tuple[LocalCohort, dict]
] = {}  # (config, partition) -> node, its initial adapter (simulation reuses it)


def partition_of(context: Context) -> int:
    """This node's client index, from ``--node-config 'partition-id=N'`` (set by Flower's simulation)."""
    pid = context.node_config.get("partition-id")
    if pid is None:
        raise ConfigError(
            "this SuperNode has no partition id: start it with --node-config 'partition-id=N num-partitions=M'."
        )
    return int(pid)


def node_for(context: Context, config_yaml: str | None = None) -> LocalCohort:
    """This node's one-client cohort, with its state (adapter, labels, answers, accountant) restored from ``context.state``."""
    import yaml

    if config_yaml is not None:
        context.state["run"] = ConfigRecord({"config": config_yaml})
    if "run" not in context.state:
        raise ConfigError("this client has not been introduced to a run (no query.hello message yet).")
    config_yaml = str(context.state["run"]["config"])
    pid = partition_of(context)
    key = (config_yaml, pid)
    if key not in _NODES:
        import torch

        from ..tasks.data import build_suite

        if os.environ.get("FEDCOFIT_CLIENT_THREADS"):
            torch.set_num_threads(int(os.environ["FEDCOFIT_CLIENT_THREADS"]))
        cfg = config_from_dict(yaml.safe_load(config_yaml))
        n = context.node_config.get("num-partitions")
        if n is not None and int(n) != cfg.federation.n_clients:
            raise ConfigError(
                f"num-partitions = {n} on this SuperNode but federation.n_clients = {cfg.federation.n_clients}."
            )
        if not 0 <= pid < cfg.federation.n_clients:
            raise ConfigError(
                f"partition-id = {pid}: must be in [0, federation.n_clients = {cfg.federation.n_clients})."
            )
        node = LocalCohort(cfg, build_suite(cfg), only=[pid])
        client = node.clients[0]
        _NODES[key] = (node, client.model.get_tensors() if client.trainable else {})
    node, initial = _NODES[key]
    _restore(node, context.state, initial)
    return node


def _restore(node: LocalCohort, state: RecordDict, initial: dict) -> None:
    client = node.clients[0]
    if client.trainable:
        client.model.set_tensors(tensors_from_record(state["adapter"]) if "adapter" in state else initial)
    memory = json.loads(str(state["memory"]["json"])) if "memory" in state else {}
    labels = memory.get("labels", {})
    client.restore_labels([TrainRecord(**r) for r in labels.values()], list(labels))
    client.own_answers = dict(memory.get("own_answers", {}))
    node.accountants = {}
    for a, history in memory.get("accountants", {}).items():
        node.accountant_of(a).history = [tuple(h) for h in history]


def _save(node: LocalCohort, state: RecordDict) -> None:
    client = node.clients[0]
    if client.trainable:
        state["adapter"] = tensors_to_record(client.model.get_tensors())
    memory = {
        "labels": {p: dataclasses.asdict(r) for p, r in client._labels.items()},
        "own_answers": client.own_answers,
        "accountants": {a: [list(h) for h in acc.history] for a, acc in node.accountants.items()},
    }
    state["memory"] = ConfigRecord({"json": json.dumps(memory, ensure_ascii=False)})


def _trace(context: Context, what: str, msg: Message) -> None:
    """With ``$FEDCOFIT_FLOWER_TRACE`` set (tests), mark ``<partition>-<what>-<round>`` there when a message arrives."""
    folder = os.environ.get("FEDCOFIT_FLOWER_TRACE")
    if folder:
        cfg = msg.content["config"] if "config" in msg.content else {}
        round_index = cfg.get("round", "-") if hasattr(cfg, "get") else "-"
        with open(
            os.path.join(folder, f"{context.node_config.get('partition-id', 'x')}-{what}-{round_index}"), "w"
        ) as f:
            f.write(str(os.getpid()))


def _receive(context: Context, what: str, msg: Message) -> tuple[Any, Any]:
    """What every round handler starts with: the trace mark, this node's cohort, the message's config record."""
    _trace(context, what, msg)
    return node_for(context), msg.content["config"]


def _reply(msg: Message, records: dict[str, Any]) -> Message:
    return Message(RecordDict(records), reply_to=msg)


@app.query("hello")
def hello(msg: Message, context: Context) -> Message:
    _trace(context, "hello", msg)
    node = node_for(context, str(msg.content["run"]["config"]))
    _save(node, context.state)
    return _reply(msg, {"info": info_to_record(node.info[node.clients[0].client_id])})


@app.query("start")
def start(msg: Message, context: Context) -> Message:
    _trace(context, "start", msg)
    node = node_for(context)
    return _reply(msg, {"start": tensors_to_record(node.start_adapter())})


@app.query("answer")
def answer(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "answer", msg)
    got = node.answer(int(cfg["round"]), [node.clients[0].client_id], bool(cfg["with-confidence"]))
    _save(node, context.state)
    return _reply(msg, {"answers": answers_to_record(got.messages[0])})


@app.train()
def train(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "train", msg)
    cid = node.clients[0].client_id
    results, _ = node.train(
        int(cfg["round"]),
        [cid],
        TrainPlan(
            labels=labels_from_record(msg.content["labels"]) if "labels" in msg.content else None,
            adapter=global_from_records(msg.content) if "global" in msg.content else None,
            **{k: cfg[k] for k in ("epochs", "partial", "pseudo_labels", "prox_mu", "freeze_a")},
        ),
    )
    _save(node, context.state)
    metrics: dict[str, Any] = {}
    if cid in results:
        metrics = {"loss": float(results[cid].loss), "steps": int(results[cid].steps)}
    spent = node.privacy_spent(node.cfg.train.dp_delta)
    if cid in spent:
        metrics["epsilon"] = float(spent[cid])
    return _reply(msg, {"result": MetricRecord(metrics)})


@app.query("upload")
def upload(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "upload", msg)
    (sent,), _ = node.upload(int(cfg["round"]), [node.clients[0].client_id], only_b=bool(cfg["only-b"]))
    return _reply(msg, dict(adapter_to_records(sent).items()))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "evaluate", msg)
    cid = node.clients[0].client_id
    answers, _ = node.predict([cid], node.suite.test, base=bool(cfg["base"]), desc=f"eval {cfg['stage']}")
    return _reply(msg, {"predictions": ConfigRecord({"answers": list(answers[cid])})})
