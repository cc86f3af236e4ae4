"""Analytic communication model: bytes per round of three ways to federate the fine-tuning of one LM.

* **full-parameter FedAvg**: each client sends all model parameters up, the average comes down;
* **LoRA FedAvg**: each client sends its LoRA adapter (A and B of every targeted module in every
  layer) up, the averaged adapter comes down;
* **semantic consensus** (this project): each client sends its answers to the ``n_prompts``
  public prompts up; the consensus answers (pseudo-labels) come down.

The counts are arithmetic on the architecture (:class:`Architecture`) and the protocol settings
(:class:`Protocol`); nothing is measured here (a run's bytes are counted by
:class:`fedcofit_lite.protocol.messages.Wire`). Standard library only: no torch, no numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

# The seven linear maps of a Llama/Gemma/Qwen/Mistral decoder layer.
MODULE_NAMES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Keys of round_bytes / total_bytes, in the order tables and plots show them.
PROTOCOLS: tuple[str, ...] = ("full_fedavg", "lora_fedavg", "consensus")
DIRECTIONS: tuple[str, ...] = ("up", "down")  # up = client -> server, down = server -> client

Direction = Literal["up", "down"]


class UnknownArchitectureError(KeyError, ValueError):
    """An architecture name that is neither in the registry nor a config path."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


# ---------------------------------------------------------------- architecture
def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class Architecture:
    """The shape numbers of a decoder-only transformer that set its byte counts.

    ``num_kv_heads`` are the key/value heads (grouped-query attention; ``num_heads`` for plain
    multi-head attention); ``head_dim`` is not always ``hidden_size / num_heads`` (Gemma 3);
    ``tie_word_embeddings``: the LM head reuses the embedding matrix.
    """

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Architecture.name must be a non-empty string, got {self.name!r}")
        for f in fields(self)[1:-1]:
            _positive_int(getattr(self, f.name), f"Architecture.{f.name} ({self.name})")
        if not isinstance(self.tie_word_embeddings, bool):
            raise ValueError(
                f"Architecture.tie_word_embeddings ({self.name}) must be True or False, got {self.tie_word_embeddings!r}"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"Architecture.num_heads ({self.name}) = {self.num_heads} is not a multiple of num_kv_heads = {self.num_kv_heads}: check the config"
            )

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], name: str | None = None) -> Architecture:
        """Read the shape numbers from a Hugging Face ``config.json`` dict.

        Missing or null optional keys take transformers' defaults (``num_key_value_heads`` = heads, ``head_dim`` =
        hidden_size / heads, ``tie_word_embeddings`` = False). ``name`` defaults to the config's ``_source``,
        ``_name_or_path`` or ``model_type``. A missing or non-positive value is a ``ValueError`` naming it.
        """
        required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")
        missing = [k for k in required if config.get(k) is None]
        if missing:
            raise ValueError(
                f"config.json lacks {', '.join(missing)}: Architecture.from_hf_config needs "
                f"{', '.join(required)} (multimodal configs keep them under 'text_config'; pass that dict)"
            )
        hidden, heads = config["hidden_size"], config["num_attention_heads"]
        head_dim = config.get("head_dim")
        if head_dim is None:
            if not isinstance(hidden, int) or not isinstance(heads, int) or heads < 1 or hidden % heads:
                raise ValueError(
                    f"config.json has no head_dim and hidden_size={hidden!r} is not a multiple of "
                    f"num_attention_heads={heads!r}: add 'head_dim' to the config"
                )
            head_dim = hidden // heads
        if name is None:
            name = config.get("_source") or config.get("_name_or_path") or config.get("model_type") or "unnamed"
        kv_heads = heads if config.get("num_key_value_heads") is None else config["num_key_value_heads"]
        layers, ff, vocab = config["num_hidden_layers"], config["intermediate_size"], config["vocab_size"]
        return cls(name, hidden, layers, heads, kv_heads, head_dim, ff, vocab, bool(config.get("tie_word_embeddings")))

    @classmethod
    def from_json(cls, path: str | Path) -> Architecture:
        """Read a ``config.json`` file (or a folder holding one), named after the file's stem, or the folder's name
        when the file is ``config.json`` (``models/smollm2-135m/config.json`` gives ``"smollm2-135m"``)."""
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / "config.json"
        config = json.loads(path.read_text(encoding="utf-8"))
        name = path.parent.name if path.stem == "config" else path.stem
        return cls.from_hf_config(config, name=name or path.stem)

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """``(d_in, d_out)`` of each linear map of one layer (Llama/Gemma layout)."""
        d, ff = self.hidden_size, self.intermediate_size
        q, kv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim  # query / key-value widths
        shapes = (d, q), (d, kv), (d, kv), (q, d), (d, ff), (d, ff), (ff, d)
        return dict(zip(MODULE_NAMES, shapes))

    def n_parameters(self) -> int:
        """The dense parameter count: embeddings (twice when untied), the seven matrices and two norms of every layer,
        the final norm. Exact for Llama and Mistral; Gemma 3's extra norms and Qwen2.5's q/k/v biases are left out."""
        per_layer = sum(i * o for i, o in self.module_shapes().values()) + 2 * self.hidden_size
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return embeddings + self.num_layers * per_layer + self.hidden_size


def _load_registry() -> dict[str, Architecture]:
    folder = resources.files("fedcofit_lite") / "model_configs"
    archs = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            name = entry.name[: -len(".json")].lower()
            archs[name] = Architecture.from_hf_config(json.loads(entry.read_text(encoding="utf-8")), name=name)
    return dict(sorted(archs.items(), key=lambda kv: kv[1].n_parameters()))


# Shipped architectures (fedcofit_lite/model_configs/*.json), smallest first.
ARCHITECTURES: dict[str, Architecture] = _load_registry()


def get_architecture(name_or_path: str | Path) -> Architecture:
    """A shipped architecture by name (case-insensitive), or read from a ``config.json`` path or its folder."""
    key = str(name_or_path).strip().lower()
    if key in ARCHITECTURES:
        return ARCHITECTURES[key]
    path = Path(name_or_path).expanduser()
    if path.is_file() or (path / "config.json").is_file():
        return Architecture.from_json(path)
    known = ", ".join(ARCHITECTURES)
    raise UnknownArchitectureError(
        f"unknown architecture {str(name_or_path)!r}: use one of {known} or the path to a Hugging Face config.json"
    )


def lora_parameters(arch: Architecture, rank: int, target_modules: Sequence[str], factors: str = "AB") -> int:
    """Number of LoRA parameters of ``target_modules`` (names of :data:`MODULE_NAMES`) over every layer.

    ``factors="B"`` counts only the B factors: what FFA-LoRA sends (A stays frozen at the shared start). An unknown
    or repeated module, a rank below 1 or no module is a ``ValueError``.
    """
    _positive_int(rank, "rank")
    modules = _check_modules(target_modules, "target_modules")
    if factors not in ("AB", "B"):
        raise ValueError(f"factors must be 'AB' (both LoRA factors) or 'B' (FFA-LoRA), got {factors!r}")
    shapes = arch.module_shapes()  # (d_in, d_out): A is r x d_in, B is d_out x r
    return arch.num_layers * rank * sum(shapes[m][1] + (shapes[m][0] if factors == "AB" else 0) for m in modules)


def _check_modules(modules: Any, where: str) -> tuple[str, ...]:
    if isinstance(modules, str) or not isinstance(modules, Sequence):
        raise ValueError(f"{where} must be a sequence of module names such as ('q_proj', 'v_proj'), got {modules!r}")
    if not modules:
        raise ValueError(f"{where} is empty: name at least one of {', '.join(MODULE_NAMES)}")
    unknown = [m for m in modules if m not in MODULE_NAMES]
    if unknown:
        raise ValueError(f"{where} has unknown module(s) {unknown}: valid names are {', '.join(MODULE_NAMES)}")
    if len(set(modules)) != len(modules):
        raise ValueError(f"{where} names a module twice: {list(modules)}; list each once")
    return tuple(modules)


# -------------------------------------------------------------------- protocol
def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Protocol:
    """Settings that, with an :class:`Architecture`, fix the bytes of a round; the defaults are the paper setting
    (:func:`paper_setting`). Lists given for ``target_modules`` or ``directions`` (JSON, YAML) are stored as tuples,
    so ``Protocol(**json.loads(json.dumps(asdict(p)))) == p``."""

    # fmt: off
    rank: int = _f(32, "LoRA rank r")
    target_modules: tuple[str, ...] = _f(("q_proj", "v_proj"), "LoRA-targeted modules, names from MODULE_NAMES")
    bytes_per_param: float = _f(4.0, "bytes per transmitted parameter (fp32: 4, bf16: 2), for full and LoRA FedAvg")
    n_prompts: int = _f(1000, "public prompts answered per round")
    answer_tokens: float = _f(201.0, "mean answer length in tokens (or characters when bytes_per_token=1)")
    bytes_per_token: float = _f(4.0, "bytes per token: 4 for int32 token ids; 1 with answer_tokens in UTF-8 bytes")
    overhead_per_answer: float = _f(0.0, "framing bytes per answer (JSON quotes, commas, prompt id)")
    overhead_per_message: float = _f(0.0, "framing bytes per message (headers), for every protocol")
    n_clients: int = _f(1, "clients taking part in a round")
    rounds: int = _f(1, "federated rounds")
    directions: tuple[Direction, ...] = _f(("up",), "directions counted: 'up' (client -> server), 'down' (server -> client)")
    # fmt: on

    def __post_init__(self) -> None:
        # JSON/YAML give lists; a frozen dataclass needs object.__setattr__ to store tuples.
        for name in ("target_modules", "directions"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        for name in ("rank", "n_prompts", "n_clients", "rounds"):
            _positive_int(getattr(self, name), f"Protocol.{name}")
        for name in ("bytes_per_param", "answer_tokens", "bytes_per_token"):
            value = getattr(self, name)
            if not _is_real(value) or value <= 0:
                raise ValueError(f"Protocol.{name} must be a positive finite number, got {value!r}")
        for name in ("overhead_per_answer", "overhead_per_message"):
            value = getattr(self, name)
            if not _is_real(value) or value < 0:
                raise ValueError(f"Protocol.{name} must be a finite number >= 0 (0 for no framing), got {value!r}")
        _check_modules(self.target_modules, "Protocol.target_modules")
        d = self.directions
        if isinstance(d, str) or not isinstance(d, Sequence) or not d or any(x not in DIRECTIONS for x in d):
            raise ValueError(f"Protocol.directions must be a non-empty tuple of 'up' and/or 'down', got {d!r}")
        if len(set(d)) != len(d):
            raise ValueError(f"Protocol.directions names a direction twice: {d!r}; use ('up',) or ('up', 'down')")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------ byte counts
def round_bytes(arch: Architecture, protocol: Protocol) -> dict[str, float]:
    """Bytes of one round, summed over clients and the counted directions, by protocol.

    Consensus down counts the consensus of every prompt: an upper bound, since the agreement filter may drop some.

    Examples
    --------
    >>> arch, protocol = paper_setting()        # Llama-3.1-405B, r=32, q/v, fp32
    >>> b = round_bytes(arch, protocol)
    >>> b["lora_fedavg"]                         # 32 * 6,322,176 params * 4 bytes
    809238528.0
    >>> b["consensus"]                           # 1000 prompts * 201 tokens * 4 bytes
    804000.0
    >>> from dataclasses import replace
    >>> round_bytes(arch, replace(protocol, directions=("up", "down")))["consensus"]
    1608000.0
    """
    messages = protocol.n_clients * len(protocol.directions)  # one message per client per direction
    answer_bytes = protocol.answer_tokens * protocol.bytes_per_token + protocol.overhead_per_answer
    per_message = {
        "full_fedavg": arch.n_parameters() * protocol.bytes_per_param,
        "lora_fedavg": lora_parameters(arch, protocol.rank, protocol.target_modules) * protocol.bytes_per_param,
        "consensus": protocol.n_prompts * answer_bytes,
    }
    return {k: float(messages * (v + protocol.overhead_per_message)) for k, v in per_message.items()}


def total_bytes(arch: Architecture, protocol: Protocol) -> dict[str, float]:
    """Bytes of the whole run: :func:`round_bytes` times ``protocol.rounds``."""
    return {k: v * protocol.rounds for k, v in round_bytes(arch, protocol).items()}


def ratios(arch: Architecture, protocol: Protocol) -> dict[str, float]:
    """How many times more bytes parameter averaging sends than consensus (rounds cancel; clients and directions too, without per-message overhead)."""
    b = round_bytes(arch, protocol)
    return {
        "full_over_consensus": b["full_fedavg"] / b["consensus"],
        "lora_over_consensus": b["lora_fedavg"] / b["consensus"],
        "full_over_lora": b["full_fedavg"] / b["lora_fedavg"],
    }


def cost_table(archs: Sequence[Architecture], protocol: Protocol) -> list[dict[str, Any]]:
    """One row per architecture: ``name``, ``n_parameters``, ``lora_parameters``, :func:`round_bytes` and :func:`ratios`."""

    def row(arch: Architecture) -> dict[str, Any]:
        lora = lora_parameters(arch, protocol.rank, protocol.target_modules)
        return {"name": arch.name, "n_parameters": arch.n_parameters(), "lora_parameters": lora}

    return [{**row(a), **round_bytes(a, protocol), **ratios(a, protocol)} for a in archs]


_UNITS = ("B", "KB", "MB", "GB", "TB", "PB", "EB")


def format_bytes(n: float) -> str:
    """Human-readable size in decimal (SI) units: 1 KB = 1000 bytes, not 1024.

    Examples
    --------
    >>> format_bytes(804_000), format_bytes(809_238_528), format_bytes(1.6e12)
    ('804.0 KB', '809.2 MB', '1.6 TB')
    >>> format_bytes(512)
    '512 B'
    """
    if not _is_real(n) or n < 0:
        raise ValueError(f"format_bytes needs a finite number >= 0, got {n!r}")
    if n < 1000:
        return f"{n:.0f} B"
    value, unit = float(n), 0
    # Divide until the rounded value is below 1000, so 999,960 prints "1.0 MB", not "1000.0 KB".
    while round(value, 1) >= 1000 and unit < len(_UNITS) - 1:
        value, unit = value / 1000, unit + 1
    return f"{value:.1f} {_UNITS[unit]}"


def paper_setting() -> tuple[Architecture, Protocol]:
    """The setting behind the "factor ~1006" of the seed paper, as reconstructed here (it publishes no exact one).

    Llama-3.1-405B (d=16384, 126 layers, 128 query and 8 KV heads of width 128: k/v project 16384 -> 1024); LoRA rank
    32 on ``q_proj`` and ``v_proj``, A and B sent in fp32: 32 x 6,322,176 parameters, 809,238,528 bytes; consensus:
    1000 prompts, answers of 201 tokens sent as int32 ids, no framing: 804,000 bytes; one client, one round, upload
    only: :class:`Protocol`'s defaults. Then ``ratios(*paper_setting())["lora_over_consensus"]`` is 1006.5.
    """
    return ARCHITECTURES["llama-3.1-405b"], Protocol()
