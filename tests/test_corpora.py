import pytest

from rmbias import corpora, lexicons


def test_big2_nouns_counts():
    nouns = corpora.big2_nouns()
    assert len(nouns) == 263 and nouns["word"].is_unique
    assert nouns["category"].value_counts().to_dict() == {"Communion": 159, "Agency": 104}


def test_big2_expanded_counts():
    expanded = corpora.big2_expanded()
    assert len(expanded) == 936
    assert expanded["category"].value_counts().to_dict() == {"Communion": 490, "Agency": 446}


def test_mfd2_keeps_all_ten_columns_including_sanctity_vice():
    wide = corpora.mfd2_wide()
    assert len(wide) == 2040 and wide["word"].is_unique
    long = corpora.mfd2()
    counts = long.groupby("category", observed=True).size()
    assert list(counts.index) == list(corpora.MFD_COLUMNS)
    assert counts["Sanctity_Vice"] == 388 and counts["Care_Virtue"] == 170 and counts.sum() == 2040
    row = long[long["word"] == "abhor"].iloc[0]
    assert (row["foundation"], row["polarity"]) == ("Sanctity", "Vice")


def test_token_intersection_and_unknown_list():
    shared = corpora.token_intersection()
    assert len(shared) > 85_000 and "love" in set(shared)
    with pytest.raises(ValueError, match="valid: big2_nouns, big2_expanded, mfd2"):
        corpora.load("big3")


def test_lexicons_order_and_missing_words():
    zipf = lexicons.zipf_frequency(["the", "love", "qzxv"])
    assert zipf[0] > zipf[1] > 3 and zipf.isna()[2]
    vader = lexicons.vader_valence(["love", "hate", "table"])
    assert vader[0] > 2 and vader[1] < -2 and vader.isna()[2]
    afinn = lexicons.afinn_valence(["Love", "hate"])
    assert afinn[0] == 3 and afinn[1] == -3
