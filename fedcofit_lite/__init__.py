"""fedcofit_lite: federated fine-tuning by semantic consensus (FedCoFiT).

The folders are the layers, in the order of the protocol; each may import only those above it in this list
(``tools/import_graph.py`` and the import-linter contracts in ``pyproject.toml`` check it)::

    config, runlog, progress, energy   the shared core: typed configuration, the run folder, bars, energy
    tasks/       examples, suites, partitions, task families, scoring        (stdlib + numpy)
    protocol/    messages, clusterers, consensus rules, servers, private vote (numpy + sklearn, no torch)
    engine/      models, embedder, training, decoding, adapters              (the only torch)
    federation/  clients, cohorts, methods, the round loop, adversaries
    flower/      the same protocol on Flower (simulation and deployment)
    analysis/    reads run folders: comparisons, stats, replay, costs, audit (no plotting, no training)
    experiments/ trains several runs into one folder: comparisons, sweeps, robustness
    ui/          plotly figures, widgets, notebook helpers
    cli          ``python -m fedcofit_lite``

``docs/architecture.md`` draws the layers and names, for each extension, the one place to touch. Notebooks import the
package as ``import fedcofit_lite as flt``; modules load on first use (``flt.protocol.cluster``,
``flt.analysis.costmodel``), so importing the package is cheap and pulls in no torch until a model module is touched.
"""

from ._lazy import lazy_submodules

__version__ = "0.1.0"

# Every module and layer folder of the package, found on disk: a new one is reachable as flt.<name> at once.
__getattr__, __dir__ = lazy_submodules(__name__, __path__)
