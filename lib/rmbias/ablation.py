"""Ablation training: reward models from different bases, identical data, followed through training.

Section 6 of the paper trains Bradley-Terry reward models from two base models (gemma-2-2b-it and
Llama-3.2-3B-Instruct) on identical preference data with one recipe, and scores every checkpoint
on the headline prompt ``greatest_ever_one``: the vocabulary tokens that match the expanded Big
Two dictionary (1,365 token variants) are ranked by reward, and the median rank of each category
is tracked over training steps (Figure 4a) and over data quantity (Figure 4b). This module runs
that grid, with several seeds per condition (the paper had one), and reads the authors' released
rank tables.

A grid is an :class:`Ablation`: bases x data sizes x seeds, one recipe
(:class:`rmbias.training.TrainConfig`), and the steps at which the model is scored. Each run is
one call to :func:`rmbias.training.train_reward_model` (the same code that trains chapter 02's
reward models) with a :class:`CheckpointScorer` callback, which scores the live model with the
scoring engine (:func:`rmbias.scoring.score`) at step 0 (the untrained model, random score head)
and at every chosen step, and writes one table per step. A run folder is complete when
``complete.json`` is in it; an interrupted run resumes from its last LoRA checkpoint, and steps
already scored are not scored again.

Candidates are decoded vocabulary strings whose normalised form (non-ASCII characters removed,
whitespace stripped, lower case; as the authors' scripts do) is an entry of the expanded Big Two
dictionary: :func:`big2_candidates`. Each base scores the same strings, so ranks are comparable
across bases. The paper grid scores the authors' set, the strings of their three-vocabulary
``token_intersection.csv`` (:func:`authors_candidates`, 1,365 variants); the demo and tiny grids,
whose bases have other vocabularies, score the strings their own bases share.

The grid reads its preference data once (:func:`prepare`): the pool of pairs every run draws from
(:class:`rmbias.preferences.PairPool`), against which the requested data sizes are checked before
any model loads.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from . import corpora, models, prompts, ranks, registry, scoring
from .artifacts import atomic_write, write_json
from .data import DataError, build_lock, build_once, cache_dir, fetch, provenance
from .keys import fingerprint
from .preferences import HUB_PREFERENCES, UNIFIED_FEEDBACK, PairPool
from .profiles import PROFILES, Profile
from .progress import note as progress_note
from .training import RECIPE_VERSION, TrainConfig, key_dict, optimizer_steps, prepare_pairs, train_reward_model

STEP_FILE = re.compile(r"step-(\d+)\.parquet$")


# --- candidates ----------------------------------------------------------------------------------


def normalise(token: str) -> str:
    """The authors' normal form of a decoded token: ASCII characters only, stripped, lower case."""
    return token.encode("ascii", errors="ignore").decode("ascii").strip().lower()


def decoded_vocabulary(tokenizer) -> dict[str, int]:
    """Each decoded string of a tokenizer's ordinary vocabulary, with the lowest id that decodes to it."""
    out: dict[str, int] = {}
    for idx in scoring.vocabulary_ids(tokenizer):
        out.setdefault(tokenizer.decode([idx]), idx)
    return out


def big2_candidates(
    tokenizers: dict[str, Any], dictionary: pd.DataFrame | None = None, strings: Sequence[str] | None = None
) -> pd.DataFrame:
    """The token variants of the expanded Big Two dictionary that every tokenizer has.

    ``tokenizers`` maps a model key to its tokenizer. ``strings`` are the candidate strings (default:
    every decoded string the tokenizers share). Returns one row per candidate string that every
    vocabulary has and whose normal form (:func:`normalise`) is a dictionary entry: ``token`` (the
    decoded string, e.g. ``" Freedom"``), ``word`` (its normal form), ``category``, and ``id_<key>`` (the
    token id in each vocabulary). Strings are in sorted order, so the table does not depend on the
    order of ``tokenizers``. With ``strings`` given, ``table.attrs["missing"]`` counts, per tokenizer,
    the dictionary variants among them that its vocabulary lacks.
    """
    if not tokenizers:
        raise ValueError("no tokenizers given")
    dictionary = corpora.big2_expanded() if dictionary is None else dictionary
    category = dict(zip(dictionary["word"].str.lower(), dictionary["category"]))
    vocabularies = {key: decoded_vocabulary(tok) for key, tok in tokenizers.items()}
    shared = set.intersection(*(set(v) for v in vocabularies.values()))
    missing: dict[str, int] = {}
    if strings is not None:
        wanted = {s for s in strings if normalise(s) in category}
        missing = {key: len(wanted - set(v)) for key, v in vocabularies.items()}
        shared &= wanted
    rows = sorted(s for s in shared if normalise(s) in category)
    if not rows:
        raise ValueError("no expanded Big Two token variant is shared by all these tokenizers")
    table = pd.DataFrame({"token": rows, "word": [normalise(s) for s in rows]})
    table["category"] = table["word"].map(category)
    for key, vocabulary in vocabularies.items():
        table[f"id_{key}"] = [vocabulary[s] for s in rows]
    if strings is not None:
        table.attrs["missing"] = missing
    return table


def authors_candidates(dictionary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The authors' candidate set: the strings of their ``token_intersection.csv`` (decoded tokens
    shared by the Llama 3, Gemma 2 and Qwen 2.5 vocabularies) whose normal form is an expanded Big
    Two entry, as ``token``, ``word``, ``category`` in sorted order: 1,365 variants for the release.

    Only ASCII strings count. Seven of the list's strings are not ASCII but become a dictionary word
    once their other characters are removed (``" także"`` becomes ``take``, ``"údo"`` becomes ``do``);
    with them the set would hold 1,372 variants, not the paper's 1,365. Why the authors' pipeline
    left them out is not in the release (the token tables their Figure 4 script reads are not
    public); the ASCII rule is the one that gives the paper's count.
    """
    dictionary = corpora.big2_expanded() if dictionary is None else dictionary
    category = dict(zip(dictionary["word"].str.lower(), dictionary["category"]))
    strings = sorted({s for s in corpora.token_intersection() if s.isascii() and normalise(s) in category})
    table = pd.DataFrame({"token": strings, "word": [normalise(s) for s in strings]})
    table["category"] = table["word"].map(category)
    return table


CANDIDATE_SETS = ("bases", "authors")


def grid_candidates(grid: Ablation, tokenizers: dict[str, Any] | None = None) -> pd.DataFrame:
    """The candidates a grid scores (:attr:`Ablation.candidates`): the authors' set placed in every
    base's vocabulary, or the dictionary variants the bases' vocabularies share."""
    tokenizers = tokenizers or {b: models.load_tokenizer(b) for b in grid.bases}
    if grid.candidates == "authors":
        return big2_candidates(tokenizers, strings=authors_candidates()["token"].tolist())
    return big2_candidates(tokenizers)


# --- the grid ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ablation:
    """A grid of reward-model training runs: every base x data size x seed, one recipe.

    ``sizes`` are numbers of training pairs (nested for one seed: the smaller set is the start of
    the larger). A run's seed seeds the score head, the LoRA initialisation, the batch order and,
    with the recipe's ``selection="shuffle"``, the draw of its training pairs, so seeds differ in
    data as well as initialisation, while the held-out pairs are the same for every run
    (``heldout_seed``). With ``selection="every-kth"`` (the paper's) the pairs are the authors'
    every k-th pair for every seed; ``strides`` then gives the k of each data size (the authors'
    64, 32, 16 and 8), and the sizes follow from the data (:func:`prepare`). The model is scored on
    ``prompt`` at step 0 and at its last step, and every ``score_every`` optimiser steps for the
    sizes named by ``trajectory_for``. ``candidates``: ``"bases"`` scores the dictionary variants the
    bases' vocabularies share, ``"authors"`` the authors' set (:func:`authors_candidates`).
    """

    bases: tuple[str, ...]
    sizes: tuple[int, ...]
    seeds: tuple[int, ...]
    recipe: TrainConfig
    score_every: int
    prompt: str = "greatest_ever_one"
    heldout_seed: int = 0
    heldout_for: str = "largest"  # held-out accuracy for runs of the "largest" size only, "all", or "none"
    trajectory_for: str = "largest"  # scored every score_every steps: "largest" size only, or "all"
    batch_size: int = 128  # candidates per scoring pass (halved on out-of-memory)
    # added for the paper grid; at their defaults they leave older grids' cache keys as they were
    strides: tuple[int, ...] = ()  # every-kth selection: the stride of each size (sizes come from the data)
    candidates: str = "bases"  # "bases" (their shared vocabulary) or "authors" (token_intersection.csv)

    def __post_init__(self) -> None:
        if self.candidates not in CANDIDATE_SETS:
            raise ValueError(f"unknown candidate set {self.candidates!r}: use one of {', '.join(CANDIDATE_SETS)}")
        if self.strides and self.recipe.selection != "every-kth":
            raise ValueError("strides need the recipe's selection='every-kth'")
        if self.heldout_for not in ("largest", "all", "none"):
            raise ValueError(f"heldout_for {self.heldout_for!r}: use 'largest', 'all' or 'none'")

    @classmethod
    def demo(cls, **changes: Any) -> Ablation:
        """The CPU grid of the demo profile (its ``bases``, ``sizes``, ``seeds`` and ``score_every``):
        SmolLM2-135M-Instruct and Gemma-3-270M, 24/48/96 hh-rlhf pairs, 2 seeds.

        The recipe is the demo recipe (:meth:`rmbias.training.TrainConfig.demo`) with half the batch
        (4 pairs a step) and messages cut at 200 characters: 6, 12 and 24 steps. Held-out accuracy
        (128 pairs) for the 96-pair runs only. The first seed's 96-pair runs are chapter 02's reward
        models (:func:`demo_reward_model`). Two seeds (12 runs, about 11 minutes on two cores the first time) rather than
        the paper grid's three: with three, the 18 runs took 20 minutes of a cold build, whose CI run
        took 84 of the 90 minutes it is allowed; the chapter reports what two seeds show.
        """
        recipe = TrainConfig.demo(per_device_batch=4, max_chars=200, max_length=192, n_heldout=128, logging_steps=4)
        return _with(cls(**_profile_grid("demo"), recipe=recipe), changes)

    @classmethod
    def tiny(cls, **changes: Any) -> Ablation:
        """Random-weight tiny Llama and Gemma 2 models (the tiny profile's grid): seconds, for the tests."""
        recipe = TrainConfig.demo(per_device_batch=4, max_chars=200, max_length=192, n_heldout=16, logging_steps=1)
        return _with(cls(**_profile_grid("tiny"), recipe=recipe, batch_size=512), changes)

    @classmethod
    def for_profile(cls, profile: str | Profile, **changes: Any) -> Ablation:
        """The grid of a profile (``tiny``, ``demo`` or ``paper``, by name or resolved with its
        overrides by :func:`rmbias.profiles.resolve`), with ``changes`` applied (a change of None keeps
        the profile's value). A resolved profile gives the grid its ``bases``, ``sizes`` (where it
        names any), ``seeds`` and ``score_every``, and the ``tokenisation`` and ``chat_date`` of
        training and scoring (:class:`rmbias.scoring.ChatFormat`). ``data`` names other preference data:
        the paper grid then takes the authors' settings for it (Skywork: the whole set)."""
        makers = {"tiny": cls.tiny, "demo": cls.demo, "paper": cls.paper}
        name = profile if isinstance(profile, str) else profile.name
        if name not in makers:
            raise ValueError(f"no ablation grid for profile {name!r}; choose one of {', '.join(makers)}")
        if not isinstance(profile, str):
            changes = {
                "bases": profile.bases,
                "seeds": profile.seeds,
                "score_every": profile.score_every,
                "tokenisation": profile.tokenisation,
                "chat_date": profile.chat_date,
                **({"sizes": profile.sizes} if profile.sizes else {}),
                **changes,
            }
        return makers[name](**{k: v for k, v in changes.items() if v is not None})

    def key_dict(self) -> dict[str, Any]:
        """The grid as cache keys see it (:func:`rmbias.training.key_dict`): fields added for the paper
        grid, and the recipe's, count only where they differ from their defaults."""
        out = key_dict(self, ("strides", "candidates"))
        out["recipe"] = self.recipe.key_dict()
        return out

    def fingerprint(self) -> str:
        """A short hash of everything that changes the runs' results (cache folder names)."""
        return fingerprint(
            {
                "grid": self.key_dict(),
                "recipe_version": RECIPE_VERSION,
                "bases": [registry.spec(b).fingerprint() for b in self.bases],
            }
        )

    @classmethod
    def paper(cls, **changes: Any) -> Ablation:
        """The paper's grid on a GPU: gemma-2-2b-it and Llama-3.2-3B-Instruct with the authors' recipe
        (:meth:`rmbias.training.TrainConfig.paper`), scored every 1,000 steps on the authors' candidate
        set. On Unified-Feedback (the default ``data``): every 64th, 32nd, 16th and 8th untied pair
        (about 13k, 27k, 53k and 106k), held out on its ``val`` split. On Skywork 80K: the whole train
        split less the authors' 0.5% held out. The paper ran one seed; three are set here, which
        triples the cost."""
        data = changes.pop("data", UNIFIED_FEEDBACK)
        if data not in HUB_PREFERENCES:
            raise ValueError(
                f"the paper grid trains on {', '.join(HUB_PREFERENCES)}, not {data!r}; give the "
                "demo profile's file data to the demo or tiny grid"
            )
        recipe = TrainConfig.paper(data=data, logging_steps=50)
        strides = (64, 32, 16, 8) if data == UNIFIED_FEEDBACK else (1,)  # Skywork: every pair
        grid = cls(
            **_profile_grid("paper"),
            recipe=recipe,
            batch_size=256,
            heldout_for="all",
            trajectory_for="all",
            strides=strides,
            candidates="authors",
        )
        return _with(grid, changes)

    def config(self, size: int, seed: int) -> TrainConfig:
        """The recipe of one run: ``n_train=size``, ``seed``, the grid's held-out split and, where
        ``strides`` pair up with the sizes (after :func:`prepare`), the stride of ``size``. LoRA
        checkpoints (for resuming) are kept every ``score_every`` steps."""
        paired = len(self.strides) == len(self.sizes) and size in self.sizes
        stride = self.strides[self.sizes.index(size)] if paired else None
        return replace(
            self.recipe,
            n_train=size,
            seed=seed,
            split_seed=self.heldout_seed,
            save_steps=self.score_every,
            stride=stride,
        )

    def steps_for(self, size: int, n_steps: int) -> list[int]:
        """The steps at which a run of ``size`` pairs and ``n_steps`` optimiser steps is scored:
        step 0 and the last step always; every ``score_every`` steps where a trajectory is kept."""
        if self.trajectory_for == "all" or size == max(self.sizes):
            return scored_steps(n_steps, self.score_every)
        return [0, n_steps]

    def runs(self) -> list[dict[str, Any]]:
        """Every (base, size, seed) of the grid: seed by seed, each base within a seed, the largest
        size first within a base (so the first seed's largest runs, chapter 02's reward models in
        the demo profile, :func:`demo_reward_model`, come first)."""
        if not self.sizes:
            raise ValueError("the grid's sizes come from its data: call ablation.prepare(grid) first")
        return [
            {"base": b, "size": n, "seed": s}
            for s in self.seeds
            for b in self.bases
            for n in sorted(self.sizes, reverse=True)
        ]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _profile_grid(name: str) -> dict[str, Any]:
    """A profile's grid settings (:class:`rmbias.profiles.Profile`): bases, sizes, seeds, score_every."""
    profile = PROFILES[name]
    return {"bases": profile.bases, "sizes": profile.sizes, "seeds": profile.seeds, "score_every": profile.score_every}


def _with(grid: Ablation, changes: dict[str, Any]) -> Ablation:
    """``grid`` with ``changes``: ``data``, ``tokenisation`` and ``chat_date`` replace the recipe's, and
    explicit ``sizes`` replace the strides (every-kth selection then takes the largest stride that
    gives each size)."""
    changes = dict(changes)
    recipe = {k: changes.pop(k) for k in ("data", "tokenisation", "chat_date") if k in changes}
    if recipe:
        grid = replace(grid, recipe=replace(grid.recipe, **recipe))
    if "sizes" in changes:
        changes["strides"] = ()
    return replace(grid, **changes)


def prepare(grid: Ablation, pool: PairPool | None = None) -> tuple[Ablation, PairPool]:
    """Read the grid's preference data once and check the grid against it, before any model loads.

    Returns the grid with its sizes settled (from ``strides`` and the data, where the sizes follow
    from the data) and the pool every run draws from. Raises ValueError naming the setting to
    change when a requested size exceeds the pairs available.
    """
    pool = pool_for_grid(grid, pool)
    n = pool.n_available
    if grid.strides:
        sizes = tuple(len(range(0, n, k)) for k in grid.strides)
        if min(sizes) < 1:
            raise ValueError(f"{grid.recipe.data} offers no training pairs")
        return replace(grid, sizes=sizes), pool
    if not grid.sizes:
        raise ValueError("the grid has neither sizes nor strides: set SIZES")
    too_big = [size for size in grid.sizes if size > n]
    if too_big:
        held = len(pool.heldout) if pool.heldout is not None else pool.n_heldout
        raise ValueError(
            f"SIZES asks for {', '.join(f'{s:,}' for s in sorted(too_big))} training pairs, but "
            f"{grid.recipe.data} offers {n:,} (after holding out {held:,} and dropping unusable "
            f"pairs); set SIZES to sizes of at most {n:,}, or SIZES=None for the profile's "
            "sizes (the paper profile on Skywork: the whole set, as the authors trained)"
        )
    return grid, pool


def pool_for_grid(grid: Ablation, pool: PairPool | None = None) -> PairPool:
    """The pair pool of a grid: ``pool`` if given (checked against the grid's recipe), else read now."""
    from .training import pool_for

    return pool_for(replace(grid.recipe, split_seed=grid.heldout_seed), pool)


# The authors' training, as their fork runs it (brchristian/Generalizable-Reward-Model @ 5b06789:
# scripts/unified/step{64,32,16,8}/*.sbatch, scripts/skywork/train_bt_*.sbatch,
# reward_models/run_reward_models_train.py and load_datasets.py; transformers 4.43.4, TRL 0.8.5, peft 0.10.0).
AUTHORS_RECIPE: dict[str, str] = {
    "LoRA": "r=32, alpha=64, dropout 0.05 on q/k/v/o",
    "dropout": "LoRA's 0.05 applies (no dropout is disabled)",
    "optimiser": "adamw_hf (transformers 4's AdamW), lr 1e-5, cosine, 3% warm-up",
    "gradient clipping": "max_grad_norm 5.0",
    "batch": "4 pairs x 4 accumulated = 16 a step, 2 epochs",
    "over-long pairs": "truncated at 1024 tokens (encode_plus(truncation=True))",
    "training pairs": "Unified-Feedback 'all': every 64th/32nd/16th/8th pair after dropping ties; Skywork: all",
    "held out": "Unified-Feedback's val split (ties dropped); Skywork: 0.5% of train",
    "summarisation pairs": "'Generate one-sentence summary for the following post: ' before the post",
    "tokenisation": "chat rendered to text, then tokenised again (two BOS); no date passed",
    "precision": "bf16, gradient checkpointing",
}


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _rate(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def recipe_comparison(grid: Ablation) -> pd.DataFrame:
    """The grid's recipe beside the authors' (:data:`AUTHORS_RECIPE`), setting by setting, with
    whether they agree: the table chapter 05 shows."""
    r = grid.recipe
    lora = (
        f"r={r.lora_r}, alpha={r.lora_alpha}, dropout {r.lora_dropout:g} on {'/'.join(t[0] for t in r.target_modules)}"
    )
    if r.lora_top_layers is not None:
        lora += f" (top {r.lora_top_layers} layers)"
    optimiser = {
        None: "the Trainer's AdamW",
        "adamw_torch": "torch AdamW",
        "adamw_hf": "adamw_hf (transformers 4's AdamW)",
    }
    rate = f"lr {_rate(r.learning_rate)}" + (
        f" (score head {_rate(r.score_learning_rate)})" if r.score_learning_rate else ""
    )
    if r.selection == "every-kth":
        pairs = (
            f"every {'/'.join(map(_ordinal, grid.strides))} pair after dropping ties"
            if grid.strides
            else "every k-th pair, k set by each size"
        )
    else:
        pairs = f"a seeded random subsample of {r.data}"
    held = {
        "authors": "the dataset's own held-out pairs (as the authors)",
        "carve": f"{r.n_heldout} pairs carved out of train",
    }
    ours = {
        "LoRA": lora,
        "dropout": "LoRA's dropout applies"
        if not r.disable_dropout
        else "every dropout disabled (TRL's disable_dropout)",
        "optimiser": f"{optimiser[r.optimizer]}, {rate}, {r.lr_scheduler}, {r.warmup_ratio:.0%} warm-up",
        "gradient clipping": f"max_grad_norm {r.max_grad_norm:g}",
        "batch": f"{r.per_device_batch} pairs x {r.grad_accum} accumulated = {r.effective_batch} a step, "
        f"{r.epochs:g} epoch{'s' if r.epochs != 1 else ''}"
        + ("; each batch run in groups of similar length (the same loss, less padding)" if r.split_by_length else ""),
        "over-long pairs": f"{'truncated' if r.over_length == 'truncate' else 'dropped'} at {r.max_length} tokens",
        "training pairs": pairs,
        "held out": held[r.heldout],
        "summarisation pairs": "the authors' prefix" if r.summarize_prefix else "no prefix",
        "tokenisation": (
            ("rendered, then tokenised again (two BOS)" if r.tokenisation == "authors" else "one BOS")
            + ("; no date passed" if r.chat_date == "unset" else f"; date {r.chat_date}")
        ),
        "precision": f"{r.dtype}" + (", gradient checkpointing" if r.gradient_checkpointing else ""),
    }
    same = {
        "LoRA": (r.lora_r, r.lora_alpha, r.lora_dropout, r.lora_top_layers) == (32, 64, 0.05, None),
        "dropout": not r.disable_dropout,
        "optimiser": (r.optimizer, r.learning_rate, r.score_learning_rate, r.lr_scheduler, r.warmup_ratio)
        == ("adamw_hf", 1e-5, None, "cosine", 0.03),
        "gradient clipping": r.max_grad_norm == 5.0,
        "batch": (r.per_device_batch, r.grad_accum, r.epochs) == (4, 4, 2.0),
        "over-long pairs": (r.over_length, r.max_length) == ("truncate", 1024),
        "training pairs": r.selection == "every-kth" and r.data in HUB_PREFERENCES,
        "held out": r.heldout == "authors" and r.data in HUB_PREFERENCES,
        "summarisation pairs": r.summarize_prefix,
        "tokenisation": (r.tokenisation, r.chat_date) == ("authors", "unset"),
        "precision": r.dtype == "bfloat16" and r.gradient_checkpointing,
    }
    return pd.DataFrame(
        [{"setting": k, "authors": v, "this grid": ours[k], "same": same[k]} for k, v in AUTHORS_RECIPE.items()]
    )


def run_name(base: str, size: int, seed: int) -> str:
    return f"{base.replace('/', '--')}-n{size}-s{seed}"


def scored_steps(n_steps: int, every: int) -> list[int]:
    """Step 0, every ``every`` steps, and the last step."""
    return sorted({0, n_steps, *range(every, n_steps + 1, every)})


# --- scoring checkpoints during training ----------------------------------------------------------


def checkpoint_scorer():
    """The trainer callback class that scores checkpoints (defined on first use: it subclasses
    transformers' ``TrainerCallback``, which this module does not import at its top)."""
    from transformers import TrainerCallback

    class CheckpointScorer(TrainerCallback):
        """Scores the model being trained on fixed candidate chats at chosen optimiser steps.

        Each scored step is written as ``<folder>/step-<NNNNN>.parquet`` (columns of
        ``candidates`` plus ``step`` and ``score``); a step whose file exists is skipped, so a
        resumed run scores only what is missing. ``trunk`` (:class:`rmbias.scoring.FrozenTrunk`):
        what the base's frozen layers make of the candidates, shared by the runs of one base.
        """

        def __init__(
            self,
            folder: Path,
            candidates: pd.DataFrame,
            sequences: Sequence[Sequence[int]],
            steps: Sequence[int],
            batch_size: int,
            step0: Path | None = None,
            trunk: scoring.FrozenTrunk | None = None,
        ):
            self.folder, self.candidates, self.sequences = Path(folder), candidates, sequences
            self.steps, self.batch_size, self.step0, self.trunk = set(steps), batch_size, step0, trunk
            self.folder.mkdir(parents=True, exist_ok=True)

        def score_now(self, model, step: int) -> None:
            path = self.folder / f"step-{step:05d}.parquet"
            if path.exists():
                return
            if step == 0 and self.step0 is not None and self.step0.is_file():
                # another data size of this base and seed scored it
                atomic_write(path, lambda tmp: shutil.copyfile(self.step0, tmp))
                return
            was_training = model.training
            model.eval()
            result = scoring.score(model, self.sequences, route="cached", batch_size=self.batch_size, trunk=self.trunk)
            model.train(was_training)
            table = self.candidates.assign(step=step, score=result.values.numpy())
            atomic_write(path, table.to_parquet)
            if step == 0 and self.step0 is not None:
                self.step0.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(self.step0, lambda tmp: shutil.copyfile(path, tmp))

        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if 0 in self.steps and state.global_step == 0:
                self.score_now(model, 0)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in self.steps:
                self.score_now(model, state.global_step)

        def on_train_end(self, args, state, control, model=None, **kwargs):
            self.score_now(model, state.global_step)  # the last step, whatever the plan said

    return CheckpointScorer


def train_run(
    grid: Ablation,
    base: str,
    size: int,
    seed: int,
    candidates: pd.DataFrame,
    folder: Path,
    verbose: bool = False,
    pool: PairPool | None = None,
) -> Path:
    """One run of the grid into ``folder``; resumes an interrupted run; returns the folder.

    ``pool`` is the grid's preference data, read once (:func:`prepare`); without it the data are
    read for this run. Writes ``model/`` (the LoRA adapter and score head, with ``training.json``),
    ``scores/`` (one table per scored step) and, last, ``complete.json``. The run holds the folder's
    lock (:func:`rmbias.data.build_lock`): chapter 02 asks for the runs that are its reward models
    (:func:`demo_reward_model`) while chapter 05 may be running the same grid beside it, and the
    second to ask waits for the first and then finds the run complete.
    """
    folder = Path(folder)
    if (folder / "complete.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(folder):
        if (folder / "complete.json").is_file():  # finished by another process while this one waited
            return folder
        return _train_run(grid, base, size, seed, candidates, folder, verbose, pool)


def _train_run(
    grid: Ablation,
    base: str,
    size: int,
    seed: int,
    candidates: pd.DataFrame,
    folder: Path,
    verbose: bool,
    pool: PairPool | None,
) -> Path:
    config = grid.config(size, seed)
    train, heldout, info = prepare_pairs(config, sample_seed=seed, pool=pool)
    keep_heldout = grid.heldout_for == "all" or (grid.heldout_for == "largest" and size == max(grid.sizes))

    tokenizer = models.load_tokenizer(base)
    text = prompts.select([grid.prompt])["text"].iloc[0]
    sequences = scoring.vocab_sequences(tokenizer, text, candidates[f"id_{base}"].tolist(), config.chat)
    steps = grid.steps_for(size, optimizer_steps(config, len(train)))
    # Step 0 (the untrained model) depends on the base and the seed only: scored once for all data sizes.
    step0 = folder.parent / "step0" / f"{run_name(base, 0, seed)}.parquet"
    callback = checkpoint_scorer()(
        folder / "scores",
        candidates[["token", "word", "category"]],
        sequences,
        steps,
        grid.batch_size,
        step0,
        trunk_for(base, [list(s) for s in sequences]),
    )
    train_reward_model(
        base,
        train,
        config,
        folder / "model",
        heldout_pairs=heldout if keep_heldout else None,
        data_info=info,
        merge=False,
        verbose=verbose,
        callbacks=[callback],
        resume=True,
        heldout_trunk=trunk_for(base, {"heldout": list(heldout), "chat": config.chat.as_dict()})
        if keep_heldout
        else None,
    )
    shutil.rmtree(folder / "model" / "checkpoints", ignore_errors=True)
    trunk = callback.trunk
    replay = None if trunk is None else {"below_layer": trunk.first, "verified": trunk.verified, "off": trunk.broken}
    record = {"base": base, "size": size, "seed": seed, "steps": steps, "grid": grid.as_dict(), "trunk": replay}
    write_json(folder / "complete.json", record)
    return folder


# The frozen trunks of the bases whose runs this process scores (rmbias.scoring.FrozenTrunk), by base
# and what is scored: every run of a base (its data sizes and seeds) scores the same candidates, and
# the runs with held-out accuracy the same held-out pairs, through the same frozen layers. The last
# TRUNKS_KEPT are kept (the demo grid's two bases, candidates and held-out pairs: about 150 MB).
_TRUNKS: dict[str, scoring.FrozenTrunk] = {}
TRUNKS_KEPT = 4


def trunk_for(base: str, scored: Any) -> scoring.FrozenTrunk:
    """The trunk shared by the runs of ``base`` that score the same ``scored`` (the candidates' token
    ids, or the held-out pairs and chat format: anything JSON can write) in this process."""
    key = fingerprint({"base": registry.spec(base).fingerprint(), "scored": scored})
    if key not in _TRUNKS:
        _TRUNKS[key] = scoring.FrozenTrunk()
        while len(_TRUNKS) > TRUNKS_KEPT:
            _TRUNKS.pop(next(iter(_TRUNKS)))
    return _TRUNKS[key]


def grid_directory(grid: Ablation) -> Path:
    """Where the runs of ``grid`` are kept: ``<cache>/ablation/<fingerprint>`` (reused by later builds)."""
    return cache_dir() / "ablation" / grid.fingerprint()


def run_grid(
    grid: Ablation,
    directory: Path,
    candidates: pd.DataFrame | None = None,
    verbose: bool = False,
    progress: bool = True,
    pool: PairPool | None = None,
) -> list[Path]:
    """Every run of ``grid`` under ``directory`` (resumable). The preference data are read once for
    the whole grid (``pool``, from :func:`prepare`, or read here), and the candidates are the grid's
    (:func:`grid_candidates`) unless given. Returns the run folders."""
    directory = Path(directory)
    grid, pool = prepare(grid, pool)
    if candidates is None:
        candidates = grid_candidates(grid)
    folders = []
    for i, run in enumerate(grid.runs()):
        folder = directory / run_name(**run)
        if progress and not (folder / "complete.json").is_file():
            progress_note(f"run {i + 1}/{len(grid.runs())}: {run_name(**run)}")
        folders.append(train_run(grid, run["base"], run["size"], run["seed"], candidates, folder, verbose, pool))
    return folders


# --- the demo reward models: chapter 02's, from chapter 05's grid -------------------------------


def served_run(grid: Ablation) -> tuple[int, int]:
    """The (size, seed) of the grid's runs that serve as the demo reward models: the largest data
    size, the first seed."""
    if not grid.sizes:
        raise ValueError("the grid's sizes come from its data: call ablation.prepare(grid) first")
    return max(grid.sizes), grid.seeds[0]


def reward_model_path(base_key: str, grid: Ablation | None = None) -> Path:
    """Where the demo reward model of ``base_key`` (:func:`demo_reward_model`) is kept: under
    ``<cache>/reward_models/``, named by the base, the grid's fingerprint and the run."""
    grid = grid or Ablation.demo()
    size, seed = served_run(grid)
    return cache_dir() / "reward_models" / f"{run_name(base_key, size, seed)}-{grid.fingerprint()}"


def demo_reward_model(base_key: str, grid: Ablation | None = None, verbose: bool = False) -> Path:
    """The folder of the demo reward model of ``base_key`` (registry source ``trained``), trained on
    first use and cached: the run of chapter 05's demo grid (``grid``, default
    :meth:`Ablation.demo`) from that base on its largest data size with its first seed, with its
    LoRA merged into the weights (:func:`merge_run`).

    Chapter 02 scores with these models and chapter 05 trains the grid they belong to: one trained
    model serves both chapters (the run is trained once, by whichever chapter asks first, in the
    grid's own folder, :func:`grid_directory`). The merged copy is built atomically
    (:func:`rmbias.data.build_once`) and loads with
    ``AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)``.
    """
    grid = grid or Ablation.demo()
    if base_key not in grid.bases:
        raise ValueError(
            f"{base_key!r} is not a base of the demo grid ({', '.join(grid.bases)}): its reward model "
            "is one of the grid's runs"
        )
    size, seed = served_run(grid)

    def build(folder: Path) -> dict[str, Any]:
        run = train_run(
            grid,
            base_key,
            size,
            seed,
            grid_candidates(grid),
            grid_directory(grid) / run_name(base_key, size, seed),
            verbose,
        )
        merge_run(base_key, run / "model", folder)
        return {"base_key": base_key, "run": run.name, "grid": grid.fingerprint(), "size": size, "seed": seed}

    return build_once(reward_model_path(base_key, grid), build)


def merge_run(base_key: str, adapter: Path, folder: Path) -> Path:
    """A grid run's saved model (``adapter``: its LoRA and trained score head, as peft saves them)
    merged into a plain ``*ForSequenceClassification`` checkpoint in ``folder`` (created), with the
    run's tokenizer (its safe pad token) and its ``training.json``, marked as merged. The merged
    model gives the scores the run's model gave during training."""
    from peft import PeftModel

    record = json.loads((Path(adapter) / "training.json").read_text())
    tokenizer = models.cached_tokenizer(Path(adapter))
    model, _ = models.load_reward_model(
        base_key, dtype=record["config"]["dtype"], head_seed=record["config"]["seed"], tokenizer=tokenizer
    )
    model.config.pad_token_id = tokenizer.pad_token_id
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload().eval()
    folder.mkdir(parents=True)
    merged.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    record.update(merged=True, merged_from=f"{Path(adapter).parent.name}/{Path(adapter).name}")
    record["model_class"] = type(merged).__name__
    write_json(folder / "training.json", record)
    return folder


# How rmbias.models finds the folder of a `trained` registry model (it does not import this module).
registry.register_builder("trained", lambda spec_: demo_reward_model(spec_.base))


# --- reading the runs ----------------------------------------------------------------------------


def read_scores(folder: Path) -> pd.DataFrame:
    """All scored steps of one run folder, with ``base``, ``size`` and ``seed`` from its record."""
    folder = Path(folder)
    record = json.loads((folder / "complete.json").read_text())
    paths = sorted((folder / "scores").glob("step-*.parquet"))
    if not paths:
        raise FileNotFoundError(f"{folder} has no scored steps")
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    return table.assign(base=record["base"], size=record["size"], seed=record["seed"])


def rank_table(scores: pd.DataFrame, family: dict[str, str] | None = None) -> pd.DataFrame:
    """Median rank per category at every scored step: the tidy table behind Figure 4.

    Candidates are ranked by reward within each (base, size, seed, step), 1 = best, over both
    categories together (as the authors ranked their 1,365 token variants); returns ``model``,
    ``family``, ``data_size``, ``seed``, ``step``, ``category``, ``median_rank``, ``n_words``.
    """
    table = scores.copy()
    table["rank"] = ranks.within_ranks(table, ["base", "size", "seed", "step"])
    medians = ranks.median_ranks(table, ["base", "size", "seed", "step", "category"])
    medians = medians.rename(columns={"base": "model", "size": "data_size"})
    family = family or {}
    medians.insert(1, "family", medians["model"].map(lambda m: family.get(m) or registry.family_of(m)))
    return medians.sort_values(["model", "data_size", "seed", "step", "category"], ignore_index=True)


def final_steps(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of each run's last scored step (``model``, ``data_size``, ``seed``)."""
    last = table.groupby(["model", "data_size", "seed"])["step"].transform("max")
    return table[table["step"] == last].reset_index(drop=True)


def rank_changes(
    scores: pd.DataFrame, first: int | None = None, keys: Sequence[str] = ("base", "size", "seed")
) -> pd.DataFrame:
    """How far each dictionary word moved between two checkpoints, per run (Figure 5).

    As the authors did: the token variants of a word are averaged (mean reward), words are ranked
    at each step, and ``rank_change = rank(first) - rank(last)`` (positive: preferred more by the
    end). ``first`` is the first scored step after step 0 unless given (the paper's first
    checkpoint is after 1,000 steps, not the untrained model). A run is one value of ``keys``.
    Returns the ``keys``, ``word``, ``category``, ``first``, ``last``, ``rank_first``,
    ``rank_last``, ``rank_change``.
    """
    keys = list(keys)
    words = scores.groupby([*keys, "step", "word", "category"], as_index=False)["score"].mean()
    words["rank"] = ranks.within_ranks(words, [*keys, "step"])
    out = []
    for key, run in words.groupby(keys):
        steps = sorted(run["step"].unique())
        start = first if first is not None else next((s for s in steps if s > 0), steps[0])
        a = run[run["step"] == start].set_index("word")
        b = run[run["step"] == steps[-1]].set_index("word")
        moved = pd.DataFrame({"category": a["category"], "rank_first": a["rank"], "rank_last": b["rank"]})
        moved["rank_change"] = moved["rank_first"] - moved["rank_last"]
        out.append(moved.reset_index().assign(**dict(zip(keys, key)), first=start, last=steps[-1]))
    cols = [*keys, "word", "category", "first", "last", "rank_first", "rank_last", "rank_change"]
    return pd.concat(out, ignore_index=True)[cols]


# --- the authors' released checkpoint scores (Figure 5 and its Qwen version) -----------------------

# base family -> the authors' file of rewards for every vocabulary token on greatest_ever_one, one
# ``step-N`` column per checkpoint (registered in rmbias.data.BLOB_FILES; not in the offline mirror).
RELEASED_CHECKPOINTS = {
    family: f"data/reward_model_training/greatest_ever_one_across_checkpoints_{family}.parquet"
    for family in ("gemma", "llama", "qwen")
}
STEP_COLUMN = re.compile(r"step-(\d+)$")


def checkpoint_scores(wide: pd.DataFrame, base: str, dictionary: pd.DataFrame | None = None) -> pd.DataFrame:
    """The authors' checkpoint table (``token_decoded`` and ``step-N`` columns) as tidy scores.

    Each token is put in the authors' normal form (:func:`normalise`), tokens that normalise to
    nothing are dropped, and the rest are joined to the Big Two nouns (an inner join, as their
    figure script does). Returns one row per (token variant, step): ``base``, ``step``, ``token``,
    ``word``, ``category``, ``score``, the layout :func:`rank_changes` reads.
    """
    dictionary = corpora.big2_nouns() if dictionary is None else dictionary
    steps = {name: int(m.group(1)) for name in wide.columns if (m := STEP_COLUMN.match(str(name)))}
    if "token_decoded" not in wide.columns or not steps:
        raise DataError(
            f"a checkpoint table needs token_decoded and step-N columns; it has {', '.join(map(str, wide.columns))}"
        )
    table = wide[["token_decoded", *steps]].rename(columns={"token_decoded": "token"})
    table["word"] = table["token"].astype(str).map(normalise)
    table = table[table["word"] != ""].merge(dictionary[["word", "category"]].drop_duplicates("word"), on="word")
    long = table.melt(
        id_vars=["token", "word", "category"], value_vars=list(steps), var_name="column", value_name="score"
    )
    long.insert(0, "step", long.pop("column").map(steps))
    long.insert(0, "base", base)
    return long.sort_values(["step", "word", "token"], ignore_index=True)


def released_checkpoint_moves(family: str, dictionary: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict]:
    """The paper's Figure 5 from the authors' own checkpoint file for one base family: each Big
    Two noun's rank change from their first checkpoint to their last (:func:`rank_changes` with
    ``first`` the earliest step in the file, as their script takes it), and the file's provenance
    with its steps. Raises :class:`rmbias.data.DataError` when the file cannot be had."""
    if family not in RELEASED_CHECKPOINTS:
        raise ValueError(f"no released checkpoints for {family!r}; there are {', '.join(RELEASED_CHECKPOINTS)}")
    path = fetch(RELEASED_CHECKPOINTS[family])
    scores = checkpoint_scores(pd.read_parquet(path), family, dictionary)
    steps = sorted(scores["step"].unique().tolist())
    moves = rank_changes(scores, first=steps[0], keys=["base"])
    return moves, {**provenance(RELEASED_CHECKPOINTS[family]), "steps": steps, "words": int(moves["word"].nunique())}


# --- the authors' released rank tables ------------------------------------------------------------

# The authors' manifest (figures/generate_figure_4_and_A5.R): file, data size in thousands of pairs
# as plotted, data source and method.
RELEASED_RANK_TABLES = {
    "rank_results_uf_13.csv": (13, "Unified-Feedback", "BT"),
    "rank_results_uf_27.csv": (27, "Unified-Feedback", "BT"),
    "rank_results_uf_54.csv": (53, "Unified-Feedback", "BT"),
    "rank_results_uf_100.csv": (106, "Unified-Feedback", "BT"),
    "rank_results_sky_80k.csv": (77, "Skywork", "BT"),
    "rank_results_grm_80k.csv": (550, "Unified-Feedback + Skywork", "GRM"),
}


def released_rank_tables() -> tuple[pd.DataFrame, dict[str, Any]]:
    """The authors' released ablation rank tables as one tidy table, and what is odd about them.

    Returns ``file``, ``data_size`` (thousands of pairs, as the authors' manifest plots it),
    ``data_source``, ``method``, ``model_id``, ``family`` (from the model id: the files' own
    ``base_model`` column is missing for Qwen), ``category``, ``checkpoint``, ``median_rank``
    (the files call it ``sum_value``; it is a median), one row per distinct (file, model,
    category, checkpoint). The report counts exact duplicate rows, byte-identical files and, per
    file, the final checkpoint (optimiser steps of 16 pairs each give the pairs actually seen).
    """
    parts, report = [], {"files": {}}
    digests: dict[str, list[str]] = {}
    for name, (size, source, method) in RELEASED_RANK_TABLES.items():
        path = fetch(f"reward_model_training/{name}")
        digests.setdefault(hashlib.sha256(path.read_bytes()).hexdigest(), []).append(name)
        raw = pd.read_csv(path)
        raw = raw.drop(columns=[c for c in raw.columns if c in ("", "X") or c.startswith("Unnamed")])
        table = raw.rename(columns={"Category": "category", "sum_value": "median_rank"})
        n_rows = len(table)
        table = table.drop_duplicates(subset=["model_id", "category", "checkpoint", "median_rank"])
        conflicting = table.duplicated(subset=["model_id", "category", "checkpoint"]).sum()
        if method == "GRM":
            table["checkpoint"] = 1  # one off-the-shelf model per base, no checkpoints
        report["files"][name] = {
            "rows": n_rows,
            "distinct_rows": len(table),
            "duplicate_rows": n_rows - len(table),
            "conflicting_duplicates": int(conflicting),
            "models": sorted(table["model_id"].unique().tolist()),
            "missing_base_model": int(raw["base_model"].isna().sum()) if "base_model" in raw else None,
            "final_checkpoint": int(table["checkpoint"].max()),
            "data_size_k": size,
        }
        table = table.assign(file=name, data_size=size, data_source=source, method=method)
        table["family"] = table["model_id"].map(registry.family_of)
        parts.append(
            table[
                [
                    "file",
                    "data_size",
                    "data_source",
                    "method",
                    "model_id",
                    "family",
                    "category",
                    "checkpoint",
                    "median_rank",
                ]
            ]
        )
    report["identical_files"] = [names for names in digests.values() if len(names) > 1]
    return pd.concat(parts, ignore_index=True), report
