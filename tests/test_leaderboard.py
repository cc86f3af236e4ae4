"""The rule leaderboard: the shipped corpus ranked, a rule entered from outside, validity, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fedcofit_lite.analysis import leaderboard as lb
from fedcofit_lite.cli import main
from fedcofit_lite.protocol.consensus import RULES

PLUGIN = str(Path(__file__).parent / "plugins" / "trust_first.py") + ":sure"


@pytest.fixture(scope="module")
def board():
    groups = [g for g in lb.load_corpus() if g.setting.startswith(("cpu reference", "small:"))]
    return lb.leaderboard(groups, lb.load_plugin(PLUGIN), n_boot=200, progress=False)


def test_every_registered_rule_and_the_plugin_are_ranked_per_setting(board):
    settings = {r["setting"] for r in board.rows}
    assert any(s.startswith("cpu reference") for s in settings)
    for setting in settings:
        ranked = [r for r in board.rows if r["setting"] == setting]
        assert {r["rule"] for r in ranked} >= {"medoid", "vote", "closest", "sure"}
        nets = [r["net_per_client"].mean for r in ranked]
        assert nets == sorted(nets, reverse=True)  # ranked by net new correct labels per client
    cpu = {r["rule"]: r for r in board.rows if r["setting"].startswith("cpu reference")}
    assert cpu["medoid"]["n"] == 3 and 0 < cpu["medoid"]["kept"].mean <= 48
    assert cpu["sure"]["precision"].lo <= cpu["sure"]["precision"].mean <= cpu["sure"]["precision"].hi


def test_the_board_replays_what_each_trained_run_sent(board):
    # the medoid rule refitted on a cpu seed's round-1 answers keeps what that run's server kept
    case = next(
        c for c in board.cases if c["setting"].startswith("cpu reference") and c["seed"] == 0 and c["rule"] == "medoid"
    )
    sent = lb.load_corpus()[[g.setting for g in lb.load_corpus()].index(case["setting"])].trained["medoid"]
    rows = [json.loads(x) for x in (sent / "pseudo_labels" / "round_1.jsonl").read_text().splitlines()]
    assert case["kept"] == sum(r["kept"] for r in rows) and case["kept"] > 0


def test_validity_pairs_replay_with_training_where_both_exist(board):
    v = board.validity
    assert v["n"] >= 4 and len(v["pairs"]) == v["n"]
    assert {p["rule"] for p in v["pairs"]} >= {"medoid", "vote", "reliability"}  # the cpu reference trained these
    assert -1 <= v["rho"].mean <= 1 and "validity" in lb.format_board(board).splitlines()[0]


def test_the_command_ranks_the_corpus_with_a_plugin_and_refuses_a_bad_one(tmp_path, capsys):
    manifest = tmp_path / "corpus.json"
    root = Path(lb.CORPUS).parent
    manifest.write_text(json.dumps({"entries": [{"setting": "cpu", "groups": str(root / "cpu" / "seeds" / "seed_0")}]}))
    assert main(["leaderboard", "--corpus", str(manifest), "--plugin", PLUGIN, "--quiet", "--boot", "50"]) == 0
    out = capsys.readouterr().out
    assert (
        "== cpu ==" in out
        and "sure" in out
        and all(r in out for r in RULES if not RULES[r].signal or RULES[r].signal == "closeness")
    )
    assert main(["leaderboard", "--corpus", str(manifest), "--plugin", "nowhere.py:x", "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_board_reads_the_recorded_embeddings_and_ships_exactly_what_it_used(tmp_path, monkeypatch):
    monkeypatch.setattr(lb, "SHIPPED", tmp_path / "shipped")
    monkeypatch.setattr(lb, "USED", set())
    monkeypatch.setenv("FEDCOFIT_CACHE", str(tmp_path / "cache"))
    here = lb._cached(["answers", "e", ["a", "b"]], lambda: np.eye(2))  # not shipped: computed on this machine
    assert len(lb.unshipped()) == 1
    (tmp_path / "shipped").mkdir()
    np.save(tmp_path / "shipped" / "stale.npy", np.zeros(1))  # an array no group reads any more
    added, removed = lb.ship_embeddings()
    assert len(added) == 1 and removed == ["stale.npy"] and lb.unshipped() == []
    assert sorted(p.name for p in (tmp_path / "shipped").iterdir()) == added

    def recompute():
        raise AssertionError("a shipped array is read, not computed again")

    for f in (tmp_path / "cache").rglob("*.npy"):
        f.unlink()  # only the shipped copy is left
    np.testing.assert_array_equal(lb._cached(["answers", "e", ["a", "b"]], recompute), here)
