"""The fast engine (issue #11) computes what the plain path computes: loss, gradients, answers.

Every test runs the tiny-random model in float32, where the fast paths must
agree with the plain ones to float rounding; bf16 is checked for what it
promises (fp32 adapters and optimizer state, autocast on).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from fedcofit_lite.config import ConfigError, GenerationConfig, LoraConfig, TrainConfig, load_config
from fedcofit_lite.engine.batched_lora import RowAdapters
from fedcofit_lite.engine.batching import IGNORE_INDEX, TrainRecord, batch_order, collate, pad, tokenize_records
from fedcofit_lite.engine.collect import (
    BASE_ADAPTER,
    GenerationRequest,
    GenerationStats,
    common_prefix_length,
    decode,
    generate_with_confidence,
)
from fedcofit_lite.engine.finetune import attach_adapters, train_adapter
from fedcofit_lite.engine.loss import answer_loss, shared_prefix_length
from fedcofit_lite.engine.models import format_prompt, load_model
from fedcofit_lite.engine.precision import compute_dtype_of, cpu_has_native_bf16, resolve_dtype

RECORDS = [
    TrainRecord("Rewrite the date 2021-03-14 as DD/MM/YYYY.", "", "14/03/2021"),
    TrainRecord("Add 17 and 25.", "", "42"),
    TrainRecord("Uppercase this word.", "banana", "BANANA"),
    TrainRecord("What is the capital of France? Answer in one word.", "", "Paris"),
    TrainRecord("Spell 'cat' backwards.", "", "tac"),
    TrainRecord("Give the next number: 2, 4, 6.", "", "8"),
]
LORA = LoraConfig(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])


def fp32_clients(names=("alice", "bob", "carol"), perturb: float = 0.2):
    """A float32 tiny model with adapters whose B is non-zero (so every adapter answers differently)."""
    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="float32")
    for p in model.parameters():
        p.requires_grad_(False)
    peft_model = attach_adapters(model, list(names), LORA, seed=0)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=gen) * perturb)
    return peft_model.eval(), tok


def batch_of(tok, records=RECORDS):
    return collate(tokenize_records(tok, records, 128), tok.pad_token_id)


# -- training ----------------------------------------------------------------------


def test_answer_loss_equals_the_models_own_loss_and_gradients():
    model, tok = fp32_clients(["alice"])
    model.set_adapter("alice")
    batch = batch_of(tok)
    assert shared_prefix_length(batch) > 10  # the chat template's system turn
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    grads = {}
    for name, fn in {
        "model": lambda: model(**batch).loss,
        "answer": lambda: answer_loss(model, batch, share_prefix=False),
        "answer+prefix": lambda: answer_loss(model, batch, share_prefix=True),
    }.items():
        model.zero_grad()
        loss = fn()
        loss.backward()
        grads[name] = (loss.detach(), torch.cat([p.grad.flatten() for p in params]))
    for name in ("answer", "answer+prefix"):
        torch.testing.assert_close(grads[name][0], grads["model"][0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grads[name][1], grads["model"][1], rtol=1e-4, atol=1e-7)


def test_shared_prefix_stops_before_the_first_answer_token():
    _, tok = load_model("tiny-random", device="cpu", seed=0)
    # two records whose prompts are identical up to the answer: the prefix must leave one prompt token
    same = [TrainRecord("Say a fruit.", "", "apple"), TrainRecord("Say a fruit.", "", "pear")]
    batch = batch_of(tok, same)
    first_answer = int((batch["labels"][0] != IGNORE_INDEX).long().argmax())
    assert shared_prefix_length(batch) == first_answer - 1


def test_batches_grouped_by_length_cover_every_record_once_and_pad_less():
    lengths = [int(x) for x in torch.randint(20, 90, (64,), generator=torch.Generator().manual_seed(0))]
    plain = batch_order(lengths, 8, torch.Generator().manual_seed(3), group_by_length=False)
    grouped = batch_order(lengths, 8, torch.Generator().manual_seed(3), group_by_length=True)
    for order in (plain, grouped):
        assert sorted(i for b in order for i in b) == list(range(64))

    def padding(order):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in order)

    assert padding(grouped) < padding(plain) / 2
    assert grouped == batch_order(lengths, 8, torch.Generator().manual_seed(3), group_by_length=True)  # seeded


# -- generation ----------------------------------------------------------------------


REQUESTS = [
    GenerationRequest(a, r.instruction, r.context) for r in RECORDS for a in ("alice", "bob", "carol", BASE_ADAPTER)
]


@pytest.mark.parametrize(
    "fast",
    [
        GenerationConfig(max_new_tokens=10, batch_size=7),
        GenerationConfig(max_new_tokens=10, batch_size=24, share_prefix=False),
        GenerationConfig(max_new_tokens=10, batch_size=5, adapter_batches="per_adapter"),
    ],
    ids=["shared-prefix", "no-prefix", "per-adapter"],
)
def test_fast_decoder_gives_the_answers_of_transformers_generate(fast):
    model, tok = fp32_clients()
    prompts = [
        tok(format_prompt(tok, r.instruction, r.context), add_special_tokens=False)["input_ids"] for r in REQUESTS
    ]
    with torch.inference_mode():  # one row per batch, each through its own adapter (peft's mixed batch)
        rows = [
            _generate(model, [p], [r.adapter], fast, tok.pad_token_id, [tok.eos_token_id], None)[0][0]
            for p, r in zip(prompts, REQUESTS)
        ]
    reference = [a.strip() for a in tok.batch_decode(rows, skip_special_tokens=True)]
    assert len(set(reference)) > 4  # the adapters really answer differently
    assert generate_with_confidence(model, tok, REQUESTS, fast)[0] == reference


def test_finished_rows_stop_costing_decode_steps():
    model, tok = fp32_clients()
    prompts = [tok(format_prompt(tok, r.instruction), add_special_tokens=False)["input_ids"] for r in RECORDS]
    names = ["alice", "bob", "carol", "alice", "bob", "carol"]
    cfg = GenerationConfig(max_new_tokens=12)
    with torch.inference_mode():
        free, _ = decode(model, prompts, names, cfg, [tok.eos_token_id], tok.pad_token_id)
    # a token that rows reach at different steps serves as the end token: rows end at different times
    first_seen = {}
    for row in free:
        for step, t in enumerate(row):
            first_seen.setdefault(t, set()).add(step)
    stop = next(t for t, steps in first_seen.items() if len(steps) > 1)
    fast, slow = GenerationStats(), GenerationStats()
    with torch.inference_mode():
        a, conf_a = decode(model, prompts, names, cfg, [stop], tok.pad_token_id, fast)
        b, conf_b = _generate(model, prompts, names, cfg, tok.pad_token_id, [stop], slow)
    assert a == b
    assert conf_a == pytest.approx(conf_b, abs=1e-5)  # the same mean log-probability both ways
    assert all(c <= 0 for c in conf_a)
    assert any(len(r) < cfg.max_new_tokens for r in a) and any(len(r) == cfg.max_new_tokens for r in a)
    assert fast.generated_tokens == fast.decode_positions == sum(len(r) for r in a)
    assert slow.decode_positions > slow.generated_tokens == fast.generated_tokens


def test_stacked_adapters_equal_pefts_mixed_batch():
    model, tok = fp32_clients()
    ids = torch.randint(5, 500, (4, 9), generator=torch.Generator().manual_seed(0))
    names = ["alice", "bob", BASE_ADAPTER, "carol"]
    with torch.no_grad():
        reference = model(input_ids=ids, adapter_names=names).logits
        assert RowAdapters.supported(model, names)
        with RowAdapters(model, names) as rows:
            rows.select(names)
            stacked = model(input_ids=ids).logits
        after = model(input_ids=ids, adapter_names=names).logits  # the layers are restored on exit
    torch.testing.assert_close(stacked, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, reference)


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3], [1, 2, 4, 5], [1, 2]]) == 2
    assert common_prefix_length([[7], [8]]) == 0


# -- precision ----------------------------------------------------------------------------


def test_auto_dtype_follows_the_hardware_and_keeps_lora_and_adam_in_float32():
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert resolve_dtype("auto", torch.device("cpu")) == expected
    assert resolve_dtype("float32", torch.device("cpu")) == torch.float32
    model, tok = load_model("tiny-random", device="cpu", seed=0, dtype="bfloat16")
    for p in model.parameters():
        p.requires_grad_(False)
    peft_model = attach_adapters(model, ["alice"], LORA, seed=0)
    assert compute_dtype_of(peft_model) == torch.bfloat16
    assert {p.dtype for n, p in peft_model.named_parameters() if "lora_" in n} == {torch.float32}
    losses = train_adapter(peft_model, "alice", tok, RECORDS, TrainConfig(lr=1e-2, batch_size=3), epochs=3, seed=0)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0]
    assert {p.dtype for n, p in peft_model.named_parameters() if "lora_" in n} == {torch.float32}


def test_the_switches_of_the_engine_before_the_speed_work_are_gone(tmp_path):
    """A config that sets one is told to delete it; a run folder that recorded one still loads."""
    for key in ("train.dp_engine=opacus", "generation.decoder=generate", "train.answer_logits_only=false"):
        with pytest.raises(ConfigError, match=rf"{key.split('=')[0]} is no longer a key: .*; delete it"):
            load_config("ci", [key])
    recorded = load_config("ci").to_dict()
    recorded["train"]["dp_engine"], recorded["generation"]["decoder"] = "fast", "fast"
    (tmp_path / "config.yaml").write_text(__import__("yaml").safe_dump(recorded))
    assert load_config(tmp_path / "config.yaml", recorded=True) == load_config("ci")


def _generate(  # transformers' generate(), the reference the package's decoder is held to
    model: torch.nn.Module,
    prompts: Sequence[list[int]],
    adapter_names: list[str] | None,
    cfg: GenerationConfig,
    pad_id: int,
    eos_ids: Sequence[int],
    stats: GenerationStats | None,
) -> tuple[list[list[int]], list[float]]:
    """transformers' generate() on one batch; new tokens per row up to and including the end token, and their mean log-probability."""
    batch = pad(prompts, pad_id, left=True, device=next(model.parameters()).device)
    sampling = (
        {"do_sample": True, "temperature": cfg.temperature, "top_p": cfg.top_p}
        if cfg.do_sample
        else {"do_sample": False}
    )
    extra = {"adapter_names": adapter_names} if adapter_names is not None else {}
    out = model.generate(
        **batch,
        **extra,
        **sampling,
        max_new_tokens=cfg.max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=eos_ids[0],
        top_k=None,
        output_logits=True,
        return_dict_in_generate=True,
    )
    generated = out.sequences[:, batch["input_ids"].shape[1] :]  # (B, new), padded after each row's end
    chosen = torch.stack(  # (B, new): log-probability of each generated token, one step at a time
        [
            torch.log_softmax(s.float(), dim=-1).gather(-1, generated[:, k, None]).squeeze(-1)
            for k, s in enumerate(out.logits)
        ],
        dim=1,
    ).tolist()
    rows = generated.tolist()
    new, logprobs = [], []
    for row, lps in zip(rows, chosen):
        stop = next((j for j, t in enumerate(row) if t in eos_ids), None)
        new.append(row if stop is None else row[: stop + 1])
        logprobs.append(sum(lps[: len(new[-1])]) / max(1, len(new[-1])))
    if stats is not None:
        stats.generated_tokens += sum(len(r) for r in new)
        stats.decode_positions += sum(len(r) for r in rows)
        stats.prompt_tokens += int(batch["attention_mask"].sum())
        stats.prompt_positions += batch["attention_mask"].numel()
    return new, logprobs
