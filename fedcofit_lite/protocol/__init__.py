"""The protocol: what crosses the wire and what the servers decide. Numpy and scikit-learn, never torch.

* :mod:`.messages` - typed messages (answers up, pseudo-labels or adapters down), encoded once, counted in bytes;
* :mod:`.cluster` - per-prompt clusterers (scikit-learn estimators) and their one ``REGISTRY``;
* :mod:`.consensus` - ``SemanticConsensus``: the consensus answer of each prompt, its agreement, the rules (``RULES``);
* :mod:`.server` - the consensus server: check the messages, embed, fit the consensus, send pseudo-labels;
* :mod:`.fedavg` - the FedAvg/FedProx server over LoRA adapters (the parameter-averaging baseline);
* :mod:`.private_vote` - the private vote (noisy counts) and its client-level accountant.

May import: ``tasks`` and the shared core. Never ``engine`` (no torch), ``federation`` or above.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
