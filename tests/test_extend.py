"""The extension points, proven from outside: test code registers a clusterer with a parameter of its own, a
consensus rule, a method, a parameter-aggregation baseline and a free-form task family with its own checker (no
edit of the package, each in one registry), and each goes through config -> run (ci preset) -> replay -> sweep."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClusterMixin

from fedcofit_lite.analysis import frontier, sweepreport
from fedcofit_lite.analysis.accounting import measured_vs_analytic
from fedcofit_lite.analysis.replay import replay
from fedcofit_lite.analysis.sweep import SweepPlan
from fedcofit_lite.config import ConfigError, load_config, option
from fedcofit_lite.experiments.sweep import run_sweep
from fedcofit_lite.federation.client import TrainPlan
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.federation.methods import METHODS, Consensus, FedAvg, MethodSpec, check_names, train_row
from fedcofit_lite.protocol.cluster import REGISTRY as CLUSTERERS
from fedcofit_lite.protocol.cluster import ClustererSpec
from fedcofit_lite.protocol.consensus import RULES, RoundInputs, RuleSpec
from fedcofit_lite.protocol.fedavg import FedAvgServer
from fedcofit_lite.runlog import RunLog, read_jsonl, read_pseudo_labels, rounds_of
from fedcofit_lite.tasks.evaluate import exact_match
from fedcofit_lite.tasks.families import REGISTRY as FAMILIES
from fedcofit_lite.tasks.families import TaskFamily, write_suite
from fedcofit_lite.ui.plots import method_style

WORDS = ("apple", "river", "stone", "cloud", "paper", "table", "north", "green", "seven", "march", "blue", "forty")


def _shout(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(WORDS)
    return f"Shout the word {word} ({rng.randrange(100)}).", word.upper()


# a task family whose right answers differ in wording: any answer that names the word is right
SHOUT = TaskFamily("shout", "A word shouted back.", _shout, 100 * len(WORDS), check=lambda p, r: r.lower() in p.lower())


class Leader(ClusterMixin, BaseEstimator):
    """Leader clustering (a clusterer the package does not ship): an answer joins the first leader within ``radius``
    cosine distance, else it leads a cluster of its own."""

    def __init__(self, radius: float = 0.2) -> None:
        self.radius = radius

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
        leaders: list[int] = []
        labels = []
        for i, x in enumerate(X):
            near = [k for k, j in enumerate(leaders) if 1 - float(X[j] @ x) <= self.radius]
            labels.append(near[0] if near else len(leaders))
            leaders += [] if near else [i]
        self.labels_ = np.array(labels)
        return self


@dataclass(frozen=True)
class LeaderParams:
    """Its own parameter, with its default, help and check: no field of the package's configuration."""

    radius: float = option(0.2, "Cosine distance within which an answer joins a leader.")

    def checks(self):
        return [(0 <= self.radius <= 2, "radius", "cosine distance lies in [0, 2]")]


class MedianServer(FedAvgServer):
    """A parameter aggregation the package does not ship: the coordinate-wise median of the clients' adapters."""

    rounds = 0

    def combine(self, states, weights):
        MedianServer.rounds += 1
        return {k: np.median(np.stack([s[k] for s in states]), axis=0).astype(states[0][k].dtype) for k in states[0]}


class OneShot(Consensus):
    """A method the package does not ship: consensus in round 1 only, then every client trains alone."""

    def round(self, run, r):
        if r == 1:
            return super().round(run, r)
        return train_row(*run.cohort.train(r, run.cohort.ids, TrainPlan(run.cfg.train.round_epochs)))


def heard(prompts: list[str]) -> list[str]:
    """A black-box client that names the word in other words than the reference (exact match 0, the family's check 1)."""
    return [f"I heard: {next(w for w in WORDS if w in p)}" for p in prompts]


def by_length(inputs: RoundInputs) -> np.ndarray:
    """A weighting the package does not have: an answer weighs its length in characters (at least 1)."""
    return np.array([max(1, len(t)) for t in inputs.texts], dtype=float)


EXTENDED = [
    "data.families=[shout]",
    "data.n_public=0",
    "consensus.clusterer=leader",
    "consensus.clusterer_params.radius=2.0",  # every answer within reach of the first: one cluster per prompt
    "consensus.rule=loud",
    "consensus.min_cohesion=0",
    "federation.method=one_shot",
]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Register the four extensions (undone after the module) and write a task suite of the new family."""
    mp = pytest.MonkeyPatch()
    mp.setitem(FAMILIES, "shout", SHOUT)
    mp.setitem(CLUSTERERS, "leader", ClustererSpec(Leader, LeaderParams, "radius", 0.01, 0.6, 0.01))
    mp.setitem(METHODS, "fedmedian", MethodSpec(lambda cfg, _: FedAvg(server=MedianServer), "FedMedian-LoRA", "#8c564b", "adapter", has_global_model=True))  # fmt: skip
    mp.setitem(RULES, "loud", RuleSpec({"grouping": "semantic", "weighting": by_length}, "longest answers weigh most", "#654321"))  # fmt: skip
    mp.setitem(METHODS, "one_shot", MethodSpec(lambda cfg, rule: OneShot(rule), "one-shot consensus", "#123456", "answers", RULES))  # fmt: skip
    suite = tmp_path_factory.mktemp("extend") / "suite"
    write_suite(suite, seed=0, n_train=24, n_public=6, n_test=3, families=["shout"])
    yield suite
    mp.undo()


@pytest.fixture(scope="module")
def run(registered):
    cfg = check_names(load_config("ci", [f"data.path={registered}", *EXTENDED]))
    answerers = {"client1": heard, "client2": heard}
    return run_federation(cfg, run_dir=registered.parent / "run", progress=False, answerers=answerers)


def test_an_unregistered_name_is_refused_with_the_registry_that_would_take_it():
    for override, where in [
        ("consensus.clusterer=leader", "protocol.cluster.REGISTRY"),
        ("consensus.rule=loud", "protocol.consensus.RULES"),
        ("federation.method=one_shot", "federation.methods.METHODS"),
        ("data.families=[shout]", "tasks.families.REGISTRY"),
    ]:
        name, value = override.split("=")
        with pytest.raises(ConfigError, match=rf"{name} = .*{value.strip('[]')}.* is not registered; .*{where}"):
            check_names(load_config("ci", [override]))


def test_a_registered_clusterer_rule_and_method_run_and_replay_to_the_same_labels(run):
    rows = {m["stage"]: m for m in run.metrics}
    assert rows["round_1"]["method"] == "one_shot" and rows["round_1"]["rule"] == "loud"
    assert "kept" not in rows["round_2"] and rounds_of(run.run_dir) == [1]  # the method's own schedule
    labels = read_pseudo_labels(run.run_dir, 1)
    assert {x.n_clusters for x in labels} == {1}  # the registered clusterer grouped every prompt
    replayed = {r["rule"]: r for r in replay(run.run_dir)}  # every registered rule, on the saved answers
    assert set(replayed) == set(RULES) and replayed["loud"]["round"] == 1
    again = replayed["loud"]
    assert again["kept"] == rows["round_1"]["kept"] == len(labels) > 0
    assert again["precision"] == rows["round_1"]["pseudo_label_accuracy"]
    assert method_style("one_shot")["label"] == "one-shot consensus"  # the figures read the registry too
    assert [r["round"] for r in measured_vs_analytic(run.run_dir) if r["direction"] == "up"] == [1]


def test_a_registered_task_family_is_scored_by_its_own_check(run):
    kept = [x for x in read_pseudo_labels(run.run_dir, 1) if x.kept]
    refs = {r["id"]: r["response"] for r in read_jsonl(run.run_dir.parent / "suite" / "public_references.jsonl")}
    assert all(x.consensus.startswith("I heard") and exact_match(x.consensus, refs[x.prompt_id]) == 0 for x in kept)
    round_1 = run.metrics[2]
    assert round_1["pseudo_label_accuracy"] == 1.0  # right by the family's check, wrong by exact match
    assert round_1["client_answer_accuracy"]["client1"] == 1.0
    last = run.metrics[-1]  # on the test set too the callables name the word in other words: right, never exact
    assert [(last["test_per_client"][c]["correct"], last["test_per_client"][c]["exact_match"]) for c in ("client1", "client2")] == [(1.0, 0.0), (1.0, 0.0)]  # fmt: skip
    per_client = [s["correct"] for s in last["test_per_client"].values()]
    assert last["test"]["shout"]["correct"] == pytest.approx(sum(per_client) / 3) and len(per_client) == 3


def test_a_registered_clusterers_own_parameter_is_checked_by_its_spec(registered):
    ok = check_names(load_config("ci", ["consensus.clusterer=leader", "consensus.clusterer_params.radius=0.4"]))
    assert ok.consensus.clusterer_params == {"radius": 0.4}
    with pytest.raises(
        ConfigError, match=r"consensus\.clusterer_params\.radius = 3\.0: cosine distance lies in \[0, 2\]"
    ):
        check_names(load_config("ci", ["consensus.clusterer=leader", "consensus.clusterer_params.radius=3"]))
    with pytest.raises(ConfigError, match=r"unknown config key 'consensus\.clusterer_params\.eps'; .*\['radius'\]"):
        check_names(load_config("ci", ["consensus.clusterer=leader", "consensus.clusterer_params.eps=0.3"]))


@pytest.fixture(scope="module")
def sweep(registered):
    """A sweep of the registered clusterer, family and parameter aggregation: consensus at one budget, FedMedian."""
    overrides = [f"data.path={registered}", "data.families=[shout]", "data.n_public=0", "federation.rounds=1"]
    overrides += ["consensus.clusterer=leader", "consensus.clusterer_params.radius=2.0", "consensus.min_cohesion=0"]
    cfg = load_config("ci", overrides)
    plan = SweepPlan(budgets=[6], seeds=[0], methods=["local", "fedmedian", "consensus"], clients=[3], rounds=[1])
    return run_sweep(cfg, plan, registered.parent / "sweep", progress=False)


def test_a_parameter_aggregation_registered_from_outside_runs_and_its_global_model_is_in_the_sweep(sweep):
    res = frontier.load_sweep(sweep)
    sc = frontier.sweep_scores(res, 3, n_boot=50)
    entries = {(r["method"], r["budget"]) for r in frontier.budget_rows(res, sc, "round_1")}
    assert {("fedmedian", None), ("fedmedian (global)", None), ("consensus", 6)} <= entries
    assert "fedmedian (global)" in sweepreport.sweep_report(res, n_boot=50)
    cell = sweep / "clients_3" / "seed_0"
    rounds = RunLog(cell / "fedmedian").read_metrics()
    assert rounds[-1]["method"] == "fedmedian" and "test_global" in rounds[-1]  # its server's model, scored
    assert MedianServer.rounds >= 1  # the entry's own server aggregated
    assert method_style("fedmedian")["label"] == "FedMedian-LoRA"


def test_the_sweeps_consensus_cell_used_the_registered_clusterer_and_family_and_replays(sweep):
    cell = sweep / "clients_3" / "seed_0" / "public_6" / "consensus"
    labels = read_pseudo_labels(cell, 1)
    assert labels and {x.n_clusters for x in labels} == {1}  # radius 2.0: one leader per prompt
    row = RunLog(cell).read_metrics()[-1]
    assert set(row["test"]) == {"all", "shout"}
    again = {r["rule"]: r for r in replay(cell)}["medoid"]
    assert again["kept"] == row["kept"]
