"""fedcofit_lite: federated fine-tuning by semantic consensus (FedCoFiT).

The modules follow the protocol, one stage each::

    config      typed run configuration, YAML presets, validation
    tasks       the project's auto-checkable task families (data generator)
    freeform    free-form families: sentence answers in many phrasings, content checkers
    data        example schema, loaders, partitioners
    models      model registry: embedded GGUF models, tiny-random, hub ids
    finetune    client-side LoRA fine-tuning (answer tokens only)
    collect     batched (mixed-adapter) generation on public prompts
    pool        one base per architecture, one adapter per client
    embed       sentence embedder
    cluster     per-prompt clusterers (scikit-learn estimators)
    consensus   consensus answer, agreement score, pseudo-label filter
    messages    typed wire messages (JSON / safetensors), byte counting
    client      client side of the protocol
    server      server side of semantic consensus
    fedavg      server side of FedAvg/FedProx over LoRA adapters (the baseline)
    methods     consensus, fedavg, fedprox, local, centralized
    federation  the in-process loop that drives clients and servers
    compare     several methods on one partition, seed and budget
    costmodel   analytic bytes per round (no torch)
    accounting  measured bytes vs the analytic model
    evaluate    exact match, content correctness, ROUGE-L, embedding similarity
    replay      refit consensus rules on a run's saved answers (no model)
    stats       paired bootstrap intervals over test items and seeds
    runlog      run folder: config, metrics, answers, summary
    explorer    one round up close: embeddings, clusters, threshold sweeps, widget
    plots, costplots   plotly figures (returned, never shown)
    adversary   simulated bad clients (answers and parameter faults)
    privacy     DP-SGD for the clients' adapters (record-level)
    private_vote  private consensus at the server: noisy vote, client-level accountant
    audit       membership inference on what each method sends
    robustness  sweep of the bad-client fraction
    report      regenerate figures/ from a run folder
    workshop    notebook helpers: preset selection, reusable runs

Notebooks import the package as ``import fedcofit_lite as flt``; submodules
load on first use (``flt.costmodel``), so importing the package is cheap and
pulls in no torch until a model module is touched.
"""

import importlib
import pkgutil
from typing import Any

__version__ = "0.1.0"

# Every module and subpackage of the package, found on disk: a new module is reachable as flt.<name> at once.
_SUBMODULES = frozenset(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str) -> Any:
    """Import submodules lazily: ``flt.costmodel`` works without importing torch."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_SUBMODULES])
