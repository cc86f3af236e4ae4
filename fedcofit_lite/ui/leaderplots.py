"""The rule leaderboard drawn: precision against labels kept, one point per rule and setting (plotly)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from ..protocol.consensus import RULES
from .plots import _error_bars, laid_out

SYMBOLS = ("circle", "diamond", "square", "triangle-up", "cross", "x", "star")


def fig_precision_vs_kept(rows: Sequence[Mapping[str, Any]]) -> go.Figure:
    """One point per (rule, setting) of :func:`~fedcofit_lite.analysis.leaderboard.leaderboard`'s rows, with intervals.

    x: labels kept per round (of the setting's public prompts), y: their precision; a marker per setting,
    a colour per rule (its registry colour; a rule entered from outside in black).
    """
    fig = go.Figure()
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    for r in rows:
        spec = RULES.get(r["rule"])
        kept, prec = r["kept"], r["precision"]
        symbol = SYMBOLS[settings.index(r["setting"]) % len(SYMBOLS)]  # one per setting
        fig.add_trace(
            go.Scatter(
                x=[kept.mean],
                y=[prec.mean],
                error_x=_error_bars([kept]),
                error_y=_error_bars([prec]),
                mode="markers",
                marker={"color": spec.color if spec else "#000000", "size": 11, "symbol": symbol},
                name=f"{r['rule']}, {r['setting']}",
                legendgroup=r["setting"],
                hovertemplate=f"{r['rule']} ({r['setting']}): %{{y:.2f}} precision, %{{x:.1f}} kept<extra></extra>",
            )
        )
    title = "pseudo-label precision against labels kept per round, mean over seeds with 95% intervals"
    return laid_out(fig, title, "labels kept per round", "precision of the kept labels")
