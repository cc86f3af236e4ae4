"""Helpers the notebooks share: which preset to run, and a run folder to reuse.

Every notebook starts with::

    import fedcofit_lite as flt
    cfg = flt.workshop.notebook_config()          # FEDCOFIT_PRESET, default "cpu"

CI sets ``FEDCOFIT_PRESET=ci`` so the whole series executes in minutes on the
tiny random model; a workshop leaves it unset and gets the ``cpu`` preset
(the embedded SmolLM2). Notebooks that analyse a finished round (embeddings,
clustering) call :func:`ensure_run`, which reuses the run folder an earlier
notebook wrote for the same preset and only runs the federation if there is
none, so a student does not pay for the same training twice.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .config import RunConfig, load_config

log = logging.getLogger(__name__)

PRESET_ENV = "FEDCOFIT_PRESET"
DEFAULT_PRESET = "cpu"
# the mixed-architecture notebook's preset for each main preset
MIXED_OF = {"ci": "ci-mixed", "cpu": "mixed", "gpu": "mixed", "large": "mixed"}
WORKSHOP_DIR = Path("runs") / "workshop"


def preset_name(kind: str = "main") -> str:
    """The preset selected by ``$FEDCOFIT_PRESET`` (default ``cpu``); ``kind="mixed"`` maps it to its mixed twin."""
    name = os.environ.get(PRESET_ENV, DEFAULT_PRESET).strip() or DEFAULT_PRESET
    return MIXED_OF.get(name, name) if kind == "mixed" else name


def notebook_config(kind: str = "main", overrides: list[str] | None = None) -> RunConfig:
    """The notebook's configuration: the selected preset plus ``overrides`` (``["federation.rounds=1"]``)."""
    return load_config(preset_name(kind), overrides)


def run_dir_for(cfg: RunConfig, tag: str = "quickstart") -> Path:
    """Where the workshop keeps the run of ``cfg`` (one folder per preset name and tag)."""
    return WORKSHOP_DIR / f"{cfg.name}-{tag}"


def is_complete(run_dir: Path, cfg: RunConfig) -> bool:
    """True when ``run_dir`` holds a finished run of ``cfg`` (same resolved config, summary written)."""
    if not (run_dir / "summary.json").exists() or not (run_dir / "config.yaml").exists():
        return False
    return (run_dir / "config.yaml").read_text() == cfg.to_yaml()


def ensure_run(cfg: RunConfig, tag: str = "quickstart", progress: bool = True) -> Path:
    """A finished consensus run of ``cfg``: reused when present with the same config, else run now.

    The consensus folder of a finished comparison of the same config
    (:func:`ensure_comparison`, notebook 06) counts as such a run.
    """
    run_dir = run_dir_for(cfg, tag)
    for candidate in (run_dir, run_dir_for(cfg, "compare") / "consensus"):
        if is_complete(candidate, cfg):
            log.info("reusing %s", candidate)
            return candidate
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)  # stale or interrupted: its config differs or it never finished
    from .federation import run_federation

    run_federation(cfg, run_dir=run_dir, progress=progress)
    return run_dir


def ensure_comparison(cfg: RunConfig, methods: list[str] | None = None, tag: str = "compare", progress: bool = True) -> Path:
    """A finished comparison of ``cfg`` (``methods`` default ``compare.methods``): reused when complete, else run now.

    Complete means: the same resolved config, every method folder has its
    summary, and ``comparison.txt`` is written. Anything else (an interrupted
    or outdated folder) is removed and run again.
    """
    from dataclasses import replace

    names = list(methods or cfg.compare.methods)
    resolved = replace(
        cfg, compare=replace(cfg.compare, methods=names), data=replace(cfg.data, n_test_per_family=cfg.compare.n_test_per_family)
    )
    run_dir = run_dir_for(cfg, tag)
    done = (
        (run_dir / "comparison.txt").exists()
        and (run_dir / "config.yaml").exists()
        and (run_dir / "config.yaml").read_text() == resolved.to_yaml()
        and all((run_dir / m / "summary.json").exists() for m in names)
    )
    if done:
        log.info("reusing %s", run_dir)
        return run_dir
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    from .compare import run_comparison

    run_comparison(cfg, names, run_dir=run_dir, progress=progress)
    return run_dir


def ensure_seed_comparison(
    cfg: RunConfig, seeds: list[int], methods: list[str] | None = None, tag: str = "seeds", progress: bool = True
) -> Path:
    """A finished multi-seed comparison of ``cfg`` (``compare --seeds``): seeds already done are kept, missing ones run.

    A seed folder whose config differs from ``cfg`` at that seed is removed and run again.
    """
    from dataclasses import replace

    from .compare import run_seeds

    names = list(methods or cfg.compare.methods)
    run_dir = run_dir_for(cfg, tag)
    for s in seeds:
        folder = run_dir / f"seed_{s}"
        resolved = replace(
            cfg,
            seed=s,
            compare=replace(cfg.compare, methods=names),
            data=replace(cfg.data, n_test_per_family=cfg.compare.n_test_per_family),
        )
        current = (folder / "config.yaml").exists() and (folder / "config.yaml").read_text() == resolved.to_yaml()
        if folder.exists() and not (current and (folder / "comparison.json").exists()):
            import shutil

            shutil.rmtree(folder)
    stale = [p for p in run_dir.glob("seed_*") if int(p.name.split("_")[1]) not in seeds]
    for p in stale:
        import shutil

        shutil.rmtree(p)
    run_seeds(cfg, seeds, names, run_dir=run_dir, progress=progress)
    return run_dir
