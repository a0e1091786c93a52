import pandas as pd

from rmbias import models, tokens


def test_variants():
    assert tokens.variants("love") == {"bare": "love", "space": " love", "Capital": "Love", "space+Capital": " Love"}


def test_coverage_counts_tokens_and_round_trips():
    tokenizer = models.load_tokenizer("llama-3-tokenizer")
    words = pd.DataFrame({"word": ["love", "trustworthiness"], "category": ["Communion", "Communion"]})
    table = tokens.coverage(tokenizer, words, "llama-3-tokenizer").set_index(["word", "variant"])
    assert len(table) == 8
    assert table.loc[("love", "space"), "n_tokens"] == 1  # no BOS counted
    assert table.loc[("trustworthiness", "bare"), "n_tokens"] > 1
    assert not table.loc[("trustworthiness", "bare"), "single_token"]
    assert table["round_trip"].all()
