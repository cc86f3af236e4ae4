"""The clients' models: one frozen base per architecture, one LoRA adapter per client.

``ModelPool`` is the simulation's compute backend: clients of one architecture share its base in memory (ten clients
cost ten adapters, not ten models), and their generation requests share batches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import peft
import torch
from transformers import PreTrainedTokenizerBase

from ..config import GenerationConfig, LoraConfig, ModelConfig, TrainConfig
from . import finetune
from .batching import TrainRecord
from .collect import BASE_ADAPTER, GenerationRequest, GenerationStats, generate_with_confidence
from .finetune import TrainJob, TrainStats, adapter_state, attach_adapters
from .models import load_model

log = logging.getLogger(__name__)


@dataclass
class Backbone:
    """One architecture: its shared base (wrapped by peft) and tokenizer."""

    name: str
    model: peft.PeftModel
    tokenizer: PreTrainedTokenizerBase
    adapters: list[str]


class ModelPool:
    """Load each architecture once (``client_models``: client id -> model name) and give every client an adapter on it; ``seed`` seeds the adapters (and tiny-random's weights)."""

    def __init__(self, client_models: Mapping[str, str], model_cfg: ModelConfig, lora_cfg: LoraConfig, seed: int = 0):
        self.client_models = dict(client_models)
        self.lora_cfg = lora_cfg
        self.seed = seed
        self.backbones: dict[str, Backbone] = {}
        self.train_stats = TrainStats()  # everything trained so far (benchmarks read it)
        self.generation_stats = GenerationStats()  # everything generated so far
        for name in dict.fromkeys(self.client_models.values()):  # first-seen order
            clients = [c for c, m in self.client_models.items() if m == name]
            mc = model_cfg
            model, tokenizer = load_model(name, mc.device, mc.dtype, mc.trust_remote_code, seed, mc.attention)
            model.requires_grad_(False)  # the base stays frozen; only adapters learn
            peft_model = attach_adapters(model, clients, lora_cfg, seed=seed).eval()
            self.backbones[name] = Backbone(name, peft_model, tokenizer, clients)
            log.info("model %s: %d clients as adapters on one base", name, len(clients))

    def architectures(self) -> dict[str, dict]:
        """Model name -> its Hugging Face config as a dict (what the analytic cost model reads)."""
        return {
            name: json.loads(bb.model.get_base_model().config.to_json_string()) for name, bb in self.backbones.items()
        }

    def backbone_of(self, client_id: str) -> Backbone:
        return self.backbones[self.client_models[client_id]]

    def train(
        self, client_id: str, records: Sequence[TrainRecord], cfg: TrainConfig, epochs: int, seed: int, **kw: Any
    ) -> list[float]:
        """Train ``client_id``'s adapter (``kw``: :func:`~.finetune.train_adapter`'s ``prox_mu``, ``accountant``,
        ``freeze_a``); returns per-step losses."""
        bb, desc = self.backbone_of(client_id), f"train {client_id}"
        return finetune.train_adapter(
            bb.model, client_id, bb.tokenizer, records, cfg, epochs, seed, desc=desc, stats=self.train_stats, **kw
        )

    def train_together(self, jobs: Sequence[TrainJob], cfg: TrainConfig) -> dict[str, list[float]]:
        """Train several clients' adapters, those of one architecture in the same steps (:func:`train_adapters`)."""
        losses: dict[str, list[float]] = {}
        for name, bb in self.backbones.items():
            mine = [j for j in jobs if self.client_models[j.adapter] == name]  # none: returns at once
            losses |= finetune.train_adapters(bb.model, mine, bb.tokenizer, cfg, f"train {name}", self.train_stats)
        return losses

    def add_adapter(self, adapter_id: str, model_name: str) -> None:
        """A fresh adapter on ``model_name``'s base, at the clients' shared start (e.g. the centralized baseline's model)."""
        bb = self.backbones[model_name]
        attach_adapters(bb.model, [adapter_id], self.lora_cfg, self.seed)
        self.client_models[adapter_id] = model_name
        bb.adapters.append(adapter_id)

    def get_tensors(self, client_id: str) -> dict[str, np.ndarray]:
        """The adapter's LoRA tensors as float32 numpy arrays (what FedAvg sends)."""
        state = adapter_state(self.backbone_of(client_id).model, client_id)
        return {k: v.detach().to("cpu", torch.float32).numpy().copy() for k, v in state.items()}

    def set_tensors(self, client_id: str, tensors: Mapping[str, np.ndarray], partial: bool = False) -> None:
        """Load tensors (as :meth:`get_tensors` gives them, e.g. the FedAvg average) into the adapter; ``partial``
        loads a subset (FFA-LoRA's B factors) and keeps the rest."""
        bb = self.backbone_of(client_id)
        expected = adapter_state(bb.model, client_id)
        unknown = set(tensors) - set(expected)
        if unknown or (not partial and set(expected) != set(tensors)):
            n = f"{len(tensors)} given, {len(expected)} expected"
            raise ValueError(f"adapter {client_id}: tensor names do not match its LoRA modules ({n}).")
        state = {
            k: torch.from_numpy(np.asarray(tensors[k])).to(v.device, v.dtype) if k in tensors else v
            for k, v in expected.items()
        }
        peft.set_peft_model_state_dict(bb.model, state, adapter_name=client_id)  # state's keys are peft's own

    def answer(
        self, requests: Sequence[GenerationRequest], cfg: GenerationConfig, seed: int = 0, desc: str = "generate"
    ) -> tuple[list[str], list[float]]:
        """Answer requests of any clients (adapter = client id, or BASE_ADAPTER); (answers, confidences).

        Within one architecture clients share batches (``generation.adapter_batches``); what it cost is added to
        ``self.generation_stats``.
        """
        answers, confidence = [""] * len(requests), [0.0] * len(requests)
        for name, bb in self.backbones.items():
            idx = [i for i, r in enumerate(requests) if self._arch_of(r) == name]  # none: returns at once
            batch = [_for_peft(requests[i]) for i in idx]
            texts, conf = generate_with_confidence(
                bb.model, bb.tokenizer, batch, cfg, seed, f"{desc} {name}", self.generation_stats
            )
            for i, text, c in zip(idx, texts, conf):
                answers[i], confidence[i] = text, c
        return answers, confidence

    def _arch_of(self, request: GenerationRequest) -> str:
        if request.adapter.startswith(BASE_ADAPTER):
            # "__base__" alone means the first architecture; "__base__@name" names one
            _, _, name = request.adapter.partition("@")
            return name or next(iter(self.backbones))
        return self.client_models[request.adapter]

    def request(self, adapter_id: str, instruction: str, context: str = "") -> GenerationRequest:
        """A request answered by the adapter ``adapter_id``."""
        return GenerationRequest(adapter_id, instruction, context)

    def base_request(self, name: str, instruction: str, context: str = "") -> GenerationRequest:
        """A request answered by the frozen base of architecture ``name``."""
        return GenerationRequest(f"{BASE_ADAPTER}@{name}", instruction, context)

    def adapter_parameters(self, client_id: str) -> int:
        return sum(t.numel() for t in adapter_state(self.backbone_of(client_id).model, client_id).values())


def _for_peft(request: GenerationRequest) -> GenerationRequest:
    """peft knows the base as plain ``__base__``; drop our ``@architecture`` suffix."""
    return replace(request, adapter=BASE_ADAPTER) if request.adapter.startswith(BASE_ADAPTER) else request
