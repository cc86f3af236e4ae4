"""Training records and batches: tokenized (input_ids, labels) pairs, padding, the order of an epoch.

Shared by plain training (:mod:`.finetune`) and DP-SGD (:mod:`.privacy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from .models import end_of_answer, format_prompt

IGNORE_INDEX = -100  # label value that CrossEntropyLoss skips


@dataclass(frozen=True)
class TrainRecord:
    """One supervised example: the model sees the prompt, learns the answer (its loss scaled by ``weight``)."""

    instruction: str
    context: str
    response: str
    weight: float = 1.0  # e.g. a pseudo-label's agreement score (client.weight_by_score)


def tokenize_records(
    tokenizer: PreTrainedTokenizerBase, records: Sequence[TrainRecord], max_length: int
) -> list[tuple[list[int], list[int]]]:
    """(input_ids, labels) per record; labels are IGNORE_INDEX on prompt tokens."""
    out = []
    stop = end_of_answer(tokenizer)
    for rec in records:
        prompt = format_prompt(tokenizer, rec.instruction, rec.context)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(rec.response + stop, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + answer_ids)[-max_length:]  # keep the answer, drop the prompt's start
        n_answer = min(len(answer_ids), len(ids))
        labels = [IGNORE_INDEX] * (len(ids) - n_answer) + ids[len(ids) - n_answer :]
        out.append((ids, labels))
    return out


def pad(
    seqs: Sequence[Sequence[int]], pad_id: int, left: bool = False, device: torch.device | None = None
) -> dict[str, torch.Tensor]:
    """Pad token lists to one width, on the right (training) or the left (generation): input_ids, attention_mask,
    each (B, T), on ``device``."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[row, span] = torch.tensor(s, dtype=torch.long)
        mask[row, span] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device)}


def collate(batch: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch: input_ids, attention_mask, labels, each (B, T)."""
    ids, labels = zip(*batch)
    return {**pad(ids, pad_id), "labels": pad(labels, IGNORE_INDEX)["input_ids"]}


def batch_order(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, group_by_length: bool, window: int = 4
) -> list[list[int]]:
    """One epoch's batches of record indices.

    Without grouping: a random permutation cut into batches. With grouping: the permutation is cut into windows of
    ``window`` batches, each window is sorted by length and cut into batches, and the batches are shuffled; so a batch
    holds records of similar length (little padding) while each window is still a random draw (a batch does not become
    one task family, as it would if the whole epoch were sorted).
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    if not group_by_length:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    span = batch_size * window
    batches = []
    for w in range(0, len(order), span):
        chunk = sorted(order[w : w + span], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in shuffled]
