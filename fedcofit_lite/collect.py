"""Batched generation: many clients' answers to many prompts in few ``generate`` calls.

Clients of one architecture share a base model and differ only by adapter, so
one left-padded batch can mix prompts of different clients: peft routes each
row through its own adapter (``generate(..., adapter_names=[...])``). On 2 CPU
cores this is about 3.7x faster per prompt than one prompt at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .config import GenerationConfig
from .models import format_prompt
from .progress import bar as progress_bar

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in mixed batches


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt to answer with one adapter (``BASE_ADAPTER`` for the frozen base)."""

    adapter: str
    instruction: str
    context: str = ""


def generate_answers(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    requests: Sequence[GenerationRequest],
    cfg: GenerationConfig,
    seed: int = 0,
    desc: str = "generate",
) -> list[str]:
    """Answer every request; returns the decoded new text per request, in order.

    Requests are sorted by prompt length so each batch carries little padding,
    then answers are put back in the input order. With ``do_sample`` the
    result depends on ``seed`` and on the batch composition.
    """
    if not requests:
        return []
    device = next(model.parameters()).device
    prompts = [format_prompt(tokenizer, r.instruction, r.context) for r in requests]
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(requests)), key=lambda i: (len(encoded[i]), i))
    mixed = hasattr(model, "peft_config")
    answers: list[str] = [""] * len(requests)
    sampling = {"do_sample": True, "temperature": cfg.temperature, "top_p": cfg.top_p} if cfg.do_sample else {"do_sample": False}
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        torch.manual_seed(seed)
        for start in progress_bar(range(0, len(order), cfg.batch_size), desc=desc, leave=False, unit="batch"):
            rows = order[start : start + cfg.batch_size]
            batch = _left_pad([encoded[i] for i in rows], tokenizer.pad_token_id, device)
            extra = {"adapter_names": [requests[i].adapter for i in rows]} if mixed else {}
            out = model.generate(
                **batch,
                **extra,
                **sampling,
                max_new_tokens=cfg.max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                top_k=None,
            )
            new_tokens = out[:, batch["input_ids"].shape[1] :]  # (B, new)
            for i, text in zip(rows, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                answers[i] = text.strip()
    return answers


def _left_pad(seqs: Sequence[list[int]], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, width - len(s) :] = torch.tensor(s)
        mask[row, width - len(s) :] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}
