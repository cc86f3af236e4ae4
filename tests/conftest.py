"""Shared fixtures: loaded once per session, small and CPU-only."""

from __future__ import annotations

import os

# Tests never touch the network: without this, an uncached hub id spends a
# minute in connection retries before failing. Set before transformers loads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def embedder():
    from fedcofit_lite.engine.models import load_embedder

    return load_embedder(device="cpu")


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer) of the tiny-random Llama."""
    from fedcofit_lite.engine.models import load_model

    return load_model("tiny-random", device="cpu", seed=0)


@pytest.fixture(scope="session")
def generate_script():
    """``data/generate.py`` as a module (it is a script, not part of the package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "generate", Path(__file__).resolve().parent.parent / "data" / "generate.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
