"""A sweep folder as text: its tables, the report ``sweep --summarize`` prints, and what it showed.

The numbers come from :mod:`fedcofit_lite.analysis.frontier`; this module only lays them out
(fixed-width tables, sentences) for the command line, ``sweep.txt`` and notebook 12.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..runlog import format_table
from . import stats
from .compare import METRIC_LABELS, energy_note, energy_total
from .frontier import (
    DEFAULT_LINKS,
    Answer,
    Link,
    SweepResults,
    SweepScores,
    architecture_rows,
    budget_rows,
    difference_rows,
    label_rows,
    order,
    round_rows,
    sweep_scores,
    time_to_accuracy,
    transfer_rows,
    verdict,
)


def _budget(b: int | None) -> str:
    return "-" if b is None else str(b)


def _fmt_interval(ci: stats.Interval | None, fmt: str = "{:.3f}") -> str | None:
    return None if ci is None or not np.isfinite(ci.mean) else ci.format(fmt)


def budget_table(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`budget_rows` as text."""
    shown = [
        {**r, "budget": _budget(r["budget"]), "score": r["score"].format(), "gap": _fmt_interval(r.get("gap"), "{:.2f}"),
         "precision": None if r.get("precision") is None or np.isnan(r["precision"]) else r["precision"]}
        for r in rows
    ]  # fmt: skip
    saved = any(r["bytes_whole"] > r["bytes"] for r in rows)  # federation.send_changed: what whole messages cost
    columns = [
        ("method", "method", "{}"), ("budget", "budget", "{}"), ("score [95%]", "score", "{}"),
        ("gap closed", "gap", "{}"), ("bytes", "bytes", "{:,.0f}"),
        *([("if whole msgs", "bytes_whole", "{:,.0f}")] if saved else []),
        ("kept", "kept", "{:.1f}"), ("precision", "precision", "{:.2f}"), ("energy J", "energy_j", "{:,.0f}"),
    ]  # fmt: skip
    return format_table(shown, columns)


def round_table(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`round_rows` as text: one column per reported stage."""
    stages = list(dict.fromkeys(s for r in rows for s in r["scores"]))
    shown = [
        {"method": r["method"], "budget": _budget(r["budget"]), **{s: c.format() for s, c in r["scores"].items()}}
        for r in rows
    ]
    columns = [("method", "method", "{}"), ("budget", "budget", "{}")] + [(s, s, "{}") for s in stages]
    return format_table(shown, columns)


def tta_table(rows: Sequence[dict[str, Any]], links: Sequence[Link]) -> str:
    """:func:`time_to_accuracy` rows as text."""
    shown = []
    for r in rows:
        # an upper end past the last round: some draws never reach the target
        hi = r["rounds_hi"] if r["rounds_hi"] is not None else "never"
        span = "" if r["rounds_lo"] is None else f" [{r['rounds_lo']}, {hi}]"
        rounds = f"{'not reached' if r['rounds'] is None else r['rounds']}{span}"
        row = {"method": r["method"], "budget": _budget(r["budget"]), "rounds": rounds, "share": r["share_reached"]}
        shown.append({**row, "bytes": r["bytes"], **{link.name: (r["seconds"] or {}).get(link.name) for link in links}})
    columns = [("method", "method", "{}"), ("budget", "budget", "{}"), ("round [95%]", "rounds", "{}"),
               ("draws reaching", "share", "{:.0%}"), ("bytes", "bytes", "{:,.0f}")]  # fmt: skip
    return format_table(shown, columns + [(f"s, {link.name}", link.name, "{:,.0f}") for link in links])


def labels_table(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`label_rows` as text."""
    columns = [
        ("method", "method", "{}"), ("budget", "budget", "{}"), ("round", "round", "{}"), ("kept", "kept", "{:.1f}"),
        ("of", "n_prompts", "{:.0f}"), ("precision", "precision", "{:.2f}"),
        ("new correct/client", "new_correct_per_client", "{:.2f}"), ("harmful/client", "harmful_per_client", "{:.2f}"),
    ]  # fmt: skip
    return format_table(rows, columns)


def difference_table(rows: Sequence[dict[str, Any]]) -> str:
    """:func:`difference_rows` as text: each entry minus each reference, and P(a run of it beats one of the reference)."""
    refs = [k.removeprefix("minus ") for k in (rows[0] if rows else {}) if k.startswith("minus ")]
    out = []
    for r in rows:
        row = {"method": r["method"], "budget": _budget(r["budget"])}
        for ref in refs:
            beats = r[f"beats {ref}"]
            row[ref] = r[f"minus {ref}"].format("{:+.3f}") + (f", P {beats.mean:.2f}" if beats else "")
        out.append(row)
    columns = [("method", "method", "{}"), ("budget", "budget", "{}")]
    columns += [(f"minus {ref}, P(a run beats it)", ref, "{}") for ref in refs]
    return format_table(out, columns)


def transfer_table(rows: Sequence[Any]) -> str:
    """:func:`transfer_rows` as text: each entry's score on its clients' unknown families, its own, and the gain."""
    out = [
        {"method": r.entry, "budget": _budget(r.budget), "unknown": r.unknown.format(), "known": r.known.format(),
         "gain": r.gain_over_local.format("{:+.3f}") if r.gain_over_local else "-"}
        for r in rows
    ]  # fmt: skip
    columns = [
        ("method", "method", "{}"), ("budget", "budget", "{}"), ("families it never held", "unknown", "{}"),
        ("its own families", "known", "{}"), ("unknown: gain over local", "gain", "{}"),
    ]  # fmt: skip
    return format_table(out, columns)


def architecture_table(rows: Sequence[Any]) -> str:
    """:func:`architecture_rows` as text: each entry's score on the clients of each model, and its gain over local."""
    out = [
        {"method": r.entry, "budget": _budget(r.budget), "model": f"{r.model} ({r.clients} client{'s' * (r.clients > 1)})",
         "score": r.score.format(), "gain": r.gain_over_local.format("{:+.3f}") if r.gain_over_local else "-"}
        for r in rows
    ]  # fmt: skip
    columns = [
        ("method", "method", "{}"), ("budget", "budget", "{}"), ("clients of", "model", "{}"),
        ("score", "score", "{}"), ("minus local, same clients", "gain", "{}"),
    ]  # fmt: skip
    return format_table(out, columns)


REFERENCE_NAMES = {"fedavg": "FedAvg-LoRA's clients", "fedavg (global)": "its global model", "local": "local training"}


def answer_cells(a: Answer) -> dict[str, Any]:
    """One :class:`Answer` as the cells of a table row (:func:`answer_table` and the docs' table share them):
    where the rule first met its references, ``(the smallest run)`` where the sweep's first budget already did."""
    v = a.verdict
    met = f"not up to {a.budgets[-1]}" if a.budgets else "no budget"
    if v.reached:
        met = f"{v.budget}" + (" (the smallest run)" if v.budget == a.budgets[0] else "")
        met += f", round {v.round}" if len(a.rounds) > 1 else ""
    return {
        "seeds": len(a.seeds),
        "budgets": ", ".join(map(str, a.budgets)),
        "against": " and ".join(REFERENCE_NAMES.get(r, r) for r in v.reference),
        "met": met,
        "rule": (v.rule.partition("@")[2] or "medoid") if v.reached else None,
        "bytes": a.fewer_bytes,
    }


def answer_table(answers: Mapping[str, Answer]) -> str:
    """:func:`answer` of several sweeps (setting -> answer) as text: where the best rule first meets its references."""
    rows = [
        {
            "setting": setting,
            **answer_cells(a),
            "minus": "; ".join(d.format("{:+.3f}") for d in a.minus.values()) or None,
        }
        for setting, a in answers.items()
    ]
    columns = [
        ("setting", "setting", "{}"), ("seeds", "seeds", "{}"), ("budgets", "budgets", "{}"),
        ("held against", "against", "{}"), ("first met at", "met", "{}"), ("rule", "rule", "{}"),
        ("minus each there", "minus", "{}"), ("x fewer bytes", "bytes", "{:,.0f}"),
    ]  # fmt: skip
    return format_table(rows, columns)


def sweep_report(
    res: SweepResults,
    links: Sequence[Link] = DEFAULT_LINKS,
    fraction: float = 0.5,
    target: float | None = None,
    n_boot: int = 1000,
) -> str:
    """Every table of a sweep folder, per client count, and the verdict; what ``sweep --summarize`` prints."""
    p = res.plan
    lines = [
        f"sweep {res.root}: preset {res.preset}, clients {p.clients} ({p.client_data.replace('_', '-')} data), "
        f"seeds {p.seeds}, budgets {p.budgets}, rounds {res.last_round} (reported {p.rounds})",
        f"score: test {METRIC_LABELS.get(res.metric, res.metric)}, mean over seeds with a 95% paired bootstrap interval "
        f"over seeds and test items ({n_boot} draws); bytes, seconds and energy: means over seeds, from the local stage on",
    ]
    for n in p.clients:
        if not res.seeds[n]:
            lines += ["", f"== {n} clients: no seed has finished every cell yet =="]
            continue
        sc = sweep_scores(res, n, n_boot)
        lines += ["", f"== {n} clients, seeds {sc.seeds}, {sc.n_items} test items per seed =="]
        for r in p.rounds:
            table = budget_table(budget_rows(res, sc, f"round_{r}"))
            lines += ["", f"-- score against public budget, after round {r} --", table]
        note = energy_notes(res, n)
        lines += [note] if note else []
        last = f"round_{res.last_round}"
        lines += ["", f"-- paired differences after {last}, over seeds and items --"]
        lines += [difference_table(difference_rows(res, sc, last, n_boot=n_boot))]
        lines += ["", "-- score after each reported round --", round_table(round_rows(res, sc))]
        try:
            point, rows = time_to_accuracy(res, sc, links, fraction, target)
            gap = f"local + {fraction:g} x (centralized - local) = {point:.3f}"
            what = f"{target:.3f} (given)" if target is not None else gap
            head = f"-- time to accuracy: first round reaching {what}; seconds = compute + bytes over the link --"
            lines += ["", head, tta_table(rows, links)]
        except ValueError as err:
            lines += ["", f"-- time to accuracy: {err} --"]
        if moved := transfer_rows(res, n, n_boot=n_boot):
            head = "-- what each client learned of the task families it held no record of (and kept of its own) --"
            lines += ["", head, transfer_table(moved)]
        if by_model := architecture_rows(res, n, n_boot=n_boot):
            head = "-- by architecture: each model's clients, scored on their own answers --"
            lines += ["", head, architecture_table(by_model)]
        lines += ["", "-- pseudo-labels: per round, kept, precision, new-correct and harmful labels per client --"]
        lines += [labels_table(label_rows(res, n))]
        lines += ["", "-- verdict --", verdict(res, sc).text]
    return "\n".join(lines)


def energy_notes(res: SweepResults, clients: int) -> str:
    """Where the energy column of a client count comes from."""
    return energy_note([energy_total(rows) for c, rows in res.metrics.items() if c.clients == clients])


def findings(res: SweepResults, clients: int | None = None, n_boot: int = 1000) -> list[str]:
    """Sentences that say what the sweep showed, computed from it (notebook 12's "What this showed")."""
    clients = clients or res.plan.clients[0]
    sc = sweep_scores(res, clients, n_boot)
    last = f"round_{res.last_round}"
    rows = {(r["method"], r["budget"]): r for r in budget_rows(res, sc, last)}
    out = [
        f"{len(sc.seeds)} seed(s) x {sc.n_items} test items, {clients} clients, budgets {res.plan.budgets}, {res.last_round} rounds."
    ]
    out += _budget_findings(res, sc, rows, last)
    for ref in ("local", "fedavg", "fedavg (global)", "centralized"):
        if row := rows.get((ref, None)):
            moved = " (its data moved to one place, outside the count)" if ref == "centralized" else ""
            out.append(f"{ref}: {row['score'].format()} at {row['bytes']:,.0f} bytes{moved}.")
    sent = [(m, b, r) for (m, b), r in rows.items() if b is not None and r["bytes"]]
    fedavg = rows.get(("fedavg", None))
    if sent and fedavg and fedavg["bytes"]:
        m, b, most = max(sent, key=lambda x: x[2]["bytes"])
        out.append(
            f"FedAvg-LoRA sent {fedavg['bytes'] / most['bytes']:,.0f} times the bytes of the largest consensus budget "
            f"({m}, {b} prompts)."
        )
        if most["bytes_whole"] > most["bytes"]:
            share = 1 - most["bytes"] / most["bytes_whole"]
            out.append(f"Sending only changed answers saved {share:.0%} of that budget's bytes, for the same labels.")
    with contextlib.suppress(ValueError):  # no local or centralized: no target
        target, tta = time_to_accuracy(res, sc)
        got = [(r["method"], r["budget"], r["rounds"]) for r in tta if r["rounds"] is not None]
        got = [f"{m}{f' at {b} prompts' if b is not None else ''} (round {k})" for m, b, k in got]
        out.append(
            f"Local + half the gap to centralized ({target:.3f}) was reached by {', '.join(got) or 'no method'}."
        )
    out.append(verdict(res, sc).text)
    return out


def _budget_findings(res: SweepResults, sc: SweepScores, rows: Mapping, stage: str) -> list[str]:
    """Per consensus rule: its score at the smallest and the largest budget, and their paired difference."""
    out = []
    for rule in sorted({m for m, b in rows if b is not None}, key=order):
        budgets = [b for b in sorted(res.plan.budgets) if (rule, b) in rows]
        if len(budgets) < 2:
            continue
        lo, hi = (rule, budgets[0], stage), (rule, budgets[-1], stage)
        diff = sc.difference(hi, lo)
        tell = "distinguishable from zero" if diff.excludes(0.0) else "not distinguishable from zero"
        out.append(
            f"{rule}: {sc.interval(lo).format()} at {budgets[0]} public prompts, {sc.interval(hi).format()} at "
            f"{budgets[-1]}: a change of {diff.format('{:+.3f}')}, {tell}."
        )
    return out


def describe_sweep(res: SweepResults) -> str:
    """Whose sweep a folder is: its ``manifest.json`` (a shipped one: command, preset, machine, date), else its commands."""
    manifest = res.root / "manifest.json"
    if manifest.exists():
        m = json.loads(manifest.read_text())
        wall = f", {m['wall_s'] / 60:.1f} min" if m.get("wall_s") else ""
        note = f" {m['note']}" if m.get("note") else ""
        return (
            f"{res.root.name}: {m['what']}. Preset {m['preset']}, made {m['made']}{wall}, fedcofit_lite "
            f"{m['package_version']}, by `{'`, then `'.join(m['commands'])}`.{note}"
        )
    runs = "; ".join(f"`{c['command']}` ({c['started']})" for c in res.commands)
    return f"{res.root}: a sweep of preset {res.preset} made here by {runs or 'an unknown command'}."
