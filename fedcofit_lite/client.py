"""Client side of the protocol: private data, pseudo-labels received, answers sent.

A client holds no model object: its model is a named adapter in a
:class:`~fedcofit_lite.pool.ModelPool` (one shared base per architecture), so
the federation loop can batch many clients' work together. What the client
owns is its data and what it has received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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
        The latest consensus answers received (replaced each round).
    """

    client_id: str
    model_name: str
    private: list[Example]
    pseudo_labels: list[TrainRecord] = field(default_factory=list)

    def private_records(self) -> list[TrainRecord]:
        """The private examples as training records."""
        return [TrainRecord(e.instruction, e.context, e.response) for e in self.private]

    def training_records(self) -> list[TrainRecord]:
        """Private examples plus the current pseudo-labels."""
        return self.private_records() + list(self.pseudo_labels)

    def answers_message(self, round: int, prompt_ids: Sequence[str], answers: Sequence[str]) -> AnswersMessage:
        return AnswersMessage(round=round, client_id=self.client_id, prompt_ids=list(prompt_ids), answers=list(answers))

    def receive(self, msg: PseudoLabelsMessage, public: Mapping[str, Example]) -> None:
        """Turn received consensus answers into training records for the public prompts."""
        self.pseudo_labels = [
            TrainRecord(public[p].instruction, public[p].context, answer)
            for p, answer in zip(msg.prompt_ids, msg.answers)
            if p in public
        ]
