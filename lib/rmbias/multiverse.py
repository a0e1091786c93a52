"""A multiverse of analysis choices (Steegen et al. 2016): the paper's claims about the ten reward
models, re-tested under every combination of choices the released scores allow, and which
conclusions survive.

A *branch* is one set of choices (summary statistic, Sanctity_Vice route, ...) applied to the same
scores; it yields one row per claim and unit of inference (:func:`branch_rows`). A claim *survives*
in a branch when its estimate points the way it does in the paper's own route (the reference
branch) and its p-value is below .05 (:func:`judge`). :func:`survival_counts` and
:func:`verdict_changes` summarise the table; :func:`rmbias.plots.multiverse_grid` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from . import stats

UNITS = ("observations", "models")
# The choices a branch records, besides the analysis and the claim (chapter 06 varies all three).
FACTORS = ("summary", "Sanctity_Vice", "unit")
ALPHA = 0.05


def branch_rows(
    analysis: str,
    medians: pd.DataFrame,
    choices: Mapping[str, Any],
    three_way: str | None = None,
    formula: str | None = None,
    unit: str = "rm",
    family: str = "family",
) -> list[dict[str, Any]]:
    """The claims of one branch, each at both units of inference.

    Per panel (category x framing, :func:`rmbias.stats.family_claims`): the Llama-minus-Gemma
    difference of ``median_rank``, with its Bonferroni-corrected p over the observations (Welch)
    and over the models (the exact split test). With ``three_way`` (a fixed-effect name of
    ``formula``, e.g. ``base[T.Llama]:category[T.Communion]:framing[T.negative]``), the three-way
    interaction too: the mixed model's t-test (random intercept per ``unit``) over the
    observations, and the exact split test of the per-model interaction contrasts
    (:func:`rmbias.stats.rm_contrasts`) over the models. ``choices`` (e.g. ``{"summary": "median"}``)
    is copied into every row."""
    rows = []
    claims = stats.family_claims(medians, unit=unit, family=family)
    for _, claim in claims.iterrows():
        for level, p in zip(UNITS, (claim["p_obs_bonf"], claim["p_models_bonf"])):
            rows.append(
                {
                    "analysis": analysis,
                    "claim": f"{claim['category']}, {claim['framing']}",
                    **choices,
                    "unit": level,
                    "estimate": claim["diff"],
                    "p": p,
                }
            )
    if three_way is not None:
        if formula is None:
            raise ValueError("a three-way claim needs the mixed model's formula (formula=...)")
        fit = stats.fit_mixed(medians, formula, groups=unit)
        coefficient = stats.coefficient_table(fit, unit=unit).set_index("term").loc[three_way]
        per_model = stats.rm_contrasts(medians, unit=unit, family=family).set_index(unit)
        first = list(per_model.index[per_model[family] == "gemma"])
        exact = stats.exact_split_test(per_model["interaction"], first)
        for level, p in zip(UNITS, (coefficient["p_t"], exact["p"])):
            rows.append(
                {
                    "analysis": analysis,
                    "claim": "three-way interaction",
                    **choices,
                    "unit": level,
                    "estimate": coefficient["estimate"],
                    "p": p,
                }
            )
    return rows


def judge(table: pd.DataFrame, reference: pd.Series) -> pd.DataFrame:
    """``table`` (rows of :func:`branch_rows`) with ``same_direction`` (the estimate's sign equals the
    one of the same analysis and claim in the rows where ``reference`` is true), ``significant``
    (p < .05) and ``survives`` (both). The reference rows must hold each (analysis, claim) once."""
    signs = table[reference].set_index(["analysis", "claim"])["estimate"].apply(np.sign)
    if not signs.index.is_unique:
        raise ValueError("the reference rows hold a claim more than once: pick one branch and one unit")
    missing = set(zip(table["analysis"], table["claim"])) - set(signs.index)
    if missing:
        raise ValueError(f"the reference rows lack the claim(s) {sorted(missing)}")
    out = table.copy()
    out["same_direction"] = [
        np.sign(e) == signs[(a, c)] for a, c, e in out[["analysis", "claim", "estimate"]].itertuples(index=False)
    ]
    out["significant"] = out["p"] < ALPHA
    out["survives"] = out["same_direction"] & out["significant"]
    return out


def survival_counts(table: pd.DataFrame, analysis: str, unit: str) -> tuple[int, int]:
    """How many claims of ``analysis`` survive in every branch at ``unit``, and how many claims there are."""
    rows = table[(table["analysis"] == analysis) & (table["unit"] == unit)]
    survival = rows.groupby("claim")["survives"].all()
    return int(survival.sum()), len(survival)


def verdict_changes(table: pd.DataFrame, factor: str, factors: Sequence[str] = FACTORS) -> tuple[int, int]:
    """In how many comparisons does changing ``factor`` alone (the other ``factors`` held fixed)
    change whether a claim survives, and how many comparisons there are. Analyses in which
    ``factor`` takes one value only (the Big Two have no Sanctity_Vice route) are left out."""
    others = [f for f in factors if f != factor]
    varied = table.groupby("analysis")[factor].transform("nunique") > 1
    groups = table[varied].groupby(["analysis", "claim", *others])["survives"].nunique()
    return int((groups > 1).sum()), len(groups)
