"""Client side of the protocol: one client's data, what it received and what it sends, on either engine.

A :class:`Client` owns its private data, pseudo-labels, simulated behaviour, DP-SGD accountant and the model that
trains and answers for it: :class:`PoolAdapter` (its LoRA adapter on a shared pool), or, never training,
:class:`FrozenBase` or :class:`BlackBox`. ``LocalCohort`` holds all clients (:func:`answer_many` batches them); a
Flower ClientApp holds one. No model library is imported here: the method registry above runs without torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config import ClientConfig, GenerationConfig, TrainConfig
from ..protocol.fedavg import shared_tensors
from ..protocol.messages import AdapterMessage, AnswersMessage, GlobalAdapterMessage, PseudoLabelsMessage
from ..tasks.data import Example
from ..tasks.evaluate import last_epoch_loss, normalize_answer
from .adversary import PARAMETER_OF, corrupt_tensors

if TYPE_CHECKING:
    from ..engine.batching import TrainRecord
    from ..engine.collect import GenerationRequest


@dataclass(frozen=True)
class TrainPlan:
    """What the server asks of a client in one training stage: take what it sends (``labels``: pseudo-labels;
    ``adapter``: a global adapter, only the tensors it carries with ``partial``), then fine-tune for ``epochs`` on the
    private data (+ the pseudo-labels with ``pseudo_labels``; FedProx term ``prox_mu``; only B with ``freeze_a``).
    Black-box clients take the message and skip the training."""

    epochs: int
    labels: PseudoLabelsMessage | None = None
    adapter: GlobalAdapterMessage | None = None
    partial: bool = False
    pseudo_labels: bool = False
    prox_mu: float = 0.0
    freeze_a: bool = False

    def options(self) -> dict[str, Any]:
        """The plain fields (everything but the messages), e.g. for a Flower config record."""
        plain = ("epochs", "partial", "pseudo_labels", "freeze_a")
        return {**{k: getattr(self, k) for k in plain}, "prox_mu": float(self.prox_mu)}


@dataclass(frozen=True)
class TrainResult:
    """One client's training in one stage: the last epoch's mean loss and the optimizer steps."""

    loss: float
    steps: int


@dataclass
class Client:
    """One federation member: ``client_id`` (also its adapter's name), the architecture ``model_name`` it runs, and
    ``private`` examples that never leave it.

    ``policy`` (``client.*``) says how it keeps and weighs pseudo-labels; ``index`` is its position (its seeds, its
    Flower ``partition-id``); :func:`~fedcofit_lite.federation.cohort.equip` sets ``train_cfg`` and ``model``.
    ``own_answers`` is what it sent last (to recognise its own answer coming back); ``server_holds`` its last answers
    message the server accepted (``federation.send_changed`` sends what changed since); :meth:`state` is all it keeps.
    """

    client_id: str
    model_name: str
    private: list[Example]
    policy: ClientConfig = field(default_factory=ClientConfig)
    index: int = 0
    behaviour: str = "honest"  # simulated (federation.adversary)
    train_cfg: TrainConfig | None = field(default=None, repr=False)
    model: PoolAdapter | FrozenBase | BlackBox | None = field(default=None, repr=False)
    pseudo_labels: list[TrainRecord] = field(default_factory=list, repr=False)
    own_answers: dict[str, str] = field(default_factory=dict, repr=False)
    accountant: Any = field(default=None, repr=False)
    server_holds: AnswersMessage | None = field(default=None, repr=False)
    private_vectors: Any = field(default=None, repr=False)  # (n, d) its private prompts under the public embedder
    calibration: list[Example] = field(default_factory=list, repr=False)  # private records held out of training
    _labels: dict[str, TrainRecord] = field(default_factory=dict, repr=False)  # prompt id -> label

    @property
    def trainable(self) -> bool:
        """False for a black-box client: it answers and never trains."""
        return self.model is not None and self.model.trainable

    def private_records(self) -> list[TrainRecord]:
        """The private examples as training records."""
        return [_record(e.instruction, e.context, e.response) for e in self.private]

    def training_records(self, pseudo_labels: bool = True) -> list[TrainRecord]:
        """Private examples plus (with ``pseudo_labels``) the pseudo-labels, each ``client.pseudo_repeats`` times."""
        repeats = self.policy.pseudo_repeats if pseudo_labels else 0
        return self.private_records() + list(self.pseudo_labels) * repeats

    def answers_message(
        self,
        round: int,
        prompt_ids: Sequence[str],
        answers: Sequence[str],
        confidence: Sequence[float] | None = None,
        signals: Mapping[str, Sequence[float]] | None = None,
    ) -> AnswersMessage:
        """The message carrying this round's answers (and the confidences and competence signals the rule reads)."""
        self.own_answers = dict(zip(prompt_ids, answers))
        conf = [round_confidence(c) for c in confidence] if confidence is not None else None
        sig = {n: [round_confidence(v) for v in vs] for n, vs in signals.items()} if signals else None
        return AnswersMessage(round, self.client_id, list(prompt_ids), list(answers), conf, sig)

    def receive(self, msg: PseudoLabelsMessage, public: Mapping[str, Example]) -> None:
        """Turn received consensus answers into training records for the public prompts.

        Under ``self.policy`` (:class:`~fedcofit_lite.config.ClientConfig`): ``accumulate`` keeps earlier rounds'
        labels (the newest per prompt), ``skip_own`` drops a label equal to this client's own answer (and any older
        label of that prompt), ``weight_by_score`` weighs each label's loss by the agreement the server sent with it.
        """
        labels = dict(self._labels) if self.policy.accumulate else {}
        for p, answer, score in zip(msg.prompt_ids, msg.answers, msg.agreement):
            if p not in public:
                continue
            if self.policy.skip_own and normalize_answer(answer) == normalize_answer(self.own_answers.get(p, "\0")):
                labels.pop(p, None)
                continue
            weight = float(score) if self.policy.weight_by_score else 1.0
            labels[p] = _record(public[p].instruction, public[p].context, answer, weight)
        self._set_labels(labels)

    def take(self, plan: TrainPlan, public: Mapping[str, Example]) -> None:
        """Take what the server sent with ``plan``: pseudo-labels, or a global adapter to load."""
        if plan.labels is not None:
            self.receive(plan.labels, public)
        if plan.adapter is not None:
            self.model.set_tensors(plan.adapter.tensors, partial=plan.partial)

    def fit(self, plan: TrainPlan, seed: int) -> TrainResult | None:
        """Fine-tune as ``plan`` says (after :meth:`take`); None for a black-box client, which never trains."""
        if not self.trainable:
            return None
        cfg = self.train_cfg
        if self.accountant is None and cfg.dp_noise_multiplier > 0:
            self.accountant = _accountant([])
        kw = {"prox_mu": plan.prox_mu, "accountant": self.accountant, "freeze_a": plan.freeze_a or cfg.only_b}
        steps = self.model.train(self.training_records(plan.pseudo_labels), cfg, plan.epochs, seed, **kw)
        return TrainResult(last_epoch_loss(steps, plan.epochs), len(steps))

    def joint_job(self, plan: TrainPlan, seed: int) -> Any:
        """Its share of a step it trains in together with other clients of its pool (``train.together``); None when it
        trains alone: without an adapter on a pool, or under DP-SGD (per-example clipping)."""
        cfg = self.train_cfg
        pooled = self.trainable and isinstance(self.model, PoolAdapter) and cfg is not None
        if not (pooled and cfg.together and cfg.dp_noise_multiplier <= 0):
            return None
        from ..engine.finetune import TrainJob

        records, freeze_a = self.training_records(plan.pseudo_labels), plan.freeze_a or cfg.only_b
        return TrainJob(self.client_id, records, plan.epochs, seed, plan.prox_mu, freeze_a)

    def upload(self, round_index: int, only_b: bool, seed: int) -> AdapterMessage:
        """Its adapter tensors (only the LoRA B factors with ``only_b``), or the fault its behaviour sends instead."""
        tensors = shared_tensors(self.model.get_tensors(), only_b)
        tensors = corrupt_tensors(PARAMETER_OF[self.behaviour], tensors, seed, round_index, self.client_id)
        return AdapterMessage(round_index, self.client_id, len(self.private), tensors)

    def epsilon(self, delta: float) -> float | None:
        """DP-SGD's epsilon spent so far at ``delta`` (None without DP)."""
        from ..engine.privacy import epsilon

        return epsilon(self.accountant, delta) if self.accountant is not None else None

    def frozen(self) -> Client:
        """This client answering with its frozen base model (stage ``base``); itself when it has no adapter."""
        if not isinstance(self.model, PoolAdapter):
            return self
        return Client(self.client_id, self.model_name, [], model=FrozenBase(self.model.pool, self.model_name))

    def state(self) -> dict[str, Any]:
        """What it remembers between rounds, as JSON: its labels by prompt, its last answers, its DP-SGD spend."""
        history = [list(h) for h in self.accountant.history] if self.accountant is not None else None
        labels = {p: dataclasses.asdict(r) for p, r in self._labels.items()}
        return {"labels": labels, "own_answers": dict(self.own_answers), "privacy": history}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Back to a :meth:`state` (missing parts: none; ``{}`` is a fresh start)."""
        self._set_labels({p: _record(**r) for p, r in state.get("labels", {}).items()})
        self.own_answers = dict(state.get("own_answers", {}))
        privacy = state.get("privacy")
        self.accountant = _accountant(privacy) if privacy is not None else None
        self.server_holds = None  # the server it talks to from here holds none of its answers

    def _set_labels(self, labels: dict[str, TrainRecord]) -> None:
        self._labels = labels
        self.pseudo_labels = list(labels.values())


def _record(*args: Any, **kw: Any) -> TrainRecord:
    from ..engine.batching import TrainRecord  # torch loads with the model, not with this module

    return TrainRecord(*args, **kw)


def _accountant(history: Sequence[Sequence[float]]) -> Any:
    from ..engine.privacy import new_accountant

    accountant = new_accountant()
    accountant.history = [tuple(h) for h in history]
    return accountant


def round_confidence(c: float) -> float:
    """Confidences travel with 3 decimals: enough to weigh, fewer bytes."""
    return float(round(min(1.0, max(0.0, c)), 3))


# -- what trains and answers for a client -------------------------------------------
@dataclass
class PoolAdapter:
    """A client's LoRA adapter ``adapter_id`` on a shared model pool."""

    pool: Any  # an engine.pool.ModelPool (not imported: the pool sits above this module's imports)
    adapter_id: str
    trainable = True

    @property
    def model_name(self) -> str:
        return self.pool.client_models[self.adapter_id]

    def request(self, e: Example) -> GenerationRequest:
        return self.pool.request(self.adapter_id, e.instruction, e.context)

    def train(self, records: Sequence[TrainRecord], cfg: TrainConfig, epochs: int, seed: int, **kw: Any) -> list[float]:
        return self.pool.train(self.adapter_id, records, cfg, epochs, seed, **kw)

    def get_tensors(self) -> dict:
        return self.pool.get_tensors(self.adapter_id)

    def set_tensors(self, tensors: Mapping, partial: bool = False) -> None:
        self.pool.set_tensors(self.adapter_id, tensors, partial=partial)


class _NoAdapter:
    """A black-box client's refusal of what needs an adapter."""

    trainable = False

    def get_tensors(self) -> dict:
        raise ValueError("a black-box client has no adapter tensors.")

    def set_tensors(self, tensors: Mapping, partial: bool = False) -> None:
        raise ValueError("a black-box client has no adapter to load tensors into.")


@dataclass
class FrozenBase(_NoAdapter):
    """A black-box client that answers with the frozen base model ``model_name`` of a pool."""

    pool: Any  # an engine.pool.ModelPool
    model_name: str

    def request(self, e: Example) -> GenerationRequest:
        return self.pool.base_request(self.model_name, e.instruction, e.context)


@dataclass
class BlackBox(_NoAdapter):
    """A black-box client: ``fn`` maps a list of prompts (instruction, then context) to a list of answers, or of
    ``(answer, confidence)`` pairs; plain answers get confidence 0.5 (unknown)."""

    fn: Callable[[list[str]], list[Any]]
    model_name: str = "black-box"

    def answer(self, examples: Sequence[Example]) -> tuple[list[str], list[float]]:
        prompts = [e.instruction + (f"\n\n{e.context}" if e.context else "") for e in examples]
        out = list(self.fn(prompts))
        if len(out) != len(prompts):
            raise ValueError(
                f"black-box answerer returned {len(out)} answers for {len(prompts)} prompts; return one per prompt."
            )
        answers = [str(a[0] if isinstance(a, tuple) else a).strip() for a in out]
        conf = [min(1.0, max(0.0, float(a[1]))) if isinstance(a, tuple) else 0.5 for a in out]
        return answers, conf


def answer_many(
    clients: Sequence[Client], examples: Sequence[Example], cfg: GenerationConfig, seed: int = 0, desc: str = "generate"
) -> dict[str, tuple[list[str], list[float]]]:
    """Every client answers every example; returns client id -> (answers, confidences).

    Clients on the same pool are answered in one batched call (their requests share batches), identical requests once
    (the frozen base of an architecture answers a prompt once, whoever asked). Callables are called once per client.
    """
    out: dict[str, tuple[list[str], list[float]]] = {}
    pools: dict[int, tuple[Any, list[Client]]] = {}
    for c in clients:
        if isinstance(c.model, BlackBox):
            out[c.client_id] = c.model.answer(examples)
        else:
            pools.setdefault(id(c.model.pool), (c.model.pool, []))[1].append(c)
    for pool, members in pools.values():
        requests = {c.client_id: [c.model.request(e) for e in examples] for c in members}
        unique = list(dict.fromkeys(r for rs in requests.values() for r in rs))
        answers, conf = pool.answer(unique, cfg, seed=seed, desc=desc)
        got = {r: (a, k) for r, a, k in zip(unique, answers, conf)}
        for cid, rs in requests.items():
            out[cid] = ([got[r][0] for r in rs], [got[r][1] for r in rs])
    return {c.client_id: out[c.client_id] for c in clients}
