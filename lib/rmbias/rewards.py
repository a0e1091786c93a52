"""Scoring runs: registered reward models over words or the whole vocabulary, resumable.

A run is cut into chunks, one per (reward model, prompt), and for the vocabulary route also per
part of the vocabulary. Each chunk is a parquet table with a ``.meta.json`` written after it; the
meta file is the completion mark. A run that is stopped (a Colab session that ends, a killed job)
is started again with the same call: finished chunks are read back, only the missing ones are
computed, and the result is identical to an uninterrupted run. A chunk computed for a different
request (other words, dtype, route, prompt, model) is recomputed, never mixed in.

Every chunk records what made it: model id and revision, dtype, attention implementation, route,
the batch size that fitted, the rendered chat of its first candidate, the chat template's hash,
library versions, the device (and how a split or quantised model was placed: :mod:`rmbias.placement`)
and the speed. A quantised run is keyed to its quantisation, so it never reuses full-precision
chunks, nor they it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from . import artifacts, memory, models, placement, registry, scoring
from .keys import fingerprint, slug


def _fingerprint(**request: Any) -> str:
    return fingerprint(request, 16)


def _chunk_done(directory: Path, name: str, request: str) -> bool:
    meta = directory / f"{name}.meta.json"
    if not (meta.is_file() and (directory / f"{name}.parquet").is_file()):
        return False
    return json.loads(meta.read_text()).get("request") == request


_LAST: dict[str, Any] = {}  # the reward model loaded last, kept for the next run that asks for the same
_TOKENIZER: dict[str, Any] = {}  # and the tokenizer loaded last (scoring never changes a tokenizer)


def _where_from(key: str) -> tuple:
    import huggingface_hub.constants

    return registry.spec(key).fingerprint(), huggingface_hub.constants.HF_HUB_CACHE


def tokenizer_for(key: str):
    """A reward model's tokenizer, kept until another model's is asked for (a 256k-token tokenizer
    takes seconds to load; scoring runs over words, the vocabulary and two tokenisations share it)."""
    if _TOKENIZER.get("ident") != _where_from(key):
        _TOKENIZER.clear()
        _TOKENIZER.update(ident=_where_from(key), tokenizer=models.load_tokenizer(key))
    return _TOKENIZER["tokenizer"]


def loaded_reward_model(key: str, dtype: str, device: str, quantize: str | None = None):
    """A reward model and its tokenizer (:func:`rmbias.models.load_reward_model`), kept in memory until
    another model is asked for, so scoring words, the vocabulary and a second tokenisation with one
    model loads it once (a 27B model takes minutes to load). The previous model is released before
    the next one loads, so two never share the GPU."""
    import gc

    ident = (*_where_from(key), dtype, device, quantize)
    if _LAST.get("ident") != ident:
        _LAST.clear()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        model, tokenizer = models.load_reward_model(key, dtype, device, quantize=quantize, tokenizer=tokenizer_for(key))
        _LAST.update(ident=ident, model=model, tokenizer=tokenizer)
    return _LAST["model"], _LAST["tokenizer"]


def release() -> None:
    """Drop the reward model kept by :func:`loaded_reward_model` (before loading something large)."""
    _LAST.clear()


class _Scorer:
    """Loads its reward model on first use, so a fully resumed run loads nothing."""

    def __init__(
        self,
        key: str,
        dtype: str | None,
        device: str,
        batch_size: int,
        route: str | None,
        progress: bool,
        on_batch: Callable[[int], None] | None,
        quantize: str | None = None,
        chat: scoring.ChatFormat = scoring.DEFAULT_CHAT,
    ):
        placement.check_quantize(quantize)  # before any chunk is looked at
        self.spec = registry.spec(key)
        self.key, self.dtype, self.device = (
            key,
            registry.dtype_for(key, dtype or "float32"),
            placement.resolve_device(device),
        )
        self.quantize, self.chat = quantize, chat
        self.batch_size, self.progress, self.on_batch = batch_size, progress, on_batch
        self.route = route or "cached"
        self._loaded = None
        self._tokenizer = None

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = tokenizer_for(self.key)
        return self._tokenizer

    @property
    def model(self):
        if self._loaded is None:
            self._loaded, self._tokenizer = loaded_reward_model(self.key, self.dtype, self.device, self.quantize)
        return self._loaded

    def request(self, prompt_text: str, candidates: Sequence[Any]) -> str:
        weights = None
        if self.spec.source == "trained":  # a changed training recipe or grid makes a new model
            from . import ablation

            weights = ablation.reward_model_path(self.spec.base).name
        chat = {} if self.chat == scoring.DEFAULT_CHAT else {"chat": self.chat.as_dict()}  # default: keys as before
        return _fingerprint(
            model=self.spec.fingerprint(),
            weights=weights,
            dtype=self.dtype,
            route=self.route,
            prompt=prompt_text,
            date=scoring.FIXED_DATE,
            candidates=list(candidates),
            **chat,
            **placement.result_key(self.quantize),
        )

    def run(self, sequences: list[list[int]], label: str) -> tuple[scoring.Scores, dict[str, Any]]:
        model = self.model
        result = scoring.score(
            model,
            sequences,
            route=self.route,
            batch_size=self.batch_size,
            progress=label if self.progress else False,
            on_batch=self.on_batch,
        )
        self.batch_size = result.batch_size  # keep a size that fitted for the next chunk
        template = self.tokenizer.chat_template or ""
        record = {
            "model": registry.describe(self.key),
            "revision": self.spec.revision or "unpinned (hub main)",
            "dtype": self.dtype,
            "attention": getattr(model.config, "_attn_implementation", None),
            "route": self.route,
            "batch_size": result.batch_size,
            **placement.describe(model, self.device, self.quantize),
            "device_name": torch.cuda.get_device_name()
            if self.device != "cpu" and torch.cuda.is_available()
            else "cpu",
            "rendered_chat": self.tokenizer.decode(sequences[0]),
            "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
            **self.chat.as_dict(),
            "head": model.head_settings()
            if hasattr(model, "head_settings")
            else {"class": type(model).__name__, "outputs": model.config.num_labels, "reward_column": 0},
            "seconds": round(result.seconds, 3),
            "candidates_per_second": round(result.per_second, 2),
        }
        return result, record


def score_words(
    rm_key: str,
    prompts: pd.DataFrame,
    words: Sequence[str],
    directory: Path,
    *,
    dtype: str | None = None,
    device: str = "cpu",
    batch_size: int = 64,
    route: str | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    quantize: str | None = None,
    chat: scoring.ChatFormat = scoring.DEFAULT_CHAT,
) -> pd.DataFrame:
    """Score each word as the reply to each prompt (``prompts`` has columns ``key`` and ``text``).

    Returns one row per (prompt, word): ``rm``, ``prompt``, ``word``, ``n_tokens``, ``score``.
    Chunks go to ``directory/<rm>/<prompt>.parquet``; finished chunks are reused. ``dtype`` is the
    profile's; a reward model whose spec names its own dtype (the paper's) runs in that. ``chat``
    says how the chats become ids (:class:`rmbias.scoring.ChatFormat`, the profile's ``chat``).
    """
    words = list(words)
    if not words:
        raise ValueError("no candidates to score: the word list is empty")
    scorer = _Scorer(rm_key, dtype, device, batch_size, route, progress, on_batch, quantize, chat)
    folder = Path(directory) / slug(rm_key)
    folder.mkdir(parents=True, exist_ok=True)
    tables = []
    for prompt_key, text in zip(prompts["key"], prompts["text"]):
        request = scorer.request(text, words)
        if not _chunk_done(folder, prompt_key, request):
            sequences = scoring.word_sequences(scorer.tokenizer, text, words, chat)
            result, record = scorer.run(sequences, f"{rm_key} {prompt_key}")
            table = pd.DataFrame(
                {
                    "rm": scorer.spec.label,
                    "prompt": prompt_key,
                    "word": words,
                    "n_tokens": [len(s) for s in sequences],
                    "score": result.values.numpy(),
                }
            )
            artifacts.write_table(table, folder, prompt_key, request=request, prompt_text=text, **record)
        tables.append(pd.read_parquet(folder / f"{prompt_key}.parquet"))
    return pd.concat(tables, ignore_index=True)


def score_vocabulary(
    rm_key: str,
    prompt_key: str,
    prompt_text: str,
    directory: Path,
    *,
    token_ids: Sequence[int] | None = None,
    part_size: int = 16384,
    dtype: str | None = None,
    device: str = "cpu",
    batch_size: int = 256,
    route: str | None = None,
    progress: bool = True,
    on_batch: Callable[[int], None] | None = None,
    quantize: str | None = None,
    chat: scoring.ChatFormat = scoring.DEFAULT_CHAT,
) -> pd.DataFrame:
    """Score every vocabulary token (or ``token_ids``) placed by id as the one-token reply.

    Returns one row per token: ``rm``, ``prompt``, ``token_id``, ``token`` (decoded), ``round_trips``
    (whether decode, render and re-tokenise gives the same chat) and ``score``. The vocabulary is
    cut into parts of ``part_size`` tokens, each its own resumable chunk.
    """
    scorer = _Scorer(rm_key, dtype, device, batch_size, route, progress, on_batch, quantize, chat)
    ids = list(token_ids) if token_ids is not None else scoring.vocabulary_ids(scorer.tokenizer)
    if not ids:
        raise ValueError("no candidates to score: the token list is empty")
    folder = Path(directory) / slug(rm_key)
    folder.mkdir(parents=True, exist_ok=True)
    tables = []
    for part, start in enumerate(range(0, len(ids), part_size)):
        chunk = ids[start : start + part_size]
        name = f"vocab-{prompt_key}-{part:03d}"
        request = scorer.request(prompt_text, chunk)
        if not _chunk_done(folder, name, request):
            tokenizer = scorer.tokenizer  # loaded only when a chunk is computed
            sequences = scoring.vocab_sequences(tokenizer, prompt_text, chunk, chat)
            result, record = scorer.run(sequences, f"{rm_key} vocabulary {part + 1}")
            table = pd.DataFrame(
                {
                    "rm": scorer.spec.label,
                    "prompt": prompt_key,
                    "token_id": chunk,
                    "token": [tokenizer.decode([t]) for t in chunk],
                    "round_trips": scoring.round_trips(tokenizer, prompt_text, chunk, chat),
                    "score": result.values.numpy(),
                }
            )
            artifacts.write_table(table, folder, name, request=request, prompt_text=prompt_text, **record)
        tables.append(pd.read_parquet(folder / f"{name}.parquet"))
    return pd.concat(tables, ignore_index=True)


def engine_check_plan(keys: Sequence[str], device: str, dtype: str) -> list[tuple[str, str]]:
    """Which reward models the engine check loads, and in which dtype: ``(key, dtype)`` pairs.

    On a CPU, every model whose float32 copy fits the free memory (the demo's and tiny's: float32
    against its bfloat16 copy, :func:`rmbias.scoring.agreement_report`). Elsewhere (a GPU), or where
    none fits, the smallest model in its own dtype on the device: a 27B model is never loaded in
    float32 on a CPU, nor loaded twice on a GPU for a check.
    """
    if placement.resolve_device(device) == "cpu":
        share, fixed = memory.MARGINS["inference"]
        free = memory.free_bytes("cpu")
        kept = [k for k in keys if memory.weight_bytes(k, "float32", reward=True) * (1 + share) + fixed <= free]
        if kept:
            return [(key, "float32") for key in kept]
    smallest = min(keys, key=lambda k: memory.weight_bytes(k, registry.dtype_for(k, dtype), reward=True))
    return [(smallest, registry.dtype_for(smallest, dtype))]
