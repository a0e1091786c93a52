"""The paper's statistical tests, on tidy tables of median ranks, and the checks that go further.

Figure 2 of the paper compares two language models (one Gemma, one Llama) on the median rank of
each Big Two category per prompt: a three-way ANOVA ``rank ~ category * valence * model`` (type II
sums of squares), then, in each category x valence cell, a Welch t-test of the two models with the
Benjamini-Hochberg false discovery rate over the four cells: :func:`anova` and :func:`welch_cells`.

Figure 1 fits a linear mixed model ``median_rank ~ base * category * framing`` with a random
intercept per reward model (REML), and tests Gemma against Llama in each panel with permutation
t-tests and a Bonferroni correction: :func:`fit_mixed`, :func:`coefficient_table` (with nlme's
degrees of freedom, :func:`nlme_df`) and :func:`panel_permutation_tests`. :func:`fit_mixed` also
fits crossed random effects (reward model and prompt) and random slopes.

The observations behind both figures are prompts, which are paraphrases of one another, and the
reward models nest in their families (4 Gemma, 6 Llama), so the number of independent units is ten.
:func:`rm_contrasts`, :func:`exact_split_test` (all 210 ways to split ten models 4 + 6),
:func:`cohen_d_ci` and :func:`rm_level_test` do the inference at that level, with Bayes factors;
:func:`family_claims` tests every panel at both levels, for a multiverse of analysis choices
(:func:`rmbias.ranks.median_ranks` with ``how="mean"`` swaps the median for the mean).
At vocabulary scale, where every p-value is tiny, :func:`correlation_noise_floor` turns a re-run of
the scores into the smallest correlation that numerical noise cannot explain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
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


def welch_cells(
    table: pd.DataFrame, value: str, model: str, cells: Sequence[str], order: Sequence[str] | None = None
) -> pd.DataFrame:
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
        rows.append(
            {
                **dict(zip(cells, key)),
                f"mean_{levels[0]}": first.mean(),
                f"mean_{levels[1]}": second.mean(),
                "t": test["T"],
                "df": test["dof"],
                "p": test["p_val"],
                "d": test["cohen_d"],
                "n_first": len(first),
                "n_second": len(second),
            }
        )
    out = pd.DataFrame(rows)
    out["p_fdr"] = fdrcorrection(out["p"])[1]
    return out


def figure2_tests(
    medians: pd.DataFrame, order: Sequence[str], value: str = "median_rank"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Figure 2 tests for one pair of models: the three-way ANOVA ``value ~ category *
    framing * model`` (:func:`anova`) and the Welch t-tests of the two models in each category x
    framing cell with the Benjamini-Hochberg correction over the cells (:func:`welch_cells`;
    ``order`` names the first model). ``medians`` holds one median rank per model, prompt and
    category. Returns ``(anova, welch)``."""
    return (
        anova(medians, value, ["category", "framing", "model"]),
        welch_cells(medians, value, "model", ["category", "framing"], order=order),
    )


def stars(p: float) -> str:
    """The conventional significance marks the paper's figures print."""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else "n.s."


# --------------------------------------------------------------------------------------------
# Figure 1: the linear mixed model and the per-panel permutation tests
#
# The authors' R script fits ``lme(median_rank ~ base_model * Category * prompt_framing,
# random = ~1 | model_id)`` (nlme, REML) on 10 RMs x 54 prompts x 2 categories, then runs
# MKinfer's ``perm.t.test`` (Welch t statistic, 9,999 permutations, one ``set.seed(42)`` for the
# whole script) of Gemma against Llama in each category x framing panel, with a Bonferroni
# correction over the panels. The functions below rebuild both in Python.
# --------------------------------------------------------------------------------------------

# R's factor levels in the authors' script (the first level is the reference of the treatment coding).
FIGURE1_LEVELS: dict[str, tuple[str, ...]] = {
    "base": ("Gemma", "Llama"),
    "category": ("Agency", "Communion"),
    "framing": ("positive", "negative"),
}
# statsmodels optimizers tried in turn by :func:`fit_mixed`: Powell's derivative-free search first
# (robust near the boundary, where a variance component is zero), then L-BFGS to polish.
OPTIMIZERS: tuple[tuple[str, ...], ...] = (("powell", "lbfgs"), ("lbfgs",), ("nm", "lbfgs"))


def with_levels(table: pd.DataFrame, levels: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """A copy of ``table`` whose ``levels`` columns are categoricals in the given order.

    The first level is the reference level of the treatment coding, as with R's ``factor()``, so
    the coefficients read as in R's output (``base[T.Llama]`` is Llama minus Gemma). Raises
    ``ValueError`` if a column holds a value that is not among its levels.
    """
    out = table.copy()
    for column, order in levels.items():
        unknown = sorted(set(out[column].astype(str)) - set(order))
        if unknown:
            raise ValueError(f"column {column!r} has values {unknown} outside its levels {list(order)}")
        out[column] = pd.Categorical(out[column].astype(str), categories=list(order))
    return out


def fit_mixed(
    table: pd.DataFrame,
    formula: str,
    groups: str | None = None,
    re_formula: str | None = None,
    vc: Mapping[str, str] | None = None,
    optimizers: Sequence[Sequence[str]] = OPTIMIZERS,
):
    """Fit a linear mixed model by REML with statsmodels and return the fitted result.

    ``groups`` names the grouping column of nested random effects (``"rm"`` with the default
    random intercept is the authors' model). With ``groups=None`` all rows form one group and the
    random effects are the variance components ``vc`` (name -> formula, e.g.
    ``{"rm": "0 + C(rm)", "prompt": "0 + C(prompt)"}``): statsmodels' route to **crossed**
    random effects, with sparse design matrices to keep it fast.

    statsmodels' optimizers can stop early when a variance component is near zero, which is
    common here, so each entry of ``optimizers`` is tried in turn until one converges; the fit
    with the highest REML log-likelihood is kept. The warnings statsmodels raised for the kept fit
    are attached as ``result.fit_warnings`` (a list of strings) instead of being printed.
    """
    import warnings

    import statsmodels.formula.api as smf

    data = table.reset_index(drop=True)
    options: dict = {"re_formula": re_formula, "vc_formula": dict(vc) if vc else None}
    if groups is None:
        data = data.assign(_one_group=1)
        groups = "_one_group"
        options.update(re_formula=re_formula or "0", use_sparse=True)
    best = None
    for methods in optimizers:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fit = smf.mixedlm(formula, data, groups=data[groups], **options).fit(reml=True, method=list(methods))
        fit.fit_warnings = sorted({str(w.message).split("\n")[0] for w in caught})
        if best is None or (fit.converged, fit.llf) > (best.converged, best.llf):
            best = fit
        if fit.converged:
            break
    return best


def nlme_df(exog: pd.DataFrame, units: Sequence) -> pd.Series:
    """Denominator degrees of freedom of each fixed effect, by nlme's rule for one grouping level.

    A term that is constant within every unit (``base``: each RM has one base model) is estimated
    *between* units and gets ``units - 1 - p_between`` degrees of freedom; every other term, and
    the intercept, is estimated *within* units and gets ``N - units - p_within`` (Pinheiro and
    Bates 2000, section 2.4.2). ``p_between`` and ``p_within`` count the non-intercept columns of
    each kind. For the paper's model (10 RMs, 1,080 rows) that is 8 for ``base`` and 1,064 for the
    rest: this is what R's ``summary(lme(...))`` prints beside each t-value, whereas statsmodels
    reports z-tests. ``exog`` is the design matrix with named columns, one row per observation.
    """
    codes = pd.factorize(pd.Series(list(units)))[0]
    n_units, n_rows = int(codes.max()) + 1, len(codes)
    between = exog.groupby(codes).nunique().max().eq(1)
    intercept = exog.columns.str.lower().isin(["intercept", "const"])
    p_between = int((between & ~intercept).sum())
    p_within = int((~between & ~intercept).sum())
    df = np.where(between & ~intercept, n_units - 1 - p_between, n_rows - n_units - p_within)
    return pd.Series(df.astype(float), index=exog.columns, name="df")


def coefficient_table(fit, unit: str | None = None) -> pd.DataFrame:
    """The fixed effects of a :func:`fit_mixed` result as a table, one row per term.

    Columns: ``term``, ``estimate``, ``se``, ``z`` (estimate / se) and ``p_z`` (normal, as
    statsmodels reports). With ``unit`` (the column of the grouping units, e.g. ``"rm"``) also
    ``df`` and ``p_t``: the t-test with nlme's degrees of freedom (:func:`nlme_df`), as R's
    ``summary(lme(...))`` reports it. For models with crossed or slope components nlme's rule is
    only an approximation (statsmodels has no Satterthwaite or Kenward-Roger correction).
    """
    from scipy import stats as st

    estimate, se = fit.fe_params, fit.bse_fe
    out = pd.DataFrame({"term": estimate.index, "estimate": estimate.to_numpy(), "se": se.to_numpy()})
    out["z"] = out["estimate"] / out["se"]
    out["p_z"] = 2 * st.norm.sf(out["z"].abs())
    if unit is not None:
        exog = pd.DataFrame(fit.model.exog, columns=fit.model.exog_names)
        out["df"] = nlme_df(exog, fit.model.data.frame[unit]).to_numpy()
        out["p_t"] = 2 * st.t.sf(out["z"].abs(), out["df"])
    return out


def gls_standard_errors(fit) -> pd.Series:
    """The fixed effects' standard errors recomputed from a :func:`fit_mixed` result's variance
    estimates by the GLS formula ``sqrt(diag((X' V^-1 X)^-1))``, with ``V`` the residual variance
    times the identity plus every random effect's covariance.

    statsmodels derives its standard errors from the Hessian of the likelihood and warns when that
    Hessian is not positive definite, as happens whenever a variance component sits on the
    boundary (zero). This independent route shows whether the fixed effects' errors are affected.
    It builds ``V`` densely, so it suits data sets of a few thousand rows.
    """
    model = fit.model
    v = fit.scale * np.eye(model.exog.shape[0])
    cov_re = np.asarray(fit.cov_re)
    variances = np.atleast_1d(fit.vcomp)
    for j, label in enumerate(model.group_labels):
        rows = model.row_indices[label]
        block = np.asarray(model.exog_re_li[j]) @ cov_re @ np.asarray(model.exog_re_li[j]).T if cov_re.size else 0.0
        for k, mats in enumerate(model.exog_vc.mats):
            z = mats[j].toarray() if hasattr(mats[j], "toarray") else np.asarray(mats[j])
            block = block + variances[k] * z @ z.T
        v[np.ix_(rows, rows)] += block
    x = model.exog
    cov = np.linalg.inv(x.T @ np.linalg.solve(v, x))
    return pd.Series(np.sqrt(np.diag(cov)), index=model.exog_names, name="se_gls")


def variance_table(fit, group: str = "group") -> pd.DataFrame:
    """The random-effect variances of a :func:`fit_mixed` result: ``component``, ``variance``, ``sd``.

    Random intercepts and slopes of nested grouping come from ``cov_re`` (diagonal only; the
    intercept is named ``group``, a slope ``"<group>: <term>"``), variance components from
    ``vcomp`` (named as in ``vc``), and the residual from ``scale``. A variance of (nearly) zero
    means REML put that component on the boundary: the data show no such variation.
    """
    rows = [
        (group if name in ("Group", "Intercept") else f"{group}: {name}", float(fit.cov_re.iloc[i, i]))
        for i, name in enumerate(fit.cov_re.columns)
    ]
    rows += [(name, float(v)) for name, v in zip(fit.model.exog_vc.names, np.atleast_1d(fit.vcomp))]
    rows.append(("residual", float(fit.scale)))
    out = pd.DataFrame(rows, columns=["component", "variance"])
    out["sd"] = np.sqrt(out["variance"].clip(lower=0))
    return out


def welch_t(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Welch's t statistic (mean of x minus mean of y over its standard error), row by row.

    ``x`` and ``y`` are 1-d samples or 2-d arrays with one sample per row, so a whole
    permutation distribution is computed in one call.
    """
    x, y = np.atleast_2d(x), np.atleast_2d(y)
    se = np.sqrt(x.var(axis=1, ddof=1) / x.shape[1] + y.var(axis=1, ddof=1) / y.shape[1])
    return (x.mean(axis=1) - y.mean(axis=1)) / se


def perm_welch_test(
    x: Sequence[float], y: Sequence[float], n_perm: int = 9999, rng: np.random.Generator | None = None
) -> dict[str, float]:
    """A two-sample permutation test with the Welch t statistic, built like MKinfer's ``perm.t.test``.

    The pooled values are shuffled ``n_perm`` times and split into samples of the original sizes;
    the two-sided p-value is the share of shuffles whose |t| reaches the observed |t|, at least
    ``1 / n_perm`` (MKinfer's ``perm.p.value``). Returns ``t``, ``df`` (Welch), ``p_welch`` (the
    parametric Welch p-value, which MKinfer returns as ``p.value``), ``p_perm`` and ``n_perm``.
    Pass one ``rng`` to successive calls to mimic a script that seeds once and runs many tests.
    """
    from scipy import stats as st

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    rng = rng if rng is not None else np.random.default_rng(42)
    t = float(welch_t(x, y)[0])
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    shuffled = rng.permuted(np.tile(np.concatenate([x, y]), (n_perm, 1)), axis=1)
    null = welch_t(shuffled[:, : len(x)], shuffled[:, len(x) :])
    p_perm = max(float(np.mean(np.abs(null) >= abs(t) * (1 - 1e-12))), 1 / n_perm)
    return {"t": t, "df": float(df), "p_welch": float(2 * st.t.sf(abs(t), df)), "p_perm": p_perm, "n_perm": n_perm}


def cohen_d(x: Sequence[float], y: Sequence[float], pooled: bool = True) -> float:
    """Cohen's d: mean of x minus mean of y over a standard deviation.

    With ``pooled`` (the textbook d) the denominator is the pooled SD, each variance weighted by
    its degrees of freedom; without it, the square root of the plain average of the two variances
    (the variant R's ``rstatix::cohens_d`` uses by default, which gives more weight to the
    smaller sample). The two differ when the samples differ in size and spread.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if pooled:
        variance = ((len(x) - 1) * x.var(ddof=1) + (len(y) - 1) * y.var(ddof=1)) / (len(x) + len(y) - 2)
    else:
        variance = (x.var(ddof=1) + y.var(ddof=1)) / 2
    return float((x.mean() - y.mean()) / np.sqrt(variance))


def panel_permutation_tests(
    table: pd.DataFrame,
    value: str,
    group: str,
    cells: Sequence[str],
    order: Sequence[str],
    n_perm: int = 9999,
    seed: int = 42,
) -> pd.DataFrame:
    """The authors' Figure 1 tests: in each panel (a cell of ``cells``), the first level of
    ``group`` against the second with :func:`perm_welch_test`, Bonferroni over the panels.

    One random generator, seeded once with ``seed``, serves the panels in turn, in the sorted
    order of the cells (as R's ``group_by`` visits them). Returns one row per panel with the
    sample sizes, both means, ``diff`` (second minus first: Llama minus Gemma for ranks, so
    negative means Llama ranks the category better), ``t``, ``df``, ``p_welch``, ``p_perm``,
    their Bonferroni versions ``p_welch_bonf`` and ``p_perm_bonf``, Cohen's ``d`` (first minus
    second, as the t statistic; pooled SD) and ``d_av`` (average-variance SD, see :func:`cohen_d`)
    and ``bf10``, the JZS Bayes factor of the Student t-test
    (pingouin, Cauchy prior scale 0.707).
    """
    import pingouin as pg

    rng = np.random.default_rng(seed)
    first, second = order
    rows = []
    for key, panel in table.groupby(list(cells), sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        x = panel.loc[panel[group] == first, value].to_numpy(float)
        y = panel.loc[panel[group] == second, value].to_numpy(float)
        test = perm_welch_test(x, y, n_perm=n_perm, rng=rng)
        student_t = cohen_d(x, y) / np.sqrt(1 / len(x) + 1 / len(y))
        rows.append(
            {
                **dict(zip(cells, key)),
                f"n_{first}": len(x),
                f"n_{second}": len(y),
                f"mean_{first}": x.mean(),
                f"mean_{second}": y.mean(),
                "diff": y.mean() - x.mean(),
                **{k: test[k] for k in ("t", "df", "p_welch", "p_perm")},
                "d": cohen_d(x, y),
                "d_av": cohen_d(x, y, pooled=False),
                "bf10": float(pg.bayesfactor_ttest(student_t, len(x), len(y))),
            }
        )
    out = pd.DataFrame(rows)
    for p in ("p_welch", "p_perm"):
        out[f"{p}_bonf"] = (out[p] * len(out)).clip(upper=1.0)
    return out


# --------------------------------------------------------------------------------------------
# Inference at the level of models: ten RMs, not 1,080 medians
# --------------------------------------------------------------------------------------------


def rm_contrasts(
    medians: pd.DataFrame,
    value: str = "median_rank",
    a: str = "Agency",
    b: str = "Communion",
    unit: str = "rm",
    family: str = "family",
) -> pd.DataFrame:
    """One row per model: its mean ``value`` in each category x framing panel, and the contrasts.

    ``gap_positive`` and ``gap_negative`` are the mean over prompts of (``a`` minus ``b``) within
    each framing (negative: ``a`` ranked better); ``interaction`` is ``gap_positive -
    gap_negative``. In a balanced design the difference of the family means of ``interaction`` is
    exactly the three-way coefficient ``base:category:framing`` of the paper's mixed model, so a
    test on these ten numbers is the model-level version of the paper's test.
    """
    means = medians.groupby([unit, family, "category", "framing"], sort=False, observed=True)[value].mean()
    wide = means.unstack(["framing", "category"])
    wide.columns = [f"{category}_{framing}" for framing, category in wide.columns]
    for framing in ("positive", "negative"):
        wide[f"gap_{framing}"] = wide[f"{a}_{framing}"] - wide[f"{b}_{framing}"]
    wide["interaction"] = wide["gap_positive"] - wide["gap_negative"]
    return wide.reset_index()


def family_splits(units: Sequence[str], n_first: int) -> list[tuple[str, ...]]:
    """Every way to choose ``n_first`` of ``units`` as the first family: C(n, n_first) tuples,
    each sorted in the order of ``units`` (210 for 4 Gemma-based among 10 RMs)."""
    from itertools import combinations

    return list(combinations(list(units), n_first))


def exact_split_test(values: pd.Series, first: Sequence[str]) -> dict[str, float | np.ndarray]:
    """Exact permutation test of a family difference over every split of the units.

    ``values`` has one number per unit (e.g. :func:`rm_contrasts`' ``interaction`` indexed by
    RM) and ``first`` names the units of the first family. The statistic is the mean of the
    second family minus the mean of the first, computed for every one of the
    C(n, len(first)) ways to label ``len(first)`` units as the first family; the two-sided
    p-value is the share of splits whose |statistic| reaches the observed one (the observed split
    included, so the smallest possible p is 1 / C(n, k)). Returns ``statistic``, ``p``,
    ``n_splits``, ``rank`` (how many splits reach it) and ``null`` (all split statistics).
    """
    first = set(first)
    if not first <= set(values.index):
        raise KeyError(f"units {sorted(first - set(values.index))} have no value")
    splits = family_splits(list(values.index), len(first))
    total, n = float(values.sum()), len(values)
    k = len(first)
    sums = np.array([values.loc[list(s)].sum() for s in splits])
    null = (total - sums) / (n - k) - sums / k
    observed = float(values[~values.index.isin(first)].mean() - values[values.index.isin(first)].mean())
    reach = np.abs(null) >= abs(observed) * (1 - 1e-12)
    return {
        "statistic": observed,
        "p": float(reach.mean()),
        "n_splits": len(splits),
        "rank": int(reach.sum()),
        "null": null,
    }


def family_claims(
    medians: pd.DataFrame,
    value: str = "median_rank",
    cells: Sequence[str] = ("category", "framing"),
    unit: str = "rm",
    family: str = "family",
    order: Sequence[str] = ("gemma", "llama"),
) -> pd.DataFrame:
    """Each panel's family difference, tested at the level of observations and of models.

    For every cell of ``cells`` (sorted): ``diff``, the mean of ``order[1]`` minus the mean of
    ``order[0]`` (each model weighs the same in a balanced design, so this is also the difference
    of model means); ``p_obs``, the Welch t-test over the observations (prompts x models, the
    paper's unit); and ``p_models``, the exact split test over the models' panel means
    (:func:`exact_split_test`). Both get a Bonferroni correction over the panels
    (``p_obs_bonf``, ``p_models_bonf``). One row per panel; a multiverse branch calls this on its
    own medians.
    """
    from scipy import stats as st

    rows = []
    for key, panel in medians.groupby(list(cells), sort=True, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        x = panel.loc[panel[family] == order[0], value].to_numpy(float)
        y = panel.loc[panel[family] == order[1], value].to_numpy(float)
        means = panel.groupby([unit, family], observed=True)[value].mean().reset_index(family)
        exact = exact_split_test(means[value], list(means.index[means[family] == order[0]]))
        rows.append(
            {
                **dict(zip(cells, key)),
                "diff": float(y.mean() - x.mean()),
                "p_obs": float(st.ttest_ind(y, x, equal_var=False).pvalue),
                "p_models": exact["p"],
            }
        )
    out = pd.DataFrame(rows)
    for p in ("p_obs", "p_models"):
        out[f"{p}_bonf"] = (out[p] * len(out)).clip(upper=1.0)
    return out


def cohen_d_ci(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """Hedges' g (Cohen's d with the small-sample correction) of x minus y, and its confidence
    interval from the noncentral t distribution (exact for normal data; with 4 and 6 models the
    usual normal approximation is too narrow). Returns ``(g, low, high)``."""
    from scipy import optimize
    from scipy import stats as st

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d, scale = cohen_d(x, y), np.sqrt(1 / len(x) + 1 / len(y))
    df = len(x) + len(y) - 2
    t = d / scale
    alpha = 1 - confidence

    def bound(target: float) -> float:  # the noncentrality at which P(T <= t) = target
        def gap(nc: float) -> float:
            return st.nct.cdf(t, df, nc) - target  # falls as nc grows

        step = 1.0
        while not (gap(t - step) > 0 > gap(t + step)):  # widen the bracket around t until it holds
            step *= 1.5
            if step > 1e4:
                raise ValueError(f"no confidence bound found for t = {t} with {df} df")
        return optimize.brentq(gap, t - step, t + step)

    correction = 1 - 3 / (4 * df - 1)
    return d * correction, bound(1 - alpha / 2) * scale * correction, bound(alpha / 2) * scale * correction


def rm_level_test(
    values: pd.Series, families: pd.Series, order: Sequence[str] = ("gemma", "llama"), confidence: float = 0.95
) -> dict[str, float]:
    """Everything the ten model-level numbers can say about a family difference.

    ``values`` (one number per unit, e.g. per RM) and ``families`` (the unit's family) share an
    index. Compares ``order[1]`` with ``order[0]`` and returns: ``n_first``, ``n_second``,
    ``diff`` (mean second minus mean first) with its Welch confidence interval ``diff_low`` /
    ``diff_high``, ``t``, ``df`` and ``p`` of the Welch test, Hedges' ``g`` (second minus first)
    with the noncentral-t interval ``g_low`` / ``g_high``, ``bf10`` (JZS Bayes factor of the
    Student t-test, pingouin, prior scale 0.707) and ``p_exact`` with ``n_splits`` from
    :func:`exact_split_test`.
    """
    import pingouin as pg
    from scipy import stats as st

    values = values[families.isin(order)]
    first = values[families[values.index] == order[0]].to_numpy(float)
    second = values[families[values.index] == order[1]].to_numpy(float)
    t = float(welch_t(second, first)[0])
    vx, vy = second.var(ddof=1) / len(second), first.var(ddof=1) / len(first)
    df = (vx + vy) ** 2 / (vx**2 / (len(second) - 1) + vy**2 / (len(first) - 1))
    diff = float(second.mean() - first.mean())
    half = st.t.ppf(0.5 + confidence / 2, df) * np.sqrt(vx + vy)
    g, g_low, g_high = cohen_d_ci(second, first, confidence)
    student_t = cohen_d(second, first) / np.sqrt(1 / len(first) + 1 / len(second))
    exact = exact_split_test(values, list(values.index[families[values.index] == order[0]]))
    return {
        "n_first": len(first),
        "n_second": len(second),
        "diff": diff,
        "diff_low": float(diff - half),
        "diff_high": float(diff + half),
        "t": t,
        "df": float(df),
        "p": float(2 * st.t.sf(abs(t), df)),
        "g": float(g),
        "g_low": float(g_low),
        "g_high": float(g_high),
        "bf10": float(pg.bayesfactor_ttest(student_t, len(second), len(first))),
        "p_exact": exact["p"],
        "n_splits": exact["n_splits"],
    }


# --------------------------------------------------------------------------------------------
# Vocabulary scale: effect sizes against a noise floor instead of p-values
# --------------------------------------------------------------------------------------------


def correlation_noise_floor(rerun_correlation: float) -> float:
    """The most any correlation with a score can move between two re-runs of that score.

    If two runs of the same scores (say bfloat16 and float32) correlate ``r`` with each other,
    then for *any* third variable X the correlations of X with run 1 and with run 2 differ by at
    most ``sqrt(2 (1 - r))``: standardise both runs, and the difference of the two correlations is
    an inner product of X with the difference of the runs, whose length is ``sqrt(2 (1 - r))``
    (Cauchy-Schwarz). Applied to ranks, the same holds for Spearman correlations. A
    vocabulary-level correlation smaller than this bound cannot be told apart from numerical
    noise, however many tokens make its p-value tiny.
    """
    if not -1 <= rerun_correlation <= 1:
        raise ValueError(f"a correlation lies in [-1, 1], not {rerun_correlation}")
    return float(np.sqrt(2 * (1 - rerun_correlation)))


def spearman_ci(x: Sequence[float], y: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Spearman's rho of x and y over the pairs where both are finite, with a Fisher-z interval
    (standard error ``1.06 / sqrt(n - 3)``, Fieller et al. 1957). Returns ``(rho, low, high, n)``."""
    from scipy import stats as st

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    n = int(keep.sum())
    rho = float(st.spearmanr(x[keep], y[keep])[0])
    half = st.norm.ppf(0.5 + confidence / 2) * 1.06 / np.sqrt(n - 3)
    return rho, float(np.tanh(np.arctanh(rho) - half)), float(np.tanh(np.arctanh(rho) + half)), n
