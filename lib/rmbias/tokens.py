"""How words map onto tokenizer vocabularies.

The study ranks words by a model's score or log-probability of the word as a reply. A word that
is one token can be read off a single next-token distribution; a word that splits into several
cannot. Whether a word is a single token depends on the tokenizer and on its surface form
(leading space, capital letter), so coverage is measured for each variant.
"""

from __future__ import annotations

import pandas as pd

VARIANTS = {
    "bare": lambda w: w,
    "space": lambda w: " " + w,
    "Capital": lambda w: w[:1].upper() + w[1:],
    "space+Capital": lambda w: " " + w[:1].upper() + w[1:],
}


def variants(word: str) -> dict[str, str]:
    """The four surface forms checked for every word: bare, leading space, capitalised, both."""
    return {name: make(word) for name, make in VARIANTS.items()}


def coverage(tokenizer, words: pd.DataFrame, tokenizer_name: str) -> pd.DataFrame:
    """One row per (word, variant): the text, its token count, whether it is a single token, and
    whether decoding its tokens gives the text back (the round trip the scoring route relies on).

    ``words`` needs ``word`` and ``category`` columns; other columns are carried along.
    """
    rows = []
    for record in words.to_dict("records"):
        for variant, text in variants(record["word"]).items():
            rows.append({**record, "tokenizer": tokenizer_name, "variant": variant, "text": text})
    table = pd.DataFrame(rows)
    encoded = tokenizer(table["text"].tolist(), add_special_tokens=False)["input_ids"]
    table["n_tokens"] = [len(ids) for ids in encoded]
    table["single_token"] = table["n_tokens"] == 1
    table["round_trip"] = [tokenizer.decode(ids) == text for ids, text in zip(encoded, table["text"])]
    return table
