"""The word lists the study measures: the Big Two (agency/communion) and Moral Foundations 2.0.

All are read from the authors' release (see :mod:`rmbias.data`) and returned as tidy tables.
"""

from __future__ import annotations

import pandas as pd

from .data import fetch

BIG2_CATEGORIES = ("Agency", "Communion")
MFD_FOUNDATIONS = ("Care", "Fairness", "Loyalty", "Authority", "Sanctity")
MFD_COLUMNS = tuple(f"{f}_{p}" for f in MFD_FOUNDATIONS for p in ("Virtue", "Vice"))


def big2_nouns() -> pd.DataFrame:
    """The 263 Big Two nouns (Pietraszkiewicz et al. 2019): columns ``word``, ``category``."""
    raw = pd.read_csv(fetch("dict_big2_nouns.csv"))
    out = raw.rename(columns={"token_decoded": "word", "Category": "category"})[["word", "category"]]
    return out.astype({"word": str, "category": str}).reset_index(drop=True)


def big2_expanded() -> pd.DataFrame:
    """The 936 inflected Big Two entries used for token-level work: ``word``, ``category``.

    The release marks category membership with an ``X`` in an Agency or a Communion column;
    no entry is marked in both (checked here, since a word in both would be counted twice).
    """
    raw = pd.read_csv(fetch("dict_big2_expanded.csv"))
    marked = raw[list(BIG2_CATEGORIES)].notna()
    if (marked.sum(axis=1) != 1).any():
        bad = raw.loc[marked.sum(axis=1) != 1, "DicTerm"].tolist()
        raise ValueError(f"expanded Big Two entries without exactly one category: {bad[:10]}")
    category = marked.idxmax(axis=1)
    return pd.DataFrame({"word": raw["DicTerm"].astype(str), "category": category.astype(str)})


def mfd2_wide() -> pd.DataFrame:
    """Moral Foundations Dictionary 2.0 (Frimer et al. 2019) as released: one row per term,
    a boolean column for each of the ten foundation x virtue/vice categories."""
    raw = pd.read_csv(fetch("moral-foundations-dictionary-20.dicx"))
    missing = [c for c in MFD_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"MFD 2.0 file lacks columns {missing}")
    wide = raw[list(MFD_COLUMNS)].notna()
    wide.insert(0, "word", raw["DicTerm"].astype(str))
    return wide


def mfd2() -> pd.DataFrame:
    """MFD 2.0 in long form: ``word``, ``category`` (e.g. ``Care_Virtue``), ``foundation``,
    ``polarity`` (Virtue or Vice). A term listed under several categories appears once per category."""
    wide = mfd2_wide()
    long = wide.melt(id_vars="word", var_name="category", value_name="member")
    long = long[long["member"]].drop(columns="member")
    long[["foundation", "polarity"]] = long["category"].str.split("_", expand=True)
    long["category"] = pd.Categorical(long["category"], categories=MFD_COLUMNS, ordered=True)
    return long.sort_values(["category", "word"]).reset_index(drop=True)


def token_intersection() -> pd.Series:
    """The authors' list of decoded tokens shared by the Llama 3, Gemma 2 and Qwen 2.5 vocabularies."""
    raw = pd.read_csv(fetch("token_intersection.csv"), keep_default_na=False)
    return raw["token_decoded"].astype(str).rename("token")


def load(name: str) -> pd.DataFrame:
    """A word list by name: ``big2_nouns``, ``big2_expanded`` or ``mfd2`` (columns word, category)."""
    loaders = {"big2_nouns": big2_nouns, "big2_expanded": big2_expanded, "mfd2": mfd2}
    if name not in loaders:
        raise ValueError(f"unknown word list {name!r}; valid: {', '.join(loaders)}")
    return loaders[name]()
