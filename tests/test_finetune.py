"""LoRA training and mixed-adapter generation on the tiny-random model."""

from __future__ import annotations

import pytest
import torch

from fedcofit_lite.config import GenerationConfig, LoraConfig, TrainConfig
from fedcofit_lite.engine.batching import IGNORE_INDEX, TrainRecord, tokenize_records
from fedcofit_lite.engine.collect import BASE_ADAPTER, GenerationRequest, generate_with_confidence
from fedcofit_lite.engine.finetune import attach_adapters, train_adapter
from fedcofit_lite.engine.models import load_model

RECORDS = [TrainRecord(f"Rewrite the date 2021-0{m}-1{m} as DD/MM/YYYY.", "", f"1{m}/0{m}/2021") for m in range(1, 5)]


@pytest.fixture
def two_clients():
    """A fresh tiny model with adapters 'a' and 'b' (get_peft_model mutates the base)."""
    model, tok = load_model("tiny-random", device="cpu", seed=0)
    return attach_adapters(
        model, ["alice", "bob"], LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"])
    ), tok


def test_loss_is_on_answer_tokens_only(tiny):
    _, tok = tiny
    ((ids, labels),) = tokenize_records(tok, RECORDS[:1], max_length=128)
    answer = tok("11/01/2021" + tok.eos_token, add_special_tokens=False)["input_ids"]
    assert labels[-len(answer) :] == answer == ids[-len(answer) :]
    assert all(label == IGNORE_INDEX for label in labels[: -len(answer)])


def test_truncation_keeps_the_answer(tiny):
    _, tok = tiny
    ((ids, labels),) = tokenize_records(tok, RECORDS[:1], max_length=16)
    assert len(ids) == 16 and labels[-1] == ids[-1] != IGNORE_INDEX


def test_training_moves_only_its_adapter_and_lowers_the_loss(two_clients):
    model, tok = two_clients
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(lr=1e-2, batch_size=4, max_length=96, max_grad_norm=0.0)
    losses = train_adapter(model, "alice", tok, RECORDS, cfg, epochs=10, seed=0)
    assert len(losses) == 10
    # batch_size == len(RECORDS): every step sees the identical batch, so without
    # learning the loss would stay flat; a learning adapter drives it down each step.
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < losses[0] - 0.25
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, snapshot[n])}
    assert changed and all(".alice." in n for n in changed), sorted(changed)[:5]
    assert any("lora_B.alice" in n for n in changed)  # B starts at zero; it must have learnt


def test_training_is_deterministic_per_seed():
    runs = []
    for _ in range(2):
        model, tok = load_model("tiny-random", device="cpu", seed=0)
        model = attach_adapters(model, ["alice"], LoraConfig(r=4, alpha=8, dropout=0.1, target_modules=["q_proj"]))
        runs.append(train_adapter(model, "alice", tok, RECORDS, TrainConfig(lr=1e-3, batch_size=2), epochs=2, seed=7))
    assert runs[0] == runs[1]


def test_mixed_adapter_batch_equals_one_prompt_at_a_time(two_clients):
    model, tok = two_clients
    train_adapter(model, "alice", tok, RECORDS, TrainConfig(lr=5e-3, batch_size=4), epochs=10, seed=0)
    cfg = GenerationConfig(max_new_tokens=6, batch_size=8)
    requests = [
        GenerationRequest(adapter, r.instruction) for r in RECORDS[:3] for adapter in ("alice", "bob", BASE_ADAPTER)
    ]
    batched = generate_with_confidence(model, tok, requests, cfg)[0]
    single = [
        generate_with_confidence(model, tok, [r], GenerationConfig(max_new_tokens=6, batch_size=1))[0][0]
        for r in requests
    ]
    assert batched == single
    # alice was trained, bob and the base were not: bob answers like the base
    assert batched[1::3] == batched[2::3]


def test_missing_target_module_lists_the_real_ones():
    model, _ = load_model("tiny-random", device="cpu")
    with pytest.raises(ValueError, match=r"\['query'\] do not exist.*q_proj"):
        attach_adapters(model, ["alice"], LoraConfig(target_modules=["query"]))


def _fresh(adapters, dtype="float32"):
    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype=dtype)
    lora = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    return attach_adapters(model, adapters, lora), tok


def _alone_on_peft(model, tok, job, cfg: TrainConfig) -> list[float]:
    """One client trained by itself through peft's own LoRA forward (its active adapter): the trainer's reference."""
    from fedcofit_lite.engine.batching import batch_order, collate
    from fedcofit_lite.engine.finetune import adamw, trainable_parameters
    from fedcofit_lite.engine.loss import answer_loss

    params = trainable_parameters(model, job.adapter, job.freeze_a)  # set_adapter: peft routes every row
    optimizer, anchor = adamw(params, cfg), [p.detach().clone() for p in params]
    data = tokenize_records(tok, job.records, cfg.max_length)
    weights = torch.tensor([r.weight for r in job.records])
    gen, losses = torch.Generator().manual_seed(job.seed), []
    model.train()
    for _ in range(job.epochs):
        for rows in batch_order([len(ids) for ids, _ in data], cfg.batch_size, gen, cfg.group_by_length):
            loss = answer_loss(
                model, collate([data[i] for i in rows], tok.pad_token_id), cfg.share_prefix, weights[rows]
            )
            prox = sum((p - a).pow(2).sum() for p, a in zip(params, anchor))
            optimizer.zero_grad()
            (loss + job.prox_mu / 2 * prox).backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    return losses


@pytest.mark.parametrize("share_prefix", [True, False])
def test_clients_trained_together_get_the_updates_they_get_alone(share_prefix):
    """Joint steps (every client's batch in one forward and backward, each row through its own adapter) equal,
    to float rounding, each client trained by itself through peft's own LoRA forward; one job alone too."""
    from fedcofit_lite.engine.finetune import TrainJob, adapter_state, train_adapters

    records = [*RECORDS, TrainRecord("Say the longest word you know, please, in capitals.", "", "ANTIDISESTABLISHMENT")]
    weighted = [TrainRecord(r.instruction, r.context, r.response, weight=0.5 + i / 4) for i, r in enumerate(records)]
    jobs = [
        TrainJob("alice", records, epochs=3, seed=1),  # 3 steps per epoch: the longest job
        TrainJob("bob", weighted[:3], epochs=2, seed=2, prox_mu=0.5),  # leaves the joint batch early
        TrainJob("carol", records[1:], epochs=1, seed=3, freeze_a=True),  # FFA-LoRA: only B learns
        TrainJob("dave", records, epochs=0, seed=4),  # trains nothing
    ]
    cfg = TrainConfig(lr=1e-2, batch_size=2, max_length=96, max_grad_norm=0.5, share_prefix=share_prefix)
    alone, tok = _fresh([j.adapter for j in jobs])
    start = {j.adapter: adapter_state(alone, j.adapter) for j in jobs}
    start = {a: {k: v.clone() for k, v in s.items()} for a, s in start.items()}
    expected = {j.adapter: _alone_on_peft(alone, tok, j, cfg) for j in jobs}
    one, _ = _fresh(["bob"])
    assert train_adapter(one, "bob", tok, weighted[:3], cfg, 2, seed=2, prox_mu=0.5) == pytest.approx(
        expected["bob"], rel=1e-4, abs=1e-5
    )  # the trainer with one job: the same
    together, tok = _fresh([j.adapter for j in jobs])
    got = train_adapters(together, jobs, tok, cfg)

    assert {a: len(v) for a, v in got.items()} == {"alice": 9, "bob": 4, "carol": 2, "dave": 0}
    for a in expected:
        assert got[a] == pytest.approx(expected[a], rel=1e-4, abs=1e-5), a
        want, have = adapter_state(alone, a), adapter_state(together, a)
        # to float rounding, which Adam's steps carry on, measured against the tensor's norm: entry by entry, one small
        # entry of 256 was 3.6e-4 off on an Intel Xeon (AMX), the whole tensor 4e-6; a row routed through another
        # client's adapter moves a tensor by a large share of its norm
        for k in want:
            off = float((have[k] - want[k]).norm() / max(float(want[k].norm()), 1e-12))  # B of an untrained client: 0
            assert off < 1e-4, f"{a} {k}: the joint steps moved it {off:.1e} of its norm away from training alone"
    assert all(
        torch.equal(adapter_state(together, "carol")[k], start["carol"][k]) for k in start["carol"] if "lora_A" in k
    )
    assert all(torch.equal(adapter_state(together, "dave")[k], start["dave"][k]) for k in start["dave"])
    assert not any(p.requires_grad and p.grad is not None for p in together.parameters())  # no gradients kept


def test_joint_training_with_lora_dropout_is_deterministic_per_seed_and_drops_at_the_rate():
    from fedcofit_lite.engine.batched_lora import RowAdapters
    from fedcofit_lite.engine.finetune import TrainJob, adapter_state, train_adapters

    runs = []
    for _ in range(2):
        model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="float32")
        lora = LoraConfig(r=4, alpha=8, dropout=0.2, target_modules=["q_proj", "v_proj"])
        model = attach_adapters(model, ["alice", "bob"], lora)
        jobs = [TrainJob("alice", RECORDS, 2, seed=7), TrainJob("bob", RECORDS[:2], 2, seed=8)]
        losses = train_adapters(model, jobs, tok, TrainConfig(lr=1e-2, batch_size=2))
        runs.append((losses, {k: v.clone() for k, v in adapter_state(model, "bob").items()}))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])

    torch.manual_seed(0)
    rows = RowAdapters(model, ["alice"], train=True)
    dropout = torch.nn.Dropout(0.2).train()
    x = torch.ones(64, 32, 16)
    y = rows._dropout(x, dropout)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.01  # each element dropped with probability p
    assert float(y.mean()) == pytest.approx(1.0, abs=0.02)  # the kept ones scaled by 1 / (1 - p)
    assert torch.equal(rows._dropout(x, dropout.eval()), x)  # no dropout outside training
