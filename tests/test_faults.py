"""Dropouts, the minimum-clients rule, checkpoints and resume (issue #5, part 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from rundiff import compare_runs

from fedcofit_lite.config import ConfigError, load_config
from fedcofit_lite.federation.loop import RoundFailedError, resume_federation, run_federation


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_dropped_clients_are_left_out_and_recorded(tmp_path):
    cfg = load_config("ci", ["federation.dropout=0.5", "federation.rounds=2"])
    result = run_federation(cfg, run_dir=tmp_path / "run", progress=False)
    rounds = [m for m in result.metrics if m["round"] >= 1]
    dropped = [set(m["dropped_clients"]) for m in rounds]
    assert any(dropped), "with dropout 0.5 and seed 0 some client drops out"  # deterministic for the seed
    for r, (m, gone) in enumerate(zip(rounds, dropped), start=1):
        answered = {a["client"] for a in read_jsonl(result.run_dir / f"answers/round_{r}.jsonl")}
        assert answered == {"client0", "client1", "client2"} - gone
        assert set(m["train_loss"]) == answered  # a dropped client does not train that round either
        assert all("simulated" in why for why in m["dropped_clients"].values())
    # the same seed drops the same clients
    again = run_federation(cfg, run_dir=tmp_path / "again", progress=False)
    assert [m.get("dropped_clients") for m in again.metrics] == [m.get("dropped_clients") for m in result.metrics]


def test_too_few_clients_fail_the_round_cleanly(tmp_path):
    cfg = load_config("ci", ["federation.dropout=0.9", "federation.min_clients=3"])
    with pytest.raises(RoundFailedError, match=r"min_clients = 3.*--resume"):
        run_federation(cfg, run_dir=tmp_path / "run", progress=False)
    d = tmp_path / "run"
    assert [m["stage"] for m in read_jsonl(d / "metrics.jsonl")] == ["base", "local"]  # nothing finished is lost
    assert json.loads((d / "checkpoint/state.json").read_text())["round"] == 0


def test_min_clients_is_validated():
    with pytest.raises(ConfigError, match="federation.min_clients"):
        load_config("ci", ["federation.min_clients=4"])  # ci has 3 clients
    with pytest.raises(ConfigError, match="federation.dropout"):
        load_config("ci", ["federation.dropout=1.0"])


def test_a_killed_run_resumes_to_the_same_result(tmp_path, extra_overrides, answering, labels_kept_and_trained):
    # with accumulated labels, what each client holds is part of the state the checkpoint must bring back
    overrides = [*answering, "federation.rounds=4", "client.accumulate=true"]
    whole = run_federation(load_config("ci", overrides), run_dir=tmp_path / "whole", progress=False)
    assert set(labels_kept_and_trained(whole.run_dir)) == {1, 2, 3, 4}

    d = tmp_path / "killed"
    cmd = [sys.executable, "-m", "fedcofit_lite", "run", "--config", "ci", "--quiet", "--run-dir", str(d)]
    for o in [*extra_overrides, *overrides]:  # the process does not see conftest's FEDCOFIT_TEST_SET wrapper
        cmd += ["--set", o]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = d / "checkpoint" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["round"] >= 1:
            proc.send_signal(signal.SIGKILL)  # no clean-up runs: as if the machine went away
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed; make it longer"
    done_before = json.loads(state.read_text())["round"]
    assert 1 <= done_before < 4 and not (d / "summary.json").exists()

    resume_federation(d, progress=False)
    labels_kept_and_trained(d)
    # the killed process ran on 1 thread, this one on torch's default: text and integers agree exactly, floats to 1e-6
    assert compare_runs(d, whole.run_dir) == []
    assert [f"round_{r}.jsonl" for r in range(1, 5)] == sorted(p.name for p in (d / "answers").iterdir())
    assert compare_runs(d, whole.run_dir, ["summary.json"], fields=["bytes_total"]) == []


def test_resume_of_a_folder_without_config_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a run folder"):
        resume_federation(tmp_path)


def test_resume_continues_the_method_that_ran(tmp_path):
    from fedcofit_lite.cli import main

    d = tmp_path / "fedavg"
    assert (
        main(
            [
                "run",
                "--config",
                "ci",
                "--method",
                "fedavg",
                "--quiet",
                "--run-dir",
                str(d),
                "--set",
                "federation.rounds=1",
            ]
        )
        == 0
    )
    assert load_config(d / "config.yaml").federation.method == "fedavg"  # so --resume knows what to continue
    with pytest.raises(FileExistsError, match="--resume"):
        run_federation(load_config("ci"), run_dir=d, progress=False)  # a folder with results is never appended to


def test_fedprox_needs_a_proximal_weight_wherever_it_is_named():
    with pytest.raises(ConfigError, match="train.prox_mu"):
        load_config("ci", ["train.prox_mu=0", "compare.methods=[fedavg, fedprox]"])
