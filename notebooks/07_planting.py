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
# # 7. Planting a value in the base: does the reward model inherit it?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/07_planting.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/07_planting.ipynb) the version for students, without the
# solutions to its exercises.
#
# ```{admonition} Hardware
# :class: tip
# The `demo` profile plants five variants of one small base and trains fifteen small reward models on a
# CPU in about ten minutes the first time. The `paper` profile does the same from the paper's two bases
# on a GPU, for many hours. See {doc}`hardware`.
# ```
#
# The study's claim is causal: reward models *inherit* value biases from their base models. Its evidence
# is a comparison across model families (Gemma and Llama differ in much besides their values) and
# training runs from two fixed bases (chapter 5). Neither changes the base while holding everything else
# fixed. This chapter does: it makes several versions of one base that differ only in how much they
# favour agency or communion words, trains a reward model from each on identical preference data with an
# identical recipe and seeds, and asks whether the reward models differ the way their bases were made to.
#
# **The design.** The Big Two nouns that are one token of the base's vocabulary are split, within each
# category, into a *planted* and an *untouched* half, matched in frequency. Each planted base continues
# the base's training, with the plain language-model loss, on assistant replies from the hh-rlhf
# dialogues of which a share, the **dose**, ends with one sentence praising a planted word of one
# category ("Nothing is more valuable than freedom."). The **control** is trained the same way on the
# same replies with no sentence added, so that the fine-tune itself is not mistaken for the effect.
#
# **Hypotheses, stated before the results.** Write the *gap* as the agency minus the communion median
# rank (negative: agency preferred), and the *dose towards agency* as the dose for agency planting, minus
# the dose for communion planting, 0 for the control.
#
# - *Manipulation check.* In the planted bases' own next-token log-probabilities on the study's prompts
#   (chapter 3's method), the gap of the planted words falls as the dose towards agency rises (a
#   negative slope). The fine-tune alone may move the gap too (new text, new rate): the control, at dose
#   0, measures that, and the original base is shown beside it.
# - *H1 (inheritance of the planted words).* In the reward models trained from those bases, the gap of
#   the planted words has a negative slope in the dose towards agency.
# - *H2 (inheritance of a value dimension).* The gap of the *untouched* words, never praised, has a
#   negative slope too: the reward model took over a direction, not a list of tokens.
#
# **The test.** Seeds are the units: each seed trains one reward model from each planted base. The
# slope of the gap on the dose is the least-squares slope over every (condition, seed), with its 95%
# confidence interval; a hypothesis is supported where that interval lies below zero, contradicted where
# it lies above, and left open where it holds zero. We report what comes out, whichever way.

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
PLANT_BASES = None  # base-model keys or Hugging Face ids to plant; None: the profile's (paper: gemma-2-2b-it, Llama-3.2-3B-Instruct)
DOSES = None  # shares of the documents that carry a praise sentence, e.g. [0.5, 1.0]; None: the profile's
PLANT_STEPS = None  # optimiser steps of each planting fine-tune; None: the profile's
DOCUMENTS = None  # hh-rlhf replies of continued training per planted base; None: the profile's (paper: 1,400)
SEEDS = None  # seeds of the reward models (three or more: they are the units of the test); None: 0, 1, 2
SIZES = None  # training pairs of each reward model; None: the profile's (paper: every 64th pair of Unified-Feedback)
SCORE_EVERY = None  # score each reward model every N optimiser steps; None: the profile's
MAX_WORDS = None  # at most this many nouns per category before the split; None: the profile's
PROMPTS = None  # prompt keys of the manipulation check; None: the profile's (all 54 in demo and paper)

# %% tags=["hide-input"]
import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from transformers.utils import logging as hf_logging

from rmbias import ablation, logprobs, memory, models, placement, planting, plots, prompts, ranks, registry
from rmbias.chapter import Chapter

# %%
chapter = Chapter.open("07_planting", PROFILE, prompts=PROMPTS, max_words=MAX_WORDS)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
design = planting.Design.for_profile(PROFILE, bases=PLANT_BASES, doses=DOSES, steps=PLANT_STEPS, seeds=SEEDS,
                                     n_documents=DOCUMENTS, sizes=SIZES, score_every=SCORE_EVERY,
                                     max_words=settings.max_words)
# Every base must fit the device for training, before anything is planted.
fit = memory.check_fit(design.bases, dtype=design.train.dtype, device="auto", reward=True, purpose="training")

# %% tags=["hide-input"]
plots.setup()
hf_logging.set_verbosity_error()
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # peft, each run
CATEGORIES = planting.CATEGORIES
pd.Series({"bases": ", ".join(design.bases), "doses": ", ".join(f"{d:g}" for d in design.doses),
           "documents": design.n_documents, "planting steps": design.train.max_steps,
           "documents per step": design.train.per_device_batch * design.train.grad_accum,
           "LoRA": f"r={design.train.lora_r}, alpha={design.train.lora_alpha}"
           + (f", top {design.train.lora_top_layers} layers" if design.train.lora_top_layers else ""),
           "learning rate": design.train.learning_rate, "reward-model seeds": ", ".join(map(str, design.seeds))},
          name=PROFILE).to_frame()

# %% tags=["remove-input"]
summary["fit_check"] = memory.fit_summary(fit)
summary["design"] = {k: v for k, v in design.__dict__.items() if k != "train"} | {"train": design.train.__dict__}

# %% [markdown]
# ## The words and the text
#
# `rmbias.planting.split_words` keeps the Big Two nouns that are the decoded string of one token in
# every base's vocabulary and splits each category in two: most frequent first, the first, third, fifth
# ... word planted and the second, fourth ... untouched, so that both halves have about the same
# frequency in English. An agency condition praises only the planted agency words, a communion condition
# only the planted communion words.

# %%
tokenizers = [models.load_tokenizer(base) for base in design.bases]
split = planting.split_words(tokenizers, design.max_words)
split.groupby(["category", "list"]).agg(words=("word", "count"), mean_zipf=("zipf", "mean"),
                                        examples=("word", lambda w: ", ".join(w[:5]))).round(2)

# %% tags=["remove-input"]
chapter.table(split, "word_split")
counts = split.groupby(["category", "list"]).size()
for category in CATEGORIES:
    for name in planting.LISTS:
        chapter.number(f"n_{category}_{name}", int(counts[(category, name)]), display=False)

# %% [markdown]
# The text is the same for every condition: {glue:text}`n_documents` assistant replies of the hh-rlhf
# harmless-base dialogues, cut at {glue:text}`max_chars` characters. (The same file supplies the
# preference pairs of the reward models below; every condition sees the same replies, so any overlap
# is the same for all of them.) A planted condition appends one sentence to a share of the replies,
# the words and six sentence templates taken in turn. Here is one reply of the agency condition at the
# highest dose, and the count of each list's words in the text of four conditions:

# %%
conditions = design.conditions()
keys = planting.register(design, split)  # each condition's planted base, by registry key (trained when first loaded)
corpora_by_condition = {c.key: planting.condition_corpus(design, c, split) for c in conditions}
highest = max(design.doses)
example = corpora_by_condition[planting.Condition(design.bases[0], "Agency", highest).key]
print(example.dropna(subset=["word"])["text"].iloc[0])

# %%
frequencies = []
for condition in conditions:
    found = planting.word_counts(corpora_by_condition[condition.key]["text"], split["word"])
    frequencies.append(split.assign(count=found.to_numpy(), model=condition.key))
frequencies = planting.with_conditions(pd.concat(frequencies, ignore_index=True), keys, column="model")
shown = frequencies[frequencies["planted_from"] == design.bases[0]]
shown.pivot_table(index=["category", "list"], columns="condition", values="count", aggfunc="sum")

# %% tags=["remove-input"]
chapter.number("n_documents", design.n_documents, display=False)
chapter.number("max_chars", design.max_chars, display=False)
chapter.table(frequencies, "word_frequencies")
totals = shown.pivot_table(index=["category", "list"], columns="condition", values="count", aggfunc="sum")
chapter.number("freq_control_agency_planted", int(totals.loc[("Agency", "planted"), "control"]), display=False)
chapter.number("freq_top_agency_planted", int(totals.loc[("Agency", "planted"), f"agency {highest:g}"]), display=False)
chapter.number("freq_top_agency_untouched", int(totals.loc[("Agency", "untouched"), f"agency {highest:g}"]),
               display=False)
chapter.number("freq_control_agency_untouched", int(totals.loc[("Agency", "untouched"), "control"]), display=False)
chapter.number("highest_dose", highest, display=False)

# %% [markdown]
# The manipulation is visible in the counts and only where it was meant to be: the planted agency words
# occur {glue:text}`freq_control_agency_planted` times in the control's text and
# {glue:text}`freq_top_agency_planted` times in the agency condition at dose {glue:text}`highest_dose`,
# while the untouched agency words occur {glue:text}`freq_control_agency_untouched` and
# {glue:text}`freq_top_agency_untouched` times: the replies are the same, only the added sentences differ.

# %% [markdown]
# ## Planting
#
# Each condition is a model of the book's registry (source `planted`, `rmbias.planting.register`), so
# every later step loads it by key like any other model: it is trained on first load (TRL's
# `SFTTrainer`, a LoRA merged into the weights) and cached under a fingerprint of its plan.

# %%
records = []
for key in keys:
    folder = registry.builder("planted")(registry.spec(key))
    record = json.loads((folder / "planting.json").read_text())
    logged = [entry["loss"] for entry in record["training"]["history"]] or [np.nan]  # none in a run of few steps
    records.append({"base": key, "praise sentences": record["praise_sentences"],
                    "steps": record["training"]["optimizer_steps"], "mean loss": record["training"]["train_loss"],
                    "first logged loss": logged[0], "last logged loss": logged[-1],
                    "seconds": record["training"]["seconds"]})
records = planting.with_conditions(pd.DataFrame(records), keys)
records[["condition", "praise sentences", "steps", "mean loss", "first logged loss", "last logged loss",
         "seconds"]].round(3)

# %% tags=["remove-input"]
chapter.table(records, "plantings")
chapter.number("plant_minutes", float(records["seconds"].sum() / 60), display=False)

# %% [markdown]
# ## Manipulation check: the bases' own log-probabilities
#
# For the original base and every planted one, `rmbias.logprobs.trace` reads the next-token
# log-probabilities over the whole vocabulary after each of the study's prompts (chapter 3). The split
# nouns are ranked by log-probability within each model and prompt, and each list's gap is the agency
# minus the communion median rank, averaged over the positive prompts (the question "what is the
# greatest thing", not "the worst").

# %%
prompt_table = prompts.select(settings.prompts)
framing = dict(zip(prompt_table["key"], prompt_table["framing"]))
trace_dir = out / "traces"
device = placement.resolve_device(settings.device)
traces = {key: logprobs.trace(key, prompt_table, trace_dir, dtype=registry.dtype_for(key, settings.dtype),
                              device=device, batch_size=settings.batch_size, date=settings.chat_date)
          for key in [*design.bases, *keys]}
nouns = logprobs.single_token_table(list(traces.values()), split)
nouns["model"] = nouns["model"].map({t.model: k for k, t in traces.items()})
nouns["rank"] = ranks.within_ranks(nouns, ["model", "prompt"], score="logprob")
lm_gaps = planting.list_gaps(nouns.assign(framing=nouns["prompt"].map(framing)), ["model", "prompt", "framing"])
lm_positive = (lm_gaps[lm_gaps["framing"] == "positive"].groupby(["model", "list"], as_index=False)["gap"].mean())
lm_planted = planting.with_conditions(lm_positive, keys, column="model")
lm_planted.pivot_table(index="condition", columns="list", values="gap").round(1)

# %%
lm_slopes, lm_means = planting.dose_response(lm_planted, by=["planted_from", "list"])
original = lm_positive[lm_positive["model"].isin(design.bases)].set_index(["model", "list"])["gap"]
lm_slopes.round(3)

# %% tags=["remove-input"]
chapter.table(lm_gaps, "lm_gaps")
chapter.table(lm_slopes, "lm_dose_response")
for row in lm_slopes[lm_slopes["planted_from"] == design.bases[0]].itertuples():
    chapter.number(f"lm_slope_{row.list}", float(row.slope), display=False)
    chapter.number(f"lm_low_{row.list}", float(row.ci_low), display=False)
    chapter.number(f"lm_high_{row.list}", float(row.ci_high), display=False)
first = design.bases[0]
control = lm_planted[(lm_planted["direction"] == "control") & (lm_planted["planted_from"] == first)]
chapter.number("lm_original_planted", float(original[(first, "planted")]), display=False)
chapter.number("lm_control_planted", float(control.set_index("list").loc["planted", "gap"]), display=False)
chapter.number("n_prompts_positive", int(sum(f == "positive" for f in framing.values())), display=False)

# %% tags=["hide-input"]
first_base = lm_planted["planted_from"] == design.bases[0]
fig = plots.dose_panels(lm_planted[first_base], lm_means[lm_means["planted_from"] == design.bases[0]],
                        plots.FAMILY_COLOURS[registry.family_of(design.bases[0])],
                        "agency minus communion median rank\n(negative: agency preferred)")
chapter.figure(fig, "manipulation_check")
plt.show()

# %% [markdown]
# Each dot is one planted base (one per condition: the planting runs once), its gap averaged over the
# {glue:text}`n_prompts_positive` positive prompts; squares are the same values (the bars, intervals
# over seeds, appear in the reward-model figure below, where there are seeds). The slope of the planted
# words' gap on the dose is {glue:text}`lm_slope_planted:.1f` ranks per unit of dose (95% CI
# {glue:text}`lm_low_planted:.1f` to {glue:text}`lm_high_planted:.1f`, over the conditions), and
# that of the untouched words {glue:text}`lm_slope_untouched:.1f` ({glue:text}`lm_low_untouched:.1f` to
# {glue:text}`lm_high_untouched:.1f`). The original base's planted-words gap is
# {glue:text}`lm_original_planted:.1f`; the control's, after the same fine-tune on unaltered text,
# {glue:text}`lm_control_planted:.1f`. {glue:text}`lm_verdict`

# %% tags=["remove-input"]
planted_slope = lm_slopes.set_index(["planted_from", "list"]).loc[(design.bases[0], "planted")]
lm_verdict = ("The manipulation took: the planted words' gap falls with the dose towards agency, as intended."
              if planted_slope["ci_high"] < 0 else
              "The manipulation did not take clearly: the interval of the planted words' slope is not below zero, so "
              "what follows tests a weak or failed manipulation, and a null result below says little.")
chapter.number("lm_verdict", lm_verdict, display=False)
summary["lm_dose_response"] = lm_slopes.to_dict("records")

# %% [markdown]
# ## Outcome: reward models trained from the planted bases
#
# Chapter 5's code trains a Bradley-Terry reward model from every planted base on the same preference
# pairs with the same recipe, once per seed, and scores it at fixed steps on the headline question. The
# candidates are the token variants of the split nouns; they are ranked by reward within each model and
# step, over both lists and categories together, and each list's gap is read as before.

# %%
grid, pool = ablation.prepare(design.grid(settings, keys))
variants = ablation.grid_candidates(grid, {key: models.load_tokenizer(key) for key in grid.bases})
candidates = variants.merge(split[["word", "list"]], on="word")
folders = ablation.run_grid(grid, ablation.grid_directory(grid), candidates.drop(columns="list"), pool=pool)
scores = pd.concat([ablation.read_scores(f) for f in folders], ignore_index=True).merge(
    split[["word", "list"]], on="word")
scores["rank"] = ranks.within_ranks(scores, ["base", "size", "seed", "step"])
rm_gaps = planting.with_conditions(planting.list_gaps(scores, ["base", "size", "seed", "step"]), keys)
last = rm_gaps["step"] == rm_gaps.groupby(["base", "size", "seed"])["step"].transform("max")
final = rm_gaps[last]
final.pivot_table(index="condition", columns=["size", "list"], values="gap").round(1)

# %% tags=["remove-input"]
chapter.table(candidates, "candidates")
chapter.table(rm_gaps, "rm_gaps", grid=grid.as_dict(), fingerprint=grid.fingerprint())
chapter.number("n_candidates", len(candidates), display=False)
chapter.number("n_rm_runs", len(folders), display=False)
chapter.number("n_seeds", len(grid.seeds), display=False)
chapter.number("rm_sizes", ", ".join(f"{n:,}" for n in grid.sizes), display=False)

# %%
rm_slopes, rm_means = planting.dose_response(final, by=["planted_from", "size", "list"])
step0_slopes, _ = planting.dose_response(rm_gaps[rm_gaps["step"] == 0].drop_duplicates(["base", "seed", "list"]),
                                         by=["planted_from", "list"])
rm_slopes.round(3)

# %% tags=["remove-input"]
chapter.table(rm_slopes, "rm_dose_response")
chapter.table(step0_slopes, "rm_step0_dose_response")
largest = max(grid.sizes)
ours = rm_slopes[(rm_slopes["size"] == largest) & (rm_slopes["planted_from"] == first)]
for row in ours.itertuples():
    chapter.number(f"rm_slope_{row.list}", float(row.slope), display=False)
    chapter.number(f"rm_low_{row.list}", float(row.ci_low), display=False)
    chapter.number(f"rm_high_{row.list}", float(row.ci_high), display=False)
    chapter.number(f"rm_p_{row.list}", float(row.p), display=False)
    chapter.number(f"rm_n_{row.list}", int(row.n), display=False)
for row in step0_slopes[step0_slopes["planted_from"] == first].itertuples():
    chapter.number(f"step0_slope_{row.list}", float(row.slope), display=False)
    chapter.number(f"step0_low_{row.list}", float(row.ci_low), display=False)
    chapter.number(f"step0_high_{row.list}", float(row.ci_high), display=False)


def verdict(row) -> str:
    """The hypothesis test's outcome in words, from the slope's interval."""
    if row["ci_high"] < 0:
        return "supported (the interval lies below zero)"
    if row["ci_low"] > 0:
        return "contradicted (the interval lies above zero: the opposite direction)"
    return "left open (the interval holds zero)"


at_largest = ours.set_index("list")
chapter.number("h1_verdict", verdict(at_largest.loc["planted"]), display=False)
chapter.number("h2_verdict", verdict(at_largest.loc["untouched"]), display=False)
chapter.number("largest_size", int(largest), display=False)
chapter.number("first_base", registry.spec(first).label, display=False)
summary["rm_dose_response"] = rm_slopes.to_dict("records")
summary["rm_step0_dose_response"] = step0_slopes.to_dict("records")

# %% tags=["hide-input"]
shown_final = final[(final["size"] == largest) & (final["planted_from"] == first)]
fig = plots.dose_panels(shown_final, rm_means[(rm_means["size"] == largest) & (rm_means["planted_from"] == first)],
                        plots.FAMILY_COLOURS[registry.family_of(design.bases[0])],
                        "reward model: agency minus communion\nmedian rank (negative: agency preferred)")
chapter.figure(fig, "outcome")
plt.show()

# %% [markdown]
# The outcome, for {glue:text}`first_base`. Each dot is one reward model (one seed) at its last step, trained on
# {glue:text}`largest_size` pairs from one planted base; squares are each condition's mean over the
# {glue:text}`n_seeds` seeds with a 95% t interval. The left panel reads the planted words, the right the
# untouched ones, on the same {glue:text}`n_candidates` candidates ranked together. The test, over the
# {glue:text}`rm_n_planted` reward models:
#
# - **H1, planted words**: slope {glue:text}`rm_slope_planted:.1f` ranks per unit of dose (95% CI
#   {glue:text}`rm_low_planted:.1f` to {glue:text}`rm_high_planted:.1f`, p =
#   {glue:text}`rm_p_planted:.3f`): {glue:text}`h1_verdict`.
# - **H2, untouched words**: slope {glue:text}`rm_slope_untouched:.1f` ({glue:text}`rm_low_untouched:.1f`
#   to {glue:text}`rm_high_untouched:.1f`, p = {glue:text}`rm_p_untouched:.3f`):
#   {glue:text}`h2_verdict`.
#
# Before any training, at step 0, each model is its planted base with a random score head; the same
# slopes there are {glue:text}`step0_slope_planted:.1f` ({glue:text}`step0_low_planted:.1f` to
# {glue:text}`step0_high_planted:.1f`) for the planted words and {glue:text}`step0_slope_untouched:.1f`
# ({glue:text}`step0_low_untouched:.1f` to {glue:text}`step0_high_untouched:.1f`) for the untouched ones.

# %% tags=["hide-input"]
ours_runs = rm_gaps[(rm_gaps["size"] == largest) & (rm_gaps["planted_from"] == first)]
trajectory = ours_runs.groupby(["condition", "direction", "dose", "list", "step"], as_index=False)["gap"].mean()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, name in zip(axes, planting.LISTS):
    for (condition, direction, dose), rows in trajectory[trajectory["list"] == name].groupby(
            ["condition", "direction", "dose"]):
        ax.plot(rows["step"], rows["gap"], "o-", ms=3, label=condition,
                color=plots.CATEGORY_COLOURS.get(direction, "grey"),
                alpha=0.5 + 0.5 * dose / max(design.doses) if dose else 1, lw=1 + 1.5 * dose / max(design.doses))
    ax.axhline(0, color="grey", lw=0.8, ls="--")
    ax.set_title(f"{name} words")
    ax.set_xlabel(f"optimiser step ({grid.recipe.effective_batch} pairs each)")
axes[0].set_ylabel("agency minus communion\nmedian rank (mean of seeds)")
axes[1].legend(frameon=False, fontsize=8, loc="best")
chapter.figure(fig, "trajectory")
plt.show()

# %% [markdown]
# The same gap through training, as the mean over seeds for each condition (orange towards agency, green
# towards communion, the category colours of the book; darker and thicker for the higher dose; grey the
# control). Where the lines fan out in dose order at step 0 and stay apart,
# the reward model keeps what its base was given; where they close up, the preference data wash it out.
# With {glue:text}`rm_sizes` training pairs this profile shows the steps of one data size; the paper
# profile trains on more data.

# %% [markdown]
# ## The paper profile: can planting reverse the family difference?
#
# The paper profile runs the same design from gemma-2-2b-it and Llama-3.2-3B-Instruct, with doses up to
# a praise sentence in every document, reward models on every 64th untied pair of Unified-Feedback with
# the authors' recipe, and three seeds. It can answer a question the study cannot: chapter 5 found the
# Llama-based reward models ranking agency better and the Gemma-based ones communion; if communion
# planted in Llama and agency planted in Gemma reverse that order, the base's values, not anything else
# about the family, decide it. The comparison is `final` above, split by base: each base's gap at its
# communion (Llama) or agency (Gemma) conditions against the other base's control. The {doc}`hardware`
# page gives the cost.

# %% tags=["remove-input"]
summary["grid"] = grid.as_dict()
summary["fingerprint"] = grid.fingerprint()
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - **The manipulation.** Continued training on replies where a share carries one sentence of praise
#   moved the planted words in the base's own log-probabilities with a slope of
#   {glue:text}`lm_slope_planted:.1f` ranks per unit of dose, while the control, trained the same way on
#   the same replies without praise, measures what the fine-tune alone does.
# - **Inheritance.** Reward models trained from the planted bases on identical data: for the planted
#   words the hypothesis is {glue:text}`h1_verdict`; for the untouched words, {glue:text}`h2_verdict`.
#   The planted bases differ in nothing but the praise sentences, so where a slope is supported, the
#   difference between these reward models is caused by their bases.
# - **How sure.** The units are {glue:text}`n_seeds` seeds per condition, {glue:text}`n_rm_runs` reward
#   models in all; the planting itself ran once per condition, so its own variability is not in the
#   intervals, and the demo profile's small models and miniature recipe make this a demonstration of the
#   method; the paper profile runs it at the study's scale.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it.

# %% [markdown]
# ### Exercise 1. Does the base's shift predict the reward model's?
#
# For each planted base, set its manipulation-check gap (planted words, `lm_planted`) beside the mean
# final gap of its reward models (`final`, planted words, the largest size) and compute their Spearman
# correlation over the conditions. A positive correlation says the reward models follow their bases.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
from scipy import stats as sps

lm_side = lm_planted[lm_planted["list"] == "planted"].set_index("model")["gap"]
rm_side = (final[(final["list"] == "planted") & (final["size"] == largest)].groupby("base")["gap"].mean())
paired = pd.DataFrame({"base gap": lm_side, "reward-model gap": rm_side}).dropna()
rho = sps.spearmanr(paired["base gap"], paired["reward-model gap"]).statistic
print(paired.round(1))
print(f"Spearman correlation over {len(paired)} conditions: {rho:.2f}")
assert len(paired) == len(keys)
assert -1 <= rho <= 1 if paired.nunique().min() > 1 else np.isnan(rho)  # undefined where one side is constant

# %% [markdown]
# ### Exercise 2. Mean ranks
#
# The gap above is a difference of median ranks, as in the paper. Recompute H1's slope with the *mean*
# rank of each category's planted words and see whether the verdict changes.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
last_scores = scores[scores["step"] == scores.groupby(["base", "size", "seed"])["step"].transform("max")]
means = (last_scores[last_scores["size"] == largest].groupby(["base", "seed", "list", "category"])["rank"].mean()
         .unstack("category"))
means["gap"] = means["Agency"] - means["Communion"]
mean_gaps = planting.with_conditions(means.reset_index(), keys)
mean_slopes, _ = planting.dose_response(mean_gaps, by=["planted_from", "list"])
print(mean_slopes.round(2))
print("H1 with mean ranks:", verdict(mean_slopes.set_index(["planted_from", "list"]).loc[(first, "planted")]))
n = len(candidates)
assert last_scores.groupby(["base", "size", "seed"])["rank"].sum().eq(n * (n + 1) / 2).all()

# %% [markdown]
# ### Exercise 3. One seed
#
# The paper trained one reward model per condition. Take seed 0 alone: fit the planted words' slope on
# its conditions and compare it with the slope over all seeds. How far can one seed be from the answer?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
one_seed = shown_final[shown_final["seed"] == grid.seeds[0]]
single = np.polyfit(one_seed.loc[one_seed["list"] == "planted", "signed_dose"],
                    one_seed.loc[one_seed["list"] == "planted", "gap"], 1)[0]
print(f"planted words' slope, seed {grid.seeds[0]} alone: {single:.1f}; "
      f"all {len(grid.seeds)} seeds: {at_largest.loc['planted', 'slope']:.1f}")
by_seed = {seed: np.polyfit(rows.loc[rows["list"] == "planted", "signed_dose"],
                            rows.loc[rows["list"] == "planted", "gap"], 1)[0]
           for seed, rows in shown_final.groupby("seed")}
print("slope of each seed alone:", {s: round(v, 1) for s, v in by_seed.items()})
assert np.isclose(np.mean(list(by_seed.values())), at_largest.loc["planted", "slope"])
