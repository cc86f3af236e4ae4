"""The federation: the clients, the methods and the round loop that drive the engine and the servers.

* :mod:`.client` - one client: its private data, its pseudo-labels, how it trains and answers;
* :mod:`.cohort` - many clients on one machine, batched on a shared model pool (the in-process engine);
* :mod:`.methods` - one round of each method (consensus, FedAvg, FedProx, FFA, local, centralized);
* :mod:`.loop` - ``Federation``: the local stage, the rounds, evaluation, checkpoints and resume;
* :mod:`.adversary` - simulated bad clients (answer behaviours and parameter faults).

May import: ``tasks``, ``protocol``, ``engine`` and the shared core. Never ``flower``, ``analysis`` or ``ui``.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
