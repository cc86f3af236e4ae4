"""Reading comparison folders: one seed's table, and several seeds' paired intervals.

The folders are written by :mod:`fedcofit_lite.experiments.compare` (``compare --seeds``: one per ``seed_<S>/``; their
layout in docs/cli.md): :func:`load_comparison` reads one, :func:`summarize_seeds` pairs the seeds' item scores, and
:func:`seed_table` prints means with paired bootstrap intervals.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import load_config
from ..runlog import PredictionRow, RunLog, format_table, read_predictions
from ..tasks.evaluate import correct, exact_match, rouge_l
from . import stats

log = logging.getLogger(__name__)

TABLE_COLUMNS: list[tuple[str, str, str]] = [
    ("method", "method", "{}"),
    ("local EM", "local_em", "{:.3f}"),
    ("final EM", "final_em", "{:.3f}"),
    ("final correct", "final_correct", "{:.3f}"),
    ("global EM", "final_global_em", "{:.3f}"),
    ("final ROUGE-L", "final_rouge_l", "{:.3f}"),
    ("bytes up", "bytes_up", "{:,}"),
    ("bytes down", "bytes_down", "{:,}"),
    ("bytes total", "bytes_total", "{:,}"),
    ("x consensus", "bytes_vs_consensus", "{:,.0f}"),
    ("rounds s", "seconds_rounds", "{:.0f}"),
    ("total s", "seconds_total", "{:.0f}"),
    ("energy J", "energy_j", "{:,.0f}"),
]


def comparison_rows(metrics: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One summary row per method: scores at the local stage and at the end, bytes, seconds."""
    rows = []
    for method, ms in metrics.items():
        local = next((m for m in ms if m["stage"] == "local"), None)
        final = ms[-1]
        up = sum(m.get("bytes_up", 0) for m in ms)
        down = sum(m.get("bytes_down", 0) for m in ms)
        seconds = [sum(m.get("seconds", {}).values()) for m in ms]
        test = final["test"]["all"]
        rows.append(
            {
                "method": method,
                "local_em": local["test"]["all"]["exact_match"] if local else None,
                "final_em": test["exact_match"],
                "final_correct": test.get("correct", test["exact_match"]),
                "final_rouge_l": test["rouge_l"],
                "final_global_em": final["test_global"]["all"]["exact_match"] if "test_global" in final else None,
                "final_stage": final["stage"],
                "bytes_up": up,
                "bytes_down": down,
                "bytes_total": up + down,
                "seconds_rounds": sum(s for m, s in zip(ms, seconds) if m["round"] >= 1),
                "seconds_total": sum(seconds),  # a shared stage counts for every method that used it
                **energy_total(ms),
            }
        )
    consensus = next((r for r in rows if r["method"] == "consensus"), None)
    for r in rows:
        if consensus and consensus["bytes_total"] and r["bytes_total"]:
            r["bytes_vs_consensus"] = r["bytes_total"] / consensus["bytes_total"]
    return rows


def energy_total(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``energy_j`` (all stages, shared ones included), and ``energy_source``: ``rapl``, or ``estimate at W W/core``; {} for runs without energy."""
    measured = [r for r in rows if r.get("energy_j") is not None]
    if not measured:
        return {}
    sources = {r["energy_source"] for r in measured}
    watts = sorted({r["watts_per_core"] for r in measured if r.get("watts_per_core")})
    source = "rapl" if sources == {"rapl"} else f"estimate at {'/'.join(f'{w:g}' for w in watts)} W/core"
    return {"energy_j": sum(r["energy_j"] for r in measured), "energy_source": source}


def energy_note(rows: Sequence[dict[str, Any]]) -> str:
    """The line under a table that says where its energy column comes from ('' when it has none)."""
    sources = sorted({r["energy_source"] for r in rows if r.get("energy_source")})
    if not sources:
        return ""
    what = {"rapl": "measured by the CPU's RAPL counters (the whole package, other processes included)"}
    said = [what.get(s, f"{s}: this process's CPU seconds x that power per busy core") for s in sources]
    return "energy: " + "; ".join(said)


def per_round_table(metrics: dict[str, list[dict[str, Any]]], metric: str = "exact_match") -> str:
    """Test score per stage (columns) and method (rows)."""
    stages = list(dict.fromkeys(m["stage"] for ms in metrics.values() for m in ms))
    columns = [("method", "method", "{}")] + [(s, s, "{:.3f}") for s in stages]
    rows = [
        {"method": method, **{m["stage"]: m["test"]["all"].get(metric, m["test"]["all"]["exact_match"]) for m in ms}}
        for method, ms in metrics.items()
    ]
    return format_table(rows, columns)


def comparison_table(run_dir: Path, metrics: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], str]:
    """The rows and the printed table of a comparison's methods (``comparison.txt``), in the folder's metric."""
    rows, metric = comparison_rows(metrics), run_metric(run_dir)
    note = f"\n{energy_note(rows)}" if energy_note(rows) else ""
    per_stage = f"\n\ntest {METRIC_LABELS[metric]} per stage\n" + per_round_table(metrics, metric)
    return rows, format_table(rows, TABLE_COLUMNS) + note + per_stage


def load_comparison(run_dir: str | Path) -> dict[str, list[dict[str, Any]]]:
    """Per-method metrics of a finished (or interrupted) comparison folder."""
    root = Path(run_dir)
    # the order the comparison ran them in (its config), then any other method folder
    order = load_config(root / "config.yaml", recorded=True).compare.methods if (root / "config.yaml").exists() else []
    subs = [p for p in root.iterdir() if (p / "metrics.jsonl").exists()]
    subs.sort(key=lambda p: (p.name not in order, order.index(p.name) if p.name in order else 0, p.name))
    out = {sub.name: RunLog(sub).read_metrics() for sub in subs}
    if not out:
        raise FileNotFoundError(f"{root} holds no method folders with metrics.jsonl; is it a compare run folder?")
    return out


# -- several seeds: paired intervals ------------------------------------------------------
METRICS = ("exact_match", "correct", "rouge_l")
METRIC_LABELS = {"exact_match": "exact match", "correct": "correct", "rouge_l": "ROUGE-L"}


@dataclass
class SeedSummary:
    """What :func:`summarize_seeds` finds in a comparison folder of one or several seeds."""

    root: Path
    seeds: list[str]  # seed folder names
    entries: list[str]  # "consensus", "fedavg", "fedavg (global)", ...
    stages: list[str]  # local, round_1, ..., round_R
    scores: dict[str, dict[str, dict[str, list]]]  # metric -> stage -> entry -> per seed, item scores (np arrays)
    families: dict[str, list[list[str]]]  # seed -> item families (aligned with the item arrays), keyed by seed index
    bytes_total: dict[str, float]  # entry -> mean over seeds of bytes up + down
    steps: dict[str, float]  # entry -> optimizer steps per model (client mean), local stage + rounds, mean over seeds
    labels: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # entry -> stage -> kept, precision
    energy: dict[str, dict[str, Any]] = field(default_factory=dict)  # entry -> energy_j (seed mean), energy_source

    def final_stage(self) -> str:
        return self.stages[-1]

    def complete(self, metric: str, stage: str | None = None) -> dict[str, list]:
        """Entry -> per seed item scores at ``stage`` (default the last), for the entries every seed scored."""
        per = self.scores[metric][stage or self.final_stage()]
        return {e: v for e, v in per.items() if len(v) == len(self.seeds)}


def seed_of(folder: Path) -> int:
    """The seed of a ``seed_<S>`` folder; 0 for any other (a folder of one seed)."""
    return int(folder.name.split("_")[1]) if folder.name.startswith("seed_") else 0


def seed_folders(root: str | Path, seeds: Sequence[int] | None = None) -> list[Path]:
    """``seed_*`` folders of a multi-seed comparison (only ``seeds`` when given), or the folder itself when it is a single comparison."""
    root = Path(root)
    found = sorted((p for p in root.glob("seed_*") if p.is_dir()), key=seed_of)
    if seeds is not None:
        found = [p for p in found if seed_of(p) in set(seeds)]
        missing = sorted(set(seeds) - {seed_of(p) for p in found})
        if missing:
            raise FileNotFoundError(
                f"{root} holds no folder for seed(s) {missing}; run `compare --seeds` for them first."
            )
    return found or [root]


def item_scores(rows: Sequence[PredictionRow], metric: str) -> dict[str, float]:
    """Test item id -> score (``exact_match``, ``correct`` or ``rouge_l``) averaged over the models that answered it."""
    scores = {
        "exact_match": lambda r: exact_match(r.prediction, r.reference),
        "correct": lambda r: correct(r.prediction, r.reference, r.family),
        "rouge_l": lambda r: rouge_l(r.prediction, r.reference),
    }
    per_item: dict[str, list[float]] = {}
    for r in rows:
        per_item.setdefault(r.id, []).append(scores[metric](r))
    return {i: float(np.mean(v)) for i, v in per_item.items()}


def summarize_seeds(root: str | Path, seeds: Sequence[int] | None = None) -> SeedSummary:
    """Read the predictions and metrics of every seed (or of ``seeds`` only) of a comparison folder into paired item scores."""
    every = seed_folders(root, seeds)
    folders = [f for f in every if (f / "comparison.json").exists()]
    unfinished = [f.name for f in every if f not in folders]
    if unfinished:
        log.warning("summary of %s leaves out %s: not finished (no comparison.json yet)", root, ", ".join(unfinished))
    if not folders:
        raise FileNotFoundError(
            f"{root} holds no finished comparison (no comparison.json); run `compare` into it first."
        )
    per_seed_metrics = [load_comparison(f) for f in folders]
    methods = list(per_seed_metrics[0])
    stages = [s for s in dict.fromkeys(m["stage"] for m in per_seed_metrics[0][methods[0]]) if s != "base"]
    entries: list[str] = []
    scores: dict[str, dict[str, dict[str, list]]] = {m: {s: {} for s in stages} for m in METRICS}
    families: dict[str, list[list[str]]] = {}
    for k, folder in enumerate(folders):
        ids = None
        for method in methods:
            for tag, entry in (("", method), ("_global", f"{method} (global)")):
                for stage in stages:
                    # a shared stage's predictions live at the top of the seed folder
                    rows = read_predictions(folder / method, stage + tag) or read_predictions(folder, stage + tag)
                    if rows is None:
                        continue
                    if entry not in entries:
                        entries.append(entry)
                    if ids is None:
                        ids = sorted({r.id for r in rows})
                        fam = {r.id: r.family for r in rows}
                        families[str(k)] = [fam[i] for i in ids]
                    for metric in METRICS:
                        item = item_scores(rows, metric)
                        scores[metric][stage].setdefault(entry, []).append(np.array([item[i] for i in ids]))
    bytes_total, steps, energy = _costs(entries, per_seed_metrics)
    labels: dict[str, dict[str, dict[str, float]]] = {}
    for method in methods:
        for stage in stages:
            got = [r for ms in per_seed_metrics for r in ms.get(method, []) if r["stage"] == stage and "kept" in r]
            if got:
                precision = [r["pseudo_label_accuracy"] for r in got if r.get("pseudo_label_accuracy") is not None]
                means = {k: float(np.mean([r[k] for r in got])) for k in ("kept", "n_prompts")}
                labels.setdefault(method, {})[stage] = {**means, "precision": stats.mean_or_nan(precision)}
    names = [f.name for f in folders]
    return SeedSummary(Path(root), names, entries, stages, scores, families, bytes_total, steps, labels, energy)


def _costs(entries: list[str], per_seed_metrics: list[dict[str, list[dict[str, Any]]]]) -> tuple[dict, dict, dict]:
    """Per entry, means over seeds: bytes up + down, optimizer steps per model, energy (a part of :func:`summarize_seeds`)."""
    bytes_total, steps, energy = {}, {}, {}
    for entry in entries:
        method = entry.split(" ")[0]
        rows = [ms[method] for ms in per_seed_metrics if method in ms]  # a method still running in some seed
        spent = [sum(r.get("bytes_up", 0) + r.get("bytes_down", 0) for r in ms) for ms in rows]
        bytes_total[entry] = float(np.mean(spent))
        per_model = [sum(np.mean(list(r["train_steps"].values())) for r in ms if r.get("train_steps")) for ms in rows]
        steps[entry] = float(np.mean(per_model))
        totals = [energy_total(ms) for ms in rows]
        if all(totals):
            energy[entry] = {**totals[0], "energy_j": float(np.mean([t["energy_j"] for t in totals]))}
    return bytes_total, steps, energy


def run_metric(root: str | Path) -> str:
    """The ``compare.metric`` a comparison folder was run with (``exact_match`` for folders written before it existed)."""
    path = seed_folders(root)[0] / "config.yaml"
    return load_config(path, recorded=True).compare.metric if path.exists() else "exact_match"


def paired_differences(em: dict[str, list], n_boot: int) -> tuple[list[str], dict[str, dict[str, stats.Interval]]]:
    """The references ``em`` holds (consensus, local, FedAvg), and every entry minus each other one of them, paired."""
    refs = [m for m in ("consensus", "local", "fedavg") if m in em]
    return refs, {e: {r: stats.difference(em, e, r, n_boot) for r in refs if r != e} for e in em}


def _difference_lines(em: dict[str, list], label: str, n_boot: int) -> list[str]:
    """The paired differences against consensus, local and FedAvg (a part of :func:`seed_table`)."""
    refs, table = paired_differences(em, n_boot)
    lines = ["", f"paired differences in {label} (row - column), 95% interval; * = zero outside the interval", ""]
    lines.append(f"{'':<22}" + "".join(f"{'- ' + r:>26}" for r in refs))
    for e, d in table.items():
        cells = [
            f"{d[r].format('{:+.3f}') + (' *' if d[r].excludes(0.0) else '  '):>26}" if r in d else " " * 26
            for r in refs
        ]
        lines.append(f"{e:<22}" + "".join(cells))
    return lines


def family_gaps(summary: SeedSummary, em: dict[str, list], n_boot: int) -> dict[str, dict]:
    """Entry -> task family -> the share of the local -> centralized gap closed (``em``: item scores per seed)."""
    fams = sorted(set(summary.families["0"]))
    out: dict[str, dict] = {}
    for e in (e for e in em if e not in ("local", "centralized")):
        for f in fams:
            pick = {
                m: [a[np.array(summary.families[str(k)]) == f] for k, a in enumerate(em[m])]
                for m in (e, "local", "centralized")
            }
            out.setdefault(e, {})[f] = stats.gap_closed(pick, e, n_boot=n_boot)
    return out


def _family_gap_lines(summary: SeedSummary, em: dict[str, list], label: str, n_boot: int) -> list[str]:
    """The share of the local -> centralized gap closed, per task family (a part of :func:`seed_table`)."""
    lines = ["", f"share of the local -> centralized gap closed, per task family ({label})", ""]
    lines.append(f"{'method':<22}" + "".join(f"{f[:14]:>16}" for f in sorted(set(summary.families["0"]))))
    for e, gaps in family_gaps(summary, em, n_boot).items():
        lines.append(
            f"{e:<22}" + "".join(f"{g.mean:>+8.2f}{'*' if g.excludes(0.0) else ' ':<8}" for g in gaps.values())
        )
    return [*lines, "(* = the interval of the share excludes 0)"]


def seed_table(summary: SeedSummary, n_boot: int = 2000, metric: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """The multi-seed table: per entry, final score with interval, gap closed, bytes, steps; then paired differences.

    ``metric`` (``exact_match`` or ``correct``; default the run's ``compare.metric``) scores the ``em`` column, the
    gap and the differences.
    """
    metric = metric or run_metric(summary.root)
    if metric not in ("exact_match", "correct"):
        raise ValueError(f"seed_table: metric must be exact_match or correct, got {metric!r} (compare.metric).")
    label = METRIC_LABELS[metric]
    final = summary.final_stage()
    em = summary.complete(metric)
    rouge = {e: summary.scores["rouge_l"][final][e] for e in em}
    em_ci, rouge_ci = stats.score_intervals(em, n_boot), stats.score_intervals(rouge, n_boot)
    local_em = summary.scores[metric].get("local", {})
    has_gap = "local" in em and "centralized" in em
    rows = []
    for e in em:
        gap = stats.gap_closed(em, e, n_boot=n_boot) if has_gap and e not in ("local", "centralized") else None
        row = {"method": e, "em": em_ci[e], "rouge_l": rouge_ci[e], "gap": gap, "bytes": summary.bytes_total[e]}
        row = {**row, "steps": summary.steps[e], **summary.energy.get(e, {})}
        if e in local_em and e != "centralized":
            row["local_em"] = float(np.mean([a.mean() for a in local_em[e]]))
        rows.append(row)
    n_items = len(next(iter(em.values()))[0])
    head = (
        f"{len(summary.seeds)} seed(s) x {n_items} test items x clients; stage {final}; "
        f"mean with 95% paired bootstrap interval over seeds and test items ({n_boot} draws)"
    )
    cols = f"{'method':<22}{label:>24}{'ROUGE-L':>24}{'gap closed':>26}{'bytes':>14}{'steps/model':>12}{'energy J':>12}"
    lines = [head, "", cols, "-" * len(cols)]
    for r in rows:
        gap = r["gap"].format("{:.2f}") if r["gap"] else "-"
        joules = f"{r['energy_j']:,.0f}" if r.get("energy_j") is not None else "-"
        scores = f"{r['em'].format():>24}{r['rouge_l'].format():>24}{gap:>26}"
        lines.append(f"{r['method']:<22}{scores}{r['bytes']:>14,.0f}{r['steps']:>12.0f}{joules:>12}")
    if energy_note(rows):
        lines.append(energy_note(rows) + " (mean over seeds; shared stages count for every method)")
    lines += _difference_lines(em, label, n_boot)
    if has_gap:
        lines += _family_gap_lines(summary, em, label, n_boot)
    if summary.labels:
        head = "pseudo-labels sent per round, mean over seeds: kept / public prompts, and their precision (correct)"
        lines += ["", head, ""]
        for method, per in summary.labels.items():
            cells = [f"{st}: {v['kept']:.1f}/{v['n_prompts']:.0f} at {v['precision']:.2f}" for st, v in per.items()]
            lines.append(f"{method:<22}" + "    ".join(cells))
    return rows, "\n".join(lines)


def stage_intervals(summary: SeedSummary, metric: str = "exact_match", n_boot: int = 2000) -> dict[str, dict[str, Any]]:
    """Entry -> stage -> Interval, for the per-round figure."""
    out: dict[str, dict[str, Any]] = {}
    for stage in summary.stages:
        per = summary.complete(metric, stage)
        for e, ci in (stats.score_intervals(per, n_boot) if per else {}).items():
            out.setdefault(e, {})[stage] = ci
    return out
