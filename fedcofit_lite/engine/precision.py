"""Compute precision: which dtype the frozen base runs in, and the autocast around it.

``model.dtype`` ``auto`` is bfloat16 where the hardware computes it natively (a CUDA GPU that supports it, or a CPU
with AVX-512 BF16 / AMX), float32 everywhere else; another value is that dtype. In a low-precision run the frozen
base *weights* are stored in that dtype, while each client's LoRA weights and its AdamW state stay float32 (peft
upcasts adapters on a low-precision base). Every forward runs under :func:`autocast` and the loss in float32;
training and generation ask :func:`compute_dtype_of`, so the choice is made once, at load time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bfloat16 matrix instructions (AVX-512 BF16 or AMX)."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        with contextlib.suppress(RuntimeError):  # an exotic build may raise instead of answering
            if getattr(torch.cpu, probe, lambda: False)():
                return True
    return False


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """The weight / compute dtype for a ``model.dtype`` value on ``device``."""
    if dtype != "auto":
        return getattr(torch, dtype)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else torch.float32


def compute_dtype_of(model: torch.nn.Module) -> torch.dtype:
    """The dtype a loaded (peft-wrapped or plain) causal LM computes in: that of its frozen input embeddings."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_input_embeddings().weight.dtype


@contextlib.contextmanager
def autocast(model: torch.nn.Module) -> Iterator[None]:
    """Run the block in ``model``'s compute dtype (no-op for float32 models)."""
    dtype, device = compute_dtype_of(model), next(model.parameters()).device
    with torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else contextlib.nullcontext():
        yield
