"""Build the sweep folder notebook 12 reads (``notebooks/reference/sweep/``), with the package's own command.

Runs ``python -m fedcofit_lite sweep`` (or takes a finished sweep folder), then copies what the
notebook reads: ``sweep.json``, ``sweep.txt``, and per cell its metrics, predictions, answers,
pseudo-labels, configs and summaries; not the shared adapters, the server's embeddings or the
HTML figures (the notebook draws them from the data). ``manifest.json`` says the command, the
preset, the machine, the date and the wall time. Notebook 12 renders from whatever sweep folder is
there: replacing it with the full ``cpu`` sweep changes only the files.

    python notebooks/reference/build_sweep.py                               # the shipped small sweep, minutes
    python notebooks/reference/build_sweep.py --sweep-dir runs/sweep-budget  # a finished sweep (e.g. the cpu one)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import fedcofit_lite as flt  # noqa: E402

# The shipped sweep: the small preset, two budgets, two seeds, two rounds; a few minutes on 2 cores.
COMMAND = (
    "python -m fedcofit_lite sweep --config small --send-changed --budgets 14,28 --seeds 0,1 --rounds 1,2 "
    "--methods local,centralized,fedavg,consensus,consensus@vote --no-figures --quiet --run-dir {run_dir}"
)
LEFT_OUT = ("shared", "embeddings", "checkpoint", "figures")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep-dir", type=Path, default=None, help="a finished sweep folder (default: run COMMAND now)")
    p.add_argument("--out", type=Path, default=flt.ui.workshop.REFERENCE_ROOT / "sweep")
    p.add_argument("--note", default="", help="a line for the manifest, e.g. why this folder was made")
    args = p.parse_args(argv)
    wall = None
    run_dir = args.sweep_dir
    if run_dir is None:
        run_dir = Path(f"runs/reference-sweep-{time.strftime('%Y%m%d-%H%M%S')}")
        argv_ = COMMAND.format(run_dir=run_dir).split()
        argv_[0] = sys.executable
        t0 = time.perf_counter()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
        subprocess.run(argv_, check=True, cwd=ROOT, env=env)
        wall = round(time.perf_counter() - t0)
        run_dir = ROOT / run_dir
    meta = json.loads((run_dir / "sweep.json").read_text())
    import torch

    manifest = {
        "what": "a real sweep of the package, small enough to ship; the full study's commands are in "
        "`python -m fedcofit_lite sweep --help`",
        "preset": meta["preset"],
        "commands": [c["command"] for c in meta["commands"]],
        "made": f"{meta['commands'][0]['started']}, torch {torch.__version__}",
        "package_version": flt.__version__,
        **({"wall_s": wall} if wall is not None else {}),
        **({"note": args.note} if args.note else {}),
    }
    if args.out.exists():
        shutil.rmtree(args.out)
    shutil.copytree(run_dir, args.out, ignore=shutil.ignore_patterns(*LEFT_OUT))
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"wrote {args.out} ({size / 1e6:.2f} MB){f' in {wall} s' if wall else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
