"""Figures of what runs measured (``metrics.jsonl`` rows, grouped by method): plotly figures, returned, never shown."""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from ..federation.methods import METHODS
from ..protocol.consensus import RULES

log = logging.getLogger(__name__)
Metrics = Mapping[str, Sequence[Mapping[str, Any]]]  # method -> metrics rows

METRIC_LABEL = {
    "exact_match": "test exact match",
    "correct": "test correct (content-checked)",
    "rouge_l": "test ROUGE-L",
    "embedding_sim": "test embedding similarity",
}


def method_style(method: str) -> dict[str, Any]:
    """Colour and label of a method (from ``federation.methods.METHODS``); ``"fedavg (global)"`` is the global
    model of FedAvg, in its colour, dashed; ``consensus@vote`` is consensus under another rule, in that rule's colour."""
    name, _, rest = method.partition(" ")
    spec = METHODS.get(name)
    style = {"color": spec.color, "label": spec.label} if spec else {"color": None, "label": name}
    rule = RULES.get(name.partition("@")[2])
    if rule is not None:
        style = {"color": rule.color, "label": f"consensus ({rule.label})"}
    if rest:
        style["label"] = f"{style['label']} {rest}"
        style["dash"] = "dash"
    return style


def laid_out(
    fig: go.Figure, title: str, x: str | dict | None = None, y: str | dict | None = None, **layout: Any
) -> go.Figure:
    """``fig`` with its title, axes (a title, or a dict of axis settings) and the white template of every figure."""
    axes = {k: {"title": v} if isinstance(v, str) else v for k, v in (("xaxis", x), ("yaxis", y)) if v is not None}
    fig.update_layout(title=title, template="plotly_white", **axes, **layout)
    return fig


def trace(
    x: Sequence[Any],
    y: Sequence[Any],
    style: Mapping[str, Any],
    hover: str | None = None,
    dash: str | None = None,
    ci: Sequence[Any] | None = None,
    **kw: Any,
) -> go.Scatter:
    """A lines+markers trace in a method's style (:func:`method_style`): its label, its colour (and its dash, else
    ``dash`` when given); ``hover`` the hover template (the label added), ``ci`` 95% intervals as error bars."""
    kw = {"mode": "lines+markers", "name": style["label"], **kw}
    if hover is not None:
        kw["hovertemplate"] = hover + "<extra>" + style["label"] + "</extra>"
    if ci is not None:
        kw["error_y"] = _error_bars(ci)
    line = {"color": style["color"], **({"dash": style.get("dash", dash)} if dash else {})}
    return go.Scatter(x=x, y=y, line=line, **kw)


def _error_bars(intervals: Sequence[Any]) -> dict[str, Any]:
    """Asymmetric error bars of 95% intervals (``lo``, ``mean``, ``hi``)."""
    up, down = [c.hi - c.mean for c in intervals], [c.mean - c.lo for c in intervals]
    return {"type": "data", "symmetric": False, "array": up, "arrayminus": down}


def _trained(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if r["round"] >= 0]  # drop the untrained base


def fig_score_by_round(metrics: Metrics, metric: str = "exact_match") -> go.Figure:
    """Test score after each round (0 = local stage), one line per method; the base as a dotted line."""
    fig = go.Figure()
    base = None
    for method, rows in metrics.items():
        base = next((r["test"]["all"][metric] for r in rows if r["round"] < 0), base)
        trained = _trained(rows)
        y = [r["test"]["all"][metric] for r in trained]
        fig.add_trace(trace([r["round"] for r in trained], y, method_style(method), "%{y:.3f} after round %{x}"))
    if base is not None:
        fig.add_hline(y=base, line_dash="dot", annotation_text="base model", annotation_position="bottom right")
    label = METRIC_LABEL.get(metric, metric)
    return laid_out(fig, f"{label} per round", {"title": "round (0 = local fine-tuning only)", "dtick": 1}, label)


def cumulative_bytes(rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Bytes up + down summed over rounds, after each trained stage."""
    return list(itertools.accumulate(r.get("bytes_up", 0) + r.get("bytes_down", 0) for r in _trained(rows)))


def fig_cumulative_bytes(metrics: Metrics) -> go.Figure:
    """Cumulative bytes on the wire per method (log scale); methods that send nothing are listed in the title."""
    fig = go.Figure()
    silent = []
    for method, rows in metrics.items():
        cum = cumulative_bytes(rows)
        if not cum or cum[-1] == 0:
            silent.append(method_style(method)["label"])
            continue
        points = [(r["round"], b) for r, b in zip(_trained(rows), cum) if b > 0]  # log axis: zeros cannot be drawn
        x, y = [p[0] for p in points], [p[1] for p in points]
        fig.add_trace(trace(x, y, method_style(method), "%{y:,} bytes after round %{x}"))
    note = f" ({', '.join(silent)}: 0 bytes)" if silent else ""
    title = "cumulative bytes exchanged, up + down" + note
    return laid_out(fig, title, {"title": "round", "dtick": 1}, {"title": "bytes (log)", "type": "log"})


def fig_score_vs_bytes(metrics: Metrics, metric: str = "exact_match") -> go.Figure:
    """Score against cumulative bytes (log x): the trade-off. Silent methods are horizontal reference lines."""
    fig = go.Figure()
    for method, rows in metrics.items():
        cum, trained, st = cumulative_bytes(rows), _trained(rows), method_style(method)
        if not cum or cum[-1] == 0:
            y, text = trained[-1]["test"]["all"][metric], f"{st['label']} (0 bytes)"
            fig.add_hline(
                y=y, line_dash="dash", line_color=st["color"], annotation_text=text, annotation_position="top left"
            )
            continue
        pts = [(b, r) for b, r in zip(cum, trained) if b > 0]
        x, y, text = [b for b, _ in pts], [r["test"]["all"][metric] for _, r in pts], [r["stage"] for _, r in pts]
        fig.add_trace(trace(x, y, st, "%{text}: %{y:.3f} at %{x:,} bytes", text=text))
    label = METRIC_LABEL.get(metric, metric)
    x = {"title": "cumulative bytes, up + down (log)", "type": "log"}
    return laid_out(fig, f"{label} against bytes exchanged", x, label)


def fig_wall_time(metrics: Metrics) -> go.Figure:
    """Wall seconds per method, stacked by phase (train, generate, server, exchange, eval)."""
    phases: dict[str, dict[str, float]] = {}
    for method, rows in metrics.items():
        for r in _trained(rows):
            for phase, s in r.get("seconds", {}).items():
                phases.setdefault(phase, {}).setdefault(method, 0.0)
                phases[phase][method] += s
    methods = list(metrics)
    labels = [method_style(m)["label"] for m in methods]
    bars = [go.Bar(name=phase, x=labels, y=[per.get(m, 0.0) for m in methods]) for phase, per in phases.items()]
    title = "wall time per method (local stage + rounds, evaluation included)"
    return laid_out(go.Figure(bars), title, y="seconds", barmode="stack")


def comparison_figures(metrics: Metrics) -> dict[str, go.Figure]:
    """The figures the compare command writes, by file stem."""
    figures = (fig_score_by_round, fig_cumulative_bytes, fig_score_vs_bytes, fig_wall_time)
    return {f.__name__.removeprefix("fig_"): f(metrics) for f in figures}


def fig_score_by_round_ci(intervals: Mapping[str, Mapping[str, Any]], metric: str = "exact_match") -> go.Figure:
    """Score per stage with 95% error bars (several seeds), one line per method; ``intervals`` from ``compare.stage_intervals``."""
    fig = go.Figure()
    for entry, per_stage in intervals.items():
        ci = list(per_stage.values())
        fig.add_trace(trace(list(per_stage), [c.mean for c in ci], method_style(entry), "%{x}: %{y:.3f}", "solid", ci))
    label = METRIC_LABEL.get(metric, metric)
    return laid_out(fig, f"{label} per stage, mean over seeds with 95% intervals", "stage", label)


def fig_frontier(rows: Sequence[Mapping[str, Any]], metric_label: str = "test exact match") -> go.Figure:
    """Final score against total bytes, one point per method with its 95% interval: the accuracy / traffic frontier;
    methods that send nothing (local, centralized) sit at the left edge, labelled."""
    fig = go.Figure()
    sent = [r["bytes"] for r in rows if r["bytes"] > 0]
    floor = min(sent) / 10 if sent else 1.0
    xs = [r["bytes"] if r["bytes"] > 0 else floor for r in rows]
    for r, x in zip(rows, xs):
        st, ci = method_style(r["method"]), r["em"]
        marker = {"color": st["color"], "size": 11, "symbol": "diamond" if st.get("dash") else "circle"}
        name = st["label"] + ("" if r["bytes"] > 0 else " (no bytes)")
        hover = f"{st['label']}: %{{y:.3f}} [{ci.lo:.3f}, {ci.hi:.3f}] at {r['bytes']:,.0f} bytes<extra></extra>"
        kw = {"mode": "markers", "marker": marker, "name": name, "hovertemplate": hover}
        fig.add_trace(go.Scatter(x=[x], y=[ci.mean], error_y=_error_bars([ci]), **kw))
    span = [math.log10(min(xs)) - 0.3, math.log10(max(xs)) + 0.3]
    x = {"title": "bytes up + down over the run, mean over seeds (log; methods that send nothing at the left)"}
    title = f"{metric_label} against bytes exchanged (mean over seeds, 95% intervals)"
    return laid_out(fig, title, {**x, "type": "log", "range": span}, metric_label)


def seed_figures(summary: Any, rows: Sequence[Mapping[str, Any]] | None = None) -> dict[str, go.Figure]:
    """The figures of a multi-seed comparison (``compare --seeds``), by file stem; ``rows`` from ``compare.seed_table`` if already made."""
    from ..analysis.compare import run_metric, seed_table, stage_intervals

    metric = run_metric(summary.root)
    rows = rows if rows is not None else seed_table(summary, metric=metric)[0]
    by_round = fig_score_by_round_ci(stage_intervals(summary, metric), metric)
    return {"seeds_score_by_round": by_round, "seeds_score_vs_bytes": fig_frontier(rows, METRIC_LABEL[metric])}


def write_figures(figures: Mapping[str, go.Figure], folder: str | Path, png: bool = False) -> list[Path]:
    """Write each figure as HTML (plotly.js once, beside them: works offline); PNG too if asked and possible
    (kaleido and a Chrome/Chromium binary; without either, the PNG is skipped with a warning)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figures.items():
        path = folder / f"{stem}.html"
        # div_id fixed to the file name: the same figure gives the same bytes (plotly would draw a random uuid)
        fig.write_html(path, include_plotlyjs="directory", full_html=True, div_id=stem)
        paths.append(path)
        if png:
            try:
                fig.write_image(folder / f"{stem}.png", width=900, height=500, scale=1)
                paths.append(folder / f"{stem}.png")
            except Exception as err:  # noqa: BLE001 - kaleido raises several types when Chrome is missing
                log.warning("PNG of %s skipped (%s); HTML written", stem, str(err).splitlines()[0])
    return paths


def fig_loss_curve(losses: Sequence[float] | Mapping[str, Sequence[float]], smooth: int = 1) -> go.Figure:
    """Training loss per optimizer step (from 1), one line per adapter.

    ``losses`` are what :meth:`fedcofit_lite.engine.pool.ModelPool.train` returns, or several such lists by name;
    ``smooth`` is the width of a trailing moving average (1: none).
    """
    if smooth < 1:
        raise ValueError(f"smooth={smooth} must be >= 1 (1 draws the raw losses)")
    curves = {"loss": list(losses)} if not isinstance(losses, Mapping) else {k: list(v) for k, v in losses.items()}
    fig = go.Figure()
    for name, ys in curves.items():
        steps = list(range(1, len(ys) + 1))
        fig.add_trace(go.Scatter(x=steps, y=ys, mode="lines+markers", name=name, opacity=0.5 if smooth > 1 else 1.0))
        if smooth > 1:
            avg = [sum(ys[max(0, i - smooth + 1) : i + 1]) / (i + 1 - max(0, i - smooth + 1)) for i in range(len(ys))]
            fig.add_trace(go.Scatter(x=steps, y=avg, mode="lines", name=f"{name} (mean of {smooth})"))
    title = "training loss per step (answer tokens only)"
    return laid_out(fig, title, "optimizer step", "cross-entropy loss", showlegend=len(fig.data) > 1)


ATTACK_DASH = {"loss": "solid", "loss_ref": "dash", "query": "dot", "answers": "solid", "pseudo_labels": "dash"}


def fig_audit_roc(audits: Sequence[Any], sent_only: bool = False) -> go.Figure:
    """ROC curves of the membership attacks (:mod:`fedcofit_lite.analysis.audit`), one line per method and attack, log-log.

    The method's colour, the attack's dash; attacks on what a method never sends (a consensus client's adapter) are
    drawn thin and faint. The diagonal is chance; the low-FPR corner is where an attack is dangerous.
    """
    from ..analysis.audit import roc_curve

    floor = 1e-3
    fig = go.Figure(
        go.Scatter(x=[floor, 1], y=[floor, 1], mode="lines", line={"color": "#999", "dash": "dot"}, name="chance")
    )
    for a in audits:
        style = method_style(a.method)
        for r in a.results:
            if sent_only and not r.sent:
                continue
            fpr, tpr = roc_curve(r.members, r.nonmembers)
            line = {"color": style["color"], "dash": ATTACK_DASH.get(r.attack, "solid"), "width": 2 if r.sent else 1}
            name = f"{style['label']}: {r.attack}{'' if r.sent else ' (not sent)'} (AUC {r.auc.mean:.2f})"
            x, y = [max(f, floor) for f in fpr], [max(t, floor) for t in tpr]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=line, opacity=1.0 if r.sent else 0.45, name=name))
    x, y = {"title": "false-positive rate", "type": "log"}, {"title": "true-positive rate", "type": "log"}
    return laid_out(fig, "Membership inference on what each method sends", x, y, legend={"font": {"size": 10}})


def fig_private_vote(rows: Sequence[Any]) -> go.Figure:
    """Private consensus trade-off (:func:`fedcofit_lite.protocol.private_vote.tradeoff`): labels released and their precision against epsilon."""
    eps, text = [r.epsilon for r in rows], [f"sigma {r.sigma:g}, T {r.threshold:.2f}" for r in rows]
    kw = {"x": eps, "mode": "lines+markers"}
    shares = go.Scatter(y=[r.released / r.n_queries for r in rows], name="share of prompts labelled", text=text, **kw)
    precision = go.Scatter(y=[r.precision for r in rows], name="precision of released labels", **kw)
    fig = go.Figure([shares, precision])
    x, y = {"title": "epsilon (client-level)", "type": "log"}, {"title": "share", "range": [0, 1.05]}
    return laid_out(fig, "Private consensus: client-level epsilon against labels released", x, y)
