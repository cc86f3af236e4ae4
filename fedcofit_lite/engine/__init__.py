"""The engine: the only home of torch, transformers, peft and sentence-transformers.

* :mod:`.models` - the model registry (packaged GGUF models, tiny-random, hub ids), loading, the prompt format;
* :mod:`.embed` - the sentence embedder the server uses;
* :mod:`.precision` - bf16 autocast where the CPU or GPU has it;
* :mod:`.batching` - training records, tokenization, padding, the order of an epoch;
* :mod:`.finetune` - LoRA fine-tuning on the answer tokens; :mod:`.privacy` - its DP-SGD variant;
* :mod:`.collect` - batched greedy decoding (mixed-adapter batches) with the answers' confidence;
* :mod:`.batched_lora` - per-row LoRA adapters in one forward pass;
* :mod:`.pool` - one base model per architecture, one adapter per client.

May import: ``tasks`` and the shared core. Never ``protocol``, ``federation`` or above.
"""

from .._lazy import lazy_submodules

__getattr__, __dir__ = lazy_submodules(__name__, __path__)
