"""Record-level differential privacy for the clients' LoRA training (DP-SGD with Opacus).

With ``train.dp_noise_multiplier > 0`` every client trains its adapter with
DP-SGD (Abadi et al., 2016): each step samples its batch by Poisson sampling
(every record independently with probability ``q = batch_size / n``), clips
every example's gradient over the adapter's LoRA parameters to
``train.dp_max_grad_norm``, sums, adds Gaussian noise of standard deviation
``noise_multiplier x max_grad_norm`` and averages. Opacus computes the
per-example gradients (``GradSampleModule``; LoRA's ``lora_A``/``lora_B`` are
plain ``nn.Linear`` layers) and its RDP accountant turns (noise, q, steps) into
(epsilon, delta), tracked per client across all rounds.

What the guarantee covers, and what it does not:

* It protects each **private training record** of a client: anything computed
  from the DP-trained adapter (its answers to the public prompts, hence the
  server's consensus and every other client's pseudo-labels, and its test
  answers) is post-processing and inherits the same (epsilon, delta).
* Epsilon composes over everything the client trains: the local stage and every
  round, all counted by one accountant per client.
* It does not cover: the number of private examples (FedAvg even sends it as the
  averaging weight), which task families a client holds, the public prompts
  (public by definition), hyper-parameters chosen by looking at private data,
  or the base model's own pre-training data. Pseudo-labels a client trains on
  are public-derived; they are clipped and noised like private records, which
  costs utility, not privacy.
* The (epsilon, delta) is that of Poisson-subsampled Gaussian mechanism under RDP
  accounting, for one client's dataset; it says nothing about collusion between
  the server and other clients beyond what post-processing implies.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch

from ..config import TrainConfig
from ..progress import bar as progress_bar
from .batching import collate

IGNORE_INDEX = -100


def new_accountant():
    """An RDP accountant (Opacus) for one client."""
    from opacus.accountants import RDPAccountant

    return RDPAccountant()


def epsilon(accountant, delta: float) -> float:
    """Epsilon spent so far at ``delta`` (0.0 before any step)."""
    return float(accountant.get_epsilon(delta)) if accountant.history else 0.0


def noise_for_epsilon(target_epsilon: float, delta: float, n_records: int, batch_size: int, epochs: int) -> float:
    """The noise multiplier with which ``epochs`` epochs of Poisson-sampled DP-SGD over ``n_records`` spend ``target_epsilon``.

    Sampling rate ``batch_size / n_records``, ``epochs x ceil(n_records / batch_size)`` steps, RDP accounting (Opacus).
    """
    from opacus.accountants.utils import get_noise_multiplier

    if target_epsilon <= 0 or n_records < 1 or epochs < 1:
        raise ValueError(
            f"need target_epsilon > 0, n_records >= 1 and epochs >= 1; got {target_epsilon}, {n_records}, {epochs}."
        )
    q = min(1.0, batch_size / n_records)
    steps = epochs * math.ceil(n_records / batch_size)
    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon, target_delta=delta, sample_rate=q, steps=steps, accountant="rdp"
        )
    )


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) mean next-token loss over each example's answer tokens; logits (B, T, V), labels (B, T)."""
    shift_logits, shift_labels = logits[:, :-1], labels[:, 1:]
    tok = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)).float(),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(shift_labels.shape)  # (B, T-1)
    mask = (shift_labels != IGNORE_INDEX).float()
    return (tok * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def train_adapter_dp(
    model: torch.nn.Module,
    adapter: str,
    data: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    cfg: TrainConfig,
    epochs: int,
    seed: int,
    accountant,
    desc: str | None = None,
) -> list[float]:
    """DP-SGD over one adapter's LoRA parameters; ``accountant`` records every step. Returns per-step losses.

    ``data`` are tokenized (input_ids, labels) pairs; ``model`` already has
    ``adapter`` active and trainable (see :func:`fedcofit_lite.engine.finetune.train_adapter`).
    """
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    if accountant is None:
        raise ValueError(
            "DP-SGD needs an accountant: pass privacy.new_accountant() (one per client, kept across rounds)."
        )
    device = next(model.parameters()).device
    params = [p for n, p in model.named_parameters() if p.requires_grad and f".{adapter}." in n]
    n = len(data)
    q = min(1.0, cfg.batch_size / n)  # Poisson sampling rate
    steps = epochs * math.ceil(n / cfg.batch_size)
    gen = torch.Generator().manual_seed(seed)
    gsm = GradSampleModule(model, batch_first=True, loss_reduction="mean", strict=False)
    optimizer = DPOptimizer(
        torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay),
        noise_multiplier=cfg.dp_noise_multiplier,
        max_grad_norm=cfg.dp_max_grad_norm,
        expected_batch_size=max(1, round(q * n)),
        loss_reduction="mean",
        generator=gen,
    )
    losses: list[float] = []
    model.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            for _ in progress_bar(range(steps), desc=desc or f"DP train {adapter}", leave=False, unit="step"):
                chosen = torch.nonzero(torch.rand(n, generator=gen) < q).flatten().tolist()
                optimizer.zero_grad(set_to_none=True)
                if chosen:
                    batch = {k: v.to(device) for k, v in collate([data[i] for i in chosen], pad_id).items()}
                    logits = gsm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    loss = per_example_loss(logits, batch["labels"]).mean()
                    with warnings.catch_warnings():
                        # The first LoRA layer's input (frozen embeddings) needs no gradient; Opacus
                        # uses the gradient w.r.t. each layer's output, which is still exact.
                        warnings.filterwarnings("ignore", message="Full backward hook is firing")
                        loss.backward()
                    losses.append(loss.item())
                else:  # an empty Poisson batch still releases a noisy (pure-noise) update
                    for p in params:
                        p.grad_sample = torch.zeros((1, *p.shape), device=p.device, dtype=p.dtype)
                optimizer.step()
                accountant.step(noise_multiplier=cfg.dp_noise_multiplier, sample_rate=q)
    finally:
        gsm._close()  # remove Opacus hooks: the shared base serves the other clients untouched
        for p in params:
            p.grad_sample = None
        model.eval()
    return losses
