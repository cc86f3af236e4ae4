"""What clients exchange each round: the method under study and its baselines, one entry each in :data:`METHODS`.

The schedule they share is in ``docs/methods.md`` (*A fair comparison*). :meth:`Method.round` asks the clients (a
:class:`~fedcofit_lite.federation.cohort.Cohort`) to answer, upload or train, passes every message through the run's
:class:`~fedcofit_lite.protocol.messages.Wire` (where bytes are counted) and its own server, and returns the round's
metrics; it never calls back into the loop (:class:`Round` is all it sees).
"""

from __future__ import annotations

import logging
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..config import ConfigError, RunConfig
from ..progress import Timer
from ..protocol.cluster import REGISTRY as CLUSTERERS
from ..protocol.cluster import clusterer_params
from ..protocol.competence import SIGNALS
from ..protocol.consensus import RULES
from ..protocol.fedavg import FedAvgServer, IncompatibleAdaptersError, incompatibility, shared_tensors
from ..protocol.messages import GlobalAdapterMessage, Wire
from ..runlog import AnswerRow, MetricsRow, RunLog, label_scores
from ..tasks.evaluate import correct
from ..tasks.families import REGISTRY as FAMILIES
from .client import TrainPlan, TrainResult, round_confidence
from .cohort import GLOBAL, Answers, Cohort, Failed, LocalCohort, client_seed

if TYPE_CHECKING:
    from ..protocol.server import ConsensusServer
    from ..tasks.data import TaskSuite

log = logging.getLogger(__name__)

CENTRAL = "central"  # adapter id of the centralized baseline's model


class RoundFailedError(RuntimeError):
    """Too few clients took part in a round; the run folder keeps every finished round (resume later)."""


@dataclass
class Round:
    """What a method's exchange may use: the run's config, clients, wire, folder and server-side pieces
    (``resume_hint``: what a failed round tells the user to do next)."""

    cfg: RunConfig
    cohort: Cohort
    wire: Wire
    runlog: RunLog
    suite: TaskSuite
    consensus_server: Callable[[str | None], ConsensusServer]  # rule -> a fresh consensus server
    resume_hint: str = ""
    global_start: dict[str, np.ndarray] | None = field(default=None)  # the parameter methods' shared start

    def judge(self) -> Callable[[str, str], float]:
        """(public prompt id, answer) -> 1.0 when right against the hidden reference, which only the evaluator holds."""
        refs, family = self.suite.public_references, {e.id: e.family for e in self.suite.public}
        return lambda p, text: correct(text, refs[p], family[p])

    def active(self, round_index: int) -> tuple[list[str], dict[str, str]]:
        """Clients taking part in a round, and the dropped ones with why (``federation.dropout`` simulates faults)."""
        ids, p = self.cohort.ids, self.cfg.federation.dropout
        rng = np.random.default_rng([self.cfg.seed, round_index, 0xD50])  # same drops for the same seed and round
        drop = dict(zip(ids, rng.random(len(ids)) < p))
        return [c for c in ids if not drop[c]], {c: "dropped out (simulated fault)" for c in ids if drop[c]}

    def require(self, round_index: int, accepted: Sequence[str], left_out: dict[str, str]) -> None:
        """Fail the round cleanly when fewer than ``federation.min_clients`` took part."""
        need = self.cfg.federation.min_clients
        if len(accepted) < need:
            raise RoundFailedError(
                f"round {round_index}: only {len(accepted)} client(s) took part ({list(accepted)}); "
                f"federation.min_clients = {need}. Left out: {left_out}. {self.resume_hint}"
            )


def train_row(results: dict[str, TrainResult], failed: Failed | None = None) -> dict[str, Any]:
    """The metrics of a training stage: each model's loss and steps, and who did not reply."""
    row = {
        "train_loss": {c: r.loss for c, r in results.items()},
        "train_steps": {c: r.steps for c, r in results.items()},
    }
    return {**row, **({"dropped_clients": failed} if failed else {})}


class Method:
    """Base class: the local stage and evaluation shared by the client-based methods."""

    name = "method"
    shares_local_stage = True  # the compare command runs the local stage once for these

    def prepare(self, run: Round) -> None:
        """Check the method can run on these clients (before any training); may set up its server."""

    def evaluated(self, run: Round) -> list[str]:
        """Model ids whose test answers are scored (default: every client's)."""
        return run.cohort.ids

    def global_adapter(self, run: Round) -> str | None:
        """Id of the server's global model, scored beside the clients' (parameter methods, in-process only)."""
        return None

    def local_stage(self, run: Round) -> MetricsRow:
        """Round 0: every client fine-tunes on its private data."""
        return self._train(run, 0, run.cfg.train.epochs)

    def _train(self, run: Round, r: int, epochs: int) -> MetricsRow:
        return train_row(*run.cohort.train(r, run.cohort.ids, TrainPlan(epochs)))

    def round(self, run: Round, r: int) -> MetricsRow:
        """Exchange, then train; return this round's metrics row (without test scores)."""
        raise NotImplementedError


class Consensus(Method):
    """Semantic consensus under ``consensus.rule``, or under ``rule`` (method name ``consensus@RULE``): answers to the
    public prompts up, the kept consensus answers down as pseudo-labels, then training on private data + those."""

    def __init__(self, rule: str | None = None) -> None:
        self.rule = rule
        self.name = f"consensus@{rule}" if rule else "consensus"
        self.server: ConsensusServer | None = None

    def prepare(self, run: Round) -> None:
        self.server = run.consensus_server(self.rule)

    def round(self, run: Round, r: int) -> MetricsRow:
        assert self.server is not None, "call prepare() first"
        timer = Timer()
        active, dropped = run.active(r)
        with timer("generate"):
            answers = run.cohort.answer(r, active, self.server.asks) if active else Answers([], {})
            dropped = {**dropped, **answers.failed}
        answer_rows = _answer_rows(r, answers)
        run.runlog.write_answers(r, answer_rows)
        changed_only = run.cfg.federation.send_changed
        sent = run.cohort.changed_only(answers.messages) if changed_only else answers.messages
        received = [run.wire.send(m, "up", full=whole) for m, whole in zip(sent, answers.messages)]
        with timer("server"):
            accepted, rejected = self.server.screen(r, received)  # each message is checked (and completed) once, here
            run.cohort.acknowledge(accepted)
            run.require(r, [m.client_id for m in accepted], {**dropped, **{c: "rejected" for c in rejected}})
            pseudo, report = self.server.aggregate(r, accepted, rejected)
        if report.vectors is not None:  # the server's embeddings, so replay needs no model
            run.runlog.write_embeddings(r, report.vectors, report.row_clients, report.row_prompts)
        right = run.judge()
        labels = [replace(row, correct=right(row.prompt_id, row.consensus)) for row in report.records()]
        run.runlog.write_pseudo_labels(r, labels)
        answered = [m.client_id for m in answers.messages]
        down = None
        for _ in answered:  # the same message to every client that took part
            down = run.wire.send(pseudo, "down")
        with timer("train"):
            plan = TrainPlan(run.cfg.train.round_epochs, labels=down, pseudo_labels=True)
            trained, failed = run.cohort.train(r, answered, plan) if answered else ({}, {})
        spent = self.server.privacy_spent(r, run.cfg.consensus.dp_delta)  # client-level (epsilon, delta) of the vote
        return {
            **label_scores(labels, answer_rows, right),
            "rejected_clients": report.rejected,
            "dropped_clients": {**dropped, **failed},
            "rule": self.server.rule,
            "confidence_sent": self.server.needs_confidence,
            **({"signal_sent": self.server.signal} if self.server.signal else {}),
            **({"vote_dp_epsilon": spent[0], "vote_dp_delta": spent[1]} if spent else {}),
            **({"bytes_up_saved": run.wire.saved_by_round[r]["up"]} if changed_only else {}),
            **train_row(trained),
            "seconds": timer.seconds,
        }


def _answer_rows(r: int, answers: Answers) -> list[AnswerRow]:
    """The run's record of every answer sent (confidences and competence signals kept even when not sent, for replay)."""
    rows = []
    for m in answers.messages:
        conf = answers.confidence.get(m.client_id) or m.confidence or [None] * len(m.answers)
        signals = {**answers.signals.get(m.client_id, {}), **(m.signals or {})}  # the prompts of the whole message
        for i, (p, a, k) in enumerate(zip(m.prompt_ids, m.answers, conf)):
            sig = {n: v[i] for n, v in sorted(signals.items())} or None
            rows.append(AnswerRow(r, m.client_id, p, a, round_confidence(k) if k is not None else None, sig))
    return rows


class Local(Method):
    """Nothing is exchanged: each client trains alone (the lower reference)."""

    name = "local"

    def round(self, run: Round, r: int) -> MetricsRow:
        timer = Timer()
        with timer("train"):
            row = self._train(run, r, run.cfg.train.round_epochs)
        return {**row, "seconds": timer.seconds}


class FedAvg(Method):
    """FedAvg over LoRA adapters (FedIT); ``prox_mu > 0`` makes it FedProx, ``ffa`` FFA-LoRA, ``server`` another aggregation.

    The server averages the uploaded adapters weighted by example counts and sends the average down; every adapter
    starts from the server's initial model (broadcast in round 1); in process the server scores its global model too.
    FFA-LoRA (Sun et al., 2024) trains, sends and averages only B (from round 0), A frozen at that start, so the
    average of the updates is the update of the average, at half the bytes.
    """

    def __init__(self, prox_mu: float = 0.0, ffa: bool = False, server: Callable[[], FedAvgServer] = FedAvgServer):
        self.prox_mu, self.ffa = prox_mu, ffa
        self.name = "ffa" if ffa else "fedprox" if prox_mu > 0 else "fedavg"
        self.shares_local_stage = not ffa
        self.new_server = server  # another aggregation: a FedAvgServer subclass with its own combine()
        self.server = server()  # prepare() gives each run a fresh one

    def prepare(self, run: Round) -> None:
        run.cohort.require_trainable(self.name)
        info = run.cohort.info
        shapes = {c: {k: tuple(v) for k, v in i.shapes.items()} for c, i in info.items()}
        if why := incompatibility(shapes, {c: i.model_name for c, i in info.items()}):
            raise IncompatibleAdaptersError(why)
        if run.global_start is None:  # the shared start every client's adapter begins from (the server's initial model)
            run.global_start = run.cohort.start_adapter()
        if (model := run.cohort.server_model(GLOBAL)) is not None:  # in process the server scores its global model
            model.model.set_tensors(run.global_start)
        self.server = self.new_server()  # a fresh server per run (its reference shapes)

    def global_adapter(self, run: Round) -> str | None:
        return GLOBAL if run.cohort.server_model(GLOBAL) is not None else None

    def local_stage(self, run: Round) -> MetricsRow:
        return train_row(*run.cohort.train(0, run.cohort.ids, TrainPlan(run.cfg.train.epochs, freeze_a=self.ffa)))

    def round(self, run: Round, r: int) -> MetricsRow:
        timer = Timer()
        active, dropped = run.active(r)
        with timer("exchange"):
            if r == 1:  # the shared start every client began from, broadcast once (counted here, in round 1)
                start = GlobalAdapterMessage(r, shared_tensors(run.global_start, self.ffa))
                for _ in run.cohort.ids:
                    run.wire.send(start, "down")
            uploaded, failed = run.cohort.upload(r, active, only_b=self.ffa) if active else ([], {})
            dropped = {**dropped, **failed}
            received = [run.wire.send(m, "up") for m in uploaded]
            try:
                update, report = self.server.aggregate(r, received)
            except RuntimeError:  # every adapter rejected
                run.require(r, [], dropped)
                raise
            run.require(r, report.clients, {**dropped, **report.rejected})
            if (model := run.cohort.server_model(GLOBAL)) is not None:
                model.model.set_tensors(update.tensors, partial=self.ffa)
            took_part = [m.client_id for m in uploaded]
            down = None
            for _ in took_part:
                down = run.wire.send(update, "down")
        with timer("train"):
            ffa, epochs = self.ffa, run.cfg.train.round_epochs
            plan = TrainPlan(epochs, adapter=down, partial=ffa, prox_mu=self.prox_mu, freeze_a=ffa)
            trained, failed = run.cohort.train(r, took_part, plan)
        dropped = {**dropped, **failed}
        row = {"rejected_clients": report.rejected, "dropped_clients": dropped, "fedavg_weights": report.weights}
        return {**train_row(trained), **row, "seconds": timer.seconds}


class Centralized(Local):
    """One adapter on the pooled private data of all clients (data leaves the clients; in process only): a client
    of its own on the in-process pool (:meth:`~fedcofit_lite.federation.cohort.LocalCohort.server_client`), trained
    as :class:`Local` trains each client."""

    name = "centralized"
    shares_local_stage = False
    initial: dict[str, np.ndarray] | None = None  # its model's weights before any training

    def prepare(self, run: Round) -> None:
        """Add the pooled-data model once; later calls reset it to its initial weights."""
        if not isinstance(run.cohort, LocalCohort):
            raise ValueError(
                "centralized pools every client's private data in one place: it runs on the in-process engine only."
            )
        central = run.cohort.server_model(CENTRAL)
        if central is None:
            central = run.cohort.server_client(CENTRAL, [e for c in run.cohort.clients for e in c.private])
            self.initial = central.model.get_tensors()
        elif self.initial is not None:
            central.model.set_tensors(self.initial)

    def evaluated(self, run: Round) -> list[str]:
        return [CENTRAL]

    def _train(self, run: Round, r: int, epochs: int) -> MetricsRow:
        central = run.cohort.server_model(CENTRAL)
        return train_row({CENTRAL: central.fit(TrainPlan(epochs), client_seed(run.cfg.seed, r, central.index))})


@dataclass(frozen=True)
class MethodSpec:
    """One registered method: how the loop builds it, and what the analysis and the figures say of it.

    ``build(cfg, variant)`` returns a fresh :class:`Method` (``variant``: the part of the name after ``@``, one of
    ``variants``, or None); ``label`` and ``color`` are its legend and colour in every figure; ``sends`` is what leaves
    a client in a round (``adapter_b``: only the B factors; ``records``: the data; ``answers``: a public budget), read
    by the privacy audit, the byte accounting and the sweep; ``has_global_model``: its server keeps a model of its
    own, scored beside the clients' as ``"<name> (global)"``.
    """

    build: Callable[[RunConfig, str | None], Method]
    label: str
    color: str | None = None
    sends: Literal["answers", "adapter", "adapter_b", "records", "nothing"] = "nothing"
    variants: Mapping[str, Any] = field(default_factory=dict)
    has_global_model: bool = False


# The one registry of methods: the config, the CLI, compare, the audit, the accounting and the figures read it.
METHODS: dict[str, MethodSpec] = {
    "consensus": MethodSpec(
        lambda cfg, rule: Consensus(rule), "semantic consensus (medoid)", "#1f77b4", "answers", RULES
    ),
    "fedavg": MethodSpec(lambda cfg, _: FedAvg(server=FedAvgServer), "FedAvg-LoRA", "#d62728", "adapter", {}, True),
    "fedprox": MethodSpec(
        lambda cfg, _: FedAvg(prox_mu=cfg.train.prox_mu), "FedProx-LoRA", "#ff7f0e", "adapter", {}, True
    ),
    "ffa": MethodSpec(lambda cfg, _: FedAvg(ffa=True), "FFA-LoRA", "#9467bd", "adapter_b", {}, True),
    "local": MethodSpec(lambda cfg, _: Local(), "local only", "#7f7f7f"),
    "centralized": MethodSpec(lambda cfg, _: Centralized(), "centralized (pooled data)", "#2ca02c", "records"),
}


def method_spec(name: str) -> MethodSpec | None:
    """The registry entry of a method name (``consensus@vote`` is ``consensus``'s); None when unknown."""
    base, at, variant = name.partition("@")
    spec = METHODS.get(base)
    return spec if spec is not None and (not at or variant in spec.variants) else None


def has_global_model(entry: str) -> bool:
    """True when the method ``entry`` names keeps a global model of its own (its spec says so)."""
    spec = method_spec(entry)
    return spec is not None and spec.has_global_model


def method_choices() -> str:
    """What a method name may be, for error messages."""
    at = [f", or {n}@X with X one of {list(s.variants)}" for n, s in METHODS.items() if s.variants]
    return f"choose one of {list(METHODS)}{''.join(at)}"


def make_method(name: str, cfg: RunConfig) -> Method:
    """A fresh method by its config name (``federation.method`` / ``compare.methods``), e.g. ``consensus@vote``."""
    spec = method_spec(name)
    if spec is None:
        raise ConfigError(
            f"unknown method {name!r} (federation.method, compare.methods or --method): {method_choices()}."
        )
    method = spec.build(cfg, name.partition("@")[2] or None)
    method.name = name
    return method


# -- the names a configuration may use ------------------------------------------------------------
# config imports no registry, so a name there is a plain string; check_names holds it to the registries as they
# are when it runs (a Federation is built, the CLI loads a config): a name registered from outside is as good.

# config field -> (the registry of its names, where a new name is registered)
REGISTRIES = {
    "consensus.clusterer": (CLUSTERERS, "fedcofit_lite.protocol.cluster.REGISTRY"),
    "consensus.rule": (RULES, "fedcofit_lite.protocol.consensus.RULES"),
    "federation.method": (METHODS, "fedcofit_lite.federation.methods.METHODS"),
    "compare.methods": (METHODS, "fedcofit_lite.federation.methods.METHODS"),
    "data.families": (FAMILIES, "fedcofit_lite.tasks.families.REGISTRY"),
    "competence.record": (SIGNALS, "fedcofit_lite.protocol.competence.SIGNALS"),
}


def choices() -> dict[str, list[str]]:
    """Config field -> the names its registry holds now (what ``python -m fedcofit_lite options`` lists)."""
    return {name: list(registry) for name, (registry, _) in REGISTRIES.items()}


def check_names(cfg: RunConfig) -> RunConfig:
    """Refuse a name no registry holds, with the field, the value, the known names and the fix; return ``cfg``.

    ``data.families`` is checked for the project's suites only: instruction data (``data.source``)
    brings its own categories, which :func:`~fedcofit_lite.tasks.data.instruction_suite` checks.
    """
    for name, (registry, where) in REGISTRIES.items():
        value = operator.attrgetter(name)(cfg)
        known = method_spec if registry is METHODS else registry.__contains__
        unknown = [v for v in (value if isinstance(value, list) else [value]) if not known(v)]
        if unknown and not (name == "data.families" and cfg.data.source):
            choose = method_choices() if registry is METHODS else f"choose one of {list(registry)}"
            raise ConfigError(
                f"{name} = {value!r}: {unknown[0]!r} is not registered; {choose}, or register it in {where}."
            )
    clusterer_params(cfg.consensus)  # the clusterer's own parameters, checked by its spec
    _check_private_vote(cfg)
    _check_signals(cfg)
    return cfg


def _check_signals(cfg: RunConfig) -> None:
    """A rule that reads a signal computed on held-out records needs them (``competence.holdout``), before any training."""
    methods = [cfg.federation.method, *cfg.compare.methods]
    rules = {m.partition("@")[2] or cfg.consensus.rule for m in methods if m.partition("@")[0] == "consensus"}
    wanted = [(f"rule {rule!r} reads", RULES[rule].signal) for rule in sorted(rules)]
    wanted += [("competence.record names", name) for name in cfg.competence.record]
    for who, signal in wanted:
        if signal and SIGNALS[signal].holdout and cfg.competence.holdout == 0:
            raise ConfigError(
                f"{who} the {signal!r} signal, which each client fits on private records it holds out "
                "of training: set competence.holdout (e.g. competence.holdout=8)."
            )


def _check_private_vote(cfg: RunConfig) -> None:
    """Private consensus (``consensus.dp_sigma > 0``) releases only the labels of a rule its registry entry allows."""
    if cfg.consensus.dp_sigma == 0:
        return
    allowed = [r for r, spec in RULES.items() if spec.private]
    if not RULES[cfg.consensus.rule].private:
        raise ConfigError(
            f"consensus.dp_sigma > 0: private consensus counts one vote per client on its normalized answer, which "
            f"rule {cfg.consensus.rule!r} does not (semantic clusters can move many votes when one answer changes); "
            f"set consensus.rule to one of {allowed}, e.g. consensus.rule=vote."
        )
    for field_, names in (("federation.method", [cfg.federation.method]), ("compare.methods", cfg.compare.methods)):
        bad = [m for m in names if m.partition("@")[2] and not RULES[m.partition("@")[2]].private]
        if bad:
            raise ConfigError(
                f"consensus.dp_sigma > 0: {field_} names {bad[0]!r}, whose rule the private vote cannot release; "
                f"drop it or use consensus@{allowed[0]}."
            )
