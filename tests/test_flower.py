"""Flower as the distributed engine: the same protocol in separate processes gives the same run.

The deployment test starts a real SuperLink and two SuperNodes on localhost
(``fedcofit_lite.flower.deploy.LocalDeployment``) and submits the Flower App
with ``flwr run``:

1. the ci preset on SmolLM2 with two clients (real, non-empty answers; the
   random ci model answers only whitespace, which would make equal
   pseudo-labels trivial), compared with the in-process engine: the same
   pseudo-labels, test answers and wire bytes exactly, the same scores to
   ``rundiff.FLOAT_RTOL`` (tests/rundiff.py). The in-process run batches generation per client
   (``generation.adapter_batches = per_adapter``, as each Flower client
   batches its own prompts), trains each client in its own steps
   (``train.together = false``, as each Flower client trains alone) and every
   process runs one torch thread: with
   another thread count a near-tied greedy token flipped one test answer of
   36 on an Intel Xeon. Floats of separate processes may still differ in
   their last digits;
2. in the same deployment run, a second round in which client1's SuperNode
   is killed (SIGKILL) while it answers: the SuperLink reports the node
   unavailable (after two missed heartbeats, about 60 s), the round goes on
   with the other client under ``federation.min_clients = 1``, and the run
   finishes. One run of two rounds instead of two runs: each Flower message
   starts a fresh ClientApp process per node (about 5 s of imports), and a
   one-round deployment run took about 100 s and 166 CPU-seconds on 2 cores.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from rundiff import compare_runs

from fedcofit_lite.config import load_config
from fedcofit_lite.federation.loop import run_federation

EQUAL = [
    "model.name=smollm2-135m",
    "generation.adapter_batches=per_adapter",
    "train.together=false",
    "federation.rounds=1",
    "federation.n_clients=2",
    "federation.min_clients=1",  # the round after a client's death goes on with the other
]


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_black_box_clients_answer_in_consensus_and_fedavg_refuses_them_by_name(
    tmp_path, answering, labels_kept_and_trained
):
    from fedcofit_lite.federation.cohort import BlackBoxClientError
    from fedcofit_lite.tasks.data import build_suite

    # client0 trains (answering model), client2 answers with its frozen base, client1 is a callable that says 42
    cfg = load_config("ci", [*answering, "federation.black_box_clients=[2]", "federation.rounds=1"])
    seen = []

    def oracle(prompts):
        seen.extend(prompts)
        return [("42", 0.9) for _ in prompts]

    result = run_federation(cfg, run_dir=tmp_path / "bb", progress=False, answerers={"client1": oracle})
    answers = [json.loads(line) for line in (tmp_path / "bb" / "answers" / "round_1.jsonl").read_text().splitlines()]
    by_client = {
        c: {a["prompt_id"]: a["answer"] for a in answers if a["client"] == c} for c in ("client0", "client1", "client2")
    }
    assert set(by_client["client1"].values()) == {"42"}  # the callable answered every public prompt
    suite = build_suite(cfg)
    assert len(seen) == len(suite.public) + 3 * len(
        suite.test
    )  # the public prompts once, the test set at base, local, round 1
    rows = _rows(tmp_path / "bb")
    assert set(rows[1]["train_loss"]) == {"client0"}  # only the one trainable client trained
    partition = json.loads((tmp_path / "bb" / "partition.json").read_text())
    assert partition["client2"]["black_box"] and partition["client1"]["model"] == "black-box"
    # where the trained client and the frozen base say the same, two agreeing clients outvote the callable
    agreed = {p: a for p, a in by_client["client0"].items() if a.strip() and a == by_client["client2"][p]}
    assert len(agreed) >= cfg.data.n_public // 2
    labels = {
        x["prompt_id"]: x
        for x in map(json.loads, (tmp_path / "bb/pseudo_labels/round_1.jsonl").read_text().splitlines())
    }
    assert all(labels[p]["kept"] and labels[p]["consensus"] == a for p, a in agreed.items())
    assert labels_kept_and_trained(tmp_path / "bb") == {1: result.metrics[-1]["kept"]}  # client0 trained on them
    with pytest.raises(BlackBoxClientError, match="client1, client2 only answer"):
        run_federation(cfg, run_dir=tmp_path / "fa", progress=False, method="fedavg", answerers={"client1": oracle})


@pytest.mark.slow
def test_flower_deployment_equals_in_process_and_a_killed_client_is_a_dropout(
    tmp_path, monkeypatch, extra_overrides, labels_kept_and_trained
):
    import threading

    from rundiff import differences

    from fedcofit_lite.flower.deploy import LocalDeployment
    from fedcofit_lite.flower.server_app import read_flower_record

    trace = tmp_path / "trace"
    trace.mkdir()
    monkeypatch.setenv("FEDCOFIT_FLOWER_TRACE", str(trace))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(
        1
    )  # as each client: another thread count flips near-tied greedy tokens (seen: 1 answer of 36)
    try:
        local = run_federation(load_config("ci", EQUAL), run_dir=tmp_path / "inproc", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert set(labels_kept_and_trained(local.run_dir)) == {1}

    # One deployment run of two rounds: round 1 is compared with the in-process run; client1's SuperNode is
    # killed (SIGKILL, with its ClientApp) as soon as it starts answering round 2, as a crash would.
    killed = {}

    def kill_when_answering(deployment: LocalDeployment) -> None:
        marker = trace / "1-answer-2"
        end = time.monotonic() + 600
        while not marker.exists() and time.monotonic() < end:
            time.sleep(0.1)
        if marker.exists():
            deployment.kill_node(1)
            killed["at"] = time.monotonic()

    flower_dir = tmp_path / "flower"
    with LocalDeployment(2, client_threads=1, home=tmp_path / "flwr") as deployment:
        watcher = threading.Thread(target=kill_when_answering, args=(deployment,), daemon=True)
        watcher.start()
        # the ServerApp and ClientApps are other processes: they get FEDCOFIT_TEST_SET's overrides with --set
        status = deployment.run(
            "ci", [*extra_overrides, *EQUAL, "federation.rounds=2"], run_dir=flower_dir, timeout=900
        )
        watcher.join(timeout=5)
    assert not any(p.poll() is None for p in deployment.procs.values())
    assert status["status"] == "finished:completed"

    # round 1: the engines agree, on runs whose clients trained on labels (round 2: client0 on its own answers)
    assert set(labels_kept_and_trained(flower_dir)) == {1, 2}
    files = ["pseudo_labels/round_1.jsonl", *(f"predictions/{s}.jsonl" for s in ("base", "local", "round_1"))]
    assert compare_runs(local.run_dir, flower_dir, files) == [], "the engines disagree"
    kept = [json.loads(line) for line in (flower_dir / "pseudo_labels/round_1.jsonl").read_text().splitlines()]
    assert sum(r["kept"] for r in kept) > 0 and len({r["consensus"] for r in kept}) > 3  # real, varied labels
    same = ["stage", "test", "test_per_client", "bytes_up", "bytes_down", "kept", "train_steps"]
    rows, flower_rows = _rows(local.run_dir), _rows(flower_dir)
    assert [r["stage"] for r in flower_rows] == ["base", "local", "round_1", "round_2"]

    def fields(some: list[dict]) -> list[dict]:
        return [{k: r[k] for k in same if k in r} for r in some]

    assert differences(fields(rows), fields(flower_rows[: len(rows)])) == []  # base, local, round 1
    record = read_flower_record(flower_dir)
    assert set(record["nodes"]) == {"client0", "client1"}
    assert record["wire_bytes_by_round"]["1"] == {"up": rows[-1]["bytes_up"], "down": rows[-1]["bytes_down"]}

    # round 2: client1 is a dropout, named with Flower's reason; the round goes on with client0 and finishes
    assert "at" in killed, "the SuperNode of client1 never started answering round 2"
    why = flower_rows[3]["dropped_clients"]
    assert "client1" in why and ("node" in why["client1"] or "offline" in why["client1"]), why
    assert set(flower_rows[3]["client_answer_accuracy"]) == {"client0"}
    assert set(flower_rows[3]["test_per_client"]) == {"client0"}  # it is not scored either
    assert (flower_dir / "summary.json").exists()


def test_the_client_app_holds_one_client_that_answers_trains_and_uploads_as_in_process():
    """The ClientApp's handlers drive the same Client class as the in-process cohort, with the same results."""
    import numpy as np
    from flwr.app import ConfigRecord, Context, Message, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from fedcofit_lite.engine.embed import embed_texts
    from fedcofit_lite.engine.models import load_embedder
    from fedcofit_lite.federation.client import Client, TrainPlan
    from fedcofit_lite.federation.cohort import LocalCohort
    from fedcofit_lite.flower import client_app
    from fedcofit_lite.flower.records import adapter_from_records, answers_from_record, labels_to_record
    from fedcofit_lite.protocol.messages import PseudoLabelsMessage
    from fedcofit_lite.tasks.data import build_suite

    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 0  # what a SuperNode's process sets
    cfg = load_config("ci", ["federation.rounds=1"])
    context = Context(1, 7, {"partition-id": 1, "num-partitions": 3}, RecordDict(), {})

    def ask(kind: str, **content) -> RecordDict:
        handler = getattr(client_app, kind.split(".")[-1])
        return handler(Message(content=RecordDict(content), dst_node_id=7, message_type=kind), context).content

    ask("query.hello", run=ConfigRecord({"config": cfg.to_yaml()}))
    assert isinstance(client_app.node_for(context).client, Client)
    embedder = load_embedder(cfg.consensus.embedder, device="cpu")
    local = LocalCohort(cfg, build_suite(cfg), embed=lambda texts: embed_texts(embedder, texts, progress=False))
    asks = ["confidence", "closeness"]  # a competence rule's: the ClientApp measures closeness with its own embedder
    sent = answers_from_record(ask("query.answer", config=ConfigRecord({"round": 1, "asks": asks}))["answers"])
    assert set(sent.signals) == {"closeness"} and len(set(sent.signals["closeness"])) > 1 and sent.confidence
    assert sent == local.answer(1, ["client1"], asks).messages[0]
    labels = PseudoLabelsMessage(1, sent.prompt_ids[:3], sent.answers[:3], [1.0, 1.0, 0.5])
    plan = TrainPlan(1, labels=labels, pseudo_labels=True)
    got = ask("train", config=ConfigRecord({"round": 1, **plan.options()}), labels=labels_to_record(labels))["result"]
    (mine,) = local.train(1, ["client1"], plan)[0].values()
    assert (got["loss"], got["steps"]) == (mine.loss, mine.steps)
    up = adapter_from_records(ask("query.upload", config=ConfigRecord({"round": 1, "only-b": False})))
    (theirs,), _ = local.upload(1, ["client1"])
    assert all(np.array_equal(up.tensors[k], theirs.tensors[k]) for k in theirs.tensors)
    assert set(context.state) == {"run", "adapter", "memory"}  # what a fresh process restores the client from


def test_flower_refuses_simulated_colluders_before_touching_the_grid():
    from fedcofit_lite.flower.cohort import FlowerCohort

    cfg = load_config("ci", ["federation.behaviours=[honest,colluder,colluder]"])
    with pytest.raises(ValueError, match="colluders agree on their wrong answers through the simulator"):
        FlowerCohort(None, cfg)
