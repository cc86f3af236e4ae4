"""Membership inference: what each method's messages tell an attacker about a client's private records.

An attacker sees what a method sends and tries to tell a client's private training records (*members*) from records
of the same task families that no client trained on (*non-members*, drawn per client to match its family counts, else
an attack would detect the skewed mix, not membership). What a method sends (its registry entry's ``sends``) sets
what can be read (:data:`EXPOSES`) and so the attacks (:data:`ATTACKS`); a method that sends nothing, or the records
themselves, has no audit. Every attack scores each record, higher meaning "member":

* ``loss``: minus the record's mean answer-token loss under the adapter (Yeom et al., 2018);
* ``loss_ref``: the loss under the public base model minus that under the adapter, a reference that calibrates away
  how hard the record is (Watson et al., 2022; Carlini et al., 2022);
* ``query``: the cosine similarity to the record's response of the adapter's answer to its prompt;
* ``answers``: the largest cosine similarity to the record's response of the client's answers to its family's public
  prompts, all rounds (seen by the server); ``pseudo_labels``: the same over the kept pseudo-labels (every client).

The adapter attacked is each client's at the end of the run (``checkpoint/``): under FedAvg, what it would upload next
round. Consensus runs get the adapter attacks too, marked *not sent*: the leak its private model holds and the
protocol does not send. The results (ROC-AUC and the true-positive rate at 1% false positives, pooled over clients;
AUC 0.5 is chance) and the command: docs/privacy.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_config
from ..federation.methods import METHODS, method_spec
from ..progress import bar, bars_disabled
from ..runlog import read_answers, read_partition, read_pseudo_labels, read_records, rounds_of
from ..tasks.data import Example, build_suite
from .stats import Interval, interval

log = logging.getLogger(__name__)

# attack -> the exposure it reads; what a method sends (MethodSpec.sends) -> what an attacker can read
ATTACKS = dict(loss="adapter", loss_ref="adapter", query="adapter", answers="answers", pseudo_labels="pseudo_labels")
EXPOSES = {"answers": ("answers", "pseudo_labels"), "adapter": ("adapter",), "adapter_b": ("adapter",)}
FPR = 0.01  # the false-positive rate at which the true-positive rate is reported


class AuditError(ValueError):
    """A run folder the audit cannot read (the message says what is missing and how to get it)."""


# -- the metrics --------------------------------------------------------------
def roc_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """P(score of a random member > score of a random non-member), ties counting half (Mann-Whitney U)."""
    from scipy.stats import rankdata

    m, n = len(members), len(nonmembers)
    ranks = rankdata(np.concatenate([members, nonmembers]))  # average ranks: ties half
    return float((ranks[:m].sum() - m * (m + 1) / 2) / (m * n))


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, fpr: float = FPR) -> float:
    """Share of members scored above a threshold that at most ``fpr`` of the non-members pass."""
    k = int(np.floor(fpr * len(nonmembers)))  # non-members allowed above the threshold
    threshold = np.sort(nonmembers)[::-1][k]  # the (k+1)-th highest non-member score
    return float(np.mean(members > threshold))


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rates, true-positive rates) over every threshold, from (0, 0) to (1, 1)."""
    thresholds = np.unique(np.concatenate([members, nonmembers]))[::-1]
    fpr = np.array([0.0] + [np.mean(nonmembers >= t) for t in thresholds])
    tpr = np.array([0.0] + [np.mean(members >= t) for t in thresholds])
    return fpr, tpr


def attack_intervals(
    members: np.ndarray, nonmembers: np.ndarray, n_boot: int = 1000, seed: int = 0
) -> tuple[Interval, Interval]:
    """AUC and TPR at 1% FPR with 95% bootstrap intervals (members and non-members resampled separately)."""
    if n_boot < 1:
        raise AuditError(f"n_boot must be >= 1 bootstrap draws, got {n_boot}.")
    members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    if len(members) < 2 or len(nonmembers) < 2:
        raise AuditError(
            f"an attack needs at least 2 members and 2 non-members, got {len(members)} and {len(nonmembers)}."
        )
    rng = np.random.default_rng(seed)
    aucs, tprs = np.empty(n_boot), np.empty(n_boot)
    for b in range(n_boot):
        mb = members[rng.integers(0, len(members), len(members))]
        nb = nonmembers[rng.integers(0, len(nonmembers), len(nonmembers))]
        aucs[b], tprs[b] = roc_auc(mb, nb), tpr_at_fpr(mb, nb)
    return interval(roc_auc(members, nonmembers), aucs), interval(tpr_at_fpr(members, nonmembers), tprs)


# -- who is a member ------------------------------------------------------------
def membership_sets(
    train: Sequence[Example], partition: Mapping[str, Sequence[str]], seed: int = 0, pool: Sequence[Example] = ()
) -> dict[str, tuple[list[Example], list[Example]]]:
    """Client -> (members, non-members): its records, and as many unused records of each of its families (``train``
    records no client holds, then ``pool`` ones, e.g. the test split; too few is logged)."""
    by_id = {ex.id: ex for ex in train}
    used = {i for ids in partition.values() for i in ids}
    unknown = sorted(used - set(by_id))
    if unknown:
        raise AuditError(
            f"{len(unknown)} partitioned record(s) are not in the task suite (first: {unknown[0]!r}): the data changed since the run; audit it with the data it was trained on."
        )
    unused: dict[str, list[Example]] = {}
    for ex in (ex for ex in [*train, *pool] if ex.id not in used and ex.response):
        unused.setdefault(ex.family, []).append(ex)
    rng = np.random.default_rng([seed, 17])
    sets = {}
    for client, ids in partition.items():
        members = [by_id[i] for i in ids]
        nonmembers: list[Example] = []
        for family, want in Counter(ex.family for ex in members).items():
            have = unused.get(family, [])
            if len(have) < want:
                log.warning(
                    "client %s: family %s has %d members but only %d unused records", client, family, want, len(have)
                )
            picks = rng.choice(len(have), size=min(want, len(have)), replace=False) if have else []
            nonmembers += [have[i] for i in sorted(picks)]
        sets[client] = (members, nonmembers)
    return sets


# -- the attacks' scores --------------------------------------------------------
def record_losses(
    model: Any, tokenizer: Any, examples: Sequence[Example], adapter: str | None, max_length: int, batch_size: int = 16
) -> np.ndarray:
    """(n,) each record's mean loss over its answer tokens (:func:`~fedcofit_lite.engine.loss.answer_loss`, one group
    per record) under ``adapter`` (None: the base model alone), in batches of similar length (little padding)."""
    import torch

    from ..engine.batching import TrainRecord, collate, tokenize_records
    from ..engine.loss import answer_loss

    data = tokenize_records(
        tokenizer, [TrainRecord(e.instruction, e.context, e.response) for e in examples], max_length
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    if adapter is not None:
        model.set_adapter(adapter)
    order = sorted(range(len(data)), key=lambda i: len(data[i][0]))
    out = np.zeros(len(data))
    with torch.inference_mode(), model.disable_adapter() if adapter is None else contextlib.nullcontext():
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            batch = {k: v.to(device) for k, v in collate([data[j] for j in rows], pad).items()}
            groups = torch.arange(len(rows), device=device)
            out[rows] = answer_loss(model, batch, False, groups=groups, n_groups=len(rows)).cpu().numpy()
    return out


def text_attack(
    examples: Sequence[Example], exposed: Mapping[str, Sequence[str]], embed: Callable[[list[str]], np.ndarray]
) -> np.ndarray:
    """(n,) the ``answers`` / ``pseudo_labels`` score: each record's best match among the texts exposed for its family."""
    scores = np.empty(len(examples))
    vectors = embed([ex.response for ex in examples])  # (n, d), unit length
    for family in dict.fromkeys(ex.family for ex in examples):
        rows = [i for i, ex in enumerate(examples) if ex.family == family]
        texts = list(exposed.get(family, []))  # none exposed: -1, below every cosine similarity
        scores[rows] = (vectors[rows] @ embed(texts).T).max(axis=1) if texts else -1.0
    return scores


# -- one run folder -------------------------------------------------------------
@dataclass
class AttackResult:
    """One attack on one run, pooled over clients."""

    attack: str
    exposure: str
    sent: bool  # does the method send this exposure (False: the consensus adapter, shown for contrast)
    auc: Interval
    tpr: Interval  # true-positive rate at 1% false positives
    members: np.ndarray  # every member's score (all clients)
    nonmembers: np.ndarray
    auc_per_client: dict[str, float] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        """JSON-ready, scores included (the ROC curves are drawn from them)."""
        return {
            "attack": self.attack,
            "exposure": self.exposure,
            "sent": self.sent,
            "auc": [self.auc.mean, self.auc.lo, self.auc.hi],
            "tpr_at_1pct_fpr": [self.tpr.mean, self.tpr.lo, self.tpr.hi],
            "n_members": len(self.members),
            "n_nonmembers": len(self.nonmembers),
            "auc_per_client": self.auc_per_client,
            "members": [round(float(s), 5) for s in self.members],
            "nonmembers": [round(float(s), 5) for s in self.nonmembers],
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AttackResult:
        auc, tpr = Interval(*row["auc"]), Interval(*row["tpr_at_1pct_fpr"])
        scores = np.asarray(row["members"]), np.asarray(row["nonmembers"])
        return cls(row["attack"], row["exposure"], row["sent"], auc, tpr, *scores, dict(row.get("auc_per_client", {})))


@dataclass
class Audit:
    """The audit of one run folder (``audit.json`` in it)."""

    run_dir: str
    method: str
    results: list[AttackResult]
    note: str = ""  # why nothing was attacked (local, centralized)

    def save(self) -> Audit:
        """Write ``audit.json`` into the run folder."""
        d = {"run_dir": self.run_dir, "method": self.method, "note": self.note}
        (Path(self.run_dir) / "audit.json").write_text(
            json.dumps({**d, "results": [r.row() for r in self.results]}) + "\n"
        )
        return self

    @classmethod
    def load(cls, run_dir: str | Path) -> Audit:
        """Read ``audit.json`` of an audited run folder."""
        path = Path(run_dir) / "audit.json"
        if not path.is_file():
            raise AuditError(f"{path} does not exist: run `python -m fedcofit_lite privacy-audit {run_dir}` first.")
        d = json.loads(path.read_text())
        return cls(d["run_dir"], d["method"], [AttackResult.from_row(r) for r in d["results"]], d.get("note", ""))


def audit_table(audits: Sequence[Audit]) -> str:
    """A plain-text table: run folder, method, attack, what it reads, sent?, records, AUC and TPR at 1% FPR with 95% intervals."""
    width = max([len(Path(a.run_dir).name) for a in audits] + [3])
    header = f"{'run':<{width}} {'method':<12} {'attack':<14} {'reads':<14} {'sent':<5} {'members/non':>11}  {'ROC-AUC [95% CI]':<22} TPR@1%FPR [95% CI]"
    lines = [header, "-" * len(header)]
    for a in audits:
        run = Path(a.run_dir).name
        if not a.results:
            lines.append(f"{run:<{width}} {a.method:<12} {'-':<14} {a.note}")
        for r in a.results:
            lines.append(
                f"{run:<{width}} {a.method:<12} {r.attack:<14} {r.exposure:<14} {'yes' if r.sent else 'no':<5} "
                f"{f'{len(r.members)}/{len(r.nonmembers)}':>11}  {r.auc.format():<22} {r.tpr.format()}"
            )
    return "\n".join(lines)


def _plan(
    run_dir: Path, method: str, exposes: tuple[str, ...], attacks: Sequence[str] | None, contrast: bool
) -> tuple[list[str], dict[str, dict]]:
    """The attacks to run (those on what is sent first) and the clients to attack, or an AuditError saying why none."""
    has_adapters = (run_dir / "checkpoint" / "adapters").is_dir()
    if contrast and "adapter" not in exposes and not has_adapters:
        log.warning("%s keeps no adapters (a compare folder?): the not-sent adapter attacks are skipped", run_dir)
    readable = [*exposes, *(["adapter"] if contrast and "adapter" not in exposes and has_adapters else [])]
    chosen = [a for a in (attacks or ATTACKS) if ATTACKS[a] in readable]
    chosen.sort(key=lambda a: ATTACKS[a] not in exposes)  # sent first
    if not chosen:
        raise AuditError(
            f"method {method!r} exposes {list(exposes)}; none of the attacks {list(attacks or [])} reads that."
        )
    partition = read_records(run_dir / "partition.json")
    clients = {c: p for c, p in partition.items() if not p.get("black_box")}  # black-box clients hold no training
    if not clients:
        raise AuditError(f"{run_dir}: every client is a black box (no training on private records): nothing to audit.")
    for exposure in ("answers", "pseudo_labels"):
        if any(ATTACKS[a] == exposure for a in chosen) and not rounds_of(run_dir, exposure):
            raise AuditError(
                f"{run_dir / exposure} holds no round_R.jsonl: the {exposure} attack has nothing to read (a run with rounds=0, "
                "or the root of a compare folder: audit a method's subfolder, written by `run`)."
            )
    return chosen, clients


def audit_run(
    run_dir: str | Path,
    attacks: Sequence[str] | None = None,
    n_boot: int = 1000,
    contrast: bool = True,
    progress: bool = True,
) -> Audit:
    """Attack what the method of ``run_dir`` (a folder written by ``run``) exposed; write and return ``audit.json``.

    ``attacks`` are names of :data:`ATTACKS` (default: all its exposure allows); ``n_boot`` bootstrap
    draws give the intervals; ``contrast`` also attacks the adapters a consensus run never sends.
    """
    run_dir = Path(run_dir)
    for name in ("config.yaml", "partition.json"):
        if not (run_dir / name).is_file():
            raise AuditError(
                f"{run_dir / name} is missing: give a run folder written by `python -m fedcofit_lite run`."
            )
    unknown = [a for a in attacks or [] if a not in ATTACKS]
    if unknown:
        raise AuditError(f"unknown attack(s) {unknown}; choose from {list(ATTACKS)}.")
    cfg = load_config(run_dir / "config.yaml", recorded=True)
    method = cfg.federation.method
    spec = method_spec(method)
    if spec is None:
        raise AuditError(f"{run_dir}: method {method!r} is not registered; known methods: {list(METHODS)}.")
    exposes = EXPOSES.get(spec.sends, ())
    if not exposes:
        note = "the records themselves leave the clients" if spec.sends == "records" else "nothing leaves a client"
        return Audit(str(run_dir), method, [], note).save()
    chosen, clients = _plan(run_dir, method, exposes, attacks, contrast)
    suite = build_suite(cfg)
    sets = membership_sets(suite.train, {c: p["example_ids"] for c, p in clients.items()}, cfg.seed, suite.test)
    scorer = _Scorer(run_dir, cfg, clients, suite, need_model=any(ATTACKS[a] == "adapter" for a in chosen))
    results, quiet = [], not progress or bars_disabled()
    steps = bar(total=len(chosen) * len(clients), desc=f"audit {method}", unit="attack", disable=quiet)
    for attack in chosen:
        per_client = {}
        for c in clients:
            steps.set_postfix(attack=attack, client=c)
            per_client[c] = scorer.scores(attack, c, *sets[c])
            steps.update(1)
        members = np.concatenate([m for m, _ in per_client.values()])
        nonmembers = np.concatenate([n for _, n in per_client.values()])
        auc, tpr = attack_intervals(members, nonmembers, n_boot, seed=cfg.seed)
        by_client = {c: roc_auc(m, n) for c, (m, n) in per_client.items() if len(m) and len(n)}
        exposure = ATTACKS[attack]
        results.append(AttackResult(attack, exposure, exposure in exposes, auc, tpr, members, nonmembers, by_client))
        log.info("%s %s: AUC %s, TPR@1%%FPR %s", method, attack, auc.format(), tpr.format())
    steps.close()
    return Audit(str(run_dir), method, results).save()


class _Scorer:
    """The attacker's tools for one run: a copy of the base with the client adapters it saw, the embedder, the texts."""

    def __init__(self, run_dir: Path, cfg: Any, clients: Mapping[str, Mapping[str, Any]], suite: Any, need_model: bool):
        from ..engine.embed import embed_texts
        from ..engine.models import load_embedder

        self.run_dir, self.cfg = run_dir, cfg
        self.family = {ex.id: ex.family for ex in suite.public}
        embedder = load_embedder(cfg.consensus.embedder, device=cfg.model.device)
        self.embed = lambda texts: embed_texts(embedder, texts, progress=False)
        self.pool = self._attacker_pool(clients) if need_model else None
        self._loss_cache: dict[tuple[str, str | None], np.ndarray] = {}  # a client's records: one set for every attack

    def _attacker_pool(self, clients: Mapping[str, Mapping[str, Any]]) -> Any:
        import safetensors.numpy

        from ..engine.pool import ModelPool

        folder = self.run_dir / "checkpoint" / "adapters"
        missing = [c for c in clients if not (folder / f"{c}.safetensors").is_file()]
        if missing:
            raise AuditError(
                f"{folder} has no adapter for {missing}: the adapter attacks need a folder written by `python -m fedcofit_lite run` "
                "(compare folders keep no adapters), or pass --attacks answers,pseudo_labels for a consensus run."
            )
        pool = ModelPool({c: p["model"] for c, p in clients.items()}, self.cfg.model, self.cfg.lora, seed=self.cfg.seed)
        for c in clients:
            pool.set_tensors(c, safetensors.numpy.load_file(str(folder / f"{c}.safetensors")))
        return pool

    def scores(
        self, attack: str, client: str, members: list[Example], nonmembers: list[Example]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(member scores, non-member scores) of ``attack`` against ``client``."""
        records = [*members, *nonmembers]
        s = getattr(self, f"_{attack}")(client, records)
        return s[: len(members)], s[len(members) :]

    def _losses(self, client: str, records: list[Example], adapter: str | None) -> np.ndarray:
        """Each record's loss under ``adapter`` (None: the base), computed once per client (``loss`` and ``loss_ref`` share it)."""
        key = (client, adapter)
        if key not in self._loss_cache:
            bb = self.pool.backbone_of(client)
            self._loss_cache[key] = record_losses(bb.model, bb.tokenizer, records, adapter, self.cfg.train.max_length)
        return self._loss_cache[key]

    def _loss(self, client: str, records: list[Example]) -> np.ndarray:
        return -self._losses(client, records, client)

    def _loss_ref(self, client: str, records: list[Example]) -> np.ndarray:
        return self._losses(client, records, None) - self._losses(client, records, client)

    def _query(self, client: str, records: list[Example]) -> np.ndarray:
        requests = [self.pool.request(client, ex.instruction, ex.context) for ex in records]
        answers = self.pool.answer(requests, self.cfg.generation, seed=self.cfg.seed, desc=f"audit: query {client}")[0]
        a, y = self.embed(answers), self.embed([ex.response for ex in records])
        return np.sum(a * y, axis=1)

    def _exposed(self, texts: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
        """Family -> the exposed texts of (prompt id, text) pairs from the run folder, all rounds."""
        exposed: dict[str, list[str]] = {}
        for prompt_id, text in texts:
            exposed.setdefault(self.family.get(prompt_id, ""), []).append(text)
        return exposed

    def _answers(self, client: str, records: list[Example]) -> np.ndarray:
        sent = (a for r in rounds_of(self.run_dir) for a in read_answers(self.run_dir, r))
        exposed = self._exposed((a.prompt_id, a.answer) for a in sent if a.client == client and a.answer.strip())
        return text_attack(records, exposed, self.embed)

    def _pseudo_labels(self, client: str, records: list[Example]) -> np.ndarray:
        labels = (x for r in rounds_of(self.run_dir, "pseudo_labels") for x in read_pseudo_labels(self.run_dir, r))
        return text_attack(records, self._exposed((x.prompt_id, x.consensus) for x in labels if x.kept), self.embed)


# -- what a competence signal says of a client's data --------------------------------------------
def family_inference(run_dirs: Sequence[str | Path], signal: str = "closeness", round_index: int = 1) -> dict[str, Any]:
    """How well a competence signal tells the server which task families a client's private records hold.

    An attribute inference: per (client, family) the attacker's score is the mean signal the client sent on that
    family's public prompts, the truth whether it holds any record of the family (``partition.json``); pooled over the
    run folders given (e.g. a sweep's seeds). AUC 0.5 is chance, 1 names every family a client holds. A run recorded
    before the clients measured the signal gets it derived (:func:`~fedcofit_lite.analysis.replay.derive_closeness`).
    """
    from .replay import derive_closeness, load_round

    held, absent = [], []
    for run in map(Path, run_dirs):
        ra = load_round(run, round_index, embeddings=False)
        if signal == "closeness":
            derive_closeness(run, ra, load_config(run / "config.yaml", recorded=True).consensus.embedder)
        if signal not in ra.signals:
            raise AuditError(f"{run}: round {round_index} carries no {signal!r} signal; record it (competence.record).")
        partition = read_partition(run)
        values: dict[tuple[str, str], list[float]] = {}
        for c, fam, v in zip(ra.clients, ra.families, ra.signals[signal]):
            values.setdefault((c, fam), []).append(v)
        for (c, fam), vs in values.items():
            (held if partition[c]["families"].get(fam, 0) > 0 else absent).append(float(np.mean(vs)))
    if len(held) < 2 or len(absent) < 2:
        raise AuditError(
            f"family inference needs client-family pairs both held and not held (got {len(held)} and {len(absent)}): "
            "under a split where every client holds every family there is nothing to infer."
        )
    auc, tpr = attack_intervals(np.array(held), np.array(absent))
    return {"signal": signal, "auc": auc, "tpr_at_1pct_fpr": tpr, "held": len(held), "not_held": len(absent)}
