"""The clients as the server sees them: what a method may ask of them, on any engine.

A method's exchange (:mod:`fedcofit_lite.federation.methods`) talks to the clients only
through a :class:`Cohort`:

``answer``
    the clients answer the public prompts and send :class:`AnswersMessage` s;
``train``
    the clients receive what the server sends (pseudo-labels or a global
    adapter), then fine-tune;
``upload``
    the clients send their adapter tensors (:class:`AdapterMessage`);
``predict``
    the clients answer the test set (evaluation, not part of the protocol).

Two engines implement it. :class:`LocalCohort` (here) runs every client in this
process on one shared :class:`~fedcofit_lite.engine.pool.ModelPool` and batches their
generation together: the fast engine of notebooks and CI.
:class:`fedcofit_lite.flower.cohort.FlowerCohort` sends the same requests as
Flower messages to ClientApps that each own their model. Every operation
returns who did not reply (``failed``: client id -> why), so a client that dies
mid-round is a dropout the method handles under ``federation.min_clients``.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..config import RunConfig, TrainConfig
from ..protocol.messages import AdapterMessage, AnswersMessage, GlobalAdapterMessage, PseudoLabelsMessage
from ..tasks.data import Example, TaskSuite, cap_per_client, partition
from ..tasks.evaluate import last_epoch_loss
from .adversary import PARAMETER_OF, apply_behaviours, corrupt_tensors
from .client import Client, answer_many

Failed = dict[str, str]  # client id -> why it did not reply
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

    def record(self) -> dict[str, Any]:
        """This client's entry of the run folder's ``partition.json``."""
        row = {"model": self.model_name, "n_examples": self.n_examples, "families": self.families}
        return {**row, "example_ids": self.example_ids, **({} if self.trainable else {"black_box": True})}


@dataclass(frozen=True)
class TrainResult:
    """One client's training in one stage: the last epoch's mean loss and the optimizer steps."""

    loss: float
    steps: int


@dataclass(frozen=True)
class TrainPlan:
    """What the server asks of a client in one training stage.

    It first takes what the server sends (``labels``: pseudo-labels;
    ``adapter``: a global adapter, only the tensors it carries with
    ``partial``), then fine-tunes for ``epochs`` on its private data (+ its
    pseudo-labels with ``pseudo_labels``; FedProx term ``prox_mu``; only the
    B factors with ``freeze_a``). Black-box clients take the message and skip
    the training.
    """

    epochs: int
    labels: PseudoLabelsMessage | None = None
    adapter: GlobalAdapterMessage | None = None
    partial: bool = False
    pseudo_labels: bool = False
    prox_mu: float = 0.0
    freeze_a: bool = False

    def options(self) -> dict[str, Any]:
        """The plain fields (everything but the messages), e.g. for a Flower config record."""
        return {
            "epochs": self.epochs,
            "partial": self.partial,
            "pseudo_labels": self.pseudo_labels,
            "prox_mu": float(self.prox_mu),
            "freeze_a": self.freeze_a,
        }


@dataclass
class Answers:
    """What :meth:`Cohort.answer` returns: the messages as sent, every answer's confidence, who failed."""

    messages: list[AnswersMessage]
    confidence: dict[str, list[float]]  # client id -> per-prompt confidence (the run's record; sent only if asked)
    failed: Failed = field(default_factory=dict)


def client_seed(seed: int, round_index: int, client_index: int) -> int:
    """Independent, reproducible seed per (run, round, client)."""
    return seed * 1_000_003 + round_index * 1_009 + client_index


def build_clients(cfg: RunConfig, suite: TaskSuite) -> list[Client]:
    """Partition the private pool and make one :class:`Client` per part (its data; no model yet)."""
    n = cfg.federation.n_clients
    parts = partition(suite.train, cfg.data.partition, n, alpha=cfg.data.dirichlet_alpha, seed=cfg.seed)
    if cfg.data.max_train_per_client:
        parts = cap_per_client(parts, cfg.data.max_train_per_client, seed=cfg.seed)
    return [Client(f"client{i}", cfg.model_of_client(i), list(part), policy=cfg.client) for i, part in enumerate(parts)]


def client_info(client: Client, index: int) -> ClientInfo:
    tensors = client.model.get_tensors() if client.model is not None and client.model.trainable else None
    return ClientInfo(
        client_id=client.client_id,
        index=index,
        model_name=client.model_name,
        n_examples=len(client.private),
        trainable=client.trainable,
        families=dict(sorted(Counter(e.family for e in client.private).items())),
        example_ids=[e.id for e in client.private],
        shapes={k: list(v.shape) for k, v in tensors.items()} if tensors is not None else None,
    )


class Cohort(ABC):
    """The federation's clients behind one engine (see the module docstring)."""

    cfg: RunConfig
    info: dict[str, ClientInfo]

    @property
    def ids(self) -> list[str]:
        return list(self.info)

    @abstractmethod
    def answer(self, round_index: int, ids: Sequence[str], with_confidence: bool) -> Answers:
        """Clients ``ids`` answer every public prompt; ``with_confidence``: their messages carry confidences."""

    @abstractmethod
    def train(self, round_index: int, ids: Sequence[str], plan: TrainPlan) -> tuple[dict[str, TrainResult], Failed]:
        """Clients ``ids`` take what ``plan`` carries, then train as it says (:class:`TrainPlan`)."""

    @abstractmethod
    def upload(self, round_index: int, ids: Sequence[str], only_b: bool = False) -> tuple[list[AdapterMessage], Failed]:
        """Clients send their adapter tensors (``only_b``: the LoRA B factors, FFA-LoRA)."""

    @abstractmethod
    def predict(
        self, ids: Sequence[str], examples: Sequence[Example], base: bool, desc: str
    ) -> tuple[dict[str, list[str]], Failed]:
        """Clients answer ``examples`` with their model (``base``: with their frozen base model)."""

    @abstractmethod
    def start_adapter(self) -> dict[str, np.ndarray]:
        """The adapter every client started from (the same seeded initialisation): the parameter methods' initial global model."""

    def privacy_spent(self, delta: float) -> dict[str, float]:
        """Epsilon per client spent by DP-SGD so far (empty without DP)."""
        return {}

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

    ``answerers`` (client id -> callable mapping a list of prompts to a list
    of answers) makes those clients black-box: any model, API or rule that
    answers, and never trains. Clients listed in
    ``federation.black_box_clients`` answer with their frozen base model.
    """

    def __init__(
        self,
        cfg: RunConfig,
        suite: TaskSuite,
        answerers: dict[str, Any] | None = None,
        only: Sequence[int] | None = None,
    ) -> None:
        """``only`` (client indices) keeps just those clients and loads only their models: a Flower client node."""
        from ..engine.pool import ModelPool
        from .client import BlackBox, FrozenBase, PoolAdapter

        self.cfg = cfg
        self.suite = suite
        self.public = {e.id: e for e in suite.public}
        everyone = build_clients(cfg, suite)
        self.index = {c.client_id: i for i, c in enumerate(everyone)}
        self.clients = everyone if only is None else [everyone[i] for i in only]
        answerers = dict(answerers or {})
        unknown = set(answerers) - set(self.index)
        if unknown:
            raise ValueError(
                f"answerers for unknown clients {sorted(unknown)}: the clients are client0..client{len(everyone) - 1}."
            )
        frozen = {everyone[i].client_id for i in cfg.federation.black_box_clients}
        on_pool = {c.client_id: c.model_name for c in self.clients if c.client_id not in answerers}
        self.pool = ModelPool(on_pool, cfg.model, cfg.lora, seed=cfg.seed)
        for c in self.clients:
            if c.client_id in answerers:
                c.model = BlackBox(answerers[c.client_id])
                c.model_name = c.model.model_name
            elif c.client_id in frozen:
                c.model = FrozenBase(self.pool, c.model_name)
            else:
                c.model = PoolAdapter(self.pool, c.client_id)
        self.behaviours = {c.client_id: cfg.behaviour_of_client(i) for i, c in enumerate(everyone)}
        self.accountants: dict[str, Any] = {}  # adapter id -> privacy accountant (DP-SGD only)
        self._dp_train: dict[str, TrainConfig] = {}  # client -> its settings under train.dp_epsilon
        self.info = {c.client_id: client_info(c, self.index[c.client_id]) for c in self.clients}
        self.by_id = {c.client_id: c for c in self.clients}

    def accountant_of(self, adapter_id: str) -> Any:
        """The adapter's privacy accountant when DP-SGD is on (one per client, across rounds), else None."""
        if self.cfg.train.dp_noise_multiplier <= 0 and self.cfg.train.dp_epsilon <= 0:
            return None
        if adapter_id not in self.accountants:
            from ..engine.privacy import new_accountant

            self.accountants[adapter_id] = new_accountant()
        return self.accountants[adapter_id]

    def train_config_of(self, client_id: str) -> TrainConfig:
        """The client's training settings; with ``train.dp_epsilon``, its own noise multiplier (:func:`dp_train_config`)."""
        if client_id not in self._dp_train:
            self._dp_train[client_id] = dp_train_config(self.cfg, len(self.by_id[client_id].private), client_id)
        return self._dp_train[client_id]

    def start_adapter(self) -> dict[str, np.ndarray]:
        """The shared start, read from a fresh adapter (``GLOBAL``, which the in-process server then keeps as its model)."""
        if GLOBAL not in self.pool.client_models:
            self.pool.add_adapter(GLOBAL, self.clients[0].model_name)
            self._start = self.pool.get_tensors(GLOBAL)
        return self._start

    def privacy_spent(self, delta: float) -> dict[str, float]:
        from ..engine.privacy import epsilon

        return {a: epsilon(acc, delta) for a, acc in self.accountants.items()}

    def restore(self, adapters: dict[str, dict] | None, privacy: dict[str, list] | None = None) -> None:
        """Every client back to one start: no pseudo-labels, these adapters (None: as they are), these accountants."""
        self.accountants = {}
        for a, history in (privacy or {}).items():
            self.accountant_of(a).history = [tuple(h) for h in history]
        for c in self.clients:
            c.restore_labels([])
            if adapters is not None and c.trainable:
                c.model.set_tensors(adapters[c.client_id])

    def set_behaviours(self, behaviours: list[str]) -> None:
        self.behaviours = {cid: (behaviours[i] if behaviours else "honest") for cid, i in self.index.items()}

    def answer(self, round_index: int, ids: Sequence[str], with_confidence: bool) -> Answers:
        clients = [self.by_id[i] for i in ids]
        prompts = list(self.public.values())
        prompt_ids = list(self.public)
        answered = answer_many(
            clients, prompts, self.cfg.generation, seed=self.cfg.seed + round_index, desc=f"answer r{round_index}"
        )
        honest = {cid: a for cid, (a, _) in answered.items()}
        conf = {cid: c for cid, (_, c) in answered.items()}
        if any(
            self.behaviours.get(c, "honest") != "honest" for c in ids
        ):  # simulated bad clients replace their answers
            instructions = {p: self.public[p].instruction for p in prompt_ids}
            honest = apply_behaviours(self.behaviours, honest, prompt_ids, instructions, self.cfg.seed, round_index)
            for cid in ids:
                if self.behaviours.get(cid, "honest") != "honest":  # a bad client claims full confidence
                    conf[cid] = [1.0] * len(prompt_ids)
        messages = [
            c.answers_message(
                round_index, prompt_ids, honest[c.client_id], conf[c.client_id] if with_confidence else None
            )
            for c in clients
        ]
        return Answers(messages, conf)

    def train(self, round_index: int, ids: Sequence[str], plan: TrainPlan) -> tuple[dict[str, TrainResult], Failed]:
        """Clients take what ``plan`` carries, then train: those that can, together (``train.together``)."""
        from ..engine.finetune import TrainJob
        from .client import PoolAdapter

        losses: dict[str, list[float]] = {}
        together: list[TrainJob] = []
        for cid in ids:
            c = self.by_id[cid]
            if plan.labels is not None:
                c.receive(plan.labels, self.public)
            if plan.adapter is not None:
                c.model.set_tensors(plan.adapter.tensors, partial=plan.partial)
            if not c.trainable:
                continue
            cfg = self.train_config_of(cid)
            seed = client_seed(self.cfg.seed, round_index, self.index[cid])
            freeze_a = plan.freeze_a or self.cfg.train.only_b
            joint = cfg.together and cfg.answer_logits_only and cfg.dp_noise_multiplier <= 0
            if joint and isinstance(c.model, PoolAdapter):
                together.append(TrainJob(cid, c.records(plan.pseudo_labels), plan.epochs, seed, plan.prox_mu, freeze_a))
                continue
            losses[cid] = c.train(
                cfg,
                plan.epochs,
                seed,
                pseudo_labels=plan.pseudo_labels,
                prox_mu=plan.prox_mu,
                accountant=self.accountant_of(cid),
                freeze_a=freeze_a,
            )
        if together:
            losses |= self.pool.train_together(together, self.cfg.train)
        return {c: TrainResult(last_epoch_loss(losses[c], plan.epochs), len(losses[c])) for c in ids if c in losses}, {}

    def upload(self, round_index: int, ids: Sequence[str], only_b: bool = False) -> tuple[list[AdapterMessage], Failed]:
        sent = []
        for cid in ids:
            c = self.by_id[cid]
            tensors = shared_tensors(c.model.get_tensors(), only_b)
            fault = PARAMETER_OF[self.behaviours.get(cid, "honest")]  # a simulated bad client sends its fault instead
            tensors = corrupt_tensors(fault, tensors, self.cfg.seed, round_index, cid)
            sent.append(AdapterMessage(round_index, cid, len(c.private), tensors))
        return sent, {}

    def predict(
        self, ids: Sequence[str], examples: Sequence[Example], base: bool, desc: str
    ) -> tuple[dict[str, list[str]], Failed]:
        from .client import FrozenBase, PoolAdapter

        clients = []
        for cid in ids:
            if cid in self.by_id:
                c = self.by_id[cid]
                if base and isinstance(c.model, PoolAdapter):  # the frozen base of its architecture
                    c = Client(cid, c.model_name, [], model=FrozenBase(self.pool, c.model_name))
                clients.append(c)
            else:  # a server-side adapter of the pool (the centralized model, FedAvg's global model)
                clients.append(Client(cid, self.pool.client_models[cid], [], model=PoolAdapter(self.pool, cid)))
        answered = answer_many(clients, list(examples), self.cfg.generation, seed=0, desc=desc)
        return {cid: a for cid, (a, _) in answered.items()}, {}


def dp_train_config(cfg: RunConfig, n_records: int, who: str = "") -> TrainConfig:
    """``cfg.train``, with the noise multiplier that meets ``train.dp_epsilon`` over ``n_records`` (unchanged without a target).

    The target is met over the planned training: the local epochs and every
    round's epochs over the private records (Poisson rate batch_size /
    records). Pseudo-labels add records, which lowers the rate and the real
    spend; the accountant reports what was spent.
    """
    t = cfg.train
    if t.dp_epsilon <= 0:
        return t
    from ..engine.privacy import noise_for_epsilon

    epochs = t.epochs + cfg.federation.rounds * t.round_epochs
    sigma = noise_for_epsilon(t.dp_epsilon, t.dp_delta, n_records, t.batch_size, epochs)
    log.info(
        "%s: DP-SGD noise multiplier %.3f for epsilon %g over %d epochs of %d records",
        who or "model",
        sigma,
        t.dp_epsilon,
        epochs,
        n_records,
    )
    return replace(t, dp_noise_multiplier=sigma)


def shared_tensors(tensors: dict[str, np.ndarray], only_b: bool) -> dict[str, np.ndarray]:
    """What a parameter method sends: every LoRA tensor, or only the B factors (FFA-LoRA)."""
    return {k: v for k, v in tensors.items() if "lora_B" in k} if only_b else tensors
