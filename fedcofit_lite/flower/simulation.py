"""One machine, Flower's simulation engine: the ServerApp in this process, one ClientApp per client in Ray workers.

>>> from fedcofit_lite.config import load_config
>>> from fedcofit_lite.flower.simulation import simulate
>>> result = simulate(load_config("ci"))  # doctest: +SKIP

This uses ``flwr.simulation.run_simulation`` (Flower marks it deprecated in favour of ``flwr run`` against a
simulation SuperLink, which :mod:`fedcofit_lite.flower.deploy` drives; both run the same apps).
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..federation.loop import RunResult

log = logging.getLogger(__name__)


def simulate(
    cfg: RunConfig,
    run_dir: str | Path | None = None,
    method: str | None = None,
    cpus_per_client: int = 1,
    threads_per_client: int = 1,
    progress: bool = False,
) -> RunResult:
    """Run one method of ``cfg`` on Flower's simulation engine; returns the run (its folder is like any other run's).

    Each client is a ClientApp in a Ray worker with its own model; ``cpus_per_client`` sets how many run at once
    (CPUs / cpus_per_client), ``threads_per_client`` torch's threads in each.
    """
    try:
        from flwr.serverapp import ServerApp
        from flwr.simulation import run_simulation
    except ImportError as err:  # the simulation extra is missing
        raise ImportError(
            f"Flower's simulation engine is not installed ({err}): pip install 'flwr[simulation]==1.42.0'."
        ) from None
    from .client_app import app as client_app
    from .server_app import run_on_grid

    cfg = cfg.validate()
    out: dict[str, Any] = {}
    server = ServerApp()

    @server.main()
    def _main(grid: Any, context: Any) -> None:  # runs in a thread of this process
        out["result"] = run_on_grid(grid, cfg, run_dir=run_dir, method=method, wait_s=120.0, progress=progress)

    os.environ.setdefault("FEDCOFIT_CLIENT_THREADS", str(threads_per_client))  # each ClientApp reads it (Ray inherits)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    init = {"num_cpus": os.cpu_count() or 1, "num_gpus": 0, "logging_level": "ERROR", "log_to_driver": False}
    backend = {"client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0}, "init_args": init}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_simulation(
            server_app=server, client_app=client_app, num_supernodes=cfg.federation.n_clients, backend_config=backend
        )
    if "result" not in out:
        raise RuntimeError("the Flower simulation ended without a result: see the log above for the ServerApp's error.")
    return out["result"]
