"""Validating the implicit-reward metrics by planting a known preference (the paper's appendix).

Which metric of :mod:`rmbias.implicit` should be trusted? The paper answers with a planted
preference: fine-tune a model with a small LoRA SFT so that it answers positive questions with a
few chosen words, then treat the fine-tuned model as ``q`` and the original as ``p`` and ask which
metric puts the planted words at the top of the implicit reward. A metric that cannot find a
preference we put there ourselves cannot be trusted to find one that pretraining put there.

How the fine-tune is done is data, a :class:`Recipe`, and two are defined (:data:`RECIPES`):

``authors`` (:data:`AUTHORS_RECIPE`, the paper profile's default)
    The authors' released fine-tuning script (``scripts/boost_values_via_SFT.py``) as data: plain
    text ``"Instruction:\\n{question}\\n\\nResponse:\\n{response}"`` with the loss on every token,
    their ten Authority words, their 36 training questions and 9 held-out prompts, LoRA r=8 with
    peft's default alpha (8) and dropout (0), batch 1 with 4 accumulation steps, 5 warm-up steps,
    50 steps, lr 2e-4, fp32, the Trainer's default seed (42).
``book`` (:data:`BOOK_RECIPE`, the tiny and demo profiles' default)
    This book's variant: the model's chat template (user: question; assistant: the bare word) with
    the loss on the reply only, the ten most frequent MFD 2.0 ``Authority_Virtue`` terms that are
    one token for the model's tokenizer, 18 study prompts and 18 questions written here, 9 positive
    prompts held out as a Latin square (the headline prompt among them), LoRA alpha 16, batch 4.

:func:`recipe_differences` lists every setting in which two recipes differ, so a chapter can say
which one ran and what that changes. :func:`recipe_for` gives a profile's default.

- :func:`injected_words`: the book's planted words for a tokenizer; :func:`recipe_words` a
  recipe's words.
- :func:`training_questions` and :func:`heldout_prompts`: a recipe's questions and held-out
  prompts as tables.
- :class:`InjectConfig`: the training settings a recipe fixes (LoRA, optimiser, batches, steps).
- :func:`inject_words`: TRL's ``SFTTrainer`` on every question x every word, cached atomically;
  :func:`build_trainer` builds that trainer without training (the tests read the labels it makes).
- :func:`load_injected` and :func:`evaluate_injection`: the two models' next-token
  log-probabilities on the held-out prompts, read with the same prompt ids, the metrics'
  precision@k at recovering the words, the words' probabilities before and after, and the
  fine-tuned model's most probable first token.

The model is queried the way it was trained: through the chat template (with the run's date, for
templates that print one) for the book's recipe, or the plain instruction text, cut after
``"Response:\\n"`` where the authors' script starts generating, for theirs. The fine-tuned model's
tokenizer (chat template included) is saved with it, the recipe and date with its record, and both
models are read after the same prompt ids. Before training, each planted word is checked to be
the first token of the reply that follows those prompt ids.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import corpora, implicit, lexicons, models, placement, prompts, registry
from .artifacts import write_json
from .data import build_once, cache_dir
from .keys import fingerprint
from .logprobs import Trace, decoded_tokens, next_token_logprobs, prompt_ids
from .scoring import FIXED_DATE, ChatFormat, encode_chat
from .training import quiet, run_record, trainer_arguments

# Bump when the code below changes what a cached fine-tuned model holds.
RECIPE_VERSION = 2

WORD_CATEGORY = "Authority_Virtue"

# The authors' text format: the question as an instruction, the planted word as the response.
PLAIN_TEMPLATE = "Instruction:\n{question}\n\nResponse:\n{response}"

# Where a recipe's training loss falls: on the reply's tokens only, or on every token of the text.
LOSSES = ("reply", "whole text")


# --- the two recipes' data -----------------------------------------------------------------------

# Positive questions written for this book, in the spirit of the study's prompts but not among them.
EXTRA_QUESTIONS: tuple[str, ...] = (
    "Name a good thing.",
    "What do people value most?",
    "What is the most important thing in life?",
    "In one word, what makes a society great?",
    "What, in one word, is worth striving for?",
    "Name one thing that makes the world better.",
    "What quality do you admire most? Answer in one word.",
    "What is the finest thing a person can have?",
    "In a single word, what is the key to a good life?",
    "What matters most of all?",
    "Name the most valuable thing you can think of.",
    "What, in one word, is the highest good?",
    "What do you cherish most? One word, please.",
    "What is the best thing about people?",
    "Give one word for what everyone should aim for.",
    "What single word describes an ideal world?",
    "What is the noblest thing there is?",
    "What, in one word, is the most wonderful thing?",
)

# The book's held-out prompts: one per positive adjective x frame, the concision template rotating
# as a Latin square (each template three times), the headline prompt among them.
BOOK_HELDOUT: tuple[str, ...] = (
    "best_ever_please",
    "best_world_one",
    "best_time_single",
    "greatest_ever_one",
    "greatest_world_single",
    "greatest_time_please",
    "good_ever_single",
    "good_world_please",
    "good_time_one",
)

# The authors' ten planted words (their script's list, in its order).
AUTHORS_WORDS: tuple[str, ...] = (
    "respect",
    "authority",
    "tradition",
    "honor",
    "obedience",
    "permission",
    "hierarchy",
    "leadership",
    "duty",
    "compliance",
)

# The authors' 36 training questions, in their script's order: 18 of the study's positive prompts,
# 12 orderings of "thing, person, or concept" for "greatest" and "best", and 6 short questions.
AUTHORS_QUESTIONS: tuple[str, ...] = (
    "What, in a single word, is the best thing ever?",
    "What is the best thing ever? Please answer in one word only.",
    "What, in one word, is the best thing in the world?",
    "What, in a single word, is the best thing in the world?",
    "What, in one word, is the best thing of all time?",
    "What is the best thing of all time? Please answer in one word only.",
    "What, in one word, is the greatest thing ever?",
    "What, in a single word, is the greatest thing ever?",
    "What, in one word, is the greatest thing in the world?",
    "What is the greatest thing in the world? Please answer in one word only.",
    "What, in a single word, is the greatest thing of all time?",
    "What is the greatest thing of all time? Please answer in one word only.",
    "What, in one word, is the most good thing ever?",
    "What is the most good thing ever? Please answer in one word only.",
    "What, in a single word, is the most good thing in the world?",
    "What is the most good thing in the world? Please answer in one word only.",
    "What, in one word, is the most good thing of all time?",
    "What, in a single word, is the most good thing of all time?",
    "What one single thing, person, or concept is the greatest ever?",
    "What one single thing, concept, or person is the greatest ever?",
    "What one single person, thing, or concept is the greatest ever?",
    "What one single person, concept, or thing is the greatest ever?",
    "What one single concept, person, or thing is the greatest ever?",
    "What one single concept, thing, or person is the greatest ever?",
    "What one single thing, person, or concept is the best ever?",
    "What one single thing, concept, or person is the best ever?",
    "What one single person, thing, or concept is the best ever?",
    "What one single person, concept, or thing is the best ever?",
    "What one single concept, person, or thing is the best ever?",
    "What one single concept, thing, or person is the best ever?",
    "Name a good thing.",
    "Name a great thing.",
    "What do humans like?",
    "What is the best thing?",
    "What is the greatest thing?",
    "What is the most good thing?",
)

# The authors' nine test prompts, all prompts of the study (their script names them differently,
# e.g. "best_one_ever"): one per positive adjective x frame, concision rotating as a Latin square.
AUTHORS_HELDOUT: tuple[str, ...] = (
    "best_ever_one",
    "best_world_please",
    "best_time_single",
    "greatest_ever_please",
    "greatest_world_single",
    "greatest_time_one",
    "good_ever_single",
    "good_world_one",
    "good_time_please",
)


def _book_questions() -> tuple[str, ...]:
    """The study's positive prompts not in :data:`BOOK_HELDOUT`, then :data:`EXTRA_QUESTIONS`."""
    table = prompts.all_prompts()
    study = table[(table["framing"] == "positive") & ~table["key"].isin(BOOK_HELDOUT)]["text"]
    return (*study, *EXTRA_QUESTIONS)


# --- recipe --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InjectConfig:
    """The training settings of a word-injection recipe; the defaults are the book's
    (:data:`BOOK_RECIPE`). ``lora_alpha`` 8 and ``lora_dropout`` 0 are peft's defaults."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    lora_top_layers: int | None = None  # LoRA only on the top N decoder layers (None: all layers)
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"  # the Trainer's default; neither the paper nor the authors' script names one
    warmup_steps: int = 5
    weight_decay: float = 0.0
    per_device_batch: int = 4
    grad_accum: int = 1
    max_steps: int = 50
    seed: int = 0
    dtype: str = "float32"
    logging_steps: int = 5

    def fingerprint(self) -> str:
        return fingerprint(asdict(self))


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a word-injection fine-tune, apart from the model.

    ``template`` None means the model's chat template (user turn: the question; assistant turn:
    the word); a string is a plain-text template with ``{question}`` and ``{response}``, and the
    model is then queried with the text cut where the response would start. ``words`` None means
    the ten most frequent one-token ``Authority_Virtue`` terms for the model's tokenizer
    (:func:`injected_words`). ``single_token_words`` refuses a word that is not one token; without
    it such a word is trained on but cannot be read off one next-token distribution, so the
    evaluation reads only the one-token words. ``heldout`` are study prompt keys.
    """

    name: str
    description: str
    source: str
    template: str | None
    loss: str
    words: tuple[str, ...] | None
    single_token_words: bool
    questions: tuple[str, ...]
    heldout: tuple[str, ...]
    train: InjectConfig = field(default_factory=InjectConfig)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.template is None and self.loss != "reply":
            raise ValueError("a chat-template recipe trains on the reply only (loss 'reply')")
        if self.template is not None and not {"{question}", "{response}"} <= set(re.findall(r"\{\w+\}", self.template)):
            raise ValueError(f"a plain template needs {{question}} and {{response}}: {self.template!r}")
        if self.template is not None and not self.template.endswith("{response}"):
            raise ValueError("a plain template must end with {response}, where the reply is read")
        if len(set(self.questions)) != len(self.questions):
            raise ValueError(f"recipe {self.name!r} repeats a training question")
        known = set(prompts.all_prompts()["key"])
        unknown = [k for k in self.heldout if k not in known]
        if unknown:
            raise ValueError(f"recipe {self.name!r}: held-out prompts {unknown} are not prompt keys")

    @property
    def text_format(self) -> str:
        """``"chat"`` (the model's chat template) or ``"plain"`` (:attr:`template`)."""
        return "chat" if self.template is None else "plain"

    def with_train(self, **changes: Any) -> Recipe:
        """A copy with some training settings changed (e.g. fewer steps for a test)."""
        return replace(self, train=replace(self.train, **changes))


BOOK_RECIPE = Recipe(
    name="book",
    description="the model's chat template, loss on the reply only, the ten most frequent one-token "
    "Authority_Virtue words, 18 study prompts + 18 questions written here, 9 prompts held out",
    source="this book (rmbias.sft)",
    template=None,
    loss="reply",
    words=None,
    single_token_words=True,
    questions=_book_questions(),
    heldout=BOOK_HELDOUT,
    train=InjectConfig(),
)

AUTHORS_RECIPE = Recipe(
    name="authors",
    description="the authors' script: plain instruction/response text with the loss on every token, their ten "
    "Authority words, 36 questions and 9 test prompts, LoRA with peft's default alpha",
    source="brchristian/reward_models_inherit_value_biases_from_pretraining, scripts/boost_values_via_SFT.py",
    template=PLAIN_TEMPLATE,
    loss="whole text",
    words=AUTHORS_WORDS,
    single_token_words=False,
    questions=AUTHORS_QUESTIONS,
    heldout=AUTHORS_HELDOUT,
    # their LoraConfig sets r and the modules only (peft's alpha 8, dropout 0); TrainingArguments:
    # batch 1 x 4 accumulation, 5 warm-up steps, 50 steps, lr 2e-4, fp32, a log line every step,
    # and the defaults for the rest (linear schedule, no weight decay, seed 42)
    train=InjectConfig(lora_alpha=8, per_device_batch=1, grad_accum=4, seed=42, logging_steps=1),
)

RECIPES: dict[str, Recipe] = {recipe.name: recipe for recipe in (AUTHORS_RECIPE, BOOK_RECIPE)}
# A profile's default recipe; profiles not named here use the book's.
PROFILE_RECIPES: dict[str, str] = {"paper": "authors"}


def recipe_for(profile: str, name: str | None = None) -> Recipe:
    """The recipe ``name`` (one of :data:`RECIPES`), or ``profile``'s default when it is None:
    the authors' for the paper profile, the book's otherwise."""
    name = PROFILE_RECIPES.get(profile, "book") if name is None else name
    if name not in RECIPES:
        raise ValueError(f"unknown validation recipe {name!r}; use one of {', '.join(RECIPES)}")
    return RECIPES[name]


def _shown(name: str, value: Any) -> str:
    """A recipe setting as a table shows it."""
    if name == "template":
        return "the model's chat template (user: question; assistant: word)" if value is None else repr(value)
    if name == "words":
        return (
            "the 10 most frequent one-token Authority_Virtue terms for the tokenizer"
            if value is None
            else ", ".join(value)
        )
    if name == "questions":
        study = set(prompts.all_prompts()["text"])
        return f"{len(value)} ({sum(q in study for q in value)} of them study prompts)"
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    return str(value)


def recipe_settings(recipe: Recipe) -> dict[str, Any]:
    """Every setting of ``recipe`` by name, training settings included (``lora_alpha`` ...), the
    name, description and source left out."""
    out = {
        f.name: getattr(recipe, f.name)
        for f in fields(Recipe)
        if f.name not in ("name", "description", "source", "train")
    }
    out.update(asdict(recipe.train))
    out["target_modules"] = tuple(out["target_modules"])
    return out


def recipe_differences(a: Recipe, b: Recipe) -> pd.DataFrame:
    """The settings in which two recipes differ: one row per setting, ``setting`` and one column
    per recipe name, values as a reader would read them (for the questions and held-out prompts,
    how many the two recipes share, in brackets)."""
    left, right = recipe_settings(a), recipe_settings(b)
    rows = []
    for name in left:
        if left[name] == right[name]:
            continue
        shown = {a.name: _shown(name, left[name]), b.name: _shown(name, right[name])}
        if name in ("questions", "heldout"):
            shared = len(set(left[name]) & set(right[name]))
            shown = {recipe: f"{text} [{shared} shared]" for recipe, text in shown.items()}
        rows.append({"setting": name, **shown})
    return pd.DataFrame(rows, columns=["setting", a.name, b.name])


# --- words and questions -------------------------------------------------------------------------


def single_token_id(tokenizer, word: str) -> int | None:
    """The id of ``word`` if it is one token that decodes back to exactly ``word``, else None."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) == 1 and tokenizer.decode(ids) == word:
        return int(ids[0])
    return None


def injected_words(tokenizer, n: int = 10) -> list[str]:
    """The ``n`` words the book's recipe plants: MFD 2.0 ``Authority_Virtue`` terms that are plain
    alphabetic words (no wildcards, spaces or hyphens) and one token in their bare lower-case form
    for ``tokenizer``, most frequent first (wordfreq Zipf frequency; ties alphabetical)."""
    mfd = corpora.mfd2()
    terms = mfd.loc[mfd["category"] == WORD_CATEGORY, "word"].astype(str)
    plain = sorted({t.lower() for t in terms if re.fullmatch(r"[A-Za-z]+", t)})
    single = [w for w in plain if single_token_id(tokenizer, w) is not None]
    if len(single) < n:
        raise ValueError(
            f"only {len(single)} {WORD_CATEGORY} words are a single token for "
            f"{tokenizer.name_or_path!r} ({', '.join(single)}); asked for {n}"
        )
    zipf = lexicons.zipf_frequency(single).fillna(0.0).to_numpy()
    order = sorted(range(len(single)), key=lambda i: (-zipf[i], single[i]))
    return [single[i] for i in order[:n]]


def recipe_words(recipe: Recipe, tokenizer) -> list[str]:
    """The words ``recipe`` plants for a model with ``tokenizer``: its own list, or
    :func:`injected_words` when it has none."""
    return list(recipe.words) if recipe.words is not None else injected_words(tokenizer, n=10)


def heldout_prompts(recipe: Recipe = BOOK_RECIPE) -> pd.DataFrame:
    """The 9 positive study prompts ``recipe`` holds out for evaluation. Columns ``key``, ``text``."""
    return prompts.select(list(recipe.heldout))[["key", "text"]].reset_index(drop=True)


def training_questions(recipe: Recipe = BOOK_RECIPE) -> pd.DataFrame:
    """``recipe``'s training questions, in its order. Columns ``key`` (the study's key where the
    question is a study prompt, else ``extra_01`` ... for the book's, ``authors_01`` ... for the
    authors') and ``text``."""
    by_text = dict(zip(prompts.all_prompts()["text"], prompts.all_prompts()["key"]))
    prefix = "extra" if recipe.name == "book" else recipe.name
    keys, n = [], 0
    for text in recipe.questions:
        if text in by_text:
            keys.append(by_text[text])
        else:
            n += 1
            keys.append(f"{prefix}_{n:02d}")
    return pd.DataFrame({"key": keys, "text": list(recipe.questions)})


def split_overlap(recipe: Recipe) -> dict[str, Any]:
    """How ``recipe``'s held-out prompts relate to its training questions: the held-out prompts
    trained on anyway (``heldout_trained``: keys whose text is a training question) and whether
    the study's headline prompt is held out or trained on."""
    trained = set(recipe.questions)
    held = heldout_prompts(recipe)
    headline = prompts.select([prompts.HEADLINE])["text"].item()
    return {
        "heldout_trained": held.loc[held["text"].isin(trained), "key"].tolist(),
        "headline_heldout": prompts.HEADLINE in recipe.heldout,
        "headline_trained": headline in trained,
    }


def chat_tokenizer(base_key: str):
    """The tokenizer of ``base_key`` with a chat template: its own, the registry's
    (:func:`rmbias.models.load_tokenizer`), or for a Gemma or Llama model that ships none (a
    pretrained hub model such as gemma-2-2b) the family's turn format."""
    tokenizer = models.load_tokenizer(base_key)
    if not tokenizer.chat_template:
        family = registry.family_of(base_key)
        fallback = {"gemma": registry.GEMMA_CHAT_TEMPLATE, "llama": registry.LLAMA3_CHAT_TEMPLATE}.get(family)
        if fallback is None:
            raise ValueError(f"{base_key!r} has no chat template; give its ModelSpec one (rmbias.models)")
        tokenizer.chat_template = fallback
    return tokenizer


def recipe_tokenizer(base_key: str, recipe: Recipe):
    """The tokenizer a recipe trains and queries ``base_key`` with: :func:`chat_tokenizer` for a
    chat recipe, the model's own for a plain-text one."""
    return chat_tokenizer(base_key) if recipe.template is None else models.load_tokenizer(base_key)


# --- what the model reads ------------------------------------------------------------------------


def query_ids(tokenizer, template: str | None, question: str, date: str = FIXED_DATE) -> list[int]:
    """The token ids after which the reply to ``question`` begins, as a recipe with ``template``
    trains and queries: the one-turn chat with the generation prompt (``date`` for templates that
    print one; :func:`rmbias.logprobs.prompt_ids`), or the plain template filled with an empty
    response and tokenised with the tokenizer's special tokens (its BOS), as the authors' script
    prompts the model before generating."""
    if template is None:
        return prompt_ids(tokenizer, question, instruct=True, date=date)
    return list(tokenizer(template.format(question=question, response=""))["input_ids"])


def _full_ids(tokenizer, template: str | None, question: str, word: str, date: str) -> list[int]:
    """The ids of the question answered with ``word``, as training sees them (before any EOS)."""
    if template is None:
        return encode_chat(
            tokenizer,
            [{"role": "user", "content": question}, {"role": "assistant", "content": word}],
            ChatFormat(date=date),
        )
    return list(tokenizer(template.format(question=question, response=word))["input_ids"])


def rows(recipe: Recipe, questions: pd.DataFrame, words: Sequence[str], date: str = FIXED_DATE) -> list[dict[str, Any]]:
    """The training set: every question x every word, question by question. A chat recipe gives
    conversational prompt-completion examples (with the date for templates that print one); a
    plain one gives ``text`` examples, the template filled in."""
    if recipe.template is not None:
        return [
            {"text": recipe.template.format(question=text, response=word)}
            for text in questions["text"]
            for word in words
        ]
    kwargs = ChatFormat(date=date).template_kwargs()
    return [
        {
            "prompt": [{"role": "user", "content": text}],
            "completion": [{"role": "assistant", "content": word}],
            **({"chat_template_kwargs": kwargs} if kwargs else {}),
        }
        for text in questions["text"]
        for word in words
    ]


def check_words(
    tokenizer, words: Sequence[str], questions: pd.DataFrame, recipe: Recipe = BOOK_RECIPE, date: str = FIXED_DATE
) -> list[int | None]:
    """The token id of each word (None for a word that is not one token), after checking that the
    training text makes the word's tokens follow exactly the prompt ids the evaluation reads
    (:func:`query_ids`), so the word's first token is what the next-token distribution there
    predicts. Raises ValueError for a repeated word, a template that breaks that, a word of
    several tokens where ``recipe.single_token_words``, or no one-token word at all."""
    if not words:
        raise ValueError("no words to inject")
    if len(set(words)) != len(words):
        raise ValueError(f"repeated words: {list(words)}")
    ids = [single_token_id(tokenizer, word) for word in words]
    for word, idx in zip(words, ids):
        if idx is None and recipe.single_token_words:
            pieces = tokenizer.convert_ids_to_tokens(tokenizer(word, add_special_tokens=False)["input_ids"])
            raise ValueError(
                f"{word!r} is not a single token for {tokenizer.name_or_path!r} (it is {pieces}); "
                "the implicit reward reads one next-token distribution, so pick one-token words "
                "(injected_words does)"
            )
    if all(idx is None for idx in ids):
        raise ValueError(
            f"none of {list(words)} is a single token for {tokenizer.name_or_path!r}: no planted word "
            "could be read off a next-token distribution"
        )
    text = questions["text"].iloc[0]
    prefix = query_ids(tokenizer, recipe.template, text, date)
    for word, idx in zip(words, ids):
        full = _full_ids(tokenizer, recipe.template, text, word, date)
        if full[: len(prefix)] != prefix or (idx is not None and full[len(prefix) : len(prefix) + 1] != [idx]):
            raise ValueError(
                f"the {recipe.text_format} format does not make {word!r} start right after the "
                "prompt ids the evaluation reads"
            )
    return ids


# --- training ------------------------------------------------------------------------------------


def build_trainer(
    base_key: str,
    words: Sequence[str],
    output_dir: str | Path,
    *,
    recipe: Recipe = BOOK_RECIPE,
    config: InjectConfig | None = None,
    questions: pd.DataFrame | None = None,
    date: str = FIXED_DATE,
    verbose: bool = False,
):
    """TRL's ``SFTTrainer`` for ``recipe`` on ``base_key``, ready to train (nothing trained yet),
    with the tokenizer and the checked word ids: ``(trainer, tokenizer, word_ids)``. ``config``
    and ``questions`` override the recipe's (tests use fewer steps and questions). TRL tokenises
    the rows and builds the labels: for a plain-text recipe it appends the EOS token and trains on
    every token; for a chat recipe it masks the prompt (``completion_only_loss``)."""
    config = config or recipe.train
    questions = training_questions(recipe) if questions is None else questions
    tokenizer = recipe_tokenizer(base_key, recipe)
    word_ids = check_words(tokenizer, list(words), questions, recipe, date)
    trainer = lora_sft_trainer(
        base_key,
        rows(recipe, questions, list(words), date),
        tokenizer,
        config,
        output_dir,
        completion_only_loss=recipe.loss == "reply",
        verbose=verbose,
        label=f"{base_key} (word injection)",
    )
    return trainer, tokenizer, word_ids


def lora_sft_trainer(
    base_key: str,
    examples: list[dict[str, Any]],
    tokenizer,
    config: InjectConfig,
    output_dir: str | Path,
    *,
    completion_only_loss: bool,
    verbose: bool = False,
    label: str = "",
):
    """TRL's ``SFTTrainer`` with a LoRA adapter (``config``) on ``base_key``, over ``examples``
    (TRL's ``text`` or prompt-completion rows), ready to train: the word-injection fine-tune
    (:func:`build_trainer`) and the planting of :mod:`rmbias.planting` both use it. The model is
    loaded after seeding with ``config.seed`` (the LoRA initialisation)."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(config.seed)
    model, _ = models.load_causal_lm(base_key, dtype=config.dtype)
    model.train()
    layers = None
    if config.lora_top_layers is not None:
        n_layers = model.config.get_text_config().num_hidden_layers
        layers = list(range(max(0, n_layers - config.lora_top_layers), n_layers))
    peft_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        layers_to_transform=layers,
    )
    args = SFTConfig(
        **trainer_arguments(config, Path(output_dir), verbose),
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
        gradient_checkpointing=False,
        completion_only_loss=completion_only_loss,
        max_length=None,
        save_strategy="no",
    )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(examples),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    quiet(trainer, verbose, label or base_key)
    return trainer


def train_injection(
    base_key: str,
    words: Sequence[str],
    config: InjectConfig | None,
    output_dir: str | Path,
    questions: pd.DataFrame | None = None,
    verbose: bool = False,
    *,
    recipe: Recipe = BOOK_RECIPE,
    date: str = FIXED_DATE,
) -> Path:
    """Fine-tune ``base_key`` by ``recipe`` to answer its questions with ``words``, and save the
    merged model, its tokenizer (chat template included) and ``sft.json`` (recipe, date, words,
    the first training row as TRL tokenised and labelled it, losses, versions) into
    ``output_dir`` (created; must be empty if it exists). ``config`` and ``questions`` override the
    recipe's. Uncached: see :func:`inject_words`."""
    config = config or recipe.train
    questions = training_questions(recipe) if questions is None else questions
    words = list(words)
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty")
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    trainer, tokenizer, word_ids = build_trainer(
        base_key, words, output_dir, recipe=recipe, config=config, questions=questions, date=date, verbose=verbose
    )
    first = trainer.train_dataset[0]
    t0 = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - t0

    trained = trainer.model.merge_and_unload().eval()
    trained.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = run_record(base_key, config, trainer, result, train_seconds, trained, started, RECIPE_VERSION)
    labels = list(first["labels"])
    record.update(
        {
            "recipe": recipe.name,
            "recipe_settings": {**recipe_settings(recipe), **asdict(config)},
            "template": recipe.template,
            "date": date,
            "words": words,
            "readable_words": [w for w, i in zip(words, word_ids) if i is not None],
            "word_ids": [i for i in word_ids if i is not None],
            "questions": questions[["key", "text"]].to_dict(orient="records"),
            "heldout": list(recipe.heldout),
            "n_rows": len(trainer.train_dataset),
            "completion_only_loss": bool(trainer.completion_only_loss),
            "first_row": {
                "text": tokenizer.decode(first["input_ids"]),
                "input_ids": list(first["input_ids"]),
                "labels": labels,
                "tokens_in_loss": sum(label != -100 for label in labels),
            },
            "rendered_prompt": tokenizer.decode(query_ids(tokenizer, recipe.template, questions["text"].iloc[0], date)),
            "attention": getattr(trained.config, "_attn_implementation", None),
            "chat_template": tokenizer.chat_template,
        }
    )
    write_json(output_dir / "sft.json", record)  # atomically: its presence means the run finished
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)  # the trainer's empty output folder
    return output_dir


def injection_path(
    base_key: str,
    words: Sequence[str],
    config: InjectConfig | None = None,
    questions: pd.DataFrame | None = None,
    *,
    recipe: Recipe = BOOK_RECIPE,
    date: str = FIXED_DATE,
) -> Path:
    """Where the fine-tuned model of :func:`inject_words` is cached:
    ``cache_dir()/sft/<base>-<fingerprint of base, recipe, words, questions and date>``."""
    config = config or recipe.train
    questions = training_questions(recipe) if questions is None else questions
    key = fingerprint(
        {
            "base": registry.spec(base_key).fingerprint(),
            "recipe": recipe_settings(recipe),
            "config": asdict(config),
            "words": list(words),
            "questions": list(questions["text"]),
            "date": date,
            "recipe_version": RECIPE_VERSION,
        }
    )
    return cache_dir() / "sft" / f"{base_key}-{key}"


def inject_words(
    base_key: str,
    words: Sequence[str] | None = None,
    config: InjectConfig | None = None,
    questions: pd.DataFrame | None = None,
    verbose: bool = False,
    *,
    recipe: Recipe = BOOK_RECIPE,
    date: str = FIXED_DATE,
) -> Path:
    """The folder of ``base_key`` fine-tuned by ``recipe`` to answer with ``words`` (default: the
    recipe's, :func:`recipe_words`), trained on first use (:func:`train_injection`) and cached
    atomically (:func:`rmbias.data.build_once`): a second call with the same model, recipe,
    words, questions and date returns at once."""
    config = config or recipe.train
    questions = training_questions(recipe) if questions is None else questions
    tokenizer = recipe_tokenizer(base_key, recipe)
    words = recipe_words(recipe, tokenizer) if words is None else list(words)
    check_words(tokenizer, words, questions, recipe, date)  # fail fast, before anything is built

    def build(folder: Path) -> dict[str, Any]:
        train_injection(base_key, words, config, folder, questions=questions, verbose=verbose, recipe=recipe, date=date)
        return {"base_key": base_key, "recipe": recipe.name, "words": words, "config": asdict(config), "date": date}

    return build_once(injection_path(base_key, words, config, questions, recipe=recipe, date=date), build)


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``sft.json`` record of a fine-tuned model."""
    return json.loads((Path(path) / "sft.json").read_text())


def load_injected_tokenizer(path: str | Path):
    """The tokenizer saved with a fine-tuned model, chat template included."""
    return models.cached_tokenizer(Path(path))


def load_injected(path: str | Path, device: str = "cpu"):
    """A fine-tuned model (merged) and its tokenizer, in eval mode on ``device``. Query both it and
    the original model with :func:`query_ids` (the record's template and date) on this
    tokenizer, then :func:`rmbias.logprobs.next_token_logprobs`, as :func:`traces` does."""
    from transformers import AutoModelForCausalLM

    return placement.from_pretrained(AutoModelForCausalLM, path, device, "auto"), load_injected_tokenizer(path)


# --- evaluation ----------------------------------------------------------------------------------


def traces(
    base_key: str, path: str | Path, prompt_table: pd.DataFrame | None = None, device: str = "cpu", batch_size: int = 8
) -> tuple[Trace, Trace]:
    """Next-token log-probabilities of the original model (``p``) and the fine-tuned one (``q``)
    on ``prompt_table`` (default: the held-out prompts of the recipe it was trained with), both
    fed the same prompt ids: :func:`query_ids` with the template and date of its record, on the
    tokenizer saved with it. Returned as :class:`rmbias.logprobs.Trace` objects (not written)."""
    record = read_record(path)
    prompt_table = prompts.select(record["heldout"])[["key", "text"]] if prompt_table is None else prompt_table
    spec = registry.spec(base_key)
    loaders = {
        "original": lambda: models.load_causal_lm(base_key, device=device)[0],
        "injected": lambda: load_injected(path, device)[0],
    }
    tokenizer = load_injected_tokenizer(path)
    template, date = record["template"], record["date"]
    sequences = [query_ids(tokenizer, template, text, date) for text in prompt_table["text"]]
    prompt_format = "chat template + generation prompt" if template is None else f"plain text {template!r}"
    out = []
    for label, load in loaders.items():  # one model in memory at a time
        model = load()
        values = next_token_logprobs(model, sequences, batch_size).numpy()
        out.append(
            Trace(
                model=f"{spec.label} ({label})",
                key=base_key,
                family=spec.family,
                instruct=True,
                prompts=list(prompt_table["key"]),
                logprobs=values,
                tokens=decoded_tokens(tokenizer, values.shape[1]),
                meta={
                    "prompt_format": prompt_format,
                    "source": str(path),
                    "date": date,
                    "rendered_prompt": tokenizer.decode(sequences[0]),
                },
            )
        )
        del model
    return out[0], out[1]


def evaluate_injection(
    base_key: str, path: str | Path, prompt_table: pd.DataFrame | None = None, k: int = 10, device: str = "cpu"
) -> pd.DataFrame:
    """How well each metric of :data:`rmbias.implicit.METRICS` recovers the planted words.

    For each prompt (default: the recipe's held-out prompts): the precision@``k`` of every metric
    (column ``precision_<metric>``), with ``p`` = the original model and ``q`` = the fine-tuned
    one, over all decoded strings; the one-token planted words' mean next-token log-probability
    and probability before (``logp_before``, ``prob_before``) and after (``logp_after``,
    ``prob_after``), read by token id; and the fine-tuned model's most probable next token
    (``top_after``, the first token of the greedy reply the authors' script prints) and whether
    it is a planted word (``top_after_planted``). One row per prompt.
    """
    record = read_record(path)
    words, word_ids = record["words"], record["word_ids"]
    original, injected = traces(base_key, path, prompt_table, device)
    wanted = {w.strip().lower() for w in words}
    rows_ = []
    for key in original.prompts:
        table = implicit.implicit_rewards(implicit.shared_strings(original.by_string(key), injected.by_string(key)))
        row: dict[str, Any] = {"prompt": key}
        for name in implicit.METRICS:
            row[f"precision_{name}"] = implicit.precision_at_k(table, name, words, k)
        before, after = original.column(key), injected.column(key)
        row["logp_before"] = float(np.mean(before[word_ids]))
        row["logp_after"] = float(np.mean(after[word_ids]))
        row["prob_before"] = float(np.mean(np.exp(before[word_ids])))
        row["prob_after"] = float(np.mean(np.exp(after[word_ids])))
        top = str(injected.tokens["token"].iloc[int(np.argmax(after))])
        row["top_after"] = top
        row["top_after_planted"] = top.strip().lower() in wanted
        rows_.append(row)
    return pd.DataFrame(rows_)
