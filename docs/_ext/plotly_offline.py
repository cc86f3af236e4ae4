"""Plotly figures in the built pages with no CDN: plotly.js from the installed package, figures from their JSON.

The notebooks are executed with ``PLOTLY_RENDERER=plotly_mimetype`` (set in ``conf.py``), so a figure
is stored as its JSON (``application/vnd.plotly.v1+json``) and not as HTML that loads plotly.js and
MathJax from a CDN. This extension renders that JSON as a ``<div>`` drawn by ``Plotly.newPlot`` and
ships ``plotly.min.js`` (from the ``plotly`` package) in ``_static``. myst-nb finds mime renderers
through an entry point; a docs-only extension has none, so it adds itself to myst-nb's list.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from docutils import nodes

PLOTLY_MIME = "application/vnd.plotly.v1+json"


class PlotlyMime:
    """A myst-nb mime renderer plugin for plotly's JSON output."""

    mime_priority_overrides = [("html", PLOTLY_MIME, 5)]  # before text/html (10), the default's first choice

    @staticmethod
    def handle_mime(renderer, data, inline):
        if inline or data.mime_type != PLOTLY_MIME:
            return None
        spec = data.content if isinstance(data.content, dict) else json.loads(data.content)
        div = f"plotly-{data.output_metadata.get('id', '') or abs(hash(json.dumps(spec, sort_keys=True))) % 10**12}"
        fig = json.dumps({"data": spec.get("data", []), "layout": spec.get("layout", {})}).replace("</", "<\\/")
        html = (
            f'<div id="{div}" class="plotly-graph-div" style="height:460px; width:100%;"></div>\n'
            f'<script type="text/javascript">(function () {{ var f = {fig}; '
            f'Plotly.newPlot("{div}", f.data, f.layout, {{"responsive": true, "displaylogo": false}}); }})();</script>'
        )
        return [nodes.raw(text=html, format="html", classes=["output", "text_html"])]


def _copy_plotly_js(app):
    import plotly

    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    out = Path(app.outdir) / "_static"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, out / "plotly.min.js")


def setup(app):
    from myst_nb.core import render

    plugins = render.load_mime_renders()
    if PlotlyMime not in plugins:
        render.load_mime_renders.cache_clear()
        found = render.load_mime_renders()
        render.load_mime_renders = lambda: [PlotlyMime, *found]
    app.add_js_file("plotly.min.js", priority=200)
    app.connect("builder-inited", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
