"""A sweep folder: its plan (the axes) and its cells, as ``python -m fedcofit_lite sweep`` writes them.

One sweep folder is the cartesian product of its axes; a cell is one method of one group (a client count
and a seed: one partition, one shared start), and for the methods that read the public prompts (what they
send is ``answers`` in :data:`~fedcofit_lite.federation.methods.METHODS`) one public budget too::

    <sweep_dir>/
        sweep.json                       the plan (axes, configuration, commands), merged as it is extended
        clients_<N>/seed_<S>/            a group: config.yaml, partition.json, models.json, and the shared
                                         stages (base, local) in metrics.jsonl and predictions/
            shared/                      the clients' adapters after the local stage (safetensors), so a
                                         later extension starts from them without training again
            fedavg/ ffa/ local/ centralized/                 the methods that read no public prompt: once
            public_<B>/consensus/ public_<B>/consensus@vote/ the consensus rules at a budget of B prompts

:mod:`fedcofit_lite.experiments.sweep` runs and extends it; :mod:`fedcofit_lite.analysis.frontier` reads it
(curves, intervals, time to accuracy, the verdict) and :mod:`fedcofit_lite.analysis.sweepreport` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

SWEEP_FORMAT = 1
ClientData = Literal["per_client", "total"]


@dataclass(frozen=True)
class SweepPlan:
    """The axes of a sweep: public ``budgets`` (prompts per round), ``seeds``, ``methods``, client counts, report rounds.
    ``client_data``: what stays fixed when the client count moves (:mod:`fedcofit_lite.experiments.sweep`)."""

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
        axes = {k: list(dict.fromkeys([*getattr(self, k), *getattr(other, k)])) for k in ("methods", "clients")}
        axes |= {k: sorted({*getattr(self, k), *getattr(other, k)}) for k in ("budgets", "seeds", "rounds")}
        return SweepPlan(**axes, client_data=self.client_data)


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


def cells(root: str | Path, plan: SweepPlan) -> list[Cell]:
    """Every cell of ``plan`` in the folder ``root``, in the order a sweep runs them (budget-free methods first)."""
    from ..federation.methods import method_spec

    root = Path(root)
    public = [m for m in plan.methods if getattr(method_spec(m), "sends", None) == "answers"]  # they have a budget
    out = []
    for n in plan.clients:
        for s in plan.seeds:
            group = root / f"clients_{n}" / f"seed_{s}"
            out += [Cell(n, s, m, None, group / m) for m in plan.methods if m not in public]
            out += [Cell(n, s, m, b, group / f"public_{b}" / m) for b in plan.budgets for m in public]
    return out
