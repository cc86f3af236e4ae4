"""Where each method wins (issue #13, item 4): the comparison on IID, Dirichlet(0.5) and one-family-per-client
partitions, with 4 and 8 clients, on the cpu preset.

Each setting is one ``compare --seeds`` folder ``<out>/<partition>-<n_clients>/``; a seed already
finished there is kept, so the sweep can be stopped and resumed, or extended with more seeds.

    python benchmarks/partition_sweep.py --seeds 0 --out runs/partitions            # about 55 min on 2 cores
    python benchmarks/partition_sweep.py --seeds 0,1 --out runs/partitions          # adds seed 1 to every setting
    python benchmarks/partition_sweep.py --seeds 0,1 --settings iid-4,by_family-4   # ... or to some
    python benchmarks/partition_sweep.py --summarize runs/partitions                # the table from the folders

The table: per setting, the final test exact match of each method with its 95% paired bootstrap
interval over test items (and seeds), the share of the local -> centralized gap each method
closes, and the bytes it moved.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fedcofit_lite.analysis import stats  # noqa: E402
from fedcofit_lite.analysis.compare import seed_table, summarize_seeds  # noqa: E402
from fedcofit_lite.config import load_config  # noqa: E402
from fedcofit_lite.experiments.compare import run_seeds  # noqa: E402

SETTINGS = [("iid", 4), ("dirichlet", 4), ("by_family", 4), ("iid", 8), ("dirichlet", 8), ("by_family", 8)]
METHODS = ["local", "consensus@vote", "fedavg", "centralized"]


def sweep(out: Path, seeds: list[int], config: str, methods: list[str], only: list[str] | None = None) -> None:
    for partition, n in SETTINGS:
        if only and f"{partition}-{n}" not in only:
            continue
        cfg = load_config(config, [f"data.partition={partition}", f"federation.n_clients={n}"])
        logging.info("setting %s-%d, seeds %s", partition, n, seeds)
        run_seeds(cfg, seeds, methods, run_dir=out / f"{partition}-{n}", progress=False)


def table(out: Path, methods: list[str]) -> str:
    lines = [
        "final test exact match, mean [95% paired bootstrap interval over test items and seeds]; "
        "minus local = paired difference to local (* = zero outside the interval); "
        "gap = share of the local -> centralized gap closed; bytes = up + down per run",
        "",
        f"{'setting':<14}{'seeds':>6}  {'method':<20}{'exact match':>24}{'minus local':>28}{'gap closed':>26}{'bytes':>14}",
    ]
    lines.append("-" * len(lines[-1]))
    for partition, n in SETTINGS:
        folder = out / f"{partition}-{n}"
        if not any(folder.glob("seed_*/comparison.json")):
            continue
        summary = summarize_seeds(folder)
        rows, _ = seed_table(summary, n_boot=2000)
        em = summary.scores["exact_match"][summary.final_stage()]
        order = {m: i for i, m in enumerate(methods)}
        for r in sorted(
            (r for r in rows if r["method"].split(" ")[0] in order), key=lambda r: order[r["method"].split(" ")[0]]
        ):
            gap = (
                r["gap"].format("{:+.2f}")
                if r["gap"] is not None and r["method"] not in ("local", "centralized")
                else "-"
            )
            diff = stats.difference(em, r["method"], "local", 2000) if r["method"] != "local" else None
            vs_local = (diff.format("{:+.3f}") + (" *" if diff.excludes(0.0) else "  ")) if diff else "-"
            lines.append(
                f"{partition + '-' + str(n):<14}{len(summary.seeds):>6}  {r['method']:<20}{r['em'].format():>24}{vs_local:>28}"
                f"{gap:>26}{r['bytes']:>14,.0f}"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/partitions"))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds [0]")
    parser.add_argument("--config", default="cpu")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--settings", default=None, help="only these, e.g. iid-4,by_family-4 [all six]")
    parser.add_argument("--summarize", type=Path, default=None, metavar="DIR", help="only print the table of DIR")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.summarize is None:
        only = args.settings.split(",") if args.settings else None
        known = [f"{p}-{n}" for p, n in SETTINGS]
        if only and not set(only) <= set(known):
            parser.error(f"--settings {sorted(set(only) - set(known))}: choose from {', '.join(known)}")
        sweep(args.out, [int(s) for s in args.seeds.split(",")], args.config, args.methods.split(","), only)
    print(table(args.summarize or args.out, args.methods.split(",")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
