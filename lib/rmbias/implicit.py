"""Implicit reward models: the reward that two language models imply between them.

The KL-regularised RLHF objective has the closed-form optimum ``pi_r(y|x) = pi_ref(y|x)
exp(r(x, y) / beta) / Z(x)``. Read backwards, any pair of policies defines a reward:

    r(x, y) = c(x) + beta * log(pi_q(y|x) / pi_p(y|x))

where ``c(x)`` does not depend on the reply and so drops out of every ranking of replies to one
prompt. The paper (section 5) takes ``p`` = a Gemma model and ``q`` = a Llama model, so a positive
reward means the Llama model prefers the reply, and scores one-token replies: every decoded string
that both vocabularies share, read off each model's next-token distribution
(:meth:`rmbias.logprobs.Trace.by_string`, which keeps the highest log-probability where several
token ids decode to the same string).

The raw log ratio is dominated by junk tokens that both models find all but impossible (a ratio
of two tiny probabilities can be huge). Two remedies are offered side by side, so a chapter can
show which one recovers what:

- :func:`floored_log_ratio`: floor both log-probabilities (e.g. at ``log(1e-6)``) before the
  difference, so a token both models rule out scores zero;
- :func:`mwlr`, the paper's mixture-weighted log ratio ``0.5 (p + q) (log q - log p)``: the log
  ratio weighted by how likely the token is under the two models' mixture.

All functions work on plain arrays or on the tidy table :func:`shared_strings` returns
(``token``, ``logp_p``, ``logp_q``), to which :func:`implicit_rewards` adds one column per metric.

Which pairs? :func:`model_pairs` pairs a Gemma model with a Llama model of the same kind:
instruction-tuned with instruction-tuned (the paper's Figure 3: 3 Gemma-2-it x 7 Llama instruct
models = 21 pairs) and pretrained with pretrained (gemma-2-2b with Llama-3.2-3B), never one of each.
An instruction-tuned model reads the prompt as a chat and a pretrained one reads the bare
question, so a mixed pair's implicit reward would first of all measure that difference in format.
Only a model list with no same-kind pair at all (the demo profile: one instruct Llama, one
pretrained Gemma) falls back to its mixed pairs, labelled ``"mixed"``, so a chapter can say so.
"""

from __future__ import annotations

import math
import string
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from . import registry

ArrayLike = np.ndarray | pd.Series | float


# --- the pairs ------------------------------------------------------------------------------------

# What a pair joins: two instruction-tuned models, two pretrained ones, or (only as a fallback) one of each.
PAIR_KINDS = ("instruct", "pretrained", "mixed")


@dataclass(frozen=True)
class ModelPair:
    """One implicit reward model: ``p`` the Gemma model (the reference policy), ``q`` the Llama
    model (positive rewards: ``q`` prefers the reply), and the ``kind`` of models it joins."""

    p: str
    q: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in PAIR_KINDS:
            raise ValueError(f"unknown pair kind {self.kind!r}: use one of {', '.join(PAIR_KINDS)}")


def _kind(key: str) -> str:
    return "instruct" if registry.spec(key).instruct else "pretrained"


def model_pairs(keys: Sequence[str], *, fallback_mixed: bool = True) -> list[ModelPair]:
    """Every (Gemma, Llama) pair among ``keys`` whose two models are of the same kind:
    instruction-tuned pairs first, then pretrained pairs, each Gemma-major in the order given.

    A Gemma model is never paired with a Llama model of the other kind, unless ``keys`` hold no
    same-kind pair at all and ``fallback_mixed`` is set: then the mixed pairs are returned, each
    of kind ``"mixed"``. Models of other families (Qwen) are ignored.
    """
    keys = list(dict.fromkeys(keys))
    gemma = [k for k in keys if registry.family_of(k) == "gemma"]
    llama = [k for k in keys if registry.family_of(k) == "llama"]
    same = [
        ModelPair(g, m, kind)
        for kind in ("instruct", "pretrained")
        for g in gemma
        if _kind(g) == kind
        for m in llama
        if _kind(m) == kind
    ]
    if same or not fallback_mixed:
        return same
    return [ModelPair(g, m, "mixed") for g in gemma for m in llama]


def table_pair(pairs: Sequence[ModelPair], preferred: tuple[str, str] = registry.TABLE1_PAIR) -> ModelPair:
    """The pair for Table 1: ``preferred`` (the paper's gemma-2-2b-it and Llama-3.2-3B-Instruct)
    when it is among ``pairs``, else the first (an instruction-tuned pair where there is one)."""
    if not pairs:
        raise ValueError("no Gemma x Llama pair: the implicit reward needs a Gemma and a Llama model")
    for pair in pairs:
        if (pair.p, pair.q) == tuple(preferred):
            return pair
    return pairs[0]


# --- the join ------------------------------------------------------------------------------------


def shared_strings(p: pd.Series, q: pd.Series) -> pd.DataFrame:
    """The decoded strings present in both vocabularies, with each model's log-probability.

    ``p`` and ``q`` are log-probabilities indexed by decoded string, one entry per string (as
    :meth:`rmbias.logprobs.Trace.by_string` gives them). Returns columns ``token``, ``logp_p``,
    ``logp_q``, one row per shared string, in ``p``'s order. How many strings each side had and
    how many are shared is kept in ``table.attrs`` (``n_p``, ``n_q``, ``n_shared``), for the text.
    """
    for name, side in (("p", p), ("q", q)):
        if not side.index.is_unique:
            raise ValueError(f"{name} has duplicate strings; deduplicate it first (Trace.by_string keeps the max)")
    common = p.index.intersection(q.index, sort=False)
    if len(common) == 0:
        raise ValueError(
            "the two vocabularies share no decoded string: are these log-probabilities indexed by decoded token string?"
        )
    table = pd.DataFrame(
        {
            "token": np.asarray(common, dtype=object),
            "logp_p": p.loc[common].to_numpy(dtype=np.float64),
            "logp_q": q.loc[common].to_numpy(dtype=np.float64),
        }
    )
    table.attrs.update(n_p=int(len(p)), n_q=int(len(q)), n_shared=int(len(common)))
    return table


# --- metrics -------------------------------------------------------------------------------------


def log_ratio(lq: ArrayLike, lp: ArrayLike) -> ArrayLike:
    """The raw implicit reward (beta = 1, c = 0): ``log q(y) - log p(y)``."""
    return lq - lp


def floored_log_ratio(lq: ArrayLike, lp: ArrayLike, floor: float) -> ArrayLike:
    """``max(log q, floor) - max(log p, floor)``: the log ratio with both log-probabilities floored.

    A token that both models give less than ``exp(floor)`` scores exactly zero, and one that only
    one model rules out is judged against the floor, not against its vanishing probability.
    """
    return np.maximum(lq, floor) - np.maximum(lp, floor)


def mwlr(lq: ArrayLike, lp: ArrayLike) -> ArrayLike:
    """The paper's mixture-weighted log ratio: ``0.5 (p + q) (log q - log p)``.

    Positive when ``q`` (the Llama model) prefers the token; near zero when both models find the
    token unlikely, whatever their ratio; bounded by ``|log q - log p|``.
    """
    return 0.5 * (np.exp(lp) + np.exp(lq)) * (lq - lp)


# Readable name -> metric(lq, lp). Floors are probabilities (1e-4, 1e-6) turned into log space.
METRICS: dict[str, Callable[[ArrayLike, ArrayLike], ArrayLike]] = {
    "raw": log_ratio,
    "floor 1e-4": partial(floored_log_ratio, floor=math.log(1e-4)),
    "floor 1e-6": partial(floored_log_ratio, floor=math.log(1e-6)),
    "MWLR": mwlr,
}


def implicit_rewards(
    table: pd.DataFrame, metrics: Mapping[str, Callable[[ArrayLike, ArrayLike], ArrayLike]] | None = None
) -> pd.DataFrame:
    """A copy of ``table`` (columns ``logp_p``, ``logp_q``) with one column per metric
    (default :data:`METRICS`), named as in the mapping."""
    metrics = METRICS if metrics is None else metrics
    out = table.copy()
    lq, lp = out["logp_q"].to_numpy(dtype=np.float64), out["logp_p"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        for name, metric in metrics.items():
            out[name] = metric(lq, lp)
    return out


# --- reading the rewards -------------------------------------------------------------------------

_MARKUP = set(string.punctuation)


def is_markup(token: str) -> bool:
    """True for a token made only of whitespace, punctuation and Markdown characters (``**``,
    ``##``, ``\\n\\n``, ``---``, ``` `` ```, ``|``): formatting, not a reply. The empty string is
    not markup (there is nothing in it)."""
    if not token:
        return False
    return all(c.isspace() or c in _MARKUP or unicodedata.category(c).startswith("P") for c in token)


def _ranked(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The rows with a metric value, best first (ties: by token), with ``rank`` 1..n."""
    if metric not in table.columns:
        raise KeyError(f"no column {metric!r}; run implicit_rewards first (metrics: {', '.join(METRICS)})")
    valid = table[table[metric].notna()]
    ordered = (
        valid.assign(_key=valid["token"].astype(str))
        .sort_values([metric, "_key"], ascending=[False, True], kind="mergesort")
        .drop(columns="_key")
    )
    return ordered.assign(rank=np.arange(1, len(ordered) + 1))


def top_bottom(table: pd.DataFrame, metric: str, n: int = 15, drop_markup: bool = False) -> pd.DataFrame:
    """The ``n`` tokens with the highest and the ``n`` with the lowest ``metric`` (Table 1).

    Ranks run over every token with a value (1 = most preferred by ``q``, the Llama model; ties
    broken by token string). ``drop_markup`` leaves out :func:`is_markup` tokens from both lists
    (the paper's pessimum ignores Markdown) without renumbering the others, so a rank still says
    where the token stands among all shared strings. Returns columns ``end`` (``top`` or
    ``bottom``), ``rank``, ``token``, ``value``: the top best first, the bottom worst first.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    ranked = _ranked(table, metric)
    if drop_markup:
        ranked = ranked[~ranked["token"].map(is_markup)]
    top = ranked.head(n).assign(end="top")
    bottom = ranked.tail(n).iloc[::-1].assign(end="bottom")
    out = pd.concat([top, bottom], ignore_index=True)
    return out.rename(columns={metric: "value"})[["end", "rank", "token", "value"]]


def _normal(tokens: pd.Series) -> pd.Series:
    return tokens.astype(str).str.strip().str.lower()


def word_score(table: pd.DataFrame, word: str, metric: str) -> float:
    """The mean ``metric`` over the tokens whose string, stripped and lower-cased, is ``word``
    (``Freedom``, `` freedom``, ``freedom`` ...: the paper's Figure 3 rule). NaN if none."""
    if metric not in table.columns:
        raise KeyError(f"no column {metric!r}; run implicit_rewards first")
    values = table.loc[_normal(table["token"]) == word.strip().lower(), metric]
    return float(values.mean()) if len(values) else math.nan


def word_scores(table: pd.DataFrame, words: Iterable[str], metrics: str | Iterable[str] | None = None) -> pd.DataFrame:
    """:func:`word_score` for many words and metrics at once. One row per word that has at least
    one variant among the tokens, in the order given: ``word`` (stripped, lower-cased), the mean of
    each metric over its variants (default: every :data:`METRICS` column of ``table``) and
    ``n_variants``. Words with no shared variant are left out; compare the row count with the
    word count to report coverage."""
    if metrics is None:
        metrics = [m for m in METRICS if m in table.columns]
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise KeyError(f"no columns {missing}; run implicit_rewards first")
    wanted = list(dict.fromkeys(w.strip().lower() for w in words))
    normal = _normal(table["token"])
    hit = table.loc[normal.isin(set(wanted)), metrics].assign(word=normal[normal.isin(set(wanted))])
    grouped = hit.groupby("word", sort=False)
    out = grouped[metrics].mean().assign(n_variants=grouped.size())
    out = out.reindex([w for w in wanted if w in out.index])
    return out.rename_axis("word").reset_index()


def variant_strings(tokens: pd.Series, words: Iterable[str]) -> list[str]:
    """The distinct non-empty decoded strings in ``tokens`` that are a variant of one of ``words``
    (the same string once stripped and lower-cased, as :func:`word_score` matches them)."""
    wanted = {w.strip().lower() for w in words}
    tokens = tokens[tokens != ""]
    return list(dict.fromkeys(tokens[_normal(tokens).isin(wanted)]))


def word_scores_by_prompt(
    p,
    q,
    words: Iterable[str],
    prompts: Sequence[str],
    metrics: Mapping[str, Callable[[ArrayLike, ArrayLike], ArrayLike]] | None = None,
) -> pd.DataFrame:
    """:func:`word_scores` of the implicit rewards between two traces (``p`` the Gemma model, ``q``
    the Llama model; :class:`rmbias.logprobs.Trace`) on every prompt: one row per (prompt, word
    with a shared variant), columns ``prompt``, ``word``, one per metric (default :data:`METRICS`)
    and ``n_variants``.

    The same numbers as joining each prompt's whole vocabularies (``shared_strings`` of
    ``by_string``, then ``implicit_rewards`` and ``word_scores``): every step is per string, and a
    word's score reads only its variants. So only the variants are looked up, once per model for
    all prompts (:meth:`~rmbias.logprobs.Trace.lookup`, which keeps the highest log-probability of
    a string as ``by_string`` does); on 256,000-string vocabularies that is the difference between
    seconds and minutes per pair.
    """
    metrics = METRICS if metrics is None else metrics
    words = list(words)
    for trace in (p, q):
        for prompt in prompts:
            trace.column(prompt)  # the KeyError by_string would raise, naming the prompts traced
    sides = [trace.lookup(variant_strings(trace.tokens["token"], words)) for trace in (p, q)]
    rows = []
    for prompt in prompts:
        lp, lq = (side[prompt] for side in sides)
        if not lp.index.intersection(lq.index).size:
            continue  # no variant of any word in both vocabularies: no row, as word_scores would give
        scored = word_scores(implicit_rewards(shared_strings(lp, lq), metrics), words, list(metrics))
        rows.append(scored.assign(prompt=prompt))
    columns = ["prompt", "word", *metrics, "n_variants"]
    if not rows:
        return pd.DataFrame(columns=columns)
    return pd.concat(rows, ignore_index=True)[columns]


def precision_at_k(table: pd.DataFrame, metric: str, targets: Iterable[str], k: int) -> float:
    """The share of the ``k`` highest-``metric`` tokens whose stripped, lower-cased string is one
    of ``targets`` (compared lower-cased). Every case and leading-space variant of a target counts
    as a hit. Ties at the cut are broken by token string, as in :func:`top_bottom`."""
    wanted = {t.strip().lower() for t in targets}
    ranked = _ranked(table, metric)
    if k < 1 or k > len(ranked):
        raise ValueError(f"k must be between 1 and the number of scored tokens ({len(ranked)}), got {k}")
    return float(_normal(ranked["token"].head(k)).isin(wanted).mean())
