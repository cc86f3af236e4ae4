"""Markdown for the documentation, rendered from run folders: tables, findings and where each number came from.

Every result the README and the documentation show is written by these
functions from a finished run folder (``run``, ``compare --seeds``) or from a
file the package wrote (``comparison_seeds.txt``, ``replay.json``), never typed
by hand: a test renders them again and fails when a committed page differs.
Text only; the figures are drawn in ``ui`` (this layer never imports plotly).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..runlog import read_jsonl
from . import stats
from .compare import METRIC_LABELS, SeedSummary, load_comparison, run_metric, seed_table

# -- where a block of numbers came from ----------------------------------------------------------


@dataclass(frozen=True)
class Provenance:
    """What made a block of numbers: the command, the package and commit, the date, the machine, the wall time."""

    command: str
    version: str
    commit: str
    date: str
    machine: str
    wall_s: float | None = None

    @classmethod
    def from_manifest(cls, path: str | Path, part: str) -> Provenance:
        """Read a manifest (``reference.json``); ``part`` is ``quickstart`` or ``seeds`` (or a key of ``commands``).

        The manifest's ``made`` reads ``"<date> on <machine>"``; ``commit`` is
        the commit whose code made the runs (``unknown`` when not recorded).
        """
        meta = json.loads(Path(path).read_text())
        date, _, machine = meta["made"].partition(" on ")
        commands = meta["commands"]
        command = commands[part] if isinstance(commands, dict) else commands[0 if part == "quickstart" else 1]
        wall = meta.get("wall_s", {}).get(f"{part}_s")
        return cls(command, meta["package_version"], meta.get("commit", "unknown"), date, machine, wall)

    def markdown(self) -> str:
        """One line under a table: command, version and commit, date, machine, wall time."""
        wall = f"; wall time {format_minutes(self.wall_s)}" if self.wall_s else ""
        return (
            f"*Made by* `{self.command}` *with fedcofit_lite {self.version} (commit `{self.commit}`), "
            f"{self.date}, {self.machine}{wall}.*"
        )


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
    if not diff.excludes(0.0):
        return "not distinguishable"
    return "above" if diff.mean > 0 else "below"


def versus(diff: stats.Interval, other: str) -> str:
    """``"above local"``, ``"below local"`` or ``"not distinguishable from local"``, as the interval says."""
    word = verdict(diff)
    return f"{word} from {other}" if word == "not distinguishable" else f"{word} {other}"


# -- a multi-seed comparison -------------------------------------------------------------------


def _differences(summary: SeedSummary, metric: str, n_boot: int) -> tuple[list[str], dict[str, dict[str, Any]]]:
    em = summary.scores[metric][summary.final_stage()]
    entries = [e for e in summary.entries if e in em and len(em[e]) == len(summary.seeds)]
    em = {e: em[e] for e in entries}
    refs = [m for m in ("consensus", "local", "fedavg") if m in em]
    table = {e: {r: stats.difference(em, e, r, n_boot) for r in refs if r != e} for e in entries}
    return refs, table


def seed_summary_markdown(summary: SeedSummary, metric: str | None = None, n_boot: int = 2000) -> str:
    """The multi-seed comparison as Markdown: scores, paired differences, gap per family, pseudo-labels.

    The same numbers as ``compare.seed_table`` (the CLI's text), in tables a page can wrap.
    """
    metric = metric or run_metric(summary.root)
    label = METRIC_LABELS[metric]
    rows, _ = seed_table(summary, n_boot, metric)
    n_items = len(summary.scores[metric][summary.final_stage()][rows[0]["method"]][0])
    out = [
        f"{len(summary.seeds)} seeds; {n_items} test items per seed, each scored as the mean over the clients' models; "
        f"stage `{summary.final_stage()}`; mean over seeds with a 95% paired bootstrap interval over seeds and "
        f"the test items within each ({n_boot} draws). *Gap closed*: the share of the local -> centralized gap.",
        "",
        md_table(
            ["method", label, "ROUGE-L", "gap closed", "bytes", "steps/model"],
            [
                [
                    f"`{r['method']}`",
                    fmt_interval(r["em"]),
                    fmt_interval(r["rouge_l"]),
                    fmt_interval(r["gap"], "{:.2f}")
                    if r["gap"] is not None and r["method"] not in ("local", "centralized")
                    else "-",
                    f"{r['bytes']:,.0f}",
                    f"{r['steps']:.0f}",
                ]
                for r in rows
            ],
        ),
    ]
    refs, diffs = _differences(summary, metric, n_boot)
    out += [
        "",
        f"Paired differences in {label} (row minus column), 95% interval; **bold**: zero lies outside the interval.",
        "",
        md_table(
            ["method", *[f"minus `{r}`" for r in refs]],
            [
                [f"`{e}`", *[_bold_if(d[r]) if r in d else "" for r in refs]]
                for e, d in diffs.items()
                if e not in refs or len(d) > 0
            ],
        ),
    ]
    out += ["", _family_gaps(summary, metric, n_boot)] if {"local", "centralized"} <= set(diffs) else []
    if summary.labels:
        out += ["", "Pseudo-labels sent, mean over seeds: kept of the public prompts, and their precision.", ""]
        stages = list(next(iter(summary.labels.values())))
        out.append(
            md_table(
                ["method", *stages],
                [
                    [
                        f"`{m}`",
                        *[f"{v[s]['kept']:.1f}/{v[s]['n_prompts']:.0f} at {v[s]['precision']:.2f}" for s in stages],
                    ]
                    for m, v in summary.labels.items()
                ],
            )
        )
    return "\n".join(out)


def _bold_if(d: stats.Interval) -> str:
    text = d.format("{:+.3f}")
    return f"**{text}**" if d.excludes(0.0) else text


def _family_gaps(summary: SeedSummary, metric: str, n_boot: int) -> str:
    em = summary.scores[metric][summary.final_stage()]
    fams = sorted(set(summary.families["0"]))
    rows = []
    for e in summary.entries:
        if e in ("local", "centralized") or len(em.get(e, [])) != len(summary.seeds):
            continue
        cells = []
        for f in fams:
            pick = {
                m: [a[np.array(summary.families[str(k)]) == f] for k, a in enumerate(em[m])]
                for m in (e, "local", "centralized")
            }
            g = stats.gap_closed(pick, e, n_boot=n_boot)
            cells.append(f"**{g.mean:+.2f}**" if g.excludes(0.0) else f"{g.mean:+.2f}")
        rows.append([f"`{e}`", *cells])
    head = (
        f"Share of the local -> centralized gap closed, per task family ({METRIC_LABELS[metric]}); "
        "**bold**: its interval excludes 0."
    )
    return head + "\n\n" + md_table(["method", *[f.replace("_", " ") for f in fams]], rows)


# -- one run -------------------------------------------------------------------------------------


def run_stages_markdown(run_dir: str | Path) -> str:
    """A ``run`` folder's score per stage (its ``summary.json``), with pseudo-labels, bytes and wall time."""
    rows = json.loads((Path(run_dir) / "summary.json").read_text())["rows"]

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else fmt.format(v)

    return md_table(
        ["stage", "exact match", "ROUGE-L", "pseudo-labels kept", "their precision", "bytes up", "bytes down", "s"],
        [
            [
                r["stage"],
                num(r["exact_match"], "{:.3f}"),
                num(r["rouge_l"], "{:.3f}"),
                r["kept"] or "-",
                num(r["pseudo_label_accuracy"], "{:.2f}"),
                f"{r['bytes_up']:,}",
                f"{r['bytes_down']:,}",
                f"{r['seconds_total']:.0f}",
            ]
            for r in rows
        ],
    )


def stage_difference(run_dir: str | Path, a: str, b: str, metric: str = "exact_match", n_boot: int = 2000) -> Any:
    """Paired difference of stage ``a`` minus stage ``b`` of one run, over its test items (one seed)."""
    from ..runlog import read_predictions
    from .compare import item_scores

    per = {stage: item_scores(read_predictions(run_dir, stage) or [], metric) for stage in (a, b)}
    ids = sorted(per[a])
    return stats.difference({s: [np.array([per[s][i] for i in ids])] for s in (a, b)}, a, b, n_boot)


# -- the package's own text tables, read back -----------------------------------------------------

_CI = r"([+-]?\d+\.\d+) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]"


def parse_seed_table(text: str) -> dict[str, Any]:
    """Read back the text of ``compare.seed_table`` (``comparison_seeds.txt``): scores and paired differences.

    For shipped results whose run folders are not shipped (only the table the
    package wrote): ``{"header": str, "scores": {method: Interval},
    "differences": {(row, column): Interval}}``.
    """
    lines = text.splitlines()
    scores: dict[str, stats.Interval] = {}
    diffs: dict[tuple[str, str], stats.Interval] = {}
    cols: list[str] = []
    section = "scores"
    for line in lines[1:]:
        if line.startswith("paired differences"):
            section = "diff-head"
            continue
        if line.startswith("share of the") or line.startswith("pseudo-labels sent"):
            section = "other"
            continue
        if section == "diff-head" and "- " in line:
            cols = re.findall(r"- (\S+)", line)
            section = "diffs"
            continue
        name = line[:22].strip()
        found = re.findall(_CI, line)
        if section == "scores" and found and name:
            scores[name] = stats.Interval(*(float(x) for x in found[0]))
        elif section == "diffs" and name:
            cells = [line[22 + 26 * k : 22 + 26 * (k + 1)] for k in range(len(cols))]
            for col, cell in zip(cols, cells):
                m = re.search(_CI, cell)
                if m:
                    diffs[(name, col)] = stats.Interval(*(float(x) for x in m.groups()))
    return {"header": lines[0] if lines else "", "scores": scores, "differences": diffs}


def replay_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Replayed consensus rules (``replay.json`` of several seeds), averaged per rule and round."""
    from .replay import mean_over_seeds

    rows = mean_over_seeds(rows) if len({r.get("seed") for r in rows}) > 1 else list(rows)
    body = [
        [
            f"`{r['rule']}`",
            r["round"],
            f"{r['kept']:.1f}/{r['n_prompts']:.0f}",
            f"{r['precision']:.2f}",
            f"{r['new_correct_per_client']:.2f}",
            f"{r['harmful_per_client']:.2f}",
        ]
        for r in rows
        if "skipped" not in r
    ]
    n = sorted({r.get("n_seeds", 1) for r in rows})
    return (
        f"Mean over {'/'.join(map(str, n))} seeds. *New correct*: right labels that differ from the client's own "
        "answer; *harmful*: wrong labels where the client was right.\n\n"
        + md_table(["rule", "round", "kept", "precision", "new correct / client", "harmful / client"], body)
    )


# -- bytes ---------------------------------------------------------------------------------------


def measured_vs_analytic_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``accounting.measured_vs_analytic`` rows as a table."""
    return md_table(
        ["method", "round", "direction", "measured", "analytic", "difference"],
        [
            [
                f"`{r['method']}`",
                r["round"],
                r["direction"],
                f"{r['measured']:,}",
                f"{r['analytic']:,.0f}",
                f"{r['overhead']:+,.0f} ({100 * r['relative']:+.2f}%)",
            ]
            for r in rows
        ],
    )


def cost_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """``costmodel.cost_table`` rows: bytes per round of each protocol and the ratios."""
    from .costmodel import format_bytes

    return md_table(
        ["model", "parameters", "full FedAvg", "LoRA FedAvg", "consensus", "LoRA / consensus", "full / consensus"],
        [
            [
                f"`{r['name']}`",
                f"{r['n_parameters'] / 1e9:.2f} B",
                format_bytes(r["full_fedavg"]),
                format_bytes(r["lora_fedavg"]),
                format_bytes(r["consensus"]),
                f"{r['lora_over_consensus']:,.1f}",
                f"{r['full_over_consensus']:,.0f}",
            ]
            for r in rows
        ],
    )


# -- the presets -------------------------------------------------------------------------------


def presets_markdown(configs: Mapping[str, Any]) -> str:
    """One row per preset: model(s), clients, public prompts, private records, schedule, task suite (from the YAML)."""
    from collections import Counter

    body = []
    for name, cfg in configs.items():
        models = cfg.federation.client_models or [cfg.model.name] * cfg.federation.n_clients
        counts = Counter(Path(str(m)).name for m in models)
        model = " + ".join(f"{n} x `{m}`" if n > 1 else f"`{m}`" for m, n in counts.items())
        fams = cfg.data.families
        suite = f"`{cfg.data.source}`" if cfg.data.source else f"`{cfg.data.path}`"
        body.append(
            [
                f"`{name}`",
                model,
                cfg.data.n_public or "all",
                cfg.data.max_train_per_client or "all",
                f"{cfg.train.epochs} + {cfg.federation.rounds} x {cfg.train.round_epochs}",
                f"{len(fams) if fams else 'all'} families of {suite}",
            ]
        )
    return md_table(
        ["preset", "clients' models", "public prompts", "records / client", "epochs: local + rounds x", "tasks"],
        body,
        "llrrrl",
    )


# -- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One sentence with one number and its interval, and the page that shows the evidence."""

    text: str
    link: str


def _per_seed_byte_ratios(root: Path, a: str, b: str) -> list[float]:
    ratios = []
    for seed in sorted(root.glob("seed_*")):
        metrics = load_comparison(seed)
        total = {m: sum(r.get("bytes_up", 0) + r.get("bytes_down", 0) for r in metrics[m]) for m in (a, b)}
        ratios.append(total[a] / total[b])
    return ratios


def label_precision(root: str | Path, method: str = "consensus", round_index: int = 1, n_boot: int = 2000) -> Any:
    """Share of the kept pseudo-labels of ``round_index`` that are right, over seeds, with a bootstrap interval over seeds and labels."""
    per_seed = []
    for seed in sorted(Path(root).glob("seed_*")):
        rows = read_jsonl(seed / method / "pseudo_labels" / f"round_{round_index}.jsonl")
        per_seed.append(np.array([float(r["correct"]) for r in rows if r.get("kept")]))
    return stats.score_intervals({method: per_seed}, n_boot)[method]


def findings(
    summary: SeedSummary, freeform_table: str, rows: list[dict[str, Any]] | None = None, n_boot: int = 2000
) -> list[Finding]:
    """The headline findings, each one number with its interval, from a multi-seed comparison and a free-form table.

    ``summary`` is ``compare.summarize_seeds`` of the exact-answer comparison (``rows`` its
    ``seed_table`` rows, when already made); ``freeform_table`` the text of the free-form one.
    """
    root = summary.root
    rows = rows if rows is not None else seed_table(summary, n_boot)[0]
    by = {r["method"]: r for r in rows}
    refs, diffs = _differences(summary, "exact_match", n_boot)
    n = len(summary.seeds)
    out = []
    g = by["fedavg (global)"]["gap"]
    out.append(
        Finding(
            f"FedAvg-LoRA is the strongest federated method: its global model closes {fmt_interval(g, '{:.2f}')} "
            f"of the gap between local training and training on the pooled data ({n} seeds).",
            "results.md#exact-answer-tasks",
        )
    )
    d = diffs["consensus"]["local"]
    out.append(
        Finding(
            f"Semantic consensus is {verdict(d)}{' from' if verdict(d) == 'not distinguishable' else ''} local "
            f"training on exact-answer tasks: {d.format('{:+.3f}')} exact match ({n} seeds).",
            "results.md#exact-answer-tasks",
        )
    )
    ratios = _per_seed_byte_ratios(root, "fedavg", "consensus")
    out.append(
        Finding(
            f"It moves {np.mean(ratios):,.0f}x fewer bytes than FedAvg-LoRA over a run "
            f"(from {min(ratios):,.0f}x to {max(ratios):,.0f}x across the {n} seeds): answers, not adapters.",
            "results.md#bytes-on-the-wire",
        )
    )
    p = label_precision(root, "consensus", 1, n_boot)
    out.append(
        Finding(
            f"Agreement is not correctness: {fmt_interval(p, '{:.2f}')} of the round-1 pseudo-labels the consensus "
            f"keeps are right ({n} seeds).",
            "results.md#exact-answer-tasks",
        )
    )
    d = diffs["consensus@vote"]["consensus"]
    out.append(
        Finding(
            f"On exact answers the exact-string vote of Federated Co-Training and the semantic medoid are "
            f"{verdict(d)}: vote minus medoid {d.format('{:+.3f}')} ({n} seeds).",
            "results.md#exact-answer-tasks",
        )
    )
    free = parse_seed_table(freeform_table)
    d = free["differences"][("consensus@vote", "consensus")]
    d = stats.Interval(-d.mean, -d.hi, -d.lo)
    out.append(
        Finding(
            f"On open-ended answers the semantic medoid is {verdict(d)} the vote: medoid minus vote "
            f"{d.format('{:+.3f}')} answers correct ({free['header'].split(' ')[0]} seeds; this interval resamples only "
            "the test items of those runs, whose folders are not shipped).",
            "results.md#open-ended-answers",
        )
    )
    return out


def findings_markdown(items: Sequence[Finding], prefix: str = "") -> str:
    """A bullet list; ``prefix`` rewrites each link relative to the page that shows it."""
    return "\n".join(f"- {f.text} ([evidence]({prefix}{f.link}))" for f in items)
