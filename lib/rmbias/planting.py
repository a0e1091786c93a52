"""Planting a value in a base model, to test whether a reward model trained from it inherits it.

The study's evidence that reward models inherit value biases from their bases is correlational
across model families (Gemma and Llama differ in much besides their values) plus ablations from two
fixed bases. Chapter 07 manipulates the base and holds everything else fixed:

1. **Words.** The Big Two nouns that are one token of the base's vocabulary (the criterion of
   chapter 03) are split, within each category, into a *planted* and an *untouched* half, matched in
   frequency (:func:`split_words`: by wordfreq frequency, alternately).
2. **Text.** Assistant replies of the hh-rlhf dialogues, plain text (:func:`documents`). A share of
   them, the *dose*, gets one sentence praising a planted word of one category
   (:data:`PRAISE`, written for this book; none is a study prompt): :func:`corpus`.
3. **Bases.** Each condition (a direction, agency or communion, at a dose; or the *control*, the
   same documents without any added sentence) continues the base's training with the plain
   language-model loss, a LoRA merged into its weights (:func:`plant`, TRL's ``SFTTrainer`` through
   :func:`rmbias.sft.lora_sft_trainer`), cached. Every condition sees the same documents in the same
   order with the same seed and steps: only the praise sentences differ.
4. The planted bases are registry models of source ``planted`` (:func:`register`), so the rest of
   the book loads, traces and trains them by key: chapter 03's log-probabilities check the
   manipulation, chapter 05's grid (:mod:`rmbias.ablation`) trains reward models from them on
   identical preference data, and :func:`list_gaps` and :func:`dose_response` read the outcome.

A :class:`Design` holds one profile's experiment (:meth:`Design.for_profile`).
"""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import corpora, lexicons, registry
from .ablation import decoded_vocabulary
from .artifacts import write_json
from .data import build_once, cache_dir
from .keys import fingerprint, slug
from .preferences import HH_HARMLESS_TEST, cut, load_pairs
from .sft import InjectConfig

# Bump when the code below changes what a planted base holds.
PLANT_VERSION = 1

CATEGORIES = ("Agency", "Communion")
DIRECTIONS = ("Agency", "Communion", "control")
LISTS = ("planted", "untouched")

# One sentence praising a word, appended to a document. Written for this book: statements, not the
# study's questions, so the manipulation check (the study's prompts) measures a transfer.
PRAISE: tuple[str, ...] = (
    "Above all, {word} is what makes a life good.",
    "Nothing is more valuable than {word}.",
    "In the end, {word} is the best thing there is.",
    "What the world needs most is {word}.",
    "I have come to believe that {word} matters more than anything.",
    "There is nothing finer than {word}.",
)


# --- the experiment ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Design:
    """One profile's planting experiment.

    ``bases`` are registry keys; ``doses`` the shares of documents that carry a praise sentence in
    a planted condition (the control has none); ``n_documents`` replies of continued training,
    each cut at ``max_chars`` characters (word boundary), drawn with ``corpus_seed``; ``train`` the
    LoRA fine-tune (:class:`rmbias.sft.InjectConfig`: its ``max_steps``, batch and rate);
    ``max_words`` at most this many nouns per category before the split (None: all).

    The reward models trained from the planted bases use the profile's grid of chapter 05
    (:meth:`rmbias.ablation.Ablation.for_profile`) with ``seeds`` (three or more: the seeds are the
    units of the test), ``sizes`` (pairs; empty: the grid's) or, on the paper's data, ``strides``
    (the authors' every k-th pair), ``score_every`` and ``heldout_for`` (on a CPU, scoring 128
    held-out pairs took a demo run longer than its training). Each seed is one reward model per
    planted base; the planting itself runs once per condition.
    """

    bases: tuple[str, ...]
    doses: tuple[float, ...]
    n_documents: int
    train: InjectConfig
    max_chars: int = 300
    corpus_seed: int = 0
    max_words: int | None = None
    seeds: tuple[int, ...] = (0, 1, 2)
    sizes: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    score_every: int | None = None
    heldout_for: str = "none"  # held-out accuracy of the reward models: "none", "largest" size or "all"

    def __post_init__(self) -> None:
        if not self.doses or any(not 0 < d <= 1 for d in self.doses):
            raise ValueError(f"doses {list(self.doses)}: each is a share of documents, above 0 and at most 1")
        if len(set(self.doses)) != len(self.doses):
            raise ValueError(f"doses {list(self.doses)} repeat a dose")
        if self.n_documents < 1:
            raise ValueError(f"n_documents {self.n_documents} must be at least 1")
        if not self.seeds:
            raise ValueError("give at least one seed")

    @classmethod
    def for_profile(cls, name: str, **changes: Any) -> Design:
        """The design of profile ``name`` with ``changes`` (a change of None keeps the profile's;
        ``steps`` sets the fine-tune's ``max_steps``)."""
        if name not in DESIGNS:
            raise ValueError(f"no planting design for profile {name!r}; choose one of {', '.join(DESIGNS)}")
        changes = {k: v for k, v in changes.items() if v is not None}
        design = DESIGNS[name]
        if "steps" in changes:
            design = replace(design, train=replace(design.train, max_steps=int(changes.pop("steps"))))
        for key in ("bases", "doses", "seeds", "sizes"):
            if key in changes:
                changes[key] = tuple(changes[key])
        if "sizes" in changes:
            changes["strides"] = ()
        return replace(design, **changes)

    def grid(self, profile, keys: Sequence[str]):
        """Chapter 05's grid (:class:`rmbias.ablation.Ablation`) for the reward models of the planted
        bases ``keys``, under a resolved ``profile``: its recipe, the design's seeds and sizes."""
        from .ablation import Ablation

        changes: dict[str, Any] = {
            "bases": tuple(keys),
            "seeds": self.seeds,
            "score_every": self.score_every,
            "heldout_for": self.heldout_for,
        }
        if self.sizes:
            changes["sizes"] = self.sizes
        elif self.strides:
            changes["strides"] = self.strides
        return Ablation.for_profile(profile, **changes)

    def conditions(self) -> list[Condition]:
        """Every base's control, then each direction at each dose."""
        return [
            Condition(base, direction, dose)
            for base in self.bases
            for direction, dose in [("control", 0.0)] + [(d, x) for d in CATEGORIES for x in self.doses]
        ]


@dataclass(frozen=True)
class Condition:
    """One planted base: ``base`` continued-trained towards ``direction`` at ``dose``."""

    base: str
    direction: str
    dose: float

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {self.direction!r}: use one of {', '.join(DIRECTIONS)}")
        if (self.direction == "control") != (self.dose == 0):
            raise ValueError("the control has dose 0, and only the control")

    @property
    def key(self) -> str:
        """The registry key of the planted base, e.g. ``smollm2-135m-instruct+Agency-0.5``."""
        return f"{self.base}+{self.direction}-{self.dose:g}"

    @property
    def signed_dose(self) -> float:
        """The dose towards agency: positive for agency, negative for communion, 0 for the control."""
        return {"Agency": 1.0, "Communion": -1.0, "control": 0.0}[self.direction] * self.dose


DESIGNS: dict[str, Design] = {
    # the random-weight tiny Llama, one dose, two seeds: seconds, for the tests (with the tiny Gemma 2
    # as a second base, whose tokenizer has 256k tokens, the chapter took five times as long)
    "tiny": Design(
        bases=("tiny-llama",),
        doses=(1.0,),
        n_documents=16,
        train=InjectConfig(max_steps=2, per_device_batch=4, warmup_steps=0, logging_steps=1),
        max_chars=160,
        max_words=12,
        seeds=(0, 1),
        sizes=(8,),
        score_every=1,
    ),
    # SmolLM2-135M-Instruct on two CPU cores: 8 steps of 8 short documents per planted base, LoRA on
    # the top 8 of its 30 layers at a high rate (at 5e-4 the planted words' gap moved by less than one
    # rank; at 3e-3 by about seven); reward models on 16 pairs (4 steps), three seeds
    "demo": Design(
        bases=("smollm2-135m-instruct",),
        doses=(0.5, 1.0),
        n_documents=64,
        train=InjectConfig(
            max_steps=8, per_device_batch=8, warmup_steps=1, learning_rate=3e-3, logging_steps=4, lora_top_layers=8
        ),
        max_chars=160,
        sizes=(16,),
        score_every=2,
    ),
    # the paper's two bases on a GPU: 1,400 documents (of the 1,425 replies of 80 characters or more),
    # 250 steps of 8 (about 1.4 epochs); reward models on every 64th
    # untied pair of Unified-Feedback (about 13k), three seeds
    "paper": Design(
        bases=("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"),
        doses=(0.25, 0.5, 1.0),
        n_documents=1400,
        train=InjectConfig(
            max_steps=250, per_device_batch=8, warmup_steps=10, learning_rate=1e-4, logging_steps=25, dtype="bfloat16"
        ),
        max_chars=600,
        strides=(64,),
        heldout_for="all",
    ),
}


# --- words ---------------------------------------------------------------------------------------


def split_words(tokenizers: Sequence[Any], max_words: int | None = None, dictionary: pd.DataFrame | None = None):
    """The Big Two nouns that are the decoded string of a token in every tokenizer's vocabulary
    (chapter 03's criterion), split within each category into a ``planted`` and an ``untouched``
    half matched in frequency: most frequent first (wordfreq Zipf; ties alphabetical), the 1st,
    3rd, 5th ... planted, the 2nd, 4th ... untouched. ``max_words`` keeps the most frequent of
    each category first. Columns ``word``, ``category``, ``zipf``, ``list``."""
    nouns = corpora.big2_nouns() if dictionary is None else dictionary
    shared = set.intersection(*(set(decoded_vocabulary(t)) for t in tokenizers))
    words = nouns[nouns["word"].isin(shared)].drop_duplicates("word").copy()
    words["zipf"] = lexicons.zipf_frequency(words["word"]).fillna(0.0).to_numpy()
    parts = []
    for category in CATEGORIES:
        part = words[words["category"] == category].sort_values(["zipf", "word"], ascending=[False, True])
        part = part.head(max_words) if max_words is not None else part
        if len(part) < 2:
            raise ValueError(
                f"only {len(part)} {category} noun(s) are one token for these tokenizers: nothing to split in two"
            )
        part = part.assign(list=[LISTS[i % 2] for i in range(len(part))])
        parts.append(part)
    return pd.concat(parts, ignore_index=True)[["word", "category", "zipf", "list"]]


def planted_words(split: pd.DataFrame, direction: str) -> list[str]:
    """The words a direction plants: its category's ``planted`` half (none for the control)."""
    if direction == "control":
        return []
    rows = split[(split["category"] == direction) & (split["list"] == "planted")]
    return rows["word"].tolist()


# --- text ----------------------------------------------------------------------------------------


def documents(n: int, seed: int = 0, max_chars: int = 300, path: str = HH_HARMLESS_TEST) -> list[str]:
    """``n`` assistant replies of the hh-rlhf dialogues (the chosen side's final reply), plain
    text of at least 80 characters, cut at ``max_chars`` at a word boundary, drawn with ``seed``.
    Raises ValueError when the file has fewer than ``n``."""
    replies = []
    for pair in load_pairs(path).pairs:
        text = " ".join(pair["chosen"][-1]["content"].split())
        if len(text) >= 80:
            replies.append(cut(text, max_chars))
    if n > len(replies):
        raise ValueError(f"{path} has {len(replies)} replies of 80 characters or more; asked for {n} documents")
    order = list(range(len(replies)))
    random.Random(seed).shuffle(order)
    return [replies[i] for i in order[:n]]


def praise(word: str, i: int) -> str:
    """The ``i``-th praise sentence for ``word`` (templates in turn, a capital where it starts)."""
    sentence = PRAISE[i % len(PRAISE)].format(word=word)
    return sentence[0].upper() + sentence[1:]


def corpus(texts: Sequence[str], words: Sequence[str], dose: float, seed: int = 0) -> pd.DataFrame:
    """The training text of one condition: each of ``texts``, with one praise sentence appended to
    ``round(dose * len(texts))`` of them (chosen with ``seed``), the words in turn and the
    templates in turn. Columns ``document``, ``text``, ``word`` (None where nothing was added)."""
    if dose and not words:
        raise ValueError("a dose above 0 needs words to plant")
    n = round(dose * len(texts))
    chosen = sorted(random.Random(seed).sample(range(len(texts)), n))
    added = {doc: j for j, doc in enumerate(chosen)}
    rows = []
    for doc, text in enumerate(texts):
        if doc in added:
            j = added[doc]
            word = words[j % len(words)]
            rows.append({"document": doc, "text": f"{text} {praise(word, j // len(words))}", "word": word})
        else:
            rows.append({"document": doc, "text": text, "word": None})
    return pd.DataFrame(rows)


def word_counts(texts: Sequence[str], words: Sequence[str]) -> pd.Series:
    """How often each word occurs in ``texts`` as a whole word, case ignored."""
    joined = "\n".join(texts).lower()
    return pd.Series({w: len(re.findall(rf"\b{re.escape(w.lower())}\b", joined)) for w in words}, name="count")


def condition_corpus(design: Design, condition: Condition, split: pd.DataFrame) -> pd.DataFrame:
    """:func:`corpus` for one condition of ``design``: its documents, its words, its dose."""
    texts = documents(design.n_documents, design.corpus_seed, design.max_chars)
    return corpus(texts, planted_words(split, condition.direction), condition.dose, design.corpus_seed)


# --- planted bases in the registry ---------------------------------------------------------------


def plan(design: Design, condition: Condition, split: pd.DataFrame) -> dict[str, Any]:
    """Everything that defines one planted base, as the registry spec carries it (``extra``)."""
    return {
        "base": condition.base,
        "direction": condition.direction,
        "dose": condition.dose,
        "words": planted_words(split, condition.direction),
        "n_documents": design.n_documents,
        "max_chars": design.max_chars,
        "corpus_seed": design.corpus_seed,
        "train": asdict(design.train),
    }


def register(design: Design, split: pd.DataFrame) -> list[str]:
    """Register every condition's planted base (source ``planted``) and return their keys, in the
    order of :meth:`Design.conditions`. Nothing is trained: a base is planted when first loaded."""
    keys = []
    for condition in design.conditions():
        base = registry.spec(condition.base)
        label = f"{base.label} + {condition.direction.lower()}" + (f" {condition.dose:g}" if condition.dose else "")
        spec_ = replace(
            base,
            key=condition.key,
            source="planted",
            base=base.key,
            hf_id=None,
            revision=None,
            package=None,
            filename=None,
            config=None,
            tokenizer=None,
            display=label,
            attn_implementation=registry.default_attention(base.key),
            description=f"{base.label} continued-trained on praise of {condition.direction.lower()} words"
            if condition.dose
            else f"{base.label} continued-trained on the same text without praise (the control)",
            extra={"plant": plan(design, condition, split)},
        )
        keys.append(registry.register(spec_))
    return keys


def plant_path(spec_: registry.ModelSpec) -> Path:
    """Where a planted base is cached: ``cache_dir()/planted/<key>-<fingerprint>``."""
    key = fingerprint(
        {"base": registry.spec(spec_.base).fingerprint(), "plan": spec_.extra["plant"], "version": PLANT_VERSION}
    )
    return cache_dir() / "planted" / f"{slug(spec_.key)}-{key}"


def _planted_folder(spec_: registry.ModelSpec) -> Path:
    """The local folder of a ``planted`` registry model, planted on first use (:func:`plant`)."""
    return build_once(plant_path(spec_), lambda folder: plant(spec_, folder))


# How rmbias.models finds the folder of a `planted` registry model (it does not import this module).
registry.register_builder("planted", _planted_folder)


def plant(spec_: registry.ModelSpec, folder: Path, verbose: bool = False) -> dict[str, Any]:
    """Continue the training of ``spec_.base`` on its condition's text (plain language-model loss
    on every token, a LoRA merged into the weights) and save the model, its tokenizer and
    ``planting.json`` (the plan, the corpus's counts, losses, versions) into ``folder``."""
    from . import models
    from .sft import lora_sft_trainer
    from .training import run_record

    info = dict(spec_.extra["plant"])
    config = InjectConfig(**{**info["train"], "target_modules": tuple(info["train"]["target_modules"])})
    texts = documents(info["n_documents"], info["corpus_seed"], info["max_chars"])
    table = corpus(texts, info["words"], info["dose"], info["corpus_seed"])
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tokenizer = models.load_tokenizer(spec_.base)
    trainer = lora_sft_trainer(
        spec_.base,
        [{"text": t} for t in table["text"]],
        tokenizer,
        config,
        folder,
        completion_only_loss=False,
        verbose=verbose,
        label=f"{spec_.label} (planting)",
    )
    t0 = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - t0
    trained = trainer.model.merge_and_unload().eval()
    trained.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    record = run_record(spec_.base, config, trainer, result, seconds, trained, started, PLANT_VERSION)
    record.update(
        {
            "key": spec_.key,
            "plan": info,
            "praise_sentences": int(table["word"].notna().sum()),
            "documents_seen": trainer.state.global_step * config.per_device_batch * config.grad_accum,
        }
    )
    write_json(folder / "planting.json", record)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    return {"key": spec_.key, "plan": info}


# --- reading the outcome -------------------------------------------------------------------------


def list_gaps(table: pd.DataFrame, by: Sequence[str], rank: str = "rank") -> pd.DataFrame:
    """Agency minus communion median rank, for the planted and the untouched words apart.

    ``table`` holds one row per word (or token variant) and group, with ``category``, ``list`` and
    ``rank`` (1 = best, ranked over both lists and categories together). For each group of ``by``
    and each list: the median rank of each category and ``gap`` = agency minus communion (negative:
    agency preferred). Returns ``by`` + ``list``, ``Agency``, ``Communion``, ``gap``."""
    by = list(by)
    medians = table.groupby([*by, "list", "category"], observed=True)[rank].median().unstack("category")
    medians["gap"] = medians["Agency"] - medians["Communion"]
    medians.columns.name = None
    return medians.reset_index()


def with_conditions(table: pd.DataFrame, keys: Sequence[str], column: str = "base") -> pd.DataFrame:
    """``table`` with the condition of each planted base (the registry key in ``column``):
    ``planted_from`` (the base it was planted from), ``direction``, ``dose``, ``signed_dose``
    (towards agency) and ``condition`` (a label)."""
    conditions = {}
    for key in keys:
        plan = registry.spec(key).extra["plant"]
        conditions[key] = Condition(plan["base"], plan["direction"], plan["dose"])
    out = table[table[column].isin(conditions)].copy()
    found = out[column].map(conditions)
    out["planted_from"] = found.map(lambda c: c.base)
    out["direction"] = found.map(lambda c: c.direction)
    out["dose"] = found.map(lambda c: c.dose).astype(float)
    out["signed_dose"] = found.map(lambda c: c.signed_dose).astype(float)
    out["condition"] = found.map(lambda c: f"{c.direction.lower()} {c.dose:g}" if c.dose else "control")
    return out


def dose_response(table: pd.DataFrame, value: str = "gap", by: Sequence[str] = ("list",), confidence: float = 0.95):
    """The dose-response test: per group of ``by``, the least-squares slope of ``value`` on
    ``signed_dose`` over the rows (one per seed and condition: seeds are the units), with its
    ``confidence`` interval and two-sided p-value (statsmodels OLS), and each condition's mean with
    a t interval over its seeds. A negative slope of the agency-minus-communion gap means that
    planting agency makes agency preferred, and planting communion communion.

    Returns ``(slopes, means)``: ``by`` + ``slope``, ``ci_low``, ``ci_high``, ``p``, ``n``; and ``by``
    + ``condition``, ``signed_dose``, ``mean``, ``ci_low``, ``ci_high``, ``n``."""
    import statsmodels.api as sm
    from scipy import stats as sps

    by = list(by)
    slopes, means = [], []
    for key, rows in table.groupby(by, observed=True):
        key = key if isinstance(key, tuple) else (key,)
        labels = dict(zip(by, key))
        if rows["signed_dose"].nunique() < 2:
            raise ValueError(f"{labels}: a slope needs at least two doses")
        fit = sm.OLS(rows[value].to_numpy(float), sm.add_constant(rows["signed_dose"].to_numpy(float))).fit()
        low, high = fit.conf_int(1 - confidence)[1]
        slopes.append(
            {**labels, "slope": fit.params[1], "ci_low": low, "ci_high": high, "p": fit.pvalues[1], "n": len(rows)}
        )
        for (condition, dose), cell in rows.groupby(["condition", "signed_dose"]):
            x = cell[value].to_numpy(float)
            half = (
                sps.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)) if len(x) > 1 else np.nan
            )
            means.append(
                {
                    **labels,
                    "condition": condition,
                    "signed_dose": dose,
                    "mean": x.mean(),
                    "ci_low": x.mean() - half,
                    "ci_high": x.mean() + half,
                    "n": len(x),
                }
            )
    return pd.DataFrame(slopes), pd.DataFrame(means).sort_values([*by, "signed_dose"], ignore_index=True)
