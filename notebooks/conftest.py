"""Executing the notebooks under pytest (``pytest --nbval-lax``): the small preset, offline, quiet.

nbval starts one kernel per notebook, with the notebook's folder as working
directory and this process's environment, so what is set here (at import,
before any kernel starts) is what every notebook sees. ``setdefault`` lets a
caller choose another preset: ``FEDCOFIT_PRESET=cpu pytest notebooks``.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("FEDCOFIT_PRESET", "ci")  # notebooks read it through flt.workshop.notebook_config()
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an uncached hub id fails at once instead of retrying for a minute
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Silences plain tqdm bars; in a kernel tqdm.auto draws widget bars, which ignore it (and --nbval-lax ignores them).
os.environ.setdefault("TQDM_DISABLE", "1")


def pytest_configure(config):
    """Make a relative ``--nbval-sanitize-with`` path work from any directory (pyproject gives it from the root)."""
    path = getattr(config.option, "nbval_sanitize_with", None)
    if path and not Path(path).is_absolute() and not Path(path).exists():
        config.option.nbval_sanitize_with = str(config.rootpath / path)
