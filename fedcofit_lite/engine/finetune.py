"""Client-side LoRA fine-tuning: every client of an architecture is a named peft adapter on ONE shared frozen base.

:func:`train_adapters` trains one client or several together (each row of a batch through its own adapter), only the
adapters' parameters, with the loss on answer tokens only; :func:`train_adapter` is one client's call of it (or
DP-SGD). The forward runs in the base's compute dtype (:mod:`.precision`), the adapter and AdamW in float32.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import peft
import torch
from transformers import PreTrainedTokenizerBase

from ..config import LoraConfig, TrainConfig
from ..progress import bar as progress_bar
from .batching import IGNORE_INDEX, TrainRecord, batch_order, collate, tokenize_records
from .loss import answer_loss
from .precision import autocast

log = logging.getLogger(__name__)


@dataclass
class TrainStats:
    """What training fed the model; the trainers add to it when one is passed."""

    steps: int = 0
    tokens: int = 0  # non-pad tokens (prompt + answer)
    positions: int = 0  # batch x width summed over steps: tokens + padding
    answer_tokens: int = 0  # tokens the loss is computed on
    sum_len_sq: int = 0  # sum of squared record lengths (attention FLOPs)

    def count(self, batch: dict[str, torch.Tensor], lengths: list[int]) -> None:
        """Add one training step on ``batch`` (records of ``lengths`` tokens)."""
        self.steps += 1
        self.tokens += int(batch["attention_mask"].sum())
        self.positions += batch["attention_mask"].numel()
        self.answer_tokens += int((batch["labels"] != IGNORE_INDEX).sum())
        self.sum_len_sq += sum(n**2 for n in lengths)


def attach_adapters(
    model: torch.nn.Module, adapter_names: Sequence[str], cfg: LoraConfig, seed: int = 0
) -> peft.PeftModel:
    """Give a frozen base model (or a peft model's base) one fresh LoRA adapter per name, all from the same weights.

    Every adapter is initialised under seed ``seed * 100_003``: the shared start of federated LoRA (the server's
    initial global adapter), so that averaging adapters averages their updates (averaging the A and B factors of
    independently drawn starts mostly cancels them) and every method of a comparison starts from one point.
    """
    lora = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    missing = [m for m in cfg.target_modules if not any(n.endswith(f".{m}") for n, _ in model.named_modules())]
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(
            f"lora.target_modules {missing} do not exist in {type(model).__name__}; its linear layers are {linear}."
        )
    peft_model = model if isinstance(model, peft.PeftModel) else None
    for name in adapter_names:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed * 100_003)
            if peft_model is None:
                peft_model = peft.get_peft_model(model, lora, adapter_name=name)
            else:
                peft_model.add_adapter(name, lora)
    assert peft_model is not None, "attach_adapters needs at least one adapter name"
    return peft_model


def trainable_parameters(
    model: peft.PeftModel, adapter: str, freeze_a: bool = False, keep_others: bool = False
) -> list:
    """Make ``adapter`` trainable (only its B factors with ``freeze_a``); return its parameters. ``keep_others`` leaves
    other adapters as they are (several train together); otherwise ``adapter`` becomes the only active, trainable one."""
    if not keep_others:
        model.set_adapter(adapter)
    for n, p in model.named_parameters():
        if f".{adapter}." in n:
            p.requires_grad_(not (freeze_a and f"lora_A.{adapter}." in n))
    return [p for n, p in model.named_parameters() if p.requires_grad and f".{adapter}." in n]


def adamw(params: list[torch.Tensor], cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over an adapter's parameters, fused: one kernel for all of them, not about ten calls per tensor."""
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)


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
    stats: TrainStats | None = None,
    freeze_a: bool = False,
) -> list[float]:
    """Train one adapter of ``model`` on ``records`` (:func:`train_adapters` with one job); return every step's loss.

    Only ``adapter``'s LoRA parameters learn, with a fresh AdamW per call (clients keep adapters between rounds, not
    optimizer state). ``prox_mu > 0`` adds FedProx's term ``mu/2 * ||w - w_start||^2``, ``w_start`` the adapter at
    the call's start (the global one just received); the returned losses are the task loss alone.
    ``cfg.dp_noise_multiplier > 0`` trains with DP-SGD (:func:`fedcofit_lite.engine.privacy.train_adapter_dp`),
    ``accountant`` recording the privacy spent. ``freeze_a`` trains only the B factors (FFA-LoRA: with A frozen at
    the shared start, averaging B averages the update exactly). ``stats`` adds up what was computed.
    """
    if epochs == 0 or not records:
        return []
    if cfg.dp_noise_multiplier <= 0:
        job = TrainJob(adapter, records, epochs, seed, prox_mu, freeze_a)
        return train_adapters(model, [job], tokenizer, cfg, desc or f"train {adapter}", stats)[adapter]
    from .privacy import train_adapter_dp

    if prox_mu > 0:
        raise ValueError("train.dp_noise_multiplier with FedProx is not supported: use fedavg or consensus with DP.")
    optimizer = adamw(trainable_parameters(model, adapter, freeze_a), cfg)
    data = tokenize_records(tokenizer, records, cfg.max_length)
    return train_adapter_dp(
        model, adapter, data, tokenizer.pad_token_id, cfg, epochs, seed, accountant, optimizer, desc
    )


@dataclass(frozen=True)
class TrainJob:
    """One client's share of a training call: its adapter, records, epochs and seed."""

    adapter: str
    records: Sequence[TrainRecord]
    epochs: int
    seed: int
    prox_mu: float = 0.0
    freeze_a: bool = False


def train_adapters(
    model: peft.PeftModel,
    jobs: Sequence[TrainJob],
    tokenizer: PreTrainedTokenizerBase,
    cfg: TrainConfig,
    desc: str = "train",
    stats: TrainStats | None = None,
) -> dict[str, list[float]]:
    """Train one or several adapters of one base together, one forward and backward per step; each one's step losses.

    Each job keeps its own batches (in its seed's order), AdamW, clipping and FedProx anchor. Step ``s`` stacks every
    job's ``s``-th batch (a job leaves when its batches run out), :class:`~.batched_lora.RowAdapters` routes each row
    through its adapter, and the loss is the sum of the jobs' mean losses, so each job gets exactly its own gradient.
    Not for DP-SGD. LoRA dropout draws from one generator seeded by the first job (masks depend on the jobs beside).
    """
    from .batched_lora import RowAdapters

    losses: dict[str, list[float]] = {j.adapter: [] for j in jobs}
    jobs = [j for j in jobs if j.epochs > 0 and j.records]
    if not jobs:
        return losses
    device = next(model.parameters()).device
    names = [j.adapter for j in jobs]
    params = {j.adapter: trainable_parameters(model, j.adapter, j.freeze_a, keep_others=True) for j in jobs}
    optimizers = {a: adamw(p, cfg) for a, p in params.items()}
    anchors = {j.adapter: [p.detach().clone() for p in params[j.adapter]] for j in jobs if j.prox_mu > 0}
    data = [tokenize_records(tokenizer, j.records, cfg.max_length) for j in jobs]
    lengths = [[len(ids) for ids, _ in d] for d in data]
    schedules = [_schedule(n, j, cfg) for n, j in zip(lengths, jobs)]
    weights = [torch.tensor([r.weight for r in j.records], dtype=torch.float32) for j in jobs]
    model.train()
    with (
        torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        RowAdapters(model, names, train=True) as rows,
    ):
        torch.manual_seed(jobs[0].seed)  # LoRA dropout

        def route(groups: torch.Tensor) -> None:  # every row of a forward through its job's adapter
            rows.select([names[k] for k in groups.tolist()])

        n_steps = max(len(s) for s in schedules)
        desc = desc if len(jobs) == 1 else f"{desc} ({len(jobs)} together)"
        for step in progress_bar(range(n_steps), desc=desc, leave=False, unit="step"):
            active = [k for k, s in enumerate(schedules) if step < len(s)]
            picked = [(k, i) for k in active for i in schedules[k][step]]
            batch = collate([data[k][i] for k, i in picked], tokenizer.pad_token_id)
            if stats is not None:
                stats.count(batch, [lengths[k][i] for k, i in picked])
            batch = {key: v.to(device) for key, v in batch.items()}
            groups = torch.tensor([k for k, _ in picked], device=device)
            row_weights = torch.stack([weights[k][i] for k, i in picked])
            with autocast(model):  # (jobs,): each job's mean answer loss (0 for a job with no rows now)
                loss = answer_loss(model, batch, cfg.share_prefix, row_weights, groups, len(jobs), select=route)
            values = _joint_update(loss, [jobs[k] for k in active], active, params, anchors, optimizers, cfg)
            for k, v in zip(active, values):
                losses[names[k]].append(v)
    for ps in params.values():
        for p in ps:
            p.grad = None
    model.eval()
    return losses


def _schedule(lengths: list[int], job: TrainJob, cfg: TrainConfig) -> list[list[int]]:
    """Every step's record indices of ``job``, epoch after epoch, in the order its seed draws them."""
    gen = torch.Generator().manual_seed(job.seed)
    return [rows for _ in range(job.epochs) for rows in batch_order(lengths, cfg.batch_size, gen, cfg.group_by_length)]


def _joint_update(loss, jobs, index, params, anchors, optimizers, cfg: TrainConfig) -> list[float]:
    """Backward the sum of the stepping jobs' losses (+ FedProx terms), then clip and step each one's optimizer."""
    objective = loss[index].sum()
    for j in jobs:
        if j.prox_mu > 0:
            # FedProx's proximal term: ||w - w_start||^2 over the adapter's parameters, times mu / 2
            distance2 = sum((p - a).pow(2).sum() for p, a in zip(params[j.adapter], anchors[j.adapter]))
            objective = objective + j.prox_mu / 2 * distance2
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)
    objective.backward()
    values = loss.detach().tolist()
    for j in jobs:
        if cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(params[j.adapter], cfg.max_grad_norm)
        optimizers[j.adapter].step()
    return [values[k] for k in index]


def adapter_state(model: peft.PeftModel, adapter: str) -> dict[str, torch.Tensor]:
    """The adapter's LoRA tensors, keyed without the adapter name (what FedAvg would send)."""
    return peft.get_peft_model_state_dict(model, adapter_name=adapter)
