"""Figures of one consensus round: projections of the answers' embeddings, similarity, threshold sweeps.

Plotly only (no widget, no model library): the ``figures`` command and :mod:`fedcofit_lite.ui.explorer` draw with these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go

from ..analysis.replay import RoundAnswers
from ..protocol.cluster import REGISTRY
from ..protocol.consensus import SemanticConsensus
from .plots import laid_out


def project(X: np.ndarray, method: Literal["pca", "tsne"] = "pca", n_components: int = 2, seed: int = 0) -> np.ndarray:
    """(n, n_components) coordinates of the embeddings: PCA (linear, fast) or t-SNE (local neighbourhoods).

    All rows (nearly) one point, say every client answered ``''``: nothing to project, every coordinate is 0."""
    if method not in ("pca", "tsne"):
        raise ValueError(f"projection {method!r}: choose 'pca' or 'tsne'.")
    if len(X) == 0 or np.ptp(np.asarray(X), axis=0).max() < 1e-6:
        return np.zeros((len(X), n_components))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=seed).fit_transform(X)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))  # t-SNE needs perplexity < n
    tsne = TSNE(n_components=n_components, metric="cosine", init="pca", perplexity=perplexity, random_state=seed)
    return tsne.fit_transform(X)


ColorBy = Literal["client", "prompt", "family", "cluster", "correct"]


def fig_embedding(
    ra: RoundAnswers,
    coords: np.ndarray,
    color_by: ColorBy = "client",
    est: SemanticConsensus | None = None,
    title: str | None = None,
) -> go.Figure:
    """Scatter of every answer in the projected embedding space; hover shows client, prompt and text.

    ``color_by="cluster"`` needs ``est``: in the prompt's dominant cluster or not (labels are per prompt)."""
    if color_by == "cluster" and est is None:
        raise ValueError("color_by='cluster' needs est=fit_consensus(ra, ...).")
    if color_by == "cluster":
        keys = ["dominant cluster" if d else "other cluster" for d in est.in_dominant_]
    elif color_by == "correct":
        keys = ["correct" if c else "wrong" for c in ra.correct]
    else:
        keys = {"client": ra.clients, "prompt": ra.prompt_ids, "family": ra.families}[color_by]
    hover = [f"{c} | {p}<br>{t[:80]}" for c, p, t in zip(ra.clients, ra.prompt_ids, ra.texts)]
    fig = go.Figure()
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        text = [hover[i] for i in idx]
        common = {"name": str(key), "mode": "markers", "text": text, "hovertemplate": "%{text}<extra></extra>"}
        if coords.shape[1] >= 3:
            fig.add_trace(
                go.Scatter3d(x=coords[idx, 0], y=coords[idx, 1], z=coords[idx, 2], marker={"size": 4}, **common)
            )
        else:
            fig.add_trace(go.Scatter(x=coords[idx, 0], y=coords[idx, 1], marker={"size": 8, "opacity": 0.8}, **common))
    if coords.size and np.ptp(coords, axis=0).max() < 1e-6:  # one point: fixed axes instead of ticks like -246.5n
        where = f": all {len(ra.texts)} answers at one point ({len(set(ra.texts))} distinct text(s))"
        title = (title or f"answers of round {ra.round}") + where
        fig.update_layout(xaxis_range=[-1, 1], yaxis_range=[-1, 1])
    title = title or f"answers of round {ra.round}, coloured by {color_by}"
    return laid_out(fig, title, showlegend=len(set(keys)) <= 20, legend={"title": color_by})  # 48 prompts: no legend


def fig_prompt_similarity(ra: RoundAnswers, prompt_id: str, est: SemanticConsensus) -> go.Figure:
    """Cosine similarity between the answers to one prompt, labelled by client, cluster and consensus."""
    rows = ra.rows_of(prompt_id)
    X = ra.X[rows]
    sim = X @ X.T
    cons = int(est.consensus_for(prompt_id).index)
    labels = [f"{ra.clients[i]} [c{est.labels_[i]}]{' *' if i == cons else ''}: {ra.texts[i][:30]}" for i in rows]
    hover = "%{z:.3f}<extra></extra>"
    fig = go.Figure(go.Heatmap(z=sim, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues", hovertemplate=hover))
    return laid_out(fig, f"{prompt_id}: cosine similarity of the answers (* = consensus, [cK] = cluster)", height=420)


def fig_threshold_sweep(rows: Sequence[dict[str, float]], current: float | None = None) -> go.Figure:
    """Pseudo-label accuracy and coverage (share of prompts kept) against the knob's value."""
    name = next(k for k in rows[0] if k in {c.knob for c in REGISTRY.values()})
    x = [r[name] for r in rows]
    lines = [  # (y, name, drawn as)
        ([r["pseudo_label_accuracy"] for r in rows], "pseudo-label accuracy (kept)", "lines+markers"),
        ([r["kept"] / r["n_prompts"] for r in rows], "share of prompts kept", "lines+markers"),
        ([r["consensus_accuracy_all"] for r in rows], "consensus accuracy (all prompts)", "lines"),
    ]
    fig = go.Figure([go.Scatter(x=x, y=y, name=label, mode=mode) for y, label, mode in lines])
    fig.data[2].line.dash = "dot"
    if current is not None:
        fig.add_vline(x=current, line_dash="dash", line_color="grey")
    return laid_out(fig, f"consensus quality against {name}", name, {"title": "share", "range": [0, 1.02]})


def prompt_table(ra: RoundAnswers, prompt_id: str, est: SemanticConsensus) -> list[dict[str, Any]]:
    """One row per answer of a prompt: client, text, cluster, in dominant cluster, consensus, correct."""
    cons, correct = int(est.consensus_for(prompt_id).index), ra.correct
    return [
        {
            "client": ra.clients[i],
            "answer": ra.texts[i],
            "cluster": int(est.labels_[i]),
            "dominant": bool(est.in_dominant_[i]),
            "consensus": bool(i == cons),
            "correct": bool(correct[i]),
        }
        for i in ra.rows_of(prompt_id)
    ]
