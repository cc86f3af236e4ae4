"""The in-process federated loop: wires clients, the wire and the servers together.

A run has these stages, each evaluated on the held-out test set:

``base``
    the frozen base model(s), no training;
``local``
    round 0: every client fine-tunes its adapter on its private data;
``round_R`` (R = 1..rounds)
    the method's exchange, then training. For semantic consensus
    (``federation.method = consensus``, the default):

    1. clients answer the public prompts (batched across clients);
    2. answers go up the wire as :class:`AnswersMessage` s;
    3. the server clusters them per prompt and sends the consensus down as a
       :class:`PseudoLabelsMessage`;
    4. clients train on private data + pseudo-labels.

    The baselines (FedAvg/FedProx over LoRA, local, centralized) are in
    :mod:`fedcofit_lite.methods`.

Only this module knows that everything runs in one process; the client,
servers and messages would run unchanged across machines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import transformers

from .client import Client, round_confidence
from .adversary import apply_behaviours
from .collect import GenerationRequest
from .config import RunConfig
from .consensus import rule_from_config
from .data import TaskSuite, build_suite, cap_per_client, partition, resolve_data_path  # noqa: F401 (re-exported)
from .embed import embed_texts
from .evaluate import correct, last_epoch_loss, mean_over_clients, score_answers
from .finetune import TrainRecord
from .messages import Wire
from .methods import Method, make_method
from .models import load_embedder
from .pool import ModelPool
from .runlog import RunLog, format_table, summary_rows
from .server import ConsensusServer

log = logging.getLogger(__name__)


class RoundFailedError(RuntimeError):
    """Too few clients took part in a round; the run folder keeps every finished round (resume later)."""


@dataclass
class RunResult:
    """What :func:`run_federation` returns; everything is also in ``run_dir``."""

    run_dir: Path
    metrics: list[dict[str, Any]]
    table: str
    extras: dict[str, Any] = field(default_factory=dict)


def build_clients(cfg: RunConfig, suite: TaskSuite) -> list[Client]:
    """Partition the private pool and make one :class:`Client` per part."""
    n = cfg.federation.n_clients
    parts = partition(suite.train, cfg.data.partition, n, alpha=cfg.data.dirichlet_alpha, seed=cfg.seed)
    if cfg.data.max_train_per_client:
        parts = cap_per_client(parts, cfg.data.max_train_per_client, seed=cfg.seed)
    return [Client(f"client{i}", cfg.model_of_client(i), list(part), policy=cfg.client) for i, part in enumerate(parts)]


def client_seed(seed: int, round_index: int, client_index: int) -> int:
    """Independent, reproducible seed per (run, round, client)."""
    return seed * 1_000_003 + round_index * 1_009 + client_index


class Federation:
    """One run's state: clients, model pool, servers, wire and run folder.

    Build it with a config, then call :meth:`run` (or the stages one by one, as
    the notebooks do). The compare command reuses one federation (one model
    load) for several methods through :meth:`start_method`.
    """

    def __init__(self, cfg: RunConfig, runlog: RunLog | None = None, progress: bool = True) -> None:
        self.cfg = cfg.validate()
        self.progress = progress
        transformers.set_seed(cfg.seed)
        self.runlog = runlog or RunLog.create(cfg)
        self.runlog.write_config(cfg)
        self.suite = build_suite(cfg)
        self.clients = build_clients(cfg, self.suite)
        self.runlog.write_json("partition.json", self._partition_record())
        self.public = {e.id: e for e in self.suite.public}
        self.pool = ModelPool({c.client_id: c.model_name for c in self.clients}, cfg.model, cfg.lora, seed=cfg.seed)
        self.runlog.write_json("models.json", self.pool.architectures())
        self.embedder = load_embedder(cfg.consensus.embedder, device=cfg.model.device)
        self.wire = Wire()
        self.server = self._consensus_server()
        self.metrics: list[dict[str, Any]] = []
        self.method_name = cfg.federation.method
        self.behaviours = {c.client_id: cfg.behaviour_of_client(i) for i, c in enumerate(self.clients)}
        self.accountants: dict[str, Any] = {}  # adapter id -> privacy accountant (DP-SGD only)
        self.global_start: dict[str, np.ndarray] | None = None  # the shared adapter start (parameter methods)
        self.resumable = True

    # -- pieces -----------------------------------------------------------

    def _consensus_server(self, rule: str | None = None) -> ConsensusServer:
        """The consensus server under ``rule`` (default ``consensus.rule``) with the run's clusterer and filters."""
        rule = rule or self.cfg.consensus.rule
        consensus = rule_from_config(self.cfg.consensus, rule)
        families = {e.id: e.family for e in self.suite.public}
        return ConsensusServer(list(self.public), self.embed, consensus, self.cfg.federation.max_answer_chars, families, rule)

    def embed(self, texts: list[str]) -> np.ndarray:
        return embed_texts(self.embedder, texts, progress=self.progress)

    def accountant_of(self, adapter_id: str) -> Any:
        """The adapter's privacy accountant when DP-SGD is on (one per client, across rounds), else None."""
        if self.cfg.train.dp_noise_multiplier <= 0:
            return None
        if adapter_id not in self.accountants:
            from .privacy import new_accountant

            self.accountants[adapter_id] = new_accountant()
        return self.accountants[adapter_id]

    def privacy_spent(self) -> dict[str, float]:
        """(epsilon at train.dp_delta) per adapter so far; empty without DP."""
        from .privacy import epsilon

        return {a: epsilon(acc, self.cfg.train.dp_delta) for a, acc in self.accountants.items()}

    def seed_of(self, round_index: int, client_index: int) -> int:
        return client_seed(self.cfg.seed, round_index, client_index)

    @staticmethod
    def timer() -> _Timer:
        return _Timer()

    def _partition_record(self) -> dict[str, Any]:
        return {
            c.client_id: {
                "model": c.model_name,
                "n_examples": len(c.private),
                "families": dict(sorted(Counter(e.family for e in c.private).items())),
                "example_ids": [e.id for e in c.private],
            }
            for c in self.clients
        }

    def evaluate(
        self, stage: str, use_base: bool = False, adapters: list[str] | None = None, tag: str = ""
    ) -> tuple[dict, dict]:
        """Answer the test set with each adapter (default: every client's) or the base; return (mean, per-adapter) scores.

        The answers go to ``predictions/<stage><tag>.jsonl`` (``tag="_global"``: the server's global model).
        """
        test = self.suite.test
        adapters = adapters or [c.client_id for c in self.clients]
        requests: list[GenerationRequest] = []
        for a in adapters:
            for e in test:
                if use_base:
                    requests.append(self.pool.base_request(self.pool.client_models[a], e.instruction, e.context))
                else:
                    requests.append(GenerationRequest(a, e.instruction, e.context))
        if use_base:  # clients of one architecture share the base: answer once per architecture
            unique = {r: None for r in requests}
            answers_unique = dict(zip(unique, self.pool.generate(list(unique), self.cfg.generation, desc=f"eval {stage}")))
            answers = [answers_unique[r] for r in requests]
        else:
            answers = self.pool.generate(requests, self.cfg.generation, desc=f"eval {stage}")
        embed_fn = self.embed if self.cfg.eval.embedding_similarity else None
        per_adapter, records = {}, []
        for k, a in enumerate(adapters):
            preds = answers[k * len(test) : (k + 1) * len(test)]
            per_adapter[a] = score_answers(preds, [e.response for e in test], [e.family for e in test], embed_fn)
            records += [
                {"client": a, "id": e.id, "family": e.family, "prediction": p, "reference": e.response}
                for e, p in zip(test, preds)
            ]
        self.runlog.write_jsonl(f"predictions/{stage}{tag}.jsonl", records)
        return mean_over_clients(list(per_adapter.values())), per_adapter

    def train_clients(
        self,
        round_index: int,
        epochs: int,
        prox_mu: float = 0.0,
        clients: list[Client] | None = None,
        pseudo_labels: bool = False,
        freeze_a: bool = False,
    ) -> dict[str, Any]:
        """Each client (default: all) trains on its private data (+ its pseudo-labels if asked).

        Returns the metrics of the training: ``train_loss`` (last-epoch mean
        loss) and ``train_steps`` (optimizer steps), per client.
        """
        losses, steps = {}, {}
        active = {c.client_id for c in (clients if clients is not None else self.clients)}
        for i, c in enumerate(self.clients):
            if c.client_id not in active:
                continue
            step_losses = self.pool.train(
                c.client_id, c.training_records() if pseudo_labels else c.private_records(), self.cfg.train, epochs, self.seed_of(round_index, i), prox_mu,
                accountant=self.accountant_of(c.client_id), freeze_a=freeze_a,
            )
            losses[c.client_id] = last_epoch_loss(step_losses, epochs)
            steps[c.client_id] = len(step_losses)
        return {"train_loss": losses, "train_steps": steps}

    def active_clients(self, round_index: int) -> tuple[list[Client], dict[str, str]]:
        """Clients taking part in a round, and the dropped ones with why (``federation.dropout`` simulates faults)."""
        p = self.cfg.federation.dropout
        if p <= 0:
            return list(self.clients), {}
        rng = np.random.default_rng([self.cfg.seed, round_index, 0xD50])  # same drops for the same seed and round
        drop = rng.random(len(self.clients)) < p
        return [c for c, d in zip(self.clients, drop) if not d], {c.client_id: "dropped out (simulated fault)" for c, d in zip(self.clients, drop) if d}

    def require_clients(self, round_index: int, accepted: list[str], left_out: dict[str, str]) -> None:
        """Fail the round cleanly when fewer than ``federation.min_clients`` took part."""
        need = self.cfg.federation.min_clients
        if len(accepted) < need:
            how = (
                f"Every earlier round is saved in {self.runlog.dir}; fix the cause (or lower federation.min_clients / "
                f"federation.dropout with --set) and continue with `python -m fedcofit_lite run --resume {self.runlog.dir}`."
                if self.resumable
                else "This comparison cannot be resumed: fix the cause and run it again into a new --run-dir."
            )
            raise RoundFailedError(
                f"round {round_index}: only {len(accepted)} client(s) took part ({accepted}); "
                f"federation.min_clients = {need}. Left out: {left_out}. {how}"
            )

    def collect_answers(self, round_index: int, clients: list[Client] | None = None) -> list:
        """Every (active) client answers every public prompt (one batched pass); returns the messages sent up."""
        clients = self.clients if clients is None else clients
        prompt_ids = list(self.public)
        requests = [
            GenerationRequest(c.client_id, self.public[p].instruction, self.public[p].context)
            for c in clients
            for p in prompt_ids
        ]
        answers, confidence = self.pool.answer(
            requests, self.cfg.generation, seed=self.cfg.seed + round_index, desc=f"answer r{round_index}"
        )
        n = len(prompt_ids)
        honest = {c.client_id: answers[k * n : (k + 1) * n] for k, c in enumerate(clients)}
        conf = {c.client_id: confidence[k * n : (k + 1) * n] for k, c in enumerate(clients)}
        if self.cfg.federation.behaviours:  # simulated bad clients replace their answers before sending
            instructions = {p: self.public[p].instruction for p in prompt_ids}
            honest = apply_behaviours(self.behaviours, honest, prompt_ids, instructions, self.cfg.seed, round_index)
            for cid, how in self.behaviours.items():
                if how != "honest" and cid in conf:  # a bad client claims full confidence
                    conf[cid] = [1.0] * n
        send_confidence = self.server.needs_confidence
        sent = [
            c.answers_message(round_index, prompt_ids, honest[c.client_id], conf[c.client_id] if send_confidence else None)
            for c in clients
        ]
        self.runlog.write_jsonl(  # the simulation's record: confidences kept even when not sent, for replay
            f"answers/round_{round_index}.jsonl",
            [
                {"round": round_index, "client": m.client_id, "prompt_id": p, "answer": a, "confidence": round_confidence(k)}
                for m in sent
                for p, a, k in zip(m.prompt_ids, m.answers, conf[m.client_id])
            ],
        )
        return [self.wire.send(m, "up") for m in sent]

    def consensus_round(self, round_index: int) -> dict[str, Any]:
        """Steps 1-4 of a consensus round; returns this round's metrics (without test scores)."""
        timer = _Timer()
        active, dropped = self.active_clients(round_index)
        with timer("generate"):
            received = self.collect_answers(round_index, active) if active else []
        with timer("server"):
            accepted = [m.client_id for m in received if self.server.check(m, round_index) is None]
            self.require_clients(round_index, accepted, {**dropped, **{m.client_id: "rejected" for m in received if m.client_id not in accepted}})
            pseudo, report = self.server.aggregate(round_index, received)
        if report.vectors is not None:  # the server's embeddings, so replay needs no model
            (self.runlog.dir / "embeddings").mkdir(exist_ok=True)
            np.savez_compressed(
                self.runlog.dir / "embeddings" / f"round_{round_index}.npz",
                vectors=report.vectors.astype(np.float16),
                clients=np.array(report.row_clients),
                prompt_ids=np.array(report.row_prompts),
            )
        refs = self.suite.public_references  # held by the evaluator only
        family = {e.id: e.family for e in self.suite.public}
        records = report.records()
        for rec in records:
            rec["correct"] = correct(rec["consensus"], refs[rec["prompt_id"]], family[rec["prompt_id"]])
        self.runlog.write_jsonl(f"pseudo_labels/round_{round_index}.jsonl", records)
        for c in active:
            c.receive(self.wire.send(pseudo, "down"), self.public)
        with timer("train"):
            trained = self.train_clients(round_index, self.cfg.train.round_epochs, clients=active, pseudo_labels=True)
        kept = [r for r in records if r["kept"]]
        client_acc = {
            m.client_id: float(np.mean([correct(a, refs[p], family[p]) for p, a in zip(m.prompt_ids, m.answers)])) for m in received
        }
        return {
            "pseudo_label_accuracy": float(np.mean([r["correct"] for r in kept])) if kept else None,
            "consensus_accuracy_all_prompts": float(np.mean([r["correct"] for r in records])),
            "client_answer_accuracy": client_acc,
            "agreement_mean": float(np.mean(report.agreement)),
            "kept": len(kept),
            "n_prompts": len(records),
            "rejected_clients": report.rejected,
            "dropped_clients": dropped,
            "rule": self.server.rule,
            "confidence_sent": self.server.needs_confidence,
            **trained,
            "seconds": timer.seconds,
        }

    def record(
        self,
        stage: str,
        round_index: int,
        row: dict[str, Any],
        use_base: bool = False,
        adapters: list[str] | None = None,
        global_adapter: str | None = None,
    ) -> dict[str, Any]:
        """Evaluate (the clients' models, and the server's global model when there is one), add bytes, write the row."""
        timer = _Timer(row.pop("seconds", {}))
        global_scores = {}
        if self.cfg.eval.every_round or stage in ("base", "local") or round_index == self.cfg.federation.rounds:
            with timer("eval"):
                mean, per_adapter = self.evaluate(stage, use_base=use_base, adapters=adapters)
                if global_adapter is not None:
                    global_scores["test_global"] = self.evaluate(stage, adapters=[global_adapter], tag="_global")[0]
            per_adapter = {c: s["all"] for c, s in per_adapter.items()}
        else:
            mean, per_adapter = self.metrics[-1]["test"], self.metrics[-1]["test_per_client"]
        wire_bytes = self.wire.bytes_by_round.get(round_index, {"up": 0, "down": 0})
        full = {
            "stage": stage,
            "round": round_index,
            "method": self.method_name,
            "test": mean,
            "test_per_client": per_adapter,
            **global_scores,
            "bytes_up": wire_bytes["up"],
            "bytes_down": wire_bytes["down"],
            **({"dp_epsilon": self.privacy_spent(), "dp_delta": self.cfg.train.dp_delta} if self.accountants else {}),
            **row,
            "seconds": timer.seconds,
        }
        self.metrics.append(full)
        self.runlog.append_metrics(full)
        log.info("%s %s: test exact match %.3f", full["method"], stage, mean["all"]["exact_match"])
        return full

    # -- the whole protocol -----------------------------------------------

    def run_base(self) -> dict[str, Any]:
        """Score the untrained base model(s) (stage ``base``)."""
        return self.record("base", -1, {}, use_base=True)

    def run_local_stage(self, method: Method) -> dict[str, Any]:
        """Round 0 of ``method`` (stage ``local``)."""
        timer = _Timer()
        with timer("train"):
            row = method.local_stage(self)
        return self.record("local", 0, {**row, "seconds": timer.seconds}, adapters=method.evaluated(self))

    def run_rounds(self, method: Method, start: int = 1, checkpoint: bool = False) -> None:
        """Rounds ``start``..R of ``method`` (stages ``round_R``), with a checkpoint after each if asked."""
        for r in range(start, self.cfg.federation.rounds + 1):
            log.info("%s round %d/%d", method.name, r, self.cfg.federation.rounds)
            row = method.round(self, r)
            self.record(f"round_{r}", r, row, adapters=method.evaluated(self), global_adapter=method.global_adapter(self))
            if checkpoint:
                self.save_checkpoint(r)

    # -- checkpoints: resume an interrupted run -------------------------------

    def save_checkpoint(self, round_index: int) -> None:
        """Write what round ``round_index`` left behind (adapters, pseudo-labels, byte counts), atomically.

        Adapters are safetensors and the state is JSON: nothing in a run
        folder is ever unpickled. Only the latest checkpoint is kept.
        """
        import shutil

        import safetensors.numpy

        final = self.runlog.dir / "checkpoint"
        tmp = self.runlog.dir / ".checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "adapters").mkdir(parents=True)
        for adapter_id in self.pool.client_models:
            safetensors.numpy.save_file(self.pool.get_tensors(adapter_id), str(tmp / "adapters" / f"{adapter_id}.safetensors"))
        state = {
            "round": round_index,
            "method": self.method_name,
            "pseudo_labels": {c.client_id: {p: dataclasses.asdict(r) for p, r in c._labels.items()} for c in self.clients},
            "bytes_by_round": {str(k): v for k, v in self.wire.bytes_by_round.items()},
            "messages_by_round": {str(k): v for k, v in self.wire.messages_by_round.items()},
            "accountants": {a: [list(h) for h in acc.history] for a, acc in self.accountants.items()},
        }
        (tmp / "state.json").write_text(json.dumps(state, ensure_ascii=False))
        old = self.runlog.dir / ".checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)  # a crash leaves either the old or the new checkpoint, never half of one
        shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self) -> int:
        """Restore the latest checkpoint of this run folder; return its round (-1 when there is none)."""
        import safetensors.numpy

        folder = self.runlog.dir / "checkpoint"
        if not (folder / "state.json").exists():
            return -1
        state = json.loads((folder / "state.json").read_text())
        if state.get("method", self.method_name) != self.method_name:
            raise ValueError(
                f"{folder} is a checkpoint of method {state['method']!r} but the run's config says "
                f"{self.method_name!r}: set federation.method={state['method']} in {self.runlog.dir / 'config.yaml'}."
            )
        for path in sorted((folder / "adapters").glob("*.safetensors")):
            if path.stem in self.pool.client_models:
                self.pool.set_tensors(path.stem, safetensors.numpy.load_file(str(path)))
        for c in self.clients:
            saved = state["pseudo_labels"].get(c.client_id, [])
            if isinstance(saved, dict):  # prompt id -> label
                c.restore_labels([TrainRecord(**r) for r in saved.values()], list(saved))
            else:  # checkpoints written before labels were keyed by prompt
                c.restore_labels([TrainRecord(**r) for r in saved])
        for k, v in state["bytes_by_round"].items():
            self.wire.bytes_by_round[int(k)] = dict(v)
        for k, v in state["messages_by_round"].items():
            self.wire.messages_by_round[int(k)] = dict(v)
        for a, history in state.get("accountants", {}).items():
            self.accountant_of(a).history = [tuple(h) for h in history]
        return int(state["round"])

    def run(self, method: str | Method | None = None) -> RunResult:
        """Run one method end to end (default ``federation.method``): base, local stage, rounds.

        A checkpoint after the local stage and after every round lets
        :meth:`resume` continue an interrupted run.
        """
        method = self._method(method)
        self.method_name = method.name
        if method.name != self.cfg.federation.method:  # the folder's config must say what ran, for --resume
            self.cfg = dataclasses.replace(self.cfg, federation=dataclasses.replace(self.cfg.federation, method=method.name))
            self.runlog.write_config(self.cfg)
        if self.runlog.read_metrics():
            raise FileExistsError(
                f"{self.runlog.dir} already holds results (metrics.jsonl); continue it with "
                f"`run --resume {self.runlog.dir}` or choose a new --run-dir."
            )
        method.prepare(self)  # refuse early (e.g. FedAvg across architectures), before any training
        self.run_base()
        self.run_local_stage(method)
        self.save_checkpoint(0)
        self.run_rounds(method, checkpoint=True)
        return self.finish()

    def resume(self) -> RunResult:
        """Continue this run folder from its last checkpoint; ends as the uninterrupted run would.

        Metrics rows after the checkpoint (a round that was evaluated but not
        yet checkpointed) are dropped and that round is run again.
        """
        method = self._method(None)
        self.method_name = method.name
        method.prepare(self)
        done = self.load_checkpoint()
        if done < 0:  # interrupted before the local stage finished: start over
            log.info("no checkpoint in %s: running from the start", self.runlog.dir)
            (self.runlog.dir / "metrics.jsonl").unlink(missing_ok=True)
            return self.run(method)
        rows = [m for m in self.runlog.read_metrics() if m["round"] <= done]
        self.runlog.rewrite_metrics(rows)
        self.metrics = rows
        log.info("resuming %s after round %d", self.runlog.dir, done)
        self.run_rounds(method, start=done + 1, checkpoint=True)
        return self.finish()

    def _method(self, method: str | Method | None) -> Method:
        if isinstance(method, Method):
            return method
        return make_method(method or self.cfg.federation.method, prox_mu=self.cfg.train.prox_mu)

    def set_behaviours(self, behaviours: list[str]) -> None:
        """Change the clients' simulated behaviours (``federation.behaviours``) between methods, e.g. in a robustness sweep."""
        fed_cfg = dataclasses.replace(self.cfg.federation, behaviours=list(behaviours))
        self.cfg = dataclasses.replace(self.cfg, federation=fed_cfg).validate()
        self.behaviours = {c.client_id: self.cfg.behaviour_of_client(i) for i, c in enumerate(self.clients)}

    def start_method(
        self,
        method: Method,
        runlog: RunLog,
        adapters: dict[str, dict] | None,
        shared: list[dict],
        privacy: dict[str, list] | None = None,
    ) -> None:
        """Reset the per-method state for a comparison: wire, servers, pseudo-labels, adapters, accountants, folder.

        ``adapters`` (client id -> tensors) restores every client's adapter, e.g.
        to the shared local stage; ``privacy`` (adapter id -> accountant
        history) restores the DP accountants to the same point (None: empty);
        ``shared`` are metrics rows (base, local) copied into this method's metrics.
        """
        self.method_name = method.name
        self.resumable = False  # a comparison is rerun, not resumed
        self.accountants = {}
        for a, history in (privacy or {}).items():
            self.accountant_of(a).history = [tuple(h) for h in history]
        self.wire = Wire()
        self.server = self._consensus_server()
        self.runlog = runlog
        self.runlog.write_config(self.cfg)
        for c in self.clients:
            c.restore_labels([])
            if adapters is not None:
                self.pool.set_tensors(c.client_id, adapters[c.client_id])
        self.metrics = []
        for row in shared:
            row = {**row, "method": method.name}
            self.metrics.append(row)
            self.runlog.append_metrics(row)

    def finish(self) -> RunResult:
        rows = summary_rows(self.metrics)
        table = format_table(rows)
        self.runlog.write_json("summary.json", {"rows": rows, "bytes_total": self.wire.totals()})
        (self.runlog.dir / "summary.txt").write_text(table + "\n")
        return RunResult(self.runlog.dir, self.metrics, table)


def resume_federation(run_dir: str | Path, progress: bool = True, overrides: list[str] | None = None) -> RunResult:
    """Continue an interrupted run from its folder (config, partition and checkpoint are read from it).

    ``overrides`` (``["federation.min_clients=2"]``) change the saved config,
    e.g. to get past a round that failed for lack of clients; the folder's
    config.yaml is rewritten with them.
    """
    from .config import load_config

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise FileNotFoundError(f"{run_dir} has no config.yaml: not a run folder written by `run`.")
    cfg = load_config(run_dir / "config.yaml", overrides)
    return Federation(cfg, runlog=RunLog(run_dir), progress=progress).resume()


def run_federation(
    cfg: RunConfig, run_dir: str | Path | None = None, progress: bool = True, method: str | None = None
) -> RunResult:
    """Run one method (default ``cfg.federation.method``) end to end and write the run folder.

    Examples
    --------
    >>> from fedcofit_lite.config import load_config
    >>> result = run_federation(load_config("ci"))  # doctest: +SKIP
    >>> print(result.table)  # doctest: +SKIP
    """
    runlog = RunLog(run_dir) if run_dir is not None else None
    return Federation(cfg, runlog=runlog, progress=progress).run(method)


class _Timer:
    """Accumulates wall seconds per phase: ``with timer("train"): ...``."""

    def __init__(self, seconds: dict[str, float] | None = None) -> None:
        self.seconds: dict[str, float] = dict(seconds or {})

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - start
