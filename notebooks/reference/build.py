"""Build the reference run shipped with the notebooks, with the package's own commands.

A workshop opens notebooks 03-06 on finished, real results (``flt.ui.workshop.ensure_run`` and
``ensure_seed_comparison`` pick this run up when the student has none of their own). This
script makes it for one preset, in two commands of the package:

1. ``python -m fedcofit_lite run --config PRESET`` (the quickstart run of notebooks 01 and 03-05);
2. ``python -m fedcofit_lite compare --config PRESET --seeds ... --methods ...`` (notebook 06's
   comparison: the seeds and methods of ``flt.ui.workshop.comparison_plan``);

then copies what the notebooks read into ``notebooks/reference/PRESET/`` (answers, pseudo-labels,
metrics, predictions, summaries, configs; not the adapters' checkpoint, not the server's
embeddings, not the HTML figures: the notebooks draw those from the data) and writes
``reference.json``: the layout version, the package version, the commands, when and on
what machine. ``tests/test_reference.py`` checks that the shipped run still matches the
preset and the package that read it.

    python notebooks/reference/build.py --preset cpu                    # runs both commands; reference.json keeps their wall times
    python notebooks/reference/build.py --preset cpu --quickstart-dir Q --seeds-dir S   # package runs made by those commands

Run it whenever a change of the package or of the preset makes ``tests/test_reference.py`` fail.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import fedcofit_lite as flt  # noqa: E402
from fedcofit_lite.energy import cpu_name  # noqa: E402

# What the notebooks do not read; all of it can be regenerated from the rest.
LEFT_OUT = ("checkpoint", "embeddings", "figures")


def commands(preset: str, quick: Path, seeds_dir: Path, seeds: list[int], methods: list[str]) -> list[str]:
    """The two package commands that make the reference, as a user would type them."""
    return [
        f"python -m fedcofit_lite run --config {preset} --run-dir {quick} --quiet",
        f"python -m fedcofit_lite compare --config {preset} --seeds {','.join(map(str, seeds))} "
        f"--methods {','.join(methods)} --run-dir {seeds_dir} --no-figures --quiet",
    ]


def run(cmd: str) -> float:
    """Run one package command (with this interpreter, offline); its wall time in seconds."""
    argv = cmd.split()
    argv[0] = sys.executable
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"})
    return time.perf_counter() - t0


def git_commit() -> str:
    """The commit whose code makes the runs (``-dirty`` when the work tree has changes), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def copy_pruned(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*LEFT_OUT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu")
    p.add_argument(
        "--quickstart-dir", type=Path, default=None, help="a finished `run` of the preset (default: run it now)"
    )
    p.add_argument(
        "--seeds-dir", type=Path, default=None, help="a finished `compare --seeds` of the preset (default: run it now)"
    )
    p.add_argument("--out", type=Path, default=None, help="default notebooks/reference/PRESET")
    p.add_argument(
        "--commit",
        default=None,
        help="the commit whose code made the runs given by --quickstart-dir/--seeds-dir (default: not recorded)",
    )
    p.add_argument("--allow-dirty", action="store_true", help="run the commands from a work tree with changes")
    args = p.parse_args(argv)
    given = args.quickstart_dir is not None or args.seeds_dir is not None
    here = git_commit()
    if not given and here.endswith("-dirty") and not args.allow_dirty:
        sys.exit(
            "build.py: the work tree has uncommitted changes, so no commit would name the code that makes the "
            "runs; commit first (or pass --allow-dirty, and the manifest records the commit with -dirty)."
        )
    # The manifest's commit names the code that made the runs: this checkout's when build.py runs the commands
    # now; for runs made earlier, the one --commit names (else "not recorded"), never the commit that ships them.
    made_by = (args.commit or "not recorded") if given else here
    out = args.out or flt.ui.workshop.REFERENCE_ROOT / args.preset
    cfg = flt.config.load_config(args.preset)
    seeds, methods = flt.ui.workshop.comparison_plan(cfg)
    scratch = Path(tempfile.mkdtemp(prefix="reference_"))
    quick, seeds_dir = args.quickstart_dir or scratch / "quickstart", args.seeds_dir or scratch / "seeds"
    cmds = commands(args.preset, quick, seeds_dir, seeds, methods)
    wall = {}
    if args.quickstart_dir is None:
        wall["quickstart_s"] = round(run(cmds[0]))
    if args.seeds_dir is None:
        wall["seeds_s"] = round(run(cmds[1]))

    staging = scratch / "staging"
    copy_pruned(quick, staging / "quickstart")
    (staging / "seeds").mkdir(parents=True)
    for s in seeds:
        copy_pruned(seeds_dir / f"seed_{s}", staging / "seeds" / f"seed_{s}")
    shutil.copy(seeds_dir / "comparison_seeds.txt", staging / "seeds" / "comparison_seeds.txt")
    import torch

    manifest = {
        "preset": args.preset,
        "format": flt.ui.workshop.REFERENCE_FORMAT,
        "package_version": flt.__version__,
        "commit": made_by,
        "seeds": seeds,
        "methods": methods,
        "commands": [c.replace(str(quick), "Q").replace(str(seeds_dir), "S") for c in cmds]
        + [f"python notebooks/reference/build.py --preset {args.preset}"],
        "made": f"{time.strftime('%Y-%m-%d')} on {os.cpu_count()} CPU cores ({cpu_name()}), torch {torch.__version__}",
        **({"wall_s": wall} if wall else {}),
    }
    (staging / flt.ui.workshop.REFERENCE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    problems = flt.ui.workshop.reference_problems(flt.ui.workshop.Reference.read(staging), cfg)
    if problems:
        sys.exit("build.py: these runs cannot stand for preset " + args.preset + ": " + "; ".join(problems))
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(staging, out)
    shutil.rmtree(scratch)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({size / 1e6:.1f} MB)")
    print((out / "seeds" / "comparison_seeds.txt").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
