"""Word frequency and valence norms from lexicons that ship inside PyPI packages.

Used to ask whether agency and communion words differ in how common or how pleasant they are,
a confound the study did not check. Each function returns NaN for a word the lexicon lacks,
so coverage can be reported rather than hidden.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import numpy as np
import pandas as pd


def zipf_frequency(words: pd.Series | list[str]) -> pd.Series:
    """Zipf frequency in English (wordfreq ``large`` list): log10 of occurrences per billion words.

    3 is a rare word, 6 a very common one; 0 means wordfreq has never seen it. Multi-word terms
    get wordfreq's combined estimate.
    """
    from wordfreq import zipf_frequency as zipf

    words = pd.Series(list(words), dtype=str)
    lookup = {word: zipf(word, "en", wordlist="large") for word in words.unique()}  # each word once
    return words.map(lookup).astype(float).rename("zipf").replace(0.0, np.nan)


@lru_cache(maxsize=1)
def _vader_lexicon() -> dict[str, float]:
    text = files("vaderSentiment").joinpath("vader_lexicon.txt").read_text(encoding="utf-8")
    table = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            table[parts[0]] = float(parts[1])
    return table


def vader_valence(words: pd.Series | list[str]) -> pd.Series:
    """Mean human valence rating from the VADER lexicon (-4 very negative to +4 very positive)."""
    lexicon = _vader_lexicon()
    words = pd.Series(list(words), dtype=str)
    return words.str.lower().map(lexicon).astype(float).rename("vader")


@lru_cache(maxsize=1)
def _afinn_lexicon() -> dict[str, float]:
    from afinn import Afinn

    return {word: float(score) for word, score in Afinn(language="en")._dict.items()}


def afinn_valence(words: pd.Series | list[str]) -> pd.Series:
    """AFINN-165 valence (-5 to +5), by exact lower-cased match."""
    lexicon = _afinn_lexicon()
    words = pd.Series(list(words), dtype=str)
    return words.str.lower().map(lexicon).astype(float).rename("afinn")


def annotate(table: pd.DataFrame, column: str = "word") -> pd.DataFrame:
    """Add ``zipf``, ``vader`` and ``afinn`` columns to a word table."""
    words = table[column]
    return table.assign(
        zipf=zipf_frequency(words).to_numpy(),
        vader=vader_valence(words).to_numpy(),
        afinn=afinn_valence(words).to_numpy(),
    )
