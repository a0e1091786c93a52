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
# # 3. The bias is already in the base models
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/03_logit_tracing.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/03_logit_tracing.ipynb) the version for students, without the
# solutions to its exercises.
#
# ```{admonition} Hardware
# :class: tip
# The `demo` profile runs on a CPU. The `paper` profile traces twelve language models (1B to 70B
# parameters) and needs a GPU; the 70B models need two 80 GB GPUs (`DEVICE = "multi-gpu"`) or one in
# 8 bits (`QUANTIZE = "8bit"`). See {doc}`hardware` for memory, run times and how to run one model at a
# time on Colab.
# ```
#
# A reward model is a language model with its output layer swapped for a single number. If reward models
# built on Gemma 2 {cite}`gemmateam2024gemma` and on Llama 3 {cite}`grattafiori2024llama` prefer
# different words (chapter 2), the difference may have been there before any preference training: in
# the base model's own sense of which words are likely answers. The study {cite}`christian2026reward`
# checks this with **logit tracing** (its Figure 2): ask the base model the same 54 questions, read its
# probability distribution over the first token of its reply, and rank the Big Two nouns by
# log-probability exactly as the reward scores were ranked.
#
# This chapter
#
# 1. traces every language model of this profile: one forward pass per prompt, the whole vocabulary's
#    log-probabilities, stored so that chapter 4 can reuse them;
# 2. reproduces the Figure 2 analysis on the paper's words (nouns that are single tokens in both
#    vocabularies), with the paper's three-way ANOVA and Welch tests;
# 3. goes beyond it: scores *every* noun in all its surface forms by teacher forcing, which the paper
#    could not do with one next-token distribution.

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
PAIRS = None  # list of [gemma_model, llama_model] pairs for Figure 2; None: the paper's pairs, or every Gemma x Llama pair
PROMPTS = None  # list of prompt keys; None: the profile's (demo, paper: all 54)
FORCED_PROMPTS = None  # prompts for teacher forcing of whole words; None: the profile's
MAX_WORDS = None  # teacher forcing: at most this many nouns per category; None: the profile's (demo, paper: all)
BATCH_SIZE = None  # sequences per forward pass; None: the profile's
DEVICE = None  # "cpu", "cuda", "auto" or "multi-gpu" (split each model over every GPU); None: the profile's
QUANTIZE = None  # None (the paper's precision), "8bit" or "4bit" for GPUs too small; results are keyed to it
CHAT_DATE = None  # the date Llama 3.1/3.2 templates print, e.g. "26 Jul 2024", or "unset" (the day of the run); None: the profile's
RELEASED = "auto"  # the authors' released log-probabilities (Figure 2 from their data): "auto" draws them where they can be had, "required" stops without them
SKIP_UNFIT = None  # True: leave out models too large for the device (listed); None: the profile's (stop, naming them)

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from transformers.utils import logging as hf_logging

from rmbias import (
    corpora,
    data,
    logprobs,
    memory,
    models,
    placement,
    plots,
    profiles,
    prompts,
    ranks,
    registry,
    released_logprobs,
    scoring,
    stats,
)
from rmbias.chapter import Chapter

chapter = Chapter.open("03_logit_tracing", PROFILE, language_models=LANGUAGE_MODELS, prompts=PROMPTS,
                       forced_prompts=FORCED_PROMPTS, max_words=MAX_WORDS, batch_size=BATCH_SIZE, device=DEVICE,
                       quantize=QUANTIZE, chat_date=CHAT_DATE, skip_unfit=SKIP_UNFIT)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
device = placement.resolve_device(settings.device)
plots.setup()
hf_logging.set_verbosity_error()
# before any model loads: does each fit the device? (stops naming those that do not, unless SKIP_UNFIT)
fit = memory.check_fit(settings.language_models, dtype=settings.dtype, device=settings.device,
                       quantize=settings.quantize, skip_unfit=settings.skip_unfit)
lm_keys = fit.kept
if PAIRS is not None:
    pairs = [tuple(p) for p in PAIRS]
elif all(k in lm_keys or registry.spec(k).key in lm_keys for pair in registry.FIGURE2_PAIRS for k in pair):
    pairs = list(registry.FIGURE2_PAIRS)
else:
    pairs = registry.family_pairs(lm_keys)

# %% tags=["remove-input"]
summary["fit_check"] = memory.fit_summary(fit)

# %% tags=["remove-cell"]
settings

# %% [markdown]
# ## Two ways to ask a model
#
# An **instruction-tuned** model is asked the way a chat user would ask it: the question goes into its
# chat template, followed by the header of the assistant's turn, and the next token is the first token
# of its reply. A **pretrained** model has no notion of turns; it gets the bare question (after the BOS
# token its tokenizer adds) and continues the text. The paper treats its models this way, and so does
# `rmbias.logprobs.prompt_ids`. Here is the headline prompt as each model of this profile sees it:

# %%
prompt_table = prompts.select(settings.prompts)
headline_text = prompts.select([prompts.HEADLINE])["text"][0]
formats = []
for key in lm_keys:
    spec = registry.spec(key)
    tokenizer = models.load_tokenizer(key)
    ids = logprobs.prompt_ids(tokenizer, headline_text, spec.instruct, settings.chat_date)
    formats.append({"model": spec.label, "family": spec.family,
                    "kind": "instruction-tuned" if spec.instruct else "pretrained",
                    "tokens": len(ids), "what the model reads": tokenizer.decode(ids)})
formats = pd.DataFrame(formats)
with pd.option_context("display.max_colwidth", None):
    display(formats.style.hide(axis="index").set_properties(subset=["what the model reads"],
                                                          **{"white-space": "pre-wrap", "font-family": "monospace"}))

# %% tags=["remove-input"]
kinds = formats["kind"].value_counts()
chapter.number("n_models", len(lm_keys), display=False)
chapter.number("chat_date_text", "no date, so the day of the run" if settings.chat_date == "unset"
               else f"the fixed date {settings.chat_date}, so the distributions do not depend on the day they were computed",
               display=False)
chapter.number("skipped_unfit", ", ".join(registry.spec(k).label for k in fit.skipped) or "none", display=False)
chapter.number("n_instruct", int(kinds.get("instruction-tuned", 0)), display=False)
chapter.number("n_pretrained", int(kinds.get("pretrained", 0)), display=False)

# %% [markdown]
# This profile has {glue:text}`n_models` language models: {glue:text}`n_instruct` instruction-tuned and
# {glue:text}`n_pretrained` pretrained. Template details matter: in the demo profile SmolLM2's template
# adds a default system prompt ("You are a helpful AI assistant named SmolLM...") that the user never
# typed, and Gemma-3-270M is a pretrained model, so it reads the bare question. The demo's one pair
# therefore compares an instruction-tuned Llama-architecture model with a pretrained Gemma model; the
# paper compares like with like (pretrained with pretrained, instruction-tuned with instruction-tuned).
# Templates that print a date (Llama 3.1 and 3.2) are given {glue:text}`chat_date_text`. The authors'
# script passed none, so a Llama 3.2 template printed the day it ran; the paper profile does the same
# (`CHAT_DATE = "unset"`), and every trace records the prompt as rendered. Models left out because
# they do not fit this device: {glue:text}`skipped_unfit`.

# %% [markdown]
# ## Tracing: one forward pass per prompt
#
# For every model and prompt, `rmbias.logprobs.trace` takes the logits at the last position, upcasts them
# to float32 and applies the log-softmax over the whole vocabulary. The result, a prompts x vocabulary
# array, is written per model with a record of what made it, and read back on the next run: an
# interrupted Colab session resumes with the next model.

# %%
trace_dir = out / "traces"
traces = {}
for key in lm_keys:
    traces[key] = logprobs.trace(key, prompt_table, trace_dir, dtype=registry.dtype_for(key, settings.dtype),
                                 device=device, batch_size=settings.batch_size, quantize=settings.quantize,
                                 date=settings.chat_date)
traced = pd.DataFrame([{"model": t.model, "family": t.family, "instruct": t.instruct, "vocabulary": t.logprobs.shape[1],
                        "prompts": len(t.prompts), "dtype": t.meta["dtype"], "attention": t.meta["attention"],
                        "seconds": t.meta["seconds"]} for t in traces.values()])
traced

# %% [markdown]
# What would each model say first? The most probable first tokens for the headline question:

# %%
top_rows = []
for key, item in traces.items():
    column = item.column(prompts.HEADLINE)
    best = np.argsort(-column)[:10]
    top_rows.append({"model": item.model, **{f"#{i + 1}": f"{item.tokens['token'][t]!r} {np.exp(column[t]):.1%}"
                                             for i, t in enumerate(best)}})
top_first = pd.DataFrame(top_rows).set_index("model")
top_first.T

# %% tags=["remove-cell"]
# remove-cell, not remove-input: write_table returns a path, which would show as this cell's output
chapter.table(top_first.reset_index(), "top_first_tokens", prompt=prompts.HEADLINE)

# %% [markdown]
# Small models rarely answer with a noun at once: their likeliest first tokens are openers such as
# "The" or a line break. The analysis therefore never asks which word is *most* likely overall, only how
# the dictionary's nouns rank *among themselves*, as the paper does.

# %% [markdown]
# ## The paper's Figure 2: single-token nouns
#
# The paper keeps the Big Two nouns whose bare lower-case form (`freedom`, `love`) is exactly the
# decoded string of one token in both vocabularies of a pair, reads each one's log-probability, ranks the
# nouns within each (model, prompt) (1 = most probable), and takes the median rank of each category per
# prompt. Those medians, 54 prompts x 2 categories x 2 models, go into a three-way ANOVA
# `rank ~ category * valence * model`; Welch t-tests compare the two models in each category x valence
# cell, with the Benjamini-Hochberg false discovery rate over the four cells.

# %%
nouns = corpora.big2_nouns()
framing = prompts.all_prompts().set_index("key")["framing"]  # all 54: the released traces hold every prompt


# %%
def category_medians(table: pd.DataFrame, score: str = "logprob") -> pd.DataFrame:
    """Rank the words within (model, prompt) by ``score``; median rank per prompt and category."""
    return ranks.category_medians(table.assign(framing=table["prompt"].map(framing)), model="model", score=score)


# %%
def figure2(medians: pd.DataFrame, order: list[str], label: str):
    """The ANOVA, the Welch tests and the split-violin figure for one model pair."""
    anova, welch = stats.figure2_tests(medians, order)
    marks = {(r["category"], r["framing"]): stats.stars(r["p_fdr"]) for _, r in welch.iterrows()}
    families = dict(zip(medians["model"], medians["family"]))
    fig = plots.split_violins(medians, order, marks=marks, families=families)
    fig.suptitle(label, y=1.09, fontweight="bold", fontsize=11)
    return anova, welch, fig


# %% tags=["hide-input"]
def single_token_pair(pair_traces: list, label: str, figure_name: str, table_name: str, **meta):
    """Figure 2 for one (Gemma, Llama) pair of traces: the nouns that are single tokens in both, their
    median ranks per prompt (written as ``table_name``, with ``meta``), the tests and the figure (saved
    as ``figure_name`` and shown). Returns the shared nouns, the medians, the ANOVA and the Welch tests."""
    shared = logprobs.shared_single_tokens(pair_traces, nouns)
    medians = category_medians(logprobs.single_token_table(pair_traces, shared))
    order = [t.model for t in pair_traces]
    anova, welch, fig = figure2(medians, order, label)
    chapter.figure(fig, figure_name)
    plt.show()
    chapter.table(medians, table_name, pair=order, **meta)
    display(anova.round(4))
    display(welch.round(4))
    return shared, medians, anova, welch


# %%
single_results = {}
for i, (gemma_key, llama_key) in enumerate(pairs):
    pair_traces = [traces[gemma_key], traces[llama_key]]
    order = [t.model for t in pair_traces]
    shared, medians, anova, welch = single_token_pair(pair_traces, f"{order[0]} vs {order[1]}: single-token nouns",
                                                      f"figure2_single_token_pair{i}", f"single_token_medians_pair{i}")
    counts = shared["category"].value_counts()
    single_results[i] = {"pair": order, "n_agency": int(counts.get("Agency", 0)),
                         "n_communion": int(counts.get("Communion", 0)),
                         "anova": anova, "welch": welch}

# %% tags=["remove-input"]
first = single_results[0]
interaction = first["anova"].set_index("term").loc["category:model"]
three_way = first["anova"].set_index("term").loc["category:framing:model"]
chapter.number("pair0_label", " vs ".join(first["pair"]), display=False)
chapter.number("single_n_agency", first["n_agency"], display=False)
chapter.number("single_n_communion", first["n_communion"], display=False)
chapter.number("single_n_dictionary", len(nouns), display=False)
chapter.number("single_F_cat_model", float(interaction["F"]), display=False)
chapter.number("single_p_cat_model", float(interaction["p"]), display=False)
chapter.number("single_F_three", float(three_way["F"]), display=False)
chapter.number("single_p_three", float(three_way["p"]), display=False)
chapter.number("single_df_resid", int(interaction["df_resid"]), display=False)


def direction(welch: pd.DataFrame, pair: list[str], framing_name: str) -> str:
    """A sentence on how the second (Llama) model ranks each category against the first (Gemma)."""
    parts = []
    for category in ("Agency", "Communion"):
        row = welch[(welch["category"] == category) & (welch["framing"] == framing_name)].iloc[0]
        first, second = row[f"mean_{pair[0]}"], row[f"mean_{pair[1]}"]
        word = "better" if second < first else "worse"
        parts.append(f"{category.lower()} nouns {word} ({second:.1f} vs {first:.1f})")
    return f"{pair[1]} ranks " + " and ".join(parts)


chapter.number("single_direction_pos", direction(first["welch"], first["pair"], "positive"), display=False)
chapter.number("single_direction_neg", direction(first["welch"], first["pair"], "negative"), display=False)
summary["single_token"] = {" vs ".join(r["pair"]): {
    "n_agency": r["n_agency"], "n_communion": r["n_communion"],
    "anova": r["anova"].set_index("term")[["df", "F", "p"]].to_dict("index"),
    "welch": r["welch"].to_dict("records")} for r in single_results.values()}

# %% [markdown]
# For {glue:text}`pair0_label`, {glue:text}`single_n_agency` agency and {glue:text}`single_n_communion`
# communion nouns of the {glue:text}`single_n_dictionary` are single tokens in both vocabularies. Each dot
# in the figure is one prompt: the median rank of a category's nouns under one model (lower on the page
# is a worse rank; rank 1 is at the top). The two halves of each violin are the two models, in their
# family colours; the marks above them are the FDR-corrected Welch tests (`n.s.`: not significant).
# On positive prompts, {glue:text}`single_direction_pos` (mean median ranks of the two models; lower is
# better). On negative prompts, {glue:text}`single_direction_neg`.
# The category x model interaction, the term that says the two models order the categories
# differently, has F(1, {glue:text}`single_df_resid`) = {glue:text}`single_F_cat_model:.1f`
# (p = {glue:text}`single_p_cat_model:.2g`); the three-way interaction, which says that difference
# reverses between positive and negative prompts, has F = {glue:text}`single_F_three:.1f`
# (p = {glue:text}`single_p_three:.2g`). The paper reports F(1, 208) = 58.3 for its instruction-tuned
# pair and 43.2 for its pretrained pair (both p < .001), with Gemma ranking communion nouns and Llama
# agency nouns higher on positive prompts. Two cautions travel with every p-value in this chapter: the 54
# prompts are paraphrases of one question, not independent samples, and with one model per family the
# test compares two models, not two families. Chapter 6 takes both up.

# %% [markdown]
# ### Figure 2 from the authors' released log-probabilities
#
# The authors published the log-probabilities their Figure 2 was drawn from: for each of their twelve
# language models, every vocabulary token after each of the 54 prompts (the Hugging Face dataset
# `Oxford-HIPlab/iclr2026-lm-logprobs`). `rmbias.released_logprobs` downloads a model's file once,
# checks it against the sha256 the hub publishes, records the dataset commit, and reads it as a trace
# like the ones above, so the same code draws the paper's two pairs from the paper's own numbers, on all
# 54 prompts, whatever profile built this page. {glue:text}`released_fig2_status`

# %%
released_ids = list(dict.fromkeys(m for pair in registry.FIGURE2_PAIRS for m in pair))
released_traces, released_missing = released_logprobs.released_traces(released_ids, mode=RELEASED)

# %% tags=["remove-input"]
released_sentences = []
for stale in out.glob("released_medians_pair*"):  # a pair drawn by an earlier run may be missing now
    stale.unlink()

# %% tags=["hide-input"]
# the same single_token_pair as above, on the authors' released traces (plus the sentences for the text)
for i, (gemma_id, llama_id) in enumerate(registry.FIGURE2_PAIRS):
    if gemma_id not in released_traces or llama_id not in released_traces:
        continue
    pair_traces = [released_traces[gemma_id], released_traces[llama_id]]
    order = [t.model for t in pair_traces]
    shared, medians, anova, welch = single_token_pair(pair_traces, f"The authors' release: {order[0]} vs {order[1]}",
                                                      f"figure2_released_pair{i}", f"released_medians_pair{i}",
                                                      provenance=[t.meta for t in pair_traces])
    term = anova.set_index("term").loc["category:model"]
    released_sentences.append(
        f"For {order[0]} vs {order[1]} ({len(shared)} shared single-token nouns, {medians['prompt'].nunique()} "
        f"prompts), the category x model interaction has F(1, {int(term['df_resid'])}) = {term['F']:.1f} "
        f"(p = {term['p']:.2g}); {direction(welch, order, 'positive')} on positive prompts.")
    summary.setdefault("single_token_released", {})[" vs ".join(order)] = {
        "anova": anova.set_index("term")[["df", "F", "p"]].to_dict("index"), "welch": welch.to_dict("records"),
        "n_shared": len(shared), "provenance": [t.meta for t in pair_traces]}

# %% tags=["remove-input"]
if released_sentences:
    released_sentences.append("The paper reports F(1, 208) = 43.2 for its pretrained pair and 58.3 for its "
                              "instruction-tuned pair.")
summary["single_token_released_missing"] = released_missing
chapter.number("released_fig2_status", " ".join([*released_sentences, data.missing_note(released_missing,
                                                                                     "Figure 2 from the release")]).strip(),
               display=False)

# %% [markdown]
# ### Do this profile's traces reproduce the release?
#
# Where this profile traces the authors' own models (the paper profile does), its traces can be held
# against theirs, model by model and prompt by prompt: the rank correlation of the log-probabilities over
# the vocabulary both files hold (the same token id decoding to the same string), the largest difference
# anywhere, and the largest difference on the Big Two nouns, which is what Figure 2 ranks. How the chat
# became token ids matters here: the date a Llama 3.1 or 3.2 template prints, and whether the template
# tokenises the chat (one BOS) or the rendered text is tokenised again (two). For the instruction-tuned
# pair of Figure 2, `released_logprobs.rendering_probe` scores the headline question under each
# tokenisation and each candidate date and says which reproduces the release most closely.
# {glue:text}`reproduce_status`

# %%
own_released = [k for k in lm_keys if registry.spec(k).hf_id in released_logprobs.MODELS]

# %% tags=["remove-input"]
reproduce_text = ("This profile traces none of the authors' models, so there is nothing to hold against the release; "
                  "the paper profile does.") if not own_released else ""

# %% tags=["hide-input"]
# released_logprobs.compare per model and prompt; rendering_probe for the instruction-tuned Figure 2 pair
if own_released:
    wanted = list(dict.fromkeys([*prompt_table["key"], prompts.HEADLINE]))
    theirs, theirs_missing = released_logprobs.released_traces([registry.spec(k).hf_id for k in own_released], wanted,
                                                               mode=RELEASED)
    compared = [released_logprobs.compare(traces[k], theirs[registry.spec(k).hf_id], nouns)
                for k in own_released if registry.spec(k).hf_id in theirs]
    if compared:
        comparison = pd.concat(compared, ignore_index=True)
        chapter.table(comparison, "released_comparison")
        per_model = comparison.groupby("model", sort=False).agg(
            prompts=("prompt", "size"), tokens_matched=("tokens_matched", "first"),
            median_spearman=("spearman", "median"), max_abs_diff=("max_abs_diff", "max"),
            max_abs_diff_nouns=("max_abs_diff_nouns", "max"))
        summary["released_comparison"] = per_model.reset_index().to_dict("records")
        display(per_model.style.format(precision=4))
        worst = per_model["max_abs_diff_nouns"].idxmax()
        reproduce_text = (f"Over {len(per_model)} models, the median rank correlation with the release ranges from "
                          f"{per_model['median_spearman'].min():.4f} to {per_model['median_spearman'].max():.4f}; the "
                          f"largest difference on a Big Two noun is {per_model['max_abs_diff_nouns'].max():.3g} nats "
                          f"({worst}).")
    chats = [scoring.ChatFormat(t, d) for t in scoring.TOKENISATIONS
             for d in dict.fromkeys([settings.chat_date, scoring.FIXED_DATE, scoring.UNSET_DATE])]
    for k in [k for k in own_released if registry.spec(k).instruct and registry.spec(k).hf_id in registry.FIGURE2_PAIRS[1]
              and registry.spec(k).hf_id in theirs]:
        model, tokenizer = models.load_causal_lm(k, registry.dtype_for(k, settings.dtype), device,
                                                 quantize=settings.quantize)
        probe = released_logprobs.rendering_probe(model, tokenizer, theirs[registry.spec(k).hf_id], prompts.HEADLINE,
                                                  headline_text, chats)
        del model
        chapter.table(probe, f"rendering_probe_{k.replace('/', '--')}", model=k)
        display(probe.assign(model=registry.spec(k).label).style.format(precision=4))
        summary.setdefault("rendering_probe", {})[k] = probe.to_dict("records")
        reproduce_text += (f" For {registry.spec(k).label}, the rendering closest to the release on the headline "
                           f"question is {probe.loc[0, 'formats']} (largest difference "
                           f"{probe.loc[0, 'max_abs_diff']:.3g} nats, {probe.loc[0, 'n_bos']} BOS).")
    reproduce_text += " " + data.missing_note(theirs_missing, "The comparison with the release")

# %% tags=["remove-input"]
chapter.number("reproduce_status", reproduce_text.strip(), display=False)

# %% [markdown]
# ## Beyond the paper: every noun, every surface form
#
# Restricting the analysis to nouns that happen to be single tokens in both vocabularies keeps a
# minority of the dictionary, and a biased minority: short, frequent words. Tokenizers also treat
# `Love`, ` love` and `love` as different tokens, and a chat model's reply is more likely to start with
# `Love` than with `love`. **Teacher forcing** removes both limits: the log-probability of a word that
# splits into tokens t1 ... tn is log p(t1 | prompt) + log p(t2 | prompt, t1) + ..., each term read from
# one forward pass over the prompt followed by the word. We score each noun in four surface forms (bare,
# leading space, capitalised, both) and add their probabilities: the probability that the reply starts
# with the noun in any of its forms.

# %%
forced_table = prompts.select(settings.forced_prompts or settings.prompts)
forced_nouns = profiles.limit_words(nouns, settings.max_words)  # tiny: a few per category
forms = logprobs.word_forms(forced_nouns)
forced_parts = []
for key in lm_keys:
    forced = logprobs.force_words(key, forced_table, forms["form"].tolist(), trace_dir,
                                  dtype=registry.dtype_for(key, settings.dtype), device=device,
                                  batch_size=settings.batch_size, quantize=settings.quantize,
                                  date=settings.chat_date)
    per_word = logprobs.word_logprobs(forced, forms)
    per_word["family"] = registry.family_of(key)
    forced_parts.append(per_word)
whole = pd.concat(forced_parts, ignore_index=True)

# %% tags=["remove-input"]
chapter.table(whole, "teacher_forced_word_logprobs", prompts=list(forced_table["key"]))
chapter.number("forced_n_prompts", len(forced_table), display=False)
chapter.number("forced_n_words", whole["word"].nunique(), display=False)
chapter.number("forced_n_forms", len(forms), display=False)

# %%
variant_share = (whole.groupby(["model", "best_variant"]).size().unstack(fill_value=0)
                 .pipe(lambda t: t.div(t.sum(axis=1), axis=0)))
variant_share.style.format("{:.0%}").set_caption("share of (prompt, noun) where each form is the most probable")

# %% [markdown]
# All {glue:text}`forced_n_words` nouns were scored in {glue:text}`forced_n_forms` forms on
# {glue:text}`forced_n_prompts` prompts. The table shows which surface form each model finds most
# probable as the start of its reply: the paper's bare lower-case form is rarely the one a model would
# use, which is a reason to check that its conclusion does not hang on that choice.

# %%
forced_results = {}
for i, (gemma_key, llama_key) in enumerate(pairs):
    order = [traces[gemma_key].model, traces[llama_key].model]
    medians = category_medians(whole[whole["model"].isin(order)])
    if medians["prompt"].nunique() < 4:
        print(f"{order}: too few prompts for the tests ({medians['prompt'].nunique()})")
        continue
    anova, welch, fig = figure2(medians, order, f"{order[0]} vs {order[1]}: every noun, teacher-forced")
    chapter.figure(fig, f"figure2_teacher_forced_pair{i}")
    plt.show()
    forced_results[i] = {"pair": order, "anova": anova, "welch": welch}
    display(anova.round(4))
    display(welch.round(4))

# %% tags=["remove-input"]
if 0 in forced_results:
    f_anova = forced_results[0]["anova"].set_index("term")
    chapter.number("forced_F_cat_model", float(f_anova.loc["category:model", "F"]), display=False)
    chapter.number("forced_p_cat_model", float(f_anova.loc["category:model", "p"]), display=False)
    chapter.number("forced_F_three", float(f_anova.loc["category:framing:model", "F"]), display=False)
    chapter.number("forced_p_three", float(f_anova.loc["category:framing:model", "p"]), display=False)
    chapter.number("forced_df_resid", int(f_anova.loc["category:model", "df_resid"]), display=False)
    for framing_name in ("positive", "negative"):
        chapter.number(f"forced_direction_{framing_name[:3]}",
                       direction(forced_results[0]["welch"], forced_results[0]["pair"], framing_name), display=False)
else:
    for name in ("forced_F_cat_model", "forced_p_cat_model", "forced_F_three", "forced_p_three", "forced_df_resid"):
        chapter.number(name, float("nan"), display=False)
    for name in ("forced_direction_pos", "forced_direction_neg"):
        chapter.number(name, "(not computed: too few prompts)", display=False)
summary["teacher_forced"] = {" vs ".join(r["pair"]): {
    "anova": r["anova"].set_index("term")[["df", "F", "p"]].to_dict("index"),
    "welch": r["welch"].to_dict("records")} for r in forced_results.values()}

# %% [markdown]
# With every noun in every form, the same test for the first pair gives F(1,
# {glue:text}`forced_df_resid`) = {glue:text}`forced_F_cat_model:.1f` (p =
# {glue:text}`forced_p_cat_model:.2g`) for the category x model interaction, and F =
# {glue:text}`forced_F_three:.1f` (p = {glue:text}`forced_p_three:.2g`) for the three-way interaction.
# On positive prompts, {glue:text}`forced_direction_pos`; on negative prompts,
# {glue:text}`forced_direction_neg`. Compare the two figures: where the panels agree, the paper's
# single-token shortcut did not decide the result; where they differ, it did.

# %% [markdown]
# ## Every model, one number each
#
# The pair tests use two models at a time. The figure below places every traced model on one scale:
# the mean over prompts of (median rank of agency nouns - median rank of communion nouns), among the
# nouns that are single tokens in *all* traced vocabularies. Negative values mean agency nouns are
# ranked better. The paper's claim predicts Llama models (blue) left of Gemma models (red) on positive
# prompts.

# %%
shared_all = logprobs.shared_single_tokens(list(traces.values()), nouns)
all_medians = category_medians(logprobs.single_token_table(list(traces.values()), shared_all))
per_model = ranks.category_gap(all_medians, by=["model", "family", "framing"])  # paired over prompts

# %% tags=["hide-input"]
fig, ax = plt.subplots(figsize=(7, 0.5 * per_model["model"].nunique() + 1.6))
for offset, framing_name, marker in ((-0.12, "positive", "o"), (0.12, "negative", "s")):
    rows = per_model[per_model["framing"] == framing_name].reset_index(drop=True)
    for y, row in rows.iterrows():
        ax.errorbar(row["gap"], y + offset, xerr=row["sem"], fmt=marker, color=plots.FAMILY_COLOURS[row["family"]],
                    mfc="white" if framing_name == "negative" else None, capsize=2)
ax.set_yticks(range(len(rows)), rows["model"])
ax.axvline(0, color="grey", lw=0.8)
ax.set_xlabel("agency minus communion median rank (negative: agency ranked better)")
ax.legend(handles=[plt.Line2D([], [], color="#555555", marker="o", lw=0, label="positive prompts"),
                   plt.Line2D([], [], color="#555555", marker="s", mfc="white", lw=0, label="negative prompts")],
          frameon=False, loc="best")
chapter.figure(fig, "agency_minus_communion_per_model")
plt.show()

# %% tags=["remove-input"]
chapter.table(per_model, "agency_minus_communion_per_model", n_shared=len(shared_all))
chapter.number("all_n_shared", len(shared_all), display=False)
summary["agency_minus_communion_per_model"] = per_model.to_dict("records")

# %% [markdown]
# Each marker is one model: filled circles for positive prompts, open squares for negative ones, with
# standard errors over prompts; the colour is the model's family. {glue:text}`all_n_shared` nouns are
# single tokens in every vocabulary here. In the demo profile there are two models, so the figure shows
# the pipeline rather than a family comparison; in the paper profile it places all twelve.

# %% tags=["remove-input"]
chapter.finish()
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - Each model's next-token distribution is computed once per prompt over the whole vocabulary, in
#   float32, and stored with its provenance; chapter 4 builds implicit reward models from the same files.
# - The paper's Figure 2 analysis runs end to end: nouns that are single tokens in both vocabularies,
#   ranked by log-probability, median ranks per prompt, the three-way ANOVA and FDR-corrected Welch tests.
# - Teacher forcing extends it to every noun in every surface form; the pair's result can be compared
#   with and without the single-token restriction.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it. They read the traces and tables this chapter already holds (no model is
# run again), so they run in seconds, and each ends with checks (`assert`) that its numbers are
# consistent with the chapter's.

# %% [markdown]
# ### Exercise 1. What the single-token shortcut misses
#
# For the nouns that were teacher-forced, compare each
# noun's log-probability in any of its four surface forms (the table `whole`) with the
# log-probability of its bare lower-case token read off the trace (the paper's route), for every
# model and forced prompt. By how many nats, and so by what factor, does the paper's form
# understate how likely a model is to answer with the noun? Why can the difference never be
# negative?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
missed = []
for key in lm_keys:
    item = traces[key]
    traced_and_forced = [p for p in forced_table["key"] if p in item.prompts]
    single = logprobs.single_token_table([item], forced_nouns, prompts=traced_and_forced)
    both = whole.merge(single[["model", "prompt", "word", "logprob"]], on=["model", "prompt", "word"],
                       suffixes=("_any_form", "_bare_token"))
    both["nats"] = both["logprob_any_form"] - both["logprob_bare_token"]
    missed.append(both)
missed = pd.concat(missed, ignore_index=True)
missed_summary = missed.groupby("model", sort=False)["nats"].agg(["count", "min", "median", "max"])
missed_summary["median factor"] = np.exp(missed_summary["median"])
display(missed_summary.rename(columns={"count": "(prompt, noun) pairs"}).round(2))

assert len(missed) > 0
# the four forms include the bare one, so their summed probability is at least the bare token's
# (up to float32 rounding between the traced and the teacher-forced pass)
assert (missed["nats"] > -1e-3).all()
assert set(missed["word"]) <= set(forced_nouns["word"])

# %% [markdown]
# ### Exercise 2. Mean instead of median
#
# The paper summarises each category by its median rank. Rerun the
# Figure 2 ANOVA for the first pair with the *mean* rank of each category per prompt instead
# (`ranks.median_ranks` with `how="mean"`) and compare the F statistics of the category x model
# and three-way terms with the chapter's. Would the verdicts change?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
gemma_key, llama_key = pairs[0]
pair_traces = [traces[gemma_key], traces[llama_key]]
in_both = set(pair_traces[0].lookup(nouns["word"]).index) & set(pair_traces[1].lookup(nouns["word"]).index)
pair_table = logprobs.single_token_table(pair_traces, nouns[nouns["word"].isin(in_both)])
pair_table["rank"] = ranks.within_ranks(pair_table, ["model", "prompt"], score="logprob")
pair_table["framing"] = pair_table["prompt"].map(framing)
summary_rows = []
for how in ("median", "mean"):
    summarised = ranks.category_medians(pair_table, model="model", how=how)
    terms = stats.anova(summarised, "median_rank", ["category", "framing", "model"]).set_index("term")
    summary_rows.append({"summary": how, **{f"{label} {column}": terms.loc[term, column]
                                              for label, term in (("category:model", "category:model"),
                                                                  ("three-way", "category:framing:model"))
                                              for column in ("F", "p")}})
    assert summarised["median_rank"].between(1, pair_table["word"].nunique()).all()  # ranks run from 1 to n
summary_by_how = pd.DataFrame(summary_rows).set_index("summary")
display(summary_by_how.style.format("{:.3g}"))

assert len(in_both) == single_results[0]["n_agency"] + single_results[0]["n_communion"]  # the chapter's nouns
n_per_cell = pair_table.groupby(["model", "prompt"]).size()
rank_sums = pair_table.groupby(["model", "prompt"])["rank"].sum()
assert np.allclose(rank_sums, n_per_cell * (n_per_cell + 1) / 2)  # ranks are a permutation of 1..n (ties averaged)
chapter_terms = single_results[0]["anova"].set_index("term")  # the median route reproduces the chapter's ANOVA
assert np.isclose(summary_by_how.loc["median", "category:model F"], chapter_terms.loc["category:model", "F"],
                  equal_nan=True)
assert np.isclose(summary_by_how.loc["median", "three-way F"], chapter_terms.loc["category:framing:model", "F"],
                  equal_nan=True)

# %% [markdown]
# ### Exercise 3. Words of your own
#
# Choose eight or so one-word answers that are not Big Two nouns (for
# example *money*, *peace*, *god*, *health*, *knowledge*, *life*, *music*, *nature*). For each
# model, look up their log-probabilities on the headline prompt with `Trace.lookup` and find where
# each would rank among the Big Two nouns that are single tokens in that model's vocabulary. Which
# of your words would beat every noun? Which are not single tokens at all?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
own_words = ["money", "peace", "god", "health", "knowledge", "life", "music", "nature"]
own_words = [w for w in own_words if w not in set(nouns["word"])]  # keep the list apart from the dictionary
own_rows = []
for key in lm_keys:
    item = traces[key]
    noun_logprobs = item.lookup(nouns["word"].tolist())[prompts.HEADLINE]
    own_logprobs = item.lookup(own_words)[prompts.HEADLINE]
    for word in own_words:
        if word in own_logprobs.index:
            rank = 1 + int((noun_logprobs > own_logprobs[word]).sum())
            own_rows.append({"model": item.model, "word": word, "logprob": float(own_logprobs[word]),
                             "rank among nouns": rank, "nouns": len(noun_logprobs)})
        else:
            own_rows.append({"model": item.model, "word": word, "logprob": np.nan, "rank among nouns": np.nan,
                             "nouns": len(noun_logprobs)})
own_ranks = pd.DataFrame(own_rows)
display(own_ranks.pivot(index="word", columns="model", values="rank among nouns")
        .reindex(own_words).style.format("{:.0f}", na_rep="not one token")
        .set_caption("rank among the single-token Big Two nouns (1 = above every noun)"))

found = own_ranks.dropna(subset=["rank among nouns"])
assert found["rank among nouns"].between(1, found["nouns"] + 1).all()
for key in lm_keys:  # a word found by lookup is a token of that vocabulary
    item = traces[key]
    assert set(found.loc[found["model"] == item.model, "word"]) <= set(item.tokens["token"])
