"""Figures of a sweep folder (``python -m fedcofit_lite sweep``): the curves a reader of the budget question wants.

Every function takes rows of :mod:`fedcofit_lite.analysis.frontier` and returns a plotly ``go.Figure`` (never shown);
error bars and bands are the rows' 95% intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from .plots import METRIC_LABEL, _error_bars, laid_out, method_style, trace

Row = Mapping[str, Any]  # a row of analysis.frontier
_LABEL_LINES = (("new_correct_per_client", "solid", "new correct"), ("harmful_per_client", "dash", "harmful"))


def _references(fig: go.Figure, rows: Sequence[Row]) -> None:
    """The methods without a budget as horizontal lines with their interval as a band."""
    for r in rows:
        if r["budget"] is not None:
            continue
        st, ci = method_style(r["method"]), r["score"]
        fig.add_hrect(y0=ci.lo, y1=ci.hi, fillcolor=st["color"], opacity=0.08, line_width=0)
        line, text = {"color": st["color"], "dash": st.get("dash", "dot")}, f"{st['label']} {ci.mean:.3f}"
        fig.add_hline(y=ci.mean, line=line, annotation_text=text, annotation_position="top left")


def _series(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """The rows with a budget, by method, in budget order."""
    out: dict[str, list[Row]] = {}
    for r in sorted((r for r in rows if r["budget"] is not None), key=lambda r: r["budget"]):
        out.setdefault(r["method"], []).append(r)
    return out


def fig_score_vs_budget(rows: Sequence[Row], metric: str = "exact_match") -> go.Figure:
    """Score after a round against public prompts per round, one line per consensus rule; references as bands."""
    fig = go.Figure()
    for method, rs in _series(rows).items():
        ci = [r["score"] for r in rs]
        fig.add_trace(trace([r["budget"] for r in rs], [c.mean for c in ci], method_style(method), ci=ci))
    _references(fig, rows)
    label = METRIC_LABEL.get(metric, metric)
    stage = rows[0]["stage"] if rows else ""
    x = {"title": "public prompts answered per round (log)", "type": "log"}
    return laid_out(fig, f"{label} after {stage} against the public budget (95% intervals)", x, label)


def fig_score_vs_bytes(rows: Sequence[Row], metric: str = "exact_match") -> go.Figure:
    """The frontier: score against bytes over the run; consensus at each budget, FedAvg at its bytes (with
    ``federation.send_changed``, hollow: what whole answer messages would have cost for the same score)."""
    fig = go.Figure()
    for method, rs in _series(rows).items():
        st = method_style(method)
        kw = {"error_y": _error_bars([r["score"] for r in rs]), "line": {"color": st["color"]}}
        fig.add_trace(
            go.Scatter(
                x=[r["bytes"] for r in rs], y=[r["score"].mean for r in rs], mode="lines+markers+text",
                text=[str(r["budget"]) for r in rs], textposition="top center", name=st["label"], **kw,
            )
        )  # fmt: skip
        if any(r["bytes_whole"] > r["bytes"] for r in rs):
            fig.add_trace(
                go.Scatter(
                    x=[r["bytes_whole"] for r in rs], y=[r["score"].mean for r in rs], mode="markers",
                    marker={"color": st["color"], "symbol": "circle-open", "size": 9},
                    name=f"{st['label']}, whole answer messages",
                )
            )  # fmt: skip
    for r in rows:
        if r["budget"] is None and r["bytes"] > 0:
            st = method_style(r["method"])
            fig.add_trace(
                go.Scatter(
                    x=[r["bytes"]], y=[r["score"].mean], error_y=_error_bars([r["score"]]), mode="markers",
                    marker={"color": st["color"], "size": 12, "symbol": "diamond" if st.get("dash") else "square"},
                    name=st["label"],
                )
            )  # fmt: skip
    _references(fig, [r for r in rows if r["bytes"] == 0])
    label = METRIC_LABEL.get(metric, metric)
    x = {"title": "bytes up + down over the run, mean over seeds (log); labels: public prompts", "type": "log"}
    return laid_out(fig, f"{label} against bytes exchanged: the frontier (95% intervals)", x, label)


def fig_score_by_round(rows: Sequence[Row], metric: str = "exact_match") -> go.Figure:
    """Score after the local stage and each reported round, one line per method and budget."""
    fig = go.Figure()
    for r in rows:
        st = method_style(r["method"])
        name = st["label"] + (f", {r['budget']} prompts" if r["budget"] is not None else "")
        ci = list(r["scores"].values())
        fig.add_trace(trace(list(r["scores"]), [c.mean for c in ci], st, dash="solid", ci=ci, name=name))
    label = METRIC_LABEL.get(metric, metric)
    return laid_out(fig, f"{label} by round (95% intervals)", "stage", label)


def _score_lines(rows: Sequence[Row], x: Callable[[Row], Any], hover: str = "") -> go.Figure:
    """One line per method and budget (rows in their order): the score against ``x(row)``, with 95% error bars."""
    fig, lines = go.Figure(), {}
    for r in rows:
        lines.setdefault((r["method"], r["budget"]), []).append(r)
    for (method, budget), rs in lines.items():
        st, ci = method_style(method), [r["score"] for r in rs]
        name = st["label"] + (f", {budget} prompts" if budget is not None else "")
        kw = {"text": [r["stage"] for r in rs], "hovertemplate": hover} if hover else {}
        fig.add_trace(trace([x(r) for r in rs], [c.mean for c in ci], st, dash="solid", ci=ci, name=name, **kw))
    return fig


def fig_score_vs_time(rows: Sequence[Row], link: str, metric: str = "exact_match") -> go.Figure:
    """Score against simulated wall-clock on ``link`` (compute as measured + bytes over the link), stage by stage."""
    fig = _score_lines(rows, lambda r: r["seconds"][link], "%{text}: %{y:.3f} at %{x:,.0f} s<extra></extra>")
    label = METRIC_LABEL.get(metric, metric)
    x = {"title": f"simulated seconds on a {link} link: compute as measured + bytes per client over the link (log)"}
    return laid_out(fig, f"{label} against simulated wall-clock ({link})", {**x, "type": "log"}, label)


def fig_labels(rows: Sequence[Row]) -> go.Figure:
    """New-correct and harmful labels per client per round (means over rounds) against the budget, per rule."""
    fig = go.Figure()
    by: dict[str, dict[int, list[Row]]] = {}
    for r in rows:
        by.setdefault(r["method"], {}).setdefault(r["budget"], []).append(r)
    for method, per_budget in by.items():
        st = method_style(method)
        budgets = sorted(per_budget)
        for key, dash, what in _LABEL_LINES:
            y = [sum(r[key] for r in per_budget[b]) / len(per_budget[b]) for b in budgets]
            fig.add_trace(trace(budgets, y, {**st, "dash": dash}, dash=dash, name=f"{st['label']}: {what}"))
    x = {"title": "public prompts answered per round (log)", "type": "log"}
    return laid_out(fig, "what the labels taught: per client per round, mean over rounds and seeds", x, "labels")


def fig_score_vs_clients(rows: Sequence[Row], metric: str = "exact_match") -> go.Figure:
    """Score against the number of clients, one line per method (and budget)."""
    fig = _score_lines(sorted(rows, key=lambda r: r["clients"]), lambda r: r["clients"])
    label = METRIC_LABEL.get(metric, metric)
    return laid_out(fig, f"{label} against the number of clients (95% intervals)", "clients", label)


def sweep_figures(res: Any, links: Sequence[Any] | None = None, n_boot: int = 1000) -> dict[str, go.Figure]:
    """Every figure of a sweep folder (``frontier.load_sweep``), by file stem; one set per client count."""
    from ..analysis import frontier

    links = links or frontier.DEFAULT_LINKS
    figures: dict[str, go.Figure] = {}
    per_clients = []
    for n in res.plan.clients:
        if not res.seeds[n]:
            continue
        sc = frontier.sweep_scores(res, n, n_boot)
        tag = f"_{n}_clients" if len(res.plan.clients) > 1 else ""
        rows = frontier.budget_rows(res, sc, f"round_{res.last_round}")
        per_clients += rows
        figures[f"score_vs_budget{tag}"] = fig_score_vs_budget(rows, res.metric)
        figures[f"score_vs_bytes{tag}"] = fig_score_vs_bytes(rows, res.metric)
        figures[f"score_by_round{tag}"] = fig_score_by_round(frontier.round_rows(res, sc), res.metric)
        clock = frontier.wall_clock_rows(res, sc, links)
        for i, link in enumerate(links):
            figures[f"score_vs_time_{i}{tag}"] = fig_score_vs_time(clock, link.name, res.metric)
        labels = frontier.label_rows(res, n)
        if labels:
            figures[f"labels{tag}"] = fig_labels(labels)
    if len({r["clients"] for r in per_clients}) > 1:
        figures["score_vs_clients"] = fig_score_vs_clients(per_clients, res.metric)
    return figures
