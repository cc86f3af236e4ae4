"""Copy a study's finished sweep cells into the repository, with a manifest of what ran where and what it cost.

    python tools/ship_study.py runs/study/expert notebooks/reference/study/expert --what "the expert clients"

A study runs in slices (``python -m fedcofit_lite sweep ... --run-dir runs/study/NAME``, the same command
again to resume or extend). After each slice this copies every finished cell (``summary.json``) and its
group's shared files into DST, leaving out what the clone should not carry: the local-stage adapters
(``shared/``, megabytes per client; a later slice that needs them retrains the shared stages, from the
same seed) and the server's embeddings (``embeddings/``; replay and the rule benchmark embed the answers
again with the run's embedder). Git compresses the JSON Lines it stores. ``manifest.json`` records the
commands, the package version and commit, the machine, and per cell its wall and CPU seconds (from the
metrics rows: a slice that ran beside other work still gives its CPU time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {"shared", "embeddings", "checkpoint", "figures"}


def finished_cells(src: Path) -> list[Path]:
    """Every cell folder of a sweep that holds its ``summary.json``."""
    return sorted(p.parent for p in src.glob("clients_*/seed_*/**/summary.json"))


def copy_tree(src: Path, dst: Path) -> None:
    """``src`` into ``dst``, without the folders the clone leaves out."""
    for path in src.rglob("*"):
        rel = path.relative_to(src)
        if path.is_dir() or SKIP & set(rel.parts):
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def group_files(group: Path, dst_group: Path) -> None:
    """A group's own files (config, partition, models, shared-stage metrics and predictions), not its cells."""
    dst_group.mkdir(parents=True, exist_ok=True)
    for name in ("config.yaml", "partition.json", "models.json", "metrics.jsonl"):
        if (group / name).exists():
            shutil.copy2(group / name, dst_group / name)
    if (group / "predictions").exists():
        copy_tree(group / "predictions", dst_group / "predictions")


def cell_costs(cell: Path, shared: Path | None = None) -> dict[str, float]:
    """Wall and CPU seconds of a cell, summed over its metrics rows; without the rows it took from ``shared`` (its
    group's metrics: the base and local stages run once per group, counted once, in the group's own entry)."""
    rows = read_rows(cell / "metrics.jsonl")
    once = {(r["stage"], r.get("cpu_seconds")) for r in read_rows(shared)} if shared else set()
    rows = [r for r in rows if (r["stage"], r.get("cpu_seconds")) not in once]
    wall = sum(sum(r.get("seconds", {}).values()) for r in rows)
    return {"wall_s": round(wall, 1), "cpu_s": round(sum(r.get("cpu_seconds", 0.0) for r in rows), 1)}


def slices(src: Path) -> list[str]:
    """How the slices ran: the folder's own ``slices.log``, else the study's (``runs/study/slices.log``)."""
    for log in (src / "slices.log", src.parent / "slices.log"):
        if log.exists():
            return log.read_text().splitlines()
    return []


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="the sweep folder the slices ran into (runs/study/NAME)")
    p.add_argument("dst", help="where it is shipped (notebooks/reference/study/NAME)")
    p.add_argument("--what", required=True, help="one line: what this study asks")
    p.add_argument("--note", default="", help="anything a reader of the numbers should know (load, interruptions)")
    args = p.parse_args(argv)
    src, dst = Path(args.src), Path(args.dst)
    if not (src / "sweep.json").exists():
        print(f"error: {src} has no sweep.json: give the folder a `sweep` ran into.", file=sys.stderr)
        return 2
    cells = finished_cells(src)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "sweep.json", dst / "sweep.json")
    costs = {}
    for cell in cells:
        rel = cell.relative_to(src)
        group = src / Path(*rel.parts[:2])
        group_files(group, dst / Path(*rel.parts[:2]))
        shutil.rmtree(dst / rel, ignore_errors=True)
        copy_tree(cell, dst / rel)
        costs[str(rel)] = cell_costs(cell, group / "metrics.jsonl")
    for group in sorted({c.relative_to(src).parts[:2] for c in cells}):
        costs[str(Path(*group)) + " (shared stages)"] = cell_costs(src / Path(*group))  # base and local, once
    from fedcofit_lite import __version__
    from fedcofit_lite.energy import cpu_name

    meta = json.loads((src / "sweep.json").read_text())
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )  # shipped at
    reused = {cell for entry in meta.get("reused", []) for cell in entry["cells"]}
    reused |= {str(Path(*Path(c).parts[:2])) + " (shared stages)" for c in reused}  # their groups' stages came too
    manifest = {
        "what": args.what,
        "preset": meta.get("preset"),
        "commands": [c["command"] for c in meta.get("commands", [])],
        "started": [c["started"] for c in meta.get("commands", [])],
        "made": f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPU cores ({cpu_name()}), {platform.python_version()}",
        "package_version": __version__,
        "commit": commit.stdout.strip(),
        "cells": len(cells),
        "wall_s": round(sum(c["wall_s"] for k, c in costs.items() if k not in reused), 1),
        "cpu_s": round(sum(c["cpu_s"] for k, c in costs.items() if k not in reused), 1),
        "cost_per_cell": costs,
        # cells copied from another study folder (sweep --reuse): their cost is that folder's, not counted here again
        "reused": meta.get("reused", []),
        "note": args.note,
        # how the slices ran, and at which commit of the package (the study runs from its own worktree)
        "slices": slices(src),
    }
    (dst / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(
        f"{dst}: {len(cells)} finished cells, {manifest['wall_s'] / 3600:.2f} h wall, {manifest['cpu_s'] / 3600:.2f} h CPU"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
