"""What a notebook shows a student besides its figures: its time, a run folder, a round's table, its closing summary.

The notebooks call these instead of printing dicts and paths; the closing *What this showed* is written from the
numbers the notebook computed, so it stays true when a student's run differs from the reference.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..analysis import markdown
from ..config import load_config
from ..runlog import read_jsonl
from . import workshop

# Written by tools/measure_times.py (make times) on the machine that ran the notebooks; read at run time, so a
# notebook's first cell prints the time measured on the instructor's machine once they have run it there.
TIMINGS = Path(__file__).resolve().parents[2] / "docs" / "_data" / "timings.json"
MEASURE = "python tools/measure_times.py"
# the rows of study_case: the references and FedAvg-LoRA, then the consensus rules the study ran
_STUDY_REFERENCES = ("local", "centralized", "fedavg", "fedavg (global)")
STUDY_ENTRIES = (*_STUDY_REFERENCES, "consensus", "consensus@closest", "consensus@competence")
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


def timings(path: Path = TIMINGS) -> list[dict[str, Any]]:
    """The measured wall times (``docs/_data/timings.json``), one record each; empty when the file is missing."""
    try:
        return json.loads(path.read_text())["timings"]
    except OSError:
        return []


def machine_words(machine: str | dict[str, Any]) -> str:
    """A timing record's machine as a reader says it: ``"2 CPU cores (AMD EPYC), bf16, torch 2.13.0+cpu"``."""
    if isinstance(machine, str):  # a record measured by hand names its machine in words
        return machine
    precision = "bf16" if machine["bf16"] else "float32 (no native bf16)"
    return f"{machine['cores']} CPU cores ({machine['cpu']}), {precision}, torch {machine['torch']}"


def timing_words(record: dict[str, Any]) -> str:
    """One measured time with where and when: ``"9 min on 2 CPU cores (...), bf16, torch ..., load 3.4, 2026-12-06"``."""
    load = f", load average {record['load_1min']:.1f} when it started" if "load_1min" in record else ""
    how = "" if record.get("how") == "tools/measure_times.py" else ", measured by hand"
    return f"{markdown.format_minutes(record['seconds'])} on {machine_words(record['machine'])}{load}, {record['date']}{how}"


def preset_caveat(preset: str) -> str:
    """On a quick preset (``small``...): a sentence saying that its few test items show the mechanics, not evidence."""
    if preset not in workshop.QUICK_PRESETS:
        return ""
    data = load_config(preset).data
    items = f"{data.n_test_per_family * len(data.families)} test items" if data.families else "few test items"
    return (
        f"On `{preset}` its {items} show the mechanics, not evidence: scores move by chance from run to run, and "
        "no difference between two numbers here is a finding unless its interval says so. The `cpu` reference "
        "runs are the evidence."
    )


def notebook_time(notebook: str, preset: str) -> Markdown:
    """How long ``notebook`` (``"01"``) took on ``preset``, as ``tools/measure_times.py`` measured it; on a quick preset, what its scores can show."""
    main = {v: k for k, v in workshop.MIXED_OF.items() if k in ("ci", "small", "cpu")}.get(preset, preset)
    got = [t for t in timings() if t.get("notebook") == notebook and t.get("preset") in (preset, main)]
    if got:
        time = (
            f"*Time on `{preset}`: {timing_words(got[0])}; in a fresh kernel, after the notebooks before it in the "
            f"instructor's guide. `{MEASURE}` measures it on your machine.*"
        )
    else:
        time = f"*Time on `{preset}`: not measured on this preset; `{MEASURE} --presets {preset}` measures it on your machine.*"
    caveat = preset_caveat(preset)
    return Markdown(time + (f"\n\n**{caveat}**" if caveat else ""))


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


def byte_ratios(seeds_dir: str | Path, a: str = "fedavg", b: str = "consensus") -> dict[int, float]:
    """Per seed of a ``compare --seeds`` folder: the bytes ``a`` moved over a run (up and down) over those of ``b``.

    The README's factor is the mean of these ratios (each seed is one run), not the ratio of the mean bytes.
    """
    out = {}
    for folder in sorted(Path(seeds_dir).glob("seed_*"), key=lambda f: int(f.name.split("_")[1])):
        run = {
            m: sum(r["bytes_up"] + r["bytes_down"] for r in read_jsonl(folder / m / "metrics.jsonl")) for m in (a, b)
        }
        out[int(folder.name.split("_")[1])] = run[a] / run[b]
    return out


def ratio_steps(seeds_dir: str | Path) -> pd.DataFrame:
    """From the paper's factor to the factor measured on the wire, one change at a time (LoRA FedAvg over consensus).

    Each row changes one thing of the row above; the other columns hold. The first two rows are the paper's
    protocol (``costmodel.paper_setting()``) on Llama-3.1-405B, then SmolLM2-135M; then the settings of the
    comparison in ``seeds_dir`` (a ``compare --seeds`` folder of FedAvg-LoRA and consensus): its LoRA, its
    public prompts, its answers as sent (UTF-8 text and JSON framing, measured in round 1), the whole run
    as it ran (every client, round and direction: :func:`~fedcofit_lite.analysis.accounting.measured_vs_analytic`),
    and last the bytes counted on the wire (:func:`byte_ratios`). Rows from the folder are means over its seeds.
    """
    from ..analysis import accounting, costmodel  # they load the method registry: only when asked

    seeds = sorted(Path(seeds_dir).glob("seed_*"))
    cfg = load_config(seeds[0] / "config.yaml", recorded=True)
    arch, paper = costmodel.paper_setting()
    small = costmodel.get_architecture(cfg.model.name)
    per_answer, analytic = [], []
    for folder in seeds:
        r1 = next(m for m in read_jsonl(folder / "consensus" / "metrics.jsonl") if m["stage"] == "round_1")
        per_answer.append(r1["bytes_up"] / (cfg.federation.n_clients * r1["n_prompts"]))
        total = {
            m: sum(r["analytic"] for r in accounting.measured_vs_analytic(folder / m)) for m in ("fedavg", "consensus")
        }
        analytic.append(total["fedavg"] / total["consensus"])
    lora = replace(paper, rank=cfg.lora.r, target_modules=tuple(cfg.lora.target_modules))
    prompts = replace(lora, n_prompts=cfg.data.n_public)
    sent = replace(prompts, answer_tokens=float(np.mean(per_answer)), bytes_per_token=1.0)

    def row(change: str, model: str, p: costmodel.Protocol, answer: str, counted: str, ratio: float) -> list[Any]:
        modules = f"r={p.rank} on {', '.join(m.split('_')[0] for m in p.target_modules)}, fp32"
        return [change, round(ratio, 1), model, modules, p.n_prompts, answer, counted]

    one = "1 client, 1 round, up"
    run = f"{cfg.federation.n_clients} clients, {cfg.federation.rounds} rounds, up and down"
    ids = f"{paper.answer_tokens:g} token ids x {paper.bytes_per_token:g} B"
    text = f"{sent.answer_tokens:.1f} as sent"
    ratio = lambda a, p: costmodel.ratios(a, p)["lora_over_consensus"]  # noqa: E731
    measured = list(byte_ratios(seeds_dir).values())
    rows = [
        row("the paper's setting", arch.name, paper, ids, one, ratio(arch, paper)),
        row("the model", small.name, paper, ids, one, ratio(small, paper)),
        row("the LoRA of the run", small.name, lora, ids, one, ratio(small, lora)),
        row("the public prompts of the run", small.name, prompts, ids, one, ratio(small, prompts)),
        row("answers as the run sent them", small.name, sent, text, one, ratio(small, sent)),
        row("the whole run, analytic", small.name, sent, text, run, float(np.mean(analytic))),
        row("the whole run, on the wire", small.name, sent, text, run, float(np.mean(measured))),
    ]
    cols = ["what changes", "LoRA FedAvg / consensus", "model", "LoRA sent", "prompts", "bytes per answer", "counted"]
    return pd.DataFrame(rows, columns=cols).set_index("what changes")


def study_case(
    part: str = "expert", entries: Sequence[str] | None = None, n_boot: int = 2000
) -> tuple[pd.DataFrame, str]:
    """One part of the shipped study (``notebooks/reference/study/<part>``) as a table a student reads, and its caption.

    One row per method at the last round: exact match, its difference from local training and from
    FedAvg-LoRA's personalized clients, and the bytes a run moved. Every interval is the package's two-level
    bootstrap (seeds, then test items within each, paired across methods), over the seeds whose every cell
    has finished; the caption says how many. ``entries`` defaults to the references, FedAvg-LoRA and the
    medoid, ``closest`` and ``competence`` rules that the study ran.
    """
    from ..analysis import frontier

    res = frontier.load_sweep(workshop.REFERENCE_ROOT / "study" / part)
    clients = res.plan.clients[0]
    sc = frontier.sweep_scores(res, clients, n_boot=n_boot)
    last, budget = f"round_{res.last_round}", res.plan.budgets[0]
    keys = {e: (e, budget if e.startswith("consensus") else None, last) for e in entries or STUDY_ENTRIES}
    keys = {e: k for e, k in keys.items() if sc.has(k)}
    cost = frontier.costs(res, clients)

    def minus(key: Any, other: str) -> str:
        return sc.difference(key, keys[other]).format("{:+.3f}") if other in keys and keys[other] != key else "-"

    rows = []
    for entry, key in keys.items():
        spent = cost.get((entry, key[1]), {}).get(last, {})
        method = "consensus (medoid)" if entry == "consensus" else entry.replace("consensus@", "consensus, rule ")
        rows.append(
            {
                "method": method,
                "exact match": sc.interval(key).format(),
                "minus local": minus(key, "local"),
                "minus FedAvg-LoRA": minus(key, "fedavg"),
                "bytes a run moved": f"{spent['bytes_up'] + spent['bytes_down']:,.0f}" if spent else "-",
            }
        )
    n, planned = len(sc.seeds), len(res.plan.seeds)
    one_seed = "the test items of this one seed only: one seed says nothing about training's randomness."
    over = "the seeds and the test items within each." if n > 1 else one_seed
    caption = (
        f"{n} of the {planned} planned seeds ({', '.join(map(str, sc.seeds))}), {sc.n_items} test items each, "
        f"{res.plan.budgets[0]} public prompts, {res.last_round} rounds, {clients} clients; 95% intervals over {over}"
        " 'minus FedAvg-LoRA' is against its personalized clients; its global model is a row of its own."
    )
    return pd.DataFrame(rows).set_index("method"), caption
