"""Simulated bad clients and the robustness sweep (issue #5, part 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedcofit_lite.analysis.robustness import behaviours_for, server_only_sweep
from fedcofit_lite.cli import main
from fedcofit_lite.config import ConfigError, load_config
from fedcofit_lite.federation.adversary import apply_behaviours, corrupt_tensors
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.protocol.fedavg import FedAvgServer
from fedcofit_lite.protocol.messages import AdapterMessage

IDS = ["date_rewrite-public-0001", "date_rewrite-public-0003", "capital-public-0002", "capital-public-0007"]
HONEST = {
    "c0": ["01/02/2003", "04/05/2006", "Paris", "Rome"],
    "c1": ["01/02/2003", "04/05/2006", "Paris", "Rome"],
    "c2": ["x", "y", "z", "w"],
}
INSTR = {p: f"instruction of {p}" for p in IDS}


def test_each_answer_behaviour():
    sent = apply_behaviours({"c1": "random_text", "c2": "echo"}, HONEST, IDS, INSTR, seed=0, round_index=1)
    assert sent["c0"] == HONEST["c0"]  # honest is untouched
    assert len(set(sent["c1"])) == 4 and sent["c1"] != HONEST["c1"]  # a different random string per prompt
    assert sent["c1"] == apply_behaviours({"c1": "random_text"}, HONEST, IDS, INSTR, 0, 1)["c1"]  # deterministic
    assert sent["c2"] == [INSTR[p] for p in IDS]
    constant = apply_behaviours({"c0": "constant"}, HONEST, IDS, INSTR, 0, 1)["c0"]
    assert len(set(constant)) == 1


def test_colluders_agree_on_plausible_wrong_answers():
    sent = apply_behaviours({"c1": "colluder", "c2": "colluder"}, HONEST, IDS, INSTR, 0, 1)
    assert sent["c1"] == sent["c2"]  # the group looks like agreement
    assert sent["c1"] == ["04/05/2006", "01/02/2003", "Rome", "Paris"]  # right family and format, wrong prompt
    assert all(a != h for a, h in zip(sent["c1"], HONEST["c1"]))


def test_parameter_faults():
    t = {"a": np.full((4, 4), 0.1, np.float32), "b": np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)}
    assert np.allclose(corrupt_tensors("scaled", t, 0, 1, "c0")["b"], -10 * t["b"])
    n0, n1 = corrupt_tensors("noise", t, 0, 1, "c0"), corrupt_tensors("noise", t, 0, 1, "c1")
    assert not np.allclose(n0["b"], n1["b"]) and np.allclose(n0["b"], corrupt_tensors("noise", t, 0, 1, "c0")["b"])
    c0, c1 = corrupt_tensors("colluder", t, 0, 1, "c0"), corrupt_tensors("colluder", t, 0, 1, "c1")
    assert all(np.array_equal(c0[k], c1[k]) for k in t)
    # FedAvg takes them (finite, not absurd): parameter averaging has no notion of agreement to filter by
    update, report = FedAvgServer().aggregate(
        1, [AdapterMessage(1, "h", 10, t), AdapterMessage(1, "bad", 10, corrupt_tensors("scaled", t, 0, 1, "bad"))]
    )
    assert report.rejected == {} and np.allclose(update.tensors["b"], (t["b"] - 10 * t["b"]) / 2)


def test_behaviours_are_validated():
    with pytest.raises(ConfigError, match=r"federation.behaviours\[1\] = 'liar': choose one of"):
        load_config("ci", ["federation.behaviours=[honest, liar, honest]"])
    with pytest.raises(ConfigError, match="one behaviour per client"):
        load_config("ci", ["federation.behaviours=[honest]"])
    assert behaviours_for(4, 1, "echo") == ["honest", "honest", "honest", "echo"]


@pytest.fixture(scope="module")
def honest_run(tmp_path_factory):
    """A ci run whose round-1 answers are replaced by the right ones: honest and competent clients."""
    result = run_federation(
        load_config("ci", ["federation.rounds=1"]), run_dir=tmp_path_factory.mktemp("h") / "run", progress=False
    )
    path = result.run_dir / "answers/round_1.jsonl"
    from fedcofit_lite.tasks.data import build_suite

    refs = build_suite(load_config(result.run_dir / "config.yaml")).public_references
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "answer": refs[r["prompt_id"]]}) + "\n" for r in rows))
    return result.run_dir


def test_server_only_sweep_shows_where_consensus_breaks(honest_run):
    rows, table = server_only_sweep(
        honest_run, "colluder", fractions=(0.0, 0.34, 0.67), algorithms=("agglomerative", "kmeans")
    )
    by_bad = {r["bad_clients"]: r for r in rows}
    assert by_bad["0/3"]["pl_acc_agglomerative"] == 1.0  # competent honest clients: every pseudo-label right
    assert by_bad["1/3"]["pl_acc_agglomerative"] == 1.0  # one colluder is outvoted
    assert by_bad["2/3"]["pl_acc_agglomerative"] < 0.5  # colluders outnumber the honest: consensus follows them
    assert "bad clients" in table and "PL acc agglom" in table


def test_cli_robustness_server_only(honest_run, capsys):
    assert (
        main(
            [
                "robustness",
                "--server-only",
                str(honest_run),
                "--behaviour",
                "random_text",
                "--fractions",
                "0,0.34",
                "--quiet",
            ]
        )
        == 0
    )
    assert "random_text" in capsys.readouterr().out
    assert main(["robustness", "--server-only", str(honest_run), "--behaviour", "nonsense", "--quiet"]) == 2


def test_full_sweep_on_ci_runs_every_fraction(tmp_path):
    from fedcofit_lite.experiments.robustness import robustness_sweep

    rows, table = robustness_sweep(
        load_config("ci", ["federation.rounds=1"]),
        "constant",
        (0.0, 0.67),
        ["consensus", "fedavg"],
        algorithms=("agglomerative",),
        run_dir=tmp_path / "rob",
        progress=False,
    )
    assert [r["bad_clients"] for r in rows] == ["0/3", "2/3"]
    assert {"consensus_final_em", "fedavg_final_em", "pl_acc_agglomerative"} <= set(rows[0])
    sent = [
        json.loads(x) for x in (tmp_path / "rob/bad_2_of_3/consensus/answers/round_1.jsonl").read_text().splitlines()
    ]
    assert {a["answer"] for a in sent if a["client"] in ("client1", "client2")} == {"I don't know."}
    assert (tmp_path / "rob/robustness.txt").exists()


def test_sweep_shares_the_local_stage_without_changing_results(tmp_path):
    """A fraction run after another, from the shared local stage, equals a comparison of its own with those clients."""
    from rundiff import VOLATILE_FIELDS

    from fedcofit_lite.analysis.compare import load_comparison
    from fedcofit_lite.experiments.compare import run_comparison
    from fedcofit_lite.experiments.robustness import robustness_sweep

    cfg = load_config("ci", ["federation.rounds=1"])
    robustness_sweep(
        cfg,
        "colluder",
        (0.0, 0.67),
        ["consensus", "fedavg"],
        algorithms=("agglomerative",),
        run_dir=tmp_path / "rob",
        progress=False,
    )
    bad = load_config("ci", ["federation.rounds=1", "federation.behaviours=[honest,colluder,colluder]"])
    alone = run_comparison(bad, ["consensus", "fedavg"], run_dir=tmp_path / "alone", progress=False)
    swept = load_comparison(tmp_path / "rob/bad_2_of_3")

    def strip(rows):
        return [
            {k: v for k, v in row.items() if k not in VOLATILE_FIELDS} for row in rows
        ]  # the machine's, not the run's

    for method in ("consensus", "fedavg"):
        assert strip(swept[method]) == strip(alone.metrics[method])
    assert not (tmp_path / "rob/bad_0_of_3/local").exists()  # the local stage ran once, in the sweep's root
    shared = [json.loads(x)["stage"] for x in (tmp_path / "rob/metrics.jsonl").read_text().splitlines()]
    assert shared == ["base", "local"]
