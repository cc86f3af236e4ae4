"""Flower as the distributed engine: the same protocol, each client a process that owns its model.

* :mod:`~fedcofit_lite.flower.records` - the package's messages in Flower records;
* :mod:`~fedcofit_lite.flower.client_app` - the ClientApp (one client per SuperNode);
* :mod:`~fedcofit_lite.flower.cohort` - the clients as the server's methods see them, over a Flower grid;
* :mod:`~fedcofit_lite.flower.server_app` - the ServerApp (the federation loop, unchanged);
* :mod:`~fedcofit_lite.flower.simulation` - one machine, Flower's simulation engine (Ray);
* :mod:`~fedcofit_lite.flower.deploy` - a SuperLink and SuperNodes on this machine, and ``flwr run``.

Import needs ``flwr`` (``pip install "flwr[simulation]==1.42.0"``, part of ``make setup``).
"""

from .._lazy import lazy_submodules

# ``flt.flower.simulation`` works without importing it first (and without Flower until it is touched).
__getattr__, __dir__ = lazy_submodules(__name__, __path__)
