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
                    rows.append({"model": model, "category": category, "framing": valence, "prompt": f"{valence}{p}",
                                 "median_rank": 50 + shift + rng.normal(0, 5)})
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


def test_welch_refuses_more_than_two_models():
    table = _medians(1.0)
    table.loc[table.index[:5], "model"] = "C"
    with pytest.raises(ValueError, match="two models"):
        stats.welch_cells(table, "median_rank", "model", ["category"])


def test_stars():
    assert [stats.stars(p) for p in (0.0001, 0.005, 0.03, 0.2)] == ["***", "**", "*", "n.s."]
