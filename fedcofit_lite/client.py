"""Client side of the protocol: private data, pseudo-labels received, answers sent.

A client holds no model object: its model is a named adapter in a
:class:`~fedcofit_lite.pool.ModelPool` (one shared base per architecture), so
the federation loop can batch many clients' work together. What the client
owns is its data and what it has received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .config import ClientConfig
from .consensus import normalize_answer
from .data import Example
from .finetune import TrainRecord
from .messages import AnswersMessage, PseudoLabelsMessage


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
    """

    client_id: str
    model_name: str
    private: list[Example]
    pseudo_labels: list[TrainRecord] = field(default_factory=list)
    own_answers: dict[str, str] = field(default_factory=dict)
    policy: ClientConfig = field(default_factory=ClientConfig)
    _labels: dict[str, TrainRecord] = field(default_factory=dict, repr=False)  # prompt id -> label

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
        return AnswersMessage(round=round, client_id=self.client_id, prompt_ids=list(prompt_ids), answers=list(answers), confidence=conf)

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
        self._labels = dict(zip(prompt_ids, records)) if prompt_ids is not None else {str(i): r for i, r in enumerate(records)}


def round_confidence(c: float) -> float:
    """Confidences travel with 3 decimals: enough to weigh, fewer bytes."""
    return float(round(min(1.0, max(0.0, c)), 3))
