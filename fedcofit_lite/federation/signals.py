"""The clients' side of the competence signals: each client measures, for each public prompt, how likely it is right.

:mod:`fedcofit_lite.protocol.competence` holds the measures; this module gives them what a client has: its private
prompts, its model (to sample its own answers again) and the public sentence embedder the server names in the run's
configuration. In process the clients' work is batched (one embedding call, one generation call per sample for every
client), as their answers are; each value depends only on that client's own data and model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from ..config import RunConfig
from ..protocol import competence
from ..protocol.cluster import clusterer_from_config
from ..tasks.data import Example
from ..tasks.evaluate import correct
from .client import Client, answer_many

EmbedFn = Callable[[list[str]], np.ndarray]
Signals = dict[str, dict[str, list[float]]]  # client id -> signal name -> one value per public prompt


def prompt_text(e: Example) -> str:
    """The text of a prompt as a client embeds it: the instruction, then its context."""
    return e.instruction + (f"\n\n{e.context}" if e.context else "")


def measure(
    clients: Sequence[Client],
    public: Sequence[Example],
    cfg: RunConfig,
    round_index: int,
    names: Sequence[str],
    embed: EmbedFn | None,
    confidence: dict[str, list[float]] | None = None,
) -> Signals:
    """Each client's signals ``names`` for every prompt of ``public`` (in order), rounded as sent (3 decimals).

    ``confidence`` (client id -> its answers' confidences) is what the calibrated signal maps.
    """
    names = [n for n in competence.check_signals(names) if clients]
    if not names:
        return {}
    embedded = [n for n in names if n != "calibrated"]
    if embedded and embed is None:
        raise ValueError(
            f"competence signals {embedded} need the run's sentence embedder on the clients' side; this engine gave "
            "none (in process, the Federation passes its embedder to the cohort)."
        )
    compute = {
        "calibrated": lambda: calibrated(clients, cfg, round_index, confidence or {}),
        "closeness": lambda: closeness(clients, public, embed),
        "consistency": lambda: consistency(clients, public, cfg, round_index, embed),
    }
    out: Signals = {c.client_id: {} for c in clients}
    for name in [n for n in compute if n in names]:  # in this order, whatever the order of names
        for c, values in zip(clients, compute[name]()):
            out[c.client_id][name] = values
    return out


def closeness(clients: Sequence[Client], public: Sequence[Example], embed: EmbedFn) -> list[list[float]]:
    """Per client, :func:`~fedcofit_lite.protocol.competence.closeness` of each public prompt to its private prompts."""
    texts = [prompt_text(e) for e in public]
    todo = [c for c in clients if c.private_vectors is None]
    if todo:  # a client's private prompts never change: embedded once per run
        private = [[prompt_text(e) for e in c.private] for c in todo]
        vectors = np.asarray(embed([t for p in private for t in p] + texts))
        *parts, public_vectors = np.split(vectors, np.cumsum([len(p) for p in private]))
        for c, part in zip(todo, parts):
            c.private_vectors = part
    else:
        public_vectors = np.asarray(embed(texts))
    return [_rounded(competence.closeness(public_vectors, c.private_vectors)) for c in clients]


def calibrated(
    clients: Sequence[Client], cfg: RunConfig, round_index: int, confidence: dict[str, list[float]]
) -> list[list[float]]:
    """Per client, :func:`~fedcofit_lite.protocol.competence.calibrate` of its answers' confidences, fitted on its held-out records.

    Each client answers its ``calibration`` records (held out of training, ``competence.holdout``) with its
    current model and scores them against its own references, which it holds.
    """
    if any(not c.calibration for c in clients):
        raise ValueError(
            "the calibrated signal needs private records held out of training: set competence.holdout (e.g. 8)."
        )
    out = []
    for c in clients:
        seed = cfg.seed + round_index
        answers, conf = answer_many([c], c.calibration, cfg.generation, seed=seed, desc="calibrate")[c.client_id]
        right = np.array([correct(a, e.response, e.family) >= 1.0 for a, e in zip(answers, c.calibration)])
        out.append(_rounded(competence.calibrate(np.array(conf), right, np.array(confidence[c.client_id]))))
    return out


def consistency(
    clients: Sequence[Client], public: Sequence[Example], cfg: RunConfig, round_index: int, embed: EmbedFn
) -> list[list[float]]:
    """Per client, :func:`~fedcofit_lite.protocol.competence.consistency` of its ``competence.samples`` sampled answers.

    Sample ``s`` of a round is drawn with seed ``(seed, round, s)``, at ``generation.temperature`` and
    ``generation.top_p``; the samples are clustered with the run's consensus clusterer.
    """
    k = cfg.competence.samples
    sampling = replace(cfg.generation, do_sample=True)
    samples = []  # per sample: client id -> answers (one per public prompt)
    for s in range(k):
        seed = cfg.seed * 1_000_003 + round_index * 1_009 + 7_919 * (s + 1)
        got = answer_many(clients, list(public), sampling, seed=seed, desc=f"sample {s + 1}/{k} r{round_index}")
        samples.append({cid: a for cid, (a, _) in got.items()})
    texts = [t or " " for smp in samples for c in clients for t in smp[c.client_id]]  # an empty sample embeds as " "
    vectors = np.asarray(embed(texts)).reshape(k, len(clients), len(public), -1)  # (k, clients, prompts, d)
    clusterer = clusterer_from_config(cfg.consensus)
    return [
        _rounded(competence.consistency(list(vectors[:, j].swapaxes(0, 1)), clusterer)) for j in range(len(clients))
    ]


def _rounded(values: np.ndarray) -> list[float]:
    """Signals travel with 3 decimals, as confidences do."""
    return [round(float(v), 3) for v in values]
