#!/usr/bin/env python
"""Do the scores of a preset change with the compute dtype? bf16 against fp32, same seeds.

Runs ``python -m fedcofit_lite run`` of a preset once per (seed, dtype), one
after another, and compares the test exact match of the final stage. The
difference bf16 - fp32 is paired: the same seed gives both runs the same
partition, adapter start and test items, so each (seed, client, test item)
cell is scored under both dtypes. The interval is :mod:`fedcofit_lite.analysis.stats`'
paired bootstrap over the seeds and then those cells within each drawn seed (2,000 draws).

Example::

    python benchmarks/precision_scores.py --config cpu --seeds 0,1,2 --out /tmp/precision
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from fedcofit_lite.analysis import stats
from fedcofit_lite.tasks.evaluate import exact_match

DTYPES = ("bfloat16", "float32")


def run(config: str, seed: int, dtype: str, folder: Path, extra: list[str]) -> float:
    """One run into ``folder``; returns its wall seconds (a finished folder is kept and its recorded time read back)."""
    if (folder / "summary.txt").exists():
        saved = folder / "wall_seconds.txt"
        return float(saved.read_text()) if saved.exists() else float("nan")
    cmd = [sys.executable, "-m", "fedcofit_lite", "run", "--config", config, "--run-dir", str(folder)]
    cmd += ["--set", f"seed={seed}", "--set", f"model.dtype={dtype}", *[a for s in extra for a in ("--set", s)]]
    print("[precision]", " ".join(cmd[1:]), file=sys.stderr, flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    (folder / "wall_seconds.txt").write_text(f"{wall:.1f}\n")
    return wall


def cell_scores(folder: Path) -> dict[tuple[str, str], float]:
    """(client, test id) -> exact match of the final stage's predictions."""
    stages = sorted((folder / "predictions").glob("round_*.jsonl"), key=lambda p: int(p.stem.split("_")[1]))
    final = stages[-1] if stages else folder / "predictions" / "local.jsonl"
    rows = [json.loads(line) for line in final.read_text().splitlines() if line.strip()]
    return {(r["client"], r["id"]): exact_match(r["prediction"], r["reference"]) for r in rows}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="cpu")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", type=Path, default=Path("runs/precision"))
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    wall: dict[str, list[float]] = {d: [] for d in DTYPES}
    cells: dict[str, dict[int, dict]] = {d: {} for d in DTYPES}
    for seed in seeds:
        for dtype in DTYPES:
            folder = args.out / f"{dtype}-seed{seed}"
            wall[dtype].append(run(args.config, seed, dtype, folder, args.set))
            cells[dtype][seed] = cell_scores(folder)
    lines = [f"{'seed':<6}{'bf16 EM':>9}{'fp32 EM':>9}{'bf16-fp32':>11}{'bf16 s':>8}{'fp32 s':>8}"]
    paired: dict[str, list[np.ndarray]] = {d: [] for d in DTYPES}  # per seed, one score per (client, test item)
    for k, seed in enumerate(seeds):
        keys = sorted(cells["float32"][seed])
        for d in DTYPES:
            paired[d].append(np.array([cells[d][seed][key] for key in keys]))
        a, b = paired["bfloat16"][-1], paired["float32"][-1]
        lines.append(
            f"{seed:<6}{a.mean():>9.3f}{b.mean():>9.3f}{a.mean() - b.mean():>+11.3f}{wall['bfloat16'][k]:>8.0f}{wall['float32'][k]:>8.0f}"
        )
    d = stats.difference(paired, "bfloat16", "float32")  # paired bootstrap over cells, combined over seeds
    bf, fp = (float(np.mean([a.mean() for a in paired[x]])) for x in DTYPES)
    lines.append(f"{'mean':<6}{bf:>9.3f}{fp:>9.3f}{d.mean:>+11.3f}")
    lines.append(
        f"bf16 - fp32 over {len(seeds)} seeds x {len(paired['float32'][0])} (client, test item) cells: {d.mean:+.3f}, "
        f"95% bootstrap interval [{d.lo:+.3f}, {d.hi:+.3f}]"
        + (
            "; zero is outside: the dtype changes the score"
            if d.excludes(0.0)
            else "; zero is inside: not distinguishable"
        )
    )
    print("\n".join(lines))
    (args.out / "precision_scores.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
