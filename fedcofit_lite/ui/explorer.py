"""Looking inside one round of consensus: clusters, and how a clusterer's knob changes them (notebooks 04 and 05).

A finished round from the run folder alone (no model is loaded). The hidden references are read only to *score*
consensus, as a teacher would; the server never sees them.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import ipywidgets as W
from IPython.display import HTML, display

from ..analysis.replay import RoundAnswers, consensus_quality, fit_consensus, threshold_sweep
from ..config import ConsensusConfig
from ..protocol.cluster import REGISTRY, clusterer_params
from ..protocol.consensus import DEFAULTS
from .roundplots import fig_prompt_similarity, fig_threshold_sweep, prompt_table


class ClusterExplorer(W.VBox):
    """Pick a prompt, an algorithm and its knob; see clusters, consensus, agreement and accuracy (notebook 05).

    ``ra`` is one round's answers, embedded; ``algorithm`` the clusterer selected first (a name of
    ``protocol.cluster.REGISTRY``, its knob at the config's default); ``min_agreement`` the filter's first value. Every
    change refits the consensus on *all* prompts, so the summary line and the sweep's marker show how the round's
    pseudo-label accuracy moves with the knob. The last redraw's ``estimator`` (the fitted
    :class:`~fedcofit_lite.protocol.consensus.SemanticConsensus`), ``quality`` (:func:`consensus_quality`),
    ``summary`` and ``n_draws`` stay readable, so a cell or a test can drive the ``controls`` without a browser.

    Examples
    --------
    >>> ex = cluster_explorer(ra, "agglomerative", 0.75)  # doctest: +SKIP
    >>> ex.controls["knob"].value = 0.3  # doctest: +SKIP
    >>> ex.quality["kept"], ex.n_draws  # doctest: +SKIP
    """

    def __init__(self, ra: RoundAnswers, algorithm: str = "agglomerative", min_agreement: float | None = None) -> None:
        min_agreement = DEFAULTS.min_agreement if min_agreement is None else min_agreement
        if algorithm not in REGISTRY:
            raise ValueError(f"algorithm {algorithm!r}: choose one of {', '.join(REGISTRY)}.")
        if ra.X is None:
            raise ValueError("embed the answers first: ra.embed(embed_fn).")
        self.ra = ra
        prompts = list(ra.prompts)
        wide = {"description_width": "initial"}  # the default width cuts "min_agreement" to "min_agre..."
        slider = {"continuous_update": False, "style": wide}
        self.controls = {
            "prompt": W.Dropdown(options=prompts, value=prompts[0], description="prompt", style=wide),
            "algorithm": W.Dropdown(options=list(REGISTRY), value=algorithm, description="algorithm", style=wide),
            "knob": W.FloatSlider(description=REGISTRY[algorithm].knob, readout_format=".2f", **slider),
            "min_agreement": W.FloatSlider(
                value=min_agreement, min=0, max=1, step=0.05, description="min_agreement", **slider
            ),
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
        spec = REGISTRY[self.controls["algorithm"].value]
        return {spec.knob: spec.value(self.controls["knob"].value)}

    def refresh(self, *_: Any) -> None:
        """Refit the consensus with the controls' values and redraw the output area."""
        ra, c = self.ra, self.controls
        algorithm, agree, prompt_id = c["algorithm"].value, c["min_agreement"].value, c["prompt"].value
        self.estimator = fit_consensus(ra, algorithm, agree, **self.params())
        self.quality = q = consensus_quality(ra, self.estimator)
        # The fit in words: what every control set, then what it gave over the round. A move of any control
        # changes this line, even when the kept labels stay the same (a browser check reads it).
        knob, value = next(iter(self.params().items()))
        self.summary = (
            f"{algorithm}, {knob} {value:g}, min_agreement {agree:.2f}. All prompts: {q['kept']}/{q['n_prompts']} kept, "
            f"pseudo-label accuracy {q['pseudo_label_accuracy']:.2f}, consensus accuracy {q['consensus_accuracy_all']:.2f}."
        )
        pc = self.estimator.consensus_for(prompt_id)
        key = (algorithm, round(agree, 6))
        if key not in self._sweeps:  # the sweep depends on neither the prompt nor the knob's value
            self._sweeps[key] = threshold_sweep(ra, algorithm, min_agreement=agree)
        self.output.clear_output(wait=True)
        reference = f"reference (hidden from the server): <code>{_esc(ra.references[ra.rows_of(prompt_id)[0]])}</code>"
        with self.output:
            display(HTML(f"<b>{prompt_id}</b>: {_esc(ra.prompts[prompt_id])}<br>{reference}"))
            display(HTML(_html_table(prompt_table(ra, prompt_id, self.estimator))))
            verdict = _verdict(pc.kept, ra.texts[pc.index])
            display(HTML(f"agreement {pc.agreement:.2f} ({verdict}), {pc.n_clusters} clusters."))
            display(HTML(self.summary))
            display(fig_prompt_similarity(ra, prompt_id, self.estimator))
            display(fig_threshold_sweep(self._sweeps[key], current=value))
        self.n_draws += 1

    def _set_knob_range(self, algorithm: str) -> None:
        spec, knob = REGISTRY[algorithm], self.controls["knob"]
        knob.description, knob.step = spec.knob, spec.step
        # ipywidgets rejects min > max at every assignment: widen towards the new range first.
        if spec.low > knob.max:
            knob.max, knob.min = spec.high, spec.low
        else:
            knob.min, knob.max = spec.low, spec.high
        knob.value = clusterer_params(ConsensusConfig(), algorithm)[spec.knob]  # the config's default

    def _on_algorithm(self, change: dict) -> None:
        knob = self.controls["knob"]
        knob.unobserve(self.refresh, "value")  # one redraw for the new algorithm, not one per range change
        self._set_knob_range(change["new"])
        knob.observe(self.refresh, "value")
        self.refresh()


cluster_explorer = ClusterExplorer  # the name notebook 05 calls


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
    return html.escape(str(v))
