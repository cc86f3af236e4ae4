"""Server side of the protocol: validate answers, embed, find consensus, emit pseudo-labels.

The server never sees a model or a reference answer. It is given the public prompt ids, an ``embed_fn`` (texts -> unit
vectors) and a consensus estimator, so a real deployment can run it as is behind any transport.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import clone

from ..runlog import PseudoLabelRow
from .consensus import RULES, SemanticConsensus, build_consensus, normalize_answer
from .messages import AnswersMessage, MessageError, PseudoLabelsMessage, complete_answers

if TYPE_CHECKING:
    from .private_vote import NoisyVote

log = logging.getLogger(__name__)

EmbedFn = Callable[[list[str]], np.ndarray]


@dataclass
class RoundReport:
    """What the server decided in one round, one entry per public prompt answered."""

    round: int
    prompt_ids: list[str]
    consensus: list[str]
    agreement: list[float]
    cohesion: list[float]
    n_clusters: list[int]
    n_answers: list[int]
    kept: list[bool]
    clients: list[str]
    empty: list[bool] = field(default_factory=list)  # the consensus was an empty answer (never sent)
    vectors: np.ndarray | None = None  # (n_answers, d) the embeddings the rule saw, rows as row_clients/row_prompts
    row_clients: list[str] = field(default_factory=list)
    row_prompts: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # client id -> why

    def records(self) -> list[PseudoLabelRow]:
        """One row per prompt, for ``pseudo_labels/round_R.jsonl`` (``correct`` is the evaluator's to fill)."""
        columns = (self.prompt_ids, self.consensus, self.agreement, self.cohesion, self.n_clusters, self.n_answers)
        return [PseudoLabelRow(self.round, *row, kept, e) for *row, kept, e in zip(*columns, self.kept, self.empty)]


class ConsensusServer:
    """Aggregates a round's :class:`AnswersMessage` s into a :class:`PseudoLabelsMessage`.

    ``embed_fn`` maps texts to unit vectors (n, d); ``consensus`` is the unfitted estimator of a rule of
    :data:`~fedcofit_lite.protocol.consensus.RULES`, cloned each round, named ``rule`` in the metrics; answers longer
    than ``max_answer_chars`` are rejected (a client cannot flood the server); ``families`` (public, like the prompts)
    serve ``reliability_by="family"``; every message must carry the competence signal the rule reads
    (:class:`~fedcofit_lite.protocol.consensus.RuleSpec`), the server's ``signal``. With ``private`` (a
    :class:`~fedcofit_lite.protocol.private_vote.NoisyVote`, the ``vote`` rule) each label is the noisy majority of
    the normalized answers, released only above the vote's threshold, with agreement 1.0 (the true vote share is not
    private).
    """

    def __init__(
        self,
        prompt_ids: Sequence[str],
        embed_fn: EmbedFn,
        consensus: SemanticConsensus,
        max_answer_chars: int = 2000,
        families: Mapping[str, str] | None = None,
        rule: str = "custom",
        private: NoisyVote | None = None,
    ) -> None:
        plain_vote = consensus.grouping == "exact" and consensus.weighting == "uniform"
        if private is not None and not (RULES[rule].private if rule in RULES else plain_vote):
            why = "semantic clusters can move many votes when one client's answer changes; set consensus.rule=vote"
            raise ValueError(
                f"private consensus counts one vote per client on its normalized answer: it needs rule 'vote', got {rule!r} ({why})."
            )
        self.prompt_ids, self.embed_fn, self.consensus = list(prompt_ids), embed_fn, consensus
        self.max_answer_chars, self.families, self.private = max_answer_chars, dict(families or {}), private
        self.rule = rule  # the rule's name in consensus.RULES, for the record
        self.signal = RULES[rule].signal if rule in RULES else None
        self._known = set(self.prompt_ids)
        self.held: dict[str, AnswersMessage] = {}  # client id -> its last accepted (whole) answers message

    @property
    def needs_confidence(self) -> bool:
        """True when the rule weighs or filters answers by the clients' confidence."""
        return self.consensus.weighting == "confidence" or self.consensus.min_confidence > 0

    @property
    def asks(self) -> tuple[str, ...]:
        """What every client must send beside its answers: ``confidence`` and/or the rule's competence signal."""
        return (*(("confidence",) if self.needs_confidence else ()), *((self.signal,) if self.signal else ()))

    def check(self, msg: AnswersMessage, round_index: int) -> str | None:
        """Why ``msg`` must be rejected, or None when it is acceptable."""
        if msg.round != round_index:
            return f"message is for round {msg.round}, server is in round {round_index}"
        unknown = [p for p in msg.prompt_ids if p not in self._known]
        if unknown:
            return f"unknown prompt ids {unknown[:3]}{'...' if len(unknown) > 3 else ''}"
        if len(set(msg.prompt_ids)) != len(msg.prompt_ids):
            return "duplicate prompt ids"
        too_long = [p for p, a in zip(msg.prompt_ids, msg.answers) if len(a) > self.max_answer_chars]
        if too_long:
            return f"{len(too_long)} answers longer than max_answer_chars={self.max_answer_chars}"
        if self.needs_confidence and msg.confidence is None:
            return "the consensus rule weighs answers by confidence, but the message carries none"
        if self.signal and self.signal not in (msg.signals or {}):
            return f"the consensus rule reads the competence signal {self.signal!r}, but the message carries none"
        return None

    def screen(
        self, round_index: int, messages: Sequence[AnswersMessage]
    ) -> tuple[list[AnswersMessage], dict[str, str]]:
        """Check every message once: (the acceptable ones, client id -> why the others were rejected).

        A message of changed answers only (``base_round``, ``federation.send_changed``) is completed first with the
        answers the server holds of that client; the server holds each accepted (whole) message until the next one.
        """
        accepted, rejected = [], {}
        for sent in messages:
            msg, why = self._complete(sent)
            why = why or self.check(msg, round_index)
            if why is None:
                accepted.append(msg)
                self.held[msg.client_id] = msg
            else:
                rejected[msg.client_id] = why
                log.warning("round %d: rejected answers of client %s: %s", round_index, msg.client_id, why)
        return accepted, rejected

    def _complete(self, msg: AnswersMessage) -> tuple[AnswersMessage, str | None]:
        """A message of changed answers completed with the held ones, or why it cannot be (a whole message as it is)."""
        if msg.base_round is None:
            return msg, None
        held = self.held.get(msg.client_id)
        if held is None or held.round != msg.base_round:
            holds = "no answers" if held is None else f"the answers of round {held.round}"
            return msg, f"changed answers since round {msg.base_round}, but the server holds {holds} of this client"
        try:
            return complete_answers(msg, held), None
        except MessageError as err:
            return msg, str(err)

    def aggregate(
        self, round_index: int, messages: Sequence[AnswersMessage], rejected: dict[str, str] | None = None
    ) -> tuple[PseudoLabelsMessage, RoundReport]:
        """Find each prompt's consensus among the accepted messages (``messages`` already screened if ``rejected``)."""
        # 1. validate
        accepted, rejected = self.screen(round_index, messages) if rejected is None else (list(messages), rejected)
        if not accepted:
            raise RuntimeError(f"round {round_index}: no acceptable answers ({rejected}); cannot form a consensus.")
        # 2. embed, in prompt order so groups are contiguous
        by_prompt: dict[str, list[tuple[str, str, float | None, float | None]]] = {p: [] for p in self.prompt_ids}
        for msg in accepted:
            conf = msg.confidence if msg.confidence is not None else [None] * len(msg.answers)
            comp = (msg.signals or {}).get(self.signal) if self.signal else None
            for p, answer, c, k in zip(msg.prompt_ids, msg.answers, conf, comp or [None] * len(msg.answers)):
                by_prompt[p].append((answer, msg.client_id, c, k))
        rows = [(p, *entry) for p in self.prompt_ids for entry in by_prompt[p]]
        prompts, texts = [r[0] for r in rows], [r[1] for r in rows]
        vectors = np.asarray(self.embed_fn(texts))  # (n_answers, d)
        # 3-4. group per prompt under the rule, consensus of the dominant group, filters
        clients, families = [r[2] for r in rows], [self.families.get(r[0], "") for r in rows]
        confidence = [r[3] for r in rows] if self.needs_confidence else None
        competence = [r[4] for r in rows] if self.signal else None
        est = clone(self.consensus).fit(
            vectors,
            np.array(prompts, dtype=object),
            texts=texts,
            clients=clients,
            confidence=confidence,
            families=families,
            competence=competence,
        )
        consensus = [texts[i] for i in est.consensus_index_]
        keep = [bool(k) for k in est.keep_]
        if self.private is not None:  # the noisy vote decides what is released, and releases the normalized key
            # one vote per answer, on its normalized key; "" abstains
            votes = [[k for k in (normalize_answer(a) for a, *_ in by_prompt[g]) if k] for g in est.groups_]
            releases = self.private.release(votes, round_index)
            keep = [rel.key is not None for rel in releases]
            # what is sent is the released key; a withheld prompt keeps the plain vote's winner in the server's own record
            consensus = [rel.key if rel.key is not None else c for rel, c in zip(releases, consensus)]
        empty = [not c.strip() for c in consensus]  # an empty answer is never a pseudo-label
        if any(k and e for k, e in zip(keep, empty)):
            log.info(
                "round %d: %d prompts' consensus is an empty answer; not sent as pseudo-labels", round_index, sum(empty)
            )
        ids, keep = [str(g) for g in est.groups_], [k and not e for k, e in zip(keep, empty)]
        fitted = est.agreement_.tolist(), est.cohesion_.tolist(), est.n_clusters_.tolist(), est.n_answers_.tolist()
        senders = [m.client_id for m in accepted]
        report = RoundReport(
            round_index, ids, consensus, *fitted, keep, senders, empty, vectors, clients, prompts, rejected
        )
        # agreement scores travel with 4 decimals: enough to rank, fewer bytes
        agreement = [1.0 if self.private else round(a, 4) for a, k in zip(report.agreement, keep) if k]
        sent = [p for p, k in zip(ids, keep) if k], [c for c, k in zip(consensus, keep) if k]
        return PseudoLabelsMessage(round_index, *sent, agreement), report

    def privacy_spent(self, rounds: int, delta: float) -> tuple[float, float] | None:
        """Client-level (epsilon, total delta) of the labels released in ``rounds`` rounds (None without private consensus).

        Every round queries every public prompt (one with no answers too), so the count needs no state."""
        if self.private is None:
            return None
        from .private_vote import client_epsilon

        return client_epsilon(self.private.sigma, self.private.threshold, rounds * len(self.prompt_ids), delta)


def draw_vote_seed(consensus_cfg: Any) -> int:
    """The private vote's noise seed: ``consensus.dp_seed``, or a secret one from the OS when it is -1."""
    if consensus_cfg.dp_seed >= 0:
        return consensus_cfg.dp_seed
    log.info("private consensus: a secret noise seed from the OS (set consensus.dp_seed for a reproducible experiment)")
    return secrets.randbits(63)


def build_consensus_server(
    cfg: Any, public: Sequence[Any], embed_fn: EmbedFn, rule: str | None = None, vote_seed: int | None = None
) -> ConsensusServer:
    """The consensus server of a ``RunConfig`` under ``rule`` (default ``consensus.rule``) for the ``public`` examples;
    with ``consensus.dp_sigma > 0`` a noisy vote seeded by ``vote_seed``, its threshold covering every planned round."""
    c, rule, private = cfg.consensus, rule or cfg.consensus.rule, None
    if c.dp_sigma > 0:
        from .private_vote import NoisyVote, threshold_for

        if vote_seed is None:
            raise ValueError("a private vote needs its noise seed: pass vote_seed (see draw_vote_seed).")
        threshold = threshold_for(c.dp_sigma, len(public) * cfg.federation.rounds, c.dp_delta)
        private = NoisyVote(c.dp_sigma, threshold, vote_seed)
    families, ids = {e.id: e.family for e in public}, [e.id for e in public]
    return ConsensusServer(
        ids, embed_fn, build_consensus(c, rule), cfg.federation.max_answer_chars, families, rule, private
    )
