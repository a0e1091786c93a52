# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. Corpora: the words the study measures
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/01_corpora.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/01_corpora.ipynb) the version for students, without the
# solutions to its exercises.
#
# Every result in this book is a statement about how models treat *words*: which words a reward
# model scores highly as the answer to "What, in one word, is the greatest thing ever?", which words a
# language model expects next. This chapter looks at those words before any model does. It loads the
# two dictionaries of the study {cite}`christian2026reward` from the authors' release, checks their
# sizes against the paper, asks whether the two word categories differ in ways that have nothing to do
# with values (how common the words are, how pleasant), and measures how the words fall onto each
# model's tokenizer, a table that later chapters use.

# %% tags=["remove-cell"]
# On Colab: fetch the book's code, install only what the runtime lacks, and restart the runtime once if
# one of Colab's own packages had to change (then run this cell again). A no-op everywhere else.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    BOOK = os.environ.get("RMBIAS_COLAB_DIR", "/content/rmbias-book")  # a folder on Google Drive keeps results
    if not os.path.exists(BOOK):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "main", "https://github.com/rmbias-book/rmbias-book",
                        BOOK], check=True)
    if os.path.join(BOOK, "lib") not in sys.path:
        sys.path.insert(0, os.path.join(BOOK, "lib"))
    os.chdir(BOOK)
    from rmbias import colab

    colab.setup()

# %% tags=["parameters"]
PROFILE = "demo"  # tiny | demo | paper
TOKENIZERS = None  # list of model keys whose tokenizers to check; None: the profile's
MAX_WORDS = None  # at most this many words per category; None: the profile's

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pingouin as pg
import seaborn as sns

from rmbias import corpora, data, lexicons, models, plots, profiles, registry, tokens
from rmbias.chapter import Chapter

chapter = Chapter.open("01_corpora", PROFILE, tokenizers=TOKENIZERS, max_words=MAX_WORDS)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
plots.setup()

# %% tags=["remove-cell"]
settings

# %% [markdown]
# ## The Big Two: agency and communion
#
# The "Big Two" of social psychology are the two dimensions along which people judge themselves and
# others: **agency** (competence, ambition, assertiveness) and **communion** (warmth, care,
# belonging). The study uses the English Big Two dictionary of Pietraszkiewicz and colleagues
# {cite}`pietraszkiewicz2019big`, as released by the authors in two forms: a list of nouns, which the
# reward-model analyses score as one-word answers, and an expanded list of inflected entries, used
# where the analysis works token by token.

# %%
nouns = corpora.big2_nouns()
expanded = corpora.big2_expanded()
counts = nouns["category"].value_counts()
expanded_counts = expanded["category"].value_counts()
big2_counts = pd.DataFrame({"nouns": counts, "expanded list": expanded_counts}).rename_axis("category")
big2_counts.loc["total"] = big2_counts.sum()
big2_counts

# %% tags=["remove-input"]
chapter.number("n_nouns", int(len(nouns)), display=False)
chapter.number("n_nouns_agency", int(counts["Agency"]), display=False)
chapter.number("n_nouns_communion", int(counts["Communion"]), display=False)
chapter.number("n_expanded", int(len(expanded)), display=False)
chapter.number("n_expanded_agency", int(expanded_counts["Agency"]), display=False)
chapter.number("n_expanded_communion", int(expanded_counts["Communion"]), display=False)
nouns_in_expanded = int(nouns["word"].isin(expanded["word"]).sum())
chapter.number("communion_per_agency", float(counts["Communion"] / counts["Agency"]), display=False)
chapter.number("nouns_in_expanded", nouns_in_expanded, display=False)
summary.update(n_nouns=len(nouns), n_expanded=len(expanded), nouns_in_expanded=nouns_in_expanded,
               nouns_by_category=counts.to_dict(), expanded_by_category=expanded_counts.to_dict())

# %% [markdown]
# The release has {glue:text}`n_nouns` nouns ({glue:text}`n_nouns_agency` agency,
# {glue:text}`n_nouns_communion` communion) and {glue:text}`n_expanded` expanded entries
# ({glue:text}`n_expanded_agency` agency, {glue:text}`n_expanded_communion` communion), the counts the
# paper reports. The categories are unbalanced, with {glue:text}`communion_per_agency:.2f` communion
# nouns for every agency noun, which is one reason the study compares *median ranks within a category*
# rather than counts of words near the top. {glue:text}`nouns_in_expanded` of the {glue:text}`n_nouns`
# nouns also appear, in the same spelling, in the expanded list. A few examples of each:

# %%
examples = (nouns.groupby("category")["word"]
            .apply(lambda s: ", ".join(s.sample(12, random_state=1).sort_values()))
            .to_frame("examples (random sample)"))
examples

# %% [markdown]
# ## Moral Foundations Dictionary 2.0
#
# The second dictionary is the Moral Foundations Dictionary 2.0 {cite}`frimer2019mfd2`: terms for the
# five moral foundations (care, fairness, loyalty, authority, sanctity), each split into a *virtue*
# column (upholding the foundation) and a *vice* column (violating it).

# %%
mfd = corpora.mfd2()
mfd_counts = (mfd.groupby(["foundation", "polarity"], observed=True).size().unstack("polarity")
              .reindex(corpora.MFD_FOUNDATIONS)[["Virtue", "Vice"]])
mfd_counts["total"] = mfd_counts.sum(axis=1)
mfd_counts

# %% tags=["remove-input"]
n_mfd_terms = int(mfd["word"].nunique())
n_multiword = int(mfd["word"].str.contains(" ").sum())
sanctity_vice = int(mfd_counts.loc["Sanctity", "Vice"])
largest = mfd.groupby("category", observed=True).size().idxmax()
chapter.number("n_mfd_terms", n_mfd_terms, display=False)
chapter.number("n_mfd_multiword", n_multiword, display=False)
chapter.number("n_sanctity_vice", sanctity_vice, display=False)
chapter.number("mfd_largest_column", str(largest), display=False)
chapter.number("sanctity_vice_share", f"{sanctity_vice / n_mfd_terms:.0%}", display=False)
summary.update(n_mfd_terms=n_mfd_terms, n_mfd_multiword=n_multiword,
               mfd_by_category=mfd.groupby("category", observed=True).size().to_dict())

# %% [markdown]
# The dictionary has {glue:text}`n_mfd_terms` terms, each listed under exactly one of the ten columns;
# {glue:text}`n_mfd_multiword` of them are phrases of several words ("all for one", "against us").
#
# ```{admonition} What the authors' figure script leaves out
# :class: warning
# The authors' script for the moral-foundations figure selects the columns from `Care_Virtue` to
# `Sanctity_Virtue`, which drops the last column, `Sanctity_Vice`. That column is not small: with
# {glue:text}`n_sanctity_vice` terms ({glue:text}`sanctity_vice_share` of the dictionary) it is the
# largest of the ten ({glue:text}`mfd_largest_column`). This book keeps all ten columns; chapter 2
# shows what including it changes.
# ```

# %% [markdown]
# ## Do agency and communion words differ before any model sees them?
#
# If communion nouns were, say, much more common in English than agency nouns, a model could prefer
# them for that reason alone, and a "value bias" would partly be a frequency effect. The same holds
# for valence: "love" is a pleasant word in a way that "accuracy" is not. The paper did not check
# either. Three lexicons that ship with Python packages let us:
#
# - **Zipf frequency** from `wordfreq` {cite}`speer2022wordfreq`: log10 of a word's occurrences per
#   billion words across many sources (3 is rare, 6 is very common);
# - **VADER** valence {cite}`hutto2014vader`: the mean of ten human ratings from -4 (very negative)
#   to +4 (very positive);
# - **AFINN-165** valence {cite}`nielsen2011afinn`: a hand-assigned score from -5 to +5.
#
# The valence lexicons were built for sentiment analysis and list only emotionally marked words, so
# many dictionary words are missing from them; the tables report how many were found.

# %%
big2_norms = pd.concat([lexicons.annotate(nouns).assign(list="nouns"),
                        lexicons.annotate(expanded).assign(list="expanded")], ignore_index=True)


def compare(table: pd.DataFrame, measure: str) -> dict:
    """Agency vs communion on one measure: n, medians, Mann-Whitney U with rank-biserial r, Cohen's d."""
    a = table.loc[table["category"] == "Agency", measure].dropna()
    c = table.loc[table["category"] == "Communion", measure].dropna()
    test = pg.mwu(a, c, alternative="two-sided")
    return {"measure": measure, "n_agency": len(a), "n_communion": len(c),
            "median_agency": a.median(), "median_communion": c.median(),
            "U": float(test["U_val"].iloc[0]), "p": float(test["p_val"].iloc[0]),
            "rank_biserial": float(test["RBC"].iloc[0]),
            "cohen_d": float(pg.compute_effsize(a, c, eftype="cohen"))}


confounds = pd.DataFrame([{"list": name, **compare(group, m)}
                          for name, group in big2_norms.groupby("list", sort=False)
                          for m in ("zipf", "vader", "afinn")])
confounds.round(3)

# %% tags=["remove-input"]
chapter.table(big2_norms, "big2_norms", profile=settings.name,
                      sources={"big2": data.provenance("dict_big2_nouns.csv"),
                               "expanded": data.provenance("dict_big2_expanded.csv")})
chapter.table(confounds, "big2_confounds", profile=settings.name,
                      test="two-sided Mann-Whitney U (pingouin.mwu), Cohen's d (pingouin.compute_effsize)")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 3, figsize=(11, 3.8))
shown = big2_norms[big2_norms["list"] == "nouns"]
for ax, (measure, label) in zip(axes, [("zipf", "Zipf frequency (wordfreq)"),
                                        ("vader", "valence (VADER, -4 to 4)"),
                                        ("afinn", "valence (AFINN, -5 to 5)")]):
    present = shown.dropna(subset=[measure])
    sns.boxplot(data=present, x="category", y=measure, hue="category", palette=plots.CATEGORY_COLOURS,
                order=list(plots.CATEGORY_COLOURS), width=0.5, fliersize=0, ax=ax, legend=False,
                boxprops={"alpha": 0.35})
    sns.stripplot(data=present, x="category", y=measure, hue="category", palette=plots.CATEGORY_COLOURS,
                  order=list(plots.CATEGORY_COLOURS), size=3.5, jitter=0.2, ax=ax, legend=False)
    known = present["category"].value_counts()
    ax.set_xticks(range(2), [f"{c}\n(n={known.get(c, 0)})" for c in plots.CATEGORY_COLOURS])
    ax.set(xlabel="", ylabel=label)
fig.suptitle("Big Two nouns: frequency and valence by category", y=1.02)
fig.tight_layout()
chapter.figure(fig, "big2_frequency_valence")
plt.show()

# %% tags=["remove-input"]
row = confounds.set_index(["list", "measure"])
for measure in ("zipf", "vader", "afinn"):
    r = row.loc[("nouns", measure)]
    chapter.number(f"{measure}_med_agency", float(r["median_agency"]), display=False)
    chapter.number(f"{measure}_med_communion", float(r["median_communion"]), display=False)
    chapter.number(f"{measure}_p", float(r["p"]), display=False)
    chapter.number(f"{measure}_d", float(r["cohen_d"]), display=False)
    chapter.number(f"{measure}_n", f"{int(r['n_agency'])} + {int(r['n_communion'])}", display=False)
    summary[f"nouns_{measure}"] = r.to_dict()
r = row.loc[("expanded", "zipf")]
chapter.number("zipf_expanded_p", float(r["p"]), display=False)
chapter.number("zipf_expanded_d", float(r["cohen_d"]), display=False)
summary["expanded_zipf"] = r.to_dict()

# The verdicts in the prose below are computed too: Cohen's d is agency minus communion.
vader, afinn = row.loc[("nouns", "vader")], row.loc[("nouns", "afinn")]
chapter.number("valence_higher", "communion" if vader["cohen_d"] < 0 else "agency", display=False)
reliable = [name for name, r in (("VADER", vader), ("AFINN", afinn)) if r["p"] < 0.05]
chapter.number("valence_reliability",
               "the difference is statistically reliable in both lexicons" if len(reliable) == 2 else
               f"the difference is statistically reliable only in {reliable[0]}" if reliable else
               "with this few words neither difference is statistically reliable", display=False)
negative_agency = shown[(shown["category"] == "Agency") & (shown["vader"] < 0)]["word"].tolist()
chapter.number("negative_agency_words", ", ".join(sorted(negative_agency)), display=False)
chapter.number("n_negative_agency", len(negative_agency), display=False)

# %% [markdown]
# The figure shows each noun as a dot, by category, with boxes marking the quartiles; the numbers below
# the axis count the nouns each lexicon knows.
#
# - **Frequency** (left): the medians are Zipf {glue:text}`zipf_med_agency:.2f` for agency and
#   {glue:text}`zipf_med_communion:.2f` for communion (Mann-Whitney p = {glue:text}`zipf_p:.2f`,
#   Cohen's d = {glue:text}`zipf_d:.2f`); on the expanded list, d = {glue:text}`zipf_expanded_d:.2f`
#   (p = {glue:text}`zipf_expanded_p:.2g`). Whatever makes a model prefer one category, it is not that
#   its words are more common.
# - **Valence** (middle and right): only a minority of the nouns are in the sentiment lexicons
#   (VADER {glue:text}`vader_n`, AFINN {glue:text}`afinn_n` agency + communion). Among those,
#   {glue:text}`valence_higher` nouns have the higher mean valence (Cohen's d = {glue:text}`vader_d:.2f`
#   with VADER, {glue:text}`afinn_d:.2f` with AFINN; d is agency minus communion), but
#   {glue:text}`valence_reliability` (Mann-Whitney p = {glue:text}`vader_p:.2f` and
#   {glue:text}`afinn_p:.2f`). The medians are close ({glue:text}`vader_med_agency:.1f` vs
#   {glue:text}`vader_med_communion:.1f` with VADER); the difference in means comes from the
#   {glue:text}`n_negative_agency` agency nouns rated negative ({glue:text}`negative_agency_words`),
#   while every communion noun the lexicons know is rated positive.
#
# Valence remains worth watching: a model that simply preferred pleasant words would rank communion
# words higher under positive prompts ("greatest thing") and lower under negative ones ("worst
# thing"), which is why the study's positive and negative framings matter, and why chapter 2 looks at
# the two framings separately. With lexicon coverage this low, this check can neither confirm nor rule
# out a valence confound.

# %% [markdown]
# The same lexicons applied to the moral-foundations dictionary give a sanity check on the valence
# norms (virtues should be rated positive, vices negative) and show how word frequency varies across
# the ten columns:

# %%
mfd_norms = lexicons.annotate(mfd)

# %% tags=["remove-input"]
chapter.table(mfd_norms, "mfd_norms", profile=settings.name,
                      source=data.provenance("moral-foundations-dictionary-20.dicx"))

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), sharey=True)
order = list(corpora.MFD_COLUMNS)
polarity_colours = {"Virtue": "#56B4E9", "Vice": "#555555"}
for ax, (measure, label) in zip(axes, [("zipf", "Zipf frequency (wordfreq)"),
                                        ("vader", "valence (VADER, -4 to 4)")]):
    present = mfd_norms.dropna(subset=[measure])
    sns.boxplot(data=present, y="category", x=measure, hue="polarity", palette=polarity_colours,
                order=order, fliersize=1.5, ax=ax, dodge=False, legend=False)
    known = present["category"].value_counts()
    for i, category in enumerate(order):  # how many terms each box rests on
        ax.annotate(f"n={known.get(category, 0)}", xy=(1.01, i), xycoords=("axes fraction", "data"),
                    va="center", fontsize=9, color="0.3")
    ax.set(xlabel=label, ylabel="")
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in polarity_colours.values()]
fig.legend(handles, polarity_colours, loc="lower center", ncol=2, bbox_to_anchor=(0.5, -0.04), frameon=False)
fig.suptitle("Moral Foundations Dictionary 2.0: frequency and valence by column", y=1.0)
fig.tight_layout(rect=(0, 0.03, 1, 1))
chapter.figure(fig, "mfd_frequency_valence")
plt.show()

# %%
mfd_valence = mfd_norms.groupby("polarity")["vader"].agg(["median", "count"])
zipf_medians = mfd_norms.groupby(["foundation", "polarity"])["zipf"].median().unstack("polarity")

# %% tags=["remove-input"]
chapter.number("mfd_vader_virtue", float(mfd_valence.loc["Virtue", "median"]), display=False)
chapter.number("mfd_vader_vice", float(mfd_valence.loc["Vice", "median"]), display=False)
summary["mfd_vader_median_by_polarity"] = mfd_valence["median"].to_dict()
chapter.number("n_vice_rarer", int((zipf_medians["Vice"] < zipf_medians["Virtue"]).sum()), display=False)
chapter.number("vice_virtue_zipf_gap", float((zipf_medians["Virtue"] - zipf_medians["Vice"]).mean()), display=False)

# %% [markdown]
# Each box summarises one column of the dictionary; the counts at the right of each panel say how
# many of its terms the lexicon knows. On the left, vice terms have a lower median frequency than
# virtue terms in {glue:text}`n_vice_rarer` of the 5 foundations (by {glue:text}`vice_virtue_zipf_gap:.2f`
# Zipf units on average), a larger difference than the one between the two Big Two categories. On the right, the valence lexicon behaves as it should: the VADER median is
# {glue:text}`mfd_vader_virtue:.2f` for virtue terms and {glue:text}`mfd_vader_vice:.2f` for vice
# terms. When later chapters compare foundations, these
# frequency differences are a baseline to keep in mind.

# %% [markdown]
# ## From words to tokens
#
# A reward model can score any string, but the log-probability analyses (chapters 3 and 4) read a
# word's probability off a single next-token distribution, which only works for a word that is *one
# token*. Whether it is depends on the tokenizer and on the word's surface form: `love`, ` love` (with
# the leading space that most tokenizers attach to a word after another word), `Love` and ` Love` are
# four different strings. The table below checks every word of the three lists in each tokenizer of
# this profile, in all four forms, and also checks the *round trip*: whether decoding the tokens gives
# the same text back.

# %%
tokenizer_keys = list(settings.tokenizers)
families = {key: registry.family_of(key) for key in tokenizer_keys}
word_lists = {"Big Two nouns": nouns, "Big Two expanded": expanded, "MFD 2.0": mfd[["word", "category"]]}
coverage = pd.concat([
    tokens.coverage(models.load_tokenizer(key),
                    profiles.limit_words(words, settings.max_words).assign(corpus=corpus), key)
    for key in tokenizer_keys for corpus, words in word_lists.items()
], ignore_index=True)
coverage["family"] = coverage["tokenizer"].map(families)

# %% tags=["remove-input"]
chapter.table(coverage, "token_coverage", profile=settings.name,
                      tokenizers={key: registry.describe(key) for key in tokenizer_keys},
                      note="n_tokens counts tokens without special tokens (no BOS)")

# %%
share = (coverage.groupby(["corpus", "tokenizer", "variant"], sort=False)["single_token"].mean()
         .unstack("variant")[list(tokens.VARIANTS)])
(share * 100).round(1).style.format("{:.1f}%")

# %% tags=["hide-input"]
palette = plots.model_palette(families)
grid = sns.catplot(data=coverage, x="variant", y="single_token", hue="tokenizer", col="corpus", kind="bar",
                   palette=palette, order=list(tokens.VARIANTS), errorbar=None, height=3.6, aspect=1.0)
grid.set_axis_labels("surface form", "share that is a single token")
grid.set_titles("{col_name}")
for ax in grid.axes.flat:
    ax.set_ylim(0, 1)
    ax.tick_params(axis="x", rotation=25)
grid.figure.suptitle("How many dictionary words are one token?", y=1.04)
chapter.figure(grid.figure, "token_coverage")
plt.show()

# %%
nouns_cov = coverage[coverage["corpus"] == "Big Two nouns"]
by_variant = nouns_cov.pivot_table(index=["word", "category", "variant"], columns="tokenizer",
                                   values="single_token").reset_index()
llama_keys = [k for k in tokenizer_keys if families[k] == "llama"]
gemma_keys = [k for k in tokenizer_keys if families[k] == "gemma"]
by_variant["single_in_all"] = by_variant[tokenizer_keys].all(axis=1)
shared = by_variant[by_variant["single_in_all"]][["word", "category", "variant"]]

# %% tags=["remove-input"]
chapter.table(shared, "shared_single_token_nouns", profile=settings.name,
                      tokenizers=tokenizer_keys,
                      note="Big Two nouns that are a single token in every tokenizer of the profile, per surface form")

# %%
shared_counts = shared.groupby(["variant", "category"]).size().unstack("category").reindex(list(tokens.VARIANTS))
round_trip = coverage.groupby("tokenizer")["round_trip"].mean()
shared_counts = shared_counts.reindex(columns=list(corpora.BIG2_CATEGORIES)).fillna(0).astype(int)
shared_counts

# %% tags=["remove-input"]
nouns_share = share.loc["Big Two nouns"]
chapter.number("hardest_variant", nouns_share.mean().idxmin(), display=False)
chapter.number("space_vs_bare", float((nouns_share["space"] / nouns_share["bare"]).min()), display=False)
chapter.number("space_share_range", f"{nouns_share['space'].min():.0%} to {nouns_share['space'].max():.0%}", display=False)
n_words = nouns_cov["word"].nunique()
for variant in ("space", "Capital"):
    key = variant.lower()
    chapter.number(f"shared_{key}_n", int(shared_counts.loc[variant].sum()), display=False)
    chapter.number(f"shared_{key}_share", float(shared_counts.loc[variant].sum() / n_words), display=False)
    chapter.number(f"shared_{key}_agency", int(shared_counts.loc[variant, "Agency"]), display=False)
    chapter.number(f"shared_{key}_communion", int(shared_counts.loc[variant, "Communion"]), display=False)
chapter.number("round_trip_min", float(round_trip.min()), display=False)
chapter.number("n_tokenizers", len(tokenizer_keys), display=False)
summary.update(single_token_share=share.reset_index().to_dict("records"),
               shared_single_token_nouns=shared_counts.to_dict("index"),
               round_trip_rate=round_trip.to_dict())

# %% [markdown]
# The bars show, for each word list and surface form, the share of words that each tokenizer keeps
# whole (one bar per tokenizer, coloured by model family; shades separate tokenizers of the same
# family). With a leading space, {glue:text}`space_share_range` of the Big Two nouns are single tokens,
# at least {glue:text}`space_vs_bare:.1f` times as many as in the bare form, because BPE vocabularies
# store most words together with their preceding space. Inflected forms and moral-foundation terms split
# more often. On average across tokenizers the hardest form for the nouns is
# "{glue:text}`hardest_variant`", and a capitalised word with no space is how a one-word answer
# typically begins after a chat template's newline.
#
# The table above counts the nouns that are a single token in *all* {glue:text}`n_tokenizers`
# tokenizers of this profile. With a leading space that is {glue:text}`shared_space_n` nouns
# ({glue:text}`shared_space_share:.0%`; {glue:text}`shared_space_agency` agency,
# {glue:text}`shared_space_communion` communion). Capitalised with no space, the form a one-word reply
# takes right after a chat template, it is only {glue:text}`shared_capital_n`
# ({glue:text}`shared_capital_share:.0%`; {glue:text}`shared_capital_agency` agency,
# {glue:text}`shared_capital_communion` communion). These pools are what the logit-tracing chapter
# can rank from a single next-token distribution; the rest need several tokens, which is why chapter 3
# also scores multi-token words by teacher forcing. Decoding the tokens gave the text back for at
# least {glue:text}`round_trip_min:.1%` of the strings in every tokenizer.

# %% [markdown]
# Finally, the authors restricted their vocabulary-wide analyses to the decoded tokens shared by the
# Llama 3, Gemma 2 and Qwen 2.5 vocabularies (`token_intersection.csv`):

# %%
shared_vocab = set(corpora.token_intersection())
in_vocab = {variant: nouns["word"].map(lambda w: make(w) in shared_vocab).mean()
            for variant, make in tokens.VARIANTS.items()}

# %% tags=["remove-input"]
chapter.number("n_token_intersection", len(shared_vocab), display=False)
chapter.number("nouns_in_intersection_space", float(in_vocab["space"]), display=False)
summary.update(n_token_intersection=len(shared_vocab), nouns_in_token_intersection=in_vocab)

# %%
pd.Series(in_vocab, name="share of Big Two nouns in the shared vocabulary").to_frame().style.format("{:.1%}")

# %% [markdown]
# The list holds {glue:text}`n_token_intersection` distinct strings; {glue:text}`nouns_in_intersection_space:.0%`
# of the Big Two nouns appear in it with a leading space.

# %% tags=["remove-input"]
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - The released dictionaries match the paper's counts, and all ten MFD 2.0 columns are kept here,
#   including `Sanctity_Vice`, which the authors' figure script dropped.
# - Agency and communion nouns do not differ in frequency; communion nouns that the sentiment lexicons
#   know are rated more pleasant, a confound that chapter 2 tests.
# - Only some dictionary words are single tokens in every tokenizer; the table written here
#   (`token_coverage.parquet`) tells later chapters which.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it. They reuse the tables this chapter built, so they run in seconds, and
# each ends with checks (`assert`) that its numbers are consistent with the chapter's.

# %% [markdown]
# ### Exercise 1. A category of your own
#
# Agency and communion are not the only values a model could prefer.
# Write down six to ten nouns for a value of your own choosing (for instance pleasure: *pleasure*,
# *fun*, *comfort*, *luxury*, *enjoyment*, *leisure*, *delight*, *wealth*), annotate them with
# `lexicons.annotate` as this chapter did, and place each word's Zipf frequency among the Big Two
# nouns: what share of the nouns is rarer? Would your category be a fair third contestant, or would
# a model's preference for it be hard to tell apart from a preference for common words?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
own = pd.DataFrame({"word": ["pleasure", "fun", "comfort", "luxury", "enjoyment", "leisure", "delight", "wealth"],
                    "category": "Pleasure"})
own_norms = lexicons.annotate(own)
noun_norms = big2_norms[big2_norms["list"] == "nouns"]
noun_zipf = noun_norms["zipf"].dropna().to_numpy()
own_norms["share of Big Two nouns rarer"] = [float((noun_zipf < z).mean()) if pd.notna(z) else np.nan
                                             for z in own_norms["zipf"]]
own_test = pg.mwu(own_norms["zipf"].dropna(), noun_zipf, alternative="two-sided")
by_category = noun_norms.groupby("category")["zipf"].median()
print(f"median Zipf: your words {own_norms['zipf'].median():.2f}, agency nouns {by_category['Agency']:.2f}, "
      f"communion nouns {by_category['Communion']:.2f} (your words vs all nouns: Mann-Whitney "
      f"p = {float(own_test['p_val'].iloc[0]):.2g})")
display(own_norms.drop(columns="category").round(2))

assert list(own_norms["word"]) == list(own["word"])  # annotate keeps the rows and their order
assert own_norms["share of Big Two nouns rarer"].dropna().between(0, 1).all()
# the medians recomputed here are the ones the chapter reported
chapter_zipf = confounds.set_index(["list", "measure"]).loc[("nouns", "zipf")]
assert np.isclose(by_category["Agency"], chapter_zipf["median_agency"])
assert np.isclose(by_category["Communion"], chapter_zipf["median_communion"])

# %% [markdown]
# ### Exercise 2. Care and communion
#
# The Care foundation of the MFD and the communion category both describe
# warmth towards others. How many Care terms (virtue or vice) are also Big Two nouns, and in which
# Big Two category do they fall? Then compare the word frequency of Care virtue and Care vice terms
# with a Mann-Whitney test: is the pattern of the frequency figure (vice terms rarer) significant
# for Care on its own?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
care = mfd_norms[mfd_norms["foundation"] == "Care"].assign(category=lambda t: t["category"].astype(str))
overlap = care.merge(nouns, on="word", suffixes=("_mfd", "_big2"))
display(pd.crosstab(overlap["category_mfd"], overlap["category_big2"], margins=True))
virtue = care.loc[care["polarity"] == "Virtue", "zipf"].dropna()
vice = care.loc[care["polarity"] == "Vice", "zipf"].dropna()
care_test = pg.mwu(virtue, vice, alternative="two-sided")
print(f"Care: {len(overlap)} terms are also Big Two nouns ({', '.join(sorted(overlap['word']))}); median Zipf "
      f"{virtue.median():.2f} for {len(virtue)} virtue terms and {vice.median():.2f} for {len(vice)} vice terms, "
      f"Mann-Whitney p = {float(care_test['p_val'].iloc[0]):.2g}")

assert set(overlap["word"]) <= set(nouns["word"]) & set(care["word"])
assert overlap["category_mfd"].isin(["Care_Virtue", "Care_Vice"]).all()
# the medians are the ones behind the chapter's "vice terms are rarer" sentence
assert np.isclose(virtue.median(), zipf_medians.loc["Care", "Virtue"])
assert np.isclose(vice.median(), zipf_medians.loc["Care", "Vice"])

# %% [markdown]
# ### Exercise 3. Two tokenizers, one word list
#
# The table `coverage` already holds every MFD term the chapter
# checked, in every tokenizer. Take the Care terms and the profile's first Llama-family and first
# Gemma-family tokenizer. For each surface form, count the terms that are a single token in both
# tokenizers, in only one of them, or in neither. Which tokenizer keeps more Care terms whole,
# and is it the one that keeps more Big Two nouns whole in the table above? What does the "only
# one" count mean for a comparison of a Llama model with a Gemma model on these words?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
pair = [llama_keys[0], gemma_keys[0]]
outcomes = ["both", f"only {pair[0]}", f"only {pair[1]}", "neither"]


def pair_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Per surface form: how many words are single tokens in both tokenizers of ``pair``, one, or neither."""
    wide = table[table["tokenizer"].isin(pair)].pivot_table(index=["word", "variant"], columns="tokenizer",
                                                            values="single_token", aggfunc="first").astype(bool)
    outcome = np.select([wide[pair[0]] & wide[pair[1]], wide[pair[0]], wide[pair[1]]], outcomes[:3], "neither")
    counts = pd.crosstab(wide.index.get_level_values("variant"), outcome)
    return counts.reindex(index=list(tokens.VARIANTS), columns=outcomes, fill_value=0).rename_axis(
        index="surface form", columns=None)


# the chapter already tokenised every MFD term it checked (all of them unless MAX_WORDS limits the list)
care_cov = coverage[(coverage["corpus"] == "MFD 2.0") & coverage["category"].astype(str).str.startswith("Care_")]
care_counts = pair_agreement(care_cov)
noun_counts = pair_agreement(coverage[coverage["corpus"] == "Big Two nouns"])
display(pd.concat({"Care terms": care_counts, "Big Two nouns": noun_counts}, axis=1))

n_care = care_cov["word"].nunique()
assert (care_counts.sum(axis=1) == n_care).all()  # every term lands in exactly one column per form
assert (care_cov["single_token"] == (care_cov["n_tokens"] == 1)).all()
for i, key in enumerate(pair):  # "both" plus "only <key>" is the tokenizer's own single-token count
    single_count = care_cov[care_cov["tokenizer"] == key].groupby("variant")["single_token"].sum()
    assert (care_counts["both"] + care_counts[outcomes[1 + i]] == single_count.reindex(care_counts.index)).all()
# a noun that is one token in every tokenizer of the profile is one token in these two
assert (noun_counts["both"] >= shared_counts.sum(axis=1).reindex(noun_counts.index)).all()
