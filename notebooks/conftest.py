"""Executing the notebooks under pytest (``pytest --nbval-lax``): the small preset, offline, quiet.

The small preset runs the embedded SmolLM2 with a tiny budget, so every answer, cluster and
score the notebooks show in CI is real (the random model of ``ci`` is for unit tests).

nbval starts one kernel per notebook, with the notebook's folder as working
directory and this process's environment, so what is set here (at import,
before any kernel starts) is what every notebook sees. ``setdefault`` lets a
caller choose another preset: ``FEDCOFIT_PRESET=cpu pytest notebooks``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("FEDCOFIT_PRESET", "small")  # notebooks read it through flt.ui.workshop.notebook_config()
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an uncached hub id fails at once instead of retrying for a minute
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Silences the package's bars (flt.progress.bar honours it in kernels too): thousands of widget
# updates in one long cell overflow the kernel's iopub buffer and nbval then fails the cell.
os.environ.setdefault("TQDM_DISABLE", "1")
# nbval's default cell timeout (2000 s) is plenty on `ci` and `small` (a stuck cell in CI fails
# instead of hanging), but on `cpu` one cell of notebook 06 may train the whole comparison
# (about 30 min on 2 cores, more on a slower laptop).
CPU_CELL_TIMEOUT_S = 4 * 3600


def pytest_configure(config):
    """Resolve ``--nbval-sanitize-with`` from the root; give real-model presets a longer cell timeout."""
    from fedcofit_lite.ui.workshop import QUICK_PRESETS

    if (
        os.environ["FEDCOFIT_PRESET"] not in QUICK_PRESETS
        and str(getattr(config.option, "nbval_cell_timeout", "")) == "2000"
    ):
        config.option.nbval_cell_timeout = CPU_CELL_TIMEOUT_S  # only when the caller kept nbval's default
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).is_absolute() and not Path(path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)
