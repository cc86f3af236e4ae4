"""Markdown of finished runs for a notebook to show: a comparison's table with its intervals, what a difference says.

Text only (the figures are drawn in ``ui``); the documentation's pages are written from the same functions
(``tools/docpages.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..runlog import read_predictions
from . import stats
from .compare import METRIC_LABELS, SeedSummary, family_gaps, item_scores, paired_differences, run_metric, seed_table


def format_minutes(seconds: float) -> str:
    """``"48 s"``, ``"8 min"``, ``"1 h 45 min"``: a wall time as a reader says it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


# -- small Markdown pieces -----------------------------------------------------------------------
def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    """A pipe table; ``align`` is one letter per column (``l`` or ``r``), default: first left, the rest right."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "--:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fmt_interval(ci: stats.Interval, fmt: str = "{:.3f}") -> str:
    """``0.196 [0.173, 0.220]``."""
    return ci.format(fmt)


def verdict(diff: stats.Interval) -> str:
    """How a paired difference reads: above, below, or not distinguishable (zero inside the interval)."""
    return "not distinguishable" if not diff.excludes(0.0) else "above" if diff.mean > 0 else "below"


def versus(diff: stats.Interval, other: str) -> str:
    """``"above local"``, ``"below local"`` or ``"not distinguishable from local"``, as the interval says."""
    word = verdict(diff)
    return f"{word} from {other}" if word == "not distinguishable" else f"{word} {other}"


# -- a multi-seed comparison -------------------------------------------------------------------
def _differences(summary: SeedSummary, metric: str, n_boot: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    return paired_differences(summary.complete(metric), n_boot)


def seed_summary_markdown(summary: SeedSummary, metric: str | None = None, n_boot: int = 2000) -> str:
    """The multi-seed comparison as Markdown: scores, paired differences, gap per family, pseudo-labels.

    The same numbers as ``compare.seed_table`` (the CLI's text), in tables a page can wrap.
    """
    metric = metric or run_metric(summary.root)
    label = METRIC_LABELS[metric]
    rows, _ = seed_table(summary, n_boot, metric)
    n_items = len(summary.scores[metric][summary.final_stage()][rows[0]["method"]][0])
    gaps = [r["gap"].format("{:.2f}") if r["gap"] else "-" for r in rows]
    scores = [
        [f"`{r['method']}`", r["em"].format(), r["rouge_l"].format(), gap, f"{r['bytes']:,.0f}", f"{r['steps']:.0f}"]
        for r, gap in zip(rows, gaps)
    ]
    out = [
        f"{len(summary.seeds)} seeds; {n_items} test items per seed, each scored as the mean over the clients' models; "
        f"stage `{summary.final_stage()}`; mean over seeds with a 95% paired bootstrap interval over seeds and "
        f"the test items within each ({n_boot} draws). *Gap closed*: the share of the local -> centralized gap.",
        "",
        md_table(["method", label, "ROUGE-L", "gap closed", "bytes", "steps/model"], scores),
    ]
    refs, diffs = _differences(summary, metric, n_boot)
    cells = [
        [f"`{e}`", *[_bold_if(d[r]) if r in d else "" for r in refs]] for e, d in diffs.items() if e not in refs or d
    ]
    said = f"Paired differences in {label} (row minus column), 95% interval; **bold**: zero lies outside the interval."
    out += ["", said, "", md_table(["method", *[f"minus `{r}`" for r in refs]], cells)]
    out += ["", _family_gaps(summary, metric, n_boot)] if {"local", "centralized"} <= set(diffs) else []
    if summary.labels:
        out += ["", "Pseudo-labels sent, mean over seeds: kept of the public prompts, and their precision.", ""]
        stages = list(next(iter(summary.labels.values())))
        labels = [
            [f"`{m}`", *[f"{v[s]['kept']:.1f}/{v[s]['n_prompts']:.0f} at {v[s]['precision']:.2f}" for s in stages]]
            for m, v in summary.labels.items()
        ]
        out.append(md_table(["method", *stages], labels))
    return "\n".join(out)


def _bold_if(d: stats.Interval) -> str:
    text = d.format("{:+.3f}")
    return f"**{text}**" if d.excludes(0.0) else text


def _family_gaps(summary: SeedSummary, metric: str, n_boot: int) -> str:
    fams = sorted(set(summary.families["0"]))
    rows = [
        [f"`{e}`", *(f"**{g.mean:+.2f}**" if g.excludes(0.0) else f"{g.mean:+.2f}" for g in gaps.values())]
        for e, gaps in family_gaps(summary, summary.complete(metric), n_boot).items()
    ]
    head = f"Share of the local -> centralized gap closed, per task family ({METRIC_LABELS[metric]}); **bold**: its interval excludes 0."
    return head + "\n\n" + md_table(["method", *[f.replace("_", " ") for f in fams]], rows)


def stage_difference(run_dir: str | Path, a: str, b: str, metric: str = "exact_match", n_boot: int = 2000) -> Any:
    """Paired difference of stage ``a`` minus stage ``b`` of one run, over its test items (one seed)."""
    per = {stage: item_scores(read_predictions(run_dir, stage) or [], metric) for stage in (a, b)}
    ids = sorted(per[a])
    return stats.difference({s: [np.array([per[s][i] for i in ids])] for s in (a, b)}, a, b, n_boot)


# -- the package's own text tables, read back -----------------------------------------------------
_CI = r"([+-]?\d+\.\d+) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]"


def parse_seed_table(text: str) -> dict[str, Any]:
    """Read back the text of ``compare.seed_table`` (``comparison_seeds.txt``; for shipped results whose run folders
    are not shipped): ``{"header": str, "scores": {method: Interval}, "differences": {(row, column): Interval}}``."""
    head, _, rest = text.partition("\npaired differences")
    scores: dict[str, stats.Interval] = {}
    for line in head.splitlines()[1:]:
        if (found := re.findall(_CI, line)) and line[:22].strip():
            scores[line[:22].strip()] = stats.Interval(*(float(x) for x in found[0]))
    blocks = rest.split("\n\n")  # the section's title; its column header and one line per entry; later sections
    header, *rows = blocks[1].splitlines() if len(blocks) > 1 else [""]
    cols = re.findall(r"- (\S+)", header)
    diffs: dict[tuple[str, str], stats.Interval] = {}
    for line in rows:
        for k, col in enumerate(cols):  # cells of 26 characters after a name of 22
            if m := re.search(_CI, line[22 + 26 * k : 48 + 26 * k]):
                diffs[(line[:22].strip(), col)] = stats.Interval(*(float(x) for x in m.groups()))
    return {"header": (text.splitlines() or [""])[0], "scores": scores, "differences": diffs}


def replay_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Replayed consensus rules (``replay.json`` of several seeds), averaged per rule and round."""
    from .replay import mean_over_seeds

    rows = mean_over_seeds(rows) if len({r.get("seed") for r in rows}) > 1 else list(rows)
    body = [
        [f"`{r['rule']}`", r["round"], f"{r['kept']:.1f}/{r['n_prompts']:.0f}"]
        + [f"{r[k]:.2f}" for k in ("precision", "new_correct_per_client", "harmful_per_client")]
        for r in rows
        if "skipped" not in r
    ]
    n = sorted({r.get("n_seeds", 1) for r in rows})
    return (
        f"Mean over {'/'.join(map(str, n))} seeds. *New correct*: right labels that differ from the client's own "
        "answer; *harmful*: wrong labels where the client was right.\n\n"
        + md_table(["rule", "round", "kept", "precision", "new correct / client", "harmful / client"], body)
    )
