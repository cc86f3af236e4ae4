"""The documentation's result pages and the README's rendered blocks, written from the shipped run folders.

:func:`render_pages` returns every generated file (``docs/_generated/*.md``)
and :func:`render_readme` the README with its rendered blocks filled in; both
read only finished runs (``notebooks/reference/``), the presets and the model
configs, so they cost seconds and load no model. ``tools/render_docs.py``
writes them; ``tests/test_docs.py`` renders them again and fails when a
committed page differs.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.io as pio

from ..analysis import accounting, compare, costmodel, render
from ..config import load_config
from . import plots, workshop

ROOT = Path(__file__).resolve().parents[2]
GENERATED = Path("docs") / "_generated"
TIMINGS = Path("docs") / "_data" / "timings.json"
FREEFORM = workshop.REFERENCE_ROOT / "freeform"
PRESETS = ("ci", "small", "cpu", "freeform", "dolly", "mixed", "small-mixed", "gpu", "large")
NOTE = "<!-- Rendered by tools/render_docs.py from the run folders it names; edit the renderer, not this file. -->"


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


def _block(provenance: render.Provenance, body: str) -> str:
    return f"{NOTE}\n\n{body}\n\n{provenance.markdown()}\n"


def _quickstart_page(preset: str) -> str:
    ref = workshop.reference_for(preset)
    run = ref.root / "quickstart"
    d = render.stage_difference(run, "round_2", "local")
    last = "round_2"
    sentence = (
        f"The last round minus the local stage, paired over this run's test items (one seed): "
        f"{d.format('{:+.3f}')} exact match, {render.verdict(d)}"
        f"{' from' if render.verdict(d) == 'not distinguishable' else ''} the local stage."
    )
    body = render.run_stages_markdown(run) + "\n\n" + sentence.replace("round_2", last)
    return _block(render.Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "quickstart"), body)


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
            render.seed_summary_markdown(summary),
            figure_html(figs["seeds_score_by_round"], f"{preset}-seeds-by-round"),
            figure_html(figs["seeds_score_vs_bytes"], f"{preset}-seeds-vs-bytes"),
        ]
    )
    return _block(render.Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "seeds"), body)


def _freeform_page() -> str:
    table = (FREEFORM / "comparison_seeds.txt").read_text()
    replay = json.loads((FREEFORM / "replay.json").read_text())
    manifest = FREEFORM / "provenance.json"
    body = (
        "The table `compare --seeds` wrote (`notebooks/reference/freeform/comparison_seeds.txt`; the run folders "
        "are not shipped, so this block is the package's own text):\n\n```text\n"
        + table.rstrip()
        + "\n```\n\n"
        + render.Provenance.from_manifest(manifest, "seeds").markdown()
        + "\n\nThe rules replayed on the answers of the medoid runs, round 1 and 2 "
        "(`notebooks/reference/freeform/replay.json`):\n\n" + render.replay_markdown(replay)
    )
    return _block(render.Provenance.from_manifest(manifest, "replay"), body)


def _bytes_page() -> str:
    ref = workshop.reference_for("cpu")
    seed = ref.root / "seeds" / f"seed_{ref.seeds[0]}"
    rows = [r for m in ("consensus", "fedavg", "ffa") for r in accounting.measured_vs_analytic(seed / m)]
    body = (
        f"Seed {ref.seeds[0]} of the `cpu` reference comparison, each method's wire bytes against the analytic model "
        "fed the run's own settings (`flt.analysis.accounting.measured_vs_analytic`).\n\n"
        + render.measured_vs_analytic_markdown(rows)
    )
    return _block(render.Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, "seeds"), body)


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
        "`python -m fedcofit_lite cost`.\n\n" + render.cost_markdown(rows) + "\n"
    )


def _presets_page() -> str:
    configs = {name: load_config(name) for name in PRESETS}
    return f"{NOTE}\n\n{render.presets_markdown(configs)}\n"


@functools.cache
def _findings() -> tuple[render.Finding, ...]:
    summary, rows = _seeds("cpu")
    return tuple(render.findings(summary, (FREEFORM / "comparison_seeds.txt").read_text(), rows))


def timings() -> list[dict[str, Any]]:
    """The measured wall times of commands and notebooks (``docs/_data/timings.json``), one record each."""
    return json.loads((ROOT / TIMINGS).read_text())["timings"]


def timing(key: str) -> str:
    """One measured wall time as a reader says it, with the machine and date: ``"22 min on 2 CPU cores, ..., 2026-12-02"``."""
    t = next(t for t in timings() if t["key"] == key)
    return f"{render.format_minutes(t['seconds'])} on {t['machine']}, {t['date']}"


def reference_time(preset: str, part: str) -> str:
    """The wall time of a reference run's command, with its machine: what ``make run`` costs on ``cpu``."""
    p = render.Provenance.from_manifest(workshop.reference_for(preset).root / workshop.REFERENCE_MANIFEST, part)
    return f"{render.format_minutes(p.wall_s)} on {p.machine}, {p.date}"


def _timings_page() -> str:
    rows = [
        [t["what"], f"`{t['command']}`", render.format_minutes(t["seconds"]), t["machine"], t["date"]]
        for t in timings()
        if "notebook" not in t
    ]
    return (
        f"{NOTE}\n\n" + render.md_table(["what", "command", "wall time", "machine", "measured"], rows, "lllll") + "\n"
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
        p = render.Provenance.from_manifest(ref.root / workshop.REFERENCE_MANIFEST, part)
        rows.append(
            [
                f"[{shows}]({where})",
                f"`{p.command}`",
                render.format_minutes(p.wall_s),
                p.machine,
                f"`notebooks/reference/{preset}/{part}/`",
            ]
        )
    for part, shows in (("seeds", "open-ended comparison"), ("replay", "open-ended replay")):
        p = render.Provenance.from_manifest(FREEFORM / "provenance.json", part)
        wall = render.format_minutes(p.wall_s) if p.wall_s else "seconds"
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
    return f"{NOTE}\n\n{render.md_table(head, rows, 'lllll')}\n"


NOTEBOOK_COLUMNS = {
    "small-nbval": "`small`, under nbval (CI)",
    "small-fresh": "`small`, from nothing",
    "cpu-reference": "`cpu`, on the reference",
    "cpu-fresh": "`cpu`, from nothing",
}


def _notebook_times_page() -> str:
    """Each notebook's wall time per preset and condition (``docs/_data/timings.json``), '-' where not measured."""
    got = {(t["notebook"], t["condition"]): t for t in timings() if "notebook" in t}
    notebooks = sorted({nb for nb, _ in got})
    rows = [
        [nb, *[render.format_minutes(got[(nb, c)]["seconds"]) if (nb, c) in got else "-" for c in NOTEBOOK_COLUMNS]]
        for nb in notebooks
    ]
    when = sorted({f"{t['date']} on {t['machine']}" for t in got.values()})
    return (
        f"{NOTE}\n\n"
        + render.md_table(["notebook", *NOTEBOOK_COLUMNS.values()], rows)
        + f"\n\nMeasured {'; '.join(when)}. *From nothing*: no workshop runs on disk, so the notebook trains what "
        "it needs; *on the reference*: it opens the shipped reference run. '-': not measured.\n"
    )


def _exercises_page() -> str:
    """Each exercise, what its solution does, and what the optional run it invites costs (from the reference runs)."""
    data = json.loads((ROOT / "docs" / "_data" / "exercises.json").read_text())["exercises"]

    def further(key: str) -> str:
        if key == "none":
            return "-"
        if key == "mixed":
            return "a `small-mixed` comparison (notebook 08's own run)"
        small = reference_time("small", key)
        cpu = reference_time("cpu", key)
        return f"one `{key}` run: {small.split(' on ')[0]} on `small`, {cpu.split(' on ')[0]} on `cpu`"

    rows = [[f"{e['notebook']}.{e['n']}", e["task"], e["solution"], further(e["further"])] for e in data]
    return (
        f"{NOTE}\n\n"
        + render.md_table(["exercise", "question", "the solution cell (seconds)", "to run it yourself"], rows, "llll")
        + "\n\nRun times of the reference runs: [reproducing](reproducing.md).\n"
    )


PAGES: dict[str, Callable[[], str]] = {
    "notebook_times.md": _notebook_times_page,
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
    "findings.md": lambda: f"{NOTE}\n\n{render.findings_markdown(_findings())}\n",
    "timings.md": _timings_page,
}


def render_pages() -> dict[Path, str]:
    """Every generated page of ``docs/_generated/``, by path relative to the repository root."""
    return {GENERATED / name: make() for name, make in PAGES.items()}


# -- the README's rendered blocks: <!-- rendered: NAME --> ... <!-- /rendered --> ------------------

README_BLOCKS: dict[str, Callable[[], str]] = {
    "findings": lambda: render.findings_markdown(_findings(), prefix="docs/"),
    "presets": lambda: render.presets_markdown(
        {n: load_config(n) for n in ("small", "cpu", "freeform", "mixed", "gpu")}
    ),
    "time-run": lambda: reference_time("cpu", "quickstart"),
    "time-test": lambda: timing("make-test"),
}
_BLOCK = re.compile(r"(<!-- rendered: ([\w-]+) -->)(.*?)(<!-- /rendered -->)", re.S)


def render_readme(text: str) -> str:
    """``text`` with every rendered block filled in again (inline blocks stay inline)."""

    def fill(m: re.Match[str]) -> str:
        value = README_BLOCKS[m.group(2)]()
        inline = "\n" not in m.group(3)
        return m.group(1) + (value if inline else f"\n{value}\n") + m.group(4)

    return _BLOCK.sub(fill, text)
