"""The training objective: next-token cross-entropy on answer tokens, computing only what the loss needs.

Shared by plain training (:mod:`.finetune`, one client or many together) and
DP-SGD (:mod:`.privacy`, one loss per example).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import DynamicCache

from .batching import IGNORE_INDEX
from .models import cache_argument


def shared_prefix_length(batch: dict[str, torch.Tensor]) -> int:
    """Tokens at the start that every row of a right-padded batch shares, and that carry no label.

    A shared prefix is the chat template's system turn; one token before each row's first answer token is kept out of
    it (its hidden state predicts that answer token).
    """
    ids, labels = batch["input_ids"], batch["labels"]
    same = (ids == ids[:1]).all(dim=0)  # (T,)
    prefix = int(same.long().cumprod(0).sum())
    first_label = (labels != IGNORE_INDEX).long().argmax(dim=1)  # (B,) position of each row's first answer token
    return max(0, min(prefix, int(first_label.min()) - 1))


def answer_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    share_prefix: bool = True,
    weights: torch.Tensor | None = None,
    groups: torch.Tensor | None = None,
    n_groups: int = 1,
    select: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Mean next-token cross-entropy over the answer tokens (``model(**batch).loss`` up to rounding; tests check it).

    1. With ``share_prefix``, the P tokens every row starts with (the chat template's system turn) run through the
       decoder once per group and their KV cache is repeated for the B rows (gradients flow back through the repeat;
       with LoRA dropout, one mask instead of B).
    2. The output head runs only at the N positions whose next token is an answer token: (N, hidden) -> (N, vocab)
       instead of (B, T, vocab).

    ``weights`` (B,) weigh each row's answer tokens. ``groups`` (B,) puts each row in one of ``n_groups`` groups (a
    client of a joint batch) and returns each group's mean loss, (n_groups,); ``select`` (called with the group of
    each row of a forward) routes the rows to their adapters.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder = base.get_decoder()
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    shared = shared_prefix_length(batch) if share_prefix else 0
    grouped = groups is not None
    if groups is None:
        groups = torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)
    select = select or (lambda rows_groups: None)
    if shared > 0:
        cache = DynamicCache(config=base.config)
        kv = {cache_argument(decoder): cache, "use_cache": True}
        select(torch.arange(n_groups))
        decoder(input_ids=ids[:1, :shared].expand(n_groups, -1), **kv)  # (G, P): the shared prefix, once per group
        cache.batch_select_indices(groups)  # (B, heads, P, head_dim) per layer: each row gets its group's prefix
        positions = torch.arange(shared, ids.shape[1], device=ids.device).expand(ids.shape[0], -1)  # (B, T - P)
        select(groups)
        hidden = decoder(input_ids=ids[:, shared:], attention_mask=mask, position_ids=positions, **kv).last_hidden_state
    else:
        select(groups)
        hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, d)
    targets = labels[:, shared + 1 :]  # the hidden state at position t predicts token t+1
    wanted = targets != IGNORE_INDEX  # (B, T - P - 1)
    logits = base.get_output_embeddings()(hidden[:, :-1][wanted])  # (N, vocab)
    softcap = getattr(base.config, "final_logit_softcapping", None)
    if softcap:  # e.g. Gemma 2: the model's forward caps its logits, so must we
        logits = torch.tanh(logits / softcap) * softcap
    per_token = torch.nn.functional.cross_entropy(logits.float(), targets[wanted], reduction="none")  # (N,)
    row = wanted.nonzero()[:, 0]  # (N,): the row of each answer token
    w = weights.to(per_token.device)[row] if weights is not None else torch.ones_like(per_token)
    group = groups[row]
    total = torch.zeros(n_groups, device=per_token.device).index_add(0, group, per_token * w)
    weight = torch.zeros(n_groups, device=per_token.device).index_add(0, group, w)
    loss = total / weight.clamp(min=1e-12)  # (G,)
    return loss if grouped else loss[0]
