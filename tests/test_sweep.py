"""The sweep: cells run once and are extended, not rerun; what the folder says, on a hand-made one with known answers."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest
from rundiff import compare_runs

from fedcofit_lite.analysis import frontier, sweepreport
from fedcofit_lite.analysis.sweep import SweepPlan
from fedcofit_lite.cli import main
from fedcofit_lite.config import load_config
from fedcofit_lite.experiments import sweep
from fedcofit_lite.runlog import AnswerRow, PredictionRow, PseudoLabelRow, RunLog
from fedcofit_lite.tasks.data import build_suite

SWEEP = ["sweep", "--config", "ci", "--seeds", "0", "--rounds", "2", "--quiet", "--no-figures", "--boot", "100"]


@pytest.fixture(scope="module")
def sweep_args(answering) -> list[str]:
    """The ci sweep's command line, answering with the answering model (its consensus cells keep labels)."""
    return [*SWEEP, *(a for o in answering for a in ("--set", o))]


@pytest.fixture(scope="module")
def extended(tmp_path_factory, sweep_args):
    """A ci sweep run by the command line, then extended with a budget and a rule; who ran, each time."""
    root = tmp_path_factory.mktemp("sweep") / "run"
    calls: dict[str, list] = {"shared": [], "cells": []}
    with pytest.MonkeyPatch.context() as mp:
        shared, method = sweep.run_shared_stages, sweep.run_method
        mp.setattr(sweep, "run_shared_stages", lambda fed, plan: calls["shared"].append(1) or shared(fed, plan))
        mp.setattr(
            sweep,
            "run_method",
            lambda fed, m, start, folder: calls["cells"].append(folder) or method(fed, m, start, folder),
        )
        methods = "local,centralized,fedavg,consensus"
        assert main([*sweep_args, "--budgets", "6", "--methods", methods, "--run-dir", str(root)]) == 0
        first = {k: list(v) for k, v in calls.items()}
        calls["shared"].clear(), calls["cells"].clear()
        more = [*sweep_args, "--budgets", "6,12", "--methods", methods + ",consensus@vote", "--run-dir", str(root)]
        assert main(more) == 0
        second = {k: list(v) for k, v in calls.items()}
        calls["shared"].clear(), calls["cells"].clear()
        assert main(more) == 0  # everything finished: nothing runs
        third = {k: list(v) for k, v in calls.items()}
    return root, first, second, third


def test_shared_stages_run_once_and_an_extension_runs_only_its_new_cells(extended):
    root, first, second, third = extended
    group = root / "clients_3" / "seed_0"
    assert len(first["shared"]) == 1
    assert [str(p.relative_to(group)) for p in first["cells"]] == [
        "local", "centralized", "fedavg", "public_6/consensus",
    ]  # fmt: skip
    assert second["shared"] == []  # the local-stage adapters were read back from shared/
    assert sorted(str(p.relative_to(group)) for p in second["cells"]) == [
        "public_12/consensus", "public_12/consensus@vote", "public_6/consensus@vote",
    ]  # fmt: skip
    assert third == {"shared": [], "cells": []}
    meta = json.loads((root / "sweep.json").read_text())
    assert meta["plan"]["budgets"] == [6, 12] and len(meta["commands"]) == 3
    assert meta["plan"]["methods"] == ["local", "centralized", "fedavg", "consensus", "consensus@vote"]


def test_a_cell_equals_a_comparison_run_alone_at_that_budget(extended, tmp_path, answering, labels_kept_and_trained):
    from fedcofit_lite.experiments.compare import run_comparison

    root, *_ = extended
    # a sweep scores its cells after the rounds it reports only (here round 2): so does this comparison
    cfg = load_config("ci", [*answering, "data.n_public=12", "eval.rounds=[2]"])
    alone = run_comparison(cfg, ["consensus"], tmp_path / "alone", progress=False)
    cell = root / "clients_3" / "seed_0" / "public_12" / "consensus"
    assert labels_kept_and_trained(cell) == labels_kept_and_trained(alone.run_dir / "consensus")
    assert not (cell / "predictions" / "round_1.jsonl").exists() and (cell / "predictions" / "round_2.jsonl").exists()
    files = [f"{d}/round_{r}.jsonl" for d in ("answers", "pseudo_labels") for r in (1, 2)] + [
        "predictions/round_2.jsonl"
    ]
    assert compare_runs(alone.run_dir / "consensus", cell, files) == []
    same = ["stage", "test", "test_per_client", "bytes_up", "bytes_down", "kept", "train_loss", "train_steps"]
    assert compare_runs(alone.run_dir / "consensus", cell, ["metrics.jsonl"], fields=same) == []


def test_the_folder_is_read_back_with_every_table(extended):
    root, *_ = extended
    res = frontier.load_sweep(root)
    assert res.seeds == {3: [0]} and res.last_round == 2
    text = sweepreport.sweep_report(res, n_boot=50)
    for part in ("score against public budget", "time to accuracy", "new correct/client", "-- verdict --"):
        assert part in text
    sc = frontier.sweep_scores(res, 3, n_boot=50)
    entries = {(r["method"], r["budget"]) for r in frontier.budget_rows(res, sc, "round_2")}
    assert entries == {
        ("local", None), ("centralized", None), ("fedavg", None), ("fedavg (global)", None),
        ("consensus", 6), ("consensus", 12), ("consensus@vote", 6), ("consensus@vote", 12),
    }  # fmt: skip


def test_a_sweep_refuses_before_any_training(extended, sweep_args, tmp_path, capsys):
    root, *_ = extended
    cases = [
        (["--budgets", "6", "--set", "train.lr=0.002", "--run-dir", str(root)], "train.lr = 0.002 here"),
        (["--budgets", "6", "--rounds", "3", "--run-dir", str(root)], "ran its cells to round 2"),
        (["--budgets", "300", "--run-dir", str(tmp_path / "a")], "data/tasks_pool"),
        (["--budgets", "6", "--client-data", "total", "--set", "data.max_train_per_client=0", "--run-dir", str(tmp_path / "b")], "0 (no cap)"),
        (["--budgets", "6,6", "--run-dir", str(tmp_path / "c")], "each value once"),
        (["--budgets", "6", "--methods", "consensus@nope", "--run-dir", str(tmp_path / "d")], "not registered"),
        (["--summarize", str(tmp_path), "--link", "home=1"], "NAME=UP/DOWN"),
    ]  # fmt: skip
    for argv, message in cases:
        flags = [a for a in sweep_args if a not in ("--rounds", "2")] if "--rounds" in argv else sweep_args
        assert main([*flags, *argv]) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
    mixed = ["--config", "ci-mixed", "--budgets", "6", "--clients", "3,4", "--run-dir", str(tmp_path / "e")]
    assert main(["sweep", *mixed, "--quiet"]) == 2 and "federation.client_models" in capsys.readouterr().err


def test_the_client_axis_keeps_each_clients_data_or_the_total():
    cfg = load_config("cpu")  # 4 clients, 48 records each
    plan = SweepPlan([48], [0], ["consensus"], [4, 8, 16], [2])
    assert [sweep.group_config(cfg, plan, n, 0, 48).data.max_train_per_client for n in (4, 8, 16)] == [48, 48, 48]
    total = dataclasses.replace(plan, client_data="total")
    assert [sweep.group_config(cfg, total, n, 0, 48).data.max_train_per_client for n in (4, 8, 16)] == [48, 24, 12]
    assert sweep.group_config(cfg, plan, 16, 2, 96).federation.n_clients == 16


# -- a hand-made sweep whose every number is known ------------------------------------------------

N_ITEMS = 40
STAGES = ["base", "local", "round_1", "round_2"]
SCORES = {  # (method, budget) -> stage -> share of the 40 test items both clients get right
    ("local", None): {"local": 0.25, "round_1": 0.25, "round_2": 0.25},
    ("centralized", None): {"local": 0.5, "round_1": 0.5, "round_2": 0.75},
    ("fedavg", None): {"local": 0.25, "round_1": 0.5, "round_2": 0.5},
    ("fedavg (global)", None): {"round_1": 0.5, "round_2": 0.5},
    ("consensus", 10): {"local": 0.25, "round_1": 0.25, "round_2": 0.25},
    ("consensus", 20): {"local": 0.25, "round_1": 0.5, "round_2": 0.75},
}


def _predictions(folder: Path, stage: str, share: float, clients=("client0", "client1")) -> None:
    right = int(share * N_ITEMS)
    rows = [
        PredictionRow(c, f"t{i:02d}", "capital", "Lima" if i < right else "Quito", "Lima")
        for c in clients
        for i in range(N_ITEMS)
    ]
    RunLog(folder).write_predictions(stage, rows)


def _row(stage: str, method: str, budget: int | None) -> dict:
    r = STAGES.index(stage) - 1
    row = {"stage": stage, "round": r, "test": {"all": {"exact_match": 0.0}}, "seconds": {"train": 10.0, "eval": 5.0}}
    row.update({"bytes_up": 0, "bytes_down": 0, "energy_j": 100.0, "energy_source": "estimate", "watts_per_core": 10.0})
    row["train_steps"] = {"client0": 3, "client1": 3}
    if method == "fedavg" and r >= 1:
        row.update({"bytes_up": 5000, "bytes_down": 5000})
    if budget is not None and r >= 1:  # consensus: answers up, labels down, kept 3 of 4 at precision 2/3
        row.update({"bytes_up": 1000 if r == 1 else 600, "bytes_down": 400, "kept": 3, "n_prompts": budget})
        row.update(
            {"pseudo_label_accuracy": 2 / 3, "seconds": {"generate": 3.0, "server": 1.0, "train": 4.0, "eval": 5.0}}
        )
        row["bytes_up_saved"] = 0 if r == 1 else 400
    return row


def _labels(cell: Path, cfg, budget: int) -> None:
    """Round 1's answers and pseudo-labels: client0 right on prompts 0-4, client1 on 0-1; kept 0-3, wrong on 3."""
    suite = build_suite(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, n_public=budget)))
    ids = [e.id for e in suite.public]
    ref = suite.public_references
    answers = [
        AnswerRow(1, c, p, ref[p] if i < k else "zzz")
        for c, k in (("client0", 5), ("client1", 2))
        for i, p in enumerate(ids)
    ]
    labels = [
        PseudoLabelRow(1, p, ref[p] if i != 3 else "zzz", 1.0, 1.0, 1, 2, i < 4, False, float(i != 3))
        for i, p in enumerate(ids)
    ]
    RunLog(cell).write_answers(1, answers)
    RunLog(cell).write_pseudo_labels(1, labels)


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    root = tmp_path_factory.mktemp("handmade")
    cfg = load_config("ci")
    plan = SweepPlan([10, 20], [0], ["local", "centralized", "fedavg", "consensus"], [2], [1, 2])
    sweep.write_plan(root, cfg, plan, {"format": 1, "config": sweep.identity(cfg), "commands": []}, "by hand")
    group = root / "clients_2" / "seed_0"
    _predictions(group, "base", 0.0)
    _predictions(group, "local", 0.25)
    for (method, budget), per_stage in SCORES.items():
        if method.endswith("(global)"):
            continue
        cell = group / (f"public_{budget}/{method}" if budget else method)
        for stage in STAGES:
            RunLog(cell).append_metrics({**_row(stage, method, budget), "method": method})
        for stage, share in per_stage.items():
            if stage != "local" or method == "centralized":
                _predictions(cell, stage, share, ("central",) if method == "centralized" else ("client0", "client1"))
        if method == "fedavg":
            for stage, share in SCORES[("fedavg (global)", None)].items():
                _predictions(cell, stage + "_global", share, ("global",))
        if budget:
            RunLog(cell).write_config(sweep.group_config(cfg, plan, 2, 0, budget))
            _labels(cell, cfg, budget)
        (cell / "summary.json").write_text("{}")
    return frontier.load_sweep(root)


def test_scores_gap_bytes_and_labels_of_the_handmade_sweep(handmade):
    sc = frontier.sweep_scores(handmade, 2, n_boot=400)
    rows = {(r["method"], r["budget"]): r for r in frontier.budget_rows(handmade, sc, "round_2")}
    for key, per_stage in SCORES.items():
        assert rows[key]["score"].mean == pytest.approx(per_stage["round_2"]), key
    assert rows[("consensus", 20)]["gap"].mean == pytest.approx(1.0)  # (0.75 - 0.25) / (0.75 - 0.25)
    assert rows[("fedavg", None)]["gap"].mean == pytest.approx(0.5)
    c20 = rows[("consensus", 20)]
    assert (c20["bytes"], c20["bytes_whole"]) == (2400, 2800)  # 1000 + 400 + 600 + 400, and 400 saved up
    assert (c20["kept"], c20["precision"], c20["energy_j"], c20["energy_source"]) == (
        3,
        pytest.approx(2 / 3),
        300.0,
        "estimate at 10 W/core",
    )
    labels = [r for r in frontier.label_rows(handmade, 2) if r["budget"] == 10]
    assert len(labels) == 1 and labels[0]["kept"] == 4 and labels[0]["precision"] == 0.75
    # client1 learns prompt 2 (new correct), client0 is taught prompt 3 wrong (harmful): one each in two clients
    assert labels[0]["new_correct_per_client"] == 0.5 and labels[0]["harmful_per_client"] == 0.5


def test_time_to_accuracy_and_simulated_wall_clock_of_the_handmade_sweep(handmade):
    sc = frontier.sweep_scores(handmade, 2, n_boot=400)
    home = frontier.Link("home", 1.0, 10.0)
    target, rows = frontier.time_to_accuracy(handmade, sc, [home])
    assert target == pytest.approx(0.25 + 0.5 * (0.75 - 0.25))
    got = {(r["method"], r["budget"]): r for r in rows}
    assert got[("consensus", 20)]["rounds"] == 1 and got[("fedavg", None)]["rounds"] == 1
    assert got[("centralized", None)]["rounds"] == 0 and got[("fedavg (global)", None)]["rounds"] == 1
    assert got[("consensus", 10)]["rounds"] is None and got[("local", None)]["rounds"] is None
    assert got[("consensus", 10)]["share_reached"] < 0.05
    # local stage: 10 s of training; round 1: 3 + 1 + 4 s and 500 B up, 200 B down per client over 1/10 Mbit/s
    assert got[("consensus", 20)]["seconds"]["home"] == pytest.approx(10 + 8 + 500 * 8 / 1e6 + 200 * 8 / 1e7)
    assert got[("consensus", 20)]["bytes"] == 1400
    # a folder extended from an older one: its new cells scored only the reported round 2, its old ones round 1 too
    two = dataclasses.replace(handmade, plan=dataclasses.replace(handmade.plan, rounds=[2]))
    sc2 = frontier.sweep_scores(two, 2, n_boot=400)
    for key in [k for k in sc2.point if k[0] == "consensus" and k[2] == "round_1"]:
        del sc2.point[key], sc2.draws[key]
    late = {(r["method"], r["budget"]): r for r in frontier.time_to_accuracy(two, sc2, [home])[1]}
    assert late[("consensus", 20)]["rounds"] == 2 and late[("consensus", 20)]["bytes"] == 2400
    assert late[("fedavg", None)]["rounds"] == 2  # round 1 is not reported, so not read
    clock = {(r["method"], r["budget"], r["stage"]): r for r in frontier.wall_clock_rows(handmade, sc, [home])}
    per_round = 2500 * 8 / 1e6 + 2500 * 8 / 1e7  # 5000 B each way, 2 clients, per round
    assert clock[("fedavg", None, "round_2")]["seconds"]["home"] == pytest.approx(30.0 + 2 * per_round)


def test_the_verdict_names_the_smallest_budget_and_round_or_what_bounds_it(handmade):
    sc = frontier.sweep_scores(handmade, 2, n_boot=400)
    v = frontier.verdict(handmade, sc)
    assert (v.reached, v.budget, v.round, v.rule, v.reference) == (
        True,
        20,
        1,
        "consensus",
        ["fedavg", "fedavg (global)"],
    )
    assert "at 20 public prompts, after round 1" in v.text and v.text.startswith("Reached")
    d = sc.difference(("consensus", 20, "round_1"), ("fedavg (global)", None, "round_1"))  # the stronger claim, beside
    assert "Paired over seeds and items, consensus minus fedavg " in v.text
    assert f"minus fedavg (global) {d.format('{:+.3f}')}" in v.text
    small = dataclasses.replace(handmade, plan=dataclasses.replace(handmade.plan, budgets=[10]))
    v = frontier.verdict(small, sc)
    assert not v.reached and v.budget == 10 and "Not reached" in v.text
    assert "kept 4.0 of 10 labels a round at precision 0.75: 0.5 new-correct against 0.5 harmful" in v.text
    beats = frontier.verdict(handmade, sc, criterion="beats")  # against local, as across architectures
    assert (beats.reached, beats.budget, beats.round, beats.reference) == (True, 20, 1, ["local"])


def test_the_verdict_holds_the_rule_against_the_paired_difference_not_the_references_own_interval(handmade):
    """A rule below the global model in every draw, paired, can still lie inside the global model's own interval
    (which holds its spread over seeds): the default verdict asks the paired difference, ``matches`` the interval."""
    sc = frontier.sweep_scores(handmade, 2, n_boot=400)
    for stage in ("round_1", "round_2"):  # the global model: consensus at 20 prompts plus 0.01 in every draw
        rule, ref = ("consensus", 20, stage), ("fedavg (global)", None, stage)
        sc.point[ref], sc.draws[ref] = sc.point[rule] + 0.01, sc.draws[rule] + 0.01
    rule, ref = ("consensus", 20, "round_1"), ("fedavg (global)", None, "round_1")
    assert sc.interval(ref).lo <= sc.point[rule] and sc.difference(rule, ref).hi < 0  # inside it, below it paired
    assert frontier.verdict(handmade, sc, criterion="matches").reached
    paired = frontier.verdict(handmade, sc)
    assert not paired.reached and "no consensus rule is above or not distinguishable from fedavg" in paired.text
    assert "minus fedavg (global) -0.010 [-0.010, -0.010] (below)" in paired.text


def test_links_parse_and_the_figures_draw_the_frontier(handmade):
    from fedcofit_lite.ui.sweepplots import sweep_figures

    assert frontier.parse_link("office=100/50") == frontier.Link("office", 100.0, 50.0)
    figures = sweep_figures(handmade, [frontier.Link("home", 1, 10)], n_boot=100)
    assert set(figures) == {"score_vs_budget", "score_vs_bytes", "score_by_round", "score_vs_time_0", "labels"}
    traces = {t.name: t for t in figures["score_vs_bytes"].data}
    assert list(traces["FedAvg-LoRA"].x) == [20000]  # FedAvg at its bytes: 2 rounds x 5000 up + 5000 down
    assert list(traces["semantic consensus (medoid)"].x) == [2400, 2400]  # budgets 10 and 20
    assert list(traces["semantic consensus (medoid), whole answer messages"].x) == [2800, 2800]


def test_the_shipped_sweep_is_small_labelled_current_and_complete():
    """notebooks/reference/sweep (notebook 12's): no weights, a manifest, the preset as configured now, every cell."""
    import fedcofit_lite as flt

    root = flt.ui.workshop.REFERENCE_ROOT / "sweep"
    files = [f for f in root.rglob("*") if f.is_file()]
    assert sum(f.stat().st_size for f in files) < 5e6
    assert not [f for f in files if f.suffix in {".safetensors", ".bin", ".pt", ".npz", ".html"}]
    manifest = json.loads((root / "manifest.json").read_text())
    assert {"what", "preset", "commands", "made", "package_version"} <= set(manifest)
    assert manifest["package_version"] == flt.__version__
    argv = manifest["commands"][0].split()
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    overrides += ["federation.send_changed=true"] if "--send-changed" in argv else []
    overrides += (
        [f"eval.watts_per_core={argv[argv.index('--watts-per-core') + 1]}"] if "--watts-per-core" in argv else []
    )
    now = sweep.identity(load_config(manifest["preset"], overrides))
    folder = flt.config.upgrade(json.loads((root / "sweep.json").read_text())["config"])  # as a resumed sweep reads it
    stale = sweep.config_differences(folder, now)
    assert stale == [], f"the shipped sweep is stale ({stale[:3]}): python notebooks/reference/build_sweep.py"
    res = frontier.load_sweep(root)
    assert all(res.seeds[n] == res.plan.seeds for n in res.plan.clients)  # every planned cell finished
    assert (
        sweepreport.findings(res, n_boot=100)[-1]
        == frontier.verdict(res, frontier.sweep_scores(res, res.plan.clients[0], 100)).text
    )


def test_the_help_says_what_the_command_does_and_the_study_commands_are_in_reproducing(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    out = capsys.readouterr().out
    assert "where consensus meets parameter averaging" in out and "docs/reproducing.md" in out
    docs = Path(__file__).resolve().parents[1] / "docs"
    page = (docs / "reproducing.md").read_text()
    assert "```{include} _generated/study_commands.md" in page  # the commands, rendered from the shipped manifests
    study = (docs / "_generated" / "study_commands.md").read_text()
    shipped = Path(__file__).resolve().parents[1] / "notebooks" / "reference" / "study"
    for folder in (p.name for p in shipped.iterdir() if (p / "manifest.json").exists()):
        assert re.search(rf"--run-dir runs/study/{re.escape(folder)}(\s|$)", study) and f"# study/{folder}: " in study
    assert "--config cpu" in study and "--config freeform" in study and "--config mixed" in study
    # what a stage costs, to plan the study's time: rendered from the cpu reference, not typed
    assert "<!-- rendered: round-costs -->a consensus round " in page


def test_transfer_counts_what_each_client_learned_of_the_families_it_never_held(tmp_path):
    # two clients, one family each (client0: capital, client1: arithmetic); 10 test items per family
    cfg = load_config("ci")
    plan = SweepPlan([4], [0, 1], ["local", "fedavg", "consensus"], [2], [1])
    sweep.write_plan(tmp_path, cfg, plan, {"format": 1, "config": sweep.identity(cfg), "commands": []}, "by hand")
    fam = {f"t{i:02d}": ("capital" if i < 10 else "arithmetic") for i in range(20)}

    def rows(right, clients=("client0", "client1")):  # right(model, family) -> bool, for every item
        return [PredictionRow(c, i, f, "Lima" if right(c, f) else "x", "Lima") for c in clients for i, f in fam.items()]

    own = {"client0": "capital", "client1": "arithmetic"}
    for seed in (0, 1):
        group = tmp_path / "clients_2" / f"seed_{seed}"
        group.mkdir(parents=True)
        parts = {c: {"families": {f: 5}, "example_ids": []} for c, f in own.items()}
        (group / "partition.json").write_text(json.dumps(parts))
        cells = {
            "local": rows(lambda c, f: f == own[c]),
            "fedavg": rows(lambda c, f, s=seed: f == own[c] or (c == "client1" and s == 0)),
            "public_4/consensus": rows(lambda c, f: True),
        }
        for name, preds in cells.items():
            RunLog(group / name).write_predictions("round_1", preds)
            RunLog(group / name).append_metrics({"stage": "round_1", "round": 1, "method": name})
            (group / name / "summary.json").write_text("{}")
        RunLog(group / "fedavg").write_predictions("round_1_global", rows(lambda c, f: f == "capital", ("global",)))
    res = frontier.load_sweep(tmp_path)
    got = {(r.entry, r.budget): r for r in frontier.transfer_rows(res, 2, n_boot=200)}
    assert got[("local", None)].unknown.mean == 0.0 and got[("local", None)].known.mean == 1.0
    assert got[("consensus", 4)].unknown.mean == 1.0 and got[("consensus", 4)].gain_over_local.mean == 1.0
    # the global model knows only capitals: right for client1 (its unknown family), wrong for client0
    assert got[("fedavg (global)", None)].unknown.mean == 0.5
    # personalized FedAvg: client1 learned client0's family under seed 0 only -> 0.5 of one client's pairs in one seed
    assert got[("fedavg", None)].unknown.mean == pytest.approx(0.25)
    assert got[("fedavg", None)].unknown.lo < 0.25 < got[("fedavg", None)].unknown.hi  # the seeds disagree: it counts


def test_reuse_copies_the_finished_cells_of_the_same_sweep_and_runs_only_the_rest(
    extended, sweep_args, tmp_path, capsys
):
    import importlib.util

    root, *_ = extended
    new, ran = tmp_path / "more", []
    with pytest.MonkeyPatch.context() as mp:
        shared, method = sweep.run_shared_stages, sweep.run_method
        mp.setattr(sweep, "run_shared_stages", lambda fed, plan: ran.append("shared") or shared(fed, plan))
        mp.setattr(
            sweep, "run_method", lambda fed, m, start, folder: ran.append(folder.name) or method(fed, m, start, folder)
        )
        argv = [*sweep_args, "--budgets", "6,18", "--methods", "local,fedavg,consensus", "--run-dir", str(new)]
        assert main([*argv, "--reuse", str(root)]) == 0
    assert ran == ["consensus"]  # public_18's: the shared stages and three cells were copied, not run
    group, theirs = new / "clients_3" / "seed_0", root / "clients_3" / "seed_0"
    assert (group / "public_18" / "consensus" / "summary.json").exists()
    for cell in ("local", "fedavg", "public_6/consensus"):
        assert (group / cell / "summary.json").read_bytes() == (theirs / cell / "summary.json").read_bytes()
    assert not (group / "centralized").exists() and not (group / "public_12").exists()  # not in this plan
    meta = json.loads((new / "sweep.json").read_text())
    assert meta["reused"] == [
        {
            "from": str(root),
            "cells": ["clients_3/seed_0/local", "clients_3/seed_0/fedavg", "clients_3/seed_0/public_6/consensus"],
        }
    ]
    spec = importlib.util.spec_from_file_location("ship_study", Path(__file__).parents[1] / "tools" / "ship_study.py")
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    assert ship.main([str(new), str(tmp_path / "shipped"), "--what", "reuse"]) == 0
    manifest = json.loads((tmp_path / "shipped" / "manifest.json").read_text())
    new_cost = manifest["cost_per_cell"]["clients_3/seed_0/public_18/consensus"]["cpu_s"]
    assert manifest["cells"] == 4  # the copies' cost is their own folder's, not counted again:
    assert manifest["cpu_s"] == pytest.approx(new_cost, abs=0.2)
    rows = [json.loads(x) for x in (group / "public_18" / "consensus" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["base", "local", "round_1", "round_2"]  # the group's stages, then its own
    assert new_cost == pytest.approx(sum(r["cpu_seconds"] for r in rows[2:]), abs=0.1)  # the group's counted there
    shipped = tmp_path / "shipped"  # a shipped folder keeps no adapters: its groups cannot start a missing cell
    cfg = load_config("ci", [o for a, o in zip(sweep_args, sweep_args[1:]) if a == "--set"])
    meta: dict = {}
    assert sweep.reuse_cells(tmp_path / "none", shipped, cfg, SweepPlan([6], [0], ["local"], [3], [2]), meta) == 0
    assert meta == {} and not (tmp_path / "none").exists()
    capsys.readouterr()
    other = ["--budgets", "6", "--set", "train.lr=0.002", "--run-dir", str(tmp_path / "x"), "--reuse", str(root)]
    assert main([*sweep_args, *other]) == 2
    err = capsys.readouterr().err
    assert "--reuse" in err and "train.lr = 0.002 here" in err and "Traceback" not in err


def test_reuse_from_another_public_pool_of_the_same_records_copies_only_the_cells_without_public_prompts(
    extended, sweep_args, tmp_path, capsys
):
    root, *_ = extended
    pool = tmp_path / "pool"  # the suite's private and test files, its public prompts in another order
    shutil.copytree("data/tasks", pool)
    for name in ("public.jsonl", "public_references.jsonl"):
        lines = (pool / name).read_text().splitlines()
        (pool / name).write_text("\n".join(reversed(lines)) + "\n")
    new, ran = tmp_path / "pool-run", []
    argv = [*sweep_args, "--budgets", "6", "--methods", "local,fedavg,consensus", "--set", f"data.path={pool}"]
    with pytest.MonkeyPatch.context() as mp:
        shared, method = sweep.run_shared_stages, sweep.run_method
        mp.setattr(sweep, "run_shared_stages", lambda fed, plan: ran.append("shared") or shared(fed, plan))
        mp.setattr(
            sweep, "run_method", lambda fed, m, start, folder: ran.append(folder.name) or method(fed, m, start, folder)
        )
        assert main([*argv, "--run-dir", str(new), "--reuse", str(root)]) == 0
    assert ran == ["consensus"]  # the shared stages, local and FedAvg-LoRA came from the folder; the consensus cell ran
    group, theirs = new / "clients_3" / "seed_0", root / "clients_3" / "seed_0"
    for cell in ("local", "fedavg"):
        assert (group / cell / "summary.json").read_bytes() == (theirs / cell / "summary.json").read_bytes()
    prompts = {
        folder: {
            json.loads(x)["prompt_id"]
            for x in (g / "public_6" / "consensus" / "pseudo_labels" / "round_1.jsonl").open()
        }
        for folder, g in (("here", group), ("there", theirs))
    }
    assert prompts["here"] and prompts["here"] != prompts["there"]  # it answered the pool's public prompts
    meta = json.loads((new / "sweep.json").read_text())
    assert meta["reused"] == [
        {"from": str(root), "cells": ["clients_3/seed_0/local", "clients_3/seed_0/fedavg"], "data.path": "data/tasks"}
    ]
    (pool / "test.jsonl").write_text((pool / "test.jsonl").read_text().split("\n", 1)[1])  # one test record fewer
    capsys.readouterr()
    assert main([*argv, "--run-dir", str(tmp_path / "other"), "--reuse", str(root)]) == 2
    err = capsys.readouterr().err
    assert "--reuse" in err and "data.path" in err and "Traceback" not in err
