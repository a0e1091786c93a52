import pandas as pd
import pytest

from rmbias import profiles


def test_default_is_demo_and_overrides_apply():
    assert profiles.resolve().name == "demo"
    tiny = profiles.resolve("tiny", tokenizers=["tiny-llama"], max_words=None)
    assert tiny.tokenizers == ("tiny-llama",)  # lists become tuples
    assert tiny.max_words == profiles.PROFILES["tiny"].max_words  # None keeps the default


def test_unknown_profile_and_setting_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid profiles: tiny, demo, paper"):
        profiles.resolve("huge")
    with pytest.raises(ValueError, match="unknown setting\\(s\\) \\['batch'\\].*valid settings: tokenizers"):
        profiles.resolve("demo", batch=3)
    with pytest.raises(ValueError, match="takes a list"):
        profiles.resolve("demo", tokenizers="tiny-llama")


def test_limit_words_samples_per_category_reproducibly():
    table = pd.DataFrame({"word": list("abcdefgh"), "category": ["A"] * 6 + ["B"] * 2})
    small = profiles.limit_words(table, 3)
    assert small["category"].value_counts().to_dict() == {"A": 3, "B": 2}
    assert small.equals(profiles.limit_words(table, 3))
    assert profiles.limit_words(table, None) is table
