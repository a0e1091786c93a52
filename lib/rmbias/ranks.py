"""Ranks: the study's unit of analysis, shared by the RM, logit-tracing and training chapters.

Scores from different models live on different scales (one RM's rewards spread over 0.01, another's
over 10), so the paper compares **ranks**: words are ranked within each (model, prompt), 1 = most
preferred, and each category is summarised by its **median rank** (10 RMs x 54 prompts x 2 Big Two
categories = 1,080 medians). Everything here works on tidy pandas tables with named columns, so the
same functions serve reward scores, log-probabilities and training checkpoints.

Typical use on :func:`rmbias.release.released_scores`::

    scores["rank"] = within_ranks(scores, ["rm", "prompt"])
    medians = median_ranks(scores, ["rm", "family", "prompt", "framing", "category"])
    # the same two steps in one call: medians = category_medians(scores, score="score")
    per_model = panel_means(medians)                       # Figure 1 points and error bars
    per_family = panel_means(per_model, ["family", "category", "framing"], value="mean")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .corpora import MFD_COLUMNS, MFD_FOUNDATIONS

Columns = str | Sequence[str]


def _cols(by: Columns) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def within_ranks(table: pd.DataFrame, by: Columns, score: str = "score", higher_is_better: bool = True) -> pd.Series:
    """Rank the rows of ``table`` by ``score`` within each group of ``by``: 1 = best.

    Best is the highest score (rewards, log-probabilities) unless ``higher_is_better`` is False.
    Ties share the average of the ranks they span (R's default, which the authors used), so the
    ranks of a group of n rows always sum to n(n+1)/2. Missing scores get a missing rank.
    Returns a float Series named ``rank``, aligned with ``table``'s index.
    """
    ranks = table.groupby(_cols(by), sort=False, observed=True)[score].rank(
        method="average", ascending=not higher_is_better
    )
    return ranks.rename("rank")


def median_ranks(table: pd.DataFrame, by: Columns, rank: str = "rank", how: str = "median") -> pd.DataFrame:
    """The median of ``rank`` per group of ``by``: the paper's unit of analysis.

    With ``by=["rm", "prompt", "category"]`` on the Big Two this gives 10 x 54 x 2 = 1,080 rows.
    Columns that are constant within a group (``family`` given ``rm``, ``framing`` given
    ``prompt``) may be added to ``by`` to carry them along. Returns ``by`` + ``median_rank`` and
    ``n_words`` (the words behind each median), groups in order of first appearance.
    ``how="mean"`` takes the mean instead (a multiverse branch); the column keeps its name, so later
    steps do not change.
    """
    if how not in ("median", "mean"):
        raise ValueError(f"how must be 'median' or 'mean', not {how!r}")
    grouped = table.groupby(_cols(by), sort=False, observed=True)[rank]
    return grouped.agg(median_rank=how, n_words="count").reset_index()


def category_medians(
    table: pd.DataFrame, model: str = "rm", score: str | None = None, category: str = "category", how: str = "median"
) -> pd.DataFrame:
    """The paper's unit of analysis in one call: per ``model``, prompt and ``category``, the median
    (or, with ``how="mean"``, mean) rank of its words, carrying ``family`` and ``framing`` along.

    With ``score``, the words are first ranked within each (``model``, prompt) by it
    (:func:`within_ranks`); without, ``table`` must hold a ``rank`` column already. ``table`` needs
    ``model``, ``family``, ``prompt``, ``framing`` and ``category``. Returns the columns of
    :func:`median_ranks` (the Big Two of ten RMs on 54 prompts: 1,080 rows).
    """
    if score is not None:
        table = table.assign(rank=within_ranks(table, [model, "prompt"], score=score))
    return median_ranks(table, [model, "family", "prompt", "framing", category], how=how)


def panel_means(
    medians: pd.DataFrame, by: Columns = ("rm", "family", "category", "framing"), value: str = "median_rank"
) -> pd.DataFrame:
    """Mean and standard error of ``value`` per group of ``by``, over the rows left in each group.

    With the defaults, on :func:`median_ranks` output, this is each model's mean median rank over
    the 27 prompts of a framing, in each category x framing panel of Figure 1 (any number of
    categories: 2 for the Big Two, 10 MFD columns or 5 foundations). Applied again to that output
    with ``by=["family", "category", "framing"]`` and ``value="mean"`` it gives family means with
    the standard error over models (n = 4 Gemma, 6 Llama), the level at which RMs are independent.
    Returns ``by`` + ``mean``, ``sem`` (SD with ddof=1 over sqrt(n)) and ``n``.
    """
    grouped = medians.groupby(_cols(by), sort=False, observed=True)[value]
    out = grouped.agg(mean="mean", sd="std", n="count").reset_index()
    out["sem"] = out.pop("sd") / np.sqrt(out["n"])
    return out[[*_cols(by), "mean", "sem", "n"]]


def family_gap(
    medians: pd.DataFrame,
    by: Columns = ("category", "framing"),
    value: str = "median_rank",
    model: str = "rm",
    family: str = "family",
    first: str = "gemma",
    second: str = "llama",
) -> pd.DataFrame:
    """Family means of ``value`` per panel, and their difference ``<second>_minus_<first>``.

    Each model is first averaged over its rows (prompts), then models are averaged within their
    family, so a family with more prompts or models weighs no more. With ranks (1 = best) and the
    defaults, a positive ``llama_minus_gemma`` means the Gemma-based models rank that category
    better, as in the authors' summary table. Returns ``by`` + ``first``, ``second`` and the gap.
    """
    by = _cols(by)
    per_model = panel_means(medians, [model, family, *by], value)
    per_family = per_model.groupby([family, *by], sort=False, observed=True)["mean"].mean()
    wide = per_family.unstack(family).reset_index()
    for name in (first, second):
        if name not in wide:
            raise ValueError(f"no rows with {family} == {name!r}; found {sorted(per_model[family].unique())}")
    wide[f"{second}_minus_{first}"] = wide[second] - wide[first]
    wide.columns.name = None
    return wide[[*by, first, second, f"{second}_minus_{first}"]]


def category_gap(
    medians: pd.DataFrame,
    a: str = "Agency",
    b: str = "Communion",
    by: Columns = ("rm", "family", "framing"),
    category: str = "category",
    value: str = "median_rank",
    unit: str = "prompt",
) -> pd.DataFrame:
    """Per group of ``by``: the mean over ``unit`` (prompts) of ``value`` for ``a`` minus ``b``.

    With median ranks (1 = best) a negative ``gap`` means category ``a`` is preferred: for the Big
    Two, Agency minus Communion < 0 says the model ranks agency words above communion words.
    The gap is taken prompt by prompt (paired), then averaged. Returns ``by`` + ``gap``, ``sem``
    and ``n`` (prompts).
    """
    by = _cols(by)
    wide = medians[medians[category].isin([a, b])].pivot_table(
        index=[*by, unit], columns=category, values=value, observed=True, sort=False
    )
    paired = (wide[a] - wide[b]).rename("gap").reset_index()
    out = panel_means(paired, by, "gap")
    return out.rename(columns={"mean": "gap"})


def top_bottom(
    table: pd.DataFrame,
    n: int,
    by: Columns = "rm",
    word: str = "word",
    value: str = "rank",
    higher_is_better: bool = False,
    keep: Columns = (),
) -> pd.DataFrame:
    """The ``n`` best and ``n`` worst words per group of ``by``, by the mean of ``value``.

    The default ranks words by their **mean rank** over the rows of each (group, word), usually
    the prompts, so prompts with a wide score range weigh no more than others (pass
    ``value="score", higher_is_better=True`` to use mean scores). Filter to one framing first:
    a word's ranks under "best thing" and "worst thing" prompts should not be averaged.
    Returns ``by`` + ``end`` ("top" or "bottom"), ``position`` (1 = the best word for "top", the
    worst for "bottom"), ``word``, ``value`` (the mean) and the ``keep`` columns (e.g. category),
    which must be constant within a word. Ties are broken by the word, alphabetically.
    """
    by, keep = _cols(by), _cols(keep)
    means = table.groupby([*by, word, *keep], sort=False, observed=True)[value].mean().reset_index()
    means["_group"] = means.groupby(by, sort=False, observed=True).ngroup()  # order of appearance
    parts = []
    for end, best_first in (("top", True), ("bottom", False)):
        ascending = best_first != higher_is_better  # ascending value puts the best first for ranks
        ordered = means.sort_values(["_group", value, word], ascending=[True, ascending, True], kind="mergesort")
        head = ordered.groupby(by, sort=False, observed=True).head(n).copy()
        head.insert(len(by), "end", end)
        head.insert(len(by) + 1, "position", head.groupby(by, sort=False, observed=True).cumcount() + 1)
        parts.append(head)
    out = pd.concat(parts, ignore_index=True)
    return out[[*by, "end", "position", word, value, *keep]]


def rank_correlations(table: pd.DataFrame, model: str = "rm", word: str = "word", value: str = "rank") -> pd.DataFrame:
    """Spearman correlations between models of their per-word mean ``value`` (a models x models
    matrix, for a heatmap: do RMs built on the same base family order the words alike?).

    Each model's ``value`` is averaged per word over the remaining rows (prompts; filter to one
    framing first), then models are correlated over the words both scored. The matrix is
    symmetric with ones on the diagonal; models keep their order of first appearance.
    """
    means = table.groupby([word, model], sort=False, observed=True)[value].mean().unstack(model)
    order = list(dict.fromkeys(table[model]))
    corr = means[order].corr(method="spearman")
    corr.index.name = corr.columns.name = model
    return corr


def omission_effect(
    scores: pd.DataFrame,
    drop: Sequence[str] = ("Sanctity_Vice",),
    group: str = "foundation",
    category: str = "category",
) -> pd.DataFrame:
    """How the authors' MFD route (words of the ``drop`` categories removed) changes Figure 1b.

    The authors' MFD script pivots only the columns ``Care_Virtue`` to ``Sanctity_Virtue`` and
    keeps rows marked in one of them, so the 388 Sanctity_Vice terms are dropped **before**
    ranking (ranks run over 1,652 terms, not 2,040); it then pools virtue and vice into five
    foundations, so its Sanctity panel holds virtue words only while the other four pool both.
    This computes family means per (``group``, framing) both ways, from a table like
    :func:`rmbias.release.released_scores` ``("mfd")`` (columns rm, family, prompt, framing, word,
    score and ``group``): ranks within (rm, prompt), median rank per (rm, prompt, ``group``), then
    :func:`family_gap`. Returns ``route`` ("all" or "without"), ``group``, ``framing``, ``gemma``,
    ``llama``, ``llama_minus_gemma`` and ``n_words`` (words per (rm, prompt, group) cell).
    """
    parts = []
    for route, table in (("all", scores), ("without", scores[~scores[category].isin(list(drop))])):
        medians = category_medians(table, score="score", category=group)
        gaps = family_gap(medians, [group, "framing"])
        words = medians.groupby(group, sort=False)["n_words"].first()
        gaps.insert(0, "route", route)
        gaps["n_words"] = gaps[group].map(words).astype(int)
        parts.append(gaps)
    out = pd.concat(parts, ignore_index=True)
    for order in (MFD_FOUNDATIONS, MFD_COLUMNS):  # the dictionary's order, not the files'
        if set(out[group]) <= set(order):
            position = out[group].map({name: i for i, name in enumerate(order)})
            out = out.iloc[np.lexsort((position, out["route"] != "all"))].reset_index(drop=True)
    return out
