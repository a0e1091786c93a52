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


def frequent_word_tokens(tokenizer, n: int, min_letters: int = 3) -> list[int]:
    """The ids of the ``n`` vocabulary tokens that are the most frequent English words.

    A token qualifies when it decodes to letters only (a leading space allowed) with at least
    ``min_letters`` of them; tokens are ranked by the wordfreq Zipf frequency of the lower-cased
    word (ties by id). This is how the demo profile keeps an exhaustive-style vocabulary search
    within a CPU budget; the paper profile searches every token.
    """
    from .lexicons import zipf_frequency
    from .scoring import vocabulary_ids

    ids = vocabulary_ids(tokenizer)
    texts = [tokenizer.decode([i]) for i in ids]
    keep = [
        (i, t.strip())
        for i, t in zip(ids, texts)
        if t.strip().isalpha()
        and t.strip().isascii()
        and len(t.strip()) >= min_letters
        and t in (t.strip(), " " + t.strip())
    ]
    if not keep:
        raise ValueError("no word-like tokens in this vocabulary")
    zipf = zipf_frequency([w.lower() for _, w in keep]).fillna(0.0).to_numpy()
    order = sorted(range(len(keep)), key=lambda k: (-zipf[k], keep[k][0]))
    return [keep[k][0] for k in order[:n]]
