"""Measure what a class waits for on this machine, and write it where the guide, the README, the notebooks and the configs read it.

    python tools/measure_times.py                          # every notebook on cpu, then on small; the warm-up commands; make run
    python tools/measure_times.py --presets small          # one preset
    python tools/measure_times.py --notebooks 01,05 --commands none
    python tools/measure_times.py --list                   # what it would run, and nothing else
    make times                                             # the first line

What it measures, step by step:

1. per preset, a scratch copy of ``notebooks/`` with no workshop runs in it (a fresh clone, as a
   student has it in class); every notebook runs there in a fresh kernel (nbclient), in the order
   of the instructor's guide (``docs/_data/agenda.json``: the core path, then the take-home
   notebooks), so a notebook reuses what the ones before it made, as in class;
2. the commands the guide names: the two model-cache warm-ups, each with an empty cache (so the
   one-time conversion is in the time), and ``make run`` (``python -m fedcofit_lite run --config cpu``);
3. beside each time: the CPU seconds of the processes it started (the kernel or command and their
   children, as far as the operating system reports them), the 1-minute load average when it
   started (other work on the machine slows it down), the machine (CPU model, cores, native bf16 or
   float32, torch), the date and the commit;
4. writes them into ``docs/_data/timings.json`` (a record per key: a new measurement replaces the
   old one, the others stay), then renders the documentation (``tools/render_docs.py``): the
   guide's tables, the README's and the configs' time lines. The notebooks read the file when they
   run, so their first cell prints the new time.

An instructor runs it on the classroom machine before class and gets their own table; it exits
non-zero when a notebook or command failed (its time is then not written).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
TIMINGS = ROOT / "docs" / "_data" / "timings.json"
AGENDA = ROOT / "docs" / "_data" / "agenda.json"
PRESETS = ("cpu", "small")
ABOUT = (
    "Written by `python tools/measure_times.py` (make times): each notebook in a fresh kernel, in the order of the "
    "instructor's guide, from a copy of notebooks/ with no workshop runs; each command as the guide names it. "
    "Beside each time: CPU seconds of what it started, the 1-minute load average when it started, the machine, the "
    "date and the commit. Run it on your machine for your own table."
)
# The commands the guide and the README name, as a user types them. The warm-ups run with an empty model cache.
COMMANDS: dict[str, dict[str, Any]] = {
    "warmup-smollm2": {
        "what": "warm the model cache: convert SmolLM2-135M from its GGUF (once per machine)",
        "command": "python -m fedcofit_lite run --config small --set federation.rounds=0",
        "cold_cache": True,
    },
    "warmup-gemma": {
        "what": "warm the model cache: convert Gemma-3-270M from its GGUF (once per machine)",
        "command": "python -m fedcofit_lite run --config small-mixed --set federation.rounds=0",
        "cold_cache": True,
    },
    "run-cpu": {
        "what": "`make run`: one federated run of the `cpu` preset",
        "command": "python -m fedcofit_lite run --config cpu",
        "cold_cache": False,
    },
    "make-test": {  # what CI runs: a clone of this checkout's last commit, its own environment, the set-up included
        "what": "`make test`: the test suite from a fresh clone of the last commit, set-up included (what CI runs)",
        "command": "git clone . <scratch> && bash .ci/run",
        "cold_cache": False,
    },
}
GROUPS = {"warmup": ["warmup-smollm2", "warmup-gemma"], "run": ["run-cpu"], "test": ["make-test"]}


# -- the machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What a time depends on: CPU model, cores, native bf16 (else float32), torch and Python."""
    import torch

    from fedcofit_lite.energy import cpu_name
    from fedcofit_lite.engine.precision import cpu_has_native_bf16

    return {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "bf16": cpu_has_native_bf16(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def commit() -> str:
    """The commit of this checkout (``-dirty`` with uncommitted changes to tracked files), or ``unknown``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    if head.returncode:
        return "unknown"
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


# -- the plan -------------------------------------------------------------------------------------


def class_order(agenda: Path = AGENDA) -> list[str]:
    """The notebooks in the order a class runs them: the agenda's core path, then the take-home ones."""
    data = json.loads(agenda.read_text())
    core = [nb for slot in data["core"] for nb in slot["notebooks"]]
    return core + [t["notebook"] for t in data["take_home"]]


def notebook_file(number: str) -> Path:
    (path,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
    return path


@dataclass(frozen=True)
class Step:
    """One thing to time: a notebook on a preset, or a command."""

    key: str
    what: str
    command: str
    notebook: str | None = None
    preset: str | None = None
    cold_cache: bool = False


def plan(presets: list[str], notebooks: list[str] | None, commands: list[str]) -> list[Step]:
    order = class_order()
    chosen = [nb for nb in order if notebooks is None or nb in notebooks]
    steps = []
    for preset in presets:
        for nb in chosen:
            name = notebook_file(nb).name
            steps.append(
                Step(
                    f"nb{nb}-{preset}",
                    f"notebook {nb} on `{preset}`, in a fresh kernel, after the notebooks before it in the guide's order",
                    f"FEDCOFIT_PRESET={preset} jupyter execute notebooks/{name}",
                    nb,
                    preset,
                )
            )
    for key in commands:
        c = COMMANDS[key]
        steps.append(Step(key, c["what"], c["command"], cold_cache=c["cold_cache"]))
    return steps


# -- measuring ----------------------------------------------------------------------------------------

EXECUTE = """
import sys, nbclient, nbformat
nb = nbformat.read(sys.argv[1], as_version=4)
client = nbclient.NotebookClient(nb, timeout=None, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}})
try:
    client.execute()
finally:
    nbformat.write(nb, sys.argv[1])
"""


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, float, float, int]:
    """Run ``argv``; (wall seconds, CPU seconds of it and its reaped children, load average at start, exit status)."""
    load = os.getloadavg()[0]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with log.open("w") as out:
        rc = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - t0, _children_cpu() - cpu0, load, rc


def base_env() -> dict[str, str]:
    """The environment a student's kernel has, plus this checkout first on the path and offline hubs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDCOFIT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TQDM_DISABLE="1")
    return env


def measure(
    steps: list[Step], scratch: Path, save: Callable[[list[dict[str, Any]]], None] = lambda records: None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Run every step; the records of those that finished, and a line per failure.

    ``save`` gets the records so far after each finished step, so a measurement stopped half-way keeps what it took.
    """
    host, made_by, records, failed = machine(), commit(), [], []
    folders: dict[str, Path] = {}
    for step in steps:
        env = base_env()
        if step.notebook:
            folder = folders.get(step.preset)
            if folder is None:  # one copy of notebooks/ per preset, with no runs: a fresh clone
                folder = folders[step.preset] = scratch / step.preset
                folder.mkdir(parents=True)
                for nb in NOTEBOOKS.glob("*.ipynb"):
                    shutil.copy(nb, folder / nb.name)
            env["FEDCOFIT_PRESET"] = step.preset
            target = folder / notebook_file(step.notebook).name
            argv = [sys.executable, "-c", EXECUTE, str(target), str(folder)]
            cwd = folder
        elif step.key == "make-test":
            cwd = scratch / step.key
            subprocess.run(["git", "clone", "--quiet", str(ROOT), str(cwd)], check=True)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("FEDCOFIT_", "PYTHONPATH", "VIRTUAL_ENV"))}
            env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
            argv = ["bash", ".ci/run"]
        else:
            cwd = scratch / step.key
            cwd.mkdir(parents=True)
            if step.cold_cache:
                env["FEDCOFIT_CACHE"] = str(cwd / "model-cache")  # empty: the conversion is part of the time
            argv = [sys.executable, *step.command.split()[1:]]
        print(f"measure_times: {step.key}: {step.command} ...", file=sys.stderr, flush=True)
        wall, cpu, load, rc = timed(argv, cwd, env, scratch / f"{step.key}.log")
        if rc:
            tail = "\n".join((scratch / f"{step.key}.log").read_text().splitlines()[-15:])
            failed.append(f"{step.key}: exit status {rc}; its log ends with:\n{tail}")
            print(f"measure_times: {step.key} FAILED after {wall:.0f} s", file=sys.stderr, flush=True)
            continue
        print(f"measure_times: {step.key}: {wall:.0f} s (CPU {cpu:.0f} s, load {load:.2f})", file=sys.stderr)
        records.append(
            {
                "key": step.key,
                **({"notebook": step.notebook, "preset": step.preset} if step.notebook else {}),
                "what": step.what,
                "command": step.command,
                "seconds": round(wall, 1),
                "cpu_seconds": round(cpu, 1),
                "load_1min": round(load, 2),
                "machine": host,
                "date": dt.date.today().isoformat(),
                "commit": made_by,
                "how": "tools/measure_times.py",
            }
        )
        save(records)
    return records, failed


def merge(path: Path, new: list[dict[str, Any]]) -> dict[str, Any]:
    """The timings file with ``new`` records in place of those of the same key; the others stay, in a stable order."""
    old = json.loads(path.read_text())["timings"] if path.exists() else []
    by_key = {t["key"]: t for t in old} | {t["key"]: t for t in new}
    order = {nb: i for i, nb in enumerate(class_order())}

    def rank(t: dict[str, Any]) -> tuple:
        if "notebook" in t:
            return (0, PRESETS.index(t["preset"]) if t["preset"] in PRESETS else 9, order.get(t["notebook"], 99))
        return (1, list(COMMANDS).index(t["key"]) if t["key"] in COMMANDS else 9, t["key"])

    return {"about": ABOUT, "timings": sorted(by_key.values(), key=rank)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS), help=f"presets to run the notebooks on (default {PRESETS})")
    p.add_argument("--notebooks", default="all", help="numbers (01,05) or 'all' (default), in the guide's order")
    p.add_argument(
        "--commands",
        default="warmup,run",
        help="command groups to time: warmup (the two cache warm-ups), run (make run), test (make test from a fresh "
        "clone, as CI runs it), none (default warmup,run)",
    )
    p.add_argument(
        "--out", type=Path, default=TIMINGS, help="the timings file to update (default docs/_data/timings.json)"
    )
    p.add_argument("--no-render", action="store_true", help="do not render the documentation afterwards")
    p.add_argument("--list", action="store_true", help="print what would run, run nothing")
    p.add_argument("--keep", type=Path, default=None, help="keep the scratch folder (executed notebooks, logs) here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    presets = [s for s in args.presets.split(",") if s]
    notebooks = None if args.notebooks == "all" else [n.zfill(2) for n in args.notebooks.split(",")]
    groups = [] if args.commands == "none" else args.commands.split(",")
    unknown = [g for g in groups if g not in GROUPS]
    if unknown:
        p.error(f"--commands: unknown {unknown}; choose from {', '.join(GROUPS)} or none")
    steps = plan(presets, notebooks, [k for g in groups for k in GROUPS[g]])
    if args.list:
        for s in steps:
            print(f"{s.key:16s} {s.command}")
        return 0

    def save(records: list[dict[str, Any]]) -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(merge(args.out, records), indent=1) + "\n")

    scratch = Path(tempfile.mkdtemp(prefix="measure_times_"))
    try:
        records, failed = measure(steps, scratch, save)
    finally:
        if args.keep:
            shutil.copytree(scratch, args.keep, dirs_exist_ok=True)
        shutil.rmtree(scratch, ignore_errors=True)
    if records:
        print(f"wrote {len(records)} times to {args.out}", file=sys.stderr)
    if records and not args.no_render and args.out.resolve() == TIMINGS.resolve():
        sys.path.insert(0, str(ROOT / "tools"))
        import render_docs

        render_docs.main([])
    for f in failed:
        print(f"measure_times: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
