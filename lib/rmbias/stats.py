"""The paper's statistical tests, on tidy tables of median ranks.

Figure 2 of the paper compares two language models (one Gemma, one Llama) on the median rank of
each Big Two category per prompt: a three-way ANOVA ``rank ~ category * valence * model`` (type II
sums of squares), then, in each category x valence cell, a Welch t-test of the two models with the
Benjamini-Hochberg false discovery rate over the four cells. :func:`anova_welch` runs both with
statsmodels and pingouin and returns readable tables.

The observations are prompts, which are paraphrases of one another rather than independent
samples; chapter 06 returns to what that does to the p-values.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def anova(table: pd.DataFrame, value: str, factors: Sequence[str], typ: int = 2) -> pd.DataFrame:
    """A full-factorial ANOVA of ``value`` on the categorical ``factors`` (OLS, type ``typ`` sums
    of squares). Returns one row per term (``category``, ``category:model``, ..., ``Residual``) with
    ``sum_sq``, ``df``, ``F``, ``p`` and the residual degrees of freedom ``df_resid`` repeated on
    every row, so a term reads as F(df, df_resid)."""
    import statsmodels.api as sm
    from statsmodels.formula.api import ols

    missing = [c for c in (value, *factors) if c not in table.columns]
    if missing:
        raise KeyError(f"columns {missing} not in the table; it has {list(table.columns)}")
    formula = f"{value} ~ " + " * ".join(f"C({f})" for f in factors)
    fit = ols(formula, data=table).fit()
    out = sm.stats.anova_lm(fit, typ=typ).rename(columns={"PR(>F)": "p"})
    out.index = [i.replace("C(", "").replace(")", "") for i in out.index]
    out["df_resid"] = fit.df_resid
    return out.rename_axis("term").reset_index()


def welch_cells(table: pd.DataFrame, value: str, model: str, cells: Sequence[str],
                order: Sequence[str] | None = None) -> pd.DataFrame:
    """Welch t-tests of the two levels of ``model`` within each cell of ``cells``, with the
    Benjamini-Hochberg correction over the cells.

    ``order`` fixes which model is first (t > 0: the first has the larger ``value``). Returns one
    row per cell with both means, ``t``, Welch ``df``, ``p``, ``p_fdr``, Cohen's ``d`` and the
    sample sizes.
    """
    import pingouin as pg
    from statsmodels.stats.multitest import fdrcorrection

    levels = list(order or dict.fromkeys(table[model]))
    if len(levels) != 2:
        raise ValueError(f"Welch tests compare two models; column {model!r} has {len(levels)}: {levels}")
    rows = []
    for key, group in table.groupby(list(cells), sort=False, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        first = group.loc[group[model] == levels[0], value]
        second = group.loc[group[model] == levels[1], value]
        test = pg.ttest(first, second, correction=True).iloc[0]
        rows.append({**dict(zip(cells, key)), f"mean_{levels[0]}": first.mean(), f"mean_{levels[1]}": second.mean(),
                     "t": test["T"], "df": test["dof"], "p": test["p_val"], "d": test["cohen_d"],
                     "n_first": len(first), "n_second": len(second)})
    out = pd.DataFrame(rows)
    out["p_fdr"] = fdrcorrection(out["p"])[1]
    return out


def stars(p: float) -> str:
    """The conventional significance marks the paper's figures print."""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."
