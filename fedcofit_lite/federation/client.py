"""Client side of the protocol: private data, pseudo-labels received, answers sent, and the model behind them.

A :class:`Client` owns its data, what it has received, and a model backend
that trains and answers:

:class:`PoolAdapter`
    its LoRA adapter on a shared :class:`~fedcofit_lite.engine.pool.ModelPool` (one
    base per architecture). In-process, all clients share one pool so their
    generation is batched together (:func:`answer_many`); on Flower each
    client process holds a pool of its own.
:class:`FrozenBase`
    a black-box client answering with the frozen base model; it never trains.
:class:`BlackBox`
    any callable that maps prompts to answers (another model, an API, a rule);
    it never trains and shares no tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import ClientConfig, GenerationConfig, TrainConfig
from ..engine.batching import TrainRecord
from ..engine.collect import GenerationRequest
from ..protocol.consensus import normalize_answer
from ..protocol.messages import AnswersMessage, PseudoLabelsMessage
from ..tasks.data import Example


@dataclass
class Client:
    """One federation member.

    Attributes
    ----------
    client_id : str
        Also the name of its adapter in the model pool.
    model_name : str
        Architecture it runs (clients may differ).
    private : list of Example
        Labelled private training data; never leaves the client.
    pseudo_labels : list of TrainRecord
        The pseudo-labels it trains on: the latest round's, or every round's
        newest per prompt with ``client.accumulate`` (see :meth:`receive`).
    own_answers : dict
        Prompt id -> the answer it sent last (to recognise its own answer coming back).
    model : PoolAdapter, FrozenBase, BlackBox or None
        What trains and answers for it (set by the engine).
    """

    client_id: str
    model_name: str
    private: list[Example]
    pseudo_labels: list[TrainRecord] = field(default_factory=list)
    own_answers: dict[str, str] = field(default_factory=dict)
    policy: ClientConfig = field(default_factory=ClientConfig)
    _labels: dict[str, TrainRecord] = field(default_factory=dict, repr=False)  # prompt id -> label
    model: Any = field(default=None, repr=False)

    @property
    def trainable(self) -> bool:
        """False for a black-box client: it answers and never trains."""
        return self.model is not None and self.model.trainable

    def train(
        self,
        cfg: TrainConfig,
        epochs: int,
        seed: int,
        *,
        pseudo_labels: bool = False,
        prox_mu: float = 0.0,
        accountant: Any = None,
        freeze_a: bool = False,
    ) -> list[float]:
        """Fine-tune on the private data (+ the pseudo-labels with ``pseudo_labels``); returns per-step losses."""
        if not self.trainable:
            raise ValueError(f"{self.client_id} is a black-box client: it answers and never trains.")
        records = self.records(pseudo_labels)
        return self.model.train(records, cfg, epochs, seed, prox_mu=prox_mu, accountant=accountant, freeze_a=freeze_a)

    def records(self, pseudo_labels: bool) -> list[TrainRecord]:
        """What it trains on: the private examples, plus the pseudo-labels with ``pseudo_labels``."""
        return self.training_records() if pseudo_labels else self.private_records()

    def private_records(self) -> list[TrainRecord]:
        """The private examples as training records."""
        return [TrainRecord(e.instruction, e.context, e.response) for e in self.private]

    def training_records(self) -> list[TrainRecord]:
        """Private examples plus the pseudo-labels, each repeated ``client.pseudo_repeats`` times."""
        return self.private_records() + list(self.pseudo_labels) * self.policy.pseudo_repeats

    def answers_message(
        self, round: int, prompt_ids: Sequence[str], answers: Sequence[str], confidence: Sequence[float] | None = None
    ) -> AnswersMessage:
        """The message carrying this round's answers (and confidences when the rule uses them)."""
        self.own_answers = dict(zip(prompt_ids, answers))
        conf = [round_confidence(c) for c in confidence] if confidence is not None else None
        return AnswersMessage(
            round=round, client_id=self.client_id, prompt_ids=list(prompt_ids), answers=list(answers), confidence=conf
        )

    def receive(self, msg: PseudoLabelsMessage, public: Mapping[str, Example]) -> None:
        """Turn received consensus answers into training records for the public prompts.

        Under ``self.policy`` (:class:`~fedcofit_lite.config.ClientConfig`):
        ``accumulate`` keeps earlier rounds' labels (the newest per prompt),
        ``skip_own`` drops a label equal to this client's own answer (and any
        older label of that prompt), ``weight_by_score`` weighs each label's
        loss by the agreement the server sent with it.
        """
        labels = dict(self._labels) if self.policy.accumulate else {}
        for p, answer, score in zip(msg.prompt_ids, msg.answers, msg.agreement):
            if p not in public:
                continue
            if self.policy.skip_own and normalize_answer(answer) == normalize_answer(self.own_answers.get(p, "\0")):
                labels.pop(p, None)
                continue
            weight = float(score) if self.policy.weight_by_score else 1.0
            labels[p] = TrainRecord(public[p].instruction, public[p].context, answer, weight)
        self._labels = labels
        self.pseudo_labels = list(labels.values())

    def restore_labels(self, records: Sequence[TrainRecord], prompt_ids: Sequence[str] | None = None) -> None:
        """Set the pseudo-labels (e.g. from a checkpoint), keyed by prompt id when known."""
        self.pseudo_labels = list(records)
        self._labels = (
            dict(zip(prompt_ids, records)) if prompt_ids is not None else {str(i): r for i, r in enumerate(records)}
        )


def round_confidence(c: float) -> float:
    """Confidences travel with 3 decimals: enough to weigh, fewer bytes."""
    return float(round(min(1.0, max(0.0, c)), 3))


# -- what trains and answers for a client -------------------------------------------


@dataclass
class PoolAdapter:
    """A client's LoRA adapter ``adapter_id`` on a shared model pool."""

    pool: Any  # ModelPool
    adapter_id: str
    trainable = True

    @property
    def model_name(self) -> str:
        return self.pool.client_models[self.adapter_id]

    def request(self, e: Example) -> GenerationRequest:
        return GenerationRequest(self.adapter_id, e.instruction, e.context)

    def train(self, records: Sequence[TrainRecord], cfg: TrainConfig, epochs: int, seed: int, **kw: Any) -> list[float]:
        return self.pool.train(self.adapter_id, records, cfg, epochs, seed, **kw)

    def get_tensors(self) -> dict:
        return self.pool.get_tensors(self.adapter_id)

    def set_tensors(self, tensors: Mapping, partial: bool = False) -> None:
        self.pool.set_tensors(self.adapter_id, tensors, partial=partial)


@dataclass
class FrozenBase:
    """A black-box client that answers with the frozen base model ``model_name`` of a pool."""

    pool: Any  # ModelPool
    model_name: str
    trainable = False

    def request(self, e: Example) -> GenerationRequest:
        return self.pool.base_request(self.model_name, e.instruction, e.context)

    def get_tensors(self) -> dict:
        raise ValueError("a black-box client has no adapter tensors.")

    def set_tensors(self, tensors: Mapping, partial: bool = False) -> None:
        raise ValueError("a black-box client has no adapter to load tensors into.")


@dataclass
class BlackBox:
    """A black-box client: ``fn`` maps a list of prompts (instruction, then context) to a list of answers.

    ``fn`` may also return ``(answer, confidence)`` pairs; plain answers get
    confidence 0.5 (unknown). It never trains and shares no tensors.
    """

    fn: Callable[[list[str]], list[Any]]
    model_name: str = "black-box"
    trainable = False

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

    def get_tensors(self) -> dict:
        raise ValueError("a black-box client has no adapter tensors.")

    def set_tensors(self, tensors: Mapping, partial: bool = False) -> None:
        raise ValueError("a black-box client has no adapter to load tensors into.")


def answer_many(
    clients: Sequence[Client], examples: Sequence[Example], cfg: GenerationConfig, seed: int = 0, desc: str = "generate"
) -> dict[str, tuple[list[str], list[float]]]:
    """Every client answers every example; returns client id -> (answers, confidences).

    Clients on the same pool are answered in one batched call (their
    requests share batches), identical requests once (the frozen base of an
    architecture answers a prompt once, whoever asked). Callables are called
    once per client.
    """
    out: dict[str, tuple[list[str], list[float]]] = {}
    pools: dict[int, tuple[Any, list[Client]]] = {}
    for c in clients:
        if isinstance(c.model, BlackBox):
            out[c.client_id] = c.model.answer(examples)
        else:
            pools.setdefault(id(c.model.pool), (c.model.pool, []))[1].append(c)
    for pool, members in pools.values():
        requests = [c.model.request(e) for c in members for e in examples]
        unique = list(dict.fromkeys(requests))
        answers, conf = pool.answer(unique, cfg, seed=seed, desc=desc)
        got = {r: (a, k) for r, a, k in zip(unique, answers, conf)}
        n = len(examples)
        for j, c in enumerate(members):
            rows = [got[r] for r in requests[j * n : (j + 1) * n]]
            out[c.client_id] = ([a for a, _ in rows], [k for _, k in rows])
    return {c.client_id: out[c.client_id] for c in clients}
