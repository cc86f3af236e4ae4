"""Looking inside one round of consensus: embeddings, clusters, and how the threshold changes them.

Server-side analysis of a finished round, from the run folder alone (no
model is loaded): the answers every client sent, their sentence embeddings,
2-D/3-D projections, per-prompt clusters and the pseudo-label accuracy the
clustering would reach for a range of thresholds. The hidden references are
read here only to *score* consensus, as a teacher would; the server never
sees them.

Backs notebooks 04 (embedding visualisation) and 05 (per-prompt clustering).
Figure functions return plotly figures; :func:`cluster_explorer` returns an
ipywidgets box whose controls recompute everything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import ipywidgets as W
import numpy as np
import plotly.graph_objects as go

from .cluster import REGISTRY
from .config import ConsensusConfig, load_config
from .consensus import SemanticConsensus
# The analysis itself (one round's answers, fitting a consensus, its quality, sweeps) lives in replay,
# which imports no widget and no model; it is re-exported here for the notebooks (flt.explorer.fit_consensus).
from .replay import (  # noqa: F401
    RoundAnswers,
    _knob_value,
    consensus_quality,
    fit_consensus,
    format_quality,
    load_round,
    threshold_sweep,
)

# The one knob per algorithm that the explorer's slider moves, with its range (from cluster.REGISTRY).
KNOB: dict[str, tuple[str, float, float, float]] = {name: (c.knob, c.low, c.high, c.step) for name, c in REGISTRY.items()}


# -- projections and figures ---------------------------------------------------


def project(X: np.ndarray, method: Literal["pca", "tsne"] = "pca", n_components: int = 2, seed: int = 0) -> np.ndarray:
    """(n, n_components) coordinates of the embeddings: PCA (linear, fast) or t-SNE (local neighbourhoods).

    When all rows are (nearly) one point, say every client answered ``''``,
    there is nothing to project: every coordinate is 0.
    """
    if method not in ("pca", "tsne"):
        raise ValueError(f"projection {method!r}: choose 'pca' or 'tsne'.")
    if len(X) == 0 or np.ptp(np.asarray(X), axis=0).max() < 1e-6:
        return np.zeros((len(X), n_components))
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=n_components, random_state=seed).fit_transform(X)
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))  # t-SNE needs perplexity < n
    return TSNE(n_components=n_components, metric="cosine", init="pca", perplexity=perplexity, random_state=seed).fit_transform(X)


ColorBy = Literal["client", "prompt", "family", "cluster", "correct"]


def fig_embedding(
    ra: RoundAnswers, coords: np.ndarray, color_by: ColorBy = "client", est: SemanticConsensus | None = None, title: str | None = None
) -> go.Figure:
    """Scatter of every answer in the projected embedding space; hover shows client, prompt and text.

    ``color_by="cluster"`` needs ``est`` (labels are per prompt, so a colour
    is (prompt, cluster); here: in the dominant cluster or not).
    """
    if color_by == "cluster" and est is None:
        raise ValueError("color_by='cluster' needs est=fit_consensus(ra, ...).")
    keys = {
        "client": ra.clients,
        "prompt": ra.prompt_ids,
        "family": ra.families,
        "correct": ["correct" if c else "wrong" for c in ra.correct],
        "cluster": ["dominant cluster" if d else "other cluster" for d in (est.in_dominant_ if est is not None else [])],
    }[color_by]
    hover = [f"{c} | {p}<br>{t[:80]}" for c, p, t in zip(ra.clients, ra.prompt_ids, ra.texts)]
    fig = go.Figure()
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        common = {"name": str(key), "mode": "markers", "text": [hover[i] for i in idx], "hovertemplate": "%{text}<extra></extra>"}
        if coords.shape[1] >= 3:
            fig.add_trace(go.Scatter3d(x=coords[idx, 0], y=coords[idx, 1], z=coords[idx, 2], marker={"size": 4}, **common))
        else:
            fig.add_trace(go.Scatter(x=coords[idx, 0], y=coords[idx, 1], marker={"size": 8, "opacity": 0.8}, **common))
    if coords.size and np.ptp(coords, axis=0).max() < 1e-6:  # one point: fixed axes instead of ticks like -246.5n
        n_distinct = len(set(ra.texts))
        title = (title or f"answers of round {ra.round}") + f": all {len(ra.texts)} answers at one point ({n_distinct} distinct text(s))"
        fig.update_xaxes(range=[-1, 1])
        fig.update_yaxes(range=[-1, 1])
    fig.update_layout(
        title=title or f"answers of round {ra.round}, coloured by {color_by}",
        template="plotly_white",
        showlegend=len(set(keys)) <= 20,  # a legend of 48 prompts is noise
        legend={"title": color_by},
    )
    return fig


def fig_prompt_similarity(ra: RoundAnswers, prompt_id: str, est: SemanticConsensus) -> go.Figure:
    """Cosine similarity between the answers to one prompt, labelled by client, cluster and consensus."""
    rows = ra.rows_of(prompt_id)
    X = ra.X[rows]
    sim = X @ X.T
    cons = int(est.consensus_for(prompt_id).index)
    labels = [
        f"{ra.clients[i]} [c{est.labels_[i]}]{' *' if i == cons else ''}: {ra.texts[i][:30]}" for i in rows
    ]
    fig = go.Figure(go.Heatmap(z=sim, x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues", hovertemplate="%{z:.3f}<extra></extra>"))
    fig.update_layout(title=f"{prompt_id}: cosine similarity of the answers (* = consensus, [cK] = cluster)", template="plotly_white", height=420)
    return fig


def fig_threshold_sweep(rows: Sequence[dict[str, float]], current: float | None = None) -> go.Figure:
    """Pseudo-label accuracy and coverage (share of prompts kept) against the knob's value."""
    name = next(k for k in rows[0] if k in {v[0] for v in KNOB.values()})
    x = [r[name] for r in rows]
    fig = go.Figure(
        [
            go.Scatter(x=x, y=[r["pseudo_label_accuracy"] for r in rows], name="pseudo-label accuracy (kept)", mode="lines+markers"),
            go.Scatter(x=x, y=[r["kept"] / r["n_prompts"] for r in rows], name="share of prompts kept", mode="lines+markers"),
            go.Scatter(x=x, y=[r["consensus_accuracy_all"] for r in rows], name="consensus accuracy (all prompts)", mode="lines", line={"dash": "dot"}),
        ]
    )
    if current is not None:
        fig.add_vline(x=current, line_dash="dash", line_color="grey")
    fig.update_layout(title=f"consensus quality against {name}", xaxis={"title": name}, yaxis={"title": "share", "range": [0, 1.02]}, template="plotly_white")
    return fig


def prompt_table(ra: RoundAnswers, prompt_id: str, est: SemanticConsensus) -> list[dict[str, Any]]:
    """One row per answer of a prompt: client, text, cluster, in dominant cluster, consensus, correct."""
    cons = int(est.consensus_for(prompt_id).index)
    correct = ra.correct
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


# -- the interactive explorer ---------------------------------------------------


class ClusterExplorer(W.VBox):
    """Pick a prompt, an algorithm and its knob; see clusters, consensus, agreement and accuracy.

    Every change of a control refits the consensus on *all* prompts of the
    round, so the summary line and the sweep's marker show how pseudo-label
    accuracy over the whole round moves with the knob. What the last redraw
    computed stays readable: ``estimator`` (the fitted
    :class:`~fedcofit_lite.consensus.SemanticConsensus`), ``quality``
    (:func:`consensus_quality` of it) and ``n_draws`` (redraws so far), so a
    notebook cell or a test can drive the controls and check the result
    without a browser. It is an ipywidgets ``VBox``: a notebook shows it when it
    is the last expression of a cell.
    """

    def __init__(self, ra: RoundAnswers, algorithm: str = "agglomerative", min_agreement: float = 0.5) -> None:
        if algorithm not in KNOB:
            raise ValueError(f"algorithm {algorithm!r}: choose one of {', '.join(KNOB)}.")
        if ra.X is None:
            raise ValueError("embed the answers first: ra.embed(embed_fn).")
        self.ra = ra
        prompts = list(ra.prompts)
        wide = {"description_width": "initial"}  # the default width cuts "min_agreement" to "min_agre..."
        self.controls = {
            "prompt": W.Dropdown(options=prompts, value=prompts[0], description="prompt", style=wide),
            "algorithm": W.Dropdown(options=list(KNOB), value=algorithm, description="algorithm", style=wide),
            "knob": W.FloatSlider(description=KNOB[algorithm][0], continuous_update=False, readout_format=".2f", style=wide),
            "min_agreement": W.FloatSlider(value=min_agreement, min=0.0, max=1.0, step=0.05, description="min_agreement",
                                           continuous_update=False, style=wide),
        }
        self.output = W.Output()
        self.n_draws = 0
        self._sweeps: dict[tuple[str, float], list[dict[str, float]]] = {}  # (algorithm, min_agreement) -> sweep
        c = self.controls
        self._set_knob_range(algorithm)
        c["algorithm"].observe(self._on_algorithm, "value")
        for name in ("prompt", "knob", "min_agreement"):
            c[name].observe(self.refresh, "value")
        super().__init__([W.HBox([c["prompt"], c["algorithm"]]), W.HBox([c["knob"], c["min_agreement"]]), self.output])
        self.refresh()

    def params(self) -> dict[str, float | int]:
        """The clusterer's parameters the controls describe, e.g. ``{"distance_threshold": 0.15}``."""
        param = KNOB[self.controls["algorithm"].value][0]
        return {param: _knob_value(param, self.controls["knob"].value)}

    def refresh(self, *_: Any) -> None:
        """Refit the consensus with the controls' values and redraw the output area."""
        from IPython.display import HTML, display

        ra, c = self.ra, self.controls
        algorithm, agree, prompt_id = c["algorithm"].value, c["min_agreement"].value, c["prompt"].value
        self.estimator = fit_consensus(ra, algorithm, agree, **self.params())
        self.quality = q = consensus_quality(ra, self.estimator)
        pc = self.estimator.consensus_for(prompt_id)
        key = (algorithm, round(agree, 6))
        if key not in self._sweeps:  # the sweep depends on neither the prompt nor the knob's value
            self._sweeps[key] = threshold_sweep(ra, algorithm, min_agreement=agree)
        self.output.clear_output(wait=True)
        with self.output:
            display(HTML(f"<b>{prompt_id}</b>: {_esc(ra.prompts[prompt_id])}<br>reference (hidden from the server): "
                         f"<code>{_esc(ra.references[ra.rows_of(prompt_id)[0]])}</code>"))
            display(HTML(_html_table(prompt_table(ra, prompt_id, self.estimator))))
            display(HTML(
                f"agreement {pc.agreement:.2f} ({_verdict(pc.kept, ra.texts[pc.index])}), {pc.n_clusters} clusters. "
                f"All prompts: {q['kept']}/{q['n_prompts']} kept, pseudo-label accuracy {q['pseudo_label_accuracy']:.2f}, "
                f"consensus accuracy {q['consensus_accuracy_all']:.2f}."
            ))
            display(fig_prompt_similarity(ra, prompt_id, self.estimator))
            display(fig_threshold_sweep(self._sweeps[key], current=next(iter(self.params().values()))))
        self.n_draws += 1

    def _set_knob_range(self, algorithm: str) -> None:
        param, low, high, step = KNOB[algorithm]
        knob = self.controls["knob"]
        knob.description, knob.step = param, step
        # ipywidgets rejects min > max at every assignment: widen towards the new range first.
        if low > knob.max:
            knob.max, knob.min = high, low
        else:
            knob.min, knob.max = low, high
        knob.value = ConsensusConfig(clusterer=algorithm).clusterer_params()[param]  # the config's default

    def _on_algorithm(self, change: dict) -> None:
        knob = self.controls["knob"]
        knob.unobserve(self.refresh, "value")  # one redraw for the new algorithm, not one per range change
        self._set_knob_range(change["new"])
        knob.observe(self.refresh, "value")
        self.refresh()


def cluster_explorer(ra: RoundAnswers, algorithm: str = "agglomerative", min_agreement: float = 0.5) -> ClusterExplorer:
    """The interactive per-prompt clustering explorer of notebook 05 (:class:`ClusterExplorer`).

    Parameters
    ----------
    ra : RoundAnswers
        One round's answers, embedded (:meth:`RoundAnswers.embed`).
    algorithm : {"agglomerative", "dbscan", "hdbscan", "kmeans"}
        The clusterer selected first; its knob (``KNOB``) starts at the
        default of :class:`~fedcofit_lite.config.ConsensusConfig`.
    min_agreement : float
        The agreement filter's starting value.

    Returns
    -------
    ClusterExplorer
        Leave it as the last expression of a cell to show it; its
        ``controls`` can be set from code.

    Examples
    --------
    >>> ex = cluster_explorer(ra, "agglomerative", 0.75)  # doctest: +SKIP
    >>> ex.controls["knob"].value = 0.3  # doctest: +SKIP
    >>> ex.quality["kept"], ex.n_draws  # doctest: +SKIP
    """
    return ClusterExplorer(ra, algorithm, min_agreement)


def _verdict(kept: bool, consensus: str) -> str:
    """What the server does with a prompt's consensus: kept, dropped, or dropped because it is empty."""
    if kept and not consensus.strip():
        return "dropped: the consensus is an empty answer"
    return "kept" if kept else "dropped"


def _html_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "<i>no answers</i>"
    head = "".join(f"<th>{k}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r.values()) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _esc(v: Any) -> str:
    import html

    return html.escape(str(v))
