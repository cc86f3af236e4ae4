"""Client-side LoRA fine-tuning on one shared frozen base model.

Every client of an architecture is a named peft adapter on the SAME base
model (``peft`` multi-adapter), so memory grows by one adapter per client,
not by one model copy. :func:`train_adapter` activates one adapter, trains
only its parameters, and computes the loss on answer tokens only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import peft
import torch
from transformers import PreTrainedTokenizerBase

from .config import LoraConfig, TrainConfig
from .models import end_of_answer, format_prompt
from .progress import bar as progress_bar

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value that CrossEntropyLoss skips


@dataclass(frozen=True)
class TrainRecord:
    """One supervised example: the model sees the prompt, learns the answer."""

    instruction: str
    context: str
    response: str


def peft_lora_config(cfg: LoraConfig) -> peft.LoraConfig:
    return peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )


def attach_adapters(
    model: torch.nn.Module, adapter_names: Sequence[str], cfg: LoraConfig, seed: int = 0
) -> peft.PeftModel:
    """Wrap a frozen base model with one fresh LoRA adapter per name.

    Adapter ``i`` is initialised under seed ``seed * 100_003 + i``: the same
    names in the same order give the same starting weights on every run.
    """
    lora = peft_lora_config(cfg)
    missing = [m for m in cfg.target_modules if not any(n.endswith(f".{m}") for n, _ in model.named_modules())]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(
            f"lora.target_modules {missing} do not exist in {type(model).__name__}; "
            f"its linear layers are {linear}."
        )
    peft_model = None
    for i, name in enumerate(adapter_names):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 100_003 + i)
            if peft_model is None:
                peft_model = peft.get_peft_model(model, lora, adapter_name=name)
            else:
                peft_model.add_adapter(name, lora)
    assert peft_model is not None, "attach_adapters needs at least one adapter name"
    return peft_model


def tokenize_records(
    tokenizer: PreTrainedTokenizerBase, records: Sequence[TrainRecord], max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record; labels are IGNORE_INDEX on prompt tokens."""
    out = []
    stop = end_of_answer(tokenizer)
    for rec in records:
        prompt_ids = tokenizer(format_prompt(tokenizer, rec.instruction, rec.context), add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(rec.response + stop, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + answer_ids)[-max_length:]  # keep the answer, drop the prompt's start
        n_answer = min(len(answer_ids), len(ids))
        labels = [IGNORE_INDEX] * (len(ids) - n_answer) + ids[len(ids) - n_answer :]
        out.append((ids, labels))
    return out


def collate(batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask, labels, each (B, T)."""
    width = max(len(ids) for ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, lab) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(lab)] = torch.tensor(lab)
        mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}


def train_adapter(
    model: peft.PeftModel,
    adapter: str,
    tokenizer: PreTrainedTokenizerBase,
    records: Sequence[TrainRecord],
    cfg: TrainConfig,
    epochs: int,
    seed: int,
    desc: str | None = None,
    prox_mu: float = 0.0,
    accountant=None,
) -> list[float]:
    """Train one adapter of ``model`` on ``records``; return the loss of every step.

    Only ``adapter``'s LoRA parameters receive gradients; the base and the
    other clients' adapters are untouched. A fresh AdamW is made per call
    (clients keep adapters between rounds, not optimizer state).

    ``prox_mu > 0`` adds FedProx's proximal term ``mu/2 * ||w - w_start||^2``
    over the adapter's parameters, where ``w_start`` is the adapter at the
    start of the call (the global adapter the client just received). The
    returned losses are the task loss alone, comparable across methods.

    ``cfg.dp_noise_multiplier > 0`` trains with DP-SGD instead
    (:func:`fedcofit_lite.privacy.train_adapter_dp`); ``accountant`` then
    records the privacy spent.
    """
    if epochs == 0 or not records:
        return []
    device = next(model.parameters()).device
    model.set_adapter(adapter)  # makes exactly this adapter trainable
    params = [p for n, p in model.named_parameters() if p.requires_grad and f".{adapter}." in n]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    anchor = [p.detach().clone() for p in params] if prox_mu > 0 else []
    data = tokenize_records(tokenizer, records, cfg.max_length)
    if cfg.dp_noise_multiplier > 0:
        if accountant is None:
            raise ValueError("DP-SGD needs an accountant: pass privacy.new_accountant() (one per client, kept across rounds).")
        if prox_mu > 0:
            raise ValueError("train.dp_noise_multiplier with FedProx is not supported: use method fedavg or consensus with DP.")
        from .privacy import train_adapter_dp

        return train_adapter_dp(model, adapter, data, tokenizer.pad_token_id, cfg, epochs, seed, accountant, desc)
    gen = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(data) / cfg.batch_size)
    losses: list[float] = []
    model.train()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)  # LoRA dropout
        bar = progress_bar(total=epochs * steps_per_epoch, desc=desc or f"train {adapter}", leave=False, unit="step")
        for _ in range(epochs):
            order = torch.randperm(len(data), generator=gen).tolist()
            for start in range(0, len(order), cfg.batch_size):
                batch = collate([data[i] for i in order[start : start + cfg.batch_size]], tokenizer.pad_token_id)
                batch = {k: v.to(device) for k, v in batch.items()}
                loss = model(**batch).loss
                objective = loss + prox_mu / 2 * sum((p - a).pow(2).sum() for p, a in zip(params, anchor)) if anchor else loss
                optimizer.zero_grad(set_to_none=True)
                objective.backward()
                if cfg.max_grad_norm > 0:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                losses.append(loss.item())
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
    model.eval()
    return losses


def adapter_state(model: peft.PeftModel, adapter: str) -> dict[str, torch.Tensor]:
    """The adapter's LoRA tensors, keyed without the adapter name (what FedAvg would send)."""
    return peft.get_peft_model_state_dict(model, adapter_name=adapter)


def count_adapter_parameters(model: peft.PeftModel, adapter: str) -> int:
    return sum(t.numel() for t in adapter_state(model, adapter).values())
