"""The whole protocol on the ``ci`` preset, checked from its run folder.

The run answers with the answering model (``tests/conftest.py``): the clients' answers are real words,
so the consensus keeps labels and the clients train on them (tiny-random would answer whitespace).
"""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from rundiff import compare_runs

from fedcofit_lite.cli import main
from fedcofit_lite.config import load_config
from fedcofit_lite.federation.loop import run_federation
from fedcofit_lite.protocol.messages import AnswersMessage, PseudoLabelsMessage, encode
from fedcofit_lite.tasks.data import load_task_suite, resolve_data_path
from fedcofit_lite.tasks.evaluate import exact_match


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory, answering):
    cfg = load_config("ci", answering)
    return cfg, run_federation(cfg, run_dir=tmp_path_factory.mktemp("ci") / "run", progress=False)


def test_run_folder_has_every_artifact(ci_run):
    cfg, result = ci_run
    d = result.run_dir
    for name in ["config.yaml", "partition.json", "metrics.jsonl", "summary.json", "summary.txt"]:
        assert (d / name).is_file(), name
    for r in range(1, cfg.federation.rounds + 1):
        assert (d / f"answers/round_{r}.jsonl").is_file()
        assert (d / f"pseudo_labels/round_{r}.jsonl").is_file()
    assert [m["stage"] for m in read_jsonl(d / "metrics.jsonl")] == ["base", "local", "round_1", "round_2"]
    assert load_config(d / "config.yaml") == cfg  # the resolved config reloads to the same run


def test_every_client_answers_every_public_prompt(ci_run):
    cfg, result = ci_run
    rows = read_jsonl(result.run_dir / "answers/round_1.jsonl")
    clients = {r["client"] for r in rows}
    prompts = {r["prompt_id"] for r in rows}
    assert len(clients) == cfg.federation.n_clients
    assert len(prompts) == cfg.data.n_public
    assert len(rows) == len(clients) * len(prompts)


def test_bytes_in_metrics_equal_the_messages_rebuilt_from_the_run_folder(ci_run, labels_kept_and_trained):
    cfg, result = ci_run
    d = result.run_dir
    assert set(labels_kept_and_trained(d)) == {1, 2}  # pseudo-labels went down in both rounds
    metrics = {m["round"]: m for m in read_jsonl(d / "metrics.jsonl")}
    for r in range(1, cfg.federation.rounds + 1):
        by_client = defaultdict(lambda: ([], []))
        for row in read_jsonl(d / f"answers/round_{r}.jsonl"):
            by_client[row["client"]][0].append(row["prompt_id"])
            by_client[row["client"]][1].append(row["answer"])
        up = sum(len(encode(AnswersMessage(r, c, ids, ans))) for c, (ids, ans) in by_client.items())
        kept = [p for p in read_jsonl(d / f"pseudo_labels/round_{r}.jsonl") if p["kept"]]
        down_msg = PseudoLabelsMessage(
            r, [p["prompt_id"] for p in kept], [p["consensus"] for p in kept], [round(p["agreement"], 4) for p in kept]
        )
        assert metrics[r]["bytes_up"] == up
        assert metrics[r]["bytes_down"] == cfg.federation.n_clients * len(encode(down_msg))
    assert metrics[-1]["bytes_up"] == metrics[0]["bytes_up"] == 0  # base and local send nothing


def test_pseudo_label_accuracy_is_measured_against_hidden_references(ci_run):
    cfg, result = ci_run
    refs = load_task_suite(resolve_data_path(cfg.data.path)).public_references
    rows = read_jsonl(result.run_dir / "pseudo_labels/round_1.jsonl")
    kept = [r for r in rows if r["kept"]]
    assert len(kept) >= cfg.data.n_public // 2  # the clients agree on most answers of the answering model
    assert all(r["consensus"].strip() and not r["empty"] for r in kept)
    every = sum(exact_match(r["consensus"], refs[r["prompt_id"]]) for r in rows) / len(rows)
    assert result.metrics[2]["consensus_accuracy_all_prompts"] == pytest.approx(every)
    expected = sum(exact_match(r["consensus"], refs[r["prompt_id"]]) for r in kept) / len(kept)
    assert result.metrics[2]["pseudo_label_accuracy"] == pytest.approx(expected)
    assert result.metrics[2]["kept"] == len(kept)
    assert all(0 <= r["agreement"] <= 1 for r in rows)


def test_summary_table_shows_each_stage_and_bytes(ci_run):
    _, result = ci_run
    lines = result.table.splitlines()
    assert "test EM" in lines[0] and "bytes up" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["base", "local", "round_1", "round_2"]


def test_same_seed_same_run_through_the_cli(ci_run, tmp_path, capsys, answering, labels_kept_and_trained):
    cfg, first = ci_run
    labels_kept_and_trained(first.run_dir)
    sets = [a for o in answering for a in ("--set", o)]
    assert main(["run", "--config", "ci", *sets, "--run-dir", str(tmp_path / "again"), "--quiet"]) == 0
    assert "round_2" in capsys.readouterr().out
    assert compare_runs(tmp_path / "again", first.run_dir) == []  # every answer, label, prediction and metric


def test_cli_rejects_a_bad_config_with_the_field_name(capsys):
    assert main(["run", "--config", "ci", "--set", "federation.n_clients=0"]) == 2
    assert "federation.n_clients" in capsys.readouterr().err


def test_every_metrics_row_fits_the_typed_schema(tmp_path):
    """metrics.jsonl rows of every method (with dropouts, DP off) have only the fields and types of runlog.MetricsRow."""
    from fedcofit_lite.energy import cpu_name
    from fedcofit_lite.runlog import MetricsRow, RunLog, check_row

    cfg = load_config("ci", ["federation.rounds=1", "federation.dropout=0.3", "federation.min_clients=1"])
    seen: set[str] = set()
    for method in ("consensus", "fedavg", "ffa", "local", "centralized"):
        run_federation(cfg, run_dir=tmp_path / method, progress=False, method=method)
        for row in RunLog(tmp_path / method).read_metrics():
            assert not check_row(row), (method, row["stage"], check_row(row))
            seen |= set(row)
    assert {"pseudo_label_accuracy", "fedavg_weights", "test_global", "dropped_clients", "kept"} <= seen
    rows = RunLog(tmp_path / "consensus").read_metrics()  # every row says what the models computed on (a CPU here)
    assert [r["hardware"] for r in rows] == [cpu_name()] * len(rows) and cpu_name()
    assert check_row({"stage": "x", "kept": "three", "surprise": 1}) == [
        "unknown field 'surprise'",
        "'kept' is str, expected <class 'int'>",
    ]
    assert "kept" in MetricsRow.__annotations__
