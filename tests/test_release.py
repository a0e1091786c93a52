"""The authors' released RM scores: tidy tables, the discrepancies they hold, and the paper's
Figure 1 pattern, read from the release (network or RMBIAS_DATA_MIRROR)."""

import numpy as np
import pytest

from rmbias import corpora, prompts, ranks, registry, release

N_RMS, N_PROMPTS = 10, 54


@pytest.fixture(scope="module")
def big2():
    return release.released_scores("big2")


@pytest.fixture(scope="module")
def mfd():
    return release.released_scores("mfd")


def test_file_names_give_the_ten_hub_ids_by_folder():
    for corpus in ("big2", "mfd"):
        files = release.release_files(corpus)
        assert tuple(files) == release.RELEASED_RMS
        assert all(path.startswith(f"data/reward_model_scores/{release.CORPORA[corpus]}/") for path in files.values())
    mfd_files = release.release_files("mfd")
    assert mfd_files["Skywork/Skywork-Reward-Gemma-2-27B-v0.2"].endswith(
        "MFD20_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.parquet"
    )
    assert mfd_files["LxzGordon/URM-LLaMa-3.1-8B"].endswith(
        "dict_MFD_20/big2_rewards_LxzGordon_URM-LLaMa-3.1-8B.parquet"
    )
    with pytest.raises(ValueError, match="valid: big2, mfd"):
        release.release_files("afinn")


def test_families_from_specs_or_names():
    assert [registry.family_of(rm) for rm in release.RELEASED_RMS] == ["gemma"] * 4 + ["llama"] * 6
    assert registry.family_of("acme/Some-Gemma-RM") == "gemma"


def test_big2_scores_keep_the_263_dictionary_nouns(big2):
    assert len(big2) == N_RMS * N_PROMPTS * 263
    assert list(big2.columns) == ["rm", "family", "prompt", "framing", "word", "category", "score"]
    assert not big2.duplicated(["rm", "prompt", "word"]).any()
    assert set(big2["word"]) == set(corpora.big2_nouns()["word"])
    assert big2["rm"].unique().tolist() == list(release.RELEASED_RMS)
    assert big2.groupby("family")["rm"].nunique().to_dict() == {"gemma": 4, "llama": 6}
    assert big2["prompt"].unique().tolist() == prompts.all_prompts()["key"].tolist()
    assert big2.groupby("framing")["prompt"].nunique().to_dict() == {"positive": 27, "negative": 27}
    per_cell = big2.groupby(["rm", "prompt", "category"]).size()
    assert set(per_cell.xs("Agency", level="category")) == {104}
    assert set(per_cell.xs("Communion", level="category")) == {159}
    assert big2["score"].dtype == np.float64 and np.isfinite(big2["score"]).all()
    # one value as released: the first row of the QRM-Gemma file, first prompt
    first = big2.iloc[0]
    assert (first["rm"], first["prompt"], first["word"]) == ("nicolinho/QRM-Gemma-2-27B", "best_ever_one", "accuracy")


def test_big2_release_has_two_words_the_dictionary_lacks(big2):
    checks = release.release_checks("big2")
    assert checks["rows_per_file"] == {rm: 265 for rm in release.RELEASED_RMS}
    assert checks["dictionary_words"] == 263 and checks["released_words"] == 265
    assert checks["extra_words"] == {"discussion": [72], "eagerness": [73]}
    assert checks["missing_words"] == [] and checks["duplicate_words"] == []
    assert checks["same_words_in_every_file"] and checks["non_finite_scores"] == 0
    assert checks["misnamed_files"] == [] and checks["rms_match_paper"]
    assert checks["families"] == {"gemma": 4, "llama": 6}
    assert checks["multi_word_terms"] == ["common good", "common ground", "middle ground"]
    assert checks["kept_rows"] == len(big2) and checks["dropped_rows"] == N_RMS * N_PROMPTS * 2
    kept = release.released_scores("big2", dictionary_only=False)
    extra = kept[kept["category"].isna()]
    assert len(kept) == N_RMS * N_PROMPTS * 265
    assert set(extra["word"]) == {"discussion", "eagerness"} and len(extra) == checks["dropped_rows"]


def test_mfd_scores_and_checks(mfd):
    assert len(mfd) == N_RMS * N_PROMPTS * 2040
    assert {"foundation", "polarity"} <= set(mfd.columns)
    words = mfd.drop_duplicates("word")
    assert words["category"].value_counts()["Sanctity_Vice"] == 388
    assert set(words["category"]) == set(corpora.MFD_COLUMNS)
    checks = release.release_checks("mfd")
    assert len(checks["misnamed_files"]) == 6
    assert all(name.startswith("big2_rewards_") for name in checks["misnamed_files"])
    assert checks["extra_words"] == {} and checks["missing_words"] == []
    assert checks["multi_category_words"] == [] and checks["wildcard_terms"] == []
    assert len(checks["multi_word_terms"]) == 110 and "all for one" in checks["multi_word_terms"]
    assert checks["dropped_rows"] == 0


def test_misnamed_mfd_files_hold_the_rm_they_name():
    agree = release.folder_agreement()
    assert agree["rm"].tolist() == list(release.RELEASED_RMS)
    assert (agree["shared_words"] == 45).all()
    assert (agree["pearson"] > 0.998).all()
    assert (agree["best_match"] == agree["rm"]).all()


def test_big2_medians_reproduce_the_figure_1a_pattern(big2):
    scored = big2.assign(rank=ranks.within_ranks(big2, ["rm", "prompt"]))
    assert (scored.groupby(["rm", "prompt"])["rank"].sum() == 263 * 264 / 2).all()
    medians = ranks.median_ranks(scored, ["rm", "family", "prompt", "framing", "category"])
    assert len(medians) == N_RMS * N_PROMPTS * 2 == 1080
    gaps = ranks.family_gap(medians).set_index(["category", "framing"])["llama_minus_gemma"]
    # positive prompts: Llama-based RMs rank agency higher, Gemma-based rank communion higher
    assert gaps[("Agency", "positive")] < -2 and gaps[("Communion", "positive")] > 2
    # the pattern flips under negative framing (the three-way interaction)
    assert gaps[("Agency", "negative")] > 2 and gaps[("Communion", "negative")] < -2
    corr = ranks.rank_correlations(scored[scored["framing"] == "positive"])
    gemma, llama = list(release.RELEASED_RMS[:4]), list(release.RELEASED_RMS[4:])
    within = corr.loc["Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "nicolinho/QRM-Gemma-2-27B"]
    across = corr.loc[gemma[:3], llama].to_numpy().max()
    assert within > across  # the 27B Gemma RMs agree with each other more than with any Llama RM


def test_sanctity_vice_omission_changes_the_sanctity_panel(mfd):
    effect = ranks.omission_effect(mfd)
    assert effect["foundation"].unique().tolist() == list(corpora.MFD_FOUNDATIONS)
    assert len(effect) == 2 * 5 * 2
    words = effect.set_index(["route", "foundation", "framing"])["n_words"]
    assert words[("all", "Sanctity", "positive")] == 272 + 388
    assert words[("without", "Sanctity", "positive")] == 272
    assert words[("without", "Care", "positive")] == words[("all", "Care", "positive")] == 447
    panel = effect.set_index(["route", "foundation", "framing"])
    # virtue words only: the authors' Sanctity panel sits far higher (better) under positive prompts
    virtue_only = panel.loc[("without", "Sanctity", "positive"), "gemma"]
    assert virtue_only < 0.6 * panel.loc[("all", "Sanctity", "positive"), "gemma"]
