"""Helpers the notebooks share: which preset to run, and a run folder to reuse.

Every notebook starts with ``cfg = flt.ui.workshop.notebook_config()`` (``$FEDCOFIT_PRESET``, default ``cpu``; CI
sets ``small``). :func:`ensure_run` takes the run an earlier notebook wrote for the same preset, else the *reference
run* shipped for it (``notebooks/reference/<preset>/``), else trains one: a workshop opens on real results at once,
and a student pays for the same training at most once (``reference=False`` trains their own).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path

from ..config import ConfigError, RunConfig, load_config

log = logging.getLogger(__name__)

PRESET_ENV = "FEDCOFIT_PRESET"
# A notebook that must train (01, 08, 10, 11) takes this preset instead when it is set: the documentation site
# sets it to `small`, so those pages build in minutes while the pages that read shipped runs show the `cpu` ones.
TRAINING_PRESET_ENV = "FEDCOFIT_TRAINING_PRESET"
DEFAULT_PRESET = "cpu"
# the mixed-architecture notebook's preset for each main preset
MIXED_OF = {"ci": "ci-mixed", "small": "small-mixed", "cpu": "mixed", "gpu": "mixed", "large": "mixed"}
WORKSHOP_DIR = Path("runs") / "workshop"
# Reference runs shipped with the notebooks: <REFERENCE_ROOT>/<preset>/{reference.json, quickstart/, seeds/}.
REFERENCE_ROOT = Path(__file__).resolve().parents[2] / "notebooks" / "reference"
REFERENCE_FORMAT = 1  # the layout below; bump it when a reader of run folders changes what it needs
REFERENCE_MANIFEST = "reference.json"


def _remove(path: Path) -> None:
    """Delete a stale run folder if there is one; one that cannot be deleted raises rather than being reused."""
    if path.exists():
        shutil.rmtree(path)


def preset_name(kind: str = "main", trains: bool = False) -> str:
    """The preset selected by ``$FEDCOFIT_PRESET`` (default ``cpu``); ``kind="mixed"`` maps it to its mixed twin;
    ``trains=True`` (a notebook that must train) takes ``$FEDCOFIT_TRAINING_PRESET`` instead, when it is set."""
    name = os.environ.get(PRESET_ENV, DEFAULT_PRESET).strip() or DEFAULT_PRESET
    if trains:
        name = os.environ.get(TRAINING_PRESET_ENV, "").strip() or name
    return MIXED_OF.get(name, name) if kind == "mixed" else name


def notebook_config(kind: str = "main", overrides: list[str] | None = None, trains: bool = False) -> RunConfig:
    """The notebook's configuration: the preset :func:`preset_name` selects plus ``overrides``
    (``["federation.rounds=1"]``); ``trains=True`` marks a notebook that must train to show anything."""
    return load_config(preset_name(kind, trains), overrides)


# Notebook 06's comparison: the seeds per preset (default 0, 1, 2) and the consensus rules beside the medoid
# (none on the quick presets, whose 14 public prompts could not tell rules apart anyway). On a mixed preset it is
# notebook 08's one-seed comparison of its compare.methods, shipped for small-mixed (FedAvg cannot run there).
PLAN_SEEDS = {"ci": [0, 1], "small": [0, 1], "small-mixed": [0]}
PLAN_EXTRA_RULES = ["consensus@vote", "consensus@reliability"]
QUICK_PRESETS = ("ci", "small", "small-mixed")


def comparison_plan(cfg: RunConfig) -> tuple[list[int], list[str]]:
    """The seeds and methods notebook 06 compares on ``cfg``'s preset (and its shipped reference holds)."""
    extra = [] if cfg.name in QUICK_PRESETS else [m for m in PLAN_EXTRA_RULES if m not in cfg.compare.methods]
    return list(PLAN_SEEDS.get(cfg.name, [0, 1, 2])), list(cfg.compare.methods) + extra


def run_dir_for(cfg: RunConfig, tag: str = "quickstart") -> Path:
    """Where the workshop keeps the run of ``cfg`` (one folder per preset name and tag)."""
    return WORKSHOP_DIR / f"{cfg.name}-{tag}"


def is_complete(run_dir: Path, cfg: RunConfig) -> bool:
    """True when ``run_dir`` holds a finished run of ``cfg`` (same resolved config, summary written); its config.yaml
    read as today (a field added since takes its default, which keeps the earlier behaviour)."""
    return (run_dir / "summary.json").exists() and _same_config(run_dir / "config.yaml", cfg)


def _same_config(path: Path, cfg: RunConfig) -> bool:
    """``path`` (a run's config.yaml) resolves, as read today, to exactly ``cfg``."""
    if not path.exists():
        return False
    try:
        saved = load_config(path, recorded=True)
    except (ConfigError, OSError, ValueError):
        return False
    return saved.to_yaml() == cfg.to_yaml()


def ensure_run(cfg: RunConfig, tag: str = "quickstart", progress: bool = True, reference: bool = True) -> Path:
    """A finished consensus run of ``cfg``: yours when present, else the shipped reference, else run now.

    Yours: the workshop folder of this preset and ``tag`` (or the consensus folder of a finished comparison tagged
    ``compare``) with the same config. The reference counts when its config is ``cfg`` (any override trains) and is
    copied to ``runs/workshop/``; :func:`describe_run` says which one a folder is.
    """
    run_dir = run_dir_for(cfg, tag)
    for candidate in (run_dir, run_dir_for(cfg, "compare") / "consensus"):
        if is_complete(candidate, cfg):
            log.info("reusing %s", candidate)
            return candidate
    if reference and tag == "quickstart" and (shipped := reference_part(cfg, "quickstart")):  # checked against cfg
        return shipped
    _remove(run_dir)  # stale or interrupted: its config differs or it never finished
    from ..federation.loop import run_federation

    run_federation(cfg, run_dir=run_dir, progress=progress)
    return run_dir


def seed_config(cfg: RunConfig, seed: int, methods: list[str]) -> RunConfig:
    """The config a ``compare --seeds`` run of ``cfg`` writes into its ``seed_<seed>/`` folder."""
    data = replace(cfg.data, n_test_per_family=cfg.compare.n_test_per_family)
    return replace(cfg, seed=seed, compare=replace(cfg.compare, methods=list(methods)), data=data)


def _seeds_done(run_dir: Path, cfg: RunConfig, seeds: list[int], methods: list[str]) -> list[int]:
    """The seeds of ``seeds`` whose folder under ``run_dir`` holds a finished comparison of ``cfg`` at that seed."""

    def done(folder: Path, s: int) -> bool:
        return (
            _same_config(folder / "config.yaml", seed_config(cfg, s, methods)) and (folder / "comparison.json").exists()
        )

    return [s for s in seeds if done(run_dir / f"seed_{s}", s)]


def ensure_seed_comparison(
    cfg: RunConfig,
    seeds: list[int],
    methods: list[str] | None = None,
    tag: str = "seeds",
    progress: bool = True,
    reference: bool = True,
) -> Path:
    """A finished multi-seed comparison of ``cfg`` (``compare --seeds``): yours, else the shipped reference, else run now.

    Yours is reused seed by seed (a seed whose folder differs from ``cfg`` or never finished runs again;
    seeds you did not ask for stay). With none of ``seeds`` yet, the shipped reference is used when it
    holds them with exactly these methods. Read the folder with ``compare.summarize_seeds(folder, seeds)``.
    """
    from ..experiments.compare import run_seeds

    names = list(methods or cfg.compare.methods)
    run_dir = run_dir_for(cfg, tag)
    mine = _seeds_done(run_dir, cfg, seeds, names)
    ref = reference_for(cfg.name) if reference and not mine else None
    fits = ref is not None and set(seeds) <= set(ref.seeds) and ref.methods == names
    if fits and (shipped := reference_part(cfg, "seeds")):  # its seeds checked against cfg there
        return shipped
    for s in set(seeds) - set(mine):
        _remove(run_dir / f"seed_{s}")  # stale (another config) or interrupted: it runs again
    run_seeds(cfg, seeds, names, run_dir=run_dir, progress=progress)
    return run_dir


def comparison_run(cfg: RunConfig, method: str, seed: int | None = None, tag: str = "seeds") -> Path | None:
    """The folder of ``method`` in notebook 06's comparison of ``cfg`` (yours, else the shipped reference); None if
    neither has it. It never trains; ``seed`` defaults to the preset's first seed of :func:`comparison_plan`."""
    seed = comparison_plan(cfg)[0][0] if seed is None else seed
    candidates = [run_dir_for(cfg, tag) / f"seed_{seed}" / method]
    ref = reference_for(cfg.name)
    if ref is not None and seed in ref.seeds and method in ref.methods and (shipped := reference_part(cfg, "seeds")):
        candidates.append(shipped / f"seed_{seed}" / method)
    return next((c for c in candidates if (c / "summary.json").exists()), None)


def ensure_flower_run(cfg: RunConfig, tag: str = "engine-flower", threads_per_client: int = 1) -> Path:
    """A finished run of ``cfg`` on Flower's simulation engine (Ray) under the workshop folder: reused, else run now."""
    from ..flower.simulation import simulate

    run_dir = run_dir_for(cfg, tag).resolve()
    if not is_complete(run_dir, cfg):
        shutil.rmtree(run_dir, ignore_errors=True)  # stale (another config) or interrupted: it runs again
        simulate(cfg, run_dir=run_dir, threads_per_client=threads_per_client)
    return run_dir


# -- the reference runs shipped with the notebooks ------------------------------
@dataclass(frozen=True)
class Reference:
    """The manifest of a shipped reference run (``notebooks/reference/<preset>/reference.json``)."""

    root: Path
    preset: str
    format: int
    package_version: str
    seeds: list[int]
    methods: list[str]
    commands: list[str]
    made: str  # date and machine it was made on

    @classmethod
    def read(cls, root: Path) -> Reference:
        meta = json.loads((root / REFERENCE_MANIFEST).read_text())
        return cls(root, **{f.name: meta[f.name] for f in fields(cls) if f.name != "root"})


def reference_for(preset: str) -> Reference | None:
    """The shipped reference run of ``preset``, or None when none ships."""
    root = REFERENCE_ROOT / preset
    return Reference.read(root) if (root / REFERENCE_MANIFEST).exists() else None


def reference_problems(ref: Reference, cfg: RunConfig | None = None) -> list[str]:
    """Why ``ref`` cannot stand for ``cfg`` (default: its preset as configured now); empty when it can: written in
    this layout by this package version, each run made with exactly the configuration the preset resolves to today."""
    from .. import __version__

    cfg = cfg or load_config(ref.preset)
    missing = [s for s in ref.seeds if s not in _seeds_done(ref.root / "seeds", cfg, ref.seeds, ref.methods)]
    now = f"preset {cfg.name} as configured now"
    problems = [
        (ref.format != REFERENCE_FORMAT, f"layout version {ref.format}, this package reads {REFERENCE_FORMAT}"),
        (ref.package_version != __version__, f"made by fedcofit_lite {ref.package_version}, this is {__version__}"),
        (not is_complete(ref.root / "quickstart", cfg), f"{ref.root.name}/quickstart is not a finished run of {now}"),
        (bool(missing), f"seeds {missing} of {ref.root.name}/seeds are not finished comparisons of {now}"),
    ]
    return [why for wrong, why in problems if wrong]


def reference_part(cfg: RunConfig, part: str) -> Path | None:
    """``quickstart`` or ``seeds`` of the shipped reference of ``cfg``'s preset, copied to the workshop folder (so the
    shipped folder stays clean of what a notebook writes beside a run); None if unusable."""
    ref = reference_for(cfg.name)
    if ref is None:
        return None
    problems = reference_problems(ref, cfg)
    if problems:
        msg = "not using the shipped reference run of %s (%s); training instead. With the preset unchanged this means the reference is stale: %s"
        log.warning(msg, cfg.name, "; ".join(problems), ref.commands[-1])
        return None
    target = WORKSHOP_DIR / f"{cfg.name}-reference"
    copied = target / REFERENCE_MANIFEST
    if not copied.exists() or copied.read_text() != (ref.root / REFERENCE_MANIFEST).read_text():
        _remove(target)
        shutil.copytree(ref.root, target)
    return target / part


def describe_run(run_dir: str | Path) -> str:
    """One sentence: whose run ``run_dir`` is (the shipped reference, or a run made here) and how to retrain."""
    run_dir = Path(run_dir)
    if (run_dir.parent / REFERENCE_MANIFEST).exists():
        ref = Reference.read(run_dir.parent)
        return (
            f"{run_dir}: the reference run shipped for preset {ref.preset} (made {ref.made}, fedcofit_lite "
            f"{ref.package_version}, by `{ref.commands[0] if run_dir.name == 'quickstart' else ref.commands[-1]}`). "
            "To train your own instead, pass reference=False."
        )
    return f"{run_dir}: a run made on this machine."
