"""What a notebook shows a student besides its figures: its time, a run folder, a round's table, its closing summary.

The notebooks call these instead of printing dicts and paths; the closing *What this showed* is written from the
numbers the notebook computed, so it stays true when a student's run differs from the reference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import markdown
from . import workshop

TIMINGS = Path(__file__).resolve().parents[2] / "docs" / "_data" / "timings.json"
CONDITIONS = {
    "small-nbval": "under nbval (CI)",
    "small-fresh": "from nothing",
    "cpu-reference": "on the shipped reference",
    "cpu-fresh": "from nothing",
}
RUN_FILES = {
    "config.yaml": "the resolved configuration",
    "partition.json": "each client's private examples",
    "models.json": "each architecture's config",
    "metrics.jsonl": "one row per stage: scores, pseudo-labels, bytes, seconds",
    "answers": "every client's answer to every public prompt, per round",
    "pseudo_labels": "the server's decision per prompt, per round",
    "predictions": "every client's test answers, per stage",
    "checkpoint": "the last finished round, for --resume",
    "summary.json": "the table per stage",
    "summary.txt": "the table per stage, as text",
}


class Markdown:
    """Markdown a notebook displays as formatted text (``_repr_markdown_``), and prints as itself."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def notebook_time(notebook: str, preset: str) -> Markdown:
    """How long ``notebook`` (``"01"``) took on ``preset``, as measured (``docs/_data/timings.json``)."""
    try:
        records = json.loads(TIMINGS.read_text())["timings"]
    except OSError:
        return Markdown(f"*Time on `{preset}`: not measured.*")
    got = [t for t in records if t.get("notebook") == notebook and t["preset"] == preset]
    if not got:
        return Markdown(f"*Time on `{preset}`: not measured yet; the instructor's guide lists the other presets.*")
    parts = ", ".join(f"{markdown.format_minutes(t['seconds'])} {CONDITIONS[t['condition']]}" for t in got)
    when = "; ".join(sorted({f"{t['date']} on {t['machine']}" for t in got}))
    return Markdown(f"*Time on `{preset}`: {parts} (measured {when}).*")


def run_folder(run_dir: str | Path) -> pd.DataFrame:
    """The files of a run folder, what each holds and its size; and where the run came from."""
    run_dir = Path(run_dir)

    def row(p: Path) -> dict[str, Any]:
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
        return {"file": p.name + ("/" if p.is_dir() else ""), "holds": RUN_FILES.get(p.name, ""), "bytes": size}

    table = pd.DataFrame([row(p) for p in sorted(run_dir.iterdir())]).set_index("file")
    table.attrs["source"] = workshop.describe_run(run_dir)
    return table


def stages(metrics: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per stage of a run: test exact match, pseudo-labels kept and their precision, bytes each way."""

    def row(m: dict[str, Any]) -> dict[str, Any]:
        precision = None if m.get("pseudo_label_accuracy") is None else round(m["pseudo_label_accuracy"], 2)
        return {
            "stage": m["stage"],
            "test exact match": round(m["test"]["all"]["exact_match"], 3),
            "kept": f"{m['kept']}/{m['n_prompts']}" if "kept" in m else "",
            "label precision": precision,
            "bytes up": m.get("bytes_up", 0),
            "bytes down": m.get("bytes_down", 0),
        }

    return pd.DataFrame([row(m) for m in metrics]).set_index("stage")


def decisions(run_dir: str | Path, round_index: int = 1) -> pd.DataFrame:
    """The server's decision per public prompt of one round, with the clients' answers beside it."""
    from ..runlog import read_jsonl

    run_dir = Path(run_dir)
    labels = read_jsonl(run_dir / "pseudo_labels" / f"round_{round_index}.jsonl")
    answers = read_jsonl(run_dir / "answers" / f"round_{round_index}.jsonl")
    by_prompt: dict[str, list[str]] = {}
    for a in answers:
        by_prompt.setdefault(a["prompt_id"], []).append(a["answer"])
    rows = [
        {
            "prompt": r["prompt_id"],
            "consensus": r["consensus"],
            "agreement": round(r["agreement"], 2),
            "kept": bool(r["kept"]),
            "right": bool(r["correct"]),
            "answers": " | ".join(by_prompt.get(r["prompt_id"], [])),
        }
        for r in labels
    ]
    return pd.DataFrame(rows).set_index("prompt")


def last_round_against_local(run_dir: str | Path) -> tuple[Any, str]:
    """The last round minus the local stage over the run's test items (one seed), and how it reads (``"below the local stage"``)."""
    stages_ = [p.stem for p in sorted((Path(run_dir) / "predictions").glob("round_*.jsonl")) if "_global" not in p.stem]
    last = max(stages_, key=lambda s: int(s.split("_")[1]))
    diff = markdown.stage_difference(run_dir, last, "local")
    return diff, markdown.versus(diff, "the local stage")


def what_this_showed(*points: str) -> Markdown:
    """The notebook's closing summary: one bullet per point, each written from the notebook's own numbers."""
    return Markdown("**What this showed**\n\n" + "\n".join(f"- {p}" for p in points))
