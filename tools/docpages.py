"""The documentation's result pages and the README's rendered blocks, written from the shipped run folders.

:func:`render_pages` returns every generated file (``docs/_generated/*.md``)
and :func:`render_readme` the README with its rendered blocks filled in; both
read only finished runs (``notebooks/reference/``), the presets and the model
configs, so they cost seconds and load no model. Every number comes from a
function of the package or of this file (tables, findings and where each
number came from), never typed by hand. ``tools/render_docs.py`` writes them;
``tests/test_docs.py`` renders them again and fails when a committed page
differs. (Not part of the package: the package draws and reads, this file
writes the documentation.)
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import plotly.io as pio

from fedcofit_lite.analysis import accounting, compare, costmodel, stats, sweepreport
from fedcofit_lite.analysis.compare import METRIC_LABELS
from fedcofit_lite.analysis.markdown import (
    _bold_if,
    fmt_interval,
    format_minutes,
    md_table,
    replay_markdown,
    seed_summary_markdown,
    stage_difference,
    verdict,
)
from fedcofit_lite.config import load_config
from fedcofit_lite.runlog import read_jsonl
from fedcofit_lite.ui import lesson, plots, workshop

ROOT = Path(__file__).resolve().parents[1]
GENERATED = Path("docs") / "_generated"
TIMINGS = Path("docs") / "_data" / "timings.json"
FREEFORM = workshop.REFERENCE_ROOT / "freeform"
PRESETS = ("ci", "small", "cpu", "freeform", "dolly", "mixed", "small-mixed", "gpu", "large")
NOTE = "<!-- Rendered by tools/render_docs.py from the run folders it names; edit the renderer, not this file. -->"


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
    format_bytes = costmodel.format_bytes

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


HEADLINE_SEEDS = 5  # a headline claim rests on at least this many seeds


def _says(d: stats.Interval, other: str) -> str:
    """``above X``, ``below X`` or ``not distinguishable from X``, as the paired interval says."""
    word = verdict(d)
    return f"{word} {other}" if word != "not distinguishable" else f"not distinguishable from {other}"


def expert_findings(part: str = "expert", n_boot: int = 2000) -> list[Finding]:
    """What the expert part of the study shows, each claim with its interval over seeds and items."""
    from fedcofit_lite.analysis import frontier

    res, sc, manifest = _study(part)
    last = f"round_{res.last_round}"
    budget = res.plan.budgets[0]
    n = len(sc.seeds)
    link = "results.md#knowledge-transfer-one-task-family-per-client"
    rules = [e for e, b in res.entries(sc.clients) if b == budget and sc.has((e, b, last))]
    if not rules or not sc.has(("fedavg", None, last)):
        return []
    best = max(rules, key=lambda e: sc.point[(e, budget, last)])
    key = (best, budget, last)
    vs_fedavg = sc.difference(key, ("fedavg", None, last))
    vs_global = sc.difference(key, ("fedavg (global)", None, last))
    vs_medoid = sc.difference(key, ("consensus", budget, last)) if sc.has(("consensus", budget, last)) else None
    cost = frontier.costs(res, sc.clients)
    bytes_rule, bytes_fedavg = _sent(cost, (best, budget), last), _sent(cost, ("fedavg", None), last)
    out = [
        Finding(
            f"When each client holds one task family, the best consensus rule is `{best.partition('@')[2] or 'medoid'}`: its "
            f"clients score {sc.interval(key).format()} exact match, {_says(vs_fedavg, 'FedAvg-LoRA')}'s personalized "
            f"clients ({vs_fedavg.format('{:+.3f}')}) and {_says(vs_global, 'its global model')} "
            f"({vs_global.format('{:+.3f}')}), moving {bytes_fedavg / bytes_rule:,.0f}x fewer bytes ({n} seeds).",
            link,
        )
    ]
    if vs_medoid is not None and best != "consensus":
        labels = {(r["method"], r["round"]): r for r in frontier.label_rows(res, sc.clients) if r["budget"] == budget}
        med, top = labels.get(("consensus", 1)), labels.get((best, 1))
        if med and top:
            out.append(
                Finding(
                    f"Agreement passes only what most clients already know: in round 1 the medoid rule gives each client "
                    f"{med['new_correct_per_client']:.1f} new right labels, `{best.partition('@')[2]}` "
                    f"{top['new_correct_per_client']:.1f} at precision {top['precision']:.2f}; trained, it is "
                    f"{_says(vs_medoid, 'the medoid')} by {vs_medoid.format('{:+.3f}')} exact match ({n} seeds).",
                    link,
                )
            )
    moved = {(t.entry, t.budget): t for t in frontier.transfer_rows(res, sc.clients, n_boot=n_boot)}
    mine, theirs = moved.get((best, budget)), moved.get(("fedavg", None))
    if mine and theirs and mine.gain_over_local and theirs.gain_over_local:
        out.append(
            Finding(
                f"On the families a client never held, `{best.partition('@')[2] or 'medoid'}` adds "
                f"{mine.gain_over_local.format('{:+.3f}')} exact match over local training, FedAvg-LoRA "
                f"{theirs.gain_over_local.format('{:+.3f}')} ({n} seeds).",
                link,
            )
        )
    return out


def _sent(cost: Mapping[Any, Any], key: tuple[str, int | None], stage: str) -> float:
    """Bytes both ways of ``key`` up to ``stage``, from :func:`fedcofit_lite.analysis.frontier.costs`."""
    return cost[key][stage]["bytes_up"] + cost[key][stage]["bytes_down"]


BUDGET_PARTS = {  # study part with a public-budget axis -> (whose budget, its section of the results page)
    "expert-budget": ("on the expert clients", "the-expert-clients-public-budget"),
    "budget": ("on the Dirichlet split", "the-dirichlet-splits-public-budget"),
    "budget-pool": ("on the Dirichlet split, from the pool of 1,120", "beyond-the-suites-280-public-prompts"),
    "freeform-budget": ("on open-ended answers", "the-open-ended-answers-public-budget"),
    "mixed": ("across architectures (SmolLM2 and Gemma clients)", "mixed-architectures"),
}


def budget_findings(part: str) -> list[Finding]:
    """A public-budget axis (:data:`BUDGET_PARTS`): the best rule at each budget and what its last step up in budget
    changed (paired over the same seeds and items), then the sweep's verdict."""

    res, sc, _ = _study(part)
    last, budgets = f"round_{res.last_round}", sorted(res.plan.budgets)
    rules = [e for e, b in res.entries(sc.clients) if b == budgets[-1] and sc.has((e, b, last))]  # the tables' order
    if not rules:
        return []
    best = max(rules, key=lambda e: sc.point[(e, budgets[-1], last)])  # a tie: the first in the tables
    ran = [b for b in budgets if sc.has((best, b, last))]
    at = [f"{sc.interval((best, b, last)).format()} at {b}" for b in ran]
    step = ""
    if len(ran) > 1:
        d = sc.difference((best, ran[-1], last), (best, ran[-2], last))
        step = f" From {ran[-2]} to {ran[-1]} prompts it moves {d.format('{:+.3f}')} ({_says(d, 'zero')})."
    a = _answer(part)  # the verdict, and the bytes it saved there
    v = a.verdict
    said = f" There it moves {a.fewer_bytes:,.0f}x fewer bytes than FedAvg-LoRA." if a.fewer_bytes else ""
    said += architecture_words(part)
    medoid, local = ("consensus", budgets[-1], last), ("local", None, last)
    if best != "consensus" and sc.has(medoid) and sc.has(local):
        d = sc.difference(medoid, local)
        said += f" The medoid rule at {budgets[-1]} prompts is {_says(d, 'local training')} ({d.format('{:+.3f}')})."
    return [
        Finding(
            f"More public prompts {BUDGET_PARTS[part][0]}: `{best.partition('@')[2] or 'medoid'}` scores {', '.join(at)} "
            f"public prompts per round ({len(sc.seeds)} seeds).{step} {v.text}{said}",
            f"results.md#{BUDGET_PARTS[part][1]}",
        )
    ]


def answer_markdown(prefix: str = "") -> str:
    """The study's answer in one table: per public-budget part with ``HEADLINE_SEEDS`` complete seeds
    (:data:`BUDGET_PARTS`), the budgets run, where the best consensus rule first meets its reference, the paired
    differences there and the bytes it saves (:func:`frontier.answer`); ``prefix`` rewrites the links relative to the
    page that shows it."""
    rows = []
    for part, (whose, anchor) in BUDGET_PARTS.items():
        if _complete_seeds(part) < HEADLINE_SEEDS:
            continue
        a = _answer(part)
        c = sweepreport.answer_cells(a)
        rows.append(
            [f"[{whose[0].upper()}{whose[1:]}]({prefix}results.md#{anchor})", str(c["seeds"]), c["budgets"]]
            + [c["against"], c["met"], f"`{c['rule']}`" if c["rule"] else "-"]
            + ["; ".join(_bold_if(d) for d in a.minus.values()) or "-"]
            + [f"{c['bytes']:,.0f}x" if c["bytes"] else "-"]
        )
    if not rows:
        return ""
    lead = (
        "Where the best consensus rule first meets what it is held against: the smallest public budget each part ran "
        "at which, after the last round it reports, the rule is above or not distinguishable from FedAvg-LoRA's clients "
        "and from its global model (above local training where FedAvg-LoRA cannot run), paired over the seeds and the "
        "test items; **bold**: the interval leaves out zero. *The smallest run*: the part's first budget already "
        "sufficed, so less may do."
    )
    header = ["setting", "seeds", "public prompts run", "held against", "first met at", "rule", "minus each, there"]
    return lead + "\n\n" + md_table([*header, "fewer bytes than FedAvg-LoRA"], rows, "lrlllll" + "r")


SPLITS = {"cpu": "the Dirichlet split", "expert": "the expert clients", "freeform": "open-ended answers"}


def _on(res: Any) -> str:
    """``on the Dirichlet split``: what a study part's preset asks of the clients (:data:`SPLITS`)."""
    return f"on {SPLITS.get(res.preset, f'the `{res.preset}` preset')}"


def rounds_findings(part: str = "rounds") -> list[Finding]:
    """A rounds axis: the best rule at the last round minus FedAvg-LoRA after each reported round, and how both moved."""
    res, sc, _ = _study(part)
    b, rounds = res.plan.budgets[0], sorted(res.plan.rounds)
    last = f"round_{rounds[-1]}"
    rules = [e for e, budget in res.entries(sc.clients) if budget == b and sc.has((e, b, last))]
    refs = [r for r in ("fedavg", "fedavg (global)") if sc.has((r, None, last))]
    if not rules or not refs:
        return []
    best = max(rules, key=lambda e: sc.point[(e, b, last)])
    name = f"`{best.partition('@')[2] or 'medoid'}`"
    names = sweepreport.REFERENCE_NAMES
    diffs = {ref: [sc.difference((best, b, f"round_{r}"), (ref, None, f"round_{r}")) for r in rounds] for ref in refs}
    each = "; ".join(f"minus {names[ref]} {', '.join(d.format('{:+.3f}') for d in ds)}" for ref, ds in diffs.items())
    after = " and ".join(_says(ds[-1], names[ref]) for ref, ds in diffs.items())
    moved = ", ".join(
        f"{label} from {sc.point[(key, budget, f'round_{rounds[0]}')]:.3f} to {sc.point[(key, budget, last)]:.3f}"
        for label, key, budget in ((name, best, b), ("FedAvg-LoRA's global model", refs[-1], None))
    )
    return [
        Finding(
            f"More rounds at {b} public prompts {_on(res)} ({len(sc.seeds)} seeds): after rounds "
            f"{', '.join(map(str, rounds))}, {name} {each}. After round {rounds[-1]} it is {after}; "
            f"{moved} between rounds {rounds[0]} and {rounds[-1]}.",
            "results.md#more-rounds",
        )
    ]


def _and(items: Sequence[Any]) -> str:
    """``a, b and c``."""
    words = [str(x) for x in items]
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def clients_findings(part: str = "clients", seeds: int = 3) -> list[Finding]:
    """A clients axis: the best rule (at the most clients) minus FedAvg-LoRA (personalized and global) and minus local
    training at each client count with ``seeds`` finished seeds, and how the rule and FedAvg-LoRA's clients moved from
    the fewest clients to the most."""
    if not (STUDY / part / "manifest.json").exists():  # not shipped
        return []
    res = _loaded(part)
    last = f"round_{res.last_round}"
    counts = sorted(n for n in res.plan.clients if len(res.seeds[n]) >= seeds)  # a count still running waits
    if len(counts) < 2:
        return []
    b, scores = res.plan.budgets[0], {n: _scores(part, n) for n in counts}
    rules = [
        e for e, budget in res.entries(counts[0]) if budget == b and all(scores[n].has((e, b, last)) for n in counts)
    ]
    refs = [r for r in ("fedavg", "fedavg (global)", "local") if all(scores[n].has((r, None, last)) for n in counts)]
    if not rules or not refs:
        return []
    best = max(rules, key=lambda e: scores[counts[-1]].point[(e, b, last)])
    name = f"`{best.partition('@')[2] or 'medoid'}`"
    each = "; ".join(
        f"minus {sweepreport.REFERENCE_NAMES[ref]} "
        + ", ".join(
            f"{d.format('{:+.3f}')} ({verdict(d)})"
            for d in (scores[n].difference((best, b, last), (ref, None, last)) for n in counts)
        )
        for ref in refs
    )
    steps = _client_steps(part, counts)
    moved = "; ".join(
        f"{label} {steps[key][-1].format('{:+.3f}')} ({verdict(steps[key][-1])})"
        for label, key in ((name, (best, b)), ("FedAvg-LoRA's clients", ("fedavg", None)))
        if key in steps and steps[key][-1] is not None
    )
    cap = json.loads((STUDY / part / "sweep.json").read_text())["config"]["data"]["max_train_per_client"]
    keeps = (
        f"each client keeping up to {cap} private records"
        if res.plan.client_data == "per_client"
        else f"the preset's {cap * load_config(res.preset).federation.n_clients} private records split among them"
    )
    ran = sorted({len(res.seeds[n]) for n in counts})
    said = f"{ran[0]}-{ran[-1]}" if len(ran) > 1 else str(ran[0])
    return [
        Finding(
            f"More clients {_on(res)} ({keeps}; {b} public prompts, {said} seeds): at {_and(counts)} clients in "
            f"turn, {name} {each}." + (f" From {counts[0]} to {counts[-1]} clients: {moved}." if moved else ""),
            "results.md#more-clients",
        )
    ]


class Against(NamedTuple):
    """A study part's rules held against another rule of the same part, for the README."""

    where: str  # the setting, as the finding's sentence opens
    anchor: str  # its section of the results page
    rules: tuple[str, ...]  # the rules asked about: the first the part ran is the finding's
    reference: str  # the rule they are held against
    words: str  # its name in the sentence


AGAINST = {
    "cpu": Against(
        "Where every client holds most families (the Dirichlet split)",
        "the-dirichlet-split-with-every-rule",
        ("consensus@closest", "consensus@competence"),
        "consensus",
        "the medoid rule",
    ),
    "freeform": Against(
        "On open-ended answers",
        "open-ended-answers",
        ("consensus@closest", "consensus@competence"),
        "consensus",
        "the medoid rule",
    ),
    "mixed": Against(
        "Across architectures (SmolLM2 and Gemma clients)",
        "mixed-architectures",
        ("consensus@closest",),
        "consensus",
        "the medoid rule",
    ),
    "vote": Against(
        "On exact answers (the Dirichlet split)",
        "the-vote-on-exact-answers",
        ("consensus",),
        "consensus@vote",
        "the exact-string vote of Federated Co-Training",
    ),
    "freeform-vote": Against(
        "On open-ended answers",
        "the-vote-on-open-ended-answers",
        ("consensus",),
        "consensus@vote",
        "the exact-string vote of Federated Co-Training",
    ),
    "expert-calibrated": Against(
        "On the expert clients, with private records held out to calibrate each client's confidence",
        "the-calibrated-signal",
        ("consensus@calibrated",),
        "consensus@closest",
        "`closest` on the same split",
    ),
}


def against_reference(part: str) -> list[Finding]:
    """The first rule of :data:`AGAINST` a study part ran, minus the rule it is held against at the largest budget the
    latter ran, with its interval over seeds and items (does reading competence, or calibrating it, lose anything
    against what was there)."""
    res, sc, _ = _study(part)
    against, last = AGAINST[part], f"round_{res.last_round}"
    b = max((b for b in res.plan.budgets if sc.has((against.reference, b, last))), default=None)
    rules = [r for r in against.rules if sc.has((r, b, last))]
    if not rules:
        return []
    ref = (against.reference, b, last)
    d = sc.difference((rules[0], b, last), ref)
    metric = METRIC_LABELS.get(res.metric, res.metric).removeprefix("test ")
    return [
        Finding(
            f"{against.where}, {_rule_words(rules[0])} is {_says(d, against.words)}: {d.format('{:+.3f}')} "
            f"{metric} ({len(sc.seeds)} seeds, {b} public prompts).",
            f"results.md#{against.anchor}",
        )
    ]


def _rule_words(method: str) -> str:
    """A consensus method as a finding names it: ``consensus@closest`` is `closest`, plain ``consensus`` the semantic
    medoid (the default rule)."""
    return f"`{method.partition('@')[2]}`" if "@" in method else "the semantic medoid"


def dirichlet_findings(part: str = "cpu", n_boot: int = 2000) -> list[Finding]:
    """The README's setting from the study's `cpu` part: the references, consensus, the competence rules, bytes, labels."""
    from fedcofit_lite.analysis import frontier

    res, sc, _ = _study(part)
    last = f"round_{res.last_round}"
    b = res.plan.budgets[0]
    n = len(sc.seeds)
    link = "results.md#the-dirichlet-split-with-every-rule"
    rows = {(r["method"], r["budget"]): r for r in frontier.budget_rows(res, sc, last)}
    out = []
    if ("fedavg (global)", None) in rows and rows[("fedavg (global)", None)].get("gap"):
        g = rows[("fedavg (global)", None)]["gap"]
        out.append(
            Finding(
                f"On a Dirichlet split FedAvg-LoRA's global model closes {fmt_interval(g, '{:.2f}')} of the gap "
                f"between local training and training on the pooled data ({n} seeds).",
                link,
            )
        )
    medoid = ("consensus", b, last)
    if sc.has(medoid):
        d = sc.difference(medoid, ("local", None, last))
        out.append(
            Finding(
                f"Semantic consensus (the medoid rule) is {_says(d, 'local training')} there: "
                f"{d.format('{:+.3f}')} exact match ({n} seeds).",
                link,
            )
        )
        out += against_reference("cpu")
        rules = [r for r in ("consensus@closest", "consensus@competence", "consensus") if sc.has((r, b, last))]
        if sc.has(("fedavg (global)", None, last)):
            key = (rules[0], b, last)
            d1, d2 = (sc.difference(key, (ref, None, last)) for ref in ("fedavg", "fedavg (global)"))
            out.append(
                Finding(
                    f"There `{rules[0].partition('@')[2] or 'medoid'}` is {_says(d1, 'FedAvg-LoRA')}'s personalized "
                    f"clients ({d1.format('{:+.3f}')}) and {_says(d2, 'its global model')} ({d2.format('{:+.3f}')}), "
                    f"{n} seeds at {b} public prompts.",
                    link,
                )
            )
        cost = frontier.costs(res, sc.clients)
        if ("fedavg", None) in cost:
            ratio = _sent(cost, ("fedavg", None), last) / _sent(cost, ("consensus", b), last)
            out.append(
                Finding(
                    f"Consensus moves {ratio:,.0f}x fewer bytes than FedAvg-LoRA "
                    f"over a run, mean over {n} seeds: answers, not adapters.",
                    link,
                )
            )
        labels = {(r["method"], r["round"]): r for r in frontier.label_rows(res, sc.clients) if r["budget"] == b}
        if ("consensus", 1) in labels:
            out.append(
                Finding(
                    f"Agreement is not correctness: {labels[('consensus', 1)]['precision']:.2f} of the round-1 pseudo-labels "
                    f"the medoid rule keeps are right, mean over {n} seeds.",
                    link,
                )
            )
    return out


def findings_markdown(items: Sequence[Finding], prefix: str = "") -> str:
    """A bullet list; ``prefix`` rewrites each link relative to the page that shows it."""
    return "\n".join(f"- {f.text} ([evidence]({prefix}{f.link}))" for f in items)


# -- the pages ----------------------------------------------------------------------------------------


def figure_html(fig: Any, div_id: str, digits: int = 4) -> str:
    """A plotly figure as an HTML fragment for a page that loads plotly.js itself (no CDN, a fixed id).

    Numbers are rounded to ``digits`` so the fragment is the same bytes on every machine.
    """

    def rounded(x: Any) -> Any:
        if isinstance(x, float):
            return round(x, digits)
        if isinstance(x, dict):
            return {k: rounded(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [rounded(v) for v in x]
        if hasattr(x, "tolist"):
            return rounded(x.tolist())
        return x

    spec = rounded(fig.to_plotly_json())
    html = pio.to_html(spec, include_plotlyjs=False, full_html=False, div_id=div_id, default_height=460, validate=False)
    return "```{raw} html\n" + html.strip() + "\n```"


def _block(provenance: Provenance, body: str) -> str:
    return f"{NOTE}\n\n{body}\n\n{provenance.markdown()}\n"


def _quickstart_page(preset: str) -> str:
    ref = workshop.reference_for(preset)
    run = ref.root / "quickstart"
    d = stage_difference(run, "round_2", "local")
    last = "round_2"
    sentence = (
        f"The last round minus the local stage, paired over this run's test items (one seed): "
        f"{d.format('{:+.3f}')} exact match, {verdict(d)}"
        f"{' from' if verdict(d) == 'not distinguishable' else ''} the local stage."
    )
    body = run_stages_markdown(run) + "\n\n" + sentence.replace("round_2", last)
    return _block(Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "quickstart"), body)


@functools.cache
def _seeds(preset: str) -> tuple[compare.SeedSummary, list[dict[str, Any]]]:
    """The reference comparison of ``preset`` and its table rows, read once per process."""
    summary = compare.summarize_seeds(workshop.reference_for(preset).root / "seeds")
    return summary, compare.seed_table(summary)[0]


def _seeds_page(preset: str) -> str:
    ref = workshop.reference_for(preset)
    summary, rows = _seeds(preset)
    figs = plots.seed_figures(summary, rows)
    body = "\n\n".join(
        [
            seed_summary_markdown(summary),
            figure_html(figs["seeds_score_by_round"], f"{preset}-seeds-by-round"),
            figure_html(figs["seeds_score_vs_bytes"], f"{preset}-seeds-vs-bytes"),
        ]
    )
    return _block(Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "seeds"), body)


def _freeform_page() -> str:
    table = (FREEFORM / "comparison_seeds.txt").read_text()
    replay = json.loads((FREEFORM / "replay.json").read_text())
    manifest = FREEFORM / "provenance.json"
    body = (
        "The table `compare --seeds` wrote (`notebooks/reference/freeform/comparison_seeds.txt`; the run folders "
        "are not shipped, so this block is the package's own text):\n\n```text\n"
        + table.rstrip()
        + "\n```\n\n"
        + Provenance.from_manifest(manifest, "seeds").markdown()
        + f" *{json.loads(manifest.read_text()).get('note', '')}*"
        + "\n\nThe rules replayed on the answers of the medoid runs, round 1 and 2 "
        "(`notebooks/reference/freeform/replay.json`):\n\n" + replay_markdown(replay)
    )
    return _block(Provenance.from_manifest(manifest, "replay"), body)


def _bytes_page() -> str:
    ref = workshop.reference_for("cpu")
    seed = ref.root / "seeds" / f"seed_{ref.seeds[0]}"
    rows = [r for m in ("consensus", "fedavg", "ffa") for r in accounting.measured_vs_analytic(seed / m)]
    body = (
        f"Seed {ref.seeds[0]} of the `cpu` reference comparison, each method's wire bytes against the analytic model "
        "fed the run's own settings (`flt.analysis.accounting.measured_vs_analytic`).\n\n"
        + measured_vs_analytic_markdown(rows)
    )
    return _block(Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "seeds"), body)


def _costs_page() -> str:
    arch, protocol = costmodel.paper_setting()
    names = sorted(costmodel.ARCHITECTURES, key=lambda n: costmodel.ARCHITECTURES[n].n_parameters())
    rows = costmodel.cost_table([costmodel.ARCHITECTURES[n] for n in names], protocol)
    ratio = costmodel.ratios(arch, protocol)["lora_over_consensus"]
    return (
        f"{NOTE}\n\nBytes of one round under the paper setting (`costmodel.paper_setting()`: LoRA rank "
        f"{protocol.rank} on {', '.join(protocol.target_modules)} in {protocol.bytes_per_param:g}-byte floats, "
        f"against {protocol.n_prompts:,} prompts x {protocol.answer_tokens:g} tokens x {protocol.bytes_per_token:g} "
        f"bytes; one client, upload only). For `{arch.name}` the ratio is **{ratio:,.1f}**. Arithmetic only: "
        "`python -m fedcofit_lite cost`.\n\n" + cost_markdown(rows) + "\n"
    )


def _family_inference_page() -> str:
    """What closeness tells the server of each client's families, on the `cpu` reference's seeds."""
    from fedcofit_lite.analysis.audit import family_inference

    ref = workshop.reference_for("cpu")
    folders = [ref.root / "seeds" / f"seed_{s}" / "consensus" for s in ref.seeds]
    leak = family_inference(folders)
    body = (
        "| signal | (client, family) pairs held / not held | ROC AUC | true positives at 1% false positives |\n"
        "|---|--:|--:|--:|\n"
        f"| `{leak['signal']}` | {leak['held']} / {leak['not_held']} | {leak['auc'].format('{:.2f}')} | "
        f"{leak['tpr_at_1pct_fpr'].format('{:.2f}')} |\n\n"
        f"`flt.analysis.audit.family_inference` over the {len(folders)} seeds of the `cpu` reference (round 1); "
        "95% bootstrap intervals over the pairs; AUC 0.5 is chance."
    )
    return _block(Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "seeds"), body)


def _leaderboard_page() -> str:
    """Every rule ranked on the shipped corpus (`python -m fedcofit_lite leaderboard`), its validity, and the figure."""
    from fedcofit_lite.analysis import leaderboard as lb
    from fedcofit_lite.ui.leaderplots import fig_precision_vs_kept

    board = lb.leaderboard(lb.load_corpus(), progress=False)
    body = (
        lb.board_markdown(board)
        + "\n\n"
        + figure_html(fig_precision_vs_kept(board.rows), "leaderboard-precision-vs-kept")
        + f"\n\n*Made by* `python -m fedcofit_lite leaderboard` *over the corpus `notebooks/reference/corpus.json` "
        f"({len({(g.setting, g.seed) for g in lb.load_corpus()})} recorded groups); each group's folder names its own "
        "command, commit and machine (`reference.json`, `manifest.json`).*"
    )
    return f"{NOTE}\n\n{body}\n"


STUDY = ROOT / "notebooks" / "reference" / "study"


def _b(budget: Any) -> str:
    return "-" if budget is None else str(budget)


@functools.cache
def _loaded(name: str) -> Any:
    """A shipped study folder's SweepResults, read once."""
    from fedcofit_lite.analysis import frontier

    return frontier.load_sweep(STUDY / name)


@functools.cache
def _scores(name: str, clients: int) -> Any:
    """The paired scores (complete seeds only) of one client count of a shipped study part, computed once."""
    from fedcofit_lite.analysis import frontier

    return frontier.sweep_scores(_loaded(name), clients, n_boot=2000)


def _study(name: str) -> tuple[Any, Any, dict[str, Any]]:
    """A shipped study part: (SweepResults, SweepScores of its fewest clients with a finished seed, manifest)."""
    res = _loaded(name)
    first = min((n for n in res.plan.clients if res.seeds[n]), default=res.plan.clients[0])  # fewest clients run
    return res, _scores(name, first), json.loads((STUDY / name / "manifest.json").read_text())


@functools.cache
def _answer(name: str) -> Any:
    """A shipped public-budget part's :func:`frontier.answer` (its verdict, and the bytes it saved there), computed
    once for the findings, the answer table and the blocks that read it."""
    from fedcofit_lite.analysis import frontier

    res, sc, _ = _study(name)
    return frontier.answer(res, sc)


def study_markdown(name: str) -> str:
    """A study's tables: scores and bytes, paired differences, knowledge transfer, labels, signals, the verdict."""
    from fedcofit_lite.analysis import frontier
    from fedcofit_lite.analysis.replay import format_signal_power, load_round, signal_power

    res, sc, manifest = _study(name)
    last = f"round_{res.last_round}"
    n = sc.clients
    out = [
        f"{len(sc.seeds)} seed{'s' if len(sc.seeds) > 1 else ''} ({', '.join(map(str, sc.seeds))}) x {sc.n_items} test "
        f"items, {n} clients{' (the other client counts: below)' if len(res.plan.clients) > 1 else ''}, stage `{last}`; "
        "every interval is a 95% paired bootstrap over the seeds and the test items within each.",
        "",
    ]
    rows = frontier.budget_rows(res, sc, last)
    out.append(
        md_table(
            ["method", "public prompts", METRIC_LABELS.get(res.metric, res.metric).removeprefix("test "), "gap closed"]
            + ["bytes", f"kept in {last}", "precision"],
            [
                [
                    f"`{r['method']}`",
                    _b(r["budget"]),
                    fmt_interval(r["score"]),
                    fmt_interval(r["gap"], "{:.2f}") if r.get("gap") else "-",
                    f"{r['bytes']:,.0f}",
                    f"{r['kept']:.1f}" if "kept" in r else "-",
                    f"{r['precision']:.2f}" if "kept" in r and np.isfinite(r["precision"]) else "-",
                ]
                for r in rows
            ],
        )
    )
    out += _rounds_markdown(res, sc)
    diffs = frontier.difference_rows(res, sc, last)
    refs = [k.removeprefix("minus ") for k in (diffs[0] if diffs else {}) if k.startswith("minus ")]
    out += [
        "",
        "Paired differences (row minus column), and the probability that one run of the row's method scores above one of the column's (rliable's P(X > Y)); **bold**: the interval leaves out zero.",
        "",
    ]
    out.append(
        md_table(
            ["method", "public prompts", *[f"minus `{r}`" for r in refs]],
            [
                [f"`{d['method']}`", _b(d["budget"])]
                + [
                    _bold_if(d[f"minus {r}"]) + (f"; P {d[f'beats {r}'].format('{:.2f}')}" if d[f"beats {r}"] else "")
                    for r in refs
                ]
                for d in diffs
            ],
        )
    )
    held = against_reference(name) if name in AGAINST else []  # the rule the README holds this part's rule against
    out += ["", f"Held against {AGAINST[name].words}, paired over seeds and items: {held[0].text}"] if held else []
    out += _clients_markdown(name)
    out += _architecture_markdown(name)
    moved = frontier.transfer_rows(res, n, n_boot=2000)
    if moved:
        out += [
            "",
            "What each client learned of the task families it held no record of, and kept of its own (score per (client, test item) pair; the gain is paired with local training):",
            "",
        ]
        out.append(
            md_table(
                ["method", "public prompts", "families it never held", "its own families", "gain over local"],
                [
                    [
                        f"`{t.entry}`",
                        _b(t.budget),
                        fmt_interval(t.unknown),
                        fmt_interval(t.known),
                        _bold_if(t.gain_over_local) if t.gain_over_local else "-",
                    ]
                    for t in moved
                ],
            )
        )
    labels = frontier.label_rows(res, n)
    out += [
        "",
        "Pseudo-labels per round, mean over seeds: kept, their precision, and per client the new right labels (where its own answer was wrong) and harmful ones (where it was right):",
        "",
    ]
    out.append(
        md_table(
            ["method", "public prompts", "round", "kept", "precision", "new correct / client", "harmful / client"],
            [
                [
                    f"`{r['method']}`",
                    _b(r["budget"]),
                    r["round"],
                    f"{r['kept']:.1f} / {r['n_prompts']:.0f}",
                    f"{r['precision']:.2f}" if np.isfinite(r["precision"]) else "-",
                    f"{r['new_correct_per_client']:.2f}",
                    f"{r['harmful_per_client']:.2f}",
                ]
                for r in labels
            ],
        )
    )
    phases = _phase_seconds(res, n)
    if phases:
        out += [
            "",
            "What a round cost each rule, mean over rounds and seeds (wall seconds of the federation on this machine; the `consistent` rule's clients generate `competence.samples` more answers per prompt):",
            "",
        ]
        out.append(
            md_table(
                ["method", "public prompts", "generate s", "server s", "train s", "CPU s (evaluation included)"], phases
            )
        )
    rounds = []
    for s in sc.seeds:  # per seed, the consensus cell whose answers carry the most signals (a rule records its own)
        read = [(load_round(c.path, 1), c) for c in res.cells_of(n) if c.seed == s and c.budget is not None]
        if read:
            ra, cell = max(read, key=lambda rc: len(rc[0].signals))
            rounds.append((ra, load_config(cell.path / "config.yaml", recorded=True).consensus))
    if rounds:
        power = format_signal_power(signal_power(rounds))
        out += [
            "",
            "How well each per-answer signal tells a right round-1 answer from a wrong one (`replay --signals`):",
            "",
            "```text",
            power,
            "```",
        ]
    out += ["", f"**Verdict.** {frontier.verdict(res, sc).text}"]
    cpu_h, wall_h = manifest["cpu_s"] / 3600, manifest["wall_s"] / 3600
    commands = dict.fromkeys(map(_portable, manifest["commands"]))  # as the reproducing page gives them
    out += [
        "",
        f"*Made by* `{'`, then `'.join(commands)}` *with fedcofit_lite {manifest['package_version']} "
        f"(the code of commits {', '.join(f'`{c}`' for c in _slice_commits(manifest)) or 'not recorded'}; shipped at "
        f"`{manifest['commit']}`), {manifest['made']}{_ran_on(manifest)}; {manifest['cells']} cells, {wall_h:.1f} h of wall "
        f"time and {cpu_h:.1f} h of CPU time over the cells (each cell's, from its metrics rows)"
        + _reused_words(manifest)
        + ".*"
        + (f" {manifest['note']}" if manifest.get("note") else ""),
    ]
    return "\n".join(out)


def _rounds_markdown(res: Any, sc: Any) -> list[str]:
    """A part that reports more than one round: each entry's score after the local stage and each reported round, and
    the consensus rules' paired differences from local training and FedAvg-LoRA after each of them."""
    from fedcofit_lite.analysis import frontier

    if len(res.plan.rounds) < 2:
        return []
    stages = [f"round_{r}" for r in sorted(res.plan.rounds)]
    scores = frontier.round_rows(res, sc)
    out = ["", "Score after the local stage and after each reported round (one run to the last round):", ""]
    out.append(
        md_table(
            ["method", "public prompts", "local stage", *(f"after round {s.removeprefix('round_')}" for s in stages)],
            [
                [
                    f"`{r['method']}`",
                    _b(r["budget"]),
                    *(fmt_interval(r["scores"][s]) if s in r["scores"] else "-" for s in ["local", *stages]),
                ]
                for r in scores
            ],
        )
    )
    rows = [(s, d) for s in stages for d in frontier.difference_rows(res, sc, s) if d["budget"] is not None]
    refs = [k.removeprefix("minus ") for k in (rows[0][1] if rows else {}) if k.startswith("minus ")]
    if rows:
        out += [
            "",
            "The consensus rules' paired differences after each reported round (row minus column; **bold**: the interval leaves out zero):",
            "",
        ]
        out.append(
            md_table(
                ["method", "public prompts", "after round", *(f"minus `{r}`" for r in refs)],
                [
                    [
                        f"`{d['method']}`",
                        _b(d["budget"]),
                        s.removeprefix("round_"),
                        *(_bold_if(d[f"minus {r}"]) for r in refs),
                    ]
                    for s, d in rows
                ],
            )
        )
    return out


def _clients_markdown(name: str) -> list[str]:
    """A part with a clients axis: per client count (its own complete seeds), every entry's score and bytes, and the
    consensus rules' kept labels, precision and paired differences from local training and FedAvg-LoRA; then how each
    entry moved from the fewest clients to each larger count, paired over the seeds both ran and the test items."""
    from fedcofit_lite.analysis import frontier

    res = _loaded(name)
    if len(res.plan.clients) < 2:
        return []
    last, counts = f"round_{res.last_round}", [n for n in sorted(res.plan.clients) if res.seeds[n]]
    score_rows, diff_rows = [], []
    for n in counts:
        sc = _scores(name, n)
        for r in frontier.budget_rows(res, sc, last):
            score_rows.append(
                [str(n), ", ".join(map(str, sc.seeds)), f"`{r['method']}`", _b(r["budget"]), fmt_interval(r["score"])]
                + [f"{r['bytes']:,.0f}", f"{r['kept']:.1f}" if "kept" in r else "-"]
                + [f"{r['precision']:.2f}" if "kept" in r and np.isfinite(r["precision"]) else "-"]
            )
        for d in frontier.difference_rows(res, sc, last):
            if d["budget"] is not None:
                minus = (_bold_if(d[f"minus {ref}"]) if f"minus {ref}" in d else "-" for ref in frontier.REFERENCES)
                diff_rows.append([str(n), f"`{d['method']}`", _b(d["budget"]), *minus])
    left = {n: sorted(set(res.plan.seeds) - set(res.seeds[n])) for n in sorted(res.plan.clients)}
    waiting = [f"{n} clients (seed{'s' * (len(s) > 1)} {', '.join(map(str, s))})" for n, s in left.items() if s]
    out = [
        "",
        f"By client count, after round {res.last_round}, each count over its own finished seeds"
        + (f"; still running: {', '.join(waiting)}" if waiting else "")
        + ":",
        "",
        md_table(
            [
                "clients",
                "seeds",
                "method",
                "public prompts",
                METRIC_LABELS.get(res.metric, res.metric).removeprefix("test "),
            ]
            + ["bytes", f"kept in {last}", "precision"],
            score_rows,
        ),
        "",
        "The consensus rules' paired differences at each client count (row minus column; **bold**: the interval leaves out zero):",
        "",
        md_table(["clients", "method", "public prompts", *(f"minus `{r}`" for r in frontier.REFERENCES)], diff_rows),
    ]
    moved = [
        [f"`{entry}`", _b(budget), *(_bold_if(d) if d is not None else "-" for d in steps)]
        for (entry, budget), steps in _client_steps(name, counts).items()
    ]
    if moved:
        out += [
            "",
            f"How each entry moved from {counts[0]} clients to more, paired over the seeds both ran and the test items "
            "(a seed's training differs with the client count; its test items do not):",
            "",
            md_table(["method", "public prompts", *(f"{n} minus {counts[0]} clients" for n in counts[1:])], moved),
        ]
    return out


@functools.cache
def _by_architecture(name: str) -> list[Any]:
    """The study part's :func:`frontier.architecture_rows` (empty for a federation of one architecture)."""
    from fedcofit_lite.analysis import frontier

    res, sc, _ = _study(name)
    return frontier.architecture_rows(res, sc.clients, n_boot=2000)


def _architecture_markdown(name: str) -> list[str]:
    """:func:`_by_architecture` as a table (nothing for a federation of one architecture)."""
    res, sc, _ = _study(name)
    table = [
        [f"`{r.entry}`", _b(r.budget), f"`{r.model}` ({r.clients} of {sc.clients} clients)", fmt_interval(r.score)]
        + [_bold_if(r.gain_over_local) if r.gain_over_local else "-"]
        for r in _by_architecture(name)
    ]
    if not table:
        return []
    metric = METRIC_LABELS.get(res.metric, res.metric).removeprefix("test ")
    return [
        "",
        f"By architecture, after round {res.last_round}: each entry's {metric} on the clients of one model (their own "
        "answers), and minus local training on the same clients, paired over the seeds and the test items:",
        "",
        md_table(["method", "public prompts", "clients", metric, "minus `local`, same clients"], table),
    ]


def architecture_words(name: str) -> str:
    """`` By architecture at B prompts, RULE minus local training: +d [lo, hi] on the M clients, ...``: at the largest
    budget, the rule whose smallest gain over the models is largest, its gain on each model's clients
    (:func:`_by_architecture`), or nothing."""
    rows = [r for r in _by_architecture(name) if r.gain_over_local is not None and r.budget is not None]
    if not rows:
        return ""
    budget = max(r.budget for r in rows)
    at = [r for r in rows if r.budget == budget]
    # the rule whose smallest gain over the models is largest; a tie: the first in the table
    best = max(
        dict.fromkeys(r.entry for r in at), key=lambda e: min(r.gain_over_local.mean for r in at if r.entry == e)
    )
    said = ", ".join(
        f"{r.gain_over_local.format('{:+.3f}')} on the `{r.model}` clients ({verdict(r.gain_over_local)})"
        for r in at
        if r.entry == best
    )
    return f" By architecture at {budget} prompts, `{best.partition('@')[2] or 'medoid'}` minus local training: {said}."


def _client_steps(name: str, counts: list[int]) -> dict[tuple[str, int | None], list[Any]]:
    """Per (entry, budget) at the last round: its score at each larger client count minus at the fewest (an interval,
    or None where a count lacks it), paired over the seeds both counts finished and the test items
    (:func:`stats.difference` of the two counts' per-seed item scores). A seed's test items depend on the seed and
    the data, not on the client count; a count whose seeds scored other items is left out (None)."""
    res = _loaded(name)
    last, base = f"round_{res.last_round}", _scores(name, counts[0])
    out: dict[tuple[str, int | None], list[Any]] = {}
    for entry, budget in res.entries(counts[0]):
        key, steps = (entry, budget, last), []
        for n in counts[1:]:
            sc = _scores(name, n)
            both = [s for s in base.seeds if s in sc.seeds]
            same = all(sc.item_ids[sc.seeds.index(s)] == base.item_ids[base.seeds.index(s)] for s in both)
            if key not in sc.items or key not in base.items or not both or not same:
                steps.append(None)
                continue
            pick = {"more": [sc.items[key][sc.seeds.index(s)] for s in both]}
            pick["fewer"] = [base.items[key][base.seeds.index(s)] for s in both]
            steps.append(stats.difference(pick, "more", "fewer", n_boot=2000))
        if any(d is not None for d in steps):
            out[(entry, budget)] = steps
    return out


def _reused_words(manifest: dict[str, Any]) -> str:
    """``; N cells copied from FOLDER by --reuse...`` when a study part took cells from another one, else nothing."""
    reused = manifest.get("reused", [])
    if not reused:
        return ""
    folders = ", ".join(f"`{Path(r['from']).name}`" for r in reused)
    return (
        f"; {sum(len(r['cells']) for r in reused)} cells copied from {folders} by `--reuse`, their time counted there"
    )


def _phase_seconds(res: Any, clients: int) -> list[list[str]]:
    """Per consensus (rule, budget): mean seconds per round of generating, the server and training, and CPU seconds."""
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cell, rows in res.metrics.items():
        if cell.clients == clients and cell.seed in res.seeds[clients] and cell.budget is not None:
            by.setdefault((cell.method, cell.budget), []).extend(r for r in rows if r.get("round", 0) >= 1)
    out = []
    for (method, budget), rows in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        mean = {p: np.mean([r.get("seconds", {}).get(p, 0.0) for r in rows]) for p in ("generate", "server", "train")}
        cpu = np.mean([r.get("cpu_seconds", np.nan) for r in rows])
        out.append([f"`{method}`", str(budget), *(f"{mean[p]:.1f}" for p in mean), f"{cpu:.0f}"])
    return out


def _slice_commits(manifest: Mapping[str, Any]) -> list[str]:
    """The commits whose code ran the study's slices, from the slices log the manifest carries."""
    return list(
        dict.fromkeys(
            m.group(1) for line in manifest.get("slices", []) if (m := re.search(r" at ([0-9a-f]{7,})", line))
        )
    )


def _ran_on(manifest: Mapping[str, Any]) -> str:
    """Where the slices ran, when that was on more than one kind of CPU (each command's start records its machine):
    greedy answers move with a CPU's arithmetic, so a reader should know which seeds differ in more than the seed."""
    kinds = list(dict.fromkeys(m.group(1) for s in manifest.get("started", []) if (m := re.search(r"\((.+)\)$", s))))
    which = " (the note says which seeds where)" if manifest.get("note") else ""
    return f"; its slices ran on {' and on '.join(kinds)}{which}" if len(kinds) > 1 else ""


def consistency_note(name: str = "expert") -> str:
    """The self-consistency signal where the study ran it: one seed's `consistent` cell against `closest` beside it."""
    from fedcofit_lite.analysis.replay import load_round, signal_power

    cells = sorted((STUDY / name).glob("clients_*/seed_*/public_*/consensus@consistent/summary.json"))
    if not cells:
        return ""
    cell = cells[0].parent
    closest = cell.parent / "consensus@closest"
    if not (closest / "summary.json").exists():
        return ""
    ra = load_round(cell, 1)
    cfg = load_config(cell / "config.yaml", recorded=True)
    auc = {r["signal"]: r["auc"] for r in signal_power([(ra, cfg.consensus)])}

    def final(folder: Path) -> tuple[float, float]:
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        cpu = np.mean([r.get("cpu_seconds", np.nan) for r in rows if r.get("round", 0) >= 1])
        return rows[-1]["test"]["all"]["exact_match"], cpu

    (score_c, cpu_c), (score_k, cpu_k) = final(cell), final(closest)
    seed = cell.parents[1].name.removeprefix("seed_")
    return (
        f"**Self-consistency, one seed.** The `consistent` rule (each client's {cfg.competence.samples} sampled answers, "
        f"clustered by meaning) ran on seed {seed} only: its signal tells a right round-1 answer from a wrong one with "
        f"AUC {auc.get('consistency', float('nan')):.2f} (closeness {auc.get('closeness', float('nan')):.2f}, confidence "
        f"{auc.get('confidence', float('nan')):.2f}); trained, its clients reach {score_c:.3f} exact match against "
        f"{score_k:.3f} for `closest` on the same seed, at {cpu_c:,.0f} CPU seconds a round against {cpu_k:,.0f}."
        + (
            " It buys less than closeness and costs more, so the study's other seeds leave it out."
            if score_c < score_k and cpu_c > cpu_k
            else " The study's other seeds leave it out for its cost."
        )
    )


def _study_page(name: str) -> str:
    if not (STUDY / name / "sweep.json").exists():
        return f"{NOTE}\n\nThis part of the study has not been shipped yet.\n"
    res = _loaded(name)
    if not any(res.seeds.values()):
        planned = len(cells_of_plan(res))
        return f"{NOTE}\n\nRunning: {len(res.metrics)} of {planned} cells shipped, no seed complete yet.\n"
    note = consistency_note(name)
    return f"{NOTE}\n\n{study_markdown(name)}\n" + (f"\n{note}\n" if note else "")


def cells_of_plan(res: Any) -> list[Any]:
    from fedcofit_lite.analysis.sweep import cells

    return cells(res.root, res.plan)


def _study_commands_page() -> str:
    """Every shipped study part's commands in the order they ran, as its manifest recorded them (each resumes or
    extends the folder), with the run folders as ``runs/study/NAME``: what to type, never typed by hand."""
    parts = [
        name.removeprefix("study_").removesuffix(".md").replace("_", "-") for name in PAGES if name.startswith("study_")
    ]
    blocks = []
    for part in (p for p in parts if (STUDY / p / "manifest.json").exists()):
        manifest = json.loads((STUDY / part / "manifest.json").read_text())
        commands = dict.fromkeys(map(_portable, manifest["commands"]))
        what = textwrap.fill(
            f"study/{part}: {manifest['what']}",
            110,
            initial_indent="# ",
            subsequent_indent="# ",
            break_on_hyphens=False,
        )
        blocks.append("\n".join([what, *map(_wrapped, commands)]))
    return f"{NOTE}\n\n```sh\n" + "\n".join(blocks) + "\n```\n"


def _portable(command: str) -> str:
    """A recorded command with its study folders as ``runs/study/NAME``, wherever the slices ran them."""
    return re.sub(r"(?<![^\s=])(?:[^\s=]*/)?runs/study/", "runs/study/", command)


def _wrapped(command: str, width: int = 110) -> str:
    """A shell command over lines of at most ``width`` characters (an option stays with its value)."""
    words, lines = re.findall(r"--?\S+(?: (?!-)\S+)?|\S+", command), [""]
    for w in words:
        if lines[-1] and len(lines[-1]) + len(w) + 3 > width:
            lines.append("  ")
        lines[-1] += ("" if lines[-1].strip() == "" else " ") + w
    return " \\\n".join(lines)


def _presets_page() -> str:
    configs = {name: load_config(name) for name in PRESETS}
    return f"{NOTE}\n\n{presets_markdown(configs)}\n"


@functools.cache
def _complete_seeds(name: str) -> int:
    """How many seeds of a shipped study part have finished every planned cell, at the client count that has finished
    the fewest (0 when it is not shipped)."""
    if not (STUDY / name / "manifest.json").exists():
        return 0
    return min((len(s) for s in _loaded(name).seeds.values()), default=0)


# The README's findings, in the order they are listed: a study part and what is said of it.
FINDINGS: tuple[tuple[str, Callable[[str], list[Finding]]], ...] = (
    ("expert", expert_findings),  # knowledge transfer on the expert clients
    ("expert-budget", budget_findings),
    ("cpu", dirichlet_findings),  # the README's Dirichlet split
    ("budget", budget_findings),
    ("budget-pool", budget_findings),
    ("rounds", rounds_findings),
    ("clients", clients_findings),
    ("mixed", budget_findings),
    ("mixed", against_reference),
    ("vote", against_reference),  # the medoid against the exact-string vote, on exact answers
    ("freeform-vote", against_reference),  # and on open-ended answers
    ("freeform", against_reference),
    ("freeform-budget", budget_findings),
    ("expert-calibrated", against_reference),
)


@functools.cache
def _findings() -> tuple[Finding, ...]:
    """The README's findings, from the study parts of :data:`FINDINGS`. A headline claim rests on at least
    ``HEADLINE_SEEDS`` seeds, so a part with fewer complete seeds stops the render instead of quietly leaving its
    findings out or saying less."""
    short = {part: n for part, _ in FINDINGS if (n := _complete_seeds(part)) < HEADLINE_SEEDS}
    if short:
        raise SystemExit(
            f"the README's findings need {HEADLINE_SEEDS} complete seeds in every study part they read; "
            + ", ".join(f"{part} has {n}" for part, n in short.items())
            + ": run each one's next slices and ship it (docs/reproducing.md), or take its entries out of FINDINGS "
            "in tools/docpages.py"
        )
    return tuple(finding for part, say in FINDINGS for finding in say(part))


def timings() -> list[dict[str, Any]]:
    """The measured wall times of notebooks and commands (``docs/_data/timings.json``, written by tools/measure_times.py)."""
    return lesson.timings(ROOT / TIMINGS)


def timing_record(key: str) -> dict[str, Any] | None:
    return next((t for t in timings() if t["key"] == key), None)


def timing(key: str) -> str:
    """One measured wall time as a reader says it, with the machine, its load and the date."""
    return lesson.timing_words(timing_record(key))


def reference_time(preset: str, part: str) -> str:
    """The wall time of a reference run's command, with its machine: what ``make run`` costs on ``cpu``."""
    p = Provenance.from_manifest(workshop.reference_for(preset).root / workshop.REFERENCE_MANIFEST, part)
    return f"{format_minutes(p.wall_s)} on {p.machine}, {p.date}"


def _timings_page() -> str:
    """The commands' measured times (the notebooks' are in the guide): what, command, wall and CPU time, machine, when."""
    rows = [
        [
            t["what"],
            f"`{t['command']}`",
            format_minutes(t["seconds"]),
            format_minutes(t["cpu_seconds"]) if "cpu_seconds" in t else "-",
            lesson.machine_words(t["machine"]),
            f"{t['load_1min']:.1f}" if "load_1min" in t else "-",
            t["date"] + ("" if t.get("how") == "tools/measure_times.py" else " (by hand)"),
        ]
        for t in timings()
        if "notebook" not in t
    ]
    head = ["what", "command", "wall time", "CPU time", "machine", "load at start", "measured"]
    return (
        f"{NOTE}\n\n"
        + md_table(head, rows, "lllllrl")
        + f"\n\n*CPU time*: seconds of every core the command and its children used (above the wall time when it ran "
        "on several cores). *Load at start*: the machine's 1-minute load average when it started; above the number "
        f"of cores, other work was slowing it down. `{lesson.MEASURE}` measures them again on your machine.\n"
    )


def _reproduce_page() -> str:
    rows = []
    for preset, part, shows, where in (
        ("cpu", "seeds", "exact-answer comparison, findings, bytes", "results.md#exact-answer-tasks"),
        ("cpu", "quickstart", "one run, stage by stage", "results.md#one-run-stage-by-stage"),
        ("small", "seeds", "the notebooks' comparison", "results.md#the-notebooks-preset"),
        ("small", "quickstart", "the notebooks' run", "notebooks.md"),
    ):
        ref = workshop.reference_for(preset)
        p = Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, part)
        rows.append(
            [
                f"[{shows}]({where})",
                f"`{p.command}`",
                format_minutes(p.wall_s),
                p.machine,
                f"`notebooks/reference/{preset}/{part}/`",
            ]
        )
    for part, shows in (("seeds", "open-ended comparison"), ("replay", "open-ended replay")):
        p = Provenance.from_manifest(FREEFORM / "provenance.json", part)
        wall = format_minutes(p.wall_s) if p.wall_s else "seconds"
        rows.append(
            [
                f"[{shows}](results.md#open-ended-answers)",
                f"`{p.command}`",
                wall,
                p.machine,
                "`notebooks/reference/freeform/`",
            ]
        )
    rows.append(
        ["[cost model](results.md#bytes-on-the-wire)", "`python -m fedcofit_lite cost`", "seconds", "any", "stdout"]
    )
    head = ["what it shows", "command", "wall time", "machine", "artefact"]
    return f"{NOTE}\n\n{md_table(head, rows, 'lllll')}\n"


AGENDA = Path("docs") / "_data" / "agenda.json"


def agenda() -> dict[str, Any]:
    """The instructor's plan (``docs/_data/agenda.json``): the core path's slots, then the take-home notebooks."""
    return json.loads((ROOT / AGENDA).read_text())


def class_order() -> list[str]:
    """The notebooks in the order a class runs them: the core path, then the take-home ones."""
    plan = agenda()
    return [nb for slot in plan["core"] for nb in slot["notebooks"]] + [t["notebook"] for t in plan["take_home"]]


def _notebook_times() -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["notebook"], t["preset"]): t for t in timings() if "notebook" in t}


def _measured_on(records: Sequence[dict[str, Any]]) -> str:
    """Where and when a set of records was measured, with the range of the load at their start."""
    machines = sorted({lesson.machine_words(t["machine"]) for t in records})
    dates = sorted({t["date"] for t in records})
    loads = [t["load_1min"] for t in records if "load_1min" in t]
    load = f"; load average {min(loads):.1f} to {max(loads):.1f} when they started" if loads else ""
    return f"{'; '.join(machines)}, {dates[0] if len(dates) == 1 else dates[0] + ' to ' + dates[-1]}{load}"


def _notebook_times_page() -> str:
    """Each notebook's measured wall time per preset, in the class's order; '-' where not measured."""
    got = _notebook_times()
    presets = [p for p in ("cpu", "small") if any(pr == p for _, pr in got)]
    titles = _notebook_titles()
    rows = []
    for nb in class_order():
        cells = [_wall_and_cpu(got[(nb, p)]) if (nb, p) in got else "-" for p in presets]
        rows.append([nb, titles[nb], *cells])
    totals = []
    for p in presets:
        core = [got[(nb, p)]["seconds"] for slot in agenda()["core"] for nb in slot["notebooks"] if (nb, p) in got]
        every = [t["seconds"] for (nb, pr), t in got.items() if pr == p]
        totals.append(
            f"on `{p}`: the core path {format_minutes(sum(core))}, all notebooks {format_minutes(sum(every))}"
        )
    return (
        f"{NOTE}\n\n"
        + md_table(["notebook", "title", *[f"`{p}`" for p in presets]], rows, "ll" + "r" * len(presets))
        + f"\n\nIn all, {'; '.join(totals)}. Measured by `{lesson.MEASURE}` on {_measured_on(list(got.values()))}: "
        "each notebook in a fresh kernel, in this order, from a copy of the notebooks with no workshop runs, so a "
        "notebook reuses what the ones before it made, as in class. In brackets, the CPU time it used (every core "
        "the kernel and its children used): with nothing else running, the same machine would take between the "
        "CPU time divided by its cores and the CPU time. "
        "'-': not measured.\n"
    )


def _wall_and_cpu(t: dict[str, Any]) -> str:
    cpu = f" (CPU {format_minutes(t['cpu_seconds'])})" if t.get("cpu_seconds") else ""
    return format_minutes(t["seconds"]) + cpu


def _notebook_titles() -> dict[str, str]:
    """Each notebook's title, from its first heading (``# 5. Per-prompt clustering: ...`` -> ``Per-prompt clustering``)."""
    out = {}
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        first = json.loads(path.read_text())["cells"][0]
        line = "".join(first["source"]).splitlines()[0]
        out[path.name[:2]] = re.sub(r"^#\s*\d+\.\s*", "", line)
    return out


def _clock(minutes: int) -> str:
    return f"{minutes // 60}:{minutes % 60:02d}"


def _agenda_page() -> str:
    """The agenda: each slot's start (from the planned minutes), notebooks, talk, hands-on, and its measured compute."""
    plan, got = agenda(), _notebook_times()
    preset = plan["preset"]
    rows, start, late = [], 0, []
    for slot in plan["core"]:
        nbs = slot["notebooks"]
        measured = [got[(nb, preset)]["seconds"] for nb in nbs if (nb, preset) in got]
        compute = format_minutes(sum(measured)) if measured and len(measured) == len(nbs) else "-"
        if measured and sum(measured) > 60 * slot["hands_on"]:
            late.append(", ".join(nbs))
            compute += " (longer than its slot)"
        rows.append(
            [
                _clock(start),
                slot["what"],
                ", ".join(nbs) or "-",
                f"{slot['talk']} min" if slot["talk"] else "",
                f"{slot['hands_on']} min" if slot["hands_on"] else "",
                compute if nbs else "",
            ]
        )
        start += slot["talk"] + slot["hands_on"]
    rows.append([_clock(start), "end", "", "", "", ""])
    head = ["start", "what", "notebook", "talk", "hands-on", f"compute on `{preset}`, measured"]
    note = (
        f"\n\n*Compute* is what the notebooks of a slot took on `{preset}` ([measured](#what-each-notebook-costs)); "
        "the talk and hands-on minutes are the plan."
    )
    if late:
        note += (
            f" Notebook {' and '.join(late)} computes for longer than its hands-on slot on the machine measured: start "
            "it before you talk (the first slot says when), or run it before class and share the run folder."
        )
    take = [
        [
            t["notebook"],
            t["what"],
            format_minutes(got[(t["notebook"], preset)]["seconds"]) if (t["notebook"], preset) in got else "-",
        ]
        for t in plan["take_home"]
    ]
    return (
        f"{NOTE}\n\n"
        + md_table(head, rows, "llllll")
        + note
        + "\n\nTake-home, after the core path (every prerequisite is on it):\n\n"
        + md_table(["notebook", "what", f"compute on `{preset}`, measured"], take, "llr")
        + "\n"
    )


def preset_time_line(preset: str) -> str:
    """One line for a preset's YAML: what its notebooks (or notebook 08, for a mixed preset) took, measured."""
    got = _notebook_times()
    if preset in ("small-mixed", "mixed"):
        main = {"small-mixed": "small", "mixed": "cpu"}[preset]
        t = got.get(("08", main))
        return f"notebook 08 (this preset) {lesson.timing_words(t)}" if t else "not measured yet"
    records = [t for (nb, p), t in got.items() if p == preset]
    if not records:
        return "not measured yet"
    longest = max(records, key=lambda t: t["seconds"])
    return (
        f"its {len(records)} notebooks in the guide's order {format_minutes(sum(t['seconds'] for t in records))} in all, "
        f"the longest {longest['notebook']} ({format_minutes(longest['seconds'])}); {_measured_on(records)}"
    )


def _exercises_page() -> str:
    """Each exercise, what its solution does, and what the optional run it invites costs (measured, or the references' own times)."""
    data = json.loads((ROOT / "docs" / "_data" / "exercises.json").read_text())["exercises"]
    got = _notebook_times()

    def like(nb: str) -> str:
        times = [f"{format_minutes(got[(nb, p)]['seconds'])} on `{p}`" for p in ("small", "cpu") if (nb, p) in got]
        return ", ".join(times) or "not measured yet"

    def further(key: str) -> str:
        if key == "none":
            return "-"
        if key == "quickstart":
            return f"one new run, as long as notebook 01 ({like('01')})"
        if key == "mixed":
            return f"one new mixed comparison, as long as notebook 08 ({like('08')})"
        small, cpu = (reference_time(p, "seeds").split(" on ")[0] for p in ("small", "cpu"))
        return f"a comparison over seeds: {small} on `small`, {cpu} on `cpu` (the reference's own)"

    rows = [[f"{e['notebook']}.{e['n']}", e["task"], e["solution"], further(e["further"])] for e in data]
    return (
        f"{NOTE}\n\n"
        + md_table(["exercise", "question", "the solution cell", "to run it yourself"], rows, "llll")
        + "\n\nEvery solution cell reads what its notebook already has: its time is part of the notebook's. The "
        "notebooks' times are [measured](#what-each-notebook-costs); the references' own, with their machines, are in "
        "[reproducing](reproducing.md).\n"
    )


PAGES: dict[str, Callable[[], str]] = {
    "notebook_times.md": _notebook_times_page,
    "agenda.md": _agenda_page,
    "exercises.md": _exercises_page,
    "reproduce.md": _reproduce_page,
    "cpu_quickstart.md": lambda: _quickstart_page("cpu"),
    "cpu_seeds.md": lambda: _seeds_page("cpu"),
    "small_quickstart.md": lambda: _quickstart_page("small"),
    "small_seeds.md": lambda: _seeds_page("small"),
    "freeform.md": _freeform_page,
    "bytes.md": _bytes_page,
    "costs.md": _costs_page,
    "presets.md": _presets_page,
    "family_inference.md": _family_inference_page,
    "leaderboard.md": _leaderboard_page,
    "study_expert.md": lambda: _study_page("expert"),
    "study_expert_budget.md": lambda: _study_page("expert-budget"),
    "study_cpu.md": lambda: _study_page("cpu"),
    "study_vote.md": lambda: _study_page("vote"),
    "study_budget.md": lambda: _study_page("budget"),
    "study_expert_calibrated.md": lambda: _study_page("expert-calibrated"),
    "study_freeform.md": lambda: _study_page("freeform"),
    "study_budget_pool.md": lambda: _study_page("budget-pool"),
    "study_rounds.md": lambda: _study_page("rounds"),
    "study_freeform_budget.md": lambda: _study_page("freeform-budget"),
    "study_freeform_vote.md": lambda: _study_page("freeform-vote"),
    "study_clients.md": lambda: _study_page("clients"),
    "study_mixed.md": lambda: _study_page("mixed"),
    "study_answer.md": lambda: f"{NOTE}\n\n{answer_markdown()}\n",
    "study_commands.md": _study_commands_page,
    "findings.md": lambda: f"{NOTE}\n\n{findings_markdown(_findings())}\n",
    "timings.md": _timings_page,
}


def render_pages() -> dict[Path, str]:
    """Every generated page of ``docs/_generated/``, by path relative to the repository root."""
    return {GENERATED / name: make() for name, make in PAGES.items()}


# -- rendered blocks in the README, the docs' pages and the presets: <!-- rendered: NAME --> ... <!-- /rendered -->


def _run_time() -> str:
    """What ``make run`` costs: measured here by tools/measure_times.py when it was, else the cpu reference's own wall time."""
    return timing("run-cpu") if timing_record("run-cpu") else reference_time("cpu", "quickstart")


def _notebook_time(nb: str, preset: str) -> str:
    t = _notebook_times().get((nb, preset))
    return lesson.timing_words(t) if t else "not measured yet"


def _rounds_budget() -> str:
    """The rounds part's public budget, and what the Dirichlet budget axis's verdict says of it."""
    b = _loaded("rounds").plan.budgets[0]
    v = _answer("budget").verdict
    if not v.reached:
        return f"{b} public prompts (on the budget axis no rule met FedAvg-LoRA)"
    rule = _rule_words(v.rule or "")
    if v.budget == b:
        return f"{b} public prompts, where {rule} first met FedAvg-LoRA"
    return f"{b} public prompts (on the budget axis {rule} first met FedAvg-LoRA at {v.budget})"


def _round_costs() -> str:
    """What one round of each method cost in the cpu reference's first seed, by phase (its metrics rows)."""
    ref = workshop.reference_for("cpu")
    seed = ref.root / "seeds" / f"seed_{ref.seeds[0]}"

    def rows(method: str) -> dict[str, dict[str, Any]]:
        return {r["stage"]: r for r in read_jsonl(seed / method / "metrics.jsonl")}

    cons, fed, loc = rows("consensus"), rows("fedavg"), rows("local")
    r1 = cons["round_1"]
    shared = sum(cons["base"]["seconds"].values()) + sum(cons["local"]["seconds"].values())
    return (
        f"a consensus round {format_minutes(sum(r1['seconds'].values()))} (answering {r1['n_prompts']} public prompts "
        f"{format_minutes(r1['seconds']['generate'])}, training {format_minutes(r1['seconds']['train'])}, scoring "
        f"{format_minutes(r1['seconds']['eval'])}), a FedAvg-LoRA round {format_minutes(sum(fed['round_1']['seconds'].values()))}, "
        f"a local round {format_minutes(sum(loc['round_1']['seconds'].values()))}, and a group's shared base and "
        f"local stages {format_minutes(shared)} (round 1 of seed {ref.seeds[0]}; {ref.made})"
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "findings": lambda: findings_markdown(_findings(), prefix="docs/"),
    "answer": lambda: answer_markdown(prefix="docs/"),
    "presets": lambda: presets_markdown({n: load_config(n) for n in ("small", "cpu", "freeform", "mixed", "gpu")}),
    "time-run": _run_time,
    "time-nb01": lambda: _notebook_time("01", "cpu"),
    "time-test": lambda: timing("make-test"),
    "time-small": lambda: preset_time_line("small"),
    "time-cpu": lambda: preset_time_line("cpu"),
    "time-mixed": lambda: preset_time_line("mixed"),
    "time-small-mixed": lambda: preset_time_line("small-mixed"),
    "time-notebooks-machine": lambda: _measured_on(list(_notebook_times().values())),
    "round-costs": _round_costs,
    "rounds-budget": _rounds_budget,
}
README_BLOCKS = BLOCKS  # the README's blocks are among them
_BLOCK = re.compile(r"(<!-- rendered: ([\w-]+) -->)(.*?)(<!-- /rendered -->)", re.S)


def render_blocks(text: str) -> str:
    """``text`` with every rendered block filled in again (inline blocks stay inline)."""

    def fill(m: re.Match[str]) -> str:
        value = BLOCKS[m.group(2)]()
        inline = "\n" not in m.group(3)
        return m.group(1) + (value if inline else f"\n{value}\n") + m.group(4)

    return _BLOCK.sub(fill, text)


render_readme = render_blocks


def files_with_blocks() -> list[Path]:
    """The user-facing files that hold rendered blocks, relative to the repository: the README, docs pages, presets."""
    candidates = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "configs").glob("*.yaml"))]
    return [p.relative_to(ROOT) for p in candidates if not p.is_symlink() and _BLOCK.search(p.read_text())]
