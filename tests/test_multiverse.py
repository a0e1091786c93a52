"""The multiverse of chapter 06 (rmbias.multiverse) and its figure (rmbias.plots.multiverse_grid)."""

import numpy as np
import pandas as pd
import pytest

from rmbias import multiverse, plots, stats

THREE_WAY = "base[T.Llama]:category[T.Communion]:framing[T.negative]"
FORMULA = "median_rank ~ base * category * framing"


def medians(n_per_family: int = 4, effect: float = 6.0, seed: int = 0) -> pd.DataFrame:
    """Median ranks per RM, prompt and category with a known pattern: on positive prompts the Llama
    RMs rank Agency ``effect`` better (lower) than the Gemma RMs, and Communion as much worse; on
    negative prompts the families do not differ."""
    rng = np.random.default_rng(seed)
    rows = []
    for family in ("gemma", "llama"):
        for m in range(n_per_family):
            rm_shift = rng.normal(0, 0.5)
            for p in range(6):
                framing = "positive" if p < 3 else "negative"
                for category in ("Agency", "Communion"):
                    sign = -1 if category == "Agency" else 1
                    gap = effect * sign if (family == "llama" and framing == "positive") else 0.0
                    rows.append(
                        {
                            "rm": f"{family}-{m}",
                            "family": family,
                            "prompt": f"p{p}",
                            "framing": framing,
                            "category": category,
                            "median_rank": 50 + gap + rm_shift + rng.normal(0, 1),
                        }
                    )
    table = pd.DataFrame(rows).assign(base=lambda t: t["family"].str.capitalize())
    return stats.with_levels(table, stats.FIGURE1_LEVELS)


def test_a_branch_tests_every_panel_and_the_three_way_claim_at_both_units():
    table = medians()
    rows = pd.DataFrame(
        multiverse.branch_rows("Big Two", table, {"summary": "median"}, three_way=THREE_WAY, formula=FORMULA)
    )
    assert len(rows) == 4 * 2 + 2 and set(rows["unit"]) == {"observations", "models"}
    assert (rows["summary"] == "median").all() and (rows["analysis"] == "Big Two").all()
    agency = rows[(rows["claim"] == "Agency, positive") & (rows["unit"] == "observations")].iloc[0]
    panel = table[(table["category"] == "Agency") & (table["framing"] == "positive")]
    by_family = panel.groupby("family", observed=True)["median_rank"].mean()
    assert agency["estimate"] == pytest.approx(by_family["llama"] - by_family["gemma"])
    assert agency["estimate"] < -4 and agency["p"] < 0.05
    # four RMs a family: the exact split test over models cannot go below 2 / C(8, 4) = 2 / 70 (the
    # observed split and its mirror), times 4 panels for Bonferroni; the clear panel reaches it
    panels = rows[(rows["unit"] == "models") & (rows["claim"] != "three-way interaction")]
    assert (panels["p"] >= 8 / 70 - 1e-12).all()
    assert panels.set_index("claim").loc["Agency, positive", "p"] == pytest.approx(8 / 70)
    three = rows[rows["claim"] == "three-way interaction"].set_index("unit")
    assert three.loc["observations", "estimate"] == three.loc["models", "estimate"]
    # Llama's Communion-minus-Agency gap is 12 on positive prompts and 0 on negative ones
    assert three.loc["observations", "estimate"] == pytest.approx(-12, abs=2)
    assert three.loc["observations", "p"] < 0.001
    assert three.loc["models", "p"] == pytest.approx(2 / 70)  # exact, not corrected: one claim


def test_a_three_way_claim_needs_the_formula():
    with pytest.raises(ValueError, match="formula"):
        multiverse.branch_rows("Big Two", medians(), {}, three_way=THREE_WAY)


def verdict_table() -> pd.DataFrame:
    """Two claims under two summaries and two units, the reference being (median, observations)."""
    rows = []
    for summary_, estimates, ps in (("median", (-3.0, 2.0), (0.01, 0.2)), ("mean", (-2.0, -1.0), (0.03, 0.01))):
        for unit, scale in (("observations", 1.0), ("models", 10.0)):
            for claim, estimate, p in zip(("A", "B"), estimates, ps):
                rows.append(
                    {
                        "analysis": "X",
                        "claim": claim,
                        "summary": summary_,
                        "Sanctity_Vice": "n/a",
                        "unit": unit,
                        "estimate": estimate,
                        "p": min(p * scale, 1.0),
                    }
                )
    table = pd.DataFrame(rows)
    reference = (table["summary"] == "median") & (table["unit"] == "observations")
    return multiverse.judge(table, reference)


def test_a_claim_survives_where_it_points_the_reference_way_and_is_significant():
    judged = verdict_table().set_index(["claim", "summary", "unit"])
    assert judged.loc[("A", "median", "observations"), "survives"]
    assert not judged.loc[("A", "median", "models"), "survives"]  # p = .1
    assert judged.loc[("A", "mean", "observations"), "survives"]
    assert not judged.loc[("B", "mean", "observations"), "same_direction"]  # flips: -1 against +2
    assert not judged.loc[("B", "mean", "observations"), "survives"]  # significant, but the other way
    assert not judged.loc[("B", "median", "observations"), "significant"]


def test_survival_and_verdict_changes_count_claims_and_comparisons():
    judged = verdict_table()
    assert multiverse.survival_counts(judged, "X", "observations") == (1, 2)  # A survives both summaries
    assert multiverse.survival_counts(judged, "X", "models") == (0, 2)
    # changing the summary alone: (A, observations) survives both ways; (A, models) fails both ways;
    # (B, observations) and (B, models) never survive: no verdict changes
    assert multiverse.verdict_changes(judged, "summary") == (0, 4)
    # changing the unit alone: A under both summaries changes (survives with observations only)
    assert multiverse.verdict_changes(judged, "unit") == (2, 4)
    # Sanctity_Vice takes one value here: that analysis is left out
    assert multiverse.verdict_changes(judged, "Sanctity_Vice") == (0, 0)


def test_the_reference_must_name_each_claim_once():
    table = verdict_table()
    with pytest.raises(ValueError, match="more than once"):
        multiverse.judge(table, table["summary"] == "median")
    with pytest.raises(ValueError, match="lack"):
        multiverse.judge(
            table, (table["claim"] == "A") & (table["summary"] == "median") & (table["unit"] == "observations")
        )


def test_the_grid_colours_each_cell_by_its_state():
    import matplotlib.pyplot as plt

    judged = verdict_table()
    fig = plots.multiverse_grid(judged, analyses=("X",))
    grid = fig.axes[0].images[0].get_array()
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    column = labels.index("mean rank\nobservations")
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert grid[rows.index("A"), column] == 2  # survives
    assert grid[rows.index("B"), column] == 3  # direction flips
    assert grid[rows.index("B"), labels.index("median rank\nobservations")] == 1  # same direction, n.s.
    assert grid.shape == (2, 4)
    plt.close(fig)
