"""The authors' released reward-model scores, read into tidy tables and checked.

The release (see :mod:`rmbias.data`) holds one parquet file per reward model (RM) and word list,
under ``data/reward_model_scores/``: ``dict_big2_nouns/`` for the Big Two nouns and
``dict_MFD_20/`` for Moral Foundations Dictionary 2.0. Each file has a ``response`` column (the
word that was scored as the assistant's answer) and one column of scores per prompt (the 54 keys
of :mod:`rmbias.prompts`). These scores are the paper's Figure 1 data, so every chapter can show
the paper's real findings, whatever profile built it.

Two things about the files are handled here rather than hidden:

* The word list is told by the **folder**, never by the file name: in ``dict_MFD_20/`` six of
  the ten files are named ``big2_rewards_<org>_<model>.parquet`` although they hold the 2,040 MFD
  terms (the other four are named ``MFD20_rewards_...``). :func:`folder_agreement` shows that each
  of them carries the RM its name gives: on the 45 words in both lists its scores correlate above
  0.998 with that RM's Big Two scores, and more than with any other RM's.
* The Big Two files have 265 rows for the 263 dictionary nouns. :func:`release_checks` reports
  what does not match; :func:`released_scores` keeps the dictionary's words only (as the authors'
  figure script does with its inner join), so ranks run over the dictionary and not over words
  that have no category.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from . import corpora, prompts, registry
from .data import FILES, fetch

SCORES_FOLDER = "data/reward_model_scores"
# corpus name -> folder of the release that holds its scores
CORPORA: dict[str, str] = {"big2": "dict_big2_nouns", "mfd": "dict_MFD_20"}

# The ten RMs in the paper's order (section 3 of its method): 4 Gemma-based, then 6 Llama-based.
RELEASED_RMS: tuple[str, ...] = (
    "nicolinho/QRM-Gemma-2-27B",
    "Skywork/Skywork-Reward-Gemma-2-27B-v0.2",
    "Skywork/Skywork-Reward-Gemma-2-27B",
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft",
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
    "nicolinho/QRM-Llama3.1-8B",
    "LxzGordon/URM-LLaMa-3.1-8B",
    "Ray2333/GRM-Llama3-8B-rewardmodel-ft",
    "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft",
    "RLHFlow/ArmoRM-Llama3-8B-v0.1",
)
# The short labels of the authors' Figure 1 (org initial, base, size), for axis ticks.
SHORT_LABELS: dict[str, str] = {
    "nicolinho/QRM-Gemma-2-27B": "N-Gem-27B",
    "Skywork/Skywork-Reward-Gemma-2-27B-v0.2": "S-Gem-27B-v0.2",
    "Skywork/Skywork-Reward-Gemma-2-27B": "S-Gem-27B",
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft": "R-Gem-2B",
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": "S-Lla-8B-v0.2",
    "nicolinho/QRM-Llama3.1-8B": "N-Lla-8B",
    "LxzGordon/URM-LLaMa-3.1-8B": "L-Lla-8B",
    "Ray2333/GRM-Llama3-8B-rewardmodel-ft": "R-Lla-8B",
    "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft": "R-Lla-3B",
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": "F-Lla-8B-v0.1",
}

# <prefix>_rewards_<org>_<model>.parquet; neither org nor model name contains "_"
_FILE_NAME = re.compile(r"^(?P<prefix>big2|MFD20)_rewards_(?P<org>[^_/]+)_(?P<model>[^_/]+)\.parquet$")
_PREFIX = {"big2": "big2", "mfd": "MFD20"}  # the prefix a file in each folder should have


def _folder(corpus: str) -> str:
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; valid: {', '.join(CORPORA)}")
    return f"{SCORES_FOLDER}/{CORPORA[corpus]}"


def _rm_order(rm: str) -> tuple[int, str]:
    return (RELEASED_RMS.index(rm) if rm in RELEASED_RMS else len(RELEASED_RMS), rm)


def release_files(corpus: str) -> dict[str, str]:
    """The registered score files of one corpus: Hugging Face id -> path in the release.

    The id is rebuilt from the file name, whose ``<org>_<model>`` stands for ``<org>/<model>``
    (``big2_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.parquet`` ->
    ``Skywork/Skywork-Reward-Gemma-2-27B-v0.2``). Files are listed from :data:`rmbias.data.FILES`,
    so only hash-pinned files are ever read. Ordered as :data:`RELEASED_RMS`.
    """
    folder = _folder(corpus) + "/"
    found: dict[str, str] = {}
    for _, path in FILES:
        if not (path.startswith(folder) and path.endswith(".parquet")):
            continue
        match = _FILE_NAME.match(path[len(folder) :])
        if match is None:
            raise ValueError(f"cannot read an RM id from the file name {path!r}")
        rm = f"{match['org']}/{match['model']}"
        if rm in found:
            raise ValueError(f"two score files for {rm} in {folder}: {found[rm]}, {path}")
        found[rm] = path
    if not found:
        raise ValueError(f"no score files registered under {folder} in rmbias.data.FILES")
    return {rm: found[rm] for rm in sorted(found, key=_rm_order)}


def _read_wide(corpus: str) -> dict[str, pd.DataFrame]:
    """Each RM's file as released (``response`` plus one column per prompt), prompts checked."""
    keys = prompts.all_prompts()["key"].tolist()
    out = {}
    for rm, path in release_files(corpus).items():
        wide = pd.read_parquet(fetch(path))
        if list(wide.columns) != ["response", *keys]:
            raise ValueError(
                f"{path}: columns are not 'response' and the 54 prompt keys of "
                f"rmbias.prompts in order; got {list(wide.columns)[:6]}..."
            )
        wide["response"] = wide["response"].astype(str)
        out[rm] = wide
    return out


def dictionary(corpus: str) -> pd.DataFrame:
    """The word list a corpus is scored on, one row per word: ``word``, ``category`` and, for the
    MFD, ``foundation`` and ``polarity``.

    Big Two: the 263 nouns of :func:`rmbias.corpora.big2_nouns`, category Agency or Communion.
    MFD: :func:`rmbias.corpora.mfd2`, category the MFD 2.0 column (``Care_Virtue`` ...
    ``Sanctity_Vice``). :func:`rmbias.corpora.mfd2` lists a term once per column it is marked in;
    in the released ``.dicx`` every one of the 2,040 terms is marked in exactly one column, so each
    word has one category. Were a term ever marked twice it would be ranked once but counted in
    two categories, so this raises instead of choosing for the reader.
    """
    table = _dictionary_rows(corpus)
    repeated = _repeated(table)
    if repeated:
        raise ValueError(f"{len(repeated)} {corpus} words are in several categories: {repeated[:10]}")
    return table


def _dictionary_rows(corpus: str) -> pd.DataFrame:
    """The word list, one row per (word, category), before the one-category check."""
    _folder(corpus)
    if corpus == "big2":
        table = corpora.big2_nouns()
    else:
        table = corpora.mfd2()
        table["category"] = table["category"].astype(str)
    return table.reset_index(drop=True)


def _repeated(table: pd.DataFrame) -> list[str]:
    return sorted(set(table.loc[table["word"].duplicated(), "word"]))


def released_scores(corpus: str, dictionary_only: bool = True) -> pd.DataFrame:
    """The released RM scores of one corpus (``"big2"`` or ``"mfd"``), one row per (rm, prompt, word).

    Columns: ``rm`` (Hugging Face id), ``family`` (``gemma``/``llama``), ``prompt`` (one of the 54
    keys), ``framing`` (``positive``/``negative``, from :mod:`rmbias.prompts`), ``word``,
    ``category`` (Big Two: Agency/Communion; MFD: the MFD 2.0 column), for the MFD also
    ``foundation`` and ``polarity``, and ``score`` (float; higher is preferred).

    With ``dictionary_only`` (the default) only words of :func:`dictionary` are kept: the released
    Big Two files also score ``discussion`` and ``eagerness``, which the noun dictionary does not
    list and which therefore have no category; the authors' figure script drops them too (an inner
    join with the dictionary), so ranks here run over the same 263 words. :func:`release_checks`
    reports those rows so that the drop is visible. With ``dictionary_only=False`` they are kept
    with a missing category.

    Rows come in the order RM (:data:`RELEASED_RMS`), prompt (:func:`rmbias.prompts.all_prompts`),
    word (as released).
    """
    words = dictionary(corpus)
    framing = prompts.all_prompts().set_index("key")["framing"]
    parts = []
    for rm, wide in _read_wide(corpus).items():
        long = wide.melt(id_vars="response", var_name="prompt", value_name="score")
        long = long.rename(columns={"response": "word"})
        long.insert(0, "rm", rm)
        long.insert(1, "family", registry.family_of(rm))
        parts.append(long)
    table = pd.concat(parts, ignore_index=True)
    table.insert(3, "framing", table["prompt"].map(framing))
    table = table.merge(words, on="word", how="inner" if dictionary_only else "left", sort=False)
    columns = ["rm", "family", "prompt", "framing", "word", *[c for c in words if c != "word"], "score"]
    return table[columns].astype({"score": "float64"}).reset_index(drop=True)


def release_checks(corpus: str) -> dict[str, Any]:
    """What in the released score files of one corpus does not match its dictionary.

    Returns a JSON-ready dict, so a chapter can print it and store it in ``summary.json``:

    ``files``, ``rms``, ``families`` (count per family), ``rms_match_paper`` (the ten ids of the
    paper), ``misnamed_files`` (files whose name prefix belongs to the other word list),
    ``prompt_columns_match`` (always True: reading fails otherwise), ``rows_per_file``,
    ``same_words_in_every_file`` (same words, same order), ``duplicate_words``,
    ``non_finite_scores``, ``dictionary_words``, ``released_words``, ``extra_words`` (scored but
    not in the dictionary, with their row positions in the files: dropped by
    :func:`released_scores`), ``missing_words`` (in the dictionary but never scored),
    ``multi_category_words`` (dictionary words marked in several categories; none in either
    list), ``multi_word_terms`` (entries with a space, e.g. ``common good``, ``all for one``: the
    RMs scored the whole phrase as the answer, whereas token-level chapters cannot match them to
    one token), ``wildcard_terms`` (entries with ``*``, as in MFD 1.0, which no scored string could
    match; none in MFD 2.0), ``kept_rows`` and ``dropped_rows`` (of :func:`released_scores`' table).
    """
    wide = _read_wide(corpus)
    words = _dictionary_rows(corpus)
    in_dict = set(words["word"])
    first = next(iter(wide.values()))["response"].tolist()
    prefix = _PREFIX[corpus]
    files = release_files(corpus)
    misnamed = sorted(p.rsplit("/", 1)[1] for p in files.values() if not p.rsplit("/", 1)[1].startswith(prefix + "_"))
    families = pd.Series([registry.family_of(rm) for rm in wide]).value_counts().sort_index()
    duplicates = sorted({w for t in wide.values() for w in t.loc[t["response"].duplicated(), "response"]})
    non_finite = sum(int((~np.isfinite(t.drop(columns="response").to_numpy())).sum()) for t in wide.values())
    released = set().union(*(set(t["response"]) for t in wide.values()))
    extra = sorted(released - in_dict)
    kept = sum(int(t["response"].isin(in_dict).sum()) for t in wide.values()) * len(prompts.all_prompts())
    total = sum(len(t) for t in wide.values()) * len(prompts.all_prompts())
    return {
        "corpus": corpus,
        "folder": _folder(corpus),
        "files": len(wide),
        "rms": list(wide),
        "families": {str(k): int(v) for k, v in families.items()},
        "rms_match_paper": sorted(wide) == sorted(RELEASED_RMS),
        "misnamed_files": misnamed,
        "prompt_columns_match": True,
        "rows_per_file": {rm: len(t) for rm, t in wide.items()},
        "same_words_in_every_file": all(t["response"].tolist() == first for t in wide.values()),
        "duplicate_words": duplicates,
        "non_finite_scores": non_finite,
        "dictionary_words": len(in_dict),
        "released_words": len(released),
        "extra_words": {w: [i for i, r in enumerate(first) if r == w] for w in extra},
        "missing_words": sorted(in_dict - released),
        "multi_category_words": _repeated(words),
        "multi_word_terms": sorted(w for w in in_dict if " " in w),
        "wildcard_terms": sorted(w for w in in_dict if "*" in w),
        "kept_rows": kept,
        "dropped_rows": total - kept,
    }


def folder_agreement() -> pd.DataFrame:
    """Do the two folders agree where they overlap? One row per RM.

    45 words are both Big Two nouns and MFD terms, so every RM scored them twice, once per
    folder, in separate runs. Comparing the two (all 54 prompts) checks that a file carries the RM
    its name gives, which matters most for the six MFD files named ``big2_rewards_*``. Columns:
    ``rm``, ``shared_words``, ``max_abs_diff``, ``pearson``, ``identical`` (share of the pairs
    that are bit-identical), ``score_sd`` (the SD of that RM's Big Two scores, for scale) and
    ``best_match`` (the RM whose Big Two scores correlate most with this MFD file: it should be
    ``rm`` itself). Small differences are expected (bf16 arithmetic, different batches); the
    pearson of the same RM is above 0.998 in every case.
    """
    big2, mfd = _read_wide("big2"), _read_wide("mfd")
    first = next(iter(big2.values()))["response"]
    shared = [w for w in first if w in set(next(iter(mfd.values()))["response"])]

    def values(table: pd.DataFrame) -> np.ndarray:
        return table.set_index("response").loc[shared].to_numpy().ravel()

    big2_values = {rm: values(t) for rm, t in big2.items()}
    rows = []
    for rm, table in mfd.items():
        x, y = big2_values[rm], values(table)
        best = max(big2_values, key=lambda other: np.corrcoef(big2_values[other], y)[0, 1])
        rows.append(
            {
                "rm": rm,
                "shared_words": len(shared),
                "max_abs_diff": float(np.abs(x - y).max()),
                "pearson": float(np.corrcoef(x, y)[0, 1]),
                "identical": float((x == y).mean()),
                "score_sd": float(big2[rm].drop(columns="response").to_numpy().std(ddof=1)),
                "best_match": best,
            }
        )
    return pd.DataFrame(rows)
