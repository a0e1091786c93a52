"""Scoring candidate replies with a reward model, fast and faithfully.

Every candidate is scored as the assistant turn of a two-turn chat rendered with the reward model's
own chat template. All candidates share the rendered prompt, so the engine runs the shared prefix
once, keeps its key/value cache, and runs only each candidate's few suffix tokens against it
(:func:`score_cached`). :func:`score_full` is the plain reference: every chat through the whole model.

Two traps are handled here rather than left to the model class:

- The chat is tokenised by the template itself (``apply_chat_template(tokenize=True)``), never
  rendered to text and tokenised again, which would add a second BOS token.
- The score is read at the last real token of each chat, found from the attention mask. Sequence-
  classification heads in transformers find it from the pad token instead, which picks the wrong
  position when the pad token also ends the chat (SmolLM2's pad token is its end-of-turn token).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch

# Llama 3.1 / 3.2 templates print today's date into the system header; fix it so scores do not
# depend on the day they were computed.
FIXED_DATE = "26 Jul 2024"


def chat_ids(tokenizer, prompt: str, response: str, date: str = FIXED_DATE) -> list[int]:
    """Token ids of the two-turn chat (user ``prompt``, assistant ``response``) as the template
    renders it, with exactly the special tokens the template writes."""
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no chat template; give the model's "
                         "ModelSpec a chat_template (see rmbias.models)")
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
    ids = tokenizer.apply_chat_template(messages, tokenize=True, date_string=date)
    if hasattr(ids, "keys"):  # transformers 5 returns a BatchEncoding
        ids = ids["input_ids"]
    return list(ids)


def split_shared_prefix(sequences: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """Split token sequences into their longest common prefix and the remaining suffixes.

    At least one token is left in every suffix, so each candidate has a position to score.
    """
    if not sequences:
        raise ValueError("no candidates to score: the word list is empty")
    shortest = min(len(s) for s in sequences)
    n = 0
    while n < shortest - 1 and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return list(sequences[0][:n]), [list(s[n:]) for s in sequences]


def _backbone_and_head(model):
    """The transformer body and the linear score head of a ``*ForSequenceClassification`` model."""
    head = getattr(model, "score", None)
    body = getattr(model, model.base_model_prefix, None)
    if head is None or body is None:
        raise TypeError(f"{type(model).__name__} has no `score` head on a `{model.base_model_prefix}` body; "
                        "this route supports transformers' *ForSequenceClassification models")
    return body, head


def _parts(model):
    """What both routes need: body, head, device, and the id to pad with (any id works: padded
    positions are masked and never pooled)."""
    body, head = _backbone_and_head(model)
    pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
    return body, head, next(model.parameters()).device, pad_id


def _pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _pooled_scores(head, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    last = mask.sum(dim=1) - 1  # right padding: the last real token of each row
    pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last.to(hidden.device)]
    return head(pooled).float()[:, 0]


@torch.no_grad()
def score_full(model, sequences: Sequence[Sequence[int]], batch_size: int = 16) -> torch.Tensor:
    """Reference route: each whole chat through the model, right-padded, scored at its last real token."""
    body, head, device, pad_id = _parts(model)
    out = []
    for start in range(0, len(sequences), batch_size):
        ids, mask = _pad(sequences[start : start + batch_size], pad_id)
        hidden = body(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        out.append(_pooled_scores(head, hidden, mask).cpu())
    return torch.cat(out)


@torch.no_grad()
def score_cached(model, sequences: Sequence[Sequence[int]], batch_size: int = 64) -> torch.Tensor:
    """Fast route: the shared prefix once, then only each candidate's suffix against its cache."""
    body, head, device, pad_id = _parts(model)
    prefix, suffixes = split_shared_prefix(sequences)
    n_prefix = len(prefix)
    prefix_cache = None
    if n_prefix:
        prefix_ids = torch.tensor([prefix], device=device)
        prefix_cache = body(input_ids=prefix_ids, use_cache=True).past_key_values
    out = []
    for start in range(0, len(suffixes), batch_size):
        rows = suffixes[start : start + batch_size]
        ids, mask = _pad(rows, pad_id)
        batch = len(rows)
        full_mask = torch.cat([torch.ones((batch, n_prefix), dtype=torch.long), mask], dim=1)
        positions = torch.arange(n_prefix, n_prefix + ids.shape[1]).expand(batch, -1)
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(batch)
        hidden = body(input_ids=ids.to(device), attention_mask=full_mask.to(device),
                      position_ids=positions.to(device), past_key_values=cache,
                      use_cache=cache is not None).last_hidden_state
        out.append(_pooled_scores(head, hidden, mask).cpu())
    return torch.cat(out)
