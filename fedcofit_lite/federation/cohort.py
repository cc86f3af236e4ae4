"""The clients as the server sees them: what a method may ask of them (a :class:`Cohort`), on any engine.

:class:`LocalCohort` holds every client in this process on one shared model pool and batches their generation (the
fast engine of notebooks and CI); ``flower.cohort.FlowerCohort`` asks ClientApps that hold one client each. Every
operation returns who did not reply (``failed``: client id -> why), a dropout the method handles.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..config import ConfigError, RunConfig, TrainConfig
from ..protocol.messages import AdapterMessage, AnswersMessage, changed_answers
from ..tasks.data import Example, TaskSuite, cap_per_client, partition
from ..tasks.evaluate import last_epoch_loss
from .adversary import apply_behaviours
from .client import BlackBox, Client, FrozenBase, PoolAdapter, TrainPlan, TrainResult, answer_many
from .signals import measure

if TYPE_CHECKING:
    from ..engine.pool import ModelPool

Failed = dict[str, str]  # client id -> why it did not reply
Predicted = tuple[dict[str, list[str]], Failed]  # client id -> its answers to the examples; who did not reply
GLOBAL = "global"  # in process: the adapter id of the FedAvg server's global model

log = logging.getLogger(__name__)


class BlackBoxClientError(ValueError):
    """A method needs something a black-box client (one that only answers) cannot give."""


@dataclass(frozen=True)
class ClientInfo:
    """What the server knows about a client: its architecture, data size and whether it trains."""

    client_id: str
    index: int  # position in the federation (the Flower partition id)
    model_name: str
    n_examples: int
    trainable: bool  # False: a black-box client that only answers
    families: dict[str, int] = field(default_factory=dict)
    example_ids: list[str] = field(default_factory=list)
    shapes: dict[str, list[int]] | None = None  # LoRA tensor shapes (None for a black-box client)

    @classmethod
    def of(cls, c: Client) -> ClientInfo:
        shapes = {k: list(v.shape) for k, v in c.model.get_tensors().items()} if c.trainable else None
        families = dict(sorted(Counter(e.family for e in c.private).items()))
        ids = [e.id for e in c.private]
        return cls(c.client_id, c.index, c.model_name, len(c.private), c.trainable, families, ids, shapes)

    def record(self) -> dict[str, Any]:
        """This client's entry of the run folder's ``partition.json``."""
        row = {"model": self.model_name, "n_examples": self.n_examples, "families": self.families}
        return {**row, "example_ids": self.example_ids, **({} if self.trainable else {"black_box": True})}


@dataclass
class Answers:
    """What :meth:`Cohort.answer` returns: the messages as sent, every answer's confidence and signals, who failed."""

    messages: list[AnswersMessage]
    confidence: dict[str, list[float]]  # client id -> per-prompt confidence (the run's record; sent only if asked)
    failed: Failed = field(default_factory=dict)
    signals: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # client -> signal -> values (record)


def client_seed(seed: int, round_index: int, client_index: int) -> int:
    """Independent, reproducible seed per (run, round, client)."""
    return seed * 1_000_003 + round_index * 1_009 + client_index


def build_clients(cfg: RunConfig, suite: TaskSuite) -> list[Client]:
    """Partition the private pool and make one :class:`Client` per part (its data and behaviour; no model yet)."""
    n = cfg.federation.n_clients
    parts = partition(suite.train, cfg.data.partition, n, alpha=cfg.data.dirichlet_alpha, seed=cfg.seed)
    if cfg.data.max_train_per_client:
        parts = cap_per_client(parts, cfg.data.max_train_per_client, seed=cfg.seed)
    h = cfg.competence.holdout  # the calibrated signal's held-out records: the last h of each part, never trained on
    short = [i for i, part in enumerate(parts) if h and len(part) <= h]
    if short:
        raise ConfigError(
            f"competence.holdout = {h}: client(s) {short} hold {min(len(parts[i]) for i in short)} records or fewer, "
            "none would be left to train on; hold out fewer records (e.g. competence.holdout=8)."
        )
    return [
        Client(
            f"client{i}", cfg.model_of_client(i), list(part[: len(part) - h]), cfg.client, i,
            cfg.behaviour_of_client(i), calibration=list(part[len(part) - h :]) if h else [],
        )
        for i, part in enumerate(parts)
    ]  # fmt: skip


def equip(clients: Sequence[Client], cfg: RunConfig, answerers: dict[str, Any] | None = None) -> ModelPool:
    """Give each client what answers and trains for it, on one new model pool (returned).

    ``answerers`` (client id -> callable from a list of prompts to a list of answers: any model, API or rule) make
    those clients :class:`~fedcofit_lite.federation.client.BlackBox` answerers; ``federation.black_box_clients`` answer
    with their frozen base; every other client gets its LoRA adapter and training settings (:func:`dp_train_config`).
    """
    from ..engine.pool import ModelPool

    answerers = dict(answerers or {})
    if unknown := set(answerers) - {c.client_id for c in clients}:
        raise ValueError(
            f"answerers for unknown clients {sorted(unknown)}: the clients are {[c.client_id for c in clients]}."
        )
    adapters = {c.client_id: c.model_name for c in clients if c.client_id not in answerers}
    pool = ModelPool(adapters, cfg.model, cfg.lora, seed=cfg.seed)
    for c in clients:
        if c.client_id in answerers:
            c.model = BlackBox(answerers[c.client_id])
            c.model_name = c.model.model_name
        elif c.index in cfg.federation.black_box_clients:
            c.model = FrozenBase(pool, c.model_name)
        else:
            c.model = PoolAdapter(pool, c.client_id)
            c.train_cfg = dp_train_config(cfg, len(c.private), c.client_id)
    return pool


def answer_round(
    clients: Sequence[Client],
    public: dict[str, Example],
    cfg: RunConfig,
    round_index: int,
    asks: Sequence[str] = (),
    record: Sequence[str] = (),
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> Answers:
    """The clients answer every public prompt (batched, :func:`answer_many`); bad clients send their behaviour's answers.

    What ``asks`` names (``confidence``, a competence signal) is sent beside the answers; ``record`` names more signals
    measured for the run's record only (:mod:`fedcofit_lite.federation.signals`, with the public embedder ``embed``).
    """
    prompt_ids, seed = list(public), cfg.seed + round_index
    answered = answer_many(clients, list(public.values()), cfg.generation, seed=seed, desc=f"answer r{round_index}")
    sent = {cid: a for cid, (a, _) in answered.items()}
    conf = {cid: c for cid, (_, c) in answered.items()}
    bad = {c.client_id: c.behaviour for c in clients if c.behaviour != "honest"}
    if bad:  # simulated bad clients replace their answers and claim full confidence
        instructions = {p: e.instruction for p, e in public.items()}
        sent = apply_behaviours(bad, sent, prompt_ids, instructions, cfg.seed, round_index)
        conf.update({cid: [1.0] * len(prompt_ids) for cid in bad})
    wanted = [n for n in dict.fromkeys([*asks, *record]) if n != "confidence"]
    signals = measure(clients, list(public.values()), cfg, round_index, wanted, embed, conf)

    def message(c: Client) -> AnswersMessage:
        confidence = conf[c.client_id] if "confidence" in asks else None
        sends = {n: v for n, v in signals.get(c.client_id, {}).items() if n in asks}
        return c.answers_message(round_index, prompt_ids, sent[c.client_id], confidence, sends)

    return Answers([message(c) for c in clients], conf, signals=signals)


class Cohort(ABC):
    """The federation's clients behind one engine (see the module docstring)."""

    cfg: RunConfig
    info: dict[str, ClientInfo]

    @property
    def ids(self) -> list[str]:
        return list(self.info)

    @abstractmethod
    def answer(self, round_index: int, ids: Sequence[str], asks: Sequence[str] = ()) -> Answers:
        """Clients ``ids`` answer every public prompt; their messages carry what ``asks`` names (``confidence``, signals)."""

    @abstractmethod
    def train(self, round_index: int, ids: Sequence[str], plan: TrainPlan) -> tuple[dict[str, TrainResult], Failed]:
        """Clients ``ids`` take what ``plan`` carries, then train as it says (:class:`TrainPlan`)."""

    @abstractmethod
    def upload(self, round_index: int, ids: Sequence[str], only_b: bool = False) -> tuple[list[AdapterMessage], Failed]:
        """Clients send their adapter tensors (``only_b``: the LoRA B factors, FFA-LoRA)."""

    @abstractmethod
    def predict(self, ids: Sequence[str], examples: Sequence[Example], base: bool, desc: str) -> Predicted:
        """Clients answer ``examples`` with their model (``base``: with their frozen base model)."""

    @abstractmethod
    def start_adapter(self) -> dict[str, np.ndarray]:
        """The adapter every client started from (the same seeded initialisation): the parameter methods' initial global model."""

    def privacy_spent(self, delta: float) -> dict[str, float]:
        """Epsilon per model spent by DP-SGD so far (empty without DP)."""
        return {}

    def changed_only(self, messages: Sequence[AnswersMessage]) -> list[AnswersMessage]:
        """``federation.send_changed``: each client's message cut to what changed since the server's copy of its answers."""
        raise ConfigError(
            "federation.send_changed = true needs each client to know which of its answers the server holds, which only "
            "the in-process engine tracks: set federation.send_changed=false on this engine."
        )

    def acknowledge(self, accepted: Sequence[AnswersMessage]) -> None:
        """The server accepted these (whole) messages: each client now knows what the server holds of it."""
        return None  # an engine without send_changed keeps no such record

    def server_model(self, model_id: str) -> Client | None:
        """A model the server keeps in this process (FedAvg's global model), or None where the server holds none."""
        return None

    def require_trainable(self, method: str) -> None:
        """Refuse, by name, clients that only answer: ``method`` needs their adapters."""
        black = [i.client_id for i in self.info.values() if not i.trainable]
        if black:
            raise BlackBoxClientError(
                f"method {method!r} averages LoRA adapters, but {', '.join(black)} only answer (black-box client: "
                f"no adapter to send or load). Run it with consensus, or drop them from federation.black_box_clients."
            )


class LocalCohort(Cohort):
    """Every client in this process: adapters on one shared model pool, generation batched across clients.

    ``answerers`` and ``federation.black_box_clients`` make clients black-box (:func:`equip`). Models the server keeps
    here (the centralized baseline's, FedAvg's global one) are clients of their own (:meth:`server_client`), so they
    train, answer and spend privacy the same way.
    """

    def __init__(
        self,
        cfg: RunConfig,
        suite: TaskSuite,
        answerers: dict[str, Any] | None = None,
        embed: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.cfg, self.suite, self.public = cfg, suite, {e.id: e for e in suite.public}
        self.embed = embed  # the public sentence embedder, for the clients' competence signals
        self.clients = build_clients(cfg, suite)
        self.pool = equip(self.clients, cfg, answerers)
        self.by_id = {c.client_id: c for c in self.clients}
        self.info = {c.client_id: ClientInfo.of(c) for c in self.clients}
        self.server_side: dict[str, Client] = {}
        self._start: dict[str, np.ndarray] | None = None

    def members(self) -> list[Client]:
        """The clients, then the models the server keeps in this process."""
        return [*self.clients, *self.server_side.values()]

    def server_client(self, model_id: str, private: Sequence[Example] = ()) -> Client:
        """A model the server keeps in this process (a fresh adapter at the shared start), trained on ``private``."""
        if model_id not in self.server_side:
            model_name = self.clients[0].model_name
            self.pool.add_adapter(model_id, model_name)
            c = Client(model_id, model_name, list(private), self.cfg.client, len(self.clients))
            c.model = PoolAdapter(self.pool, model_id)
            c.train_cfg = dp_train_config(self.cfg, len(private), model_id) if private else None
            self.server_side[model_id] = c
        return self.server_side[model_id]

    def server_model(self, model_id: str) -> Client | None:
        return self.server_side.get(model_id)

    def start_adapter(self) -> dict[str, np.ndarray]:
        """The shared start, read from a fresh adapter (``GLOBAL``, which the in-process server then keeps as its model)."""
        if self._start is None:
            self._start = self.server_client(GLOBAL).model.get_tensors()
        return self._start

    def privacy_spent(self, delta: float) -> dict[str, float]:
        return {c.client_id: c.epsilon(delta) for c in self.members() if c.accountant is not None}

    def privacy_state(self) -> dict[str, list]:
        """Model id -> its DP-SGD accountant's history, for every model that trained under DP so far."""
        return {c.client_id: c.state()["privacy"] for c in self.members() if c.accountant is not None}

    def restore(self, adapters: dict[str, dict] | None, privacy: dict[str, list] | None = None) -> None:
        """Every model back to one start: no pseudo-labels, these adapters (None: as they are), these accountants."""
        for c in self.members():
            c.load_state({"privacy": (privacy or {}).get(c.client_id)})
            if adapters is not None and c.trainable and c.client_id in self.by_id:
                c.model.set_tensors(adapters[c.client_id])

    def answer(self, round_index: int, ids: Sequence[str], asks: Sequence[str] = ()) -> Answers:
        record = self.cfg.competence.record if self.embed is not None else ()
        clients = [self.by_id[i] for i in ids]
        return answer_round(clients, self.public, self.cfg, round_index, asks, record, self.embed)

    def changed_only(self, messages: Sequence[AnswersMessage]) -> list[AnswersMessage]:
        return [changed_answers(m, self.by_id[m.client_id].server_holds) for m in messages]

    def acknowledge(self, accepted: Sequence[AnswersMessage]) -> None:
        for m in accepted:
            self.by_id[m.client_id].server_holds = m

    def reconfigure(self, suite: TaskSuite, behaviours: Sequence[str]) -> None:
        """From now on: ``suite``'s public prompts (a sweep's public budget) and these behaviours (none: all honest)."""
        self.suite, self.public = suite, {e.id: e for e in suite.public}
        for i, c in enumerate(self.clients):
            c.behaviour = behaviours[i] if behaviours else "honest"

    def train(self, round_index: int, ids: Sequence[str], plan: TrainPlan) -> tuple[dict[str, TrainResult], Failed]:
        """Clients take what ``plan`` carries, then train: those that can in the same steps (``train.together``)."""
        out: dict[str, TrainResult] = {}
        jobs = []  # the clients that train in the same steps
        for cid in ids:
            c = self.by_id[cid]
            c.take(plan, self.public)
            seed = client_seed(self.cfg.seed, round_index, c.index)
            job = c.joint_job(plan, seed)
            if job is not None:
                jobs.append(job)
            elif (result := c.fit(plan, seed)) is not None:
                out[cid] = result
        for cid, steps in self.pool.train_together(jobs, self.cfg.train).items():
            out[cid] = TrainResult(last_epoch_loss(steps, plan.epochs), len(steps))
        return {cid: out[cid] for cid in ids if cid in out}, {}

    def upload(self, round_index: int, ids: Sequence[str], only_b: bool = False) -> tuple[list[AdapterMessage], Failed]:
        return [self.by_id[cid].upload(round_index, only_b, self.cfg.seed) for cid in ids], {}

    def predict(self, ids: Sequence[str], examples: Sequence[Example], base: bool, desc: str) -> Predicted:
        members = {c.client_id: c for c in self.members()}
        clients = [members[cid].frozen() if base else members[cid] for cid in ids]
        answered = answer_many(clients, list(examples), self.cfg.generation, seed=0, desc=desc)
        return {cid: a for cid, (a, _) in answered.items()}, {}


def dp_train_config(cfg: RunConfig, n_records: int, who: str = "") -> TrainConfig:
    """``cfg.train`` with the noise multiplier that meets ``train.dp_epsilon`` (if set) over the planned epochs (local
    and every round's) of ``n_records`` private records (Poisson rate batch_size / records); pseudo-labels add records,
    which lowers the real spend the accountant reports."""
    t = cfg.train
    if t.dp_epsilon <= 0:
        return t
    from ..engine.privacy import noise_for_epsilon

    epochs = t.epochs + cfg.federation.rounds * t.round_epochs
    sigma = noise_for_epsilon(t.dp_epsilon, t.dp_delta, n_records, t.batch_size, epochs)
    msg = "%s: DP-SGD noise multiplier %.3f for epsilon %g over %d epochs of %d records"
    log.info(msg, who or "model", sigma, t.dp_epsilon, epochs, n_records)
    return replace(t, dp_noise_multiplier=sigma)
