"""DP-SGD on LoRA adapters: exact per-example gradients, an accountant that moves the right way (issue #5, part 4)."""

from __future__ import annotations

import json

import pytest
import torch

from fedcofit_lite.config import ConfigError, load_config
from fedcofit_lite.engine.batching import TrainRecord, collate, tokenize_records
from fedcofit_lite.engine.finetune import attach_adapters
from fedcofit_lite.engine.privacy import epsilon, new_accountant
from fedcofit_lite.federation.loop import run_federation


def _close(got, want):
    """Equal up to float32 summation order: 1e-4 relative, and 1e-4 of the tensor's largest entry absolute (an
    entry near zero is the difference of larger terms, so its own relative error can be large)."""
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()) + 1e-12)


def test_fast_per_example_gradients_equal_one_backward_per_example_and_clip_like_opacus():
    from fedcofit_lite.engine.loss import answer_loss
    from fedcofit_lite.engine.models import load_model
    from fedcofit_lite.engine.privacy import PerExampleGrads, clip_and_noise

    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="float32")
    peft_model = attach_adapters(model, ["c0", "c1"], load_config("ci").lora, seed=0)
    for n, p in peft_model.named_parameters():
        p.requires_grad_(".c0." in n and "lora_" in n)
    with torch.no_grad():  # B starts at zero; make the adapter non-trivial so every gradient is
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    peft_model.set_adapter("c0")
    peft_model.eval()  # no dropout: the two computations must see the same network
    records = [
        TrainRecord("Say hi", "", "hi"),
        TrainRecord("Add 2 and 3", "", "5"),
        TrainRecord("Capital of France?", "", "Paris"),
    ]
    batch = collate(tokenize_records(tok, records, 64), tok.pad_token_id)
    params = [p for p in peft_model.parameters() if p.requires_grad]

    expected = []
    for i in range(3):
        peft_model.zero_grad()
        one = {k: v[i : i + 1] for k, v in batch.items()}
        answer_loss(peft_model, one, share_prefix=False).backward()
        expected.append([p.grad.clone() for p in params])

    recorder = PerExampleGrads(peft_model, "c0")
    peft_model.zero_grad()
    answer_loss(peft_model, batch, False, groups=torch.arange(3), n_groups=3).sum().backward()
    recorder.close()
    samples = [recorder.samples[p] for p in params]
    assert len(samples) == len(params) > 0  # every trainable LoRA weight of c0, none of c1
    for k in range(len(params)):
        for i in range(3):
            _close(samples[k][i], expected[i][k])

    # clip each example's whole gradient to C, sum; with zero noise, divided by the expected batch
    norms = torch.stack([torch.cat([g.flatten() for g in e]).norm() for e in expected])
    C = float(norms.min()) / 2  # every example is clipped
    update = clip_and_noise(samples, C, 0.0, torch.Generator().manual_seed(0), divisor=2.0)
    for k in range(len(params)):
        want = sum(expected[i][k] * C / (norms[i] + 1e-6) for i in range(3)) / 2.0
        _close(update[k], want)


def test_dp_sgd_spends_privacy_and_moves_only_the_adapter():
    from fedcofit_lite.engine.finetune import adapter_state, train_adapter
    from fedcofit_lite.engine.models import load_model

    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="float32")
    peft_model = attach_adapters(model, ["c0", "c1"], load_config("ci").lora, seed=0)
    before = {a: {k: v.clone() for k, v in adapter_state(peft_model, a).items()} for a in ("c0", "c1")}
    cfg = load_config("ci", ["train.dp_noise_multiplier=1.0", "train.batch_size=2"]).train
    records = [TrainRecord(f"Add {i} and 3", "", str(i + 3)) for i in range(6)]
    accountant = new_accountant()
    train_adapter(peft_model, "c0", tok, records, cfg, epochs=2, seed=5, accountant=accountant)
    assert len(accountant.history) == 1 and accountant.history[0] == (1.0, 2 / 6, 6)  # (sigma, q, steps)
    assert epsilon(accountant, 1e-5) > 0
    after = adapter_state(peft_model, "c0")
    assert any(not torch.equal(after[k], before["c0"][k]) for k in after)
    assert all(torch.equal(adapter_state(peft_model, "c1")[k], v) for k, v in before["c1"].items())


def test_accountant_epsilon_falls_with_noise_and_grows_with_steps():
    eps = {}
    for sigma in (0.7, 1.0, 2.0):
        acc = new_accountant()
        for _ in range(20):
            acc.step(noise_multiplier=sigma, sample_rate=0.2)
        eps[sigma] = epsilon(acc, 1e-5)
    assert eps[0.7] > eps[1.0] > eps[2.0] > 0
    assert epsilon(new_accountant(), 1e-5) == 0.0


@pytest.fixture(scope="module")
def dp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    return {
        sigma: run_federation(
            load_config("ci", [f"train.dp_noise_multiplier={sigma}", "federation.rounds=2"]),
            run_dir=root / str(sigma),
            progress=False,
        )
        for sigma in (0.8, 2.0)
    }


def test_dp_run_reports_epsilon_per_client_after_every_round(dp_runs):
    for result in dp_runs.values():
        rows = [m for m in result.metrics if m["round"] >= 0]
        assert all(set(m["dp_epsilon"]) == {"client0", "client1", "client2"} for m in rows)
        assert all(m["dp_delta"] == 1e-5 for m in rows)
        per_round = [m["dp_epsilon"]["client0"] for m in rows]
        assert per_round == sorted(per_round) and per_round[0] > 0  # privacy spent only grows
    more_noise, less_noise = dp_runs[2.0].metrics[-1]["dp_epsilon"], dp_runs[0.8].metrics[-1]["dp_epsilon"]
    assert all(more_noise[c] < less_noise[c] for c in more_noise)


def test_dp_accountants_survive_a_checkpoint(dp_runs):
    state = json.loads((dp_runs[0.8].run_dir / "checkpoint/state.json").read_text())
    assert set(state["accountants"]) == {"client0", "client1", "client2"}
    assert all(len(h) >= 1 for h in state["accountants"].values())


def test_dp_options_are_validated():
    with pytest.raises(ConfigError, match="train.dp_noise_multiplier"):
        load_config("ci", ["train.dp_noise_multiplier=-1"])
    with pytest.raises(ConfigError, match="train.dp_delta"):
        load_config("ci", ["train.dp_delta=0"])


def test_dp_accounting_is_per_method_in_a_comparison(tmp_path):
    from fedcofit_lite.experiments.compare import run_comparison

    cfg = load_config("ci", ["train.dp_noise_multiplier=1.0", "federation.rounds=1"])
    comp = run_comparison(cfg, ["fedavg", "local", "centralized"], run_dir=tmp_path / "c", progress=False)
    fedavg, local, central = (comp.metrics[m][-1]["dp_epsilon"] for m in ("fedavg", "local", "centralized"))
    assert fedavg == local  # same steps on the same private data from the same shared start, no leak between methods
    assert set(central) == {"central"}  # the pooled model has its own accountant, nothing carried over
    with pytest.raises(ConfigError, match="DP-SGD with fedprox"):
        load_config("ci", ["train.dp_noise_multiplier=1.0", "compare.methods=[consensus, fedprox]"])


def test_dp_epsilon_target_sets_each_clients_noise_and_only_b_keeps_a(tmp_path):
    import numpy as np

    from fedcofit_lite.engine.privacy import noise_for_epsilon
    from fedcofit_lite.federation.loop import Federation
    from fedcofit_lite.runlog import RunLog

    with pytest.raises(ConfigError, match="keep one"):
        load_config("ci", ["train.dp_epsilon=3", "train.dp_noise_multiplier=1"])
    cfg = load_config("ci", ["train.dp_epsilon=4", "train.only_b=true", "federation.rounds=1"])
    fed = Federation(cfg, runlog=RunLog(tmp_path / "dp"), progress=False)
    start = {k: v.copy() for k, v in fed.cohort.start_adapter().items()}
    fed.run()
    rows = [json.loads(x) for x in (tmp_path / "dp" / "metrics.jsonl").read_text().splitlines()]
    spent = rows[-1]["dp_epsilon"]
    assert set(spent) == {c.client_id for c in fed.clients}
    for c in fed.clients:
        n = len(c.private)
        sigma = c.train_cfg.dp_noise_multiplier
        assert sigma == pytest.approx(noise_for_epsilon(4, cfg.train.dp_delta, n, cfg.train.batch_size, 2))
        assert 2.0 < spent[c.client_id] <= 4.0 * 1.02  # pseudo-labels in round 1 only lower the spend below the plan
        after = fed.pool.get_tensors(c.client_id)
        assert all(np.array_equal(after[k], start[k]) for k in start if "lora_A" in k)  # only B trained
        assert any(not np.array_equal(after[k], start[k]) for k in start if "lora_B" in k)
