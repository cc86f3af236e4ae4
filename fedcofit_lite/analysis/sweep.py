"""The public-budget sweep: how much public data, how many rounds, how many clients, where consensus meets FedAvg.

One sweep folder is the cartesian product of its axes, run cell by cell; a cell is one method of one
group (a client count and a seed: one partition, one shared start), and for the methods that read the
public prompts (consensus under any rule) one public budget too::

    <sweep_dir>/
        sweep.json                       the plan (axes, configuration, commands), merged as it is extended
        clients_<N>/seed_<S>/            a group: config.yaml, partition.json, models.json, and the shared
                                         stages (base, local) in metrics.jsonl and predictions/
            shared/                      the clients' adapters after the local stage (safetensors), so a
                                         later extension starts from them without training again
            fedavg/ ffa/ local/ centralized/                 the methods that read no public prompt: once
            public_<B>/consensus/ public_<B>/consensus@vote/ the consensus rules at a budget of B prompts

**Shared stages run once.** A group scores the base model and trains the local stage once; every method
of the group starts from that snapshot (FFA-LoRA and centralized from the shared initial adapters, as in
``compare``). The methods that do not read the public prompts (what they send is not ``answers`` in
:data:`~fedcofit_lite.federation.methods.METHODS`) do not depend on the budget: they run once per group
and stand beside every budget. The rounds axis needs no cells of its own: every cell runs to the
largest of ``--rounds`` and the scores after each round are in its metrics (``round_2``, ``round_4``).

**Resumable and extendable.** A finished cell (``summary.json``) is never run again; the same command
resumes an interrupted sweep, and the same command with more budgets, seeds, client counts, methods or
report rounds (up to the folder's last round) adds only their cells. The folder's configuration is
fixed at its first run: another ``--config`` or ``--set`` is refused, as are more rounds than it ran.

**Clients axis.** ``client_data="per_client"`` (the default) keeps each client's ``data.max_train_per_client``,
so more clients hold more private data in all; ``"total"`` keeps the federation's total of the preset's
clients x its cap, each client's cap ``cap x preset clients / N``. ``consensus.min_agreement`` is a share
of the clients, so it scales with N.

:mod:`fedcofit_lite.analysis.frontier` reads the folder (curves, intervals, time to accuracy, the verdict) and
:mod:`fedcofit_lite.analysis.sweepreport` prints it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..config import RunConfig, upgrade
from ..progress import bar
from ..runlog import RunLog
from .compare import SharedStart, run_method, run_shared_stages

if TYPE_CHECKING:  # the engine loads only to run a sweep, not to read one
    from ..federation.loop import Federation
    from ..federation.methods import Method

log = logging.getLogger(__name__)

SWEEP_FORMAT = 1
ClientData = Literal["per_client", "total"]
# the fields the axes set (data.n_test_per_family: compare.n_test_per_family sets it): the rest is the sweep's identity
AXIS_FIELDS = (("seed",), ("data", "n_public"), ("federation", "n_clients"), ("federation", "rounds"))
AXIS_FIELDS += (("data", "n_test_per_family"), ("compare", "methods"), ("name",))
POOLS = "--set data.path=data/tasks_pool (1,120 public prompts; data/freeform_pool for the free-form suite: 240)"


@dataclass(frozen=True)
class SweepPlan:
    """The axes of a sweep: public ``budgets`` (prompts per round), ``seeds``, ``methods``, client counts, report rounds.

    Every cell runs to ``max(rounds)``; the scores after each of ``rounds`` are read from its metrics.
    ``client_data`` says what stays fixed when the client count moves (see the module docstring).
    """

    budgets: list[int]
    seeds: list[int]
    methods: list[str]
    clients: list[int]
    rounds: list[int]
    client_data: ClientData = "per_client"

    def __post_init__(self) -> None:
        for name in ("budgets", "seeds", "methods", "clients", "rounds"):
            values = getattr(self, name)
            if not values:
                raise ValueError(f"the sweep needs at least one value of --{name}.")
            if len(set(values)) != len(values):
                raise ValueError(f"--{name} {values}: each value once.")
        for name, low in (("budgets", 1), ("seeds", 0), ("clients", 1), ("rounds", 1)):
            bad = [v for v in getattr(self, name) if v < low]
            if bad:
                raise ValueError(f"--{name} {bad}: must be >= {low}.")
        if self.client_data not in ("per_client", "total"):
            raise ValueError(f"--client-data {self.client_data!r}: choose per-client or total.")

    def merged(self, other: SweepPlan) -> SweepPlan:
        """This plan with ``other``'s values added (in order, each once); ``client_data`` must agree."""
        if other.client_data != self.client_data:
            raise ValueError(
                f"this sweep folder holds client_data={self.client_data}, not {other.client_data}: "
                "keep --client-data as it was, or choose a new --run-dir."
            )
        both = {k: list(dict.fromkeys([*getattr(self, k), *getattr(other, k)])) for k in ("budgets", "seeds")}
        more = {k: list(dict.fromkeys([*getattr(self, k), *getattr(other, k)])) for k in ("methods", "clients")}
        rounds = sorted({*self.rounds, *other.rounds})
        return SweepPlan(
            sorted(both["budgets"]), sorted(both["seeds"]), **more, rounds=rounds, client_data=self.client_data
        )


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: ``method`` on the group (``clients``, ``seed``), at ``budget`` when it reads the public prompts."""

    clients: int
    seed: int
    method: str
    budget: int | None
    path: Path = field(compare=False)

    @property
    def group(self) -> Path:
        """The group's folder (its shared stages)."""
        return self.path.parents[1] if self.budget is not None else self.path.parent

    @property
    def done(self) -> bool:
        return (self.path / "summary.json").exists()


def reads_public(method: str) -> bool:
    """True when ``method`` answers the public prompts (its cells have a budget): what it sends is ``answers``."""
    from ..federation.methods import method_spec

    spec = method_spec(method)
    return spec is not None and spec.sends == "answers"


def cells(root: str | Path, plan: SweepPlan) -> list[Cell]:
    """Every cell of ``plan`` in the folder ``root``, in the order a sweep runs them (budget-free methods first)."""
    root = Path(root)
    out = []
    for n in plan.clients:
        for s in plan.seeds:
            group = root / f"clients_{n}" / f"seed_{s}"
            out += [Cell(n, s, m, None, group / m) for m in plan.methods if not reads_public(m)]
            out += [
                Cell(n, s, m, b, group / f"public_{b}" / m)
                for b in plan.budgets
                for m in plan.methods
                if reads_public(m)
            ]
    return out


def client_cap(cfg: RunConfig, n_clients: int, client_data: ClientData) -> int:
    """Each client's private-data cap with ``n_clients`` clients (``data.max_train_per_client`` of the preset's count)."""
    cap = cfg.data.max_train_per_client
    if client_data == "per_client":
        return cap
    if cap == 0:
        raise ValueError(
            "--client-data total divides the preset's data.max_train_per_client among the clients, but it is 0 "
            "(no cap): set one, e.g. --set data.max_train_per_client=48."
        )
    return max(1, round(cap * cfg.federation.n_clients / n_clients))


def group_config(cfg: RunConfig, plan: SweepPlan, n_clients: int, seed: int, budget: int) -> RunConfig:
    """The configuration of one group of ``cfg``'s sweep: its seed, client count and cap, the last round, a budget."""
    data = replace(
        cfg.data,
        n_public=budget,
        max_train_per_client=client_cap(cfg, n_clients, plan.client_data),
        n_test_per_family=cfg.compare.n_test_per_family,  # as compare scores: every test item of a family by default
    )
    federation = replace(cfg.federation, n_clients=n_clients, rounds=max(plan.rounds))
    compare = replace(cfg.compare, methods=list(plan.methods))
    return replace(cfg, seed=seed, data=data, federation=federation, compare=compare).validate()


def identity(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` without the fields the axes set: what every cell of a sweep folder shares."""
    out = cfg.to_dict()
    for path in AXIS_FIELDS:
        node = out
        for key in path[:-1]:
            node = node[key]
        node.pop(path[-1], None)
    return out


def config_differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where the configuration dict ``b`` (given now) differs from ``a`` (a sweep folder's): ``field = new here, old in the folder``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in dict.fromkeys([*a, *b]) for d in config_differences(a.get(k), b.get(k), f"{where}{k}.")]
    return [] if a == b else [f"{where.rstrip('.')} = {b!r} here, {a!r} in the folder"]


def check_budgets(cfg: RunConfig, budgets: Sequence[int]) -> None:
    """Refuse, before any training, a budget larger than the public prompts of ``data.path`` (naming the pools)."""
    if cfg.data.source:
        return  # instruction data cuts its public split itself, and says so when it is too small
    from ..tasks.data import build_suite

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
        plan = before.merged(plan)
    return plan, meta


def write_plan(root: Path, cfg: RunConfig, plan: SweepPlan, meta: dict[str, Any], command: str) -> None:
    """``sweep.json``: the configuration, the whole plan, and every command run into the folder, when and where."""
    made = f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPU cores ({cpu_name()})"
    meta = {**meta, "plan": asdict(plan), "preset": cfg.name}
    meta["commands"] = [*meta["commands"], {"command": command, "started": made}]
    root.mkdir(parents=True, exist_ok=True)
    (root / "sweep.json").write_text(json.dumps(meta, indent=1) + "\n")


def cpu_name() -> str:
    """The CPU model (timings differ by CPU kind), else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def run_sweep(cfg: RunConfig, plan: SweepPlan, run_dir: str | Path, progress: bool = True, command: str = "") -> Path:
    """Run every cell of ``plan`` that ``run_dir`` does not hold yet; return the folder (see the module docstring).

    Steps: 1. check the whole plan (configurations, budgets, method names) before any training;
    2. per group, load the models once, run or load the shared stages; 3. run the missing cells.
    """
    from ..federation.methods import check_names

    root = Path(run_dir)
    plan, meta = merge_plan(root, check_names(cfg), plan)
    check_budgets(cfg, plan.budgets)
    for n in plan.clients:  # 1. every group's configuration is valid (client_models per client, caps)
        check_names(group_config(cfg, plan, n, plan.seeds[0], plan.budgets[0]))
    before = (root / "sweep.json").read_text() if (root / "sweep.json").exists() else None
    write_plan(root, cfg, plan, meta, command)
    todo = [c for c in cells(root, plan) if not c.done]
    log.info("sweep %s: %d cells to run, %d finished", root, len(todo), len(cells(root, plan)) - len(todo))
    with bar(total=len(todo), desc="sweep cells", **({} if progress else {"disable": True})) as pbar:
        try:
            for n in plan.clients:
                for s in plan.seeds:
                    group = [c for c in todo if (c.clients, c.seed) == (n, s)]
                    if group:
                        budget = next((c.budget for c in group if c.budget), plan.budgets[0])
                        _run_group(group_config(cfg, plan, n, s, budget), group, progress, pbar)
        except Exception:
            if not any(c.done for c in todo):  # refused before any cell (FedAvg across architectures): plan unchanged
                (root / "sweep.json").write_text(before) if before else (root / "sweep.json").unlink()
            raise
    return root


def _run_group(cfg: RunConfig, todo: list[Cell], progress: bool, pbar: Any) -> None:
    """2-3 of :func:`run_sweep` for one group: one model load, the shared stages once, then its missing cells."""
    from ..federation.loop import Federation
    from ..federation.methods import make_method

    folder = todo[0].group
    fed = Federation(cfg, runlog=RunLog(folder), progress=progress)
    initial = {c.client_id: c.model.get_tensors() for c in fed.clients if c.trainable}
    plan = {name: make_method(name, cfg) for name in dict.fromkeys(c.method for c in todo)}
    for method in plan.values():
        fed.prepare(method)  # refusals (FedAvg across architectures) before any training
    start = shared_start(fed, folder, list(plan.values()), initial)
    for cell in todo:
        log.info(
            "sweep: %d clients, seed %d, %s%s",
            cell.clients,
            cell.seed,
            cell.method,
            f", {cell.budget} prompts" if cell.budget else "",
        )
        if cell.budget is not None and cell.budget != fed.cfg.data.n_public:
            fed.use_public(cell.budget)
        shutil.rmtree(cell.path, ignore_errors=True)  # an interrupted cell starts over
        run_method(fed, make_method(cell.method, fed.cfg), start, cell.path)
        pbar.update(1)


SHARED = "shared"  # the group's folder of the adapters after its local stage


def shared_start(fed: Federation, folder: Path, plan: list[Method], initial: dict[str, dict]) -> SharedStart:
    """The group's shared start: read back from ``folder`` when an earlier run saved it, else run and save it."""
    import safetensors.numpy

    rows = RunLog(folder).read_metrics()
    saved = folder / SHARED
    needs_local = any(m.shares_local_stage for m in plan)
    if [r["stage"] for r in rows] == ["base", "local"] and (saved / "state.json").exists():
        state = json.loads((saved / "state.json").read_text())
        adapters = {c: safetensors.numpy.load_file(str(saved / f"{c}.safetensors")) for c in state["adapters"]}
        log.info("sweep: the shared stages of %s are read back, not run again", folder)
        return SharedStart(rows, adapters, state["privacy"], initial)
    if rows[:1] and rows[0]["stage"] == "base" and not needs_local:
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
