"""The Flower ClientApp: one client of the federation, its model, its adapter and its data partition.

Each SuperNode is one client, named by its ``partition-id`` (node config; Flower's simulation sets it). It builds the
same suite and partition as every engine from the run's config (sent with the server's first message) and keeps its
own part and model: one :class:`~fedcofit_lite.federation.client.Client`, the class the in-process engine holds. Its
handlers (``query.hello``, ``query.start``, ``query.answer``, ``train``, ``query.upload``, ``evaluate``) call that
client. In deployment every message runs in a fresh process, so what the client remembers (its adapter,
:meth:`~fedcofit_lite.federation.client.Client.state`, the run's config) lives in Flower's ``context.state``.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from ..config import ConfigError, RunConfig, config_from_dict
from ..federation.client import Client, TrainPlan, answer_many
from ..federation.cohort import ClientInfo, answer_round, build_clients, client_seed, equip
from ..tasks.data import TaskSuite
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


@dataclass
class Node:
    """One SuperNode: the run's config and suite, its one client, and the adapter that client started from."""

    cfg: RunConfig
    suite: TaskSuite
    client: Client
    initial: dict  # the shared start (every adapter is seeded alike): FedAvg's initial global model

    @property
    def public(self) -> dict:
        return {e.id: e for e in self.suite.public}

    @functools.cached_property
    def embed(self) -> Any:
        """The run's public sentence embedder (texts -> unit vectors), loaded on first use: the competence signals'."""
        from ..engine.embed import embed_texts
        from ..engine.models import load_embedder

        model = load_embedder(self.cfg.consensus.embedder, device=self.cfg.model.device)
        return lambda texts: embed_texts(model, texts, progress=False)


_NODES: dict[tuple[str, int], Node] = {}  # (config, partition) -> its node (simulation reuses it)


def partition_of(context: Context) -> int:
    """This node's client index, from ``--node-config 'partition-id=N'`` (set by Flower's simulation)."""
    pid = context.node_config.get("partition-id")
    if pid is None:
        raise ConfigError(
            "this SuperNode has no partition id: start it with --node-config 'partition-id=N num-partitions=M'."
        )
    return int(pid)


def node_for(context: Context, config_yaml: str | None = None) -> Node:
    """This node's client, with its state (adapter, labels, answers, accountant) restored from ``context.state``."""
    if config_yaml is not None:
        context.state["run"] = ConfigRecord({"config": config_yaml})
    if "run" not in context.state:
        raise ConfigError("this client has not been introduced to a run (no query.hello message yet).")
    key = (str(context.state["run"]["config"]), partition_of(context))
    if key not in _NODES:
        _NODES[key] = _new_node(context, *key)
    node = _NODES[key]
    if node.client.trainable:
        state = context.state
        node.client.model.set_tensors(tensors_from_record(state["adapter"]) if "adapter" in state else node.initial)
    node.client.load_state(json.loads(str(context.state["memory"]["json"])) if "memory" in context.state else {})
    return node


def _new_node(context: Context, config_yaml: str, pid: int) -> Node:
    import torch
    import yaml

    from ..tasks.data import build_suite

    if os.environ.get("FEDCOFIT_CLIENT_THREADS"):
        torch.set_num_threads(int(os.environ["FEDCOFIT_CLIENT_THREADS"]))
    cfg = config_from_dict(yaml.safe_load(config_yaml))
    n, given = cfg.federation.n_clients, context.node_config.get("num-partitions")
    if given is not None and int(given) != n:
        raise ConfigError(f"num-partitions = {given} on this SuperNode but federation.n_clients = {n}.")
    if not 0 <= pid < n:
        raise ConfigError(f"partition-id = {pid}: must be in [0, federation.n_clients = {n}).")
    suite = build_suite(cfg)
    client = build_clients(cfg, suite)[pid]
    equip([client], cfg)
    return Node(cfg, suite, client, client.model.get_tensors() if client.trainable else {})


def _save(node: Node, state: RecordDict) -> None:
    if node.client.trainable:
        state["adapter"] = tensors_to_record(node.client.model.get_tensors())
    state["memory"] = ConfigRecord({"json": json.dumps(node.client.state(), ensure_ascii=False)})


def _trace(context: Context, what: str, msg: Message) -> None:
    """With ``$FEDCOFIT_FLOWER_TRACE`` set (tests), mark ``<partition>-<what>-<round>`` there when a message arrives."""
    folder = os.environ.get("FEDCOFIT_FLOWER_TRACE")
    if folder:
        cfg = msg.content["config"] if "config" in msg.content else {}
        name = f"{context.node_config.get('partition-id', 'x')}-{what}-{cfg.get('round', '-')}"
        with open(os.path.join(folder, name), "w") as f:
            f.write(str(os.getpid()))


def _receive(context: Context, what: str, msg: Message) -> tuple[Node, Any]:
    """What every round handler starts with: the trace mark, this node, the message's config record."""
    _trace(context, what, msg)
    return node_for(context), msg.content["config"]


def _reply(msg: Message, records: dict[str, Any]) -> Message:
    return Message(RecordDict(records), reply_to=msg)


@app.query("hello")
def hello(msg: Message, context: Context) -> Message:
    _trace(context, "hello", msg)
    node = node_for(context, str(msg.content["run"]["config"]))
    _save(node, context.state)
    return _reply(msg, {"info": info_to_record(ClientInfo.of(node.client))})


@app.query("start")
def start(msg: Message, context: Context) -> Message:
    _trace(context, "start", msg)
    return _reply(msg, {"start": tensors_to_record(node_for(context).initial)})


@app.query("answer")
def answer(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "answer", msg)
    asks = [str(a) for a in cfg["asks"]]
    embed = node.embed if any(a != "confidence" for a in asks) else None  # a competence signal: the public embedder
    got = answer_round([node.client], node.public, node.cfg, int(cfg["round"]), asks, embed=embed)
    _save(node, context.state)
    return _reply(msg, {"answers": answers_to_record(got.messages[0])})


@app.train()
def train(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "train", msg)
    labels = labels_from_record(msg.content["labels"]) if "labels" in msg.content else None
    adapter = global_from_records(msg.content) if "global" in msg.content else None
    options = {k: cfg[k] for k in ("epochs", "partial", "pseudo_labels", "prox_mu", "freeze_a")}  # TrainPlan.options()
    plan = TrainPlan(labels=labels, adapter=adapter, **options)
    client = node.client
    client.take(plan, node.public)
    result = client.fit(plan, client_seed(node.cfg.seed, int(cfg["round"]), client.index))
    _save(node, context.state)
    metrics: dict[str, Any] = {"loss": float(result.loss), "steps": int(result.steps)} if result else {}
    if client.accountant is not None:
        metrics["epsilon"] = float(client.epsilon(node.cfg.train.dp_delta))
    return _reply(msg, {"result": MetricRecord(metrics)})


@app.query("upload")
def upload(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "upload", msg)
    sent = node.client.upload(int(cfg["round"]), bool(cfg["only-b"]), node.cfg.seed)
    return _reply(msg, dict(adapter_to_records(sent).items()))


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    node, cfg = _receive(context, "evaluate", msg)
    client = node.client.frozen() if bool(cfg["base"]) else node.client
    answered = answer_many([client], node.suite.test, node.cfg.generation, seed=0, desc=f"eval {cfg['stage']}")
    return _reply(msg, {"predictions": ConfigRecord({"answers": list(answered[client.client_id][0])})})
