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
# # 5. Same data, different bases: training reward models
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/05_ablation_training.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/05_ablation_training.ipynb) the version for students, without the
# solutions to its exercises.
#
# ```{admonition} Hardware
# :class: tip
# The `demo` profile trains 18 small reward models on a CPU in about a quarter of an hour the first
# time. The `paper` profile trains 2-3B reward models on up to 106k pairs and needs a GPU for many
# hours. See {doc}`hardware` for memory, run times and how to run one model at a time on Colab.
# ```
#
# Chapters 2 to 4 found the agency-communion difference in published reward models and traced it to
# their base models. But published reward models differ in more than their base: their preference data,
# recipes and developers differ too. The study {cite}`christian2026reward` (its section 6, Figures 4
# and 5) removes those differences: it trains reward models from a Gemma and a Llama base on **identical
# data with an identical recipe**, scores every checkpoint on the headline question, and asks whether the
# difference is there, whether training erases it, and how much data that takes.
#
# This chapter
#
# 1. reads the authors' released rank tables (their Figure 4) and reports what is odd in them;
# 2. runs the same experiment live, with **several seeds per condition** (the paper had one), so the
#    spread between seeds tells us how much of a difference is noise;
# 3. shows which words moved most during training (their Figure 5).

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
BASES = None  # list of base-model keys or Hugging Face ids; None: the profile's (paper: gemma-2-2b-it, Llama-3.2-3B-Instruct)
SIZES = None  # list of training-set sizes in pairs; None: the profile's (paper: every 64th, 32nd, 16th and
#               8th untied pair of Unified-Feedback, about 13k to 106k; on Skywork the whole set, as the authors)
SEEDS = None  # list of seeds; None: the profile's (tiny and demo: two; paper: three)
SCORE_EVERY = None  # score the model every N optimiser steps; None: the profile's (paper: 1,000)
DATA = None  # preference data: "harmless-base/test.jsonl.gz" (demo, tiny), "llm-blender/Unified-Feedback" or
#              "Skywork/Skywork-Reward-Preference-80K-v0.2" (paper); None: the profile's
RELEASED = "auto"  # the authors' checkpoint files (Figure 5): "auto" draws them where they can be had, "required" stops without them
TOKENISATION = None  # "authors" (chat rendered to text and tokenised again: two BOS) or "single-bos"; None: the profile's
CHAT_DATE = None  # the date Llama 3.1/3.2 templates print, e.g. "26 Jul 2024", or "unset" (the day of the run); None: the profile's

# %% tags=["hide-input"]
import json
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from transformers.utils import logging as hf_logging

from rmbias import ablation, corpora, data, memory, models, plots, ranks, registry, training
from rmbias.chapter import Chapter

# %%
chapter = Chapter.open("05_ablation_training", PROFILE, bases=BASES, sizes=SIZES, seeds=SEEDS, score_every=SCORE_EVERY,
                       tokenisation=TOKENISATION, chat_date=CHAT_DATE)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
grid = ablation.Ablation.for_profile(settings, data=DATA)
# Read the preference data once for every run, and check the sizes against it before any model loads.
grid, pool = ablation.prepare(grid)
# Every base must fit the device for training (the run trains where transformers finds a GPU).
fit = memory.check_fit(grid.bases, dtype=grid.recipe.dtype, device="auto", reward=True, purpose="training")

# %% tags=["hide-input"]
plots.setup()
hf_logging.set_verbosity_error()
CATEGORIES = ("Agency", "Communion")
pd.Series({"bases": ", ".join(grid.bases), "training pairs": ", ".join(f"{n:,}" for n in grid.sizes),
           "pairs available": f"{pool.n_available:,}", "seeds": ", ".join(map(str, grid.seeds)),
           "data": grid.recipe.data,
           "data revision": pool.info.get("revision") or pool.info.get("source", {}).get("commit", "unrecorded"),
           "prompt": grid.prompt, "LoRA": f"r={grid.recipe.lora_r}, alpha={grid.recipe.lora_alpha}",
           "learning rate": grid.recipe.learning_rate, "pairs per step": grid.recipe.effective_batch,
           "epochs": grid.recipe.epochs, "scored every": f"{grid.score_every} steps",
           "chats": f"{grid.recipe.tokenisation}, date {grid.recipe.chat_date}"}, name=PROFILE).to_frame()

# %% tags=["remove-input"]
summary["fit_check"] = memory.fit_summary(fit)

# %% [markdown]
# ## The authors' runs, as released
#
# The authors released one small table per condition: the median rank of the agency and of the
# communion token variants at each checkpoint, for reward models trained from gemma-2-2b-it,
# Llama-3.2-3B-Instruct and Qwen2.5-3B-Instruct {cite}`qwenteam2024qwen` on subsets of Unified-Feedback
# {cite}`yang2024regularizing` and on Skywork-Reward-Preference-80K {cite}`liu2024skywork`.
# `rmbias.ablation.released_rank_tables` reads them with the data sizes from the authors' own plotting
# script and checks them before anything is drawn.

# %%
released, report = ablation.released_rank_tables()
files = pd.DataFrame(report["files"]).T
files["implied_pairs_k"] = files["final_checkpoint"] * 16 / 2 / 1000  # 16 pairs a step, 2 epochs
display(files[["data_size_k", "rows", "distinct_rows", "duplicate_rows", "missing_base_model", "final_checkpoint",
               "implied_pairs_k"]].rename_axis("file"))
identical = report["identical_files"]

# %% tags=["remove-input"]
uf100 = report["files"]["rank_results_uf_100.csv"]
chapter.number("rel_identical", " and ".join(f"`{n}`" for n in identical[0]) if identical else "none", display=False)
chapter.number("rel_uf100_rows", int(uf100["rows"]), display=False)
chapter.number("rel_uf100_distinct", int(uf100["distinct_rows"]), display=False)
chapter.number("rel_uf13_final", int(report["files"]["rank_results_uf_13.csv"]["final_checkpoint"]), display=False)
chapter.number("rel_uf13_implied", float(files.loc["rank_results_uf_13.csv", "implied_pairs_k"]), display=False)
summary["released_report"] = {"identical_files": identical,
                              "files": {k: {kk: vv for kk, vv in v.items() if kk != "models"} for k, v in report["files"].items()}}

# %% [markdown]
# Three things are wrong with the release, and a reader of Figure 4 should know them:
#
# - {glue:text}`rel_identical` are byte-identical, and both hold models named `*_unified27k_*`. Their
#   last checkpoint is step {glue:text}`rel_uf13_final`, which at 16 pairs a step over two epochs is
#   {glue:text}`rel_uf13_implied:.1f`k pairs: the 27k run. The paper's 13k point is the 27k point drawn
#   twice, so the figure has one data size fewer than it shows. We drop the 13k file below.
# - `rank_results_uf_100.csv` has {glue:text}`rel_uf100_rows` rows but only {glue:text}`rel_uf100_distinct`
#   distinct ones: every row is repeated hundreds of times (with identical values, so nothing is lost by
#   dropping the copies; a script that averaged them would still be right, one that counted them would not).
# - The off-the-shelf GRM pair is plotted at "632k" on the axis while the same script's manifest says
#   550k, and the models' cards describe a 550k mixture followed by Skywork; the paper's text says "more
#   than 600k". The point is a different method (GRM, not plain Bradley-Terry) on different data, so it
#   is shown apart. Qwen's rows have no `base_model`; the family is read from the model name.

# %%
clean = released[released["file"] != "rank_results_uf_13.csv"] if identical else released
final = clean[clean["checkpoint"] == clean.groupby("file")["checkpoint"].transform("max")]

# %% tags=["hide-input"]
fig = plots.released_ablation(final, CATEGORIES)
chapter.figure(fig, "figure4b_released")
plt.show()

# %%
# Gemma minus Llama median rank per condition and category (positive: the Llama model ranks it better)
gap_options = dict(model="model_id", first="llama", second="gemma")
released_gap = ranks.family_gap(final, by=["data_size", "data_source", "method", "category"], **gap_options)

# %% tags=["remove-input"]
chapter.table(released_gap, "released_family_gap")
gap = released_gap.set_index(["data_source", "data_size", "category"])["gemma_minus_llama"]
for category in CATEGORIES:
    chapter.number(f"rel_gap_27_{category}", float(gap[("Unified-Feedback", 27, category)]), display=False)
    chapter.number(f"rel_gap_106_{category}", float(gap[("Unified-Feedback", 106, category)]), display=False)
    chapter.number(f"rel_gap_grm_{category}", float(gap[("Unified-Feedback + Skywork", 550, category)]), display=False)
chapter.number("rel_n_tokens", 1365, display=False)
bt = released_gap[released_gap["method"] == "BT"].pivot_table(index="data_size", columns="category",
                                                               values="gemma_minus_llama")
paper_sign = (bt["Agency"] > 0) & (bt["Communion"] < 0)
chapter.number("rel_gap_abs_min", float(bt.abs().min().min()), display=False)
chapter.number("rel_gap_abs_max", float(bt.abs().max().max()), display=False)
chapter.number("rel_paper_sign_sizes", ", ".join(f"{k}k" for k in bt.index[paper_sign]) or "none", display=False)
chapter.number("rel_other_sign_sizes", ", ".join(f"{k}k" for k in bt.index[~paper_sign]) or "none", display=False)
summary["released_family_gap"] = released_gap.to_dict("records")

# %% [markdown]
# Each point is the median rank (1 = most preferred; lower on the page is better, so the axis is flipped)
# of one category's token variants for one reward model at its last checkpoint: circles for the
# Unified-Feedback subsets, triangles for Skywork, diamonds for the off-the-shelf GRM pair. Colours are
# base families (Qwen, from the paper's appendix, paler). The Gemma-minus-Llama gap in agency rank is
# {glue:text}`rel_gap_27_Agency:.0f` at 27k pairs and {glue:text}`rel_gap_106_Agency:.0f` at 106k; for
# communion it is {glue:text}`rel_gap_27_Communion:.0f` and {glue:text}`rel_gap_106_Communion:.0f` (a
# positive gap means the Llama model ranks the category better). The GRM pair keeps gaps of
# {glue:text}`rel_gap_grm_Agency:.0f` (agency) and {glue:text}`rel_gap_grm_Communion:.0f` (communion). With
# one seed per point, nothing here says how much of each gap a second seed would reproduce; the live runs
# below measure that.

# %%
sky = clean[clean["file"] == "rank_results_sky_80k.csv"]

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, category in zip(axes, CATEGORIES):
    for family, rows in sky[sky["category"] == category].groupby("family"):
        rows = rows.sort_values("checkpoint")
        ax.plot(rows["checkpoint"], rows["median_rank"], "o-", ms=3, color=plots.FAMILY_COLOURS[family],
                label=family.title(), alpha=1 if family != "qwen" else 0.6)
    ax.set_title(category)
    ax.set_xlabel("optimiser step (16 pairs each)")
axes[0].invert_yaxis()
axes[0].set_ylabel("median rank (1 = best)")
axes[0].legend(frameon=False)
chapter.figure(fig, "figure4a_released_skywork")
plt.show()

# %%
sky_gap = ranks.family_gap(sky, by=["checkpoint", "category"], **gap_options)
sky_gap = sky_gap.set_index(["checkpoint", "category"])["gemma_minus_llama"].unstack()

# %% tags=["remove-input"]
chapter.number("sky_first_step", int(sky_gap.index.min()), display=False)
chapter.number("sky_last_step", int(sky_gap.index.max()), display=False)
for category in CATEGORIES:
    chapter.number(f"sky_gap_first_{category}", float(sky_gap[category].iloc[0]), display=False)
    chapter.number(f"sky_gap_last_{category}", float(sky_gap[category].iloc[-1]), display=False)

# %% [markdown]
# The Skywork runs (Figure 4a) are the only trajectories released: the median ranks at every 1,000th
# step. The Gemma-minus-Llama gap goes from {glue:text}`sky_gap_first_Agency:.0f` (agency) and
# {glue:text}`sky_gap_first_Communion:.0f` (communion) at step {glue:text}`sky_first_step` to
# {glue:text}`sky_gap_last_Agency:.0f` and {glue:text}`sky_gap_last_Communion:.0f` at step
# {glue:text}`sky_last_step`. The release starts at step 1,000, after about 16,000 pairs; what happened
# before, including the untrained model's ranking, is not in it.

# %% [markdown]
# ## Live runs: the experiment with seeds
#
# `rmbias.ablation` trains every base x data size x seed of the grid with `rmbias.training` (TRL's
# `RewardTrainer` {cite}`vonwerra2020trl`, LoRA {cite}`hu2022lora` through peft {cite}`mangrulkar2022peft`,
# the Bradley-Terry loss {cite}`bradley1952rank`; chapter 2's code) and, through a training callback, scores
# the model being trained with the scoring engine at step 0 and at fixed steps. Every base scores the same
# candidates, placed by token id as the one-token reply to the headline question: decoded token strings
# whose form after removing non-ASCII characters, spaces and case (the authors' rule) is an entry of the
# expanded Big Two dictionary. Which strings depends on the profile: {glue:text}`candidate_rule`.
#
# The recipe below is set beside the authors' own training scripts, which the paper profile follows
# setting for setting; the demo profile keeps the miniature of chapter 2's reward models (two of this
# grid's runs), which differs from them almost everywhere by design.

# %%
display(ablation.recipe_comparison(grid).style.hide(axis="index"))

# %%
tokenizers = {base: models.load_tokenizer(base) for base in grid.bases}
candidates = ablation.grid_candidates(grid, tokenizers)
candidates.groupby("category").head(4)

# %% tags=["remove-input"]
counts = candidates["category"].value_counts()
chapter.number("candidate_rule", "the strings of the authors' list of tokens shared by the Llama 3, Gemma 2 and Qwen 2.5 "
               "vocabularies (their `token_intersection.csv`) that both bases have, the paper's set"
               if grid.candidates == "authors" else "the strings both bases' own vocabularies share (this profile's bases "
               "do not have the paper's vocabularies, so the authors' list does not fit them)", display=False)
chapter.number("n_candidates", len(candidates), display=False)
chapter.number("n_cand_agency", int(counts.get("Agency", 0)), display=False)
chapter.number("n_cand_communion", int(counts.get("Communion", 0)), display=False)
chapter.number("n_cand_words", int(candidates["word"].nunique()), display=False)
chapter.number("n_authors_candidates", len(ablation.authors_candidates()), display=False)
chapter.table(candidates, "candidates", bases=list(grid.bases), prompt=grid.prompt,
                      candidate_set=grid.candidates, missing=candidates.attrs.get("missing", {}))

# %% [markdown]
# The candidates are {glue:text}`n_candidates` token variants ({glue:text}`n_cand_agency` agency,
# {glue:text}`n_cand_communion` communion) of {glue:text}`n_cand_words` dictionary entries; the authors'
# list gives {glue:text}`n_authors_candidates` (the paper's {glue:text}`rel_n_tokens`). Scores are ranked
# within each checkpoint over all of them, and each category is summarised by its median rank, as in the
# authors' script.
#
# The runs are kept in a cache folder named by a fingerprint of the grid: a later build reuses them, and an
# interrupted run continues from its last LoRA checkpoint, with the steps already scored left as they are.
# The preference data are read once for the whole grid, and only the pairs a run uses become Python
# objects. Where the recipe trains only the top layers (the demo's), the layers below are the base's at
# every step and for every seed, so what they make of the candidates is computed once per base and each
# later scoring runs only the trained layers (`rmbias.scoring.FrozenTrunk`; right after the first
# recording, a replay is compared with the whole pass, and a disagreement switches the reuse off). In the demo profile the recipe is the miniature of chapter 2's reward models, which are this
# grid's runs on the most data with the first seed (LoRA on the top decoder layers, learning rates far above
# the paper's, short messages); the paper profile uses the authors' recipe on their data.

# %% tags=["remove-input"]
from importlib.metadata import version

dictionary = corpora.big2_expanded()
repeated = set(dictionary.loc[dictionary["word"].duplicated(), "word"])
chapter.number("n_dict_repeats", len(repeated), display=False)
chapter.number("n_cand_repeats", int(candidates["word"].isin(repeated).sum()), display=False)
chapter.number("n_seeds", len(grid.seeds), display=False)
chapter.number("our_versions", ", ".join(f"{name} {version(name)}" for name in ("transformers", "trl", "peft")), display=False)

# %% [markdown]
# ### What still differs from the authors' runs
#
# The paper profile follows the authors' training scripts in every setting of the table above. What it
# does not reproduce, and why:
#
# | | the authors | the paper profile | why |
# |---|---|---|---|
# | seeds | one run per condition | {glue:text}`n_seeds` per condition | the spread between seeds is what tells a base's effect from noise |
# | model kept | the checkpoint with the best held-out accuracy (`load_best_model_at_end`) | every scored checkpoint; held-out accuracy of the last | Figure 4 reads checkpoints, not one final model |
# | attention | `sdpa` on Unified-Feedback, under which transformers 4.43 skips Gemma 2's logit soft-capping; `eager` on Skywork | `eager` for Gemma 2, the library's default for Llama | transformers 5 gives Gemma 2 no `sdpa` path, and soft-capping is part of the model |
# | tokenizer | the slow sentencepiece tokenizer for Gemma (`use_fast=False`) | the fast one | transformers 5 ignores `use_fast` and always loads the fast tokenizer |
# | optimiser | `adamw_hf` in transformers 4.43 | the same algorithm, re-implemented (`rmbias.training.LegacyAdamW`) | transformers 5 removed `adamw_hf` |
# | pad token | Llama: a new `[PAD]` token added to the vocabulary; Gemma: `<pad>` | a special token that no chat uses | padding never enters the loss or the pooled position either way; a new token would resize the embeddings |
# | pairs quoting the pad token | trained on, and pooled at the token before the first pad | dropped and counted | the reward would be read at the wrong token |
# | irregular pairs (multi-turn arena chats whose earlier replies differ, identical replies) | trained on | trained on too, and counted | not a difference: listed because the demo and tiny grids drop such pairs |
# | Skywork's held-out pairs | `train_test_split` without a seed | the same fraction, drawn with a fixed seed | the split is reproducible |
# | repeated dictionary entries | {glue:text}`n_dict_repeats` words appear twice in `dict_big2_expanded.csv`, so their variants count twice in the authors' medians | each variant once ({glue:text}`n_cand_repeats` of the candidates here are affected) | a word should not weigh double because its entry was pasted twice |
# | libraries | transformers 4.43.4, TRL 0.8.5, peft 0.10.0 | the book's pins ({glue:text}`our_versions`) | numerics of kernels and defaults may differ slightly |
#
# The unset date matters for the Llama 3.2 base only: its template prints the day of the run, as the
# authors' did, so a rerun's chats differ from theirs in that one line.

# %%
directory = ablation.grid_directory(grid)

# %% tags=["remove-input"]
started = time.perf_counter()

# %%
folders = ablation.run_grid(grid, directory, candidates, pool=pool)

# %% tags=["remove-input"]
run_seconds = time.perf_counter() - started

# %%
scores = pd.concat([ablation.read_scores(f) for f in folders], ignore_index=True)
family = {base: registry.family_of(base) for base in grid.bases}
label = {base: registry.spec(base).label for base in grid.bases}
table = ablation.rank_table(scores, family)
records = []
for folder in folders:
    done = json.loads((folder / "complete.json").read_text())
    run = training.run_summary(training.read_record(folder / "model"))
    records.append({"model": label[done["base"]], "data_size": done["size"], "seed": done["seed"],
                    **{k: v for k, v in run.items() if k != "base"}})
records = pd.DataFrame(records)
records.style.format({"train_seconds": "{:.0f}", "final_loss": "{:.3f}", "heldout_accuracy": "{:.3f}",
                      "ci_low": "{:.3f}", "ci_high": "{:.3f}"}, na_rep="not measured").hide(axis="index")

# %% tags=["remove-input"]
chapter.table(table, "live_rank_table", grid=grid.as_dict(), fingerprint=grid.fingerprint())
chapter.table(records, "live_runs")
chapter.number("n_runs", len(folders), display=False)
chapter.number("train_minutes", float(records["train_seconds"].sum() / 60), display=False)
accuracy = records.dropna(subset=["heldout_accuracy"])
chapter.number("acc_min", float(accuracy["heldout_accuracy"].min()), display=False)
chapter.number("acc_max", float(accuracy["heldout_accuracy"].max()), display=False)
chapter.number("n_heldout", int(accuracy["heldout_pairs"].max()) if len(accuracy) else 0, display=False)
chapter.number("n_pad_literal", int(records["dropped_pad_literal"].sum()), display=False)
chapter.number("n_over_length", int(records["dropped_over_length"].sum()), display=False)
chapter.number("n_truncated", int(records["truncated"].sum()), display=False)
chapter.number("over_length_rule", "cut to their first" if grid.recipe.over_length == "truncate" else "dropped above", display=False)
chapter.number("max_length", int(grid.recipe.max_length), display=False)
summary["runs"] = records.to_dict("records")

# %% [markdown]
# The {glue:text}`n_runs` runs trained for {glue:text}`train_minutes:.1f` minutes in all (scoring
# included). Pairs longer than {glue:text}`max_length` tokens are {glue:text}`over_length_rule` that
# length: {glue:text}`n_truncated` were truncated and {glue:text}`n_over_length` dropped, summed over the
# runs. A pair whose text holds the pad token's own text (Gemma's pad token is the string `<pad>`, which
# the tokenizer reads as the pad token) would have its reward read early by padding-based pooling, so it
# is dropped and counted instead ({glue:text}`n_pad_literal` over the runs). Held-out pairwise accuracy (the share of {glue:text}`n_heldout` held-out pairs, the same for
# every run, whose chosen reply gets the higher reward) ranges from {glue:text}`acc_min:.2f` to
# {glue:text}`acc_max:.2f` for the runs on the most data. Chance is 0.5, and a miniature recipe on a CPU
# learns little, so read what follows as a demonstration of the method and of how large seed noise is,
# not as a test of the paper's claim; the paper profile runs the real experiment.

# %%
largest = max(grid.sizes)
traj = table[table["data_size"] == largest]

# %% tags=["remove-input"]
chapter.number("largest_size", int(largest), display=False)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, category in zip(axes, CATEGORIES):
    for base in grid.bases:
        rows = traj[(traj["model"] == base) & (traj["category"] == category)]
        colour = plots.FAMILY_COLOURS[family[base]]
        for _, run in rows.groupby("seed"):
            ax.plot(run["step"], run["median_rank"], color=colour, lw=0.8, alpha=0.45)
        mean = rows.groupby("step")["median_rank"].mean()
        ax.plot(mean.index, mean.values, "o-", color=colour, lw=2.2, label=f"{label[base]} (mean of seeds)")
    ax.set_title(category)
    ax.set_xlabel(f"optimiser step ({grid.recipe.effective_batch} pairs each)")
axes[0].invert_yaxis()
axes[0].set_ylabel(f"median rank of {len(candidates)} variants\n(1 = best)")
axes[0].legend(frameon=False, fontsize=9, loc="best")
chapter.figure(fig, "figure4a_live")
plt.show()

# %% [markdown]
# Each thin line is one seed of the runs on {glue:text}`largest_size` pairs, the thick line their mean;
# colours are base families as everywhere in the book, and the axis is flipped so that better ranks are
# higher. Step 0 is the untrained model: the base with a newly drawn score head, which is a random linear
# read-out of the base model's last hidden state. The seeds draw different heads, and the spread of the
# thin lines at step 0 is how much an untrained head alone moves a category's median rank.

# %%
def category_gaps(rank_table: pd.DataFrame) -> pd.DataFrame:
    """Agency minus communion median rank per run and step (negative: agency preferred)."""
    wide = rank_table.pivot_table(index=["model", "family", "data_size", "seed", "step"], columns="category",
                                  values="median_rank")
    return (wide["Agency"] - wide["Communion"]).rename("agency_minus_communion").reset_index()


gaps = category_gaps(table)
first_last = gaps[gaps["step"].isin([0]) | (gaps["step"] == gaps.groupby(["model", "data_size", "seed"])["step"].transform("max"))]
first_last = first_last.assign(when=np.where(first_last["step"] == 0, "step 0", "final"))
spread = (first_last.groupby(["model", "data_size", "when"])["agency_minus_communion"]
          .agg(mean="mean", sd="std", low="min", high="max", seeds="count").reset_index())
spread.pivot_table(index=["model", "data_size"], columns="when", values=["mean", "sd"]).round(1)

# %% tags=["remove-input"]
chapter.table(gaps, "live_category_gaps")
chapter.table(spread, "live_gap_spread")
step0 = spread[(spread["when"] == "step 0") & (spread["data_size"] == largest)]
chapter.number("step0_sd_max", float(step0["sd"].max()), display=False)
chapter.number("step0_range_max", float((step0["high"] - step0["low"]).max()), display=False)
summary["gap_spread"] = spread.to_dict("records")

# %% [markdown]
# The table gives, per base and data size, the agency-minus-communion median rank (negative: agency
# ranked better) at step 0 and at the last step, as the mean and standard deviation over seeds. At step 0,
# before any training, seeds alone spread one base's gap by up to {glue:text}`step0_range_max:.0f` ranks
# (standard deviation up to {glue:text}`step0_sd_max:.0f`). The paper's runs start from one head; a
# single-seed gap of that size would not tell a base apart from a lucky draw.

# %%
finals = ablation.final_steps(table)

# %% tags=["hide-input"]
fig = plots.ablation_finals(finals, grid.bases, grid.sizes, family, label, CATEGORIES)
chapter.figure(fig, "figure4b_live")
plt.show()

# %% [markdown]
# The live Figure 4b: each small dot is one seed's reward model after training on that many pairs, the
# squares are the mean over seeds with one standard deviation. Where the two bases' squares sit apart
# by more than their error bars at every size, the base decides the ranking; where the bars overlap, the
# seeds do not let us say which base ranks a category better.

# %%
final_gaps = gaps[gaps["step"] == gaps.groupby(["model", "data_size", "seed"])["step"].transform("max")]
by_size = final_gaps.pivot_table(index=["data_size", "seed"], columns="model", values="agency_minus_communion")
gemma = [b for b in grid.bases if family[b] == "gemma"]
llama = [b for b in grid.bases if family[b] == "llama"]
pair = (gemma[0], llama[0]) if gemma and llama else tuple(grid.bases[:2])
diff = (by_size[pair[0]] - by_size[pair[1]]).rename("difference").reset_index()
verdict = diff.groupby("data_size")["difference"].agg(
    mean="mean", sd="std", positive=lambda d: int((d > 0).sum()), seeds="count").reset_index()
verdict["se"] = verdict["sd"] / np.sqrt(verdict["seeds"])
verdict.round(1)

# %%
step0_gaps = (gaps[gaps["step"] == 0].drop_duplicates(["model", "seed"])
              .pivot_table(index="seed", columns="model", values="agency_minus_communion"))
step0_diff = step0_gaps[pair[0]] - step0_gaps[pair[1]]

# %% tags=["remove-input"]
chapter.table(verdict, "live_base_difference", pair=list(pair))
chapter.number("pair_a", label[pair[0]], display=False)
chapter.number("pair_b", label[pair[1]], display=False)
big = verdict.set_index("data_size").loc[largest]
chapter.number("diff_largest_mean", float(big["mean"]), display=False)
chapter.number("diff_largest_sd", float(big["sd"]), display=False)
chapter.number("diff_largest_positive", int(big["positive"]), display=False)
chapter.number("diff_largest_seeds", int(big["seeds"]), display=False)
consistent = int(((verdict["positive"] == verdict["seeds"]) | (verdict["positive"] == 0)).sum())
chapter.number("n_sizes_consistent", consistent, display=False)
chapter.number("n_sizes", len(verdict), display=False)
chapter.number("diff_step0_mean", float(step0_diff.mean()), display=False)
chapter.number("diff_step0_sd", float(step0_diff.std()), display=False)
chapter.number("diff_step0_positive", int((step0_diff > 0).sum()), display=False)
chapter.number("diff_step0_seeds", int(step0_diff.count()), display=False)
summary["base_difference"] = {"pair": list(pair), "by_size": verdict.to_dict("records"),
                              "step0": {"mean": float(step0_diff.mean()), "sd": float(step0_diff.std()),
                                        "positive": int((step0_diff > 0).sum()), "seeds": int(step0_diff.count())}}

# %% [markdown]
# The comparison the paper draws, with its uncertainty: for each data size and seed, the
# agency-minus-communion gap of {glue:text}`pair_a` minus that of {glue:text}`pair_b` (a positive difference
# means the second model leans further towards agency, the paper's direction for Llama against Gemma). On
# the most data it is {glue:text}`diff_largest_mean:.0f` ± {glue:text}`diff_largest_sd:.0f` (mean ± SD over
# seeds), positive for {glue:text}`diff_largest_positive` of {glue:text}`diff_largest_seeds` seeds. The sign
# agrees across all seeds at {glue:text}`n_sizes_consistent` of {glue:text}`n_sizes` data sizes. Before any
# training, at step 0, the same difference is already {glue:text}`diff_step0_mean:.0f` ±
# {glue:text}`diff_step0_sd:.0f`, positive for {glue:text}`diff_step0_positive` of
# {glue:text}`diff_step0_seeds` seeds: a random score head reading either base's last hidden state
# already orders the two categories differently, which is the paper's claim of inheritance in its most
# direct form. Comparing the two rows shows what the training in this profile did to that difference.

# %% [markdown]
# ## Which words moved (Figure 5)
#
# The paper's Figure 5 lists the words whose rank changed most between the first and the last checkpoint.
# As the authors did, `rmbias.ablation.rank_changes` averages each word's token variants, ranks the words
# at both checkpoints and takes the difference. The first checkpoint is the first one after step 0 (the
# paper's is after 1,000 steps, not the untrained model). With several seeds a word's move can be
# checked for consistency: the bars below are the mean over seeds, the whiskers one standard deviation.

# %%
moves = ablation.rank_changes(scores[scores["size"] == largest])
moves["model"] = moves["base"].map(label)
mean_moves = (moves.groupby(["model", "word", "category"])["rank_change"].agg(["mean", "std"]).reset_index())

# %% tags=["remove-input"]
chapter.table(moves, "live_rank_changes")

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, len(grid.bases), figsize=(5 * len(grid.bases), 6))
axes = np.atleast_1d(axes)
top_words = {}
for ax, base in zip(axes, grid.bases):
    top_words[label[base]] = plots.rank_change_bars(ax, mean_moves[mean_moves["model"] == label[base]],
                                                    value="mean", error="std")
    ax.set_title(label[base], color=plots.FAMILY_COLOURS[family[base]])
plots.category_legend(axes[0], loc="lower right")
fig.tight_layout()
chapter.figure(fig, "figure5_live")
plt.show()

# %%
movers = moves.groupby(["model", "word"])["rank_change"]
consistent_words = (movers.apply(lambda d: (d > 0).all() or (d < 0).all())).groupby("model").mean()

# %% tags=["remove-input"]
chapter.number("share_consistent_moves", float(consistent_words.mean()), display=False)
summary["figure5_top_words"] = top_words
summary["share_consistent_moves"] = consistent_words.to_dict()

# %% [markdown]
# Each panel is one base: the ten words that rose most and the ten that fell most between the first
# trained checkpoint and the last, on the runs with the most data, coloured by category (agency orange,
# communion green). Across all words, {glue:text}`share_consistent_moves:.0%` moved in the same direction
# in every seed; the rest of the moves flip sign from seed to seed, so a single run's list of movers
# (which is what the paper shows) mixes signal with noise.

# %% [markdown]
# ### Figure 5 from the authors' checkpoints
#
# The authors released the rewards behind their Figure 5: for each base (Gemma and Llama, and Qwen in
# their appendix), every vocabulary token scored on the headline question at each saved checkpoint of
# one training run. `rmbias.ablation.released_checkpoint_moves` reads those files (checked against the
# git blob ids of the pinned commit) and computes the rank changes as their figure script does: tokens
# in the authors' normal form, joined to the Big Two nouns, variants averaged, ranked at their first and
# last checkpoint. {glue:text}`released_fig5_status`

# %%
released, released_missing = data.gather(
    {fam: (lambda fam=fam: ablation.released_checkpoint_moves(fam)) for fam in ablation.RELEASED_CHECKPOINTS},
    RELEASED)

# %% tags=["hide-input"]
if released:
    fig, axes = plt.subplots(1, len(released), figsize=(4.2 * len(released), 6))
    axes = np.atleast_1d(axes)
    released_words = {}
    for ax, (fam, (fam_moves, info)) in zip(axes, released.items()):
        released_words[fam] = plots.rank_change_bars(ax, fam_moves)
        ax.set_title(f"{fam.capitalize()} (steps {info['steps'][0]:,} to {info['steps'][-1]:,})",
                     color=plots.FAMILY_COLOURS[fam])
    plots.category_legend(axes[0], loc="lower right")
    fig.tight_layout()
    chapter.figure(fig, "figure5_released")
    plt.show()
    chapter.table(pd.concat([m for m, _ in released.values()], ignore_index=True), "released_rank_changes", provenance={f: i for f, (_, i) in released.items()})
    summary["figure5_released"] = {"top_words": released_words,
                                   "provenance": {f: i for f, (_, i) in released.items()}}
    status = ("Each panel shows one base's ten words that rose most and ten that fell most over the authors' run, "
              "coloured by category (agency orange, communion green).")
else:
    status = ""

# %% tags=["remove-input"]
summary["figure5_released_missing"] = released_missing
chapter.number("released_fig5_status", " ".join(filter(None, [status, data.missing_note(released_missing,
                                                                                  "The released Figure 5")])), display=False)

# %% tags=["remove-input"]
summary["grid"] = grid.as_dict()
summary["fingerprint"] = grid.fingerprint()
summary["n_candidates"] = len(candidates)
summary["candidate_set"] = grid.candidates
summary["data_source"] = {k: v for k, v in pool.info.items() if not isinstance(v, list)}
summary["seconds"] = run_seconds
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - **The release.** The authors' ablation tables have a duplicated data size (the 13k file is the 27k
#   run), a file whose rows are repeated hundreds of times, and an inconsistent label for the GRM pair.
#   Without the duplicate, the released final checkpoints have the paper's sign (Llama better on agency,
#   Gemma better on communion) at {glue:text}`rel_paper_sign_sizes` pairs and not at
#   {glue:text}`rel_other_sign_sizes` ({glue:text}`rel_gap_106_Agency:.0f` for agency at 106k), while
#   the GRM pair keeps a gap: the paper's description, on one seed per point.
# - **Where the gap closes and where it does not (live runs).** In this profile the two bases differ in
#   the paper's direction before training ({glue:text}`diff_step0_mean:.0f` ranks at step 0) and after it
#   ({glue:text}`diff_largest_mean:.0f` ± {glue:text}`diff_largest_sd:.0f` on {glue:text}`largest_size`
#   pairs), with the same sign in every seed at {glue:text}`n_sizes_consistent` of
#   {glue:text}`n_sizes` data sizes. The miniature training barely beats chance on held-out pairs, so it
#   is too weak to close the gap, and this profile cannot say how much data would; the paper profile
#   runs the paper's data sizes.
# - **How sure we can be.** Before any training, seeds alone move one base's agency-minus-communion gap
#   by up to {glue:text}`step0_range_max:.0f` ranks here, and only {glue:text}`share_consistent_moves:.0%`
#   of the word moves behind Figure 5 keep their sign in every seed. The paper's final-checkpoint gaps
#   between Gemma and Llama are {glue:text}`rel_gap_abs_min:.0f` to {glue:text}`rel_gap_abs_max:.0f`
#   ranks with one seed each; whether that exceeds seed noise for its 2-3B models is not known from the
#   release, which is why the paper profile runs three seeds per condition.
# - **The code.** One training function serves chapter 2's reward models and this grid, and in the demo
#   profile chapter 2's two reward models are runs of this grid (the first seed on the most data), trained
#   once for both chapters; checkpoints are scored during training and runs resume where they stopped.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it.

# %% [markdown]
# ### Exercise 1. Mean instead of median
#
# The paper summarises each category by the *median* rank of its token
# variants. Recompute the final-step agency-minus-communion gap of every run with the *mean* rank and
# check whether the difference between the two bases keeps its sign in every seed.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
mean_rank = scores.assign(rank=ranks.within_ranks(scores, ["base", "size", "seed", "step"]))
means = (mean_rank.groupby(["base", "size", "seed", "step", "category"])["rank"].mean()
         .unstack("category").reset_index())
means["gap"] = means["Agency"] - means["Communion"]
last_mean = means[means["step"] == means.groupby(["base", "size", "seed"])["step"].transform("max")]
by_seed = last_mean.pivot_table(index=["size", "seed"], columns="base", values="gap")
mean_diff = (by_seed[pair[0]] - by_seed[pair[1]]).rename("difference (mean ranks)")
display(mean_diff.unstack("seed").round(1))
n = len(candidates)
assert mean_rank.groupby(["base", "size", "seed", "step"])["rank"].sum().eq(n * (n + 1) / 2).all()
assert means[["Agency", "Communion"]].stack().between(1, n).all()

# %% [markdown]
# ### Exercise 2. What one seed would have shown
#
# The paper trained one model per condition. For the largest data
# size, list for each seed on its own the difference between the two bases' gaps, as a one-seed study
# would have reported it. How far apart are the smallest and the largest of these "findings"?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
one_seed = diff[diff["data_size"] == largest].set_index("seed")["difference"]
display(one_seed.rename("one-seed finding").to_frame().round(1))
print(f"one-seed findings range from {one_seed.min():.0f} to {one_seed.max():.0f} ranks "
      f"(a spread of {one_seed.max() - one_seed.min():.0f})")
assert np.isclose(one_seed.mean(), verdict.set_index("data_size").loc[largest, "mean"])
assert int((one_seed > 0).sum()) == int(verdict.set_index("data_size").loc[largest, "positive"])

# %% [markdown]
# ### Exercise 3. Train with another seed
#
# Add one more seed for the smallest data size, for both bases (a run is cached
# like the others, so this costs about a minute once on a CPU). Does the new seed put the two bases in
# the same order as the seeds of the grid?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
smallest, new_seed = min(grid.sizes), max(grid.seeds) + 1
extra = [ablation.train_run(grid, base, smallest, new_seed, candidates,
                            directory / ablation.run_name(base, smallest, new_seed), pool=pool) for base in grid.bases]
extra_table = ablation.rank_table(pd.concat([ablation.read_scores(f) for f in extra], ignore_index=True), family)
extra_gaps = category_gaps(ablation.final_steps(extra_table)).set_index("model")["agency_minus_communion"]
new_difference = extra_gaps[pair[0]] - extra_gaps[pair[1]]
earlier = verdict.set_index("data_size").loc[smallest]
print(f"seed {new_seed}: difference {new_difference:.0f}; seeds {list(grid.seeds)}: "
      f"{int(earlier['positive'])} of {int(earlier['seeds'])} positive, mean {earlier['mean']:.0f}")
assert 0 in set(extra_table["step"])
assert extra_table.groupby(["model", "step"])["n_words"].sum().eq(len(candidates)).all()
assert sorted(extra_table["model"].unique()) == sorted(grid.bases)
