"""Ranking helpers, checked on small hand-made tables whose answers are worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from rmbias import ranks


@pytest.fixture
def tiny() -> pd.DataFrame:
    """Two models x two prompts x four words; m2 reverses m1's order on prompt p1."""
    rows = []
    scores = {
        ("m1", "p1"): {"a": 3.0, "b": 1.0, "c": 3.0, "d": 2.0},  # a, c tie for first
        ("m1", "p2"): {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0},
        ("m2", "p1"): {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0},
        ("m2", "p2"): {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0},
    }
    family = {"m1": "gemma", "m2": "llama"}
    category = {"a": "X", "b": "X", "c": "Y", "d": "Y"}
    for (model, prompt), by_word in scores.items():
        for word, score in by_word.items():
            rows.append(
                {
                    "rm": model,
                    "family": family[model],
                    "prompt": prompt,
                    "word": word,
                    "category": category[word],
                    "score": score,
                }
            )
    return pd.DataFrame(rows)


def test_within_ranks_one_is_best_and_ties_share_the_average(tiny):
    r = ranks.within_ranks(tiny, ["rm", "prompt"])
    assert r.name == "rank" and r.index.equals(tiny.index)
    assert r[:4].tolist() == [1.5, 4.0, 1.5, 3.0]  # m1/p1: scores 3, 1, 3, 2
    assert r[8:12].tolist() == [4.0, 3.0, 2.0, 1.0]  # m2/p1: scores 1..4
    low = ranks.within_ranks(tiny, ["rm", "prompt"], higher_is_better=False)
    assert low[:4].tolist() == [3.5, 1.0, 3.5, 2.0]
    # every group's ranks sum to n(n+1)/2, ties included
    assert (r.groupby([tiny["rm"], tiny["prompt"]]).sum() == 10).all()


def test_within_ranks_by_a_single_column_name_and_missing_scores():
    table = pd.DataFrame({"g": ["x", "x", "x", "y"], "s": [0.2, np.nan, 0.9, 5.0]})
    r = ranks.within_ranks(table, "g", score="s")
    assert r[0] == 2 and math.isnan(r[1]) and r[2] == 1 and r[3] == 1


def test_median_ranks_per_group(tiny):
    tiny["rank"] = ranks.within_ranks(tiny, ["rm", "prompt"])
    med = ranks.median_ranks(tiny, ["rm", "family", "prompt", "category"])
    assert len(med) == 2 * 2 * 2
    got = med.set_index(["rm", "prompt", "category"])
    # m1/p1: X = {a: 1.5, b: 4} -> 2.75; Y = {c: 1.5, d: 3} -> 2.25
    assert got.loc[("m1", "p1", "X"), "median_rank"] == 2.75
    assert got.loc[("m1", "p1", "Y"), "median_rank"] == 2.25
    assert got.loc[("m2", "p2", "X"), "median_rank"] == 3.5
    assert (med["n_words"] == 2).all() and (med.loc[med["rm"] == "m1", "family"] == "gemma").all()
    assert list(med.columns) == ["rm", "family", "prompt", "category", "median_rank", "n_words"]


def test_category_medians_rank_within_model_and_prompt_then_take_medians(tiny):
    tiny["framing"] = tiny["prompt"].map({"p1": "positive", "p2": "negative"})
    med = ranks.category_medians(tiny.rename(columns={"rm": "model"}), model="model", score="score")
    got = med.set_index(["model", "prompt", "category"])["median_rank"]
    # m1/p1: X = {a: 1.5, b: 4} -> 2.75; Y = {c: 1.5, d: 3} -> 2.25 (the hand-worked case above)
    assert (got[("m1", "p1", "X")], got[("m1", "p1", "Y")], got[("m2", "p2", "X")]) == (2.75, 2.25, 3.5)
    assert list(med.columns) == ["model", "family", "prompt", "framing", "category", "median_rank", "n_words"]
    # without a score it takes the ranks given, so ranks made another way are summarised as they are
    given = tiny.assign(rank=ranks.within_ranks(tiny, ["rm", "prompt"], higher_is_better=False))
    assert (
        ranks.category_medians(given).set_index(["rm", "prompt", "category"]).loc[("m1", "p1", "X"), "median_rank"]
        == 2.25
    )
    means = ranks.category_medians(tiny, score="score", category="word", how="mean")
    assert len(means) == 16 and (means["n_words"] == 1).all()


def test_panel_means_mean_and_standard_error():
    medians = pd.DataFrame(
        {"rm": ["m"] * 3 + ["n"] * 2, "category": ["X"] * 5, "median_rank": [1.0, 2.0, 3.0, 10.0, 10.0]}
    )
    out = ranks.panel_means(medians, ["rm", "category"]).set_index("rm")
    assert out.loc["m", "mean"] == 2.0 and out.loc["m", "n"] == 3
    assert out.loc["m", "sem"] == pytest.approx(1 / math.sqrt(3))  # SD 1 over sqrt(3)
    assert out.loc["n", "sem"] == 0.0
    # second level: mean over models of their means
    again = ranks.panel_means(out.reset_index(), ["category"], value="mean")
    assert again.loc[0, "mean"] == 6.0 and again.loc[0, "n"] == 2


def test_family_gap_averages_models_before_families():
    # gemma: g1 has prompts {2, 4} -> 3, g2 -> 5 ; family mean 4. llama: one model -> 10.
    medians = pd.DataFrame(
        {
            "rm": ["g1", "g1", "g2", "l1"],
            "family": ["gemma", "gemma", "gemma", "llama"],
            "category": ["X"] * 4,
            "framing": ["positive"] * 4,
            "median_rank": [2.0, 4.0, 5.0, 10.0],
        }
    )
    out = ranks.family_gap(medians)
    assert out.loc[0, "gemma"] == 4.0 and out.loc[0, "llama"] == 10.0
    assert out.loc[0, "llama_minus_gemma"] == 6.0
    with pytest.raises(ValueError, match="qwen"):
        ranks.family_gap(medians, second="qwen")


def test_category_gap_is_paired_by_prompt(tiny):
    tiny["rank"] = ranks.within_ranks(tiny, ["rm", "prompt"])
    tiny["framing"] = "positive"
    med = ranks.median_ranks(tiny, ["rm", "family", "prompt", "framing", "category"])
    gap = ranks.category_gap(med, a="X", b="Y").set_index("rm")
    # m1: p1 2.75 - 2.25 = 0.5 ; p2 X = {1, 2} -> 1.5, Y = {3, 4} -> 3.5, gap -2 ; mean -0.75
    assert gap.loc["m1", "gap"] == -0.75 and gap.loc["m1", "n"] == 2
    assert gap.loc["m1", "sem"] == pytest.approx(np.std([0.5, -2.0], ddof=1) / math.sqrt(2))
    assert gap.loc["m2", "gap"] == 2.0  # m2 prefers Y words on both prompts


def test_top_bottom_by_mean_rank_with_alphabetical_tie_break(tiny):
    tiny["rank"] = ranks.within_ranks(tiny, ["rm", "prompt"])
    out = ranks.top_bottom(tiny, 2, keep="category")
    m1 = out[out["rm"] == "m1"]
    # m1 mean ranks: a (1.5, 1) 1.25 ; b (4, 2) 3 ; c (1.5, 3) 2.25 ; d (3, 4) 3.5
    assert m1.loc[m1["end"] == "top", "word"].tolist() == ["a", "c"]
    assert m1.loc[m1["end"] == "bottom", "word"].tolist() == ["d", "b"]
    assert m1["position"].tolist() == [1, 2, 1, 2]
    assert m1.loc[m1["word"] == "a", "rank"].item() == 1.25
    assert m1.loc[m1["word"] == "c", "category"].item() == "Y"
    assert list(out["rm"].unique()) == ["m1", "m2"]  # order of appearance
    # by mean score instead: m2 scores d highest
    by_score = ranks.top_bottom(tiny, 1, value="score", higher_is_better=True)
    assert by_score.query("rm == 'm2' and end == 'top'")["word"].item() == "d"
    # equal means are ordered by the word
    ties = pd.DataFrame({"rm": "m", "word": ["z", "y", "x"], "rank": [1.0, 1.0, 3.0]})
    assert ranks.top_bottom(ties, 2)["word"].tolist() == ["y", "z", "x", "y"]


def test_rank_correlations_symmetric_with_unit_diagonal(tiny):
    tiny["rank"] = ranks.within_ranks(tiny, ["rm", "prompt"])
    extra = tiny[tiny["rm"] == "m1"].assign(rm="m3")  # a copy of m1
    corr = ranks.rank_correlations(pd.concat([tiny, extra]))
    assert list(corr.index) == list(corr.columns) == ["m1", "m2", "m3"]
    assert np.allclose(corr.to_numpy(), corr.to_numpy().T)
    assert np.allclose(np.diag(corr), 1.0)
    assert corr.loc["m1", "m3"] == pytest.approx(1.0)
    # m1 mean ranks a 1.25, c 2.25, b 3, d 3.5 ; m2 mean ranks a 4, b 3, c 2, d 1
    # words a, b, c, d: rank vectors (1, 3, 2, 4) and (4, 3, 2, 1); d = (3, 0, 0, 3)
    # rho = 1 - 6 * 18 / (4 * 15) = -0.8
    assert corr.loc["m1", "m2"] == pytest.approx(-0.8)


def test_omission_effect_reranks_without_the_dropped_category():
    # one prompt, one model per family; words: two in "keep", two in "gone"
    rows = []
    for rm, family, scores in (("g", "gemma", [4, 3, 2, 1]), ("l", "llama", [1, 4, 3, 2])):
        for word, cat, score in zip("abcd", ["keep", "keep", "gone", "gone"], scores):
            rows.append(
                {
                    "rm": rm,
                    "family": family,
                    "prompt": "p",
                    "framing": "positive",
                    "word": word,
                    "category": cat,
                    "group": cat,
                    "score": float(score),
                }
            )
    out = ranks.omission_effect(pd.DataFrame(rows), drop=["gone"], group="group")
    got = out.set_index(["route", "group"])
    # all words: g ranks keep (1, 2) -> 1.5 ; l ranks a 4, b 1 -> 2.5
    assert got.loc[("all", "keep"), "gemma"] == 1.5 and got.loc[("all", "keep"), "llama"] == 2.5
    assert got.loc[("all", "keep"), "n_words"] == 2
    # without "gone": ranks among a, b only: g (1, 2) -> 1.5 ; l (2, 1) -> 1.5
    assert got.loc[("without", "keep"), "llama_minus_gemma"] == 0.0
    assert ("without", "gone") not in got.index


def test_median_ranks_takes_medians_or_means():
    table = pd.DataFrame({"g": ["a", "a", "a", "b"], "rank": [1.0, 2.0, 9.0, 4.0]})
    assert ranks.median_ranks(table, ["g"])["median_rank"].tolist() == [2.0, 4.0]
    assert ranks.median_ranks(table, ["g"], how="mean")["median_rank"].tolist() == [4.0, 4.0]
    with pytest.raises(ValueError, match="median"):
        ranks.median_ranks(table, ["g"], how="mode")
