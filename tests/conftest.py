"""Shared fixtures: loaded once per session, small and CPU-only."""

from __future__ import annotations

import os

# Tests never touch the network: without this, an uncached hub id spends a
# minute in connection retries before failing. Set before transformers loads.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import pytest  # noqa: E402

# FEDCOFIT_TEST_SET="model.dtype=float32" runs the tests with these overrides added to every config they
# load (';'-separated), e.g. to check that an equivalence test holds with bf16 off. The package modules
# import load_config after this file, so they see the wrapped one.
_EXTRA = [s.strip() for s in os.environ.get("FEDCOFIT_TEST_SET", "").split(";") if s.strip()]
if _EXTRA:
    import fedcofit_lite.config as _config

    _load_config = _config.load_config

    def _load_with_extra(name_or_path="cpu", overrides=None):
        return _load_config(name_or_path, [*_EXTRA, *(overrides or [])])

    _config.load_config = _load_with_extra


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


@pytest.fixture(scope="session")
def extra_overrides() -> list[str]:
    """FEDCOFIT_TEST_SET's overrides, for a test that starts the package in another process (it passes them with --set)."""
    return list(_EXTRA)


# The files (xdist scopes) that take longest, longest first, measured from a fresh clone
# (`make test PYTEST_ARGS="--durations=0"`). `make test` runs with --no-loadscope-reorder, so the workers
# take the scopes in this order: the slowest start at once instead of ending the run alone.
SLOW_FIRST = (
    "tests/test_flower.py",  # a Flower deployment: SuperLink, SuperNodes and a ClientApp process per message
    "notebooks/11_privacy_audit.ipynb",
    "notebooks/10_flower_engine.ipynb",
    "notebooks/01_quickstart.ipynb",
    "tests/test_privacy.py",
    "tests/test_docs.py",
    "tests/test_compare.py",
    "tests/test_smollm2.py",
    "tests/test_audit.py",
    "tests/test_faults.py",
)


def pytest_collection_modifyitems(config, items):
    """Put the items of :data:`SLOW_FIRST` first, in its order; everything else keeps the collection order."""
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
