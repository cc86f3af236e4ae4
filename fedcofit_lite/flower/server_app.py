"""The Flower ServerApp: the same federation loop and methods as in process, over a Flower ``Grid``.

The server builds the task suite, the embedder and the method's server as the in-process engine does; only the cohort
differs (:class:`~fedcofit_lite.flower.cohort.FlowerCohort`). It writes an ordinary run folder plus ``flower.json``
(the nodes, the bytes Flower's own records carried, the wall time). Its run config (``flower-app/pyproject.toml``, or
``flwr run --run-config``): ``preset`` (a name or a YAML path, default ``ci``), ``overrides`` (``key=value`` separated
by ``;``), ``method``, ``run-dir`` (an absolute path) and ``wait-s`` (how long to wait for the SuperNodes).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from ..config import RunConfig, load_config
from ..federation.loop import Federation, RunResult
from ..runlog import RunLog
from .cohort import FlowerCohort

log = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the method of the run config's ``preset`` + ``overrides`` (see the module docstring) on ``grid``."""
    rc = dict(context.run_config)
    overrides = [o.strip() for o in str(rc.get("overrides", "")).split(";") if o.strip()]
    cfg = load_config(str(rc.get("preset", "ci")), overrides)
    run_dir, method = str(rc.get("run-dir", "")) or None, str(rc.get("method", "")) or None
    result = run_on_grid(grid, cfg, run_dir=run_dir, method=method, wait_s=float(rc.get("wait-s", 300.0)))
    print(f"fedcofit_lite on Flower: run folder {result.run_dir}\n{result.table}", flush=True)


def run_on_grid(
    grid: Any,
    cfg: RunConfig,
    run_dir: str | Path | None = None,
    method: str | None = None,
    wait_s: float = 300.0,
    progress: bool = False,
) -> RunResult:
    """Run one method of ``cfg`` end to end with the clients behind ``grid``; returns the run like :func:`run_federation`."""
    start = time.perf_counter()
    cohort = FlowerCohort(grid, cfg, wait_s=wait_s)
    fed = Federation(cfg, runlog=RunLog(run_dir) if run_dir is not None else None, progress=progress, cohort=cohort)
    result = fed.run(method)
    record = {str(k): v for k, v in sorted(cohort.record_bytes_by_round.items())}
    wire = {str(k): v for k, v in sorted(fed.wire.bytes_by_round.items())}
    nodes = {c: int(n) for c, n in cohort.node.items()}
    flower = {"engine": "flower", "nodes": nodes, "record_bytes_by_round": record, "wire_bytes_by_round": wire}
    fed.runlog.write_json("flower.json", {**flower, "wall_s": time.perf_counter() - start})
    return result


def read_flower_record(run_dir: str | Path) -> dict[str, Any]:
    """``flower.json`` of a run made on Flower."""
    return json.loads((Path(run_dir) / "flower.json").read_text())
