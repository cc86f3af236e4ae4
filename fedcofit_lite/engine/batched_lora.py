"""Many clients' adapters in one batch: each row through its own LoRA update, two matmuls per layer.

peft's mixed-adapter batch loops over the adapters in every LoRA layer (select a's rows, two small matmuls, scatter
back): about 1,000 tiny matmuls per decode step with 4 clients on SmolLM2, an overhead that, on a CPU, is what a step
costs. :class:`RowAdapters` puts the adapters side by side instead. For every LoRA layer it stacks the adapters'
factors once::

    A_cat = [A_1 | A_2 | ... | A_n]        (d_in, n*r)
    B_cat = [B_1 ; B_2 ; ... ; B_n]        (n*r, d_out)

and adds, to the frozen layer's output, ``((x @ A_cat) * mask) @ B_cat``, where row ``i`` of ``mask`` holds adapter
``a(i)``'s LoRA scaling in that adapter's ``r`` columns and zeros elsewhere. A row thus gets exactly ``scaling_a * (x
@ A_a) @ B_a``: the other adapters' columns are multiplied by zero. Two matmuls per layer whatever the number of
clients; the extra arithmetic (n times the rank) is small next to the frozen layer.

With ``train=True`` the factors are stacked from the live parameters at every forward (``torch.cat`` is
differentiable) and a row's loss reaches only its own adapter's columns, so one forward and backward trains every
client (:func:`fedcofit_lite.engine.finetune.train_adapters`). Plain LoRA only (DoRA etc. keep peft's own paths).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from peft.tuners.lora import LoraLayer

from .precision import compute_dtype_of

BASE = "__base__"  # a row answered by the frozen base: a zero update


class RowAdapters:
    """Context manager that routes every row of a batch through its own adapter.

    Parameters
    ----------
    model : peft.PeftModel
        The shared base with one LoRA adapter per client.
    adapters : sequence of str
        Every adapter a row may ask for (``"__base__"`` needs no entry).

    Examples
    --------
    >>> with RowAdapters(model, ["alice", "bob"]) as rows:  # doctest: +SKIP
    ...     rows.select(["alice", "bob", "__base__"])        # one name per batch row
    ...     out = model(input_ids=ids, attention_mask=mask)
    """

    def __init__(self, model: torch.nn.Module, adapters: Sequence[str], train: bool = False) -> None:
        self.model = model
        self.train = train
        self.adapters = list(dict.fromkeys(a for a in adapters if a != BASE))
        self.dtype = compute_dtype_of(model)
        self._layers: list[tuple[LoraLayer, bool]] = []  # (layer, was it disabled before)
        self._hooks: list = []
        self._mask: torch.Tensor | None = None
        self._columns: dict[str, slice] = {}
        self._scaling: dict[str, float] = {}
        self._rng: np.random.Generator | None = None  # LoRA dropout's masks (train=True)

    @staticmethod
    def supported(model: torch.nn.Module, adapters: Sequence[str]) -> bool:
        """True when every LoRA layer holds these adapters as plain LoRA (no DoRA or other variant)."""
        names = [a for a in dict.fromkeys(adapters) if a != BASE]
        layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
        return not any(a not in m.lora_A or a in getattr(m, "lora_variant", {}) for m in layers for a in names)

    def __enter__(self) -> RowAdapters:
        start = 0
        for module in self.model.modules():
            if not isinstance(module, LoraLayer):
                continue
            self._layers.append((module, module._disable_adapters))
            module._disable_adapters = True  # the layer returns the frozen output; the hook adds the update
            if not self.adapters:  # every row asks for the base
                continue
            if not self._columns:
                for a in self.adapters:
                    width = module.lora_A[a].weight.shape[0]
                    self._columns[a] = slice(start, start + width)
                    self._scaling[a] = float(module.scaling[a])
                    start += width
            self._hooks.append(module.register_forward_hook(self._train_hook() if self.train else self._hook(module)))
        return self

    def __exit__(self, *exc: object) -> None:
        for hook in self._hooks:
            hook.remove()
        for module, was_disabled in self._layers:
            module._disable_adapters = was_disabled
        self._hooks, self._layers = [], []

    def select(self, row_adapters: Sequence[str]) -> None:
        """Set each batch row's adapter (call again when rows leave the batch)."""
        width = sum(s.stop - s.start for s in self._columns.values())
        device = next(self.model.parameters()).device
        mask = torch.zeros((len(row_adapters), 1, width), dtype=self.dtype, device=device)  # (b, 1, n*r)
        for row, name in enumerate(row_adapters):
            if name != BASE:
                mask[row, 0, self._columns[name]] = self._scaling[name]
        self._mask = mask

    def _stacked(self, module: LoraLayer) -> tuple[torch.Tensor, torch.Tensor]:
        """The layer's factors side by side: A_cat (d_in, n*r) and B_cat (n*r, d_out)."""
        a_cat = torch.cat([module.lora_A[a].weight for a in self.adapters], dim=0).t()
        b_cat = torch.cat([module.lora_B[a].weight for a in self.adapters], dim=1).t()
        return a_cat, b_cat

    def _hook(self, module: LoraLayer):
        a_cat, b_cat = (w.detach().to(self.dtype) for w in self._stacked(module))  # stacked once: inference

        def add_update(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            x = args[0].to(self.dtype)  # (b, t, d_in)
            return output + ((x @ a_cat) * self._mask) @ b_cat  # (b, t, n*r) -> (b, t, d_out)

        return add_update

    def _train_hook(self):
        def add_update(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            a_cat, b_cat = self._stacked(module)  # from the live parameters: gradients reach each adapter
            x = self._dropout(args[0], module.lora_dropout[self.adapters[0]])  # every adapter has the same rate
            return output + ((x @ a_cat.to(x.dtype)) * self._mask.to(x.dtype)) @ b_cat.to(x.dtype)

        return add_update

    def _dropout(self, x: torch.Tensor, dropout: torch.nn.Module) -> torch.Tensor:
        """LoRA dropout on the layer input, its mask drawn by numpy (PCG64, seeded from torch's generator): 3x faster
        than torch's CPU Bernoulli (``benchmarks/profile_train.py``). Keeps each element with ``1 - p`` (p to 1/65536)."""
        p = getattr(dropout, "p", 0.0)
        if not dropout.training or p <= 0:
            return x
        if self._rng is None:
            self._rng = np.random.default_rng(int(torch.randint(0, 2**63 - 1, (1,))))
        keep = self._rng.integers(0, 65536, x.shape, dtype=np.uint16) >= round(p * 65536)
        return x * torch.from_numpy(keep).to(x.device, x.dtype) * (1 / (1 - p))
