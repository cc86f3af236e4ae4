"""Record-level differential privacy for the clients' LoRA training (DP-SGD, accounted by Opacus' RDP accountant).

With ``train.dp_noise_multiplier > 0`` every client trains its adapter with DP-SGD (Abadi et al., 2016): each step
samples its batch by Poisson sampling (every record independently with probability ``q = batch_size / n``), clips
every example's gradient over the adapter's LoRA parameters to ``train.dp_max_grad_norm``, sums, adds Gaussian noise
of standard deviation ``noise_multiplier x max_grad_norm`` and averages. Opacus' RDP accountant turns (noise, q,
steps) into (epsilon, delta), tracked per client across all rounds.

The per-example gradients come from hooks on the adapter's LoRA layers (:class:`PerExampleGrads`). The prompt prefix
is not shared: a prefix computed once for the batch gets one gradient summed over the examples, and per-example
clipping needs each example's own.

What the guarantee covers, and what it does not:

* It protects each **private training record** of a client: anything computed from the DP-trained adapter (its
  answers, hence the consensus and others' pseudo-labels) is post-processing and inherits the same (epsilon, delta),
  which composes over the local stage and every round (one accountant per client).
* It does not cover: the number of private examples (FedAvg even sends it as the averaging weight), which task
  families a client holds, the public prompts (public by definition), hyper-parameters chosen by looking at private
  data, or the base model's own pre-training data. Pseudo-labels a client trains on are public-derived; they are
  clipped and noised like private records, which costs utility, not privacy.
* The (epsilon, delta) is that of Poisson-subsampled Gaussian mechanism under RDP accounting, for one client's
  dataset; it says nothing about collusion between the server and other clients beyond what post-processing implies.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..config import TrainConfig
from ..progress import bar as progress_bar
from .batching import collate
from .loss import answer_loss
from .precision import autocast


def new_accountant():
    """An RDP accountant (Opacus) for one client."""
    from opacus.accountants import RDPAccountant

    return RDPAccountant()


def epsilon(accountant, delta: float) -> float:
    """Epsilon spent so far at ``delta`` (0.0 before any step)."""
    return float(accountant.get_epsilon(delta)) if accountant.history else 0.0


def noise_for_epsilon(target_epsilon: float, delta: float, n_records: int, batch_size: int, epochs: int) -> float:
    """The noise multiplier with which ``epochs`` epochs of Poisson-sampled DP-SGD over ``n_records`` spend ``target_epsilon``
    (sampling rate ``batch_size / n_records``, RDP accounting)."""
    from opacus.accountants.utils import get_noise_multiplier

    if target_epsilon <= 0 or n_records < 1 or epochs < 1:
        raise ValueError(
            f"need target_epsilon > 0, n_records >= 1 and epochs >= 1; got {target_epsilon}, {n_records}, {epochs}."
        )
    q, steps = min(1.0, batch_size / n_records), epochs * math.ceil(n_records / batch_size)
    kw = {"target_epsilon": target_epsilon, "target_delta": delta, "sample_rate": q, "steps": steps}
    return float(get_noise_multiplier(**kw, accountant="rdp"))


class PerExampleGrads:
    """Record, for each LoRA weight of ``adapter`` that trains, the gradient of every example of a batch.

    A linear layer's weight gradient is ``sum_t g_t^T a_t`` over the positions ``t`` of a row (``a``: its input,
    ``g``: the gradient of its output), so each example's share is one ``einsum``: (B, T, out) x (B, T, in) -> (B,
    out, in). ``samples[p]`` holds them after a backward of the sum of the examples' losses.
    """

    def __init__(self, model: torch.nn.Module, adapter: str) -> None:
        self.samples: dict[torch.nn.Parameter, torch.Tensor] = {}
        self._hooks = []
        for name, module in model.named_modules():
            is_lora = name.endswith(f"lora_A.{adapter}") or name.endswith(f"lora_B.{adapter}")
            if is_lora and isinstance(module, torch.nn.Linear) and module.weight.requires_grad:
                self._hooks.append(module.register_forward_hook(self._record))

    def _record(self, module: torch.nn.Linear, args: tuple, output: torch.Tensor) -> None:
        a = args[0].detach()  # (B, T, in)

        def on_grad(g: torch.Tensor) -> None:  # g: (B, T, out)
            gs = torch.einsum("bto,bti->boi", g.float(), a.float())
            w = module.weight
            self.samples[w] = self.samples[w] + gs if w in self.samples else gs

        output.register_hook(on_grad)

    def close(self) -> None:
        for h in self._hooks:
            h.remove()


def clip_and_noise(
    samples: Sequence[torch.Tensor], max_norm: float, noise_std: float, generator: torch.Generator, divisor: float
) -> list[torch.Tensor]:
    """DP-SGD's update from per-example gradients (``samples``: ``(B, *shape)`` per parameter): clip each example to
    ``max_norm`` over all parameters together (Opacus' factor ``max_norm / (norm + 1e-6)``, at most 1), sum, add noise,
    divide."""
    norms = torch.stack([g.reshape(len(g), -1).norm(dim=1) for g in samples], dim=1).norm(dim=1)  # (B,)
    factor = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    out = []
    for g in samples:
        summed = torch.einsum("b,b...->...", factor, g)
        noise = torch.normal(0.0, noise_std, size=summed.shape, generator=generator, device=summed.device)
        out.append((summed + noise) / divisor)
    return out


def train_adapter_dp(
    model: torch.nn.Module,
    adapter: str,
    data: Sequence[tuple[list[int], list[int]]],
    pad_id: int,
    cfg: TrainConfig,
    epochs: int,
    seed: int,
    accountant,
    optimizer: torch.optim.Optimizer,
    desc: str | None = None,
) -> list[float]:
    """Train ``adapter`` on ``data`` (token ids, labels) with DP-SGD (the module docstring's steps); return each step's
    mean loss. The ``accountant`` is told every step; an example's loss is its mean over its answer tokens."""
    if accountant is None:
        raise ValueError(
            "DP-SGD needs an accountant: pass privacy.new_accountant() (one per client, kept across rounds)."
        )
    device = next(model.parameters()).device
    params = [p for n, p in model.named_parameters() if p.requires_grad and f".{adapter}." in n]
    n = len(data)
    q = min(1.0, cfg.batch_size / n)  # Poisson sampling rate
    steps = epochs * math.ceil(n / cfg.batch_size)
    expected = max(1, round(q * n))
    gen = torch.Generator().manual_seed(seed)
    noise_gen = torch.Generator(device=device).manual_seed(seed + 1)
    recorder = PerExampleGrads(model, adapter)
    losses: list[float] = []
    model.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)  # LoRA dropout
            for _ in progress_bar(range(steps), desc=desc or f"DP train {adapter}", leave=False, unit="step"):
                chosen = torch.nonzero(torch.rand(n, generator=gen) < q).flatten().tolist()
                optimizer.zero_grad(set_to_none=True)
                recorder.samples = {}
                if chosen:
                    batch = {k: v.to(device) for k, v in collate([data[i] for i in chosen], pad_id).items()}
                    rows = torch.arange(len(chosen), device=device)
                    with autocast(model):
                        per_example = answer_loss(model, batch, False, groups=rows, n_groups=len(chosen))  # (B,)
                    per_example.sum().backward()  # each example's gradient is that of its own loss
                    losses.append(float(per_example.detach().mean()))
                    samples = [recorder.samples[p] for p in params]
                else:  # an empty Poisson batch still releases a noisy (pure-noise) update
                    samples = [torch.zeros((1, *p.shape), device=device) for p in params]
                noise_std = cfg.dp_noise_multiplier * cfg.dp_max_grad_norm
                update = clip_and_noise(samples, cfg.dp_max_grad_norm, noise_std, noise_gen, expected)
                for p, g in zip(params, update):
                    p.grad = g.to(p.dtype)
                optimizer.step()
                accountant.step(noise_multiplier=cfg.dp_noise_multiplier, sample_rate=q)
    finally:
        recorder.close()
        for p in params:
            p.grad = None
        model.eval()
    return losses
