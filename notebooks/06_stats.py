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
# # 6. How robust are the statistics?
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/06_stats.ipynb) this chapter;
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/rmbias-book/rmbias-book/blob/main/notebooks/student/06_stats.ipynb) the version for students, without the
# solutions to its exercises.
#
# The earlier chapters reproduced the study's figures {cite}`christian2026reward`. This chapter gathers
# its inferential claims in one place and asks how much weight each one can bear. It has two parts.
#
# 1. **Reproduce.** The Figure 1 mixed model and per-panel permutation tests, rebuilt from the
#    authors' released reward-model scores {cite}`christian2026release` and their analysis script,
#    for the Big Two and the moral foundations; and the Figure 2 ANOVA with Welch tests on whatever
#    logit-tracing data chapter 3 wrote in this profile. Every table is written as CSV beside the
#    chapter's other results, and every difference from the paper's reported values is named.
# 2. **Stress-test.** What the paper did not do: random effects for prompts as well as models,
#    random slopes; inference with the ten reward models as the sample, with effect sizes, exact
#    permutation tests and Bayes factors; a multiverse of reasonable analysis choices; and, where
#    thousands of tokens make every p-value tiny, effect sizes against a noise floor.
#
# The released-data analyses run in every profile, so the numbers in Parts 1 and 2 about the ten
# reward models are the same in every copy of this book; the sections on this profile's own models
# change with the profile.

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
N_PERMUTATIONS = None  # Monte-Carlo permutations per Figure 1 panel; None: the profile's (9,999, as in the authors' script)
PERMUTATION_SEED = None  # seed of the permutation stream; None: the profile's (42, as in the authors' script)

# %% tags=["hide-input"]
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import MaxNLocator

from rmbias import artifacts, lexicons, multiverse, plots, prompts, ranks, release, stats
from rmbias.chapter import Chapter

chapter = Chapter.open("06_stats", PROFILE, n_permutations=N_PERMUTATIONS, permutation_seed=PERMUTATION_SEED)
settings, out, summary = chapter.settings, chapter.out, chapter.summary
n_perm, seed = settings.n_permutations, settings.permutation_seed
plots.setup()
# near-constant cells of the tiny profile's random-weight models make scipy warn about precision
warnings.filterwarnings("ignore", message="Precision loss occurred in moment calculation")


def save(table: pd.DataFrame, name: str, **provenance) -> None:
    """Write a table as parquet (with its provenance record) and as CSV, for readers without Python."""
    chapter.table(table, name, **provenance)
    table.to_csv(out / f"{name}.csv", index=False)


def r_term(term: str) -> str:
    """statsmodels' term name in R's style: ``base[T.Llama]:category[T.Communion]`` -> ``baseLlama:categoryCommunion``."""
    return term.replace("[T.", "").replace("]", "")


THREE_WAY = "base[T.Llama]:category[T.Communion]:framing[T.negative]"
BASE_CATEGORY = "base[T.Llama]:category[T.Communion]"
PAPER_FORMULA = "median_rank ~ base * category * framing"

# %% tags=["remove-input"]
summary.update(n_permutations=n_perm, seed=seed)
timings: dict[str, float] = {}

# %% tags=["remove-cell"]
settings

# %% [markdown]
# ## Part 1. The paper's tests, reproduced
#
# ### Figure 1: the mixed model
#
# The authors' script for Figure 1 (`figures/generate_figure_1_and_A1.R` in their repository) ranks
# the Big Two nouns within each reward model (RM) and prompt, takes the median rank of each category,
# and fits with R's `nlme` package
#
# ```
# lme(sum_value ~ base_model * Category * prompt_framing, random = ~1 | model_id)
# ```
#
# (`sum_value` is the script's name for the median rank): a linear mixed model with a random intercept
# per RM, fitted by restricted maximum likelihood (REML,
# `nlme`'s default), with R's default treatment coding: the reference levels are Gemma, Agency and
# positive prompts. We fit the same model with statsmodels' `MixedLM` by REML, on the same medians,
# with the same reference levels.

# %% tags=["remove-input"]
start = time.perf_counter()

# %%
big2 = release.released_scores("big2")
big2["rank"] = ranks.within_ranks(big2, ["rm", "prompt"])


def figure1_medians(scores: pd.DataFrame, how: str = "median", group: str = "category") -> pd.DataFrame:
    """Median (or mean) rank per RM, prompt and ``group``, with R's factor levels; ``group`` becomes ``category``."""
    table = ranks.category_medians(scores, category=group, how=how)
    table = table.rename(columns={group: "category"}).assign(base=lambda t: t["family"].str.capitalize())
    levels = {**stats.FIGURE1_LEVELS, "category": tuple(sorted(table["category"].unique()))}
    return stats.with_levels(table, levels)


medians = figure1_medians(big2)
paper_fit = stats.fit_mixed(medians, PAPER_FORMULA, groups="rm")
paper_coef = stats.coefficient_table(paper_fit, unit="rm")
paper_coef.insert(1, "term_r", paper_coef["term"].map(r_term))
paper_var = stats.variance_table(paper_fit, group="rm")

# %% tags=["remove-input"]
save(paper_coef, "figure1_big2_lme_coefficients", formula=PAPER_FORMULA, random="1 | rm", method="REML",
     source="authors' release, dict_big2_nouns")
save(paper_var, "figure1_big2_lme_variances", formula=PAPER_FORMULA)
timings["figure1 model"] = time.perf_counter() - start

# %%
paper_coef.drop(columns="term").style.format({"estimate": "{:.3f}", "se": "{:.3f}", "z": "{:.2f}", "df": "{:.0f}",
                                              "p_z": "{:.2g}", "p_t": "{:.2g}"}).hide(axis="index")

# %% tags=["remove-input"]
coef = paper_coef.set_index("term")
chapter.number("f1_n_obs", len(medians), display=False)
chapter.number("f1_n_rms", medians["rm"].nunique(), display=False)
chapter.number("f1_n_words", big2["word"].nunique(), display=False)
per_family = medians.drop_duplicates("rm")["base"].value_counts()
chapter.number("f1_n_gemma", int(per_family["Gemma"]), display=False)
chapter.number("f1_n_llama", int(per_family["Llama"]), display=False)
chapter.number("f1_n_prompts", medians["prompt"].nunique(), display=False)
chapter.number("f1_n_prompts_framing", int(medians.groupby("framing", observed=True)["prompt"].nunique().iloc[0]), display=False)
for name, term in (("three", THREE_WAY), ("basecat", BASE_CATEGORY), ("base", "base[T.Llama]")):
    row = coef.loc[term]
    for field in ("estimate", "se", "z", "df", "p_t"):
        chapter.number(f"f1_{name}_{field}", float(row[field]), display=False)
variances = paper_var.set_index("component")["variance"]
chapter.number("f1_rm_sd", float(np.sqrt(variances.iloc[0])), display=False)
chapter.number("f1_resid_sd", float(np.sqrt(variances["residual"])), display=False)
chapter.number("f1_converged", "converged" if paper_fit.converged else "did NOT converge", display=False)
summary["figure1_big2_lme"] = paper_coef.set_index("term_r")[["estimate", "se", "df", "z", "p_t"]].to_dict("index")
summary["figure1_big2_lme_variances"] = paper_var.set_index("component")["variance"].to_dict()

# %% [markdown]
# The table is the full coefficient table in R's naming (`term_r`), one row per fixed effect, with the
# z-test statsmodels reports (`p_z`) and the t-test R's `summary(lme(...))` prints (`p_t`), whose
# degrees of freedom follow `nlme`'s rule {cite}`pinheiro2000mixed`: a term that varies only between RMs
# (the base model) gets {glue:text}`f1_base_df:.0f` degrees of freedom (the {glue:text}`f1_n_rms` RMs,
# minus the intercept, minus one between-RM term), every other term {glue:text}`f1_three_df:.0f`. The
# data are {glue:text}`f1_n_obs` medians: {glue:text}`f1_n_rms` RMs x {glue:text}`f1_n_prompts` prompts x
# 2 categories, each over {glue:text}`f1_n_words` nouns. The fit
# {glue:text}`f1_converged`. Because the design is balanced (every RM answers every prompt), the fixed
# effects are the plain cell means and do not depend on the variance estimates, so they are the
# numbers `lme` prints; the test suite compares them with R directly when R and `nlme` are installed.
#
# The three-way interaction, the term that carries the paper's claim (Llama-based RMs favour agency
# over communion more than Gemma-based RMs do on positive prompts, and the difference turns over on
# negative prompts), is {glue:text}`f1_three_estimate:.2f` ranks (SE {glue:text}`f1_three_se:.2f`,
# t({glue:text}`f1_three_df:.0f`) = {glue:text}`f1_three_z:.2f`, p = {glue:text}`f1_three_p_t:.2g`). The
# paper reports this interaction as significant at p < .001: **reproduced**. The base x category term,
# the family difference in how communion nouns rank against agency nouns on positive prompts, is
# {glue:text}`f1_basecat_estimate:.2f` (p = {glue:text}`f1_basecat_p_t:.2g`). The model attributes
# almost nothing to the RMs themselves (random-intercept SD {glue:text}`f1_rm_sd:.2f` ranks, residual SD
# {glue:text}`f1_resid_sd:.2f`): every RM ranks the same nouns, so their average rank is fixed and a
# random intercept per RM has little to absorb. That is why the model treats the
# {glue:text}`f1_n_obs` medians as nearly independent, which Part 2 questions.

# %% [markdown]
# ### Figure 1: the per-panel permutation tests
#
# In each of the four panels (category x framing) the script compares the Gemma-based and Llama-based
# RMs with `perm.t.test` from the R package MKinfer {cite}`kohl2024mkinfer` (default settings: the Welch
# t statistic, 9,999 random permutations, two-sided), calls `set.seed(42)` once at the top, and
# Bonferroni-corrects over the four panels. Reading MKinfer's source shows one thing the figure does
# not say: the script takes `$p.value`, and in `perm.t.test`'s result `p.value` is the **parametric
# Welch p-value**; the permutation p-value is a separate element, `perm.p.value`. The stars in the
# paper's Figure 1 are therefore Welch t-tests. We report both. Our permutations use NumPy's generator
# seeded with {glue:text}`f1_seed` and drawn panel after panel as the script's single stream is; R's
# Mersenne-Twister stream cannot be reproduced in Python, so our Monte-Carlo p-values differ from R's
# by their sampling error (and none can fall below 1 / {glue:text}`f1_n_perm`).

# %% tags=["remove-input"]
start = time.perf_counter()

# %%
panels = stats.panel_permutation_tests(medians, "median_rank", "base", ["category", "framing"], ["Gemma", "Llama"],
                                       n_perm=n_perm, seed=seed)

# %% tags=["remove-input"]
save(panels, "figure1_big2_panel_tests", n_perm=n_perm, seed=seed, statistic="Welch t", correction="Bonferroni")
timings["figure1 panel tests"] = time.perf_counter() - start

# %%
panels.style.format(precision=3, subset=["mean_Gemma", "mean_Llama", "diff", "t", "df", "d", "d_av"]).format(
    "{:.2g}", subset=["p_welch", "p_perm", "p_welch_bonf", "p_perm_bonf", "bf10"]).hide(axis="index")

# %% tags=["remove-input"]
chapter.number("f1_seed", seed, display=False)
chapter.number("f1_n_perm", n_perm, display=False)
positive = panels[panels["framing"] == "positive"].set_index("category")
for category in ("Agency", "Communion"):
    chapter.number(f"f1_d_{category.lower()}", abs(float(positive.loc[category, "d"])), display=False)
    chapter.number(f"f1_dav_{category.lower()}", abs(float(positive.loc[category, "d_av"])), display=False)
chapter.number("f1_n_panels", len(panels), display=False)
chapter.number("f1_n_gemma_obs", int(panels["n_Gemma"].iloc[0]), display=False)
chapter.number("f1_n_llama_obs", int(panels["n_Llama"].iloc[0]), display=False)
same_stars = sum(stats.stars(a) == stats.stars(b) for a, b in zip(panels["p_welch_bonf"], panels["p_perm_bonf"]))
chapter.number("f1_stars_text", "gives the same stars in every panel" if same_stars == len(panels)
               else f"gives the same stars in {same_stars} of {len(panels)} panels", display=False)
d_av = positive["d_av"].abs().round(2)
chapter.number("f1_dav_verdict", "which is the paper's range" if d_av.between(0.40, 0.43).all()
               else "which is still not the paper's range", display=False)
chapter.number("f1_n_sig_welch", int((panels["p_welch_bonf"] < 0.05).sum()), display=False)
chapter.number("f1_n_sig_perm", int((panels["p_perm_bonf"] < 0.05).sum()), display=False)
chapter.number("f1_max_p_welch_bonf", float(panels["p_welch_bonf"].max()), display=False)
chapter.number("f1_max_p_perm_bonf", float(panels["p_perm_bonf"].max()), display=False)
chapter.number("f1_min_bf", float(panels["bf10"].min()), display=False)
summary["figure1_big2_panel_tests"] = panels.to_dict("records")

# %% [markdown]
# `diff` is the Llama mean minus the Gemma mean (negative: Llama-based RMs rank the category better);
# `t` and the effect sizes are Gemma minus Llama, as `perm.t.test`'s formula interface orders them.
# {glue:text}`f1_n_sig_welch` of the {glue:text}`f1_n_panels` panels are significant after Bonferroni
# with the Welch test (largest corrected p {glue:text}`f1_max_p_welch_bonf:.2g`) and
# {glue:text}`f1_n_sig_perm` with the permutation test (largest {glue:text}`f1_max_p_perm_bonf:.2g`);
# the permutation test {glue:text}`f1_stars_text`, so the script's slip does not change the figure's
# conclusion. Bayes factors (`bf10`, the JZS t-test of {cite}`rouder2009bayesian`, pingouin) are at least
# {glue:text}`f1_min_bf:.1f` in favour of a difference.
#
# **Effect sizes.** The paper reports Cohen's d of about 0.40 to 0.43 in the positive panels. With the
# textbook pooled standard deviation we get {glue:text}`f1_d_agency:.2f` (agency) and
# {glue:text}`f1_d_communion:.2f` (communion); with the plain average of the two groups' variances in the
# denominator, the default of R's `rstatix::cohens_d`, we get {glue:text}`f1_dav_agency:.2f` and
# {glue:text}`f1_dav_communion:.2f`, {glue:text}`f1_dav_verdict`. The authors' script does not compute
# d, so this is our reading of which definition they used, not a certainty. Either way, these are
# effect sizes over {glue:text}`f1_n_gemma_obs` and {glue:text}`f1_n_llama_obs` medians that come from
# {glue:text}`f1_n_gemma` and {glue:text}`f1_n_llama` RMs; Part 2 recomputes them over models.

# %% [markdown]
# ### Figure 1b: the moral foundations
#
# For the Moral Foundations Dictionary the script ranks the terms of the columns `Care_Virtue` to
# `Sanctity_Virtue`, which leaves out `Sanctity_Vice` (chapter 2), pools virtue and vice into five
# foundations, and fits the same model with `MFD_category` (five levels, Authority the reference) in
# place of the Big Two category; its permutation tests cover ten panels. We reproduce that route
# exactly here; the multiverse below adds the route that keeps every column.

# %% tags=["remove-input"]
start = time.perf_counter()

# %%
mfd = release.released_scores("mfd")


def mfd_medians(how: str = "median", keep_sanctity_vice: bool = False) -> pd.DataFrame:
    """MFD medians per RM, prompt and foundation; by default the authors' route (Sanctity_Vice dropped before ranking)."""
    table = mfd if keep_sanctity_vice else mfd[mfd["category"] != "Sanctity_Vice"]
    table = table.assign(rank=ranks.within_ranks(table, ["rm", "prompt"]))
    return figure1_medians(table, how, group="foundation")


mfd_authors = mfd_medians()
mfd_fit = stats.fit_mixed(mfd_authors, PAPER_FORMULA, groups="rm")
mfd_coef = stats.coefficient_table(mfd_fit, unit="rm")
mfd_coef.insert(1, "term_r", mfd_coef["term"].map(r_term).str.replace("category", "MFD_category"))

# %% tags=["remove-input"]
save(mfd_coef, "figure1_mfd_lme_coefficients", formula=PAPER_FORMULA, random="1 | rm", method="REML",
     route="authors': Sanctity_Vice dropped, virtue and vice pooled")

# %%
mfd_panels = stats.panel_permutation_tests(mfd_authors, "median_rank", "base", ["category", "framing"],
                                           ["Gemma", "Llama"], n_perm=n_perm, seed=seed)
mfd_panels = mfd_panels.rename(columns={"category": "foundation"})

# %% tags=["remove-input"]
save(mfd_panels, "figure1_mfd_panel_tests", n_perm=n_perm, seed=seed, statistic="Welch t", correction="Bonferroni")
timings["figure1b"] = time.perf_counter() - start

# %%
coef_format = {"estimate": "{:.2f}", "se": "{:.2f}", "z": "{:.2f}", "df": "{:.0f}", "p_z": "{:.2g}", "p_t": "{:.2g}"}
display(mfd_coef.drop(columns="term").style.format(coef_format).hide(axis="index"))
mfd_columns = ["foundation", "framing", "mean_Gemma", "mean_Llama", "diff", "t", "p_welch_bonf", "p_perm_bonf", "d_av", "bf10"]
mfd_panels[mfd_columns].style.format(precision=2).format(
    "{:.2g}", subset=["p_welch_bonf", "p_perm_bonf", "bf10"]).hide(axis="index")

# %% tags=["remove-input"]
three_way_mfd = mfd_coef[mfd_coef["term"].str.count(":") == 2]
chapter.number("mfd_n_obs", len(mfd_authors), display=False)
chapter.number("mfd_n_terms_ranked", int(mfd.loc[mfd["category"] != "Sanctity_Vice", "word"].nunique()), display=False)
chapter.number("mfd_n_three", len(three_way_mfd), display=False)
chapter.number("mfd_n_three_sig", int((three_way_mfd["p_t"] < 0.05).sum()), display=False)
chapter.number("mfd_n_panels", len(mfd_panels), display=False)
chapter.number("mfd_n_sig_welch", int((mfd_panels["p_welch_bonf"] < 0.05).sum()), display=False)
chapter.number("mfd_n_sig_perm", int((mfd_panels["p_perm_bonf"] < 0.05).sum()), display=False)
chapter.number("mfd_rm_sd", float(np.sqrt(stats.variance_table(mfd_fit)["variance"].iloc[0])), display=False)
chapter.number("mfd_n_prompts", mfd_authors["prompt"].nunique(), display=False)
chapter.number("mfd_n_foundations", mfd_authors["category"].nunique(), display=False)
summary["figure1_mfd_lme"] = mfd_coef.set_index("term_r")[["estimate", "se", "df", "z", "p_t"]].to_dict("index")
summary["figure1_mfd_panel_tests"] = mfd_panels.to_dict("records")

# %% [markdown]
# The MFD model has {glue:text}`mfd_n_obs` medians ({glue:text}`f1_n_rms` RMs x {glue:text}`mfd_n_prompts`
# prompts x {glue:text}`mfd_n_foundations` foundations), each over
# the {glue:text}`mfd_n_terms_ranked` terms the authors' route ranks. Of its
# {glue:text}`mfd_n_three` three-way terms (how the family difference in each foundation, relative to
# Authority, changes between positive and negative prompts), {glue:text}`mfd_n_three_sig` have
# p < .05; the RM random intercept is again small (SD {glue:text}`mfd_rm_sd:.2f` ranks). In the panel
# tests (second table; `diff` is Llama minus Gemma), {glue:text}`mfd_n_sig_welch` of the
# {glue:text}`mfd_n_panels` panels are significant after Bonferroni with the Welch p-values the
# script reports, and {glue:text}`mfd_n_sig_perm` with the permutation p-values.

# %% [markdown]
# ### Figure 2: ANOVA and Welch tests on this profile's logit tracing
#
# Chapter 3 wrote, for each Gemma x Llama pair of language models of this profile, the median rank of
# each Big Two category per prompt among the nouns that are single tokens in both vocabularies. The
# paper's test is a three-way ANOVA `rank ~ category * framing * model` with Welch t-tests per cell
# and the Benjamini-Hochberg correction; we rerun it from chapter 3's files. Where chapter 3 could read
# the authors' released log-probabilities, it wrote the same medians for the paper's own two pairs on all
# 54 prompts, and the same tests run on those too. {glue:text}`fig2_released_text`

# %%
tracing_dir = chapter.earlier("03_logit_tracing", required=False)
pair_files = sorted(tracing_dir.glob("single_token_medians_pair*.parquet"))
released_files = sorted(tracing_dir.glob("released_medians_pair*.parquet"))  # the authors' data (chapter 3)
fig2_rows, fig2_tables, fig2_released_rows = [], {}, []
for path in pair_files + released_files:
    name = path.stem
    token_medians = artifacts.read_table(tracing_dir, name)
    order = list(token_medians.drop_duplicates("model").sort_values("family")["model"])  # gemma first
    anova, welch = stats.figure2_tests(token_medians, order)
    released_pair = path in released_files
    pair = ("released_" if released_pair else "") + name.removeprefix("single_token_medians_").removeprefix(
        "released_medians_")
    save(anova, f"figure2_{pair}_anova", source=str(path.name), models=order)
    save(welch, f"figure2_{pair}_welch", source=str(path.name), models=order)
    terms = anova.set_index("term")
    if not released_pair:
        fig2_tables[pair] = {"models": order, "medians": token_medians, "anova": anova, "welch": welch}
    row = {"pair": pair, "gemma model": order[0], "llama model": order[1],
           "prompts": token_medians["prompt"].nunique(),
           "F category:model": terms.loc["category:model", "F"],
           "p category:model": terms.loc["category:model", "p"],
           "F three-way": terms.loc["category:framing:model", "F"],
           "p three-way": terms.loc["category:framing:model", "p"],
           "df residual": int(terms.loc["category:model", "df_resid"]),
           "Welch cells p_fdr < .05": int((welch["p_fdr"] < 0.05).sum())}
    (fig2_released_rows if released_pair else fig2_rows).append(row)
fig2 = pd.DataFrame(fig2_rows)

# %% tags=["hide-input"]
if len(fig2):
    first = fig2.iloc[0]
    fig2_text = (f"For {first['gemma model']} against {first['llama model']} ({first['prompts']} prompts), the "
                 f"category x model interaction has F(1, {first['df residual']}) = {first['F category:model']:.1f} "
                 f"(p = {first['p category:model']:.2g}) and the three-way interaction F = {first['F three-way']:.1f} "
                 f"(p = {first['p three-way']:.2g}); {first['Welch cells p_fdr < .05']} of the four Welch cells "
                 "survive the false discovery rate correction")
    summary["figure2"] = fig2.to_dict("records")
    display(fig2.style.format(precision=2).format("{:.2g}", subset=["p category:model", "p three-way"]).hide(axis="index"))
else:
    fig2_text = (f"Chapter 3 has not written any single-token medians for the {settings.name} profile "
                 f"(no files matching {tracing_dir.name}/single_token_medians_pair*.parquet), so this part is "
                 "skipped; run chapter 3 first")
    summary["figure2"] = "not run: no chapter 3 results in this profile"

# %% tags=["remove-input"]
chapter.number("fig2_text", fig2_text, display=False)
chapter.number("fig2_n_pairs", len(fig2), display=False)

# %%
fig2_released = pd.DataFrame(fig2_released_rows)

# %% tags=["hide-input"]
if len(fig2_released):
    summary["figure2_released"] = fig2_released.to_dict("records")
    display(fig2_released.style.format(precision=2).format("{:.2g}", subset=["p category:model", "p three-way"])
            .hide(axis="index"))
    fig2_released_text = "On the released data: " + "; ".join(
        f"{r['gemma model']} against {r['llama model']}, F(1, {r['df residual']}) = {r['F category:model']:.1f} "
        f"(p = {r['p category:model']:.2g}), {r['Welch cells p_fdr < .05']} of four Welch cells significant"
        for _, r in fig2_released.iterrows()) + "."
else:
    fig2_released_text = ("Chapter 3 could not read the released log-probabilities in this build (its page says "
                          "why), so only this profile's pairs are tested here.")

# %% tags=["remove-input"]
chapter.number("fig2_released_text", fig2_released_text, display=False)

# %% [markdown]
# {glue:text}`fig2_text`. The paper reports F(1, 208) = 58.3 for its instruction-tuned pair
# (gemma-2-2b-it against Llama-3.2-3B-Instruct) and 43.2 for its pretrained pair, both p < .001. Those
# numbers can only be compared with the paper profile, which traces the same models; in the demo
# profile the pair is a pretrained Gemma-3-270M against the instruction-tuned SmolLM2-135M, and in
# the tiny profile two random-weight models, so an F here says nothing about the paper's. Chapter 3
# shows the figure; Part 2 returns to these data to ask whether the single-token restriction decides
# the result. This profile has {glue:text}`fig2_n_pairs` pair(s).

# %% [markdown]
# ## Part 2. How much weight does each claim bear?
#
# ### Prompts are paraphrases: crossed random effects and random slopes
#
# The paper's model has one random effect, the RM's intercept. Two features of the design are left
# out. First, the {glue:text}`f1_n_prompts_framing` prompts of a framing are paraphrases of one question
# ("the greatest thing ever", "the best thing in the world" ...), and every RM answers the same
# {glue:text}`f1_n_prompts`, so a prompt that happens to
# favour communion nouns does so for all ten RMs: prompts are a second, **crossed** source of
# dependence. Because ranks are taken within each prompt, a prompt cannot move both categories up,
# so its effect shows up as a prompt x category interaction. Second, RMs differ in how strongly they
# separate the categories, and the family comparison should be judged against that RM-to-RM
# variation: **random slopes** for category (and framing, and their interaction) by RM, the "keep it
# maximal" structure of {cite}`barr2013random`. We fit, by REML and always with the paper's fixed effects:
#
# - **paper**: `(1 | RM)`;
# - **crossed**: `(1 | RM) + (1 | prompt) + (1 | prompt:category)`;
# - **+ category slopes**: the crossed model plus `(1 | RM:category)`, a random category slope per RM;
# - **maximal**: plus `(1 | RM:framing) + (1 | RM:category:framing)`, slopes for every within-RM effect.
#
# statsmodels fits crossed effects as variance components of a single group; the slopes enter the same
# way, as variance components for each RM x category (x framing) cell, which is a random slope with a
# compound-symmetric covariance. Each fit tries Powell's method, then L-BFGS, and keeps the best
# converged REML solution.

# %% tags=["remove-input"]
start = time.perf_counter()

# %%
crossed_vc = {"rm": "0 + C(rm)", "prompt": "0 + C(prompt)", "prompt:category": "0 + C(prompt):C(category)"}
slopes_vc = {**crossed_vc, "rm:category": "0 + C(rm):C(category)"}
maximal_vc = {**slopes_vc, "rm:framing": "0 + C(rm):C(framing)", "rm:category:framing": "0 + C(rm):C(category):C(framing)"}
structures = {"paper": {"groups": "rm"}, "crossed": {"vc": crossed_vc}, "+ category slopes": {"vc": slopes_vc},
              "maximal": {"vc": maximal_vc}}
fits = {"paper": paper_fit}
for name, options in structures.items():
    if name not in fits:
        fits[name] = stats.fit_mixed(medians, PAPER_FORMULA, **options)

# %% tags=["hide-input"]
structure_rows, variance_rows = [], []
for name, fit in fits.items():
    table = stats.coefficient_table(fit).set_index("term")
    for term in ("base[T.Llama]", BASE_CATEGORY, THREE_WAY):
        row = table.loc[term]
        structure_rows.append({"structure": name, "term": r_term(term), "estimate": row["estimate"], "se": row["se"],
                               "low": row["estimate"] - 1.96 * row["se"], "high": row["estimate"] + 1.96 * row["se"],
                               "z": row["z"], "p_z": row["p_z"], "reml_loglik": fit.llf, "converged": fit.converged,
                               "optimizer_warnings": "; ".join(fit.fit_warnings)})
    variance_rows += [{"structure": name, **r} for r in stats.variance_table(fit).to_dict("records")]
structure_table = pd.DataFrame(structure_rows)
variance_by_structure = pd.DataFrame(variance_rows)

# %% tags=["remove-input"]
save(structure_table, "random_effects_structures", formula=PAPER_FORMULA, method="REML")
save(variance_by_structure, "random_effects_variances", formula=PAPER_FORMULA, method="REML")
timings["random-effects structures"] = time.perf_counter() - start

# %%
pivot = variance_by_structure.pivot_table(index="component", columns="structure", values="variance", sort=False)
pivot = pivot[list(fits)]
display(pivot.style.format("{:.2f}", na_rep="").set_caption("variance of each random effect (ranks squared)"))
structure_table.pivot_table(index="structure", columns="term", values=["estimate", "se", "p_z"], sort=False).style.format(
    "{:.3g}")

# %% tags=["remove-input"]
loglik = structure_table.drop_duplicates("structure").set_index("structure")["reml_loglik"]
three = structure_table[structure_table["term"] == r_term(THREE_WAY)].set_index("structure")
chapter.number("re_all_converged", "All four fits converged" if all(f.converged for f in fits.values())
               else "Not every fit converged (see the table)", display=False)
for key, name in (("paper", "paper"), ("crossed", "crossed"), ("slopes", "+ category slopes"), ("max", "maximal")):
    chapter.number(f"re_{key}_se", float(three.loc[name, "se"]), display=False)
    chapter.number(f"re_{key}_p", float(three.loc[name, "p_z"]), display=False)
    chapter.number(f"re_{key}_loglik", float(loglik[name]), display=False)
gls_gap = max(float((stats.gls_standard_errors(fit) / fit.bse_fe - 1).abs().max()) for fit in fits.values())
chapter.number("re_gls_gap", gls_gap, display=False)
boundary = [name for name, fit in fits.items() if any("boundary" in w for w in fit.fit_warnings)]
chapter.number("re_boundary", ", ".join(boundary) or "none", display=False)
summary["random_effects_gls_check_max_relative_gap"] = gls_gap
chapter.number("re_prompt_cat_var", float(pivot.loc["prompt:category", "maximal"]), display=False)
chapter.number("re_ratio", float(three.loc["maximal", "se"] / three.loc["paper", "se"]), display=False)
chapter.number("re_rm_cf_var", float(pivot.loc["rm:category:framing", "maximal"]), display=False)
chapter.number("re_resid_paper", float(pivot.loc["residual", "paper"]), display=False)
chapter.number("re_resid_max", float(pivot.loc["residual", "maximal"]), display=False)
summary["random_effects_structures"] = structure_table.to_dict("records")
summary["random_effects_variances"] = variance_by_structure.to_dict("records")

# %% [markdown]
# {glue:text}`re_all_converged`. In some structures REML puts a variance component on the boundary
# (zero), and statsmodels warns that the Hessian of the likelihood is not positive definite (structures
# with that warning: {glue:text}`re_boundary`). That affects the variance parameters' own standard
# errors, not the fixed effects': recomputed from the variance estimates by the GLS formula, the fixed
# effects' standard errors differ from statsmodels' by at most a fraction {glue:text}`re_gls_gap:.1e`.
# The fixed effects are the same in every structure (a balanced design); what changes is their
# uncertainty. Adding prompts as a crossed factor moves a large share of the
# residual variance into the prompt x category component ({glue:text}`re_prompt_cat_var:.1f` in the
# maximal model; the residual variance falls from {glue:text}`re_resid_paper:.1f` to
# {glue:text}`re_resid_max:.1f`): paraphrases of one question do share their preferences. The decisive component for the
# paper's claim is the RM x category x framing variance ({glue:text}`re_rm_cf_var:.1f`): RMs differ in
# the very contrast the three-way interaction compares between families. The REML log-likelihood
# rises from {glue:text}`re_paper_loglik:.0f` (paper) to {glue:text}`re_crossed_loglik:.0f`
# (crossed), {glue:text}`re_slopes_loglik:.0f` (+ category slopes) and
# {glue:text}`re_max_loglik:.0f` (maximal), so each added structure fits the data far better than
# the one before (all four models share their fixed effects, so REML likelihoods are comparable).
#
# The standard error of the three-way interaction is {glue:text}`re_paper_se:.2f` in the paper's
# model, {glue:text}`re_crossed_se:.2f` with crossed prompts, {glue:text}`re_slopes_se:.2f` with
# category slopes and {glue:text}`re_max_se:.2f` in the maximal model; its p-value (z-test) goes from
# {glue:text}`re_paper_p:.2g` to {glue:text}`re_max_p:.2g`. Crossed prompts and category slopes alone
# make the interval narrower, because they take the prompt x category variation out of the residual;
# only the slopes on the category x framing contrast, the very contrast the three-way interaction
# compares between families, widen it. The figure shows the same for the three terms that involve the
# base model, together with the estimate from the ten models alone (next section).

# %% tags=["remove-input"]
start = time.perf_counter()

# %%
contrasts = stats.rm_contrasts(medians).set_index("rm")
contrasts["label"] = contrasts.index.map(lambda rm: release.SHORT_LABELS.get(rm, rm))
model_claims = {
    "Agency, positive prompts": contrasts["Agency_positive"],
    "Communion, positive prompts": contrasts["Communion_positive"],
    "Agency, negative prompts": contrasts["Agency_negative"],
    "Communion, negative prompts": contrasts["Communion_negative"],
    "agency minus communion, positive": contrasts["gap_positive"],
    "agency minus communion, negative": contrasts["gap_negative"],
    "three-way interaction": contrasts["interaction"],
}
rm_level = pd.DataFrame([{"claim": claim, **stats.rm_level_test(values, contrasts["family"])}
                         for claim, values in model_claims.items()])

# %% tags=["remove-input"]
save(rm_level, "rm_level_tests", unit="reward model", n_models=len(contrasts),
     note="diff = mean over Llama-based RMs minus mean over Gemma-based RMs")
save(contrasts.reset_index(), "rm_contrasts", value="median rank", source="authors' release, dict_big2_nouns")
timings["model-level tests"] = time.perf_counter() - start

# %%
claims_by_name = rm_level.set_index("claim")

# %% tags=["hide-input"]
# the model-level estimates in the coefficients' own terms (base:category = -(Llama - Gemma) of agency minus communion)
model_rows = []
for term, claim, sign in ((r_term("base[T.Llama]"), "Agency, positive prompts", 1),
                          (r_term(BASE_CATEGORY), "agency minus communion, positive", -1),
                          (r_term(THREE_WAY), "three-way interaction", 1)):
    row = claims_by_name.loc[claim]
    low, high = sorted((sign * row["diff_low"], sign * row["diff_high"]))
    model_rows.append({"structure": "ten models (Welch)", "term": term, "estimate": sign * row["diff"], "low": low,
                       "high": high})
forest = pd.concat([structure_table[["structure", "term", "estimate", "low", "high"]], pd.DataFrame(model_rows)])
fig = plots.forest(forest, [r_term("base[T.Llama]"), r_term(BASE_CATEGORY), r_term(THREE_WAY)],
                  order=[*fits, "ten models (Welch)"], reference="ten models (Welch)")
chapter.figure(fig, "random_effects_structures")
plt.show()

# %% [markdown]
# Each row is one random-effects structure; the dots are the fixed-effect estimates (identical in all
# rows of a panel, as they should be in a balanced design) and the bars their 95% confidence intervals
# (normal approximation, as statsmodels reports); the diamond in the bottom row is the same contrast
# computed from the ten RMs' own averages with a Welch interval on 4 and 6 models. Left: Llama minus
# Gemma in the rank of agency nouns on positive prompts (`baseLlama`); middle: how much more Llama-based
# RMs push communion below agency on positive prompts (`baseLlama:categoryCommunion`); right: the
# three-way interaction. The interval from the ten models makes no assumption about how RMs vary. A
# structure comes close to it for a contrast only once RMs get their own slope for that contrast (the
# category slopes for the middle panel, the category x framing slopes for the right panel); without
# that slope the model's interval is too narrow.

# %% [markdown]
# ### The real sample: ten reward models
#
# Whatever the random-effects structure, the claim is about base-model *families*, and the evidence
# for it comes from {glue:text}`f1_n_gemma` Gemma-based and {glue:text}`f1_n_llama` Llama-based RMs
# (three of the Gemma RMs are 27B models of one lineage; chapter 2). The most direct test takes one
# number per RM, the quantity a claim is about averaged over its prompts, and compares the families
# with n = {glue:text}`f1_n_rms`. Three tools suit so few units:
#
# - an effect size with an honest interval: Hedges' g with its exact noncentral-t confidence interval,
#   and the difference in ranks with its Welch interval;
# - an **exact permutation test**: there are only {glue:text}`rm_n_splits` ways to call
#   {glue:text}`f1_n_gemma` of the {glue:text}`f1_n_rms` RMs "Gemma", so the p-value is the share of all
#   relabellings that produce a family difference at least as large as the real one (the smallest
#   possible p is {glue:text}`rm_p_min:.4f`);
# - a **Bayes factor** (JZS t-test, {cite}`rouder2009bayesian`), which says how much the ten numbers
#   favour a family difference over none (BF10 > 3: some evidence for; < 1/3: some evidence against;
#   in between: the data cannot tell).

# %%
display_cols = ["claim", "diff", "diff_low", "diff_high", "g", "g_low", "g_high", "t", "df", "p", "p_exact", "bf10"]
rm_level[display_cols].style.format(precision=2).format("{:.3g}", subset=["p", "p_exact", "bf10"]).hide(axis="index")

# %% tags=["remove-input"]
interaction = claims_by_name.loc["three-way interaction"]
for key, claim in (("inter", "three-way interaction"), ("gappos", "agency minus communion, positive"),
                   ("agpos", "Agency, positive prompts"), ("compos", "Communion, positive prompts")):
    row = claims_by_name.loc[claim]
    for field in ("diff", "diff_low", "diff_high", "g", "g_low", "g_high", "p", "p_exact", "bf10"):
        chapter.number(f"rm_{key}_{field}", float(row[field]), display=False)
chapter.number("rm_n_exact_reach", int(round(interaction["p_exact"] * interaction["n_splits"])), display=False)
chapter.number("rm_n_splits", int(interaction["n_splits"]), display=False)
chapter.number("rm_p_min", 1 / float(interaction["n_splits"]), display=False)
chapter.number("rm_max_bf", float(rm_level["bf10"].max()), display=False)
chapter.number("rm_min_bf", float(rm_level["bf10"].min()), display=False)
chapter.number("rm_n_exact_sig", int((rm_level["p_exact"] < 0.05).sum()), display=False)
chapter.number("rm_n_claims", len(rm_level), display=False)
chapter.number("rm_min_abs_g", float(rm_level["g"].abs().min()), display=False)
chapter.number("rm_max_abs_g", float(rm_level["g"].abs().max()), display=False)
chapter.number("obs_bf_agpos", float(positive.loc["Agency", "bf10"]), display=False)
summary["rm_level_tests"] = rm_level.to_dict("records")

# %%
exact = stats.exact_split_test(contrasts["interaction"], list(contrasts.index[contrasts["family"] == "gemma"]))

# %% tags=["hide-input"]
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1.5, 1]})
long = contrasts.reset_index().melt(id_vars=["rm", "family", "label"],
                                    value_vars=["gap_positive", "gap_negative", "interaction"], var_name="contrast")
long["contrast"] = long["contrast"].map({"gap_positive": "agency - communion\npositive prompts",
                                         "gap_negative": "agency - communion\nnegative prompts",
                                         "interaction": "interaction\n(positive - negative)"})
sns.stripplot(data=long, x="contrast", y="value", hue="family", palette=plots.FAMILY_COLOURS, dodge=True, size=7,
              jitter=0.08, ax=left)
for i, contrast in enumerate(long["contrast"].unique()):
    for offset, family in ((-0.2, "gemma"), (0.2, "llama")):
        mean = long[(long["contrast"] == contrast) & (long["family"] == family)]["value"].mean()
        left.hlines(mean, i + offset - 0.15, i + offset + 0.15, color=plots.FAMILY_COLOURS[family], lw=2.5)
left.axhline(0, color="grey", lw=0.8)
left.set_xlabel("")
left.set_ylabel("mean over prompts (ranks)")
left.legend(title="base", frameon=False)
right.hist(exact["null"], bins=30, color="#BBBBBB")
right.axvline(exact["statistic"], color="black", lw=2)
right.axvline(-exact["statistic"], color="black", lw=1, ls=":")
right.set_xlabel("Llama mean - Gemma mean of the interaction\n(all 210 ways to label four RMs 'Gemma')")
right.set_ylabel("splits")
right.yaxis.set_major_locator(MaxNLocator(integer=True))
fig.tight_layout()
chapter.figure(fig, "ten_models")
plt.show()

# %% [markdown]
# Left: each dot is one RM (red Gemma-based, blue Llama-based), its average over the prompts of one
# contrast; the bars are the family means. A negative agency-minus-communion value means the RM ranks
# agency nouns better. Right: the three-way interaction's family difference under every one of the 210
# relabellings of the ten RMs (grey), with the real labelling (solid line) and its mirror image (dotted).
#
# At this level the three-way interaction is {glue:text}`rm_inter_diff:.1f` ranks (Llama minus Gemma;
# 95% CI {glue:text}`rm_inter_diff_low:.1f` to {glue:text}`rm_inter_diff_high:.1f`), the same
# number as the mixed model's coefficient, with Hedges' g = {glue:text}`rm_inter_g:.2f` (95% CI
# {glue:text}`rm_inter_g_low:.2f` to {glue:text}`rm_inter_g_high:.2f`). Welch's test gives p =
# {glue:text}`rm_inter_p:.2g`; the exact permutation test finds {glue:text}`rm_n_exact_reach` of
# {glue:text}`rm_n_splits` labellings at least as extreme, p = {glue:text}`rm_inter_p_exact:.3f`; the Bayes factor is
# {glue:text}`rm_inter_bf10:.2f`. The headline claim on positive prompts, that Llama-based RMs favour
# agency over communion more than Gemma-based RMs do, is a difference (Llama minus Gemma, in agency
# minus communion ranks) of
# {glue:text}`rm_gappos_diff:.1f` ranks (95% CI {glue:text}`rm_gappos_diff_low:.1f` to
# {glue:text}`rm_gappos_diff_high:.1f`; g = {glue:text}`rm_gappos_g:.2f`, CI
# {glue:text}`rm_gappos_g_low:.2f` to {glue:text}`rm_gappos_g_high:.2f`; exact p =
# {glue:text}`rm_gappos_p_exact:.3f`; BF10 = {glue:text}`rm_gappos_bf10:.2f`).
#
# {glue:text}`rm_n_exact_sig` of the {glue:text}`rm_n_claims` model-level comparisons reach p < .05
# in the exact test, and the Bayes factors range from {glue:text}`rm_min_bf:.2f` to
# {glue:text}`rm_max_bf:.2f`: with ten RMs the data neither confirm nor rule out a family difference.
# Compare the agency panel on positive prompts, whose Bayes factor over the individual medians was
# {glue:text}`obs_bf_agpos:.0f` and is {glue:text}`rm_agpos_bf10:.2f` over the RMs. The effect
# sizes themselves are not small (|g| from {glue:text}`rm_min_abs_g:.2f` to
# {glue:text}`rm_max_abs_g:.2f`), and their intervals are wide: the direction
# the paper reports is what the ten RMs show on average, but a study with ten models cannot establish
# it as a property of the families. Family is also confounded with developer and size, which no
# statistic on these ten RMs can separate.

# %% [markdown]
# ### A multiverse of analysis choices
#
# Several choices in the pipeline were reasonable but not forced {cite}`steegen2016multiverse`. We
# rerun the claims under each combination that the released data allow and record which conclusions
# survive (same direction as the paper's route and p < .05, Bonferroni over the panels of an
# analysis):
#
# - **summary**: the median rank of a category (the paper) or its mean rank;
# - **unit of inference**: the observations (the paper's medians: Welch tests per panel, the mixed
#   model's t-test for the three-way interaction) or the ten models (exact test over all splits);
# - **Sanctity_Vice** (moral foundations): dropped before ranking (the authors' route) or kept;
# - **word list**: Big Two nouns or the expanded list of inflected forms;
# - **level**: whole words or single tokens.

# %% tags=["remove-input"]
released_lists = ", ".join(f"{name} ({folder})" for name, folder in release.CORPORA.items())
chapter.number("mv_released_lists", released_lists, display=False)
start = time.perf_counter()

# %%
rows = []
for how in ("median", "mean"):
    branch = medians if how == "median" else figure1_medians(big2, "mean")
    rows += multiverse.branch_rows("Big Two", branch, {"summary": how, "Sanctity_Vice": "n/a"},
                                   three_way=THREE_WAY, formula=PAPER_FORMULA)
    for keep in (False, True):
        branch = mfd_authors if (how, keep) == ("median", False) else mfd_medians(how, keep_sanctity_vice=keep)
        rows += multiverse.branch_rows("moral foundations", branch,
                                       {"summary": how, "Sanctity_Vice": "kept" if keep else "dropped"})
branch_table = pd.DataFrame(rows)
# the paper's own route is the reference: medians, observations, the authors' MFD route
paper_route = ((branch_table["summary"] == "median") & (branch_table["unit"] == "observations")
               & branch_table["Sanctity_Vice"].isin(["n/a", "dropped"]))
mv = multiverse.judge(branch_table, reference=paper_route)

# %% tags=["remove-input"]
save(mv, "multiverse", reference="median, observations, authors' MFD route",
     rule="survives = same direction as the reference and p < .05 (Bonferroni over panels)")
timings["multiverse"] = time.perf_counter() - start

# %% tags=["hide-input"]
not_run = pd.DataFrame([
    {"branch": "expanded Big Two list (936 inflected forms)",
     "why not run": f"the release holds RM scores for these word lists only: {released_lists}"},
    {"branch": "token level for the ten RMs",
     "why not run": "the released RM scores are for whole words given as the reply; scoring single tokens "
                    "needs the RMs themselves (paper profile, chapter 2's vocabulary search)"},
])
display(not_run.style.hide(axis="index"))

# %% tags=["remove-input"]
save(not_run, "multiverse_not_run")

# %%
by_claim = mv.groupby(["analysis", "claim", "unit"], sort=False)["survives"].agg(["sum", "count"]).unstack("unit")
by_claim.columns = [f"{unit}: survives in" if stat == "sum" else f"{unit}: branches" for stat, unit in by_claim.columns]
by_claim

# %% tags=["remove-input"]
for analysis, key in (("Big Two", "big2"), ("moral foundations", "mfd")):
    for unit in ("observations", "models"):
        kept, total = multiverse.survival_counts(mv, analysis, unit)
        chapter.number(f"mv_{key}_{unit}_kept", kept, display=False)
        chapter.number(f"mv_{key}_{unit}_total", total, display=False)
mfd_obs = mv[(mv["analysis"] == "moral foundations") & (mv["unit"] == "observations")]
flips = mfd_obs.groupby("claim")["same_direction"].all()
chapter.number("mv_mfd_direction_flips", ", ".join(sorted(flips.index[~flips])) or "none", display=False)
big2_mean = mv[(mv["analysis"] == "Big Two") & (mv["summary"] == "mean") & (mv["unit"] == "observations")]
chapter.number("mv_big2_mean_kept", int(big2_mean["survives"].sum()), display=False)
chapter.number("mv_big2_mean_total", len(big2_mean), display=False)
changes = {factor: multiverse.verdict_changes(mv, factor) for factor in multiverse.FACTORS}
chapter.number("mv_changes_text", "; ".join(f"changing only {label} changes the verdict in {changes[f][0]} of {changes[f][1]} "
                                             "comparisons" for f, label in (("summary", "the summary statistic (median or mean)"),
                                                                            ("Sanctity_Vice", "the Sanctity_Vice route"),
                                                                            ("unit", "the unit of inference"))), display=False)
summary["multiverse_verdict_changes"] = {f: {"changed": c, "comparisons": n} for f, (c, n) in changes.items()}
summary["multiverse"] = mv.to_dict("records")
summary["multiverse_not_run"] = not_run.to_dict("records")

# %% tags=["hide-input"]
fig = plots.multiverse_grid(mv)
chapter.figure(fig, "multiverse")
plt.show()

# %% [markdown]
# Each cell is one claim (row) under one branch (column: summary statistic, Sanctity_Vice route for
# the moral foundations, and the unit of inference); the number in it is the Bonferroni-corrected
# p-value (for the three-way interaction, the mixed model's t-test or the exact split test). Dark
# blue: the claim survives; light blue: same direction as the paper's route but not significant;
# orange: the direction flips. The release has RM scores for these word lists only:
# {glue:text}`mv_released_lists`, so the expanded-list branch and a token-level branch for the ten
# RMs cannot be run (table above); chapter 3's data give a token-versus-word comparison for this
# profile's language models below.
#
# With the observations as the unit, {glue:text}`mv_big2_observations_kept` of the
# {glue:text}`mv_big2_observations_total` Big Two claims survive every branch
# (with mean ranks, {glue:text}`mv_big2_mean_kept` of {glue:text}`mv_big2_mean_total` claims are
# significant in the paper's direction). With the ten models as the unit,
# {glue:text}`mv_big2_models_kept` of {glue:text}`mv_big2_models_total` survive. For the moral
# foundations the counts are {glue:text}`mv_mfd_observations_kept` of
# {glue:text}`mv_mfd_observations_total` panels at the observation level and
# {glue:text}`mv_mfd_models_kept` of {glue:text}`mv_mfd_models_total` at the model level; panels whose
# direction depends on the route or the summary: {glue:text}`mv_mfd_direction_flips`. Counting
# one factor at a time, {glue:text}`mv_changes_text`.

# %% [markdown]
# ### Token level against word level (this profile's language models)
#
# Chapter 3 ranked nouns in two ways: the paper's single-token route (nouns that are one token in both
# vocabularies, ranked by the next-token log-probability) and teacher forcing of every noun in four
# surface forms. Here the Figure 2 ANOVA runs on both, and on the mean instead of the median, to see
# whether the single-token restriction decides its result.

# %%
forced_name = "teacher_forced_word_logprobs"
framing_of = prompts.all_prompts().set_index("key")["framing"]
level_rows = []
if fig2_tables and (tracing_dir / f"{forced_name}.parquet").is_file():
    words = artifacts.read_table(tracing_dir, forced_name)
    words["framing"] = words["prompt"].map(framing_of)
    for pair, item in fig2_tables.items():
        branches = {("single tokens", "median"): item["medians"]}
        pair_words = words[words["model"].isin(item["models"])].copy()
        pair_words["rank"] = ranks.within_ranks(pair_words, ["model", "prompt"], score="logprob")
        for how in ("median", "mean"):
            branches[("whole words", how)] = ranks.category_medians(pair_words, model="model", how=how)
        for (level, how), table in branches.items():
            if table["prompt"].nunique() < 4:
                continue
            terms = stats.anova(table, "median_rank", ["category", "framing", "model"]).set_index("term")
            gap = ranks.category_gap(table, by=["model", "family", "framing"], value="median_rank")
            positive_gap = gap[gap["framing"] == "positive"].set_index("family")["gap"]
            level_rows.append({"pair": pair, "level": level, "summary": how, "prompts": table["prompt"].nunique(),
                               "F category:model": terms.loc["category:model", "F"],
                               "p category:model": terms.loc["category:model", "p"],
                               "F three-way": terms.loc["category:framing:model", "F"],
                               "p three-way": terms.loc["category:framing:model", "p"],
                               "llama minus gemma, agency-communion gap (positive)":
                                   positive_gap.get("llama", np.nan) - positive_gap.get("gemma", np.nan)})
levels = pd.DataFrame(level_rows)

# %% tags=["hide-input"]
if len(levels):
    save(levels, "token_vs_word_level", source="chapter 3 single-token medians and teacher-forced log-probabilities")
    first_pair = levels[levels["pair"] == levels["pair"].iloc[0]].set_index(["level", "summary"])
    signs = np.sign(first_pair["llama minus gemma, agency-communion gap (positive)"])
    significant = first_pair["p category:model"] < 0.05
    if (signs < 0).all():
        direction_text = "negative in every branch (the Llama-family model favours agency, the paper's direction)"
    elif (signs > 0).all():
        direction_text = "positive in every branch (the opposite of the paper's direction)"
    else:
        direction_text = "of different signs in different branches"
    level_text = (f"For the first pair, the category x model interaction is significant (p < .05) in "
                  f"{int(significant.sum())} of {len(first_pair)} branches, and the Llama-minus-Gemma difference in "
                  f"the agency-minus-communion gap on positive prompts is {direction_text}")
    summary["token_vs_word_level"] = levels.to_dict("records")
    display(levels.style.format(precision=2).format("{:.2g}", subset=["p category:model", "p three-way"])
            .hide(axis="index"))
else:
    level_text = ("Chapter 3 has not written both the single-token medians and the teacher-forced log-probabilities "
                  f"for the {settings.name} profile (or too few prompts), so this comparison is skipped")
    summary["token_vs_word_level"] = "not run: chapter 3 results missing"

# %% tags=["remove-input"]
chapter.number("level_text", level_text, display=False)

# %% [markdown]
# {glue:text}`level_text`. Where chapter 3 has run, the table gives, per branch, the ANOVA's
# category x model and three-way terms and the direction of the family difference (negative: the
# Llama-family model ranks agency nouns better relative to communion nouns on positive prompts). In
# the demo and tiny profiles there is one small model per family, so the rows test two models against
# each other, not two families; the point here is whether the single-token shortcut changes the
# answer.

# %% [markdown]
# ### Vocabulary scale: effect sizes against a noise floor
#
# Chapter 2 scored every token of a vocabulary (in the demo profile, the most frequent word tokens)
# as the reply to the headline question. With thousands of tokens, any correlation above a few
# hundredths has a tiny p-value, so p-values say nothing about whether an effect is real or matters.
# What limits such an effect is measurement: the same scores computed again, in another precision or
# batch size, are not identical. Chapter 2 measured exactly that on the nouns (`engine_agreement`):
# the Spearman correlation between a bfloat16 run, as on a GPU, and a float32 run. If two runs of a
# score correlate r, no correlation of that score with anything else can move by more than
# sqrt(2(1 - r)) between the runs (`rmbias.stats.correlation_noise_floor` gives the short proof), so a
# vocabulary-level correlation below that bound cannot be told apart from numerical noise. We report
# each effect as a Spearman correlation with its interval, next to that floor, and no p-values.

# %%
scoring_dir = chapter.earlier("02_rm_scoring", required=False)
have_vocab = all((scoring_dir / f"{name}.parquet").is_file() for name in ("live_vocabulary_scores", "engine_agreement"))
vocab_rows = []
if have_vocab:
    vocab = artifacts.read_table(scoring_dir, "live_vocabulary_scores")
    agreement = artifacts.read_table(scoring_dir, "engine_agreement").set_index("rm")
    vocab["text"] = vocab["token"].str.strip()
    vocab = vocab[vocab["text"].str.len() > 0].copy()
    vocab["zipf"] = lexicons.zipf_frequency(vocab["text"].str.lower()).to_numpy()
    vocab["length"] = vocab["text"].str.len()
    # the floor needs a bfloat16 run beside a float32 one, which chapter 2 makes on a CPU (not on a GPU)
    low_precision = agreement["bf16 vs fp32 Spearman"] if "bf16 vs fp32 Spearman" in agreement else pd.Series(dtype=float)
    floors = {rm: stats.correlation_noise_floor(float(low_precision[rm]))
              for rm in vocab["rm"].unique() if rm in low_precision.index and pd.notna(low_precision[rm])}
    for rm, table in vocab.groupby("rm", sort=False):
        if rm not in floors:
            continue
        known = table[table["zipf"] > 0]
        for effect, x, y in (("score vs word frequency (Zipf)", known["score"], known["zipf"]),
                             ("score vs length in characters", table["score"], table["length"])):
            rho, low, high, n = stats.spearman_ci(x, y)
            vocab_rows.append({"rm": rm, "effect": effect, "n tokens": n, "rho": rho, "low": low, "high": high,
                               "noise floor": floors[rm]})
    rms = [rm for rm in vocab["rm"].unique() if rm in floors]
    if len(rms) >= 2:
        by_text = vocab.assign(key=vocab["text"].str.lower()).groupby(["key", "rm"])["score"].mean().unstack("rm")
        shared = by_text[rms[:2]].dropna()
        rho, low, high, n = stats.spearman_ci(shared[rms[0]], shared[rms[1]])
        vocab_rows.append({"rm": f"{rms[0]} vs {rms[1]}", "effect": "agreement between the two RMs", "n tokens": n,
                           "rho": rho, "low": low, "high": high, "noise floor": floors[rms[0]] + floors[rms[1]]})
vocab_effects = pd.DataFrame(vocab_rows)

# %% tags=["hide-input"]
if len(vocab_effects):
    # an effect counts only if its whole sampling interval lies outside the band of +/- the noise floor
    vocab_effects["clear of floor"] = ((vocab_effects["low"] > vocab_effects["noise floor"])
                                       | (vocab_effects["high"] < -vocab_effects["noise floor"]))
    save(vocab_effects, "vocabulary_effects_vs_noise_floor", source="chapter 2 live_vocabulary_scores, engine_agreement",
         floor="sqrt(2 (1 - Spearman of bf16 vs fp32 runs)); summed for a correlation between two RMs")
    fp32 = agreement[agreement["dtype"] == "float32"]
    fp32_ratio = float((fp32["batch-size noise"] / fp32["score_sd"]).max())
    vocab_text = (f"The noise floor is {min(floors.values()):.3f} to {max(floors.values()):.3f} for single RMs "
                  f"(bfloat16 against float32); {int(vocab_effects['clear of floor'].sum())} of {len(vocab_effects)} "
                  f"effects lie clear of it, with their whole 95% interval outside the band. This profile's vocabulary scores were computed in float32, where changing the "
                  f"batch size moves a score by at most {fp32_ratio:.1e} of its standard deviation, so for these "
                  "files the floor is far lower; the bfloat16 floor is the resolution of a GPU run in the paper's "
                  "precision, and the one to judge the paper profile by")
    summary["vocabulary_effects"] = vocab_effects.to_dict("records")
    summary["vocabulary_noise_floor"] = floors

    fig = plots.noise_floor(vocab_effects)
    chapter.figure(fig, "vocabulary_noise_floor")
    plt.show()
    display(vocab_effects.style.format(precision=3).hide(axis="index"))
elif have_vocab:
    vocab_text = ("Chapter 2 ran its engine check in each model's own dtype only (on a GPU), with no float32 run "
                  "beside a bfloat16 one, so no noise floor can be computed from this copy's artifacts, and there "
                  "is no figure")
    summary["vocabulary_effects"] = "not run: no bfloat16 against float32 comparison in chapter 2"
else:
    vocab_text = (f"Chapter 2 has not written live_vocabulary_scores and engine_agreement for the {settings.name} "
                  "profile, so no noise floor can be computed from this copy's artifacts, and there is no figure; "
                  "run chapter 2 first. What is needed is a second run of the same scores (another precision or "
                  "batch size), which chapter 2 records for the nouns")
    summary["vocabulary_effects"] = "not run: chapter 2 results missing"

# %% tags=["remove-input"]
chapter.number("vocab_text", vocab_text, display=False)

# %% [markdown]
# {glue:text}`vocab_text`. In the figure, when there is one, each row is one vocabulary-level effect
# (per RM: how its score follows the word frequency of the token and its length; across RMs: how far
# the two RMs agree on the tokens whose text both vocabularies contain), the dot its Spearman
# correlation with a 95% interval, and the grey band the noise floor around zero. An effect inside the
# grey band could be produced or erased by re-running the scores in bfloat16; an effect well outside
# it is a property of the models. The floor comes from the nouns chapter 2 checked; whether the
# vocabulary behaves like them is
# an assumption, and the paper profile can check it by re-running a vocabulary chunk.

# %% tags=["remove-input"]
chapter.finish(seconds=timings)
print(f"wrote {sorted(p.name for p in out.iterdir())}")

# %% [markdown]
# ## What this chapter established
#
# - The paper's Figure 1 model is reproduced exactly from the released scores: the three-way
#   interaction is {glue:text}`f1_three_estimate:.1f` ranks, t({glue:text}`f1_three_df:.0f`) =
#   {glue:text}`f1_three_z:.2f`, as the paper reports (p < .001). Its per-panel "permutation" p-values
#   are Welch p-values because of which element of MKinfer's result the script reads; a real
#   permutation test {glue:text}`f1_stars_text`. With the average-variance definition of Cohen's d
#   the positive panels give {glue:text}`f1_dav_agency:.2f` and {glue:text}`f1_dav_communion:.2f`
#   against the paper's 0.40 to 0.43.
# - Modelling prompts as crossed effects and giving RMs their own slopes leaves the estimates unchanged
#   and multiplies the standard error of the key interaction by about
#   {glue:text}`re_ratio:.1f`.
# - With the ten RMs as the sample, the family differences point the way the paper says, with large
#   but very uncertain effect sizes; the exact test over all {glue:text}`rm_n_splits` labellings gives p =
#   {glue:text}`rm_inter_p_exact:.3f` for the three-way interaction, and the Bayes factors
#   ({glue:text}`rm_min_bf:.2f` to {glue:text}`rm_max_bf:.2f`) say ten models cannot decide the
#   question.
# - Across the multiverse, {glue:text}`mv_changes_text`. The released data hold no scores on the
#   expanded word list and no token-level RM scores, so those branches are named but not run.
# - At vocabulary scale, effects are reported against a re-run noise floor rather than p-values.

# %% [markdown]
# ## Exercises
#
# Each exercise is followed by its solution, folded (the version for students leaves it out): try the
# exercise before you open it. They work on the released scores and the tables this chapter already
# built, so they run in seconds, and each ends with checks (`assert`) that its numbers are consistent
# with the chapter's.

# %% [markdown]
# ### Exercise 1. Leave one reward model out
#
# With ten RMs, one unusual model can carry a family difference.
# Drop each RM in turn and rerun the exact split test of the three-way interaction on the nine that
# remain (`stats.exact_split_test` on the chapter's per-RM `contrasts`). Does the direction of the
# interaction survive every omission? How many splits are there with nine RMs, and what is the
# smallest p-value the test can then reach?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 1
from math import comb

loo_rows = []
for rm in contrasts.index:
    kept = contrasts.drop(index=rm)
    gemma_left = list(kept.index[kept["family"] == "gemma"])
    test = stats.exact_split_test(kept["interaction"], gemma_left)
    loo_rows.append({"dropped": contrasts.loc[rm, "label"], "family": contrasts.loc[rm, "family"], "RMs": len(kept),
                     "splits": test["n_splits"], "smallest p": 1 / test["n_splits"],
                     "interaction (Llama - Gemma)": test["statistic"], "p_exact": test["p"]})
loo = pd.DataFrame(loo_rows)
full = stats.exact_split_test(contrasts["interaction"], list(contrasts.index[contrasts["family"] == "gemma"]))
loo["same direction"] = np.sign(loo["interaction (Llama - Gemma)"]) == np.sign(full["statistic"])
print(f"All ten RMs: {full['statistic']:.2f} ranks, exact p = {full['p']:.3f}. The direction survives "
      f"{int(loo['same direction'].sum())} of {len(loo)} omissions; "
      f"p_exact < .05 in {int((loo['p_exact'] < 0.05).sum())}.")
display(loo.style.format(precision=3).hide(axis="index"))

assert (loo["RMs"] == len(contrasts) - 1).all()
for _, row in loo.iterrows():  # C(9, 3) = 84 splits without a Gemma RM, C(9, 4) = 126 without a Llama RM
    n_gemma_left = int((contrasts["family"] == "gemma").sum()) - (row["family"] == "gemma")
    assert row["splits"] == comb(len(contrasts) - 1, n_gemma_left)
# on all ten RMs the test gives the chapter's model-level estimate, which is the mixed model's coefficient
assert np.isclose(full["statistic"], claims_by_name.loc["three-way interaction", "diff"])
assert np.isclose(full["statistic"], coef.loc[THREE_WAY, "estimate"])

# %% [markdown]
# ### Exercise 2. Another correction for multiple tests
#
# The authors corrected the Welch p-values of the
# Figure 1 panels with Bonferroni. Correct them instead with Holm's step-down method and with the
# Benjamini-Hochberg false discovery rate (`statsmodels.stats.multitest.multipletests`), for the
# four Big Two panels and the ten moral-foundation panels. Which panels change their verdict at
# the .05 level? Show that for every panel the raw p is at most the Benjamini-Hochberg p, which is
# at most Holm's, which is at most Bonferroni's.

# %% tags=["hide-cell", "solution"]
# Solution to exercise 2
from statsmodels.stats.multitest import multipletests

corrected = []
for analysis, panel_table, cell in (("Big Two", panels, "category"), ("moral foundations", mfd_panels, "foundation")):
    part = panel_table[[cell, "framing", "p_welch", "p_welch_bonf"]].rename(columns={cell: "panel"})
    for method, label in (("bonferroni", "Bonferroni"), ("holm", "Holm"), ("fdr_bh", "Benjamini-Hochberg")):
        part[label] = multipletests(part["p_welch"], method=method)[1]
    corrected.append(part.assign(analysis=analysis))
corrected = pd.concat(corrected, ignore_index=True)
methods = ["Bonferroni", "Holm", "Benjamini-Hochberg"]
verdicts = corrected[methods] < 0.05
corrected["verdict changes"] = verdicts.nunique(axis=1) > 1
print("panels significant at .05: " + "; ".join(
    f"{analysis}: " + ", ".join(f"{m} {int((group[m] < 0.05).sum())} of {len(group)}" for m in methods)
    for analysis, group in corrected.groupby("analysis", sort=False)))
display(corrected[["analysis", "panel", "framing", "p_welch", *methods, "verdict changes"]]
        .style.format("{:.2g}", subset=["p_welch", *methods]).hide(axis="index"))

assert np.allclose(corrected["Bonferroni"], corrected["p_welch_bonf"])  # the chapter's correction
assert (corrected["p_welch"] <= corrected["Benjamini-Hochberg"] + 1e-12).all()
assert (corrected["Benjamini-Hochberg"] <= corrected["Holm"] + 1e-12).all()
assert (corrected["Holm"] <= corrected["Bonferroni"] + 1e-12).all()
assert len(corrected) == len(panels) + len(mfd_panels)

# %% [markdown]
# ### Exercise 3. Another summary of a category
#
# The median rank describes the middle of a category. Replace it
# with the first quartile (how well a category's best words rank) and the third quartile (how well
# its worst words rank), and rerun the model-level test of the three-way interaction
# (`stats.rm_contrasts`, then `stats.rm_level_test`). Is the family difference carried by the best
# words of each category, by the worst, or by both?

# %% tags=["hide-cell", "solution"]
# Solution to exercise 3
quantile_rows, quantile_tables = [], {}
for q in (0.25, 0.5, 0.75):
    summarised = (big2.groupby(["rm", "family", "prompt", "framing", "category"], observed=True)["rank"]
                  .quantile(q).rename("median_rank").reset_index())
    per_rm = stats.rm_contrasts(summarised).set_index("rm")
    test = stats.rm_level_test(per_rm["interaction"], per_rm["family"])
    quantile_tables[q] = (summarised, per_rm)
    quantile_rows.append({"summary": f"quantile {q:g}", **{k: test[k] for k in ("diff", "diff_low", "diff_high",
                                                                                  "g", "p_exact", "bf10")}})
by_quantile = pd.DataFrame(quantile_rows).set_index("summary")
display(by_quantile.style.format(precision=2).format("{:.3g}", subset=["p_exact", "bf10"]))

for q, (summarised, per_rm) in quantile_tables.items():
    assert summarised["median_rank"].between(1, big2["word"].nunique()).all()  # a quantile of ranks 1..n
    assert len(per_rm) == len(contrasts)
lower, middle, upper = (quantile_tables[q][0]["median_rank"] for q in (0.25, 0.5, 0.75))
assert (lower <= middle).all() and (middle <= upper).all()  # quartiles are ordered in every cell
# the median route is the chapter's: same summaries, same model-level estimate
check = quantile_tables[0.5][0].merge(medians[["rm", "prompt", "category", "median_rank"]].astype({"category": str}),
                                      on=["rm", "prompt", "category"])
assert len(check) == len(medians) and np.allclose(check["median_rank_x"], check["median_rank_y"])
assert np.isclose(by_quantile.loc["quantile 0.5", "diff"], claims_by_name.loc["three-way interaction", "diff"])
