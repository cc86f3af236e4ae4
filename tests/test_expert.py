"""The expert clients (configs/expert.yaml): one family per client; the weighted rules run, and replay re-scores them."""

from __future__ import annotations

from collections import Counter

from fedcofit_lite.analysis.frontier import load_sweep
from fedcofit_lite.analysis.replay import replay
from fedcofit_lite.analysis.sweep import SweepPlan
from fedcofit_lite.analysis.sweepreport import sweep_report
from fedcofit_lite.cli import main
from fedcofit_lite.config import load_config
from fedcofit_lite.experiments.sweep import run_sweep
from fedcofit_lite.tasks.data import build_suite, partition


def _expert_overrides() -> list[str]:
    """The expert preset's federation settings, on the ci preset's tiny model."""
    e = load_config("expert")
    return [
        f"data.partition={e.data.partition}",
        f"data.families=[{','.join(e.data.families)}]",
        f"federation.n_clients={e.federation.n_clients}",
        f"consensus.min_agreement={e.consensus.min_agreement}",
        f"consensus.reliability_by={e.consensus.reliability_by}",
        f"compare.methods=[{','.join(e.compare.methods)}]",
    ]


def test_each_expert_client_holds_exactly_one_family():
    cfg = load_config("expert")
    assert cfg.federation.n_clients == len(cfg.data.families) == 4
    parts = partition(build_suite(cfg).train, cfg.data.partition, cfg.federation.n_clients, seed=cfg.seed)
    held = [set(Counter(e.family for e in part)) for part in parts]
    assert all(len(h) == 1 for h in held) and set().union(*held) == set(cfg.data.families)
    assert {"consensus@vote", "consensus@confidence", "consensus@reliability", "fedavg"} <= set(cfg.compare.methods)


def test_the_expert_setting_runs_on_ci_as_a_sweep_and_replay_rescores_its_rules(tmp_path, capsys):
    cfg = load_config("ci", _expert_overrides())
    methods = ["fedavg", "consensus@vote", "consensus@confidence", "consensus@reliability"]
    root = run_sweep(cfg, SweepPlan([8], [0], methods, [4], [1]), tmp_path / "expert", progress=False)
    res = load_sweep(root)
    assert res.seeds == {4: [0]}
    assert "consensus@reliability" in sweep_report(res, n_boot=50)
    vote = root / "clients_4" / "seed_0" / "public_8" / "consensus@vote"
    rows = replay(vote, ["vote", "confidence", "reliability"])
    assert [r["rule"] for r in rows] == ["vote", "confidence", "reliability"]
    assert all(r["n_prompts"] == 8 and "skipped" not in r for r in rows)  # the answers carry their confidences
    assert main(["replay", str(vote), "--rule", "reliability"]) == 0
    assert "reliability" in capsys.readouterr().out
