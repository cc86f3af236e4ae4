"""The extension points, proven from outside: test code registers a clusterer, a consensus rule, a method and
a task family (no edit of the package), and each goes through config -> run (ci preset) -> replay."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClusterMixin

from fedcofit_lite.analysis.accounting import measured_vs_analytic
from fedcofit_lite.analysis.replay import replay
from fedcofit_lite.config import ConfigError, load_config
from fedcofit_lite.federation.client import TrainPlan
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.federation.methods import METHODS, Consensus, MethodSpec, check_names, train_row
from fedcofit_lite.protocol.cluster import REGISTRY as CLUSTERERS
from fedcofit_lite.protocol.cluster import ClustererSpec
from fedcofit_lite.protocol.consensus import RULES
from fedcofit_lite.runlog import read_jsonl, read_pseudo_labels, rounds_of
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


class OneCluster(ClusterMixin, BaseEstimator):
    """Every answer of a prompt in one cluster (a clusterer the package does not ship)."""

    def __init__(self, distance_threshold: float = 0.15) -> None:
        self.distance_threshold = distance_threshold

    def fit(self, X, y=None):
        self.labels_ = np.zeros(len(X), dtype=int)
        return self


class OneShot(Consensus):
    """A method the package does not ship: consensus in round 1 only, then every client trains alone."""

    def round(self, run, r):
        if r == 1:
            return super().round(run, r)
        return train_row(*run.cohort.train(r, run.cohort.ids, TrainPlan(run.cfg.train.round_epochs)))


def heard(prompts: list[str]) -> list[str]:
    """A black-box client that names the word in other words than the reference (exact match 0, the family's check 1)."""
    return [f"I heard: {next(w for w in WORDS if w in p)}" for p in prompts]


EXTENDED = [
    "data.families=[shout]",
    "data.n_public=0",
    "consensus.clusterer=one_cluster",
    "consensus.rule=loud",
    "consensus.min_cohesion=0",
    "federation.method=one_shot",
]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Register the four extensions (undone after the module) and write a task suite of the new family."""
    mp = pytest.MonkeyPatch()
    mp.setitem(FAMILIES, "shout", SHOUT)
    mp.setitem(CLUSTERERS, "one_cluster", ClustererSpec(OneCluster, "distance_threshold", 0.01, 0.6, 0.01, ("distance_threshold",)))  # fmt: skip
    mp.setitem(RULES, "loud", {"grouping": "semantic", "weighting": "reliability", "guard": "numbers"})
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
        ("consensus.clusterer=one_cluster", "protocol.cluster.REGISTRY"),
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
