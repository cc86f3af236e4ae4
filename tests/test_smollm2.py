"""A short federated run on the real embedded SmolLM2-135M-Instruct (about a minute on 2 cores)."""

from __future__ import annotations

import json

import pytest

from fedcofit_lite.config import load_config
from fedcofit_lite.federation.loop import run_federation

pytestmark = pytest.mark.slow


def test_short_run_on_smollm2(tmp_path):
    cfg = load_config(
        "cpu",
        [
            "federation.n_clients=2",
            "federation.rounds=1",
            "data.families=[date_rewrite, capital]",
            "data.partition=by_family",
            "data.max_train_per_client=8",
            "data.n_public=4",
            "data.n_test_per_family=2",
            "train.epochs=3",
            "train.round_epochs=1",
            "generation.max_new_tokens=12",
            "model.device=cpu",
        ],
    )
    result = run_federation(cfg, run_dir=tmp_path / "run", progress=False)
    metrics = result.metrics
    assert [m["stage"] for m in metrics] == ["base", "local", "round_1"]
    # the same 8 examples for 3 epochs of one batch: a real model's loss must fall
    local_losses = metrics[1]["train_loss"]
    assert all(loss < 3.0 for loss in local_losses.values()), local_losses
    answers = [json.loads(line) for line in (tmp_path / "run/answers/round_1.jsonl").read_text().splitlines()]
    assert len(answers) == 2 * 4
    assert sum(bool(a["answer"].strip()) for a in answers) >= 6  # a real model says something
    assert metrics[2]["bytes_up"] > 0 and metrics[2]["bytes_down"] > 0
    assert metrics[2]["n_prompts"] == 4
