"""The run folder: one module writes and reads every file of it, as typed rows, as the run goes.

Layout (each ``.jsonl`` line is one row of the type named)::

    <output_dir>/<name>-<YYYYmmdd-HHMMSS>/
        config.yaml                  resolved configuration
        partition.json, models.json  client -> example ids and family counts; architecture -> its config
        metrics.jsonl                MetricsRow: one per stage (base, local, round_1, ...)
        answers/round_R.jsonl        AnswerRow: every client's answer to every public prompt
        embeddings/round_R.npz       the server's embeddings of those answers (replay needs no model)
        pseudo_labels/round_R.jsonl  PseudoLabelRow: the server's decision per prompt, and whether it is right
        predictions/STAGE.jsonl      PredictionRow: test-set answers per model
        summary.json, summary.txt    the final table
        checkpoint/                  latest finished round: adapters (safetensors) + state.json (resume)

Writing as it goes means an interrupted run loses nothing finished. Scores that follow from the folder
alone are computed here, once (:func:`label_scores`).
"""

from __future__ import annotations

import dataclasses
import json
import time
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, TypeVar, Union

import numpy as np

from .config import RunConfig

Scores = dict[str, dict[str, float]]  # family ("all" first) -> metric -> value


class MetricsRow(TypedDict, total=False):
    """One line of ``metrics.jsonl``: what every module that reads a run may rely on.

    The loop writes ``stage`` .. ``seconds`` for every stage; a method adds its own exchange's fields. :func:`check_row`
    holds every row a run writes to this schema (a test runs it), so a new field is added here first.
    """

    stage: str  # base, local, round_R
    round: int  # -1 (base), 0 (local), R
    method: str
    test: Scores  # mean over the evaluated models
    test_per_client: dict[str, dict[str, float]]  # model id -> the "all" scores
    test_global: Scores  # the FedAvg server's own model (in process)
    bytes_up: int  # wire bytes of this round, client -> server
    bytes_down: int
    bytes_up_saved: int  # federation.send_changed: bytes up that whole answers messages would have taken more
    seconds: dict[str, float]  # phase -> wall seconds
    hardware: str  # what the models computed on: GPU name, else CPU model (engine.models.device_name)
    cpu_seconds: float  # this process's CPU seconds in the stage (every thread; energy.EnergyMeter)
    energy_j: float  # the stage's energy: measured (RAPL, the whole CPU package) or estimated
    energy_source: str  # rapl, or estimate (cpu_seconds x watts_per_core)
    watts_per_core: float  # the estimate's stated power per busy core
    train_loss: dict[str, float]  # client -> last-epoch mean loss
    train_steps: dict[str, int]
    dropped_clients: dict[str, str]  # client -> why (simulated fault, node offline, no reply)
    rejected_clients: dict[str, str]  # client -> why the server set its message aside
    dp_epsilon: dict[str, float]  # client -> epsilon spent so far (DP-SGD)
    dp_delta: float
    # consensus
    pseudo_label_accuracy: float | None  # share of kept pseudo-labels that are right (references the server never sees)
    consensus_accuracy_all_prompts: float | None
    client_answer_accuracy: dict[str, float]
    agreement_mean: float | None
    kept: int
    n_prompts: int
    rule: str
    confidence_sent: bool
    signal_sent: str  # the competence signal the rule read, sent with every answer
    vote_dp_epsilon: float  # private consensus: client-level epsilon of the labels released so far
    vote_dp_delta: float
    # fedavg, fedprox, ffa
    fedavg_weights: dict[str, float]


@dataclass(frozen=True)
class AnswerRow:
    """One line of ``answers/round_R.jsonl``: a client's answer to a public prompt, as sent."""

    round: int
    client: str
    prompt_id: str
    answer: str
    confidence: float | None = None  # recorded even when the rule does not send it (replay uses it)
    signals: dict[str, float] | None = None  # competence signal -> value, recorded even when not sent (replay)


@dataclass(frozen=True)
class PseudoLabelRow:
    """One line of ``pseudo_labels/round_R.jsonl``: the server's decision on a public prompt."""

    round: int
    prompt_id: str
    consensus: str
    agreement: float
    cohesion: float
    n_clusters: int
    n_answers: int
    kept: bool  # sent as a pseudo-label
    empty: bool  # the consensus was an empty answer (never sent)
    correct: float | None = None  # against the hidden reference: the evaluator's record, never the server's


@dataclass(frozen=True)
class PredictionRow:
    """One line of ``predictions/STAGE.jsonl``: a model's answer to a test item."""

    client: str
    id: str
    family: str
    prediction: str
    reference: str


Row = TypeVar("Row", AnswerRow, PseudoLabelRow, PredictionRow)
_ROW_TYPES: dict[str, Any] = typing.get_type_hints(MetricsRow)


def check_row(row: dict[str, Any]) -> list[str]:
    """Why ``row`` does not fit :class:`MetricsRow` (unknown fields, wrong top-level types); empty when it does."""
    problems = [f"unknown field {k!r}" for k in row if k not in _ROW_TYPES]
    for k, v in row.items():
        if (tp := _ROW_TYPES.get(k)) is None:
            continue
        union = typing.get_origin(tp) in (Union, types.UnionType)  # Optional[X] and X | None alike
        allowed = tuple(typing.get_origin(a) or a for a in (typing.get_args(tp) if union else (tp,)))
        if tp is float:
            allowed = (int, float)
        if not isinstance(v, allowed) or (isinstance(v, bool) and bool not in allowed):
            problems.append(f"{k!r} is {type(v).__name__}, expected {tp}")
    return problems


class RunLog:
    """Append-only writer of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, cfg: RunConfig) -> RunLog:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path, suffix = Path(cfg.output_dir) / f"{cfg.name}-{stamp}", 1
        while path.exists():  # two runs in the same second
            path, suffix = Path(cfg.output_dir) / f"{cfg.name}-{stamp}-{suffix}", suffix + 1
        return cls(path)

    def write_config(self, cfg: RunConfig) -> None:
        (self.dir / "config.yaml").write_text(cfg.to_yaml())

    def write_json(self, name: str, obj: Any) -> None:
        (self.dir / name).write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")

    def write_jsonl(self, name: str, records: Iterable[dict[str, Any] | Row]) -> None:
        """Write rows (typed rows in their field order) as JSON Lines."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as f:
            for rec in records:
                row = dataclasses.asdict(rec) if dataclasses.is_dataclass(rec) else rec
                f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def write_answers(self, r: int, rows: Iterable[AnswerRow]) -> None:
        self.write_jsonl(f"answers/round_{r}.jsonl", rows)

    def write_pseudo_labels(self, r: int, rows: Iterable[PseudoLabelRow]) -> None:
        self.write_jsonl(f"pseudo_labels/round_{r}.jsonl", rows)

    def write_predictions(self, stage: str, rows: Iterable[PredictionRow]) -> None:
        self.write_jsonl(f"predictions/{stage}.jsonl", rows)

    def write_embeddings(self, r: int, vectors: np.ndarray, clients: Sequence[str], prompt_ids: Sequence[str]) -> None:
        """The server's embeddings of round ``r``'s answers, row by row with who answered which prompt (float16)."""
        (self.dir / "embeddings").mkdir(exist_ok=True)
        path, clients, prompt_ids = self.dir / "embeddings" / f"round_{r}.npz", np.array(clients), np.array(prompt_ids)
        np.savez_compressed(path, vectors=vectors.astype(np.float16), clients=clients, prompt_ids=prompt_ids)

    def append_metrics(self, row: MetricsRow | dict[str, Any]) -> None:
        with (self.dir / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")

    def rewrite_metrics(self, rows: Sequence[dict[str, Any]]) -> None:
        """Replace metrics.jsonl with ``rows`` (resume drops rows after the last checkpoint)."""
        tmp = self.dir / "metrics.jsonl.tmp"
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        tmp.replace(self.dir / "metrics.jsonl")

    def read_metrics(self) -> list[dict[str, Any]]:
        path = self.dir / "metrics.jsonl"
        return read_jsonl(path) if path.exists() else []


def read_rows(path: str | Path, row: type[Row]) -> list[Row]:
    """The typed rows of a run-folder ``.jsonl`` file."""
    return [row(**r) for r in read_jsonl(path)]


def read_answers(run_dir: str | Path, r: int) -> list[AnswerRow]:
    return read_rows(Path(run_dir) / "answers" / f"round_{r}.jsonl", AnswerRow)


def read_pseudo_labels(run_dir: str | Path, r: int) -> list[PseudoLabelRow]:
    return read_rows(Path(run_dir) / "pseudo_labels" / f"round_{r}.jsonl", PseudoLabelRow)


def read_predictions(run_dir: str | Path, stage: str) -> list[PredictionRow] | None:
    """A stage's predictions (``stage`` may carry a tag: ``round_2_global``); None when the folder has none."""
    path = Path(run_dir) / "predictions" / f"{stage}.jsonl"
    return read_rows(path, PredictionRow) if path.exists() else None


def read_embeddings(run_dir: str | Path, r: int) -> tuple[np.ndarray, list[str], list[str]] | None:
    """(vectors as float64, client of each row, prompt of each row) of round ``r``; None when not saved."""
    path = Path(run_dir) / "embeddings" / f"round_{r}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        return z["vectors"].astype(np.float64), z["clients"].tolist(), z["prompt_ids"].tolist()


def rounds_of(run_dir: str | Path, kind: str = "answers") -> list[int]:
    """The rounds whose answers (or ``kind``: pseudo_labels) a run folder holds."""
    folder = Path(run_dir) / kind
    return sorted(int(p.stem.split("_")[1]) for p in folder.glob("round_*.jsonl")) if folder.exists() else []


def label_scores(
    labels: Sequence[PseudoLabelRow],
    answers: Sequence[AnswerRow] = (),
    right: Callable[[str, str], float] | None = None,
) -> dict[str, Any]:
    """What a consensus round's rows say of it: the share of kept pseudo-labels that are right (and of all prompts'
    consensus), the mean agreement, and with ``answers`` and ``right`` (prompt id, text -> 1.0 when right against the
    hidden reference) each client's own accuracy. The metrics row of a round and replay both take them from here."""
    kept = [r.correct for r in labels if r.kept]
    by_client: dict[str, list[float]] = {}
    for a in answers:
        by_client.setdefault(a.client, []).append(right(a.prompt_id, a.answer))
    return {
        "pseudo_label_accuracy": float(np.mean(kept)) if kept else None,
        "consensus_accuracy_all_prompts": float(np.mean([r.correct for r in labels])) if labels else None,
        **({"client_answer_accuracy": {c: float(np.mean(v)) for c, v in by_client.items()}} if right else {}),
        "agreement_mean": float(np.mean([r.agreement for r in labels])) if labels else None,
        "kept": len(kept),
        "n_prompts": len(labels),
    }


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a run folder's ``.jsonl`` file (blank lines skipped): the one reader of the run folder."""
    rows = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {lineno}: not JSON ({e.msg}); is the run folder damaged?") from None
    return rows


# (header, key in summary row, format)
SUMMARY_COLUMNS: list[tuple[str, str, str]] = [
    ("stage", "stage", "{}"),
    ("test EM", "exact_match", "{:.3f}"),
    ("correct", "correct", "{:.3f}"),
    ("ROUGE-L", "rouge_l", "{:.3f}"),
    ("emb sim", "embedding_sim", "{:.3f}"),
    ("PL acc", "pseudo_label_accuracy", "{:.3f}"),
    ("agree", "agreement_mean", "{:.2f}"),
    ("kept", "kept", "{}"),
    ("bytes up", "bytes_up", "{:,}"),
    ("bytes down", "bytes_down", "{:,}"),
    ("time s", "seconds_total", "{:.0f}"),
]


def summary_rows(metrics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten metrics rows into the summary table's rows (test scores over all families)."""
    rows = []
    for m in metrics:
        scores = {k: m["test"]["all"].get(k) for k in ("exact_match", "correct", "rouge_l", "embedding_sim")}
        labels = {k: m.get(k) for k in ("pseudo_label_accuracy", "agreement_mean")}
        kept = f"{m['kept']}/{m['n_prompts']}" if m.get("n_prompts") else None
        wire = {"bytes_up": m.get("bytes_up", 0), "bytes_down": m.get("bytes_down", 0)}
        seconds = sum(m.get("seconds", {}).values())
        rows.append({"stage": m["stage"], **scores, **labels, "kept": kept, **wire, "seconds_total": seconds})
    return rows


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str, str]] = SUMMARY_COLUMNS) -> str:
    """A plain fixed-width text table; missing values print as '-'."""
    cells = [[h for h, _, _ in columns]]
    for row in rows:
        cells.append([fmt.format(row[k]) if row.get(k) is not None else "-" for _, k, fmt in columns])
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def read_records(path: str | Path) -> list[dict[str, Any]] | dict[str, Any]:
    """A run file as data: the rows of a ``.jsonl``, the object of a ``.json``."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.suffix == ".json" else read_jsonl(path)


def read_partition(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``partition.json``; a compare or sweep cell keeps it in its group's folder, one or two levels up."""
    run = Path(run_dir)
    found = next((d / "partition.json" for d in (run, *run.parents[:2]) if (d / "partition.json").exists()), None)
    if found is None:
        raise FileNotFoundError(f"{run}: no partition.json here or in its group's folder.")
    return read_records(found)
