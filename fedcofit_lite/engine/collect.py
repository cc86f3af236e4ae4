"""Batched generation: many clients' answers to many prompts in few batches.

Clients of one architecture share a base model and differ only by adapter, so one left-padded batch can mix
prompts of different clients: each row goes through its own adapter (:class:`~.batched_lora.RowAdapters`; peft's
``adapter_names`` mixed batch where an adapter is not plain LoRA). ``generation.adapter_batches = per_adapter``
instead gives each batch one adapter's prompts. :func:`decode` is the KV-cache loop, under the model's compute
precision: the answers are short next to ``max_new_tokens``, so a row that has ended leaves the batch.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import DynamicCache, PreTrainedTokenizerBase

from ..config import GenerationConfig
from ..progress import bar as progress_bar
from .batched_lora import RowAdapters
from .batching import pad
from .models import cache_argument, format_prompt
from .precision import autocast

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in mixed batches


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to answer with one adapter (``BASE_ADAPTER`` for the frozen base)."""

    adapter: str
    instruction: str
    context: str = ""


@dataclass
class GenerationStats:
    """What generation cost; :func:`decode` adds to it when one is passed."""

    batches: int = 0
    prompt_tokens: int = 0  # non-pad prompt tokens prefilled
    prompt_positions: int = 0  # prefilled positions, padding included
    generated_tokens: int = 0  # new tokens per answer, up to and including its end token
    decode_positions: int = 0  # new-token positions computed, including rows that had already ended


def generate_with_confidence(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[GenerationRequest],
    cfg: GenerationConfig,
    seed: int = 0,
    desc: str = "generate",
    stats: GenerationStats | None = None,
) -> tuple[list[str], list[float]]:
    """Answer every request; returns the decoded new text per request and the model's confidence in it: ``exp`` of
    the mean log-probability of its generated tokens (end token included), in (0, 1], known at no extra cost.

    Requests are batched by prompt length (and by adapter with ``cfg.adapter_batches == "per_adapter"``); answers come
    back in input order. With ``do_sample`` they depend on ``seed`` and on the batch composition.
    """
    if not requests:
        return [], []
    device = next(model.parameters()).device
    prompts = [format_prompt(tokenizer, r.instruction, r.context) for r in requests]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    mixed = hasattr(model, "peft_config")
    eos_ids = [tokenizer.eos_token_id]
    answers, confidence = [""] * len(requests), [0.0] * len(requests)
    adapters = [r.adapter for r in requests]
    stacked = mixed and RowAdapters.supported(model, adapters)
    with (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        torch.inference_mode(),
        autocast(model),
        RowAdapters(model, adapters) if stacked else contextlib.nullcontext() as routing,
    ):
        torch.manual_seed(seed)
        for rows in progress_bar(batches_of(requests, encoded, cfg), desc=desc, leave=False, unit="batch"):
            names = [adapters[i] for i in rows] if mixed else None
            new_tokens, logprobs = decode(
                model, [encoded[i] for i in rows], names, cfg, eos_ids, tokenizer.pad_token_id, stats, routing
            )
            for i, text, lp in zip(rows, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), logprobs):
                answers[i], confidence[i] = text.strip(), math.exp(lp)
    return answers, confidence


def batches_of(
    requests: Sequence[GenerationRequest], encoded: Sequence[list[int]], cfg: GenerationConfig
) -> list[list[int]]:
    """Request indices per batch: sorted by prompt length (per adapter first with ``per_adapter``)."""
    per_adapter = cfg.adapter_batches == "per_adapter"
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(requests):  # one group, or one per adapter in order of appearance
        groups.setdefault(r.adapter if per_adapter else "", []).append(i)
    out = []
    for idx in groups.values():
        idx = sorted(idx, key=lambda i: (len(encoded[i]), i))
        out += [idx[s : s + cfg.batch_size] for s in range(0, len(idx), cfg.batch_size)]
    return out


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by every sequence."""
    first, n = seqs[0], min(len(s) for s in seqs)
    return next((k for k in range(n) if any(s[k] != first[k] for s in seqs)), n)


def _prefill_prefix(forward, cache, prefix: list[int], names: list[str] | None, n_rows: int, device) -> None:
    """The KV cache of the ``prefix`` every prompt shares: computed once per adapter (U), copied to its rows (B)."""
    owners = list(dict.fromkeys(names)) if names is not None else [None]
    forward(owners if names is not None else None, input_ids=torch.tensor([prefix] * len(owners), device=device))
    rows_of_owner = [owners.index(n) for n in names] if names else [0] * n_rows  # (B,)
    cache.batch_select_indices(torch.tensor(rows_of_owner, device=device))


def decode(
    model: torch.nn.Module,
    prompts: Sequence[list[int]],
    adapter_names: list[str] | None,
    cfg: GenerationConfig,
    eos_ids: Sequence[int],
    pad_id: int,
    stats: GenerationStats | None = None,
    routing: RowAdapters | None = None,
) -> tuple[list[list[int]], list[float]]:
    """KV-cache decoding of one batch of prompts; returns each row's new tokens (up to its end token, at most
    ``cfg.max_new_tokens``) and their mean log-probability.

    1. Prefill. With ``cfg.share_prefix`` the prefix every prompt shares (the chat template's system turn) is computed
       once per adapter and its KV cache copied to that adapter's rows; each prompt's rest, left-padded, goes on top.
    2. Decode one token per step; a row that produced an end token leaves the batch, its cache rows with it.

    ``adapter_names`` (one per row) go to ``routing`` (a :class:`~.batched_lora.RowAdapters` the caller entered)
    when given, else to peft's mixed-adapter forward.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    device = next(model.parameters()).device
    cache = DynamicCache(config=base.config)
    kv = {cache_argument(base): cache, "use_cache": True}
    names = list(adapter_names) if adapter_names is not None else None

    def forward(rows: list[str] | None, **inputs: torch.Tensor) -> torch.Tensor:
        """Logits of the last position; each row through its adapter."""
        if rows is not None and routing is not None:
            routing.select(rows)
        extra = {"adapter_names": rows} if rows is not None and routing is None else {}
        return model(**inputs, **kv, **extra, logits_to_keep=1).logits[:, -1]

    # 1. prefill: the shared prefix once per adapter, then every prompt's own tokens
    shared = common_prefix_length(prompts) if cfg.share_prefix else 0
    shared = min(shared, min(len(p) for p in prompts) - 1)  # every row keeps a token of its own to prefill
    if shared > 0:
        _prefill_prefix(forward, cache, prompts[0][:shared], names, len(prompts), device)
    batch = pad([p[shared:] for p in prompts], pad_id, left=True, device=device)  # (B, S) each
    own = batch["attention_mask"]  # (B, S)
    mask = torch.cat([own.new_ones((len(prompts), shared)), own], dim=1)  # (B, P + S)
    positions = shared + (own.cumsum(-1) - 1).clamp(min=0)  # (B, S): left padding shifts each row's start
    logits = forward(names, input_ids=batch["input_ids"], attention_mask=mask, position_ids=positions)
    if stats is not None:  # one batch: the prompts' own tokens, on top of the shared prefix once per adapter
        prefix = shared * (len(set(names)) if names else 1)
        stats.batches += 1
        stats.prompt_tokens += int(own.sum()) + prefix
        stats.prompt_positions += own.numel() + prefix

    # 2. decode
    alive = torch.arange(len(prompts))  # original row of each row still in the batch
    last = positions[:, -1:]  # (b, 1)
    eos = torch.tensor(list(eos_ids), device=device)
    new: list[list[int]] = [[] for _ in prompts]
    logprob = [0.0] * len(prompts)
    for step in range(cfg.max_new_tokens):
        token = _next_token(logits, cfg)  # (b,)
        chosen = torch.log_softmax(logits.float(), dim=-1).gather(-1, token[:, None]).squeeze(-1)  # (b,)
        for row, t, lp in zip(alive.tolist(), token.tolist(), chosen.tolist()):
            new[row].append(t)
            logprob[row] += lp
        if stats is not None:  # one new token per row still in the batch
            stats.decode_positions += len(token)
            stats.generated_tokens += len(token)
        ended = torch.isin(token, eos)
        if step + 1 == cfg.max_new_tokens or ended.all():
            break
        if ended.any():  # the rows that ended leave the batch, and their cache with them
            keep = torch.nonzero(~ended).flatten()
            cache.batch_select_indices(keep)
            mask, last, token, alive = mask[keep], last[keep], token[keep], alive[keep.cpu()]
            names = [names[k] for k in keep.tolist()] if names is not None else None
        mask = torch.cat([mask, mask.new_ones((len(token), 1))], dim=1)
        last = last + 1
        logits = forward(names, input_ids=token[:, None], attention_mask=mask, position_ids=last)
    return new, [lp / max(1, len(t)) for lp, t in zip(logprob, new)]


def _next_token(logits: torch.Tensor, cfg: GenerationConfig) -> torch.Tensor:
    """Greedy, or a sample at ``cfg.temperature`` from the top-``cfg.top_p`` mass; logits (b, vocab) -> (b,)."""
    if not cfg.do_sample:
        return logits.float().argmax(-1)  # argmax over bf16 logits is 3x slower on CPU; same winner
    probs = torch.softmax(logits.float() / cfg.temperature, dim=-1)
    sorted_p, sorted_idx = probs.sort(dim=-1, descending=True)
    outside = sorted_p.cumsum(-1) - sorted_p > cfg.top_p  # tokens after the nucleus; the top one always stays
    sorted_p = sorted_p.masked_fill(outside, 0.0)
    choice = torch.multinomial(sorted_p / sorted_p.sum(-1, keepdim=True), 1)  # (b, 1)
    return sorted_idx.gather(-1, choice).squeeze(-1)
