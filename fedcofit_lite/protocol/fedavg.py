"""Parameter aggregation, the baseline semantic consensus is measured against.

:class:`FedAvgServer` is the FedAvg strategy (McMahan et al., 2017) on LoRA adapters: it averages the
clients' :class:`~fedcofit_lite.protocol.messages.AdapterMessage` tensors weighted by their example
counts and sends the average back. FedProx (Li et al., 2020) uses the same server; only the clients'
training adds a proximal term. Like the consensus server it never touches a model and sets a bad
message aside rather than crashing the round; unlike consensus, it needs every client's tensors to
have the same names and shapes, so it cannot federate different architectures (:func:`incompatibility`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .messages import AdapterMessage, GlobalAdapterMessage, Tensors

log = logging.getLogger(__name__)

Shapes = dict[str, tuple[int, ...]]


class IncompatibleAdaptersError(ValueError):
    """Clients' adapters cannot be averaged (different architectures or LoRA settings)."""


def shared_tensors(tensors: Mapping[str, np.ndarray], only_b: bool) -> Tensors:
    """What a parameter method sends: every LoRA tensor, or only the B factors (FFA-LoRA)."""
    return {k: v for k, v in tensors.items() if "lora_B" in k or not only_b}


def shapes_of(tensors: Mapping[str, np.ndarray]) -> Shapes:
    return {k: tuple(v.shape) for k, v in tensors.items()}


def incompatibility(shapes_by_client: Mapping[str, Shapes], models: Mapping[str, str] | None = None) -> str | None:
    """Why these clients' adapters cannot be averaged element-wise, or None if they can."""
    items = list(shapes_by_client.items())
    differing = [(cid, shapes) for cid, shapes in items[1:] if shapes != items[0][1]]
    if not differing:
        return None
    (ref_id, ref), (cid, shapes) = items[0], differing[0]
    who = {c: f"{c} ({models[c]})" if models and c in models else c for c in (ref_id, cid)}
    missing, extra = sorted(set(ref) - set(shapes)), sorted(set(shapes) - set(ref))
    differ = [k for k in ref if k in shapes and ref[k] != shapes[k]]
    detail = (
        f"{len(missing)} tensors of {who[ref_id]} do not exist in {who[cid]} (e.g. {missing[:1]}), "
        f"{len(extra)} are new (e.g. {extra[:1]})"
        if missing or extra
        else f"{differ[0]} is {ref[differ[0]]} vs {shapes[differ[0]]}"
    )
    return (
        f"FedAvg averages adapter tensors element-wise, so every client needs the same architecture and LoRA "
        f"settings; the adapter of {who[cid]} differs from that of {who[ref_id]}: {detail}. "
        f"Use method 'consensus' (or 'local') for mixed architectures, or give all clients one model."
    )


def weighted_average(states: Sequence[Tensors], weights: Sequence[float]) -> Tensors:
    """Element-wise average of same-shaped tensor dicts; weights need not sum to 1."""
    w = np.asarray(weights, dtype=np.float64)
    if len(states) == 0 or w.sum() <= 0:
        raise ValueError("weighted_average needs at least one state with positive weight.")
    w = w / w.sum()
    # accumulate in float64 so the average does not depend on client order beyond rounding
    return {
        k: sum(wi * s[k].astype(np.float64) for wi, s in zip(w, states)).astype(states[0][k].dtype) for k in states[0]
    }


@dataclass
class FedAvgReport:
    """What the FedAvg server did in one round."""

    round: int
    clients: list[str]
    weights: dict[str, float]
    rejected: dict[str, str] = field(default_factory=dict)  # client id -> why


class FedAvgServer:
    """Average clients' adapters weighted by their example counts.

    Another parameter aggregation is a subclass that overrides :meth:`combine` (the checks stay).

    Parameters
    ----------
    max_abs : float
        Tensors with a value above this magnitude (or non-finite) are rejected: an entry that large is a fault.
    """

    def __init__(self, max_abs: float = 1e4) -> None:
        self.max_abs = max_abs
        self.reference: Shapes | None = None  # names/shapes of the first accepted round

    def check(self, msg: AdapterMessage, round_index: int, reference: Shapes | None) -> str | None:
        """Why ``msg`` must be rejected, or None when it is acceptable."""
        if msg.round != round_index:
            return f"message is for round {msg.round}, server is in round {round_index}"
        if msg.n_examples <= 0:
            return "n_examples must be > 0 (it is the client's FedAvg weight)"
        if reference is not None and (shapes := shapes_of(msg.tensors)) != reference:
            return incompatibility({"expected": reference, msg.client_id: shapes}) or "tensor shapes differ"
        for name, t in msg.tensors.items():
            if not np.issubdtype(t.dtype, np.floating):
                return f"tensor {name} has dtype {t.dtype}, expected a float type"
            if not np.all(np.isfinite(t)) or (t.size and float(np.abs(t).max()) > self.max_abs):
                return f"tensor {name} has non-finite values or values above {self.max_abs:g}"
        return None

    def aggregate(
        self, round_index: int, messages: Sequence[AdapterMessage]
    ) -> tuple[GlobalAdapterMessage, FedAvgReport]:
        """Validate, then average the accepted adapters weighted by ``n_examples``."""
        accepted, rejected = [], {}
        reference = self.reference
        for msg in messages:
            why = self.check(msg, round_index, reference)
            if why is None:
                accepted.append(msg)
                reference = reference or shapes_of(msg.tensors)
            else:
                rejected[msg.client_id] = why
                log.warning("round %d: rejected adapter of client %s: %s", round_index, msg.client_id, why)
        if not accepted:
            raise RuntimeError(f"round {round_index}: no acceptable adapters ({rejected}); cannot average.")
        self.reference = reference
        total = sum(m.n_examples for m in accepted)
        avg = self.combine([m.tensors for m in accepted], [m.n_examples for m in accepted])
        weights = {m.client_id: m.n_examples / total for m in accepted}
        report = FedAvgReport(round_index, [m.client_id for m in accepted], weights, rejected)
        return GlobalAdapterMessage(round=round_index, tensors=avg), report

    def combine(self, states: Sequence[Tensors], weights: Sequence[float]) -> Tensors:
        """The global adapter from the accepted clients' tensors and their example counts: the weighted average."""
        return weighted_average(states, weights)
