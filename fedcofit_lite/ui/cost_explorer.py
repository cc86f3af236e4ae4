"""Interactive controls for the notebooks (ipywidgets); the numbers come from :mod:`fedcofit_lite.analysis.costmodel`.

A widget only wires sliders to :func:`~fedcofit_lite.analysis.costmodel.round_bytes` and
:func:`~fedcofit_lite.ui.costplots.fig_ratio_sweep`. Building one needs no browser, so CI executes the notebooks.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import replace

import ipywidgets as W
from IPython.display import display

from ..analysis import costmodel
from ..analysis.costmodel import Architecture, Protocol, format_bytes, ratios, round_bytes
from .costplots import LABELS, fig_ratio_sweep

RANKS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
PROMPTS = (10, 30, 100, 300, 1000, 3000, 10000)
ANSWER_TOKENS = (8, 16, 32, 64, 128, 201, 256, 512, 1024)


class CostExplorer(W.VBox):
    """Model dropdown, rank / prompts / answer-length sliders, a directions checkbox, a table and a figure.

    Every control change redraws the table of bytes per round (``summary``) and the ratio-vs-rank figure (``figure``,
    in ``plot``). Controls are attributes (``explorer.rank.value = 64``): a cell or a test drives it without a browser.
    """

    def __init__(self, archs: Mapping[str, Architecture], protocol: Protocol, model: str | None = None) -> None:
        self.archs = dict(archs)
        self.base_protocol = protocol
        look = {"style": {"description_width": "9em"}, "layout": W.Layout(width="32em")}

        def slider(stops: Sequence[int | float], value: int | float, description: str) -> W.SelectionSlider:
            stops = sorted({*stops, value})  # the protocol's own value is a stop too
            return W.SelectionSlider(options=stops, value=value, description=description, **look)

        first = model or next(iter(self.archs))
        self.model = W.Dropdown(options=list(self.archs), value=first, description="model", **look)
        self.rank = slider(RANKS, protocol.rank, "LoRA rank")
        self.prompts = slider(PROMPTS, protocol.n_prompts, "public prompts")
        self.answer_tokens = slider(ANSWER_TOKENS, protocol.answer_tokens, "answer tokens")
        down = "down" in protocol.directions
        self.both_directions = W.Checkbox(value=down, description="count down as well as up", indent=False)
        self.summary = W.HTML()
        self.plot = W.Output()
        controls = [self.model, self.rank, self.prompts, self.answer_tokens, self.both_directions]
        for control in controls:
            control.observe(self._update, names="value")
        super().__init__([W.HBox([W.VBox(controls), self.summary]), self.plot])
        self._update()

    @property
    def arch(self) -> Architecture:
        return self.archs[self.model.value]

    def protocol(self) -> Protocol:
        """The protocol the controls describe (the other fields as given at construction)."""
        directions = ("up", "down") if self.both_directions.value else ("up",)
        rank, prompts, tokens = int(self.rank.value), int(self.prompts.value), float(self.answer_tokens.value)
        return replace(self.base_protocol, rank=rank, n_prompts=prompts, answer_tokens=tokens, directions=directions)

    def table_html(self) -> str:
        """Bytes per round of the three protocols and how many times consensus each one is."""
        arch, protocol = self.arch, self.protocol()
        b, r = round_bytes(arch, protocol), ratios(arch, protocol)
        times = {"full_fedavg": r["full_over_consensus"], "lora_fedavg": r["lora_over_consensus"], "consensus": 1.0}
        cells = "".join(
            f"<tr><td>{LABELS[k]}</td><td style='text-align:right'>{format_bytes(b[k])}</td>"
            f"<td style='text-align:right'>{times[k]:,.1f} x</td></tr>"
            for k in costmodel.PROTOCOLS
        )
        return (
            f"<b>{html.escape(arch.name)}</b>, {arch.n_parameters() / 1e6:,.1f} M parameters<br>"
            "<table><tr><th>protocol</th><th>bytes per round</th><th>vs consensus</th></tr>" + cells + "</table>"
        )

    def _update(self, change: object = None) -> None:
        self.summary.value = self.table_html()
        self.figure = fig_ratio_sweep(self.arch, self.protocol(), "rank", list(self.rank.options))
        self.plot.clear_output(wait=True)
        with self.plot:
            display(self.figure)


def cost_explorer(
    archs: Sequence[Architecture] | Mapping[str, Architecture] | None = None,
    protocol: Protocol | None = None,
    model: str | None = None,
) -> CostExplorer:
    """An interactive view (a :class:`CostExplorer` ``VBox``) of the analytic byte counts of one round.

    ``archs`` are the models offered (default: every shipped one); ``protocol`` the starting settings (default:
    :func:`fedcofit_lite.analysis.costmodel.paper_setting`), whose rank, prompts, answer length and directions the
    controls change; ``model`` the first choice (default: the paper's Llama-3.1-405B when offered).

    Examples
    --------
    >>> explorer = cost_explorer()  # doctest: +SKIP
    >>> explorer.rank.value = 8  # doctest: +SKIP
    >>> explorer.protocol().rank  # doctest: +SKIP
    8
    """
    archs = costmodel.ARCHITECTURES if archs is None else archs
    archs = archs if isinstance(archs, Mapping) else {a.name: a for a in archs}
    if not archs:
        raise ValueError("archs is empty: pass at least one Architecture (default: costmodel.ARCHITECTURES)")
    paper_arch, paper_protocol = costmodel.paper_setting()
    if model is None:
        model = paper_arch.name if paper_arch.name in archs else next(iter(archs))
    if model not in archs:
        raise ValueError(f"model={model!r} is not among archs: use one of {', '.join(archs)}")
    return CostExplorer(archs, protocol or paper_protocol, model)
