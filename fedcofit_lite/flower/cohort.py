"""The clients as Flower nodes: the :class:`~fedcofit_lite.federation.cohort.Cohort` a method talks to, over a Flower
``Grid``.

Each request of a method (answer, train, upload, predict) becomes one Flower message per client, its replies awaited
up to ``federation.timeout_s``. A client whose node is offline, whose ClientApp fails, or that does not reply in time
is reported in ``failed`` (client id -> why): the method counts it as a dropout, like a simulated one in process.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
from flwr.app import ConfigRecord, Message, MessageType, RecordDict

from ..config import ConfigError, RunConfig
from ..federation.cohort import Answers, ClientInfo, Cohort, Failed, Predicted, TrainPlan, TrainResult
from ..protocol.messages import AdapterMessage
from ..tasks.data import Example
from .records import (
    adapter_from_records,
    answers_from_record,
    global_to_records,
    info_from_record,
    labels_to_record,
    record_bytes,
    tensors_from_record,
)

log = logging.getLogger(__name__)

ERROR_NAMES = {  # Flower's error codes
    0: "unknown error",
    1: "the ClientApp could not be loaded",
    2: "the ClientApp raised an exception",
    3: "message unavailable",
    4: "reply unavailable",
    5: "node unavailable (no heartbeat)",
    6: "a mod refused the message",
    7: "invalid app bundle",
    8: "the ClientApp crashed",
}


def refuse_unsupported(cfg: RunConfig) -> None:
    """Refuse, before any node starts, a configuration this engine does not run (a ``ConfigError`` naming the fix)."""
    if cfg.federation.send_changed:
        raise ConfigError(
            "federation.send_changed = true: a client sends only its changed answers when it knows which ones the "
            "server holds, which the in-process engine tracks and the Flower engine does not: set "
            "federation.send_changed=false, or run it in process (python -m fedcofit_lite run / compare / sweep)."
        )


class NotEnoughNodesError(RuntimeError):
    """Fewer SuperNodes came online than the run has clients."""


class FlowerCohort(Cohort):
    """The federation's clients as Flower SuperNodes, one client per node (its ``partition-id``).

    On creation it waits (up to ``wait_s``) for ``federation.n_clients`` nodes, introduces the run to each
    (``query.hello``: the resolved config) and learns who is who (:class:`ClientInfo`). ``record_bytes_by_round``
    counts what Flower's own records carried per round and direction, beside the package's wire bytes.
    """

    def __init__(self, grid: Any, cfg: RunConfig, wait_s: float = 300.0) -> None:
        refuse_unsupported(cfg)
        if "colluder" in cfg.federation.behaviours:
            why = "separate client processes do not share; run them in process (python -m fedcofit_lite run)"
            raise ValueError(
                f"federation.behaviours: simulated colluders agree on their wrong answers through the simulator, which {why}."
            )
        self.grid, self.cfg, self.timeout = grid, cfg, float(cfg.federation.timeout_s)
        self.record_bytes_by_round: dict[int, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
        self.epsilon: dict[str, float] = {}
        self.poll_s = 0.2  # the server's pull interval (a SuperNode polls the SuperLink every few seconds on its own)
        nodes = self._wait_for_nodes(cfg.federation.n_clients, wait_s)
        hello = RecordDict({"run": ConfigRecord({"config": cfg.to_yaml()})})
        timeout = max(self.timeout, wait_s)
        replies, failed = self._exchange({n: hello for n in nodes}, MessageType.QUERY + ".hello", None, timeout)
        if failed:
            raise NotEnoughNodesError(f"SuperNodes {sorted(failed)} did not take part in the run: {failed}")
        infos = {n: info_from_record(r["info"]) for n, r in replies.items()}
        by_index: dict[int, int] = {}
        for n, i in infos.items():
            if i.index in by_index:
                raise NotEnoughNodesError(
                    f"two SuperNodes ({by_index[i.index]}, {n}) say partition-id={i.index}: give each its own partition."
                )
            by_index[i.index] = n
        missing = sorted(set(range(cfg.federation.n_clients)) - set(by_index))
        if missing:
            raise NotEnoughNodesError(
                f"no SuperNode holds partition-id {missing}: start one per client (--node-config 'partition-id=N')."
            )
        self.node = {infos[n].client_id: n for n in sorted(by_index.values(), key=lambda n: infos[n].index)}
        self.info: dict[str, ClientInfo] = {infos[n].client_id: infos[n] for n in self.node.values()}
        log.info("flower: %d clients on nodes %s", len(self.node), self.node)

    # -- transport ------------------------------------------------------------
    def _wait_for_nodes(self, n: int, wait_s: float) -> list[int]:
        deadline = time.monotonic() + wait_s
        while True:
            nodes = sorted(self.grid.get_node_ids())
            if len(nodes) >= n:
                return nodes
            if time.monotonic() > deadline:
                raise NotEnoughNodesError(
                    f"{len(nodes)} SuperNode(s) online after {wait_s:.0f} s, the run has federation.n_clients = {n}: "
                    f"start one SuperNode per client (see `python -m fedcofit_lite flower --help`)."
                )
            time.sleep(0.5)

    def _exchange(
        self, content: dict[int, RecordDict], message_type: str, round_index: int | None, timeout: float | None = None
    ) -> tuple[dict[int, RecordDict], dict[int, str]]:
        """Send one message per node and wait for the replies; returns (node -> reply content, node -> why it failed)."""
        online = set(self.grid.get_node_ids())
        failed = {n: "its node is offline" for n in content if n not in online}
        messages = {
            n: Message(content=c, dst_node_id=n, message_type=message_type) for n, c in content.items() if n in online
        }
        if round_index is not None:
            self.record_bytes_by_round[round_index]["down"] += sum(record_bytes(c) for c in content.values())
        by_id: dict[str, int] = {}
        replies: list[Message] = []
        if messages:
            ids = list(self.grid.push_messages(list(messages.values())))
            for n, mid in zip(list(messages), ids or [None] * len(messages)):
                if mid is None:
                    failed[n] = "the SuperLink refused the message (payload too large or malformed)"
                else:
                    by_id[mid] = n
            replies = self._pull(set(by_id), timeout or self.timeout)
        got: dict[int, RecordDict] = {}
        for reply in replies:
            n = by_id.get(reply.metadata.reply_to_message_id, reply.metadata.src_node_id)
            if reply.has_error():
                e = reply.error
                failed[n] = f"{ERROR_NAMES.get(e.code, 'error')} (Flower error {e.code}: {e.reason})"
            else:
                got[n] = reply.content
                if round_index is not None:
                    self.record_bytes_by_round[round_index]["up"] += record_bytes(reply.content)
        for n in by_id.values():
            if n not in got and n not in failed:
                failed[n] = f"no reply within federation.timeout_s = {timeout or self.timeout:.0f} s"
        return got, failed

    def _pull(self, ids: set[str], timeout: float) -> list[Message]:
        """Replies to the messages ``ids``, as they arrive, until all are in or ``timeout`` seconds have passed."""
        end = time.monotonic() + timeout
        out: list[Message] = []
        while ids:
            got = list(self.grid.pull_messages(set(ids)))
            out += got
            ids -= {m.metadata.reply_to_message_id for m in got}
            if not ids or time.monotonic() > end:
                break
            time.sleep(self.poll_s)
        return out

    def _ask(
        self,
        ids: Sequence[str],
        message_type: str,
        round_index: int | None,
        config: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, RecordDict], Failed]:
        """One message per client, its ``config`` led by the round (if any); (client -> reply, client -> why not)."""
        config = config if round_index is None else {"round": round_index, **config}
        content = {self.node[c]: RecordDict({"config": ConfigRecord(config), **(extra or {})}) for c in ids}
        got, failed = self._exchange(content, message_type, round_index)
        client_of = {n: c for c, n in self.node.items()}
        return {client_of[n]: r for n, r in got.items()}, {client_of[n]: why for n, why in failed.items()}

    # -- the cohort -------------------------------------------------------------
    def answer(self, round_index: int, ids: Sequence[str], asks: Sequence[str] = ()) -> Answers:
        got, failed = self._ask(ids, MessageType.QUERY + ".answer", round_index, {"asks": list(asks)})
        messages = [answers_from_record(got[c]["answers"]) for c in ids if c in got]
        confidence = {m.client_id: list(m.confidence) for m in messages if m.confidence is not None}
        return Answers(messages, confidence, failed, {m.client_id: dict(m.signals) for m in messages if m.signals})

    def train(self, round_index: int, ids: Sequence[str], plan: TrainPlan) -> tuple[dict[str, TrainResult], Failed]:
        extra: dict[str, Any] = {}
        if plan.labels is not None:
            extra["labels"] = labels_to_record(plan.labels)
        if plan.adapter is not None:
            extra.update(global_to_records(plan.adapter).items())
        got, failed = self._ask(ids, MessageType.TRAIN, round_index, plan.options(), extra)
        metrics = {c: got[c]["result"] for c in ids if c in got}
        self.epsilon |= {c: float(m["epsilon"]) for c, m in metrics.items() if "epsilon" in m}
        return {c: TrainResult(float(m["loss"]), int(m["steps"])) for c, m in metrics.items() if "steps" in m}, failed

    def upload(self, round_index: int, ids: Sequence[str], only_b: bool = False) -> tuple[list[AdapterMessage], Failed]:
        got, failed = self._ask(ids, MessageType.QUERY + ".upload", round_index, {"only-b": only_b})
        return [adapter_from_records(got[c]) for c in ids if c in got], failed

    def predict(self, ids: Sequence[str], examples: Sequence[Example], base: bool, desc: str) -> Predicted:
        unknown = [c for c in ids if c not in self.node]
        if unknown:
            raise ValueError(f"{unknown} are not clients: on Flower the server holds no model of its own to evaluate.")
        got, failed = self._ask(ids, MessageType.EVALUATE, None, {"base": base, "stage": desc})
        out = {c: list(r["predictions"]["answers"]) for c, r in got.items()}
        for c, answers in out.items():
            if len(answers) != len(examples):
                failed[c] = (
                    f"answered {len(answers)} test items of {len(examples)} (a different task suite on that node?)"
                )
        return {c: a for c, a in out.items() if c not in failed}, failed

    def start_adapter(self) -> dict[str, np.ndarray]:
        first = self.ids[0]
        got, failed = self._ask([first], MessageType.QUERY + ".start", None, {})
        if failed:
            raise RuntimeError(f"could not read the shared start adapter from {first}: {failed[first]}")
        return tensors_from_record(got[first]["start"])

    def privacy_spent(self, delta: float) -> dict[str, float]:
        return dict(self.epsilon)
