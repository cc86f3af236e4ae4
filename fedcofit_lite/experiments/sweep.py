"""The public-budget sweep, run: how much public data, how many rounds, how many clients, where consensus meets FedAvg.

The folder's layout, its plan and its cells are :mod:`fedcofit_lite.analysis.sweep`'s.

**Shared stages run once.** A group scores the base model and trains the local stage once; every method of the group
starts from that snapshot (FFA-LoRA and centralized from the shared initial adapters, as in ``compare``). A method
that reads no public prompt runs once per group and stands beside every budget. Every cell runs to the largest of
``--rounds`` and is scored after each of ``--rounds`` only (``eval.rounds``): ``--rounds 2,4,8`` costs one run to
round 8 and three evaluations.

**Resumable and extendable.** A finished cell (``summary.json``) is never run again: the same command resumes an
interrupted sweep, and with more budgets, seeds, client counts or methods adds only their cells. Another ``--config``,
``--set`` or ``--rounds`` is refused (the finished cells ran and were scored under the folder's); a configuration
field added to the package since the folder was made is no difference at its default.

**Clients axis.** ``client_data="per_client"`` (the default) keeps each client's ``data.max_train_per_client``, so
more clients hold more private data in all; ``"total"`` keeps the preset's total, each client's cap ``cap x preset
clients / N``. ``consensus.min_agreement`` is a share of the clients, so it scales with N.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

from ..analysis.sweep import SWEEP_FORMAT, Cell, ClientData, SweepPlan, cells
from ..config import RunConfig, upgrade
from ..energy import cpu_name
from ..federation.loop import Federation
from ..federation.methods import Method, check_names, make_method
from ..progress import bar
from ..runlog import RunLog
from ..tasks.data import build_suite
from .compare import SharedStart, run_method, run_shared_stages

log = logging.getLogger(__name__)

# the fields the axes set (data.n_test_per_family: compare.n_test_per_family sets it): the rest is the sweep's identity
AXIS_FIELDS = (("seed",), ("data", "n_public"), ("federation", "n_clients"), ("federation", "rounds"))
AXIS_FIELDS += (("data", "n_test_per_family"), ("compare", "methods"), ("name",), ("eval", "rounds"))
POOLS = "--set data.path=data/tasks_pool (1,120 public prompts; data/freeform_pool for the free-form suite: 240)"


def client_cap(cfg: RunConfig, n_clients: int, client_data: ClientData) -> int:
    """Each client's private-data cap with ``n_clients`` clients (``data.max_train_per_client`` of the preset's count)."""
    cap = cfg.data.max_train_per_client
    if client_data == "per_client":
        return cap
    if cap == 0:
        raise ValueError(
            "--client-data total divides the preset's data.max_train_per_client among the clients, but it is 0 (no cap): set one, e.g. --set data.max_train_per_client=48."
        )
    return max(1, round(cap * cfg.federation.n_clients / n_clients))


def group_config(cfg: RunConfig, plan: SweepPlan, n_clients: int, seed: int, budget: int) -> RunConfig:
    """The configuration of one group of ``cfg``'s sweep: its seed, client count and cap, the last round, a budget."""
    cap = client_cap(cfg, n_clients, plan.client_data)  # test items as compare scores: every one of a family by default
    data = replace(cfg.data, n_public=budget, max_train_per_client=cap, n_test_per_family=cfg.compare.n_test_per_family)
    federation = replace(cfg.federation, n_clients=n_clients, rounds=max(plan.rounds))
    compare = replace(cfg.compare, methods=list(plan.methods))
    evaluation = replace(cfg.eval, rounds=sorted(plan.rounds))  # only the rounds a curve reports are scored
    return replace(cfg, seed=seed, data=data, federation=federation, compare=compare, eval=evaluation).validate()


def identity(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` without the fields the axes set: what every cell of a sweep folder shares."""
    out = cfg.to_dict()
    for path in AXIS_FIELDS:
        node = out
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return out


_MISSING = object()


def config_differences(a: Any, b: Any, where: str = "", defaults: Any = None) -> list[str]:
    """Where the configuration dict ``b`` (given now) differs from ``a`` (a sweep folder's): ``field = new here, old in
    the folder``. A field the folder lacks is no difference when ``b`` holds its default (``defaults``, by default
    ``RunConfig()``'s): a new field's default keeps the behaviour the folder's cells ran with."""
    defaults = identity(RunConfig()) if defaults is None else defaults
    if a is _MISSING:
        return [] if b == defaults else [f"{where.rstrip('.')} = {b!r} here, not in the folder"]
    if isinstance(a, dict) and isinstance(b, dict):
        d = defaults if isinstance(defaults, dict) else {}
        return [
            diff
            for k in dict.fromkeys([*a, *b])
            for diff in config_differences(a.get(k, _MISSING), b.get(k), f"{where}{k}.", d.get(k, _MISSING))
        ]
    return [] if a == b else [f"{where.rstrip('.')} = {b!r} here, {a!r} in the folder"]


def check_budgets(cfg: RunConfig, budgets: Sequence[int]) -> None:
    """Refuse, before any training, a budget larger than the public prompts of ``data.path`` (naming the pools)."""
    if cfg.data.source:
        return  # instruction data cuts its public split itself, and says so when it is too small
    available = len(build_suite(replace(cfg, data=replace(cfg.data, n_public=0))).public)
    over = [b for b in budgets if b > available]
    if over:
        raise ValueError(
            f"--budgets {over}: data.path={cfg.data.path} holds {available} public prompts"
            f"{' of the families ' + ', '.join(cfg.data.families) if cfg.data.families else ''}; for larger budgets "
            f"use {POOLS}, written by data/generate.py --extra-public."
        )


def merge_plan(root: Path, cfg: RunConfig, plan: SweepPlan) -> tuple[SweepPlan, dict[str, Any]]:
    """The folder's whole plan with ``plan`` added, and its ``sweep.json`` so far; another configuration, or more rounds than the folder ran, is refused."""
    path = root / "sweep.json"
    meta: dict[str, Any] = {"format": SWEEP_FORMAT, "config": identity(cfg), "commands": []}
    if path.exists():
        meta = json.loads(path.read_text())
        differ = config_differences(upgrade(meta["config"]), identity(cfg))  # a folder of an earlier release too
        if differ:
            raise ValueError(
                f"{root} is a sweep of another configuration ({'; '.join(differ[:4])}): run it with the same "
                "--config and --set, or choose a new --run-dir."
            )
        before = SweepPlan(**meta["plan"])
        if max(plan.rounds) > max(before.rounds):
            raise ValueError(
                f"{root} ran its cells to round {max(before.rounds)}: give --rounds up to {max(before.rounds)} "
                "(the scores after each round are read from the cells), or choose a new --run-dir for more rounds."
            )
        new = sorted(set(plan.rounds) - set(before.rounds))
        if new:
            raise ValueError(
                f"{root} scores its cells after rounds {before.rounds} only (eval.rounds), not after {new}: give "
                f"--rounds {','.join(map(str, before.rounds))}, or choose a new --run-dir to report other rounds."
            )
        plan = before.merged(plan)
    return plan, meta


def reuse_cells(root: Path, source: str | Path, cfg: RunConfig, plan: SweepPlan, meta: dict[str, Any]) -> int:
    """Copy into ``root`` the finished cells of ``plan`` that the sweep folder ``source`` (same configuration, client
    data and report rounds) holds, with their groups' shared stages; return how many, recorded in ``meta``. A group
    without saved adapters (a shipped folder: its next cells need them), or one ``root`` ran itself, is not copied.

    A ``source`` of another ``data.path`` whose private and test records are the same files (a public pool of the
    suite) gives only the cells that read no public prompt: local, pooled and FedAvg-LoRA run on the same records."""
    source = Path(source)
    if not (source / "sweep.json").exists():
        raise ValueError(f"--reuse {source}: not a sweep folder (no sweep.json); give the folder a sweep wrote.")
    theirs = json.loads((source / "sweep.json").read_text())
    their_config = upgrade(theirs["config"])
    pool = _pool_of_same_records(their_config.get("data", {}), cfg)
    if pool:  # only the public prompts differ: compare the rest
        their_config = {**their_config, "data": {**their_config["data"], "path": cfg.data.path}}
    differ = config_differences(their_config, identity(cfg))
    other = SweepPlan(**theirs["plan"])
    if other.client_data != plan.client_data:
        differ.append(f"client_data = {plan.client_data} here, {other.client_data} there")
    if sorted(other.rounds) != sorted(plan.rounds):
        differ.append(f"report rounds {plan.rounds} here, {other.rounds} there")
    if differ:
        raise ValueError(f"--reuse {source}: a sweep of another configuration ({'; '.join(differ[:4])}).")
    copied: list[str] = []
    unsaved: set[Path] = set()
    for cell in (c for c in cells(root, plan) if not c.done):
        rel, group = cell.path.relative_to(root), cell.group.relative_to(root)
        mine, their_group = root / group, source / group
        if not (source / rel / "summary.json").exists() or (pool and cell.budget is not None):
            continue
        if not (their_group / SHARED / "state.json").exists():  # a shipped folder keeps no adapters
            if group not in unsaved:
                log.warning("--reuse: %s has no saved adapters (shared/): its cells run here", their_group)
            unsaved.add(group)
            continue
        if not (mine / "metrics.jsonl").exists():
            shutil.copytree(their_group, mine, ignore=partial(_cells_in, their_group))
        elif (mine / "metrics.jsonl").read_bytes() != (their_group / "metrics.jsonl").read_bytes():
            continue  # this folder ran its own shared stages for the group
        shutil.copytree(source / rel, cell.path, dirs_exist_ok=True)
        copied.append(str(rel))
    if copied:
        meta.setdefault("reused", []).append(
            {"from": str(source), "cells": copied, **({"data.path": pool} if pool else {})}
        )
        log.info("sweep: %d finished cells copied from %s", len(copied), source)
    if pool:
        log.info(
            "--reuse: %s ran on data.path=%s, whose private and test records are this suite's: only the cells that "
            "read no public prompt were copied; the public prompts differ, so the consensus cells run here",
            source, pool,
        )  # fmt: skip
    return len(copied)


def _pool_of_same_records(theirs: dict[str, Any], cfg: RunConfig) -> str:
    """``data.path`` of a sweep folder's configuration ``theirs`` when it is not ``cfg``'s but holds the same private
    and test records (``train.jsonl``, ``test.jsonl`` byte for byte: a public pool of the same suite), else ``""``.
    Relative paths are read from the working directory, as the sweep reads ``data.path``."""
    path = theirs.get("path")
    if cfg.data.source or theirs.get("source") or not path or Path(path) == Path(cfg.data.path):
        return ""
    files = [(Path(path) / name, Path(cfg.data.path) / name) for name in ("train.jsonl", "test.jsonl")]
    same = all(a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes() for a, b in files)
    return path if same else ""


def _cells_in(group: Path, folder: str, names: list[str]) -> list[str]:
    """The method and budget folders among ``names`` when ``folder`` is ``group`` (the rest is its shared stages)."""
    here = Path(folder)
    return [n for n in names if here == group and (here / n).is_dir() and n not in (SHARED, "predictions")]


def write_plan(root: Path, cfg: RunConfig, plan: SweepPlan, meta: dict[str, Any], command: str) -> None:
    """``sweep.json``: the configuration, the whole plan, and every command run into the folder, when and where."""
    made = f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPU cores ({cpu_name()})"
    meta = {**meta, "plan": asdict(plan), "preset": cfg.name}
    meta["commands"] = [*meta["commands"], {"command": command, "started": made}]
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps(meta, indent=1) + "\n")


def run_sweep(
    cfg: RunConfig,
    plan: SweepPlan,
    run_dir: str | Path,
    progress: bool = True,
    command: str = "",
    reuse: str | Path | None = None,
) -> Path:
    """Run every cell of ``plan`` that ``run_dir`` does not hold yet; return the folder (see the module docstring).

    Steps: 1. check the whole plan before any training; 2. per group, load the models once, run or load the shared
    stages; 3. run the missing cells. ``reuse``: a sweep folder whose finished cells are copied (:func:`reuse_cells`).
    """
    root = Path(run_dir)
    plan, meta = merge_plan(root, check_names(cfg), plan)
    check_budgets(cfg, plan.budgets)
    for n in plan.clients:  # 1. every group's configuration is valid (client_models per client, caps)
        check_names(group_config(cfg, plan, n, plan.seeds[0], plan.budgets[0]))
    before = (root / "sweep.json").read_text() if (root / "sweep.json").exists() else None
    if reuse:
        reuse_cells(root, reuse, cfg, plan, meta)
    write_plan(root, cfg, plan, meta, command)
    todo = [c for c in cells(root, plan) if not c.done]
    log.info("sweep %s: %d cells to run, %d finished", root, len(todo), len(cells(root, plan)) - len(todo))
    with bar(total=len(todo), desc="sweep cells", **({} if progress else {"disable": True})) as pbar:
        try:
            for (n, s), cells_of_group in itertools.groupby(todo, key=lambda c: (c.clients, c.seed)):
                group = list(cells_of_group)  # cells() lists a group's cells together
                budget = next((c.budget for c in group if c.budget), plan.budgets[0])
                _run_group(group_config(cfg, plan, n, s, budget), group, progress, pbar)
        except Exception:
            if not any(c.done for c in todo):  # refused before any cell (FedAvg across architectures): plan unchanged
                (root / "sweep.json").write_text(before) if before else (root / "sweep.json").unlink()
            raise
    return root


def _run_group(cfg: RunConfig, todo: list[Cell], progress: bool, pbar: Any) -> None:
    """2-3 of :func:`run_sweep` for one group: one model load, the shared stages once, then its missing cells."""
    folder = todo[0].group
    fed = Federation(cfg, runlog=RunLog(folder), progress=progress)
    initial = {c.client_id: c.model.get_tensors() for c in fed.clients if c.trainable}
    plan = {name: make_method(name, cfg) for name in dict.fromkeys(c.method for c in todo)}
    for method in plan.values():
        fed.prepare(method)  # refusals (FedAvg across architectures) before any training
    start = shared_start(fed, folder, list(plan.values()), initial)
    for cell in todo:
        at = f", {cell.budget} prompts" if cell.budget else ""
        log.info("sweep: %d clients, seed %d, %s%s", cell.clients, cell.seed, cell.method, at)
        if cell.budget is not None and cell.budget != fed.cfg.data.n_public:
            fed.reconfigure(replace(fed.cfg, data=replace(fed.cfg.data, n_public=cell.budget)))
        shutil.rmtree(cell.path, ignore_errors=True)  # an interrupted cell starts over
        run_method(fed, make_method(cell.method, fed.cfg), start, cell.path)
        pbar.update(1)


SHARED = "shared"  # the group's folder of the adapters after its local stage


def shared_start(fed: Federation, folder: Path, plan: list[Method], initial: dict[str, dict]) -> SharedStart:
    """The group's shared start: read back from ``folder`` when an earlier run saved it, else run and save it."""
    import safetensors.numpy

    rows = RunLog(folder).read_metrics()
    saved = folder / SHARED
    if [r["stage"] for r in rows] == ["base", "local"] and (saved / "state.json").exists():
        state = json.loads((saved / "state.json").read_text())
        adapters = {c: safetensors.numpy.load_file(str(saved / f"{c}.safetensors")) for c in state["adapters"]}
        log.info("sweep: the shared stages of %s are read back, not run again", folder)
        return SharedStart(rows, adapters, state["privacy"], initial)
    if rows[:1] and rows[0]["stage"] == "base" and not any(m.shares_local_stage for m in plan):
        return SharedStart(rows[:1], None, None, initial)
    (folder / "metrics.jsonl").unlink(missing_ok=True)
    start = run_shared_stages(fed, plan)
    if start.adapters is not None:
        shutil.rmtree(saved, ignore_errors=True)
        saved.mkdir()
        for c, tensors in start.adapters.items():
            safetensors.numpy.save_file(tensors, str(saved / f"{c}.safetensors"))
        state = {"adapters": list(start.adapters), "privacy": start.privacy}
        (saved / "state.json").write_text(json.dumps(state) + "\n")
    return start
