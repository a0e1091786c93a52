"""The paper's ANOVA and Welch tests on synthetic median ranks with a planted effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from rmbias import stats


def _medians(effect: float, n_prompts: int = 27, seed: int = 0) -> pd.DataFrame:
    """Median ranks for 2 models x 2 categories x 2 valences x n prompts; model B ranks Agency
    ``effect`` places better (lower) than model A, and Communion as much worse."""
    rng = np.random.default_rng(seed)
    rows = []
    for model in ("A", "B"):
        for category in ("Agency", "Communion"):
            for valence in ("positive", "negative"):
                shift = 0.0 if model == "A" else (-effect if category == "Agency" else effect)
                for p in range(n_prompts):
                    rows.append(
                        {
                            "model": model,
                            "category": category,
                            "framing": valence,
                            "prompt": f"{valence}{p}",
                            "median_rank": 50 + shift + rng.normal(0, 5),
                        }
                    )
    return pd.DataFrame(rows)


def test_anova_finds_a_planted_interaction_with_the_papers_degrees_of_freedom():
    table = stats.anova(_medians(effect=6.0), "median_rank", ["category", "framing", "model"]).set_index("term")
    # 2 x 2 x 2 cells x 27 prompts = 216 observations, 8 parameters: F(1, 208), as in the paper
    assert table.loc["category:model", "df"] == 1 and table.loc["category:model", "df_resid"] == 208
    assert table.loc["category:model", "p"] < 1e-6
    assert table.loc["category:framing:model", "p"] > 0.001
    null = stats.anova(_medians(effect=0.0), "median_rank", ["category", "framing", "model"]).set_index("term")
    assert null.loc["category:model", "p"] > 0.01
    with pytest.raises(KeyError, match="not in the table"):
        stats.anova(_medians(1.0), "rank", ["category"])


def test_welch_cells_match_scipy_and_correct_for_four_cells():
    table = _medians(effect=3.0, n_prompts=10, seed=1)
    out = stats.welch_cells(table, "median_rank", "model", ["category", "framing"], order=["A", "B"])
    assert len(out) == 4
    for _, row in out.iterrows():
        cell = table[(table["category"] == row["category"]) & (table["framing"] == row["framing"])]
        a, b = (cell.loc[cell["model"] == m, "median_rank"] for m in ("A", "B"))
        t, p = scipy_stats.ttest_ind(a, b, equal_var=False)
        assert row["t"] == pytest.approx(t) and row["p"] == pytest.approx(p)
        assert row["mean_A"] == pytest.approx(a.mean())
    # Benjamini-Hochberg: never smaller than the raw p-value, order preserved
    assert (out["p_fdr"] >= out["p"] - 1e-12).all()
    assert list(out.sort_values("p").index) == list(out.sort_values("p_fdr", kind="stable").index)
    agency = out[out["category"] == "Agency"]
    assert (agency["t"] > 0).all()  # B ranks Agency better: A's median ranks are larger


def test_figure2_tests_are_the_anova_and_the_welch_cells_of_one_pair():
    table = _medians(effect=6.0)
    anova, welch = stats.figure2_tests(table, ["B", "A"])
    assert anova.set_index("term").loc["category:model", "df_resid"] == 208
    assert list(dict.fromkeys(welch.columns)) == list(
        stats.welch_cells(table, "median_rank", "model", ["category", "framing"], order=["B", "A"]).columns
    )
    agency = welch[welch["category"] == "Agency"]
    assert (agency["t"] < 0).all()  # B first now: B's smaller median ranks make t negative
    assert (welch["p_fdr"] < 0.05).any()


def test_welch_refuses_more_than_two_models():
    table = _medians(1.0)
    table.loc[table.index[:5], "model"] = "C"
    with pytest.raises(ValueError, match="two models"):
        stats.welch_cells(table, "median_rank", "model", ["category"])


def test_stars():
    assert [stats.stars(p) for p in (0.0001, 0.005, 0.03, 0.2)] == ["***", "**", "*", "n.s."]


# ------------------------------------------------------------------ Figure 1: the mixed model


def _nested(
    n_units: int = 10,
    n_first: int = 4,
    n_prompts: int = 27,
    effects: dict | None = None,
    sd_unit: float = 2.0,
    sd_noise: float = 5.0,
    seed: int = 0,
) -> pd.DataFrame:
    """Balanced data laid out like Figure 1: units (RMs) in two families, 2 categories x 2 framings
    x ``n_prompts`` prompts per framing, a random intercept per unit and planted fixed effects."""
    effects = {"base": 0.0, "category": 0.0, "three_way": 0.0, **(effects or {})}
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_units):
        base = "Gemma" if u < n_first else "Llama"
        offset = rng.normal(0, sd_unit)
        for framing in ("positive", "negative"):
            for p in range(n_prompts):
                for category in ("Agency", "Communion"):
                    llama, communion, negative = base == "Llama", category == "Communion", framing == "negative"
                    mean = (
                        100
                        + effects["base"] * llama
                        + effects["category"] * communion
                        + effects["three_way"] * (llama and communion and negative)
                    )
                    rows.append(
                        {
                            "rm": f"rm{u}",
                            "family": base.lower(),
                            "base": base,
                            "category": category,
                            "framing": framing,
                            "prompt": f"{framing}{p}",
                            "median_rank": mean + offset + rng.normal(0, sd_noise),
                        }
                    )
    return stats.with_levels(pd.DataFrame(rows), stats.FIGURE1_LEVELS)


def test_with_levels_sets_the_reference_level_and_refuses_unknown_values():
    table = stats.with_levels(pd.DataFrame({"base": ["Llama", "Gemma"]}), {"base": ("Gemma", "Llama")})
    assert list(table["base"].cat.categories) == ["Gemma", "Llama"]
    with pytest.raises(ValueError, match="outside its levels"):
        stats.with_levels(pd.DataFrame({"base": ["Qwen"]}), {"base": ("Gemma", "Llama")})


def test_mixed_model_recovers_planted_fixed_effects():
    table = _nested(effects={"base": -6.0, "category": 3.0, "three_way": -20.0}, seed=3)
    fit = stats.fit_mixed(table, "median_rank ~ base * category * framing", groups="rm")
    coef = stats.coefficient_table(fit, unit="rm").set_index("term")
    assert fit.converged
    for term, planted in (
        ("base[T.Llama]", -6.0),
        ("category[T.Communion]", 3.0),
        ("base[T.Llama]:category[T.Communion]:framing[T.negative]", -20.0),
    ):
        row = coef.loc[term]
        assert abs(row["estimate"] - planted) < 3 * row["se"], term
    assert coef.loc["base[T.Llama]:category[T.Communion]:framing[T.negative]", "p_t"] < 1e-6
    assert coef.loc["framing[T.negative]", "p_t"] > 1e-3  # no planted framing effect


def test_reml_matches_the_closed_form_of_a_balanced_design():
    """In a balanced one-way design REML equals the ANOVA estimators: residual variance = mean
    square within units, unit variance = (mean square between - within) / rows per unit, here with
    a between-unit factor (base) as in the paper's model."""
    rng = np.random.default_rng(7)
    n_units, n_rows = 12, 30
    unit = np.repeat(np.arange(n_units), n_rows)
    base = np.where(unit < 5, "Gemma", "Llama")
    y = 10 + 4 * (base == "Llama") + rng.normal(0, 3, n_units)[unit] + rng.normal(0, 2, unit.size)
    table = stats.with_levels(pd.DataFrame({"rm": unit, "base": base, "y": y}), {"base": ("Gemma", "Llama")})
    fit = stats.fit_mixed(table, "y ~ base", groups="rm")
    means = table.groupby("rm", observed=True).agg(y=("y", "mean"), base=("base", "first"))
    ms_within = ((table["y"] - table["rm"].map(means["y"])) ** 2).sum() / (unit.size - n_units)
    fitted = means.groupby("base", observed=True)["y"].transform("mean")
    ms_between = n_rows * ((means["y"] - fitted) ** 2).sum() / (n_units - 2)
    assert fit.scale == pytest.approx(ms_within, rel=1e-4)
    assert float(fit.cov_re.iloc[0, 0]) == pytest.approx((ms_between - ms_within) / n_rows, rel=1e-3)
    gemma, llama = (means.loc[means["base"] == b, "y"].mean() for b in ("Gemma", "Llama"))
    assert fit.fe_params["base[T.Llama]"] == pytest.approx(llama - gemma)
    variances = stats.variance_table(fit, group="rm").set_index("component")["variance"]
    assert variances["residual"] == pytest.approx(fit.scale)
    assert variances["rm"] == pytest.approx(float(fit.cov_re.iloc[0, 0]))


def test_nlme_degrees_of_freedom_follow_pinheiro_and_bates():
    # R's Orthodont example: 27 subjects x 4 ages, Sex between subjects; lme prints
    # DF 79 for (Intercept), age and age:Sex, and 25 for Sex.
    subject = np.repeat(np.arange(27), 4)
    exog = pd.DataFrame(
        {"Intercept": 1.0, "age": np.tile([8.0, 10, 12, 14], 27), "SexFemale": (subject < 11).astype(float)}
    )
    exog["age:SexFemale"] = exog["age"] * exog["SexFemale"]
    df = stats.nlme_df(exog, subject)
    assert df.to_dict() == {"Intercept": 79.0, "age": 79.0, "SexFemale": 25.0, "age:SexFemale": 79.0}
    # The paper's design: 10 RMs x 108 rows, base between RMs, six within-RM terms.
    fit = stats.fit_mixed(_nested(), "median_rank ~ base * category * framing", groups="rm")
    coef = stats.coefficient_table(fit, unit="rm").set_index("term")
    assert coef.loc["base[T.Llama]", "df"] == 8 and (coef.drop("base[T.Llama]")["df"] == 1080 - 10 - 6).all()
    row = coef.loc["base[T.Llama]"]
    assert row["p_t"] == pytest.approx(2 * scipy_stats.t.sf(abs(row["estimate"] / row["se"]), 8))


def test_crossed_variance_components_are_recovered_and_widen_the_between_unit_error():
    rng = np.random.default_rng(11)
    units, prompts = 16, 30
    rm, prompt = np.repeat(np.arange(units), prompts), np.tile(np.arange(prompts), units)
    base = np.where(rm < 8, "Gemma", "Llama")
    y = (
        50
        + 2 * (base == "Llama")
        + rng.normal(0, 3, units)[rm]
        + rng.normal(0, 2, prompts)[prompt]
        + rng.normal(0, 1, rm.size)
    )
    table = stats.with_levels(
        pd.DataFrame({"rm": rm, "prompt": prompt, "base": base, "y": y}), {"base": ("Gemma", "Llama")}
    )
    crossed = stats.fit_mixed(table, "y ~ base", vc={"rm": "0 + C(rm)", "prompt": "0 + C(prompt)"})
    variances = stats.variance_table(crossed).set_index("component")["variance"]
    assert crossed.converged
    assert 2.0 < variances["rm"] ** 0.5 < 5.0 and 1.0 < variances["prompt"] ** 0.5 < 3.5
    assert 0.8 < variances["residual"] ** 0.5 < 1.2
    ols_se = np.sqrt(y.var(ddof=1) * (1 / 240 + 1 / 240))
    assert crossed.bse_fe["base[T.Llama]"] > 3 * ols_se  # the units, not the rows, set the error
    # statsmodels' standard errors are the GLS ones implied by the fitted variances
    assert np.allclose(stats.gls_standard_errors(crossed), crossed.bse_fe, rtol=1e-6)


def test_gls_standard_errors_of_nested_models_with_slopes():
    table = _nested(n_prompts=6, seed=2)
    for options in ({"groups": "rm"}, {"groups": "rm", "re_formula": "~category"}):
        fit = stats.fit_mixed(table, "median_rank ~ base * category * framing", **options)
        assert np.allclose(stats.gls_standard_errors(fit), fit.bse_fe, rtol=1e-5)


# ------------------------------------------------------------------ permutation tests


def test_permutation_test_matches_the_exact_answer_and_scipy():
    x, y = [0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.5, 13.0]
    out = stats.perm_welch_test(x, y, n_perm=40000, rng=np.random.default_rng(1))
    # Complete separation of 4 + 4 values: only the observed split and its mirror image reach
    # the observed |t| among the C(8, 4) = 70 equally likely splits, so p = 2 / 70.
    assert out["p_perm"] == pytest.approx(2 / 70, abs=0.004)
    welch = scipy_stats.ttest_ind(x, y, equal_var=False)
    assert out["t"] == pytest.approx(welch.statistic) and out["p_welch"] == pytest.approx(welch.pvalue)
    again = stats.perm_welch_test(x, y, n_perm=40000, rng=np.random.default_rng(1))
    assert again["p_perm"] == out["p_perm"]  # a fixed seed gives the same p-value
    null = stats.perm_welch_test(np.arange(10.0), np.arange(10.0) + 0.01, n_perm=999)
    assert null["p_perm"] > 0.5


def test_panel_tests_share_one_seeded_stream_and_apply_bonferroni():
    table = _nested(effects={"three_way": -15.0}, n_prompts=10)
    out = stats.panel_permutation_tests(
        table, "median_rank", "base", ["category", "framing"], ["Gemma", "Llama"], n_perm=999, seed=42
    )
    assert len(out) == 4
    assert (out["p_welch_bonf"] == (out["p_welch"] * 4).clip(upper=1)).all()
    cell = out[(out["category"] == "Communion") & (out["framing"] == "negative")].iloc[0]
    assert cell["diff"] < -10 and cell["p_perm_bonf"] < 0.01 and cell["bf10"] > 100
    import pingouin as pg

    panel = table[(table["category"] == "Communion") & (table["framing"] == "negative")]
    gemma, llama = (panel.loc[panel["base"] == b, "median_rank"] for b in ("Gemma", "Llama"))
    assert cell["d"] == pytest.approx(pg.compute_effsize(gemma, llama, eftype="cohen"))
    average_sd = np.sqrt((gemma.var() + llama.var()) / 2)
    assert cell["d_av"] == pytest.approx((gemma.mean() - llama.mean()) / average_sd)
    again = stats.panel_permutation_tests(
        table, "median_rank", "base", ["category", "framing"], ["Gemma", "Llama"], n_perm=999, seed=42
    )
    assert again["p_perm"].equals(out["p_perm"])


# ------------------------------------------------------------------ ten models, not 1,080 medians


def test_the_210_splits_are_exactly_all_ways_to_choose_four_of_ten():
    from itertools import combinations
    from math import comb

    units = [f"rm{i}" for i in range(10)]
    splits = stats.family_splits(units, 4)
    assert len(splits) == comb(10, 4) == 210
    assert {frozenset(s) for s in splits} == {frozenset(c) for c in combinations(units, 4)}
    assert all(len(set(s)) == 4 for s in splits)
    assert all(sum(u in s for s in splits) == comb(9, 3) for u in units)  # each RM is Gemma in 84 splits


def test_exact_split_test_on_a_constructed_case():
    units = [f"rm{i}" for i in range(10)]
    values = pd.Series([5.0, 6.0, 7.0, 8.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5], index=units)
    out = stats.exact_split_test(values, units[:4])
    assert out["statistic"] == pytest.approx(np.mean([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]) - 6.5)
    assert out["n_splits"] == 210 and out["rank"] == 1 and out["p"] == pytest.approx(1 / 210)
    flat = stats.exact_split_test(pd.Series(1.0, index=units), units[:4])
    assert flat["p"] == 1.0
    # two of four, by hand: splits {a,b} {a,c} {a,d} {b,c} {b,d} {c,d}
    small = pd.Series([1.0, 2.0, 3.0, 10.0], index=list("abcd"))
    by_hand = [
        np.mean([3, 10]) - 1.5,
        np.mean([2, 10]) - 2,
        np.mean([2, 3]) - 5.5,
        np.mean([1, 10]) - 2.5,
        np.mean([1, 3]) - 6,
        np.mean([1, 2]) - 6.5,
    ]
    result = stats.exact_split_test(small, ["a", "b"])
    assert np.allclose(sorted(result["null"]), sorted(by_hand))
    assert result["p"] == pytest.approx(np.mean(np.abs(by_hand) >= abs(by_hand[0])))
    with pytest.raises(KeyError, match="no value"):
        stats.exact_split_test(small, ["z"])


def test_model_level_interaction_equals_the_mixed_models_three_way_coefficient():
    table = _nested(effects={"three_way": -12.0}, seed=5)
    fit = stats.fit_mixed(table, "median_rank ~ base * category * framing", groups="rm")
    contrasts = stats.rm_contrasts(table).set_index("rm")
    test = stats.rm_level_test(contrasts["interaction"], contrasts["family"])
    coefficient = fit.fe_params["base[T.Llama]:category[T.Communion]:framing[T.negative]"]
    assert test["diff"] == pytest.approx(coefficient)
    gemma = contrasts.loc[contrasts["family"] == "gemma", "interaction"]
    llama = contrasts.loc[contrasts["family"] == "llama", "interaction"]
    welch = scipy_stats.ttest_ind(llama, gemma, equal_var=False)
    assert test["t"] == pytest.approx(welch.statistic) and test["p"] == pytest.approx(welch.pvalue)
    assert test["diff_low"] < test["diff"] < test["diff_high"] and test["g_low"] < test["g"] < test["g_high"]
    assert test["n_splits"] == 210 and test["p_exact"] >= 1 / 210
    assert test["bf10"] > 3  # a planted effect of 12 ranks against noise of about 1 at model level


def test_family_claims_test_each_panel_at_both_levels():
    table = _nested(effects={"three_way": -15.0}, n_prompts=12, seed=9)
    out = stats.family_claims(table)
    assert len(out) == 4 and list(out["category"]) == ["Agency", "Agency", "Communion", "Communion"]
    cell = out[(out["category"] == "Communion") & (out["framing"] == "negative")].iloc[0]
    panel = table[(table["category"] == "Communion") & (table["framing"] == "negative")]
    gemma, llama = (panel.loc[panel["family"] == f, "median_rank"] for f in ("gemma", "llama"))
    assert cell["diff"] == pytest.approx(llama.mean() - gemma.mean())
    assert cell["p_obs"] == pytest.approx(scipy_stats.ttest_ind(llama, gemma, equal_var=False).pvalue)
    # 10 models, every Llama model far below every Gemma model: only the observed split is as extreme
    assert cell["p_models"] == pytest.approx(1 / 210) and cell["p_models_bonf"] == pytest.approx(4 / 210)
    assert (out["p_obs_bonf"] >= out["p_obs"]).all()


def test_hedges_g_interval_is_the_noncentral_t_inversion():
    rng = np.random.default_rng(2)
    x, y = rng.normal(1.0, 1, 6), rng.normal(0.0, 1, 4)
    g, low, high = stats.cohen_d_ci(x, y)
    df, scale = 8, np.sqrt(1 / 6 + 1 / 4)
    correction = 1 - 3 / (4 * df - 1)
    t = stats.cohen_d(x, y) / scale
    assert g == pytest.approx(stats.cohen_d(x, y) * correction)
    assert scipy_stats.nct.cdf(t, df, low / correction / scale) == pytest.approx(0.975, abs=1e-6)
    assert scipy_stats.nct.cdf(t, df, high / correction / scale) == pytest.approx(0.025, abs=1e-6)
    big_x, big_y = rng.normal(0.5, 1, 400), rng.normal(0, 1, 400)
    g, low, high = stats.cohen_d_ci(big_x, big_y)
    se = np.sqrt(2 / 400 + g**2 / 1600)  # the normal approximation, good for large samples
    assert low == pytest.approx(g - 1.96 * se, abs=0.01) and high == pytest.approx(g + 1.96 * se, abs=0.01)


def test_the_two_cohen_d_definitions_agree_only_for_equal_samples():
    x, y = [1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0]
    assert (
        stats.cohen_d(x, y) == pytest.approx(stats.cohen_d(x, y, pooled=False)) == pytest.approx(-1 / np.std(x, ddof=1))
    )
    wide, narrow = [0.0, 10.0, 20.0], [5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0]
    assert stats.cohen_d(wide, narrow) != pytest.approx(stats.cohen_d(wide, narrow, pooled=False))


# ------------------------------------------------------------------ noise floor


def test_noise_floor_bounds_every_correlation_shift_between_reruns():
    rng = np.random.default_rng(4)
    run1 = rng.normal(size=5000)
    run2 = run1 + rng.normal(0, 0.1, 5000)  # a re-run with numerical noise
    floor = stats.correlation_noise_floor(np.corrcoef(run1, run2)[0, 1])
    z1, z2 = ((r - r.mean()) / r.std() for r in (run1, run2))
    candidates = [rng.normal(size=5000) for _ in range(50)] + [z1 - z2, run1 + 3 * (z1 - z2)]
    shifts = [abs(np.corrcoef(x, run1)[0, 1] - np.corrcoef(x, run2)[0, 1]) for x in candidates]
    assert max(shifts) <= floor + 1e-12
    assert shifts[-2] == pytest.approx(floor, rel=1e-6)  # the bound is attained: it is tight
    assert stats.correlation_noise_floor(1.0) == 0.0
    with pytest.raises(ValueError):
        stats.correlation_noise_floor(1.5)


def test_spearman_interval():
    rng = np.random.default_rng(6)
    x = rng.normal(size=300)
    y = x + rng.normal(size=300)
    y[0] = np.nan
    rho, low, high, n = stats.spearman_ci(x, y)
    assert n == 299 and low < rho < high
    assert rho == pytest.approx(scipy_stats.spearmanr(x[1:], y[1:])[0])


# ------------------------------------------------------------------ optional: against R's nlme


def _r_with_nlme() -> bool:
    import shutil
    import subprocess

    if shutil.which("Rscript") is None:
        return False
    return subprocess.run(["Rscript", "-e", "library(nlme)"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _r_with_nlme(), reason="R with the nlme package is not installed")
def test_coefficients_match_r_lme_on_the_released_scores(tmp_path):
    import subprocess

    from rmbias import ranks, release

    scores = release.released_scores("big2")
    scores["rank"] = ranks.within_ranks(scores, ["rm", "prompt"])
    medians = ranks.median_ranks(scores, ["rm", "family", "prompt", "framing", "category"])
    medians["base"] = medians["family"].str.capitalize()
    medians = stats.with_levels(medians, stats.FIGURE1_LEVELS)
    fit = stats.fit_mixed(medians, "median_rank ~ base * category * framing", groups="rm")
    ours = stats.coefficient_table(fit, unit="rm")
    medians.to_csv(tmp_path / "medians.csv", index=False)
    script = (
        f"library(nlme); d <- read.csv('{tmp_path / 'medians.csv'}');"
        "d$framing <- factor(d$framing, levels = c('positive', 'negative'));"
        "f <- summary(lme(median_rank ~ base * category * framing, random = ~1 | rm, data = d));"
        f"write.csv(f$tTable, '{tmp_path / 'r.csv'}')"
    )
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    theirs = pd.read_csv(tmp_path / "r.csv")
    assert np.allclose(ours["estimate"], theirs["Value"], atol=1e-6)
    assert np.allclose(ours["se"], theirs["Std.Error"], rtol=1e-3)
    assert np.allclose(ours["df"], theirs["DF"])
    assert np.allclose(ours["p_t"], theirs["p-value"], atol=1e-6)
