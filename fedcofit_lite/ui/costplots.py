"""Plots of the analytic communication model (:mod:`fedcofit_lite.analysis.costmodel`): plotly figures, never shown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

import plotly.graph_objects as go

from ..analysis.costmodel import PROTOCOLS, Architecture, Protocol, format_bytes, ratios, round_bytes
from .plots import method_style

LABELS = {
    "full_fedavg": "full-parameter FedAvg",
    "lora_fedavg": "LoRA FedAvg",
    "consensus": "semantic consensus",
    "full_over_consensus": "full FedAvg / consensus",
    "lora_over_consensus": "LoRA FedAvg / consensus",
}
_FALLBACK_COLORS = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5")  # methods without a colour of their own
# Numeric Protocol fields a ratio sweep may vary.
SWEEPABLE: tuple[str, ...] = tuple(f.name for f in fields(Protocol) if f.type in ("int", "float"))


def _method_color(method: str, direction: str, k: int) -> str:
    """The method's colour in every run figure (federation.methods.METHODS): as is for up, mixed with 55% white for down."""
    base = method_style(method)["color"] or _FALLBACK_COLORS[k % len(_FALLBACK_COLORS)]
    rgb = [int(base[i : i + 2], 16) for i in (1, 3, 5)]  # #rrggbb
    return base if direction == "up" else "#" + "".join(f"{round(c + (255 - c) * 0.55):02x}" for c in rgb)


def _describe(p: Protocol) -> str:
    return (
        f"r={p.rank} on {'+'.join(p.target_modules)}, {p.bytes_per_param:g} B/param; "
        f"{p.n_prompts} prompts x {p.answer_tokens:g} tokens x {p.bytes_per_token:g} B"
    )


def fig_bytes_vs_model_size(archs: Sequence[Architecture], protocol: Protocol) -> go.Figure:
    """Bytes per round against model size (``archs`` in order of parameters), one line per protocol, log-log."""
    archs = sorted(archs, key=lambda a: a.n_parameters())
    x = [a.n_parameters() for a in archs]
    per_arch = [round_bytes(a, protocol) for a in archs]
    fig = go.Figure()
    hover = "%{customdata[0]} (%{customdata[2]} params)<br>%{customdata[1]} per round<extra>"
    for key in PROTOCOLS:
        y = [b[key] for b in per_arch]
        data = [[a.name, format_bytes(v), f"{n / 1e9:.3g}B"] for a, v, n in zip(archs, y, x)]
        h = hover + LABELS[key] + "</extra>"
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=LABELS[key], customdata=data, hovertemplate=h))
    fig.update_xaxes(type="log", title="parameters")
    fig.update_yaxes(type="log", title="bytes per round")
    fig.update_layout(title=f"Bytes per round ({_describe(protocol)})", hovermode="closest")
    return fig


def fig_ratio_sweep(arch: Architecture, protocol: Protocol, param: str, values: Sequence[float]) -> go.Figure:
    """How the FedAvg/consensus byte ratios move as one numeric :class:`Protocol` field (:data:`SWEEPABLE`) varies.

    ``param`` takes ``values``, the other fields as in ``protocol`` (whose own value a dotted line marks)."""
    if param not in SWEEPABLE:
        raise ValueError(f"param={param!r} cannot be swept: use one of {', '.join(SWEEPABLE)}")
    values = list(values)
    if not values:
        raise ValueError("values is empty: give at least one value of the swept field")
    rows = [ratios(arch, replace(protocol, **{param: v})) for v in values]
    fig = go.Figure()
    for key in ("lora_over_consensus", "full_over_consensus"):
        y, hover = [r[key] for r in rows], f"{param}=%{{x}}<br>ratio %{{y:,.1f}}<extra>{LABELS[key]}</extra>"
        fig.add_trace(go.Scatter(x=values, y=y, mode="lines+markers", name=LABELS[key], hovertemplate=hover))
    log_x = min(values) > 0 and max(values) / min(values) >= 10
    fig.update_xaxes(type="log" if log_x else "linear", title=param)
    fig.update_yaxes(type="log", title="bytes ratio (x more than consensus)")
    fig.add_vline(x=getattr(protocol, param), line_dash="dot", line_color="grey")
    fig.update_layout(title=f"{arch.name}: byte ratios vs {param} ({_describe(protocol)})")
    return fig


def fig_measured_vs_analytic(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """Bytes counted on the wire (points) next to the analytic model (dashed lines), per round; log y.

    ``rows``: :func:`fedcofit_lite.analysis.accounting.measured_vs_analytic` of one or several run folders. Each method
    in its colour, lighter going down; the hover shows the wire format's overhead (JSON framing, safetensors header).
    """
    if not rows:
        raise ValueError("rows is empty: pass measured_vs_analytic(run_dir) of a consensus or FedAvg run folder")
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["direction"]), []).append(r)
    fig = go.Figure()
    for k, ((method, direction), rs) in enumerate(groups.items()):
        rs = sorted(rs, key=lambda r: r["round"])
        color = _method_color(method, direction, k)
        name, x = f"{method_style(method)['label']}, {direction}", [r["round"] for r in rs]
        analytic = {"mode": "lines", "line": {"color": color, "dash": "dash"}, "name": f"{name}: analytic"}
        hover = "round %{x}: %{y:,.0f} bytes<extra>" + name + " (analytic)</extra>"
        fig.add_trace(go.Scatter(x=x, y=[r["analytic"] for r in rs], hovertemplate=hover, **analytic))
        measured = {"mode": "markers", "marker": {"color": color, "size": 10}, "name": f"{name}: measured"}
        hover = "round %{x}: %{y:,} bytes (%{customdata[0]} vs analytic)<extra>" + name + "</extra>"
        measured["customdata"] = [[f"{r['relative']:+.2%}"] for r in rs]  # the wire format's overhead
        fig.add_trace(go.Scatter(x=x, y=[r["measured"] for r in rs], hovertemplate=hover, **measured))
    fig.update_xaxes(title="round", dtick=1)
    fig.update_yaxes(type="log", title="bytes per round, all clients")
    fig.update_layout(title="Measured bytes on the wire vs the analytic model", hovermode="closest")
    return fig
