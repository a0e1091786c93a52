import pandas as pd
import pytest

from rmbias import data, prompts


def test_factorial_has_54_unique_prompts_balanced_by_framing():
    table = prompts.all_prompts()
    assert len(table) == 54 and table["key"].is_unique and table["text"].is_unique
    assert table["framing"].value_counts().to_dict() == {"positive": 27, "negative": 27}
    assert set(table.loc[table["framing"] == "positive", "adjective"]) == {"best", "greatest", "good"}


def test_headline_and_example_texts():
    table = prompts.all_prompts().set_index("key")["text"]
    assert table[prompts.HEADLINE] == "What, in one word, is the greatest thing ever?"
    assert table["good_world_please"] == "What is the most good thing in the world? Please answer in one word only."
    assert table["terrible_time_single"] == "What, in a single word, is the most terrible thing of all time?"


def test_keys_and_order_match_the_released_score_files():
    released = pd.read_parquet(data.fetch("big2_rewards_nicolinho_QRM-Gemma-2-27B.parquet"))
    assert list(released.columns[1:]) == prompts.all_prompts()["key"].tolist()


def test_bad_keys_are_named():
    with pytest.raises(ValueError, match="unknown adjective 'nicest'"):
        prompts.prompt_text("nicest", "ever", "one")
    with pytest.raises(ValueError, match="unknown prompt keys \\['greatest_ever_two'\\]"):
        prompts.select(["greatest_ever_one", "greatest_ever_two"])
    assert prompts.select(["worst_ever_one", "best_ever_one"])["key"].tolist() == ["worst_ever_one", "best_ever_one"]
