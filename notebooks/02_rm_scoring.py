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
# # 2. Reward models prefer different values
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/02_rm_scoring.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/02_rm_scoring.ipynb) the version for students, without the
# solutions to its exercises.
#
# ```{admonition} Hardware
# :class: tip
# The `demo` profile runs on a CPU. The `paper` profile scores with the study's ten reward models (2B
# to 27B parameters) and needs a GPU: 6 to 55 GiB of memory depending on the model, less with
# `QUANTIZE = "8bit"` or `"4bit"`. See {doc}`hardware` for memory, run times and how to run one model at
# a time on Colab.
# ```
#
# A reward model (RM) reads a conversation and returns one number: how good the assistant's reply is.
# The study {cite}`christian2026reward` asks ten published RMs from RewardBench
# {cite}`lambert2024rewardbench` the same question, "What, in one word, is the greatest thing ever?",
# and lets each one score every word of a dictionary as the reply. The ten are Skywork-Reward
# {cite}`liu2024skywork`, QRM {cite}`dorka2024quantile`, URM {cite}`lou2024uncertainty`, GRM
# {cite}`yang2024regularizing` and ArmoRM {cite}`wang2024interpretable` models, built on Gemma 2
# {cite}`gemmateam2024gemma` or Llama 3 {cite}`grattafiori2024llama`. The headline finding (its
# Figure 1) is that RMs built on Llama rank **agency** words (freedom, success) higher, and RMs built on
# Gemma rank **communion** words (love, family) higher.
#
# This chapter does three things:
#
# 1. reproduces Figure 1 from the authors' released scores, and shows what their moral-foundations
#    figure left out;
# 2. goes beyond the paper: which words each RM likes best, whether RMs cluster by base family, and
#    whether word frequency or pleasantness explains the effect;
# 3. scores words live with this profile's reward models, using the book's scoring engine, and checks
#    that engine against the plain forward pass.

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
REWARD_MODELS = None  # list of reward-model keys or Hugging Face ids; None: the profile's
PROMPTS = None  # prompts the RMs score the nouns on, e.g. ["greatest_ever_one"]; None: the profile's (demo: the 12
# "thing ever" prompts; paper: all 54)
MAX_WORDS = None  # at most this many nouns per category; None: the profile's
VOCAB_LIMIT = None  # vocabulary search: most frequent word tokens only; None: the profile's; 0: every token
BATCH_SIZE = None  # candidates per forward pass; None: the profile's
DEVICE = None  # "cpu", "cuda", "auto" or "multi-gpu" (split each model over every GPU); None: the profile's
QUANTIZE = None  # None (the paper's precision), "8bit" or "4bit" for GPUs too small; results are keyed to it
TOKENISATION = None  # "authors" (chat rendered to text and tokenised again: two BOS) or "single-bos"; None: the profile's
CHAT_DATE = None  # the date Llama 3.1/3.2 templates print, e.g. "26 Jul 2024", or "unset" (the day of the run); None: the profile's
SKIP_UNFIT = None  # True: leave out reward models too large for the device (listed); None: the profile's (stop, naming them)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import statsmodels.formula.api as smf
from transformers.utils import logging as hf_logging

from rmbias import (
    corpora,
    lexicons,
    memory,
    placement,
    plots,
    profiles,
    prompts,
    ranks,
    registry,
    release,
    rewards,
    scoring,
    tokens,
)
from rmbias.chapter import Chapter

chapter = Chapter.open("02_rm_scoring", PROFILE, reward_models=REWARD_MODELS, scored_prompts=PROMPTS, max_words=MAX_WORDS,
                       vocab_limit=VOCAB_LIMIT, batch_size=BATCH_SIZE, device=DEVICE, quantize=QUANTIZE,
                       tokenisation=TOKENISATION, chat_date=CHAT_DATE, skip_unfit=SKIP_UNFIT)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
plots.setup()
hf_logging.set_verbosity_error()  # new score heads of the tiny models are expected, not news

# %% tags=["remove-cell"]
settings

# %% [markdown]
# ## Part 1. The paper's Figure 1, from the released scores
#
# The authors released the score every RM gave every Big Two noun as the reply to each of the 54
# prompts (six adjectives x three frames x three phrasings; chapter 1). Before using them, we check
# them against the dictionary.

# %%
checks = release.release_checks("big2")
released = release.released_scores("big2")
n_rms = released["rm"].nunique()
families = released.drop_duplicates("rm")["family"].value_counts()

# %% tags=["remove-input"]
chapter.number("rel_n_rms", int(n_rms), display=False)
chapter.number("rel_n_gemma", int(families["gemma"]), display=False)
chapter.number("rel_n_llama", int(families["llama"]), display=False)
chapter.number("rel_rows_per_file", int(checks["released_words"]), display=False)
chapter.number("rel_n_dictionary", int(checks["dictionary_words"]), display=False)
extra = list(checks["extra_words"])
chapter.number("rel_extra_words", " and ".join(f"'{w}'" for w in extra) or "none", display=False)
chapter.number("rel_n_extra", len(extra), display=False)
summary["release_checks_big2"] = checks

# %% tags=["hide-input"]
pd.Series({"files": checks["files"], "Gemma / Llama RMs": f"{families['gemma']} / {families['llama']}",
           "prompt columns match the 54 prompts": checks["prompt_columns_match"],
           "words per file": checks["released_words"], "nouns in the dictionary": checks["dictionary_words"],
           "extra words (row)": ", ".join(f"{w} ({r[0]})" for w, r in checks["extra_words"].items()),
           "missing words": len(checks["missing_words"]), "non-finite scores": checks["non_finite_scores"]},
          name="released Big Two scores").to_frame()

# %% [markdown]
# The release scores {glue:text}`rel_n_rms` RMs ({glue:text}`rel_n_gemma` Gemma-based,
# {glue:text}`rel_n_llama` Llama-based). Each file has {glue:text}`rel_rows_per_file` words, while the
# dictionary has {glue:text}`rel_n_dictionary` nouns: the {glue:text}`rel_n_extra` extra rows are {glue:text}`rel_extra_words`,
# which the noun dictionary does not contain (the expanded list has *discuss* and *eager*), so they
# have no category. Like the authors' figure script, which joins the scores to the dictionary, we drop
# them; ranks below run over the dictionary's nouns.
#
# **The analysis unit.** RMs put their rewards on very different scales, so the study compares ranks:
# within each (RM, prompt) the nouns are ranked by score (1 = highest reward), and each category is
# summarised by its median rank. That gives one number per RM, prompt and category.

# %%
released["rank"] = ranks.within_ranks(released, ["rm", "prompt"])
medians = ranks.category_medians(released)
per_rm = ranks.panel_means(medians)
per_family = ranks.panel_means(per_rm, ["family", "category", "framing"], value="mean")
gap = ranks.family_gap(medians)

# %% tags=["remove-input"]
chapter.table(medians, "released_big2_median_ranks", source="authors' release, dict_big2_nouns")
chapter.number("rel_n_medians", len(medians), display=False)
n_words_rel = int(released["word"].nunique())
chapter.number("rel_n_words", n_words_rel, display=False)

# %%
gap_table = gap.set_index(["framing", "category"]).round(1)
gap_table

# %% tags=["hide-input"]
def gap_value(table, framing, category, column="llama_minus_gemma"):
    return float(table[(table["framing"] == framing) & (table["category"] == category)][column].iloc[0])


pos_agency = gap_value(gap, "positive", "Agency")
pos_communion = gap_value(gap, "positive", "Communion")
neg_agency = gap_value(gap, "negative", "Agency")

fig = plots.rank_panels(per_rm, per_family, categories=["Agency", "Communion"])
chapter.figure(fig, "figure1a_released")
plt.show()

# %% tags=["remove-input"]
chapter.number("rel_pos_agency_gap", abs(pos_agency), display=False)
chapter.number("rel_pos_communion_gap", abs(pos_communion), display=False)
chapter.number("rel_neg_agency_gap", abs(neg_agency), display=False)
chapter.number("rel_pos_agency_dir", "better" if pos_agency < 0 else "worse", display=False)
chapter.number("rel_pos_communion_dir", "worse" if pos_communion > 0 else "better", display=False)
chapter.number("rel_neg_agency_dir", "worse" if neg_agency > 0 else "better", display=False)
summary["released_family_gap"] = gap.to_dict("records")

# %% [markdown]
# Each dot is one RM: its median rank of the category's nouns, averaged over the 27 prompts of one
# framing, with the standard error over prompts; the bars are the family means (lower is better, so
# up is preferred). There are {glue:text}`rel_n_medians` medians behind the figure, one per RM, prompt
# and category, each over the {glue:text}`rel_n_words` nouns.
#
# On positive prompts ("the greatest thing"), Llama-based RMs rank agency nouns
# {glue:text}`rel_pos_agency_gap:.1f` places {glue:text}`rel_pos_agency_dir` than Gemma-based RMs do,
# and communion nouns {glue:text}`rel_pos_communion_gap:.1f` places {glue:text}`rel_pos_communion_dir`.
# On negative prompts ("the worst thing") the pattern turns over: Llama-based RMs rank agency nouns
# {glue:text}`rel_neg_agency_gap:.1f` places {glue:text}`rel_neg_agency_dir`. That reversal is the
# three-way interaction (base x category x framing) the paper tests. The gaps are a few places out of
# 263, and the dots of one family overlap the other's: chapter 6 asks how much of this survives when
# the ten RMs, not the 1,080 medians, are treated as the sample.

# %% [markdown]
# ### The moral foundations, with and without the dropped column
#
# The paper's Figure 1b repeats the analysis on the Moral Foundations Dictionary 2.0, pooling virtue
# and vice words into five foundations. Chapter 1 found that the authors' figure script drops the
# `Sanctity_Vice` column. Because ranks are computed *after* that selection, the omission changes more
# than the Sanctity panel: every word's rank is computed among 1,652 terms instead of 2,040, and the
# Sanctity panel holds only virtue words while the other four pool virtue and vice.

# %%
mfd_released = release.released_scores("mfd")
omission = ranks.omission_effect(mfd_released)

# %% tags=["remove-input"]
chapter.table(omission, "released_mfd_omission_effect", source="authors' release, dict_MFD_20")

# %%
pivot = omission.pivot_table(index=["foundation", "framing"], columns="route", values="llama_minus_gemma",
                             sort=False)
pivot = pivot.reindex(columns=["all", "without"]).rename(
    columns={"all": "all 2,040 terms", "without": "authors' route (no Sanctity_Vice)"})
pivot.round(1)

# %% tags=["remove-input"]
sign_flips = pivot[np.sign(pivot.iloc[:, 0]) != np.sign(pivot.iloc[:, 1])]
chapter.number("mfd_n_sign_flips", len(sign_flips), display=False)
chapter.number("mfd_sign_flip_panels", ", ".join(f"{f} ({fr})" for f, fr in sign_flips.index) or "none", display=False)
sanct = pivot.loc[("Sanctity", "negative")]
chapter.number("mfd_sanct_neg_all", float(sanct.iloc[0]), display=False)
chapter.number("mfd_sanct_neg_without", float(sanct.iloc[1]), display=False)
summary["mfd_omission_llama_minus_gemma"] = {f"{f}|{fr}": row.to_dict() for (f, fr), row in pivot.iterrows()}

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(8.5, 4))
long = pivot.reset_index().melt(id_vars=["foundation", "framing"], var_name="route", value_name="gap")
long["panel"] = long["foundation"] + "\n" + long["framing"]
sns.barplot(data=long, x="panel", y="gap", hue="route", palette=["#555555", "#BBBBBB"], ax=ax)
ax.axhline(0, color="black", lw=0.8)
ax.set_ylabel("Llama minus Gemma\nmean median rank")
ax.set_xlabel("")
ax.tick_params(axis="x", labelsize=8)
ax.legend(title="", frameon=False, fontsize=9)
chapter.figure(fig, "figure1b_omission")
plt.show()

# %% [markdown]
# Bars show, for each foundation and framing, how much worse (positive) or better (negative) the
# Llama-based RMs rank that foundation's words than the Gemma-based RMs do, computed over all terms
# (dark) and the authors' way (light). The omission flips the sign of the family gap in
# {glue:text}`mfd_n_sign_flips` of the ten panels ({glue:text}`mfd_sign_flip_panels`). In the negative
# Sanctity panel, the gap is {glue:text}`mfd_sanct_neg_all:.1f` places with every term and
# {glue:text}`mfd_sanct_neg_without:.1f` the authors' way: that panel's direction is an artefact of the
# dropped column. Every result in this book keeps all ten columns.

# %% [markdown]
# ## Part 2. Beyond the paper
#
# ### Which words does each RM like best?
#
# The paper reports only category medians. Here are the nouns each RM ranks highest and lowest on
# average over the 27 positive prompts.

# %%
positive = released[released["framing"] == "positive"]
tb = ranks.top_bottom(positive, 5, by="rm")
top_words = tb.groupby(["rm", "end"], sort=False)["word"].apply(", ".join).unstack("end")[["top", "bottom"]]
top_words.index = [f"{release.SHORT_LABELS.get(rm, rm)} ({registry.family_of(rm)})" for rm in top_words.index]
top_words

# %% tags=["remove-input"]
chapter.number("top_word_counts", ", ".join(f"{w} ({n})" for w, n in
                                            tb[(tb["end"] == "top") & (tb["position"] == 1)]["word"].value_counts().items()),
               display=False)
bottom_counts = tb[tb["end"] == "bottom"]["word"].value_counts()
chapter.number("bottom_common", ", ".join(f"{w} ({n})" for w, n in bottom_counts.head(6).items()), display=False)
summary["released_top_bottom_positive"] = tb.to_dict("records")

# %% [markdown]
# The best noun by mean rank (and the number of RMs for which it is best): {glue:text}`top_word_counts`.
# The words most often among an RM's bottom five (and in how many of the ten lists):
# {glue:text}`bottom_common`. The ends of the lists are much alike across RMs: the RMs share far more
# than they disagree on, which the next figure quantifies.

# %% [markdown]
# ### Do RMs cluster by their base model?
#
# If the base model shapes an RM's values, RMs built on the same base should agree with each other
# more than with RMs built on the other. The heatmap shows the Spearman correlation between every two
# RMs of their nouns' mean ranks over the positive prompts.

# %%
corr = ranks.rank_correlations(positive)
order = list(dict.fromkeys(released["rm"]))
corr = corr.loc[order, order]

# %% tags=["hide-input"]
fam = {rm: registry.family_of(rm) for rm in order}
labels = [release.SHORT_LABELS.get(rm, rm) for rm in order]
fig, ax = plt.subplots(figsize=(7, 6))
sns.heatmap(corr.to_numpy(), xticklabels=labels, yticklabels=labels, cmap="viridis", vmin=0, vmax=1,
            annot=True, fmt=".2f", annot_kws={"size": 7}, square=True, cbar_kws={"label": "Spearman rho"}, ax=ax)
for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
    tick.set_color(plots.FAMILY_COLOURS[fam[order[labels.index(tick.get_text())]]])
chapter.figure(fig, "rm_rank_correlations")
plt.show()

# %% tags=["remove-input"]
values = corr.to_numpy()
same = [values[i, j] for i in range(len(order)) for j in range(i + 1, len(order)) if fam[order[i]] == fam[order[j]]]
cross = [values[i, j] for i in range(len(order)) for j in range(i + 1, len(order)) if fam[order[i]] != fam[order[j]]]
chapter.number("corr_within_mean", float(np.mean(same)), display=False)
chapter.number("corr_between_mean", float(np.mean(cross)), display=False)
chapter.number("corr_min", float(values.min()), display=False)
summary.update(corr_within_family_mean=float(np.mean(same)), corr_between_family_mean=float(np.mean(cross)))

# %% [markdown]
# Tick labels are coloured by base family (Gemma red, Llama blue). RMs of the same family correlate
# {glue:text}`corr_within_mean:.2f` on average, RMs of different families {glue:text}`corr_between_mean:.2f`.
# All RMs agree broadly on which nouns are good answers (the lowest correlation is
# {glue:text}`corr_min:.2f`); the family effect is a difference on top of a large shared preference.
# Family is also confounded with size and developer here (three of the four Gemma RMs are 27B models
# from one lineage), which this correlation cannot separate.

# %% [markdown]
# ### Do frequency or pleasantness explain the category effect?
#
# Chapter 1 found that agency and communion nouns are equally frequent, but that the communion nouns a
# sentiment lexicon knows are rated more pleasant. If RMs simply prefer pleasant or common words, the
# family difference could be about those properties rather than about values. For each noun we take
# the family difference in mean rank over the positive prompts (Llama minus Gemma) and ask whether
# category still predicts it once frequency (Zipf) and VADER valence are in the model.

# %%
norms = chapter.read_table("01_corpora", "big2_norms")
norms = norms[norms["list"] == "nouns"].drop_duplicates("word")
word_fam = positive.groupby(["word", "category", "family"], observed=True)["rank"].mean().unstack("family")
word_fam["llama_minus_gemma"] = word_fam["llama"] - word_fam["gemma"]
word_fam = word_fam.reset_index().merge(norms[["word", "zipf", "vader"]], on="word", how="left")
fit_cat = smf.ols("llama_minus_gemma ~ C(category, Treatment('Agency'))", data=word_fam.dropna(subset=["zipf"])).fit()
fit_freq = smf.ols("llama_minus_gemma ~ C(category, Treatment('Agency')) + zipf", data=word_fam.dropna(subset=["zipf"])).fit()
fit_val = smf.ols("llama_minus_gemma ~ C(category, Treatment('Agency')) + zipf + vader",
                  data=word_fam.dropna(subset=["zipf", "vader"])).fit()
term = "C(category, Treatment('Agency'))[T.Communion]"
fits = {"category only": fit_cat, "category + frequency": fit_freq, "category + frequency + valence": fit_val}

# %% tags=["hide-input"]
confound = pd.DataFrame({
    "model": list(fits),
    "n nouns": [int(f.nobs) for f in fits.values()],
    "communion effect": [f.params[term] for f in fits.values()],
    "p (communion)": [f.pvalues[term] for f in fits.values()],
    "frequency slope": [f.params.get("zipf", np.nan) for f in fits.values()],
    "p (frequency)": [f.pvalues.get("zipf", np.nan) for f in fits.values()],
    "valence slope": [f.params.get("vader", np.nan) for f in fits.values()],
    "p (valence)": [f.pvalues.get("vader", np.nan) for f in fits.values()],
})
confound.round(3)

# %% tags=["remove-input"]
for name, fit in (("cat", fit_cat), ("freq", fit_freq), ("val", fit_val)):
    chapter.number(f"conf_{name}_effect", float(fit.params[term]), display=False)
    chapter.number(f"conf_{name}_p", float(fit.pvalues[term]), display=False)
    chapter.number(f"conf_{name}_n", int(fit.nobs), display=False)
chapter.number("conf_val_slope_p", float(fit_val.pvalues["vader"]), display=False)
chapter.number("conf_freq_slope_p", float(fit_freq.pvalues["zipf"]), display=False)
chapter.number("conf_freq_slope", float(fit_freq.params["zipf"]), display=False)
summary["confound_models"] = confound.to_dict("records")

# %% [markdown]
# Read the "communion effect" as: how many places further down (positive) the Llama-based RMs put a
# communion noun, relative to the Gemma-based RMs, than an agency noun. On its own, category gives
# {glue:text}`conf_cat_effect:.1f` places (p = {glue:text}`conf_cat_p:.2g`, {glue:text}`conf_cat_n`
# nouns); with frequency in the model it is {glue:text}`conf_freq_effect:.1f` (p =
# {glue:text}`conf_freq_p:.2g`), while each step of one Zipf unit (ten times more frequent) moves a
# noun {glue:text}`conf_freq_slope:.1f` places (p = {glue:text}`conf_freq_slope_p:.2g`). Adding valence
# leaves only the {glue:text}`conf_val_n` nouns VADER rates, and there the communion effect is
# {glue:text}`conf_val_effect:.1f` (p = {glue:text}`conf_val_p:.2g`), with valence at p =
# {glue:text}`conf_val_slope_p:.2g`. So at the level of single nouns, how common a word is separates
# the two families at least as clearly as its category does, even though the two categories have the
# same frequency distribution (chapter 1), which is why frequency does not confound the category
# medians. Word-level p-values treat nouns as independent and the ten RMs as fixed, so read them as
# descriptions; chapter 6 does the inference at the level of models.

# %% [markdown]
# ## Part 3. Scoring live with this profile's reward models
#
# The released scores cannot show *how* a score is made. This part computes scores with the book's
# own engine (`rmbias.scoring`): every candidate is the assistant turn of a two-turn chat
# rendered with the RM's own chat template and tokenised by the template itself (so there is exactly
# one BOS token); the shared prompt runs once and only the reply tokens run per candidate; the reward
# is read at the last real token, found from the attention mask.

# %%
fit = memory.check_fit(settings.reward_models, dtype=settings.dtype, device=settings.device,
                       quantize=settings.quantize, reward=True, skip_unfit=settings.skip_unfit)
rm_keys = fit.kept
fit.table.drop(columns=["key"])

# %% tags=["remove-input"]
summary["fit_check"] = memory.fit_summary(fit)
chapter.number("n_skipped_unfit", len(fit.skipped), display=False)
chapter.number("skipped_unfit", ", ".join(registry.spec(k).label for k in fit.skipped) or "none", display=False)

# %% [markdown]
# Before any model loads, the chapter checks that every reward model fits the device it will run on:
# each model's published configuration gives the memory its weights need in the dtype it runs in
# (table above, with a margin for activations). Models skipped for lack of memory
# ({glue:text}`n_skipped_unfit`): {glue:text}`skipped_unfit`.

# %% tags=["hide-input"]
HEAD_READS = {"head": "score head, column 0", "armorm": "ArmoRM head (rmbias.heads)",
              "qrm-llama": "QRM head (rmbias.heads)", "qrm-gemma2": "QRM head (rmbias.heads)",
              "urm-gated": "URM gated head (rmbias.heads)", None: "new score head"}

# %%
rm_table = pd.DataFrame([{**registry.describe(k), "reads reward from": HEAD_READS[registry.spec(k).reward]}
                         for k in rm_keys]).set_index("key")
rm_table.drop(columns=[c for c in ("package", "filename", "tokenizer") if c in rm_table], errors="ignore")

# %% [markdown]
# ```{admonition} Content warning
# :class: warning
# The demo reward models are trained on Anthropic's hh-rlhf "harmless" preference pairs
# {cite}`bai2022training`, which are red-teaming conversations: they contain offensive, violent and
# hateful text by design. This chapter shows none of it, only the models trained on it.
# ```
#
# In the demo profile the two reward models are trained here, from SmolLM2-135M-Instruct
# {cite}`benallal2025smollm` (Llama architecture) and Gemma-3-270M {cite}`gemmateam2025gemma` (a Gemma
# base model), on the same preference pairs with the same recipe: the paper's controlled comparison in
# miniature. They are two runs of the training grid of chapter 5 (the largest data size, the first
# seed), which trains more of the same with other data sizes and seeds: each run is trained once, by
# whichever chapter asks for it first, and serves both. The tiny profile uses random-weight models with
# random score heads, which only exercise the code.

# %%
training_records = {}
for key in rm_keys:
    spec = registry.spec(key)
    if spec.source == "trained":
        from rmbias import ablation, training

        training_records[key] = training.read_record(ablation.demo_reward_model(spec.base))

# %% tags=["hide-input"]
if training_records:
    runs = {key: training.run_summary(r) for key, r in training_records.items()}
    display_table = pd.DataFrame({key: {
        "base model": r["base"], "train pairs": r["pairs_used"], "optimizer steps": r["steps"],
        "held-out pairs": r["heldout_pairs"], "held-out accuracy": f"{r['heldout_accuracy']:.1%}",
        "95% CI": f"{r['ci_low']:.1%} to {r['ci_high']:.1%}",
        "training minutes": f"{r['train_seconds'] / 60:.1f}"} for key, r in runs.items()})
    recipe = next(iter(training_records.values()))["config"]
    same_recipe = all(r["config"] == recipe for r in training_records.values())
    summary["demo_training"] = {key: {"accuracy": r["heldout_accuracy"], "ci95": [r["ci_low"], r["ci_high"]],
                                      "n_heldout": r["heldout_pairs"], "train_seconds": r["train_seconds"]}
                                for key, r in runs.items()}
    accuracy_text = "; ".join(f"{key}, {r['heldout_accuracy']:.1%} (95% CI {r['ci_low']:.1%} to {r['ci_high']:.1%}, "
                              f"{r['heldout_pairs']} pairs" + ("; chance, 50%, lies in the interval" if r["ci_low"] <= 0.5
                                                               else "") + ")" for key, r in runs.items())
    recipe_text = (f"LoRA r={recipe['lora_r']} (alpha {recipe['lora_alpha']}) on {', '.join(recipe['target_modules'])}"
                   + (f" of the top {recipe['lora_top_layers']} layers" if recipe.get("lora_top_layers") else "")
                   + f", a fully trained score head, learning rate {recipe['learning_rate']:g} ({recipe['lr_scheduler']}), "
                   f"{recipe['n_train']} pairs, {recipe['epochs']:g} epoch(s), at most {recipe['max_length']} tokens"
                   + ("; identical for both bases" if same_recipe else "; NOTE: the recipes differ"))
else:
    accuracy_text = "not applicable: this profile's reward models were not trained here"
    recipe_text = "not applicable (random-weight test models with random score heads)"
    display_table = pd.DataFrame({"note": ["random-weight test models, not trained"]})
display_table

# %% tags=["remove-input"]
chapter.number("demo_recipe_text", recipe_text, display=False)
chapter.number("demo_accuracy_text", accuracy_text, display=False)

# %% [markdown]
# Training used TRL's `RewardTrainer` (the Bradley-Terry loss) with {glue:text}`demo_recipe_text`.
# Held-out pairwise accuracy (the share of held-out pairs whose chosen reply gets the higher reward):
# {glue:text}`demo_accuracy_text`. Small models trained briefly on a CPU learn little of what makes a
# reply harmless, which is worth keeping in mind below: these are reward models in form and training
# objective, far weaker than the paper's.

# %% [markdown]
# ### The Big Two nouns, scored live

# %% [markdown]
# Each reward model is loaded once and does all of this chapter's scoring while it is in memory (a 27B
# model takes minutes to load): the nouns below, the vocabulary search and, for the released RMs, the
# nouns once more under the other tokenisation. Every result is written in chunks, so the sections
# further down read them back without loading anything.

# %%
nouns = profiles.limit_words(corpora.big2_nouns(), settings.max_words)
prompt_table = prompts.select(settings.scored_prompts or settings.prompts)
headline = prompts.select([prompts.HEADLINE])

# %% tags=["hide-input"]
live_dir = out / "live_scores"
released_ids = set(released["rm"])
other = scoring.ChatFormat("single-bos" if settings.tokenisation == "authors" else "authors", settings.chat_date)
run = dict(dtype=settings.dtype, device=settings.device, batch_size=settings.batch_size, quantize=settings.quantize)


# %%
def score_nouns(key, chat=settings.chat):
    folder = live_dir if chat == settings.chat else live_dir / f"tokenisation-{chat.tokenisation}"
    return rewards.score_words(key, prompt_table, nouns["word"].tolist(), folder, chat=chat, **run)


vocab_ids = {}  # the searched tokens of each RM (all of them where VOCAB_LIMIT is None)


def score_vocabulary(key):
    if key not in vocab_ids:
        vocab_ids[key] = (tokens.frequent_word_tokens(rewards.tokenizer_for(key), settings.vocab_limit)
                          if settings.vocab_limit else None)
    return rewards.score_vocabulary(key, prompts.HEADLINE, headline["text"][0], live_dir, token_ids=vocab_ids[key],
                                    chat=settings.chat, **run)


# %%
live_parts = []
for key in rm_keys:
    live_parts.append(score_nouns(key).assign(family=registry.family_of(key)))
    score_vocabulary(key)
    if registry.spec(key).label in released_ids:
        score_nouns(key, other)
rewards.release()
live = pd.concat(live_parts, ignore_index=True).merge(nouns[["word", "category"]], on="word")
live = live.merge(prompt_table[["key", "framing"]].rename(columns={"key": "prompt"}), on="prompt")
live["rank"] = ranks.within_ranks(live, ["rm", "prompt"])
live_medians = ranks.category_medians(live)
live_per_rm = ranks.panel_means(live_medians)

# %% tags=["remove-input"]
chapter.table(live, "live_big2_scores", profile=settings.name, reward_models=rm_keys)
chapter.number("live_n_candidates", len(live), display=False)
chapter.number("live_n_prompts", len(prompt_table), display=False)
n_positive = int((prompt_table["framing"] == "positive").sum())
chapter.number("live_prompt_rule", "the study's 54" if len(prompt_table) == 54 else
               f"{n_positive} positive and {len(prompt_table) - n_positive} negative ones of the study's 54 "
               f"({', '.join(prompt_table['key'])}), to bound the CPU time; the paper profile scores all 54",
               display=False)
chapter.number("live_n_words", len(nouns), display=False)

# %% tags=["hide-input"]
fig = plots.rank_panels(live_per_rm, categories=["Agency", "Communion"])
chapter.figure(fig, "figure1a_live")
plt.show()

# %%
live_gap = (live_medians.pivot_table(index=["rm", "framing"], columns="category", values="median_rank")
            .assign(agency_minus_communion=lambda t: t["Agency"] - t["Communion"]))
live_gap.round(1)

# %% tags=["remove-input"]
for i, key in enumerate(rm_keys):
    label = registry.spec(key).label
    value = live_gap.loc[(label, "positive"), "agency_minus_communion"] if (label, "positive") in live_gap.index \
        else float("nan")
    chapter.number(f"live_gap_{i}", float(value), display=False)
    chapter.number(f"live_rm_{i}", label, display=False)
summary["live_agency_minus_communion"] = {f"{rm}|{fr}": float(v) for (rm, fr), v in
                                          live_gap["agency_minus_communion"].items()}

# %% [markdown]
# Each RM scored {glue:text}`live_n_words` nouns as replies to {glue:text}`live_n_prompts` prompts
# ({glue:text}`live_n_candidates` scores in all); the prompts are {glue:text}`live_prompt_rule`. The figure draws them as Figure 1a above: each dot
# is one live RM's median rank of a category, averaged over the prompts of a framing, with standard
# errors over prompts. The table gives, per RM and framing, the median rank
# of each category and their difference (negative: agency ranked better). On positive prompts the
# difference is {glue:text}`live_gap_0:.1f` for {glue:text}`live_rm_0` and {glue:text}`live_gap_1:.1f`
# for {glue:text}`live_rm_1`. Two models are one per family, so nothing here is a family effect in any
# statistical sense: it is the pipeline the paper used, run end to end on models a laptop can hold.

# %% [markdown]
# ### An exhaustive search over the vocabulary
#
# The predecessor study {cite}`christian2025optimal` scored *every token* of an RM's vocabulary as the
# reply to "What, in one word, is the greatest thing ever?". The engine places each token into the
# reply slot by its id, so no token is lost to decoding and re-tokenising; it also reports for how many
# tokens that text route would not have given back the same chat. In the demo profile the search covers
# the most frequent English word tokens of each vocabulary (a CPU budget); the paper profile covers
# every token.

# %%
vocab = pd.concat([score_vocabulary(key) for key in rm_keys], ignore_index=True)  # read back: scored above
vocab["rank"] = ranks.within_ranks(vocab, ["rm"])

# %% tags=["remove-input"]
chapter.table(vocab, "live_vocabulary_scores", prompt=prompts.HEADLINE, vocab_limit=settings.vocab_limit)

# %% tags=["hide-input"]
n_show = 15
extremes = {}
for rm, table in vocab.groupby("rm", sort=False):
    ordered = table.sort_values("rank")
    extremes[(rm, "top")] = ordered["token"].head(n_show).map(repr).tolist()
    extremes[(rm, "bottom")] = ordered["token"].tail(n_show).iloc[::-1].map(repr).tolist()
pd.DataFrame(extremes).rename_axis("position").set_index(pd.RangeIndex(1, n_show + 1, name="position"))

# %% tags=["remove-input"]
round_trip = vocab.groupby("rm", sort=False)["round_trips"].mean()
chapter.number("vocab_n", int(vocab.groupby("rm").size().min()), display=False)
chapter.number("vocab_round_trip_min", float(round_trip.min()), display=False)
chapter.number("vocab_round_trip_max", float(round_trip.max()), display=False)
summary["vocab_round_trip_rate"] = round_trip.to_dict()
summary["vocab_top_bottom"] = {f"{rm}|{side}": words for (rm, side), words in extremes.items()}

# %% [markdown]
# The {glue:text}`vocab_n` or more candidates per RM were scored by id. Decoding a token, putting the
# text into the template and tokenising again gives back the same chat for between
# {glue:text}`vocab_round_trip_min:.1%` and {glue:text}`vocab_round_trip_max:.1%` of them: the rest
# would have been scored as a different sequence by the text route (most often a leading space that
# the template trims, or a token that merges with its neighbours).

# %% [markdown]
# A reader will want to look words up. The figure below draws the searched tokens that are English words
# (those the `wordfreq` frequency list knows, at most {glue:text}`vocab_fig_per_rm` per RM, the most
# common first): how common the word is (Zipf frequency, the log10 of its uses per billion words: "the"
# is near 8, and 1 is a word met once in a hundred million) against the reward it gets as the whole reply. The static figure is for print; in the
# interactive one below it, hovering a point shows the token, its score and its rank, and clicking an RM
# in the legend hides it. Spearman's correlation of score with frequency, per RM:
# {glue:text}`vocab_zipf_rho`. A reward model that simply preferred common words would show a clear
# positive correlation; one that judges the word's meaning need not.

# %%
vocab_words = vocab.assign(zipf=lexicons.zipf_frequency(vocab["token"].str.strip().str.lower()).to_numpy())
per_rm = max(5000 // len(rm_keys), 250)  # every point is written into the page
shown = (vocab_words[vocab_words["zipf"] > 0].sort_values(["zipf", "token"], ascending=[False, True])
         .groupby("rm", sort=False).head(per_rm))
zipf_rho = (shown.groupby("rm", sort=False)[["zipf", "score"]]
            .apply(lambda t: t["zipf"].corr(t["score"], method="spearman")))

# %% tags=["remove-input"]
chapter.number("vocab_fig_per_rm", f"{per_rm:,}", display=False)
chapter.number("vocab_zipf_rho", "; ".join(f"{rm} {rho:.2f}" for rm, rho in zipf_rho.items()), display=False)
summary["vocab_zipf_spearman"] = zipf_rho.to_dict()

# %% tags=["hide-input"]
rm_palette = plots.model_palette({registry.spec(key).label: registry.family_of(key) for key in rm_keys})
fig, ax = plt.subplots(figsize=(8, 4.5))
sns.scatterplot(data=shown, x="zipf", y="score", hue="rm", palette=rm_palette, s=10, alpha=0.5, linewidth=0, ax=ax)
ax.set(xlabel="word frequency (Zipf)", ylabel=f"reward as the reply to {prompts.HEADLINE}")
ax.legend(title=None, markerscale=2)
chapter.figure(fig, "vocabulary_by_frequency")
plt.show()

# %% tags=["remove-input"]
plots.as_html(plots.interactive_scatter(
    shown, x="zipf", y="score", word="token", colour="rm", palette=rm_palette, hover=["rank"],
    labels={"zipf": "word frequency (Zipf)", "score": "reward", "rm": "reward model"}))

# %% [markdown]
# ### Is the engine faithful?
#
# The engine must give the scores of the plain forward pass. On the headline prompt and up to 64
# nouns per category, we compare the cached route against the full pass, and the effect of changing
# only the batch size. On a CPU (the demo and tiny profiles) every RM is checked in float32, and a
# bfloat16 copy (what a GPU run uses) is set against it, next to bfloat16's own batch-size noise. On a
# GPU (the paper profile) the check loads only the smallest of the run's RMs, in its own dtype: a 27B
# model is never loaded in float32, nor twice.

# %%
agreement = {}
check_words = profiles.limit_words(nouns, 64)["word"].tolist()  # 64 per category bounds the CPU time
check_plan = rewards.engine_check_plan(rm_keys, settings.device, settings.dtype)
for key, check_dtype in check_plan:
    model, tokenizer = rewards.loaded_reward_model(key, check_dtype, placement.resolve_device(settings.device))
    sequences = scoring.word_sequences(tokenizer, headline["text"][0], check_words, settings.chat)
    agreement[registry.spec(key).label] = scoring.agreement_report(model, sequences, batch_size=settings.batch_size)
    del model
rewards.release()
agreement = pd.DataFrame(agreement).T
agreement.style.format(lambda v: v if isinstance(v, str) else f"{v:.3g}")

# %% tags=["remove-input"]
chapter.table(agreement.reset_index(names="rm"), "engine_agreement")
chapter.number("agree_checked", "; ".join(f"{registry.spec(k).label} in {d}" for k, d in check_plan), display=False)
chapter.number("agree_route_max", float(agreement["cached vs full"].max()), display=False)
chapter.number("agree_noise_max", float(agreement["batch-size noise"].max()), display=False)
low_precision = "bf16 vs fp32" in agreement
if low_precision:
    chapter.number("agree_low_text", f"In bfloat16 the scores move by up to {agreement['bf16 vs fp32'].max():.3g} from float32, "
                   f"while changing only the batch size moves them by up to {agreement['bf16 batch-size noise'].max():.3g}; "
                   f"the ranking of the nouns in bfloat16 keeps a Spearman correlation of at least "
                   f"{agreement['bf16 vs fp32 Spearman'].min():.3f} with float32.", display=False)
else:
    chapter.number("agree_low_text", "No float32 copy was compared: on a GPU the models run in their own dtype only.",
                   display=False)
summary["engine_agreement"] = agreement.to_dict("index")

# %% [markdown]
# Checked: {glue:text}`agree_checked`. The cached route and the full pass differ by at most
# {glue:text}`agree_route_max:.1e`, and changing only the batch size moves a score by at most
# {glue:text}`agree_noise_max:.1e`, in the dtype each model ran in. {glue:text}`agree_low_text` Score
# differences smaller than these cannot be read as preferences.

# %% [markdown]
# ### Live scores against the released ones (paper profile)
#
# With the paper profile, the same ten RMs are scored live, and each (RM, prompt) ranking is compared
# with the authors' released scores. The authors' route differs from this book's default in ways the
# predecessor's code shows: it rendered the chat as text and tokenised it again (so two BOS tokens),
# it gave Llama 3.2 templates no date (so they print the day of the run), and it loaded URM without
# its remote code (a plain 10-output head, column 0). The paper profile scores the authors' way
# (`tokenisation="authors"`, `chat_date="unset"`) and, for the comparison, once more with a single BOS:
# the table gives the agreement under both. Lower agreement for an RM is a lead to follow, not an
# error in itself.

# %%
overlap = [k for k in rm_keys if registry.spec(k).label in released_ids]
if overlap:
    by_tokenisation = {settings.tokenisation: live[live["rm"].isin({registry.spec(k).label for k in overlap})],
                       other.tokenisation: pd.concat([score_nouns(key, other) for key in overlap],  # scored above
                                                     ignore_index=True)}
    rows = []
    for tokenisation, scores in by_tokenisation.items():
        both = scores.merge(released[["rm", "prompt", "word", "score"]], on=["rm", "prompt", "word"],
                            suffixes=("_live", "_released"))
        rho = (both.groupby(["rm", "prompt"])
               .apply(lambda t: t["score_live"].corr(t["score_released"], method="spearman"))
               .rename("spearman").reset_index())
        rows.append(rho.assign(tokenisation=tokenisation))
    agreement_released = pd.concat(rows, ignore_index=True)
    chapter.table(agreement_released, "live_vs_released")
    summary["live_vs_released_median_spearman"] = {
        f"{rm}|{tok}": value for (rm, tok), value in
        agreement_released.groupby(["rm", "tokenisation"])["spearman"].median().items()}
    comparison = agreement_released.pivot_table(index="rm", columns="tokenisation", values="spearman",
                                                aggfunc="median")
else:
    comparison = pd.DataFrame({"note": [f"none of this profile's reward models ({', '.join(rm_keys)}) is in the "
                                        "release; run the paper profile to compare"]})
comparison

# %% tags=["remove-input"]
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - The released scores reproduce the direction of Figure 1: on positive prompts Llama-based RMs rank
#   agency nouns better and communion nouns worse than Gemma-based RMs, and the pattern reverses on
#   negative prompts. The gaps are a few ranks out of 263.
# - The authors' moral-foundations figure dropped `Sanctity_Vice` before ranking; that changes the
#   Sanctity panel's direction. Here every column is kept.
# - RMs agree strongly on which nouns are good answers; same-family RMs agree more.
# - The scoring engine gives the full forward pass's scores, places vocabulary tokens by id, and
#   records everything that made a score; bfloat16 and batch-size noise set the resolution of any
#   comparison.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it. They reuse the scores this chapter already holds (no model is run again),
# so they run in seconds, and each ends with checks (`assert`) that its numbers are consistent with the
# chapter's.

# %% [markdown]
# ### Exercise 1. Leave one reward model out
#
# The family gaps of Figure 1 average over four Gemma-based and six
# Llama-based RMs. Drop each released RM in turn, recompute the gap table with `ranks.family_gap`
# from the remaining nine, and record the positive-prompt gaps for agency and communion. Does the
# direction of both gaps survive every omission? Which RM, when dropped, moves the gaps the most,
# and what does that say about how many RMs carry the effect?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
leave_one_out = []
for rm in medians["rm"].unique():
    kept = medians[medians["rm"] != rm]
    gaps = ranks.family_gap(kept)
    positive_rows = gaps[gaps["framing"] == "positive"].set_index("category")
    leave_one_out.append({"dropped": release.SHORT_LABELS.get(rm, rm), "family": registry.family_of(rm),
                          "RMs left": kept["rm"].nunique(),
                          "gemma mean, agency": positive_rows.loc["Agency", "gemma"],
                          "llama mean, agency": positive_rows.loc["Agency", "llama"],
                          "agency gap": gap_value(gaps, "positive", "Agency"),
                          "communion gap": gap_value(gaps, "positive", "Communion")})
leave_one_out = pd.DataFrame(leave_one_out)
leave_one_out["same direction"] = ((np.sign(leave_one_out["agency gap"]) == np.sign(pos_agency))
                                   & (np.sign(leave_one_out["communion gap"]) == np.sign(pos_communion)))
print(f"Both positive-prompt gaps keep their direction in {int(leave_one_out['same direction'].sum())} of "
      f"{len(leave_one_out)} omissions (full data: agency {pos_agency:.1f}, communion {pos_communion:.1f}).")
display(leave_one_out.drop(columns=["gemma mean, agency", "llama mean, agency"]).round(2))

assert len(leave_one_out) == n_rms and (leave_one_out["RMs left"] == n_rms - 1).all()
full_positive = gap[gap["framing"] == "positive"].set_index("category")
# dropping an RM of one family leaves the other family's mean untouched ...
for family, other in (("gemma", "llama"), ("llama", "gemma")):
    rows = leave_one_out[leave_one_out["family"] == family]
    assert np.allclose(rows[f"{other} mean, agency"], full_positive.loc["Agency", other])
    # ... and, averaged over the omissions within a family, gives back that family's full mean
    assert np.isclose(rows[f"{family} mean, agency"].mean(), full_positive.loc["Agency", family])

# %% [markdown]
# ### Exercise 2. Does the phrasing matter?
#
# Every adjective and frame is asked in three phrasings: "What, in
# one word, ...?", "What, in a single word, ...?" and "... Please answer in one word only." (the
# prompt table's `concision` column: `one`, `single`, `please`). Recompute the released family gaps
# separately for the 18 prompts of each phrasing. Is the direction of each panel the same under
# all three? Explain why the three gaps must average exactly to the gap over all 54 prompts.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
concision = prompts.all_prompts().set_index("key")["concision"]
by_phrasing = []
for phrasing, part in medians.assign(concision=medians["prompt"].map(concision)).groupby("concision", sort=False):
    gaps = ranks.family_gap(part).assign(concision=phrasing, prompts=part["prompt"].nunique())
    by_phrasing.append(gaps)
by_phrasing = pd.concat(by_phrasing, ignore_index=True)
phrasing_table = by_phrasing.pivot_table(index=["framing", "category"], columns="concision",
                                         values="llama_minus_gemma")[list(prompts.CONCISION)]
phrasing_table["all 54 prompts"] = gap.set_index(["framing", "category"])["llama_minus_gemma"]
phrasing_table["same sign in all three"] = (np.sign(phrasing_table[list(prompts.CONCISION)])
                                            .eq(np.sign(phrasing_table["all 54 prompts"]), axis=0).all(axis=1))
display(phrasing_table.round(2))

prompts_per_phrasing = len(prompts.all_prompts()) // len(prompts.CONCISION)
assert (by_phrasing.groupby("concision")["prompts"].first() == prompts_per_phrasing).all()
# every phrasing has the same number of prompts per framing, so the mean of the three gaps is the full gap
assert np.allclose(phrasing_table[list(prompts.CONCISION)].mean(axis=1), phrasing_table["all 54 prompts"])

# %% [markdown]
# ### Exercise 3. Are paraphrases the same question to an RM?
#
# For every RM, correlate (Spearman, over the
# nouns) its scores under the headline prompt with its scores under each other positive prompt.
# Do it for the released RMs and for this profile's live RMs. Do the live RMs treat paraphrases as
# one question as consistently as the paper's RMs do? What would low correlations mean for the
# paper's practice of treating the 54 prompts as observations?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
def paraphrase_agreement(scores: pd.DataFrame, source: str) -> pd.DataFrame:
    """Per RM: Spearman correlation over words of the headline prompt's scores with each other positive prompt's."""
    positive_scores = scores[scores["framing"] == "positive"]
    reference = (prompts.HEADLINE if prompts.HEADLINE in set(positive_scores["prompt"])
                 else positive_scores["prompt"].iloc[0])
    rows = []
    for rm, part in positive_scores.groupby("rm", sort=False):
        wide = part.pivot_table(index="word", columns="prompt", values="score")
        rho = wide.corrwith(wide[reference], method="spearman")
        assert np.isclose(rho[reference], 1.0)  # a prompt agrees with itself
        rho = rho.drop(reference)
        rows.append({"scores": source, "rm": release.SHORT_LABELS.get(rm, rm), "other prompts": len(rho),
                     "nouns": len(wide), "median rho": rho.median(), "lowest rho": rho.min()})
    return pd.DataFrame(rows)


paraphrases = pd.concat([paraphrase_agreement(released, "released"), paraphrase_agreement(live, "live")],
                        ignore_index=True)
display(paraphrases.round(3))
medians_by_source = paraphrases.groupby("scores", sort=False)["median rho"].median()
print("median over RMs of the median correlation: "
      + ", ".join(f"{source} {value:.2f}" for source, value in medians_by_source.items()))

n_positive_all = int((prompts.all_prompts()["framing"] == "positive").sum())
n_positive_live = int((prompt_table["framing"] == "positive").sum())
assert (paraphrases.loc[paraphrases["scores"] == "released", "other prompts"] == n_positive_all - 1).all()
assert (paraphrases.loc[paraphrases["scores"] == "live", "other prompts"] == n_positive_live - 1).all()
assert len(paraphrases) == n_rms + len(rm_keys)
compared = paraphrases[paraphrases["other prompts"] > 0]  # a run with one positive prompt has nothing to compare
assert (compared["lowest rho"] <= compared["median rho"]).all()
assert compared[["median rho", "lowest rho"]].stack().between(-1, 1).all()
