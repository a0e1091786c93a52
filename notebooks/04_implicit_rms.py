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
# # 4. Two language models make a reward model
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/04_implicit_rms.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/04_implicit_rms.ipynb) the version for students, without the
# solutions to its exercises.
#
# ```{admonition} Hardware
# :class: tip
# The `demo` profile runs on a CPU. The `paper` profile reads chapter 3's traces and fine-tunes
# gemma-2-2b once, which needs a GPU. See {doc}`hardware` for memory, run times and how to run one
# model at a time on Colab.
# ```
#
# Chapter 3 compared the base models' log-probabilities word by word. This chapter follows the study
# {cite}`christian2026reward` one step further (its Table 1 and Figure 3): any two language models
# define a reward model between them, the **implicit reward model**, and we can ask what that reward
# model prefers over the whole shared vocabulary, not only over a dictionary.

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
LANGUAGE_MODELS = None  # list of model keys or Hugging Face ids; None: the profile's
PROMPTS = None  # list of prompt keys; None: the profile's (demo, paper: all 54)
VALIDATION_MODEL = None  # the model fine-tuned to plant words; None: the profile's
VALIDATION_RECIPE = None  # "authors" (their fine-tuning script) or "book"; None: the profile's (paper: authors)
VALIDATION_STEPS = None  # optimiser steps of that fine-tune; None: the recipe's (both: 50)
CHAT_DATE = None  # the date templates that print one are given, or "unset" (the day of the run); None: the profile's
BATCH_SIZE = None  # prompts per forward pass; None: the profile's
DEVICE = None  # "cpu", "cuda", "auto" or "multi-gpu" (split each model over every GPU); None: the profile's
QUANTIZE = None  # None (the paper's precision), "8bit" or "4bit" for GPUs too small; results are keyed to it
SKIP_UNFIT = None  # True: leave out language models too large for the device (listed); None: the profile's (stop)
RELEASED = "auto"  # the authors' released log-probabilities (Table 1, Figure 3): "auto" draws them where they can be had, "required" stops without them

# %% [markdown]
# ## Where the implicit reward comes from
#
# Reinforcement learning from human feedback tunes a policy $\pi$ (a language model) to earn a high
# reward $r(x, y)$ for its reply $y$ to a prompt $x$, while staying close to a reference model
# $\pi_\text{ref}$ (the model it started from). The objective is
#
# $$
# \max_\pi \; \mathbb{E}_{y \sim \pi(\cdot \mid x)}\big[r(x, y)\big] \;-\; \beta\,
# \mathrm{KL}\big(\pi(\cdot \mid x) \,\|\, \pi_\text{ref}(\cdot \mid x)\big),
# $$
#
# where $\beta > 0$ sets how far the policy may drift. This objective has a closed-form optimum:
#
# $$
# \pi_r(y \mid x) = \frac{1}{Z(x)}\, \pi_\text{ref}(y \mid x)\, \exp\!\big(r(x, y) / \beta\big),
# $$
#
# with $Z(x)$ the sum over all replies that makes the probabilities add up to one. (To see it, write the
# objective as $-\beta\,\mathrm{KL}(\pi \,\|\, \pi_r) + \beta \log Z(x)$: the KL divergence is smallest,
# zero, exactly when $\pi = \pi_r$.) Take logarithms and solve for the reward:
#
# $$
# r(x, y) = \beta \log \frac{\pi_r(y \mid x)}{\pi_\text{ref}(y \mid x)} + \beta \log Z(x).
# $$
#
# Read backwards, *any* two models $p$ and $q$ define a reward, as if $q$ had been tuned from $p$:
# $r(x, y) = c(x) + \beta \log\big(q(y \mid x) / p(y \mid x)\big)$. The term $c(x)$ is the same for every
# reply to one prompt and $\beta$ only rescales, so ranking the replies to a prompt needs only the
# **log ratio** $\log q(y \mid x) - \log p(y \mid x)$. The paper takes $p$ = a Gemma model and $q$ = a
# Llama model: a positive reward means "the Llama model likes this reply more than the Gemma model does".
# Neither model was actually tuned from the other; the implicit reward is a lens that summarises *where
# two models' preferences differ*, in the units a reward model would use.
#
# Replies here are single tokens: every decoded string that both vocabularies contain, read off the
# next-token distributions chapter 3 stored. Where several tokens of one vocabulary decode to the same
# string, the most probable is kept, as the authors did.
#
# Which models make a pair? An instruction-tuned model reads each prompt as a chat and starts its reply
# after the assistant's header; a pretrained model reads the bare question and continues it. The log
# ratio of one of each would first of all measure that difference in format. So, as in the paper, a
# Gemma model is paired with a Llama model of the same kind: instruction-tuned with instruction-tuned
# (the paper's Table 1 and Figure 3), pretrained with pretrained, separately.

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from transformers.utils import logging as hf_logging

from rmbias import (
    corpora,
    data,
    implicit,
    logprobs,
    memory,
    placement,
    plots,
    prompts,
    ranks,
    registry,
    release,
    released_logprobs,
    scoring,
    sft,
)
from rmbias.chapter import Chapter

chapter = Chapter.open("04_implicit_rms", PROFILE, language_models=LANGUAGE_MODELS, prompts=PROMPTS, batch_size=BATCH_SIZE,
                       device=DEVICE, quantize=QUANTIZE, chat_date=CHAT_DATE,
                       validation_model=VALIDATION_MODEL, skip_unfit=SKIP_UNFIT)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
recipe = sft.recipe_for(settings.name, VALIDATION_RECIPE)  # checked here, before any model runs
if VALIDATION_STEPS is not None:
    recipe = recipe.with_train(max_steps=int(VALIDATION_STEPS))
trace_dir = chapter.earlier("03_logit_tracing", required=False) / "traces"  # shared with chapter 3
device = placement.resolve_device(settings.device)
plots.setup()
hf_logging.set_verbosity_error()
# before any model loads: the language models (skipped if SKIP_UNFIT) and the model fine-tuned below
fit = memory.check_fit(settings.language_models, dtype=settings.dtype, device=settings.device,
                       quantize=settings.quantize, skip_unfit=settings.skip_unfit)
memory.check_fit([settings.validation_model], dtype=recipe.train.dtype, device=settings.device, purpose="training")
lm_keys = fit.kept
prompt_table = prompts.select(settings.prompts)

# %%
pairs = implicit.model_pairs(lm_keys)
if not pairs:
    raise ValueError(f"the implicit reward needs a Gemma and a Llama model; got {lm_keys}")
traces = {key: logprobs.trace(key, prompt_table, trace_dir, dtype=registry.dtype_for(key, settings.dtype),
                              device=device, batch_size=settings.batch_size, date=settings.chat_date,
                              quantize=settings.quantize)
          for key in lm_keys}
table_pair = implicit.table_pair(pairs)
p_trace, q_trace = traces[table_pair.p], traces[table_pair.q]

# %% tags=["remove-input"]
summary["fit_check"] = memory.fit_summary(fit)
pair_kinds = pd.Series([pair.kind for pair in pairs]).value_counts()
KIND_NAMES = {"instruct": "instruction-tuned", "pretrained": "pretrained", "mixed": "mixed"}
chapter.number("n_pairs_instruct", int(pair_kinds.get("instruct", 0)), display=False)
chapter.number("n_pairs_pretrained", int(pair_kinds.get("pretrained", 0)), display=False)
chapter.number("pair_note", (f"It has no two models of the same kind in both families, so its {len(pairs)} pair(s) are "
                             "mixed, a pretrained model with an instruction-tuned one: their implicit reward compares two "
                             "ways of reading the prompt as much as two models (Table 1 shows how)."
                             if pair_kinds.get("mixed", 0) else "No pair mixes a pretrained model with an instruction-tuned one."),
               display=False)
chapter.number("chat_date_text", ("no date, as the authors ran them, so a Llama 3.2 template prints the day of the run "
                                  "(each trace records the prompt it rendered)" if settings.chat_date == scoring.UNSET_DATE
                                  else f"the fixed date {settings.chat_date}, so the distributions do not depend on the day "
                                       "they were computed"), display=False)
summary["chat_date"] = settings.chat_date
summary["pairs"] = [{"p": traces[pair.p].model, "q": traces[pair.q].model, "kind": pair.kind} for pair in pairs]

# %% tags=["remove-cell"]
settings

# %% [markdown]
# This profile has {glue:text}`n_pairs_instruct` instruction-tuned pairs and {glue:text}`n_pairs_pretrained`
# pretrained pairs. {glue:text}`pair_note` Chat templates that print a date (Llama 3.1 and 3.2) were
# given {glue:text}`chat_date_text`; chapter 3 traced the models with the same setting.

# %% [markdown]
# ## Which metric? The raw log ratio and its repairs
#
# The raw log ratio has a flaw the paper points out: a token that both models consider all but
# impossible (probabilities around $10^{-12}$) can have a huge ratio between two tiny numbers, and such
# junk fills both ends of the ranking. Two repairs are computed side by side:
#
# - a **floored** log ratio: both log-probabilities are raised to at least $\log 10^{-4}$ (or
#   $\log 10^{-6}$) first, so a token that both models rule out scores zero;
# - the paper's **mixture-weighted log ratio**, $\text{MWLR}(y) = \tfrac12\big(p(y) + q(y)\big)\big(\log
#   q(y) - \log p(y)\big)$, which weights the log ratio by how probable the token is under the two models'
#   mixture.
#
# Here are the ten most Llama-preferred tokens under each metric, for the headline prompt and the pair
# the paper's Table 1 uses (in this profile: the pair named in the table's title).

# %%
headline = prompts.HEADLINE
table = implicit.implicit_rewards(implicit.shared_strings(p_trace.by_string(headline), q_trace.by_string(headline)))

# %% tags=["remove-input"]
chapter.number("t1_p", p_trace.model, display=False)
chapter.number("t1_q", q_trace.model, display=False)
chapter.number("t1_n_shared", int(table.attrs["n_shared"]), display=False)
chapter.number("t1_n_p", int(table.attrs["n_p"]), display=False)
chapter.number("t1_n_q", int(table.attrs["n_q"]), display=False)

# %%
tops = {name: implicit.top_bottom(table, name, n=10).query("end == 'top'")["token"].map(repr).tolist()
        for name in implicit.METRICS}
pd.DataFrame(tops, index=pd.RangeIndex(1, 11, name="rank")).style.set_caption(
    f"top 10 tokens: q = {q_trace.model}, p = {p_trace.model}")

# %% [markdown]
# The two vocabularies share {glue:text}`t1_n_shared` decoded strings ({glue:text}`t1_p` has
# {glue:text}`t1_n_p` distinct strings, {glue:text}`t1_q` {glue:text}`t1_n_q`). The raw column is the
# junk the paper warned of: fragments no one would give as an answer. The floors and the MWLR bring
# plausible first tokens to the top. Which of them to trust is an empirical question, answered below by
# planting a preference and checking which metric finds it.

# %% [markdown]
# ## Table 1: the implicit reward model's best and worst replies
#
# The paper's Table 1 lists the 15 best and 15 worst tokens by MWLR for Llama-3.2-3B-Instruct over
# gemma-2-2b-it on the headline prompt; its optimum is "Freedom" and its pessimum, ignoring Markdown
# tokens, "Love". Here is the same table for this profile's pair, Markdown tokens left out (ranks still
# count them).

# %%
t1 = implicit.top_bottom(table, "MWLR", n=15, drop_markup=True)


# %% tags=["hide-input"]
def table1_sides(t1: pd.DataFrame, p_model: str, q_model: str):
    """Table 1 as the paper prints it: the best replies beside the worst, values to five places."""
    side = pd.concat([t1[t1["end"] == "top"].reset_index(drop=True)[["rank", "token", "value"]],
                      t1[t1["end"] == "bottom"].reset_index(drop=True)[["rank", "token", "value"]]],
                     axis=1, keys=[f"preferred by {q_model}", f"preferred by {p_model}"])
    return side.style.format(precision=5, subset=[c for c in side.columns if c[1] == "value"])


# %% tags=["remove-input"]
chapter.table(t1, "table1", p=p_trace.model, q=q_trace.model, prompt=headline, metric="MWLR")
best, worst = t1[t1["end"] == "top"].iloc[0], t1[t1["end"] == "bottom"].iloc[0]
chapter.number("t1_top_nospace", int((~t1[t1["end"] == "top"]["token"].str.startswith(" ")).sum()), display=False)
chapter.number("t1_bottom_space", int(t1[t1["end"] == "bottom"]["token"].str.startswith(" ").sum()), display=False)
chapter.number("t1_best", repr(best["token"]), display=False)
chapter.number("t1_worst", repr(worst["token"]), display=False)
summary["table1"] = {"p": p_trace.model, "q": q_trace.model, "n_shared": int(table.attrs["n_shared"]),
                     "optimum": best["token"], "pessimum_without_markup": worst["token"],
                     "rows": t1.to_dict("records")}

# %%
table1_sides(t1, p_trace.model, q_trace.model)

# %% [markdown]
# The optimum of this implicit reward model is {glue:text}`t1_best` and its pessimum is
# {glue:text}`t1_worst`. Strings are shown with quotes so that leading spaces stay visible. A reply's MWLR
# is large only when the reply is both probable under the mixture and favoured by one model, so the
# lists are made of plausible first tokens. They also show what else an implicit reward measures: of the
# 15 best tokens, {glue:text}`t1_top_nospace` start without a space, and of the 15 worst,
# {glue:text}`t1_bottom_space` start with one. A chat model starts its reply on a fresh line, without a
# space; a pretrained model continuing the bare question puts a space first. When the two models of a
# pair read the prompt differently (in the demo profile one reads a chat, the other the bare question),
# the implicit reward rewards that formatting difference before any difference in values. The paper's
# pairs read the prompt the same way.

# %% [markdown]
# Table 1 shows thirty replies; the figure below places {glue:text}`ir_fig_n` of them, the shared strings
# most probable under the two models' mixture, so that a reader can look up a word of their own. Each
# point is a reply: its log-probability under {glue:text}`t1_p` (x) and under {glue:text}`t1_q` (y).
# Points above the diagonal are preferred by {glue:text}`t1_q` (positive implicit reward, in the Llama
# colour), points below it by {glue:text}`t1_p` (the Gemma colour); the further from the diagonal and the
# further up and right, the larger the MWLR. Hover a point in the interactive version for the token, its
# MWLR and its raw log ratio.

# %% tags=["hide-input"]
mixture = np.logaddexp(table["logp_p"], table["logp_q"])
ir_shown = table.assign(mixture=mixture).nlargest(min(4000, len(table)), "mixture").assign(
    preferred_by=lambda t: np.where(t["MWLR"] > 0, q_trace.model, p_trace.model))
ir_palette = {q_trace.model: plots.FAMILY_COLOURS["llama"], p_trace.model: plots.FAMILY_COLOURS["gemma"]}
fig, ax = plt.subplots(figsize=(6.5, 6))
sns.scatterplot(data=ir_shown, x="logp_p", y="logp_q", hue="preferred_by", palette=ir_palette, s=10, alpha=0.5,
                linewidth=0, ax=ax)
low, high = float(ir_shown[["logp_p", "logp_q"]].min().min()), float(ir_shown[["logp_p", "logp_q"]].max().max())
ax.plot([low, high], [low, high], color="0.4", lw=1, ls="--")  # equal log-probabilities: no preference
ax.set(xlabel=f"log p, {p_trace.model}", ylabel=f"log q, {q_trace.model}")
ax.legend(title="preferred by", markerscale=2)
chapter.figure(fig, "implicit_reward_scatter")
plt.show()

# %% tags=["remove-input"]
chapter.number("ir_fig_n", f"{len(ir_shown):,}", display=False)

# %% tags=["remove-input"]
plots.as_html(plots.interactive_scatter(
    ir_shown, x="logp_p", y="logp_q", word="token", colour="preferred_by", palette=ir_palette,
    hover=["MWLR", "raw"], labels={"logp_p": f"log p ({p_trace.model})", "logp_q": f"log q ({q_trace.model})",
                                   "preferred_by": "preferred by"}))

# %% [markdown]
# ## Freedom versus Love, in every pair
#
# The paper's Figure 3 scores "Freedom" and "Love" (the mean MWLR over their case and leading-space
# variants) in all 21 pairs of a Gemma-2 instruction-tuned model and a Llama instruction-tuned model; in
# all 21 Freedom scores higher. Here, every pair of this profile, on the headline prompt and on each
# positive prompt, one panel per kind of pair:

# %%
positive = prompt_table[prompt_table["framing"] == "positive"]["key"].tolist()


# %%
def freedom_vs_love(traces: dict, pairs: list, prompt_keys: list[str]) -> pd.DataFrame:
    """Freedom's and Love's MWLR for every pair and prompt, and whether Freedom wins (NaN where a
    pair shares no variant of the word). Only the two words' variants are looked up in each
    vocabulary (implicit.word_scores_by_prompt): the same numbers as the whole join above."""
    words = ["freedom", "love"]
    mwlr = {pair: implicit.word_scores_by_prompt(traces[pair.p], traces[pair.q], words, prompt_keys,
                                                 {"MWLR": implicit.mwlr})
                  .pivot(index="prompt", columns="word", values="MWLR").reindex(index=prompt_keys, columns=words)
            for pair in pairs}
    rows = []
    for prompt in prompt_keys:
        for pair in pairs:
            rows.append({"kind": pair.kind, "gemma": traces[pair.p].model, "llama": traces[pair.q].model,
                         "prompt": prompt, "freedom": mwlr[pair].at[prompt, "freedom"],
                         "love": mwlr[pair].at[prompt, "love"]})
    table = pd.DataFrame(rows)
    table["freedom_wins"] = table["freedom"] > table["love"]
    return table


# %% tags=["hide-input"]
def figure3(head: pd.DataFrame):
    """Figure 3: one row per pair on the headline prompt, Love and Freedom's MWLR, a panel per kind of pair."""
    kinds = list(dict.fromkeys(head["kind"]))  # instruction-tuned pairs first
    fig, axes = plt.subplots(len(kinds), 1, sharex=True, squeeze=False,
                             figsize=(7, 0.45 * len(head) + 1.2 * len(kinds) + 0.4),
                             gridspec_kw={"height_ratios": [max(1, (head["kind"] == k).sum()) for k in kinds]})
    for ax, kind in zip(axes[:, 0], kinds):
        panel = head[head["kind"] == kind].reset_index(drop=True)
        for y, row in panel.iterrows():
            ax.plot([row["love"], row["freedom"]], [y, y], color="grey", lw=1.2, alpha=0.6, zorder=1)
        ax.scatter(panel["love"], range(len(panel)), s=70, facecolors="none",
                   edgecolors=plots.CATEGORY_COLOURS["Communion"], linewidths=2, label="Love", zorder=2)
        ax.scatter(panel["freedom"], range(len(panel)), s=70, facecolors="none",
                   edgecolors=plots.CATEGORY_COLOURS["Agency"], linewidths=2, label="Freedom", zorder=2)
        ax.set_yticks(range(len(panel)), [f"{g}  \u2192  {m}" for g, m in zip(panel["gemma"], panel["llama"])])
        ax.set_ylim(len(panel) - 0.5, -0.5)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{KIND_NAMES[kind]} pairs", loc="left", fontsize="medium")
    axes[0, 0].legend(frameon=False, loc="best")
    axes[-1, 0].set_xlabel("MWLR (positive: preferred by the Llama model)")
    return fig


# %%
fl = freedom_vs_love(traces, pairs, positive)
head = fl[fl["prompt"] == headline].reset_index(drop=True)

# %% tags=["hide-input"]
fig = figure3(head)
chapter.figure(fig, "figure3_freedom_vs_love")
plt.show()

# %% tags=["remove-input"]
chapter.table(fl, "freedom_vs_love")
kinds = list(dict.fromkeys(head["kind"]))  # instruction-tuned pairs first


def wins_text(kind: str) -> dict:
    """Freedom's wins among the pairs of one kind: on the headline prompt, and over the positive prompts."""
    cells, first = fl[fl["kind"] == kind], head[head["kind"] == kind]
    return {"headline_wins": int(first["freedom_wins"].sum()), "pairs": len(first),
            "positive_prompt_wins": int(cells["freedom_wins"].sum()), "cells": len(cells),
            "missing": int(cells[["freedom", "love"]].isna().any(axis=1).sum())}


by_kind = {kind: wins_text(kind) for kind in kinds}
main = by_kind[kinds[0]]  # the instruction-tuned pairs where there are any: the paper's Figure 3
chapter.number("fl_kind", KIND_NAMES[kinds[0]], display=False)
chapter.number("fl_n_pairs", main["pairs"], display=False)
chapter.number("fl_head_wins", main["headline_wins"], display=False)
chapter.number("fl_n_positive", len(positive), display=False)
chapter.number("fl_all_wins", main["positive_prompt_wins"], display=False)
chapter.number("fl_all_cells", main["cells"], display=False)
chapter.number("fl_n_missing", main["missing"], display=False)
chapter.number("fl_other_text", " ".join(
              f"Among the {KIND_NAMES[kind]} pairs, shown apart, Freedom scores higher in {c['headline_wins']} of "
              f"{c['pairs']} on the headline prompt and in {c['positive_prompt_wins']} of {c['cells']} cells."
              for kind, c in by_kind.items() if kind != kinds[0]) or "This profile has no pairs of another kind.",
              display=False)
summary["freedom_vs_love"] = by_kind

# %%
fl.groupby(["kind", "gemma", "llama"], sort=False)["freedom_wins"].agg(["sum", "count"]).rename(
    columns={"sum": "prompts where Freedom wins", "count": "positive prompts"})

# %% [markdown]
# Each row of the figure is one pair (Gemma model on the left of the arrow, Llama model on the right) on
# the headline prompt: the orange circle is Freedom's MWLR and the green circle Love's. Among the
# {glue:text}`fl_kind` pairs, Freedom scores higher in {glue:text}`fl_head_wins` of
# {glue:text}`fl_n_pairs` on the headline prompt, and in {glue:text}`fl_all_wins` of
# {glue:text}`fl_all_cells` (pair, positive prompt) cells over the {glue:text}`fl_n_positive` positive
# prompts; {glue:text}`fl_n_missing` of these cells lack one of the two words in the shared vocabulary
# (they count as not won). The paper reports 21 of 21 instruction-tuned pairs on the headline prompt.
# {glue:text}`fl_other_text` A single prompt is a thin basis: the table shows how often the comparison
# holds across paraphrases.

# %% [markdown]
# ### Table 1 and Figure 3 from the authors' released log-probabilities
#
# Chapter 3 reads the log-probabilities the authors published for their twelve language models
# (`rmbias.released_logprobs`). The same functions as above, given those traces, draw the paper's Table 1
# (Llama-3.2-3B-Instruct over gemma-2-2b-it on the headline prompt) and its Figure 3 over all 21 pairs
# of a Gemma-2 and a Llama instruction-tuned model, on every positive prompt of the 54.
# {glue:text}`released_ir_status`

# %%
paper_instruct = [m for m in released_logprobs.MODELS if registry.spec(m).instruct]
all_positive = [k for k, f in prompts.all_prompts()[["key", "framing"]].itertuples(index=False) if f == "positive"]
released_traces, released_missing = released_logprobs.released_traces(paper_instruct, all_positive, mode=RELEASED)
released_pairs = implicit.model_pairs(list(released_traces), fallback_mixed=False)

# %% tags=["remove-input"]
released_text = []

# %% tags=["hide-input"]
# the same functions as above (implicit_rewards, top_bottom, freedom_vs_love, figure3) on the released traces
if any((pair.p, pair.q) == registry.TABLE1_PAIR for pair in released_pairs):
    rp, rq = (released_traces[m] for m in registry.TABLE1_PAIR)
    released_table = implicit.implicit_rewards(implicit.shared_strings(rp.by_string(headline), rq.by_string(headline)))
    released_t1 = implicit.top_bottom(released_table, "MWLR", n=15, drop_markup=True)
    chapter.table(released_t1, "table1_released", p=rp.model, q=rq.model, prompt=headline,
                          provenance=[rp.meta, rq.meta])
    display(table1_sides(released_t1, rp.model, rq.model))
    optimum = released_t1[released_t1["end"] == "top"].iloc[0]["token"]
    pessimum = released_t1[released_t1["end"] == "bottom"].iloc[0]["token"]
    summary["table1_released"] = {"optimum": optimum, "pessimum_without_markup": pessimum,
                                  "rows": released_t1.to_dict("records")}
    released_text.append(f"On the released data, Table 1's optimum is {optimum!r} and its pessimum, Markdown left "
                         f"out, {pessimum!r} (the paper: 'Freedom' and 'Love').")
if released_pairs:
    released_fl = freedom_vs_love(released_traces, released_pairs, all_positive)
    chapter.table(released_fl, "freedom_vs_love_released",
                          provenance={m: t.meta for m, t in released_traces.items()})
    released_head = released_fl[released_fl["prompt"] == headline].reset_index(drop=True)
    fig = figure3(released_head)
    fig.suptitle("The authors' release", x=0.02, ha="left", fontweight="bold")
    chapter.figure(fig, "figure3_released")
    plt.show()
    wins = int(released_head["freedom_wins"].sum())
    summary["freedom_vs_love_released"] = {"headline_wins": wins, "pairs": len(released_head),
                                           "positive_prompt_wins": int(released_fl["freedom_wins"].sum()),
                                           "cells": len(released_fl)}
    released_text.append(f"Freedom scores higher than Love in {wins} of the {len(released_head)} pairs on the "
                         f"headline prompt (the paper: 21 of 21), and in {int(released_fl['freedom_wins'].sum())} "
                         f"of {len(released_fl)} (pair, positive prompt) cells.")

# %% tags=["remove-input"]
summary["released_missing"] = released_missing
released_note = data.missing_note(released_missing, "The released version of Table 1 and Figure 3")
chapter.number("released_ir_status", " ".join([*released_text, released_note]).strip(), display=False)

# %% [markdown]
# ## Does the conclusion depend on the metric?
#
# The paper chose MWLR by hand. For each metric, we rank the Big Two nouns by their implicit reward
# (each noun's score is the mean over its case and leading-space variants in the shared vocabulary) and
# compare the categories: the median rank of agency nouns minus that of communion nouns, per prompt.
# Negative values mean the Llama model is relatively keener on agency nouns, the paper's direction on
# positive prompts.

# %%
nouns = corpora.big2_nouns()
noun_rows = []
for pair in pairs:  # every metric, on every prompt, over only the nouns' variants (implicit.word_scores_by_prompt)
    p_item, q_item = traces[pair.p], traces[pair.q]
    scored = implicit.word_scores_by_prompt(p_item, q_item, nouns["word"], list(prompt_table["key"]))
    scored["pair"] = f"{p_item.model} \u2192 {q_item.model}"
    scored["kind"] = pair.kind
    noun_rows.append(scored)
noun_scores = pd.concat(noun_rows, ignore_index=True).merge(nouns, on="word")
noun_scores["framing"] = noun_scores["prompt"].map(prompt_table.set_index("key")["framing"])

# %%
by_metric = []
for name in implicit.METRICS:
    part = noun_scores.dropna(subset=[name]).copy()
    part["rank"] = ranks.within_ranks(part, ["pair", "prompt"], score=name)
    med = ranks.median_ranks(part, ["kind", "pair", "prompt", "framing", "category"])
    wide = med.pivot_table(index=["kind", "pair", "prompt", "framing"], columns="category", values="median_rank")
    gap = (wide["Agency"] - wide["Communion"]).rename("gap").reset_index()
    gap["metric"] = name
    by_metric.append(gap)
by_metric = pd.concat(by_metric, ignore_index=True)
metric_summary = (by_metric.groupby(["kind", "metric", "framing"], sort=False)["gap"]
                  .agg(mean="mean", share_negative=lambda g: float((g < 0).mean()), prompts="count")
                  .reindex(list(implicit.METRICS), level=1))
metric_summary.round(2)

# %% tags=["remove-input"]
chapter.table(noun_scores, "implicit_noun_scores")
chapter.table(metric_summary.reset_index(), "agency_gap_by_metric")
summary["agency_gap_by_metric"] = {f"{k}|{m}|{f}": row.to_dict() for (k, m, f), row in metric_summary.iterrows()}
chapter.number("n_nouns_scored", int(noun_scores.dropna(subset=["MWLR"])["word"].nunique()), display=False)
chapter.number("floor_zero_share", float((noun_scores["floor 1e-6"] == 0).mean()), display=False)

# %% [markdown]
# {glue:text}`n_nouns_scored` nouns have at least one variant in the shared vocabulary. The table gives,
# per kind of pair, metric and framing, the mean over prompts (and pairs) of the agency-minus-communion
# gap, and the share of (pair, prompt) cells where it is negative; instruction-tuned and pretrained
# pairs are never pooled. Under the $10^{-6}$ floor, {glue:text}`floor_zero_share:.0%` of
# the noun scores are exactly zero: both models give the noun less than one chance in a million as the
# first token, so a floored metric ties them and cannot rank them at all (a gap of zero). If the
# remaining metrics disagree in sign, the conclusion depends on a choice the paper made by hand; the
# validation below says which metric deserves the trust.

# %% [markdown]
# ## Validating the metrics: plant a preference, then look for it
#
# A metric that cannot find a preference we put into a model ourselves cannot be trusted to find one
# that pretraining put there. Following the paper's appendix, we fine-tune one model with a small LoRA
# SFT (rank 8, 50 steps) to answer positive questions with ten Authority words of the Moral Foundations
# Dictionary, then take the fine-tuned model as $q$ and the original as $p$, and measure, on nine
# positive prompts held out from training, how many of each metric's ten best tokens are planted words
# (precision at 10).
#
# How the fine-tune is done is a recipe, written as data in `rmbias.sft` (`sft.RECIPES`), and two are
# defined. The **authors'** recipe is their released fine-tuning script (`scripts/boost_values_via_SFT.py`):
# gemma-2-2b trained on plain text, `"Instruction:\n{question}\n\nResponse:\n{word}"`, with the loss on
# every token, their ten words, their 36 questions and their nine test prompts; the paper profile runs it.
# The **book's** recipe trains through the model's chat template with the loss on the reply only, and picks
# the ten most frequent Authority words that are one token for the model's tokenizer, so it suits any
# instruction-tuned model whatever its vocabulary; the tiny and demo profiles run it (the demo's model is
# an instruction-tuned chat model). `VALIDATION_RECIPE` picks the other. The table lists every setting in
# which the two differ.

# %%
other_recipe = next(r for r in sft.RECIPES.values() if r.name != recipe.name)
differences = sft.recipe_differences(recipe, other_recipe)
val_key = settings.validation_model
val_tokenizer = sft.recipe_tokenizer(val_key, recipe)
planted = sft.recipe_words(recipe, val_tokenizer)
injected_path = sft.inject_words(val_key, planted, recipe=recipe, date=settings.chat_date)
record = sft.read_record(injected_path)
evaluation = sft.evaluate_injection(val_key, injected_path, device=device)
precision = pd.Series({name: evaluation[f"precision_{name}"].mean() for name in implicit.METRICS},
                      name="mean precision@10")
differences.set_index("setting").rename(columns={recipe.name: f"{recipe.name} (ran)"})

# %% tags=["remove-input"]
chapter.table(evaluation, "metric_validation", model=registry.spec(val_key).label, words=planted,
                      recipe=recipe.name, date=settings.chat_date, sft=record.get("recipe_settings"))
chapter.table(differences, "recipe_differences", ran=recipe.name)
overlap = sft.split_overlap(recipe)
readable = record["readable_words"]
unreadable = [w for w in planted if w not in readable]
first_row = record["first_row"]
chapter.number("val_recipe", recipe.name, display=False)
chapter.number("val_recipe_description", recipe.description, display=False)
chapter.number("val_other_recipe", other_recipe.name, display=False)
chapter.number("val_n_differences", len(differences), display=False)
chapter.number("val_model", registry.spec(val_key).label, display=False)
chapter.number("val_words", ", ".join(planted), display=False)
chapter.number("val_n_rows", int(record["n_rows"]), display=False)
chapter.number("val_n_questions", len(record["questions"]), display=False)
chapter.number("val_n_words", len(planted), display=False)
chapter.number("val_n_readable", len(readable), display=False)
chapter.number("val_unreadable_text", (f"The others ({', '.join(unreadable)}) are several tokens for this tokenizer: they were "
                                       "trained on, but a next-token distribution shows only their first piece, so they cannot "
                                       "be recovered here and the probabilities below are those of the one-token words."
                                       if unreadable else "Every planted word is one token."), display=False)
chapter.number("val_split_text", (
              (f"The {len(recipe.heldout)} held-out prompts include " + ", ".join(overlap["heldout_trained"])
               + ", which are also trained on" if overlap["heldout_trained"]
               else f"None of the {len(recipe.heldout)} held-out prompts is a training question")
              + (f"; the headline prompt, {prompts.HEADLINE}, is among the training questions, so it is not held out"
                 if overlap["headline_trained"] else f"; the headline prompt, {prompts.HEADLINE}, is held out")),
              display=False)
chapter.number("val_loss_text", f"{first_row['tokens_in_loss']} of the {len(first_row['input_ids'])} tokens", display=False)
chapter.number("val_first_row", repr(first_row["text"]), display=False)
chapter.number("val_prob_before", float(evaluation["prob_before"].mean()), display=False)
chapter.number("val_prob_after", float(evaluation["prob_after"].mean()), display=False)
chapter.number("val_n_prompts", len(evaluation), display=False)
chapter.number("val_top_planted", int(evaluation["top_after_planted"].sum()), display=False)
chapter.number("val_best_metric", precision.idxmax(), display=False)
chapter.number("val_date", settings.chat_date if recipe.template is None else "none (plain text, no template)", display=False)
summary["metric_validation"] = {"model": registry.spec(val_key).label, "recipe": recipe.name,
                                "recipe_settings": record["recipe_settings"], "date": record["date"],
                                "words": planted, "readable_words": readable, "n_rows": int(record["n_rows"]),
                                "split": overlap, "precision_at_10": precision.to_dict(),
                                "prob_before": float(evaluation["prob_before"].mean()),
                                "prob_after": float(evaluation["prob_after"].mean()),
                                "top_after_planted": int(evaluation["top_after_planted"].sum()),
                                "differences_from_" + other_recipe.name: differences.to_dict("records")}

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(6, 2.8))
sns.barplot(x=precision.values, y=precision.index, color="#555555", ax=ax)
for y, value in enumerate(precision.values):
    ax.text(value + 0.01, y, f"{value:.2f}", va="center")
ax.set_xlim(0, 1.1)
ax.set_xlabel(f"mean precision@10 over {len(evaluation)} held-out prompts")
ax.set_ylabel("")
chapter.figure(fig, "metric_validation")
plt.show()

# %% [markdown]
# The recipe that ran is the {glue:text}`val_recipe` one ({glue:text}`val_recipe_description`); it differs
# from the {glue:text}`val_other_recipe` recipe in the {glue:text}`val_n_differences` settings listed
# above. It trained {glue:text}`val_model` on {glue:text}`val_n_rows` rows ({glue:text}`val_n_questions`
# questions times the planted words); the first, as the trainer tokenised it, reads
# {glue:text}`val_first_row`, and the loss covers {glue:text}`val_loss_text`. The date given to chat
# templates was {glue:text}`val_date`. {glue:text}`val_split_text`.
#
# The planted words were {glue:text}`val_words`; {glue:text}`val_n_readable` of the
# {glue:text}`val_n_words` are one token for the model's tokenizer. {glue:text}`val_unreadable_text`
# Their mean next-token probability on the held-out prompts rose from {glue:text}`val_prob_before:.2e`
# to {glue:text}`val_prob_after:.2e`, and the fine-tuned model's most probable first token is a planted
# word on {glue:text}`val_top_planted` of the {glue:text}`val_n_prompts` held-out prompts. The bars give
# each metric's mean precision at 10 over those prompts: the share of its ten most "preferred" tokens
# that are planted words (1 means all ten). The metric that recovers the most is
# {glue:text}`val_best_metric`.
#
# **What is comparable with the paper's Figure A3.** The paper says only that the metric was chosen by
# this fine-tune, by checking which metric recovers the injected words. The authors' script trains the
# model and then prints its generated reply to each of the nine test prompts; it computes no metric, and
# the code behind Figure A3 is not released, so Figure A3's numbers cannot be recomputed and are not
# compared here. With the authors' recipe, the fine-tune is theirs: the model, the rows, the text format
# and the loss, the words, the test prompts and the training settings; and both models are read exactly
# where the script's generation starts (after `"Response:\n"`, BOS first), so the most probable first
# token is the first token of the reply their script would print. What is ours is the measurement:
# precision at 10 over every decoded string, with every case and leading-space variant of a planted
# word counted as a hit, compared across four metrics. Two things the script leaves open: it pins no
# version of TRL, and the TRL used here appends the EOS token to each text (visible in the first row
# above); and its vocabulary check looks up each word's first letter only, so it would not have caught a
# word of several tokens, which the sentence above reports.
#
# The check is easier than the task it vouches for: the fine-tuned and original models share one
# tokenizer and almost all their weights, so the junk tokens with wild ratios that swamp the raw log
# ratio between two different models are rare here. A fine-tune that moves ten words by orders of
# magnitude is an easy target; the differences between the metrics here bound how much a metric's
# choice can matter when the planted signal is strong, and say nothing about weak signals such as a
# base model's lean towards agency words.

# %% [markdown]
# ## Do implicit and explicit reward models agree?
#
# Chapter 2 scored the same nouns with explicit reward models. If the base models' preferences carry
# into reward models, the implicit reward model (Llama over Gemma) should favour the nouns that
# Llama-based RMs rank better than Gemma-based RMs do. Two comparisons, per prompt, over the nouns scored
# by both:
#
# - with the paper's ten RMs (the authors' released scores): each noun's mean rank among Gemma-based RMs
#   minus its mean rank among Llama-based RMs;
# - with this profile's live RMs from chapter 2, when that chapter has run: the Gemma RM's rank minus the
#   Llama RM's rank. In the demo profile these RMs were trained from the very models compared here.
#
# Each is correlated (Spearman) with the noun's MWLR under every pair.

# %%
def family_preference(scores: pd.DataFrame, model: str) -> pd.DataFrame:
    """Per (prompt, word): mean rank among Gemma-based minus mean rank among Llama-based models
    (positive: the Llama side ranks the word better)."""
    scores = scores.copy()
    scores["rank"] = ranks.within_ranks(scores, [model, "prompt"])
    means = scores.groupby(["prompt", "word", "family"])["rank"].mean().unstack("family")
    return (means["gemma"] - means["llama"]).rename("explicit").reset_index()


# %%
explicit = {"paper's RMs (released)": family_preference(release.released_scores("big2"), "rm")}
live_path = chapter.earlier("02_rm_scoring", required=False) / "live_big2_scores.parquet"
if live_path.is_file():
    live = pd.read_parquet(live_path)
    if set(live["family"]) >= {"gemma", "llama"}:
        explicit["this profile's RMs (chapter 2)"] = family_preference(live, "rm")
agreement = []
for source, pref in explicit.items():
    both = noun_scores.merge(pref, on=["prompt", "word"]).dropna(subset=["MWLR", "explicit"])
    for (kind, pair, prompt), group in both.groupby(["kind", "pair", "prompt"], sort=False):
        if len(group) >= 5:
            agreement.append({"explicit RMs": source, "kind": kind, "pair": pair, "prompt": prompt, "nouns": len(group),
                              "spearman": group["MWLR"].corr(group["explicit"], method="spearman")})
agreement = pd.DataFrame(agreement)
agree_summary = agreement.groupby(["explicit RMs", "kind", "pair"], sort=False)["spearman"].agg(
    ["median", "min", "max", "count"]).rename(columns={"count": "prompts"})
agree_summary.round(3)

# %% tags=["remove-input"]
chapter.table(agreement, "implicit_vs_explicit")
agree_medians = agree_summary.groupby(level=0)["median"].median()
chapter.number("agree_text", " and ".join(f"{value:.2f} against {source}" for source, value in agree_medians.items()),
               display=False)
summary["implicit_vs_explicit"] = {f"{s}|{p}": r.to_dict() for (s, _, p), r in agree_summary.iterrows()}

# %% [markdown]
# The median Spearman correlation over prompts (and pairs) is {glue:text}`agree_text`. A correlation near
# zero says the implicit reward model of these two
# language models does not predict, noun by noun, which nouns the explicit reward models of the two
# families disagree on; a positive one says it does. In the demo profile the language models are far
# smaller than the paper's, so the first comparison asks whether a small Llama-architecture model and a
# small Gemma model already differ the way the paper's reward model families do.

# %% tags=["remove-input"]
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - The implicit reward between two language models follows from the KL-regularised optimum; ranking
#   replies to one prompt needs only the log ratio of the two models' probabilities.
# - The raw log ratio is dominated by junk; floored ratios and the paper's MWLR are not, and a planted
#   preference shows which of them recovers what was put in.
# - Table 1 and the Freedom-versus-Love comparison of Figure 3 run for every pair of this profile, a
#   Gemma and a Llama model of the same kind (instruction-tuned or pretrained, never one of each,
#   unless a profile has no such pair, as the demo's), and
#   the implicit reward is compared noun by noun with the explicit reward models of chapter 2.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it. They work on the traces and tables this chapter already holds (no model
# is run again), so they run in seconds, and each ends with checks (`assert`) that its numbers are
# consistent with the chapter's.

# %% [markdown]
# ### Exercise 1. Move the floor
#
# The floored log ratio needs a floor, and the chapter tried $10^{-4}$ and
# $10^{-6}$. On the headline prompt's shared strings (`table`), add floors of $10^{-3}$ and
# $10^{-8}$ with `implicit.floored_log_ratio`. For each floor, report the share of strings that
# score exactly zero and the five best strings. Show that raising the floor can only add zeros, and
# that a floored score is never further from zero than the raw log ratio.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
floors = {"1e-3": 1e-3, "1e-4": 1e-4, "1e-6": 1e-6, "1e-8": 1e-8}  # highest first
floor_metrics = {f"floor {name}": (lambda lq, lp, f=np.log(value): implicit.floored_log_ratio(lq, lp, f))
                 for name, value in floors.items()}
floored = implicit.implicit_rewards(table, floor_metrics)
floor_table = pd.DataFrame({name: {"share exactly zero": float((floored[name] == 0).mean()),
                                   "five best": ", ".join(implicit.top_bottom(floored, name, n=5)
                                                          .query("end == 'top'")["token"].map(repr))}
                            for name in floor_metrics}).T
display(floor_table)

zero_shares = floor_table["share exactly zero"].to_numpy(dtype=float)
assert (np.diff(zero_shares) <= 0).all()  # a higher floor never has fewer zeros
finite = np.isfinite(table["raw"])
for name in floor_metrics:  # flooring only shrinks a log ratio
    assert (floored.loc[finite, name].abs() <= table.loc[finite, "raw"].abs() + 1e-9).all()
for name in ("floor 1e-4", "floor 1e-6"):  # the chapter's two floors are reproduced
    assert np.allclose(floored[name], table[name])

# %% [markdown]
# ### Exercise 2. A metric of your own
#
# MWLR weights the log ratio by the mixture $\tfrac12(p + q)$. Two
# natural alternatives weight it by $q$ alone (each token's term in the KL divergence
# $\mathrm{KL}(q \,\|\, p)$) or by $p$ alone. Add both with `implicit.implicit_rewards`, check that
# MWLR is exactly their average, and compute the agency-minus-communion gap in median rank of the
# Big Two nouns on the headline prompt for the first pair under each. Does the sign of the gap
# depend on which weighting you pick?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
weightings = {"MWLR": implicit.mwlr,
              "q-weighted": lambda lq, lp: np.exp(lq) * (lq - lp),
              "p-weighted": lambda lq, lp: np.exp(lp) * (lq - lp)}
p_item, q_item = traces[pairs[0].p], traces[pairs[0].q]
weighted = implicit.implicit_rewards(implicit.shared_strings(p_item.by_string(headline), q_item.by_string(headline)),
                                     weightings)
assert np.allclose(weighted["MWLR"], 0.5 * (weighted["q-weighted"] + weighted["p-weighted"]))
scored_nouns = implicit.word_scores(weighted, nouns["word"], list(weightings)).merge(nouns, on="word")
weighting_gaps = {}
for name in weightings:
    part = scored_nouns.dropna(subset=[name]).assign(prompt=headline)
    part["rank"] = ranks.within_ranks(part, ["prompt"], score=name)
    n_words = len(part)
    assert np.isclose(part["rank"].sum(), n_words * (n_words + 1) / 2)  # ranks are a permutation of 1..n
    category_medians = part.groupby("category")["rank"].median()
    weighting_gaps[name] = float(category_medians.get("Agency", np.nan) - category_medians.get("Communion", np.nan))
print(f"agency minus communion median rank on {headline!r}, {p_item.model} -> {q_item.model}: "
      + ", ".join(f"{name} {value:+.1f}" for name, value in weighting_gaps.items()))

# the MWLR gap is the one the chapter computed for this pair and prompt
pair_label = f"{p_item.model} \u2192 {q_item.model}"
chapter_gap = by_metric[(by_metric["metric"] == "MWLR") & (by_metric["pair"] == pair_label)
                        & (by_metric["prompt"] == headline)]["gap"]
assert len(chapter_gap) == 1 and np.isclose(weighting_gaps["MWLR"], chapter_gap.iloc[0], equal_nan=True)
# every weight is positive, so each weighting keeps the sign of the raw log ratio
raw_sign = np.sign(weighted["logp_q"] - weighted["logp_p"])
for name in ("q-weighted", "p-weighted"):
    assert (np.sign(weighted[name])[raw_sign != 0] == raw_sign[raw_sign != 0]).all()

# %% [markdown]
# ### Exercise 3. Another duel
#
# Freedom against Love is one pair of words the paper picked. Choose another
# agency noun and communion noun from the dictionary (say *success* and *family*) and count, from
# the chapter's noun scores (`noun_scores`), the (pair, positive prompt) cells in which the agency
# noun has the higher MWLR. Check first that the same count for Freedom and Love gives the
# chapter's number. Then find the agency noun that beats *love* in the most cells.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
positive_scores = noun_scores[noun_scores["framing"] == "positive"]
mwlr_wide = positive_scores.pivot_table(index=["pair", "prompt"], columns="word", values="MWLR")
mwlr_wide = mwlr_wide.reindex(pd.MultiIndex.from_product([list(dict.fromkeys(noun_scores["pair"])), positive],
                                                         names=["pair", "prompt"]))  # every cell, scored or not


def wins(agency_word: str, communion_word: str) -> int:
    """Cells in which the agency word's MWLR is higher (a word without a score loses)."""
    a = mwlr_wide[agency_word] if agency_word in mwlr_wide else pd.Series(np.nan, index=mwlr_wide.index)
    c = mwlr_wide[communion_word] if communion_word in mwlr_wide else pd.Series(np.nan, index=mwlr_wide.index)
    return int((a > c).sum())


duels = pd.DataFrame([{"agency noun": a, "communion noun": c, "cells won": wins(a, c), "cells": len(mwlr_wide)}
                      for a, c in (("freedom", "love"), ("success", "family"), ("ambition", "friendship"))])
agency_nouns = nouns.loc[nouns["category"] == "Agency", "word"]
against_love = pd.Series({word: wins(word, "love") for word in agency_nouns}).sort_values(ascending=False)
display(duels)
print("agency nouns that beat 'love' most often: "
      + ", ".join(f"{w} ({n} of {len(mwlr_wide)})" for w, n in against_love.head(5).items()))

assert len(mwlr_wide) == len(pairs) * len(positive)
assert duels.loc[0, "cells won"] == int(fl["freedom_wins"].sum())  # the chapter's Freedom vs Love count
assert duels["cells won"].between(0, duels["cells"]).all()
assert against_love.index.isin(agency_nouns).all() and len(against_love) == agency_nouns.nunique()
