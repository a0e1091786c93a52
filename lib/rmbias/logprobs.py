"""Logit tracing: what a language model would say first, as log-probabilities.

The paper asks whether the value bias of reward models is already present in the models they were
built from. For each prompt it reads the base model's next-token distribution at the point where
the reply would begin, over the whole vocabulary:

- an instruction-tuned model gets the chat template with the generation prompt (the header of
  the assistant's turn), so the next token is the first token of its reply;
- a pretrained model gets the raw prompt (with the BOS token its tokenizer adds).

Log-probabilities are a float32 log-softmax of the logits, whatever dtype the model runs in.

A word that is one token can be read off that distribution. A word that splits into several
tokens cannot, so :func:`continuation_logprobs` scores it by teacher forcing: the log-probability
of its first token from the distribution above, plus that of each further token given the ones
before, computed against a cached prefix (:class:`rmbias.scoring.PrefixCache`).

:func:`trace` runs one model over many prompts and writes the result as a resumable chunk:
``<directory>/<model>/next_token.npy`` (prompts x vocabulary, float32), ``tokens.parquet`` (every
token id and its decoded string) and ``next_token.meta.json``, written last as the completion mark,
recording what made it. :func:`force_words` does the same for teacher-forced words, one chunk per
prompt.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts, models, placement, progress, registry
from .keys import fingerprint, slug
from .scoring import FIXED_DATE, ChatFormat, PrefixCache, encode_chat, input_device, run_in_batches
from .tokens import variants


def prompt_ids(tokenizer, prompt: str, instruct: bool, date: str = FIXED_DATE) -> list[int]:
    """The token ids after which the model's reply begins.

    Instruction-tuned: the one-turn chat tokenised by the template with the generation prompt, as
    the authors traced it (one BOS), and ``date`` for templates that print one
    (:data:`rmbias.scoring.UNSET_DATE`: none, so the day of the run). Pretrained: the raw prompt,
    with the special tokens the tokenizer adds (its BOS).
    """
    if instruct:
        return encode_chat(
            tokenizer, [{"role": "user", "content": prompt}], ChatFormat(date=date), add_generation_prompt=True
        )
    return list(tokenizer(prompt)["input_ids"])


@torch.no_grad()
def next_token_logprobs(model, sequences: Sequence[Sequence[int]], batch_size: int = 8) -> torch.Tensor:
    """The float32 log-softmax over the vocabulary of the token after each sequence.

    Sequences of equal length are batched together, so nothing is padded and only the last
    position's logits are computed. Returns a CPU tensor of shape (len(sequences), vocabulary of
    the model's output layer), in the order given.
    """
    if not sequences:
        raise ValueError("no prompts to trace")
    order = sorted(range(len(sequences)), key=lambda i: (len(sequences[i]), i))
    out: list[torch.Tensor | None] = [None] * len(sequences)
    device = input_device(model)

    def run(start: int, stop: int, _batch: int) -> None:
        i = start
        while i < stop:  # equal-length runs within the batch
            j = i
            while j < stop and len(sequences[order[j]]) == len(sequences[order[i]]):
                j += 1
            ids = torch.tensor([list(sequences[order[k]]) for k in range(i, j)], device=device)
            logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=1).logits[:, -1]
            rows = torch.log_softmax(logits.float(), dim=-1).cpu()
            for k, row in zip(range(i, j), rows):
                out[order[k]] = row
            i = j

    run_in_batches(run, len(sequences), batch_size)
    return torch.stack(out)


@torch.no_grad()
def continuation_logprobs(
    model,
    prefix: Sequence[int],
    continuations: Sequence[Sequence[int]],
    first: torch.Tensor | None = None,
    batch_size: int = 64,
    pad_id: int = 0,
) -> np.ndarray:
    """Teacher forcing: the total log-probability of each continuation's tokens after ``prefix``.

    ``log p(t1 .. tn | prefix) = log p(t1 | prefix) + sum_k log p(tk | prefix, t1 .. tk-1)``.
    The first term comes from ``first`` (the prefix's next-token log-probabilities, computed here
    when not given); single-token continuations need nothing more. Longer ones run their tokens
    but the last against the prefix's cached keys and values, in batches. Returns float64 sums in
    the order given.
    """
    if not continuations:
        raise ValueError("no continuations to score")
    if any(len(c) == 0 for c in continuations):
        raise ValueError("an empty continuation has no log-probability; drop empty words first")
    if first is None:
        first = next_token_logprobs(model, [prefix])[0]
    totals = np.array([float(first[c[0]]) for c in continuations], dtype=np.float64)
    # grouped by length, so a batch pads (and computes logits for) as few positions as possible
    longer = sorted((i for i, c in enumerate(continuations) if len(c) > 1), key=lambda i: (len(continuations[i]), i))
    if not longer:
        return totals
    cache = PrefixCache(model, prefix, pad_id)

    def run(start: int, stop: int, batch: int) -> None:
        if cache.batch_size != batch:
            cache.expand(batch)
        rows = [list(continuations[i]) for i in longer[start:stop]]
        out, _ = cache([r[:-1] for r in rows])
        logp = torch.log_softmax(out.logits[: len(rows)].float(), dim=-1).cpu()
        for k, (i, row) in enumerate(zip(longer[start:stop], rows)):
            targets = torch.tensor(row[1:])
            totals[i] += float(logp[k, torch.arange(len(targets)), targets].sum())

    run_in_batches(run, len(longer), batch_size)
    return totals


# --- resumable runs over prompts -----------------------------------------------------------------


def _request(**parts: Any) -> str:
    return fingerprint(parts, 16)


def _done(meta: Path, request: str) -> bool:
    return meta.is_file() and json.loads(meta.read_text()).get("request") == request


def decoded_tokens(tokenizer, n: int) -> pd.DataFrame:
    """``token_id`` and ``token`` (the id decoded on its own) for ids ``0 .. n-1``; ids the
    tokenizer does not know (padding rows of an output layer larger than the vocabulary) get an
    empty string."""
    known = min(n, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(known)], skip_special_tokens=False)
    texts += [""] * (n - known)
    return pd.DataFrame({"token_id": np.arange(n), "token": texts})


@dataclass
class Trace:
    """One model's next-token log-probabilities for several prompts."""

    model: str  # the model's label (Hugging Face id or registry key)
    key: str  # the registry key it was loaded by
    family: str
    instruct: bool
    prompts: list[str]  # prompt keys, in row order
    logprobs: np.ndarray  # (prompts, vocabulary) float32
    tokens: pd.DataFrame  # token_id, token
    meta: dict[str, Any]

    def column(self, prompt: str) -> np.ndarray:
        """The log-probabilities for one prompt key."""
        if prompt not in self.prompts:
            raise KeyError(f"prompt {prompt!r} was not traced for {self.model}; traced: {', '.join(self.prompts)}")
        return self.logprobs[self.prompts.index(prompt)]

    def by_string(self, prompt: str) -> pd.Series:
        """Log-probabilities indexed by decoded string, keeping the highest where several token ids
        decode to the same string (as the authors did). Empty strings are dropped."""
        table = pd.DataFrame({"token": self.tokens["token"].to_numpy(), "logprob": self.column(prompt)})
        table = table[table["token"] != ""]
        return table.groupby("token", sort=False)["logprob"].max()

    def lookup(self, strings: Sequence[str]) -> pd.DataFrame:
        """The log-probabilities of the given decoded strings under every prompt: one row per string
        found in the vocabulary (the highest where several ids decode to it), one column per prompt."""
        tokens = self.tokens["token"]
        ids = np.flatnonzero(tokens.isin(set(strings)).to_numpy())
        wide = pd.DataFrame(self.logprobs[:, ids].T, index=tokens.to_numpy()[ids], columns=self.prompts)
        return wide.groupby(level=0).max()


def trace(
    key: str,
    prompts: pd.DataFrame,
    directory: Path,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    batch_size: int = 8,
    date: str = FIXED_DATE,
    quantize: str | None = None,
) -> Trace:
    """Next-token log-probabilities of every vocabulary token for every prompt, for one model.

    ``prompts`` has columns ``key`` and ``text``. The result is written to
    ``directory/<model>/`` and read back on a later call with the same request (model, dtype,
    quantisation, prompts, date), so an interrupted notebook loads nothing it has already traced.
    ``device`` and ``quantize`` place the model (:mod:`rmbias.placement`); a model too large for
    the device raises a :class:`rmbias.models.ModelError` that says what its weights need.
    """
    spec = registry.spec(key)
    folder = Path(directory) / slug(key)
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / "next_token.meta.json"
    request = _request(
        model=spec.fingerprint(),
        dtype=dtype,
        prompts=list(zip(prompts["key"], prompts["text"])),
        date=date,
        instruct=spec.instruct,
        **placement.result_key(quantize),
    )
    if not _done(meta_path, request):
        meta_path.unlink(missing_ok=True)
        model, tokenizer = models.load_causal_lm(key, dtype, device, quantize=quantize)
        sequences = [prompt_ids(tokenizer, text, spec.instruct, date) for text in prompts["text"]]
        started = time.perf_counter()
        values = next_token_logprobs(model, sequences, batch_size).numpy()
        seconds = time.perf_counter() - started

        def save(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a handle: np.save would add ".npy" to a path
                np.save(handle, values.astype(np.float32))

        artifacts.atomic_write(folder / "next_token.npy", save)
        artifacts.write_table(decoded_tokens(tokenizer, values.shape[1]), folder, "tokens")
        template = tokenizer.chat_template or ""
        artifacts.write_json(
            meta_path,
            {
                "request": request,
                "model": registry.describe(key),
                "revision": spec.revision or "unpinned (hub main)",
                "dtype": dtype,
                "attention": getattr(model.config, "_attn_implementation", None),
                **placement.describe(model, device, quantize),
                "prompt_format": "chat template + generation prompt" if spec.instruct else "raw prompt",
                "prompts": list(prompts["key"]),
                "rendered_prompt": tokenizer.decode(sequences[0]),
                "n_prompt_tokens": [len(s) for s in sequences],
                "vocabulary": int(values.shape[1]),
                "tokenizer_size": len(tokenizer),
                "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest(),
                "date": date,
                "seconds": round(seconds, 3),
                "versions": artifacts.library_versions(),
            },
        )
        del model
    meta = json.loads(meta_path.read_text())
    return Trace(
        model=spec.label,
        key=key,
        family=spec.family,
        instruct=spec.instruct,
        prompts=meta["prompts"],
        logprobs=np.load(folder / "next_token.npy"),
        tokens=pd.read_parquet(folder / "tokens.parquet"),
        meta=meta,
    )


def force_words(
    key: str,
    prompts: pd.DataFrame,
    forms: Sequence[str],
    directory: Path,
    *,
    dtype: str = "float32",
    device: str = "cpu",
    batch_size: int = 64,
    date: str = FIXED_DATE,
    quantize: str | None = None,
) -> pd.DataFrame:
    """Teacher-forced log-probabilities of each text in ``forms`` as the start of the reply.

    One chunk per prompt (``directory/<model>/forced-<prompt>.parquet``), so a long run resumes
    where it stopped. Returns one row per (prompt, form): ``model``, ``prompt``, ``form``,
    ``n_tokens`` and ``logprob`` (the sum over the form's tokens). Forms are tokenised without
    special tokens, as they would follow the prompt; an empty form is refused.
    """
    forms = list(dict.fromkeys(forms))
    if not forms or any(not f for f in forms):
        raise ValueError("forms must be non-empty strings")
    spec = registry.spec(key)
    folder = Path(directory) / slug(key)
    folder.mkdir(parents=True, exist_ok=True)
    loaded = None
    tables = []
    bar = progress.bar(len(prompts), f"teacher forcing {spec.label}", unit="prompt")
    for prompt_key, text in zip(prompts["key"], prompts["text"]):
        name = f"forced-{prompt_key}"
        request = _request(
            model=spec.fingerprint(), dtype=dtype, prompt=text, forms=forms, date=date, **placement.result_key(quantize)
        )
        if not _done(folder / f"{name}.meta.json", request):
            if loaded is None:
                loaded = models.load_causal_lm(key, dtype, device, quantize=quantize)
            model, tokenizer = loaded
            prefix = prompt_ids(tokenizer, text, spec.instruct, date)
            encoded = tokenizer(forms, add_special_tokens=False)["input_ids"]
            started = time.perf_counter()
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            values = continuation_logprobs(model, prefix, encoded, batch_size=batch_size, pad_id=pad)
            table = pd.DataFrame(
                {
                    "model": spec.label,
                    "prompt": prompt_key,
                    "form": forms,
                    "n_tokens": [len(e) for e in encoded],
                    "logprob": values,
                }
            )
            artifacts.write_table(
                table,
                folder,
                name,
                request=request,
                model_spec=registry.describe(key),
                dtype=dtype,
                **placement.describe(model, device, quantize),
                date=date,
                seconds=round(time.perf_counter() - started, 3),
            )
        tables.append(pd.read_parquet(folder / f"{name}.parquet"))
        bar.update(1)
    bar.close()
    return pd.concat(tables, ignore_index=True)


# --- words --------------------------------------------------------------------------------------


def shared_single_tokens(traces: Sequence[Trace], words: pd.DataFrame, column: str = "word") -> pd.DataFrame:
    """The rows of ``words`` whose text is exactly the decoded string of a token in every trace's
    vocabulary: the paper's criterion for Figure 2 (a bare, lower-case noun such as ``freedom``)."""
    keep = np.ones(len(words), dtype=bool)
    for item in traces:
        keep &= words[column].isin(set(item.tokens["token"])).to_numpy()
    return words[keep].reset_index(drop=True)


def single_token_table(
    traces: Sequence[Trace], words: pd.DataFrame, prompts: Sequence[str] | None = None, column: str = "word"
) -> pd.DataFrame:
    """Tidy log-probabilities of single-token words: one row per (model, prompt, word).

    Each word is looked up by decoded string (the highest log-probability where several ids decode
    to it). Words missing from a model's vocabulary are left out for that model; use
    :func:`shared_single_tokens` first to compare models on the same words. Columns: ``model``,
    ``family``, ``instruct``, ``prompt``, the columns of ``words``, ``logprob``.
    """
    parts = []
    for item in traces:
        wide = item.lookup(words[column].tolist())
        found = words[words[column].isin(wide.index)]
        for prompt in prompts or item.prompts:
            part = found.copy()
            part["logprob"] = wide.loc[found[column], prompt].to_numpy()
            part.insert(0, "prompt", prompt)
            part.insert(0, "instruct", item.instruct)
            part.insert(0, "family", item.family)
            part.insert(0, "model", item.model)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def word_forms(words: pd.DataFrame, column: str = "word") -> pd.DataFrame:
    """Each word in its four surface forms (bare, leading space, capitalised, both; see
    :data:`rmbias.tokens.VARIANTS`): the columns of ``words`` plus ``variant`` and ``form``."""
    rows = [
        {**record, "variant": name, "form": form}
        for record in words.to_dict("records")
        for name, form in variants(record[column]).items()
    ]
    return pd.DataFrame(rows)


def word_logprobs(forced: pd.DataFrame, forms: pd.DataFrame, column: str = "word") -> pd.DataFrame:
    """The log-probability that the reply starts with a word in any of its surface forms.

    The forms are distinct token sequences, so their probabilities add:
    ``log p(word) = logsumexp over forms of log p(form)``. ``forced`` is :func:`force_words` output,
    ``forms`` is :func:`word_forms` output. Returns one row per (model, prompt, word) with the
    columns of the word table, ``logprob``, ``best_variant`` (the most probable form) and
    ``max_tokens`` (the longest form, in tokens).
    """
    table = forced.merge(forms, on="form")
    keys = ["model", "prompt", column]
    best = table.loc[table.groupby(keys, sort=False)["logprob"].idxmax(), keys + ["variant"]]
    grouped = table.groupby(keys, sort=False)
    out = grouped.agg(
        logprob=("logprob", lambda v: float(np.logaddexp.reduce(v.to_numpy()))), max_tokens=("n_tokens", "max")
    ).reset_index()
    out = out.merge(best.rename(columns={"variant": "best_variant"}), on=keys)
    extra = [c for c in forms.columns if c not in (column, "variant", "form")]
    return out.merge(forms.drop_duplicates(column)[[column, *extra]], on=column)
