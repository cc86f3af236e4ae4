"""Regenerate ``figures/`` from a run: the comparison, one round up close, and the cost model.

``python -m fedcofit_lite figures RUN_DIR --out figures --png`` writes self-contained HTML and, where kaleido finds
a Chrome or Chromium, PNG files. Every figure comes from the run folder's files, never from numbers typed in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import plotly.graph_objects as go

log = logging.getLogger(__name__)


def run_figures(run_dir: str | Path, embedder_device: str = "cpu") -> dict[str, go.Figure]:
    """Every figure a run folder supports, by file stem."""
    from ..analysis import accounting, compare, costmodel, replay
    from ..config import load_config
    from ..protocol.cluster import REGISTRY, clusterer_params
    from ..runlog import RunLog
    from . import costplots, plots, roundplots

    run = Path(run_dir)
    figs: dict[str, go.Figure] = {}
    seeds = sorted(run.glob("seed_*/config.yaml"))
    if seeds:  # a multi-seed comparison: its interval figures, then seed 0's folder for the rest
        figs.update(plots.seed_figures(compare.summarize_seeds(run)))
        run = seeds[0].parent
    if not (run / "config.yaml").exists():
        raise FileNotFoundError(f"{run} has no config.yaml: give a folder written by `run` or `compare`.")
    # 1. methods side by side (a compare folder), or the one run's curve
    try:
        metrics = compare.load_comparison(run)
    except FileNotFoundError:
        rows = RunLog(run).read_metrics()
        metrics = {rows[-1].get("method", "consensus"): rows} if rows else {}
    if metrics:
        figs.update({f"compare_{k}": v for k, v in plots.comparison_figures(metrics).items()})
    # 2. one consensus round up close: embedding space and the threshold sweep
    # the folder holding a consensus run's answers: the run itself or its consensus/ method folder
    folder = next((c for c in (run, run / "consensus") if (c / "answers" / "round_1.jsonl").exists()), None)
    if folder is not None:
        cfg = load_config(folder / "config.yaml", recorded=True)
        # the server's saved embeddings; answers it never embedded need the embedder (hence transformers)
        ra = replay.ensure_embedded(replay.load_round(folder, 1), cfg.consensus.embedder, embedder_device)
        algorithm, params = cfg.consensus.clusterer, clusterer_params(cfg.consensus)
        est = replay.fit_as_configured(ra, cfg.consensus)
        coords = roundplots.project(ra.X, "pca", 2, seed=cfg.seed)
        title = "round 1 answers (PCA of MiniLM embeddings), by "
        for by, what in (("correct", "correctness"), ("family", "task family"), ("cluster", f"{algorithm} cluster")):
            figs[f"round1_embedding_{by}"] = roundplots.fig_embedding(ra, coords, by, est=est, title=title + what)
        knob = REGISTRY[algorithm].knob  # sweep the run's own clusterer over its knob, the other parameters as run
        fixed = {k: v for k, v in params.items() if k != knob}
        sweep = replay.threshold_sweep(ra, algorithm, min_agreement=cfg.consensus.min_agreement, **fixed)
        figs["round1_threshold_sweep"] = roundplots.fig_threshold_sweep(sweep, current=params[knob])
    # 3. bytes on the wire against the analytic model
    rows = []
    for sub in [run, *(p for p in run.iterdir() if p.is_dir())]:
        if (sub / "metrics.jsonl").exists() and (sub / "config.yaml").exists():
            try:
                rows += accounting.measured_vs_analytic(sub)
            except (FileNotFoundError, KeyError, ValueError) as err:  # e.g. an interrupted method folder
                log.warning("no measured-vs-analytic rows for %s: %s", sub, err)
    if rows:
        figs["bytes_measured_vs_analytic"] = costplots.fig_measured_vs_analytic(rows)
    # 4. the analytic model across model sizes and its knobs (no run needed)
    arch, protocol = costmodel.paper_setting()
    archs = list(costmodel.ARCHITECTURES.values())
    figs["cost_bytes_vs_model_size"] = costplots.fig_bytes_vs_model_size(archs, protocol)
    sweeps = {
        "rank": [4, 8, 16, 32, 64, 128, 256],
        "prompts": [100, 300, 1000, 3000, 10000, 30000],
        "answer_tokens": [8, 32, 64, 128, 201, 512, 1024],
    }
    for stem, values in sweeps.items():
        param = "n_prompts" if stem == "prompts" else stem
        figs[f"cost_ratio_vs_{stem}"] = costplots.fig_ratio_sweep(arch, protocol, param, values)
    return figs


def write_run_figures(run_dir: str | Path, out: str | Path = "figures", png: bool = False) -> list[Path]:
    """Write :func:`run_figures` of ``run_dir`` into ``out``; returns the written paths."""
    from .plots import write_figures

    return write_figures(run_figures(run_dir), out, png=png)
