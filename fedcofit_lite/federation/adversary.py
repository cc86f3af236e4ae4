"""Simulated bad clients (``federation.behaviours``, ``docs/robustness.md``): what a faulty or malicious participant
sends instead of honest work: answers under consensus (:func:`corrupt_answers`), the parameter fault each maps to
(:data:`PARAMETER_OF`) under FedAvg/FedProx (:func:`corrupt_tensors`). Every behaviour is deterministic in (seed,
round, prompt or tensor name), so runs with faults are as reproducible as honest ones.
"""

from __future__ import annotations

import hashlib
import typing
from collections.abc import Mapping, Sequence

import numpy as np

from ..config import Behaviour

ANSWER_BEHAVIOURS: tuple[str, ...] = typing.get_args(Behaviour)
PARAMETER_BEHAVIOURS = ("honest", "noise", "scaled", "colluder")
# A client configured with an answer behaviour sends this parameter fault under FedAvg.
PARAMETER_OF = {
    "honest": "honest",
    "random_text": "noise",
    "constant": "scaled",
    "echo": "scaled",
    "colluder": "colluder",
}
CONSTANT_ANSWER = "I don't know."
SCALE = -10.0  # "scaled": a boosted, sign-flipped update
_WORDS = tuple("apple river seven blue quickly table north paper cloud forty green march stone ninety".split())


def _rng(*keys: object) -> np.random.Generator:
    """A generator seeded by a stable hash of ``keys`` (Python's hash() is salted per process)."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def collusion_answers(lead_answers: Sequence[str], prompt_ids: Sequence[str]) -> list[str]:
    """The wrong answers a colluding group agrees on: its lead's answer to the *next* prompt of the same family.

    Plausible and wrong, and identical for every colluder: in embedding space the group is one tight cluster."""
    family = [p.rsplit("-", 1)[0] for p in prompt_ids]
    out = []
    for i, f in enumerate(family):
        same = [j for j in range(len(prompt_ids)) if family[j] == f and j != i]
        after = [j for j in same if j > i]  # the next prompt of the family, else (the last) the first
        out.append(lead_answers[after[0] if after else same[0]] if same else "0")
    return out


def corrupt_answers(
    behaviour: str,
    answers: Sequence[str],
    prompt_ids: Sequence[str],
    instructions: Mapping[str, str],
    seed: int,
    round_index: int,
    client_id: str,
    agreed: Sequence[str] | None = None,
) -> list[str]:
    """What a client with ``behaviour`` sends instead of ``answers`` (one per prompt id); ``colluder`` sends ``agreed``,
    the colluding group's answers (:func:`collusion_answers`)."""
    if behaviour == "honest":
        return list(answers)
    if behaviour == "random_text":
        return [" ".join(_rng("random", seed, round_index, client_id, p).choice(_WORDS, size=3)) for p in prompt_ids]
    if behaviour == "constant":
        return [CONSTANT_ANSWER for _ in prompt_ids]
    if behaviour == "echo":
        return [instructions[p] for p in prompt_ids]
    if behaviour == "colluder":
        if agreed is None:
            raise ValueError("behaviour 'colluder' needs the group's agreed answers (collusion_answers).")
        return list(agreed)
    raise ValueError(f"unknown answer behaviour {behaviour!r}; choose one of {ANSWER_BEHAVIOURS}.")


def apply_behaviours(
    behaviours: Mapping[str, str],
    answers: Mapping[str, Sequence[str]],
    prompt_ids: Sequence[str],
    instructions: Mapping[str, str],
    seed: int,
    round_index: int,
) -> dict[str, list[str]]:
    """Every client's sent answers, given each client's behaviour (missing = honest) and its honest ``answers``."""
    colluders = [c for c in answers if behaviours.get(c, "honest") == "colluder"]
    agreed = collusion_answers(answers[colluders[0]], prompt_ids) if colluders else None
    return {
        c: corrupt_answers(behaviours.get(c, "honest"), a, prompt_ids, instructions, seed, round_index, c, agreed)
        for c, a in answers.items()
    }


def corrupt_tensors(
    behaviour: str, tensors: Mapping[str, np.ndarray], seed: int, round_index: int, client_id: str
) -> dict[str, np.ndarray]:
    """What a client with parameter fault ``behaviour`` uploads instead of its adapter ``tensors`` (``noise``: Gaussian
    noise at three times each tensor's own spread, 0.02 for one still all zero)."""
    if behaviour == "honest":
        return dict(tensors)
    if behaviour == "scaled":
        return {k: (v * SCALE).astype(v.dtype) for k, v in tensors.items()}
    if behaviour in ("noise", "colluder"):
        who = "colluders" if behaviour == "colluder" else client_id  # colluders draw the same noise
        draw = {k: _rng("noise", seed, round_index, who, k).standard_normal(v.shape) for k, v in tensors.items()}
        return {k: (draw[k] * (float(v.std()) or 0.02) * 3).astype(v.dtype) for k, v in tensors.items()}
    raise ValueError(f"unknown parameter behaviour {behaviour!r}; choose one of {PARAMETER_BEHAVIOURS}.")
