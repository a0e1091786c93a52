"""Bradley-Terry reward-model training: one function, one recipe dataclass.

The paper (section 6) trains reward models from two base models with identical data and recipe
and compares what they learned. :func:`train_reward_model` does that for any registered base
model: TRL's ``RewardTrainer`` minimises the Bradley-Terry loss ``-log sigmoid(r_chosen -
r_rejected)`` over preference pairs, with LoRA adapters (peft) on the attention projections and
a fully trained score head. The recipe lives in :class:`TrainConfig`; :meth:`TrainConfig.paper`
is the paper's as the authors' scripts ran it (their optimiser, transformers 4's AdamW, is
:class:`LegacyAdamW`), :meth:`TrainConfig.demo` is a miniature that trains on a 2-core CPU in minutes.
The saved folder is a plain merged ``*ForSequenceClassification`` checkpoint that
``AutoModelForSequenceClassification.from_pretrained(folder, num_labels=1)`` loads directly, with
its tokenizer, chat template and a ``training.json`` provenance record beside it.

Two traps are handled here:

- **Pad equal to end-of-turn.** transformers' sequence-classification heads (and so the Bradley-
  Terry loss during training) read the score at the last token that is not ``pad_token_id``.
  SmolLM2's pad token is ``<|im_end|>``, which ends every turn of its chats. :func:`set_safe_pad_token`
  gives the tokenizer and the model config a pad token that never occurs in a rendered chat (for
  SmolLM2 ``<|endoftext|>``), so the pooled position is the last real token, as in
  :mod:`rmbias.scoring`; the choice is saved with the model.
- **Double BOS.** By default chats are tokenised by the chat template itself (:func:`encode_chat`, the
  same call TRL makes) and :func:`check_chat_ids` rejects a doubled BOS. The paper recipe takes the
  authors' route instead (``tokenisation="authors"``: rendered to text and tokenised again, two BOS
  tokens, as their models were trained), and the check then asks for exactly that.

The demo profile's reward models (chapter 02's) are runs of chapter 05's grid, trained by this
function and cached by :func:`rmbias.ablation.demo_reward_model`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from . import models, placement, progress, registry
from .artifacts import library_versions, write_json
from .keys import fingerprint
from .preferences import (
    HELDOUT_RULES,
    HH_HARMLESS_TEST,
    SELECTIONS,
    Pair,
    PairPool,
    every_kth,
    largest_stride,
    split_pairs,
    subsample,
)
from .scoring import (
    DEFAULT_CHAT,
    FIXED_DATE,
    TOKENISATIONS,
    UNSET_DATE,
    ChatFormat,
    FrozenTrunk,
    encode_chat,
    render_chat,
    score,
)

# Bump when the training code changes in a way that changes the trained weights: the cache folders
# of trained runs (the ablation grids, and the demo reward models among their runs) are named by
# fingerprints that include it.
RECIPE_VERSION = 1


OVER_LENGTH = ("drop", "truncate")
OPTIMIZERS = (None, "adamw_torch", "adamw_hf")


@dataclass(frozen=True)
class TrainConfig:
    """A reward-model training recipe: LoRA, optimiser, data and run settings.

    Batches count preference pairs (each pair is two sequences, chosen and rejected). The
    learning-rate schedule's warm-up is a fraction of the total optimiser steps. The fields after
    ``logging_steps`` were added for the paper recipe; at their defaults they leave the demo recipe,
    and the keys its cached models are stored under, as they were (:meth:`key_dict`).
    """

    # LoRA (peft) on the attention projections; the score head is trained in full.
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    lora_top_layers: int | None = None  # LoRA only on the top N decoder layers (None: all layers)
    # Optimiser and schedule (AdamW, as TRL's default)
    learning_rate: float = 1e-5
    score_learning_rate: float | None = None  # the score head's own rate (None: learning_rate)
    score_init_std: float | None = None  # re-draw the new score head N(0, std); 0: zeros (None: model default)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    per_device_batch: int = 4  # pairs per forward/backward pass
    grad_accum: int = 4  # passes per optimiser step
    epochs: float = 2.0
    max_steps: int | None = None  # optimiser steps; overrides epochs when set
    # Data
    data: str = HH_HARMLESS_TEST  # a registered preference file (rmbias.data) or a hub dataset (rmbias.preferences)
    n_train: int | None = None  # pairs drawn from the train split (None: all of it)
    n_heldout: int = 400  # pairs held out for pairwise accuracy (heldout="carve")
    split_seed: int = 0  # seeds the train / held-out split and the subsample
    last_turns: int | None = None  # keep only the last N exchanges of each dialogue (None: all)
    max_chars: int | None = None  # cut every message to N characters (None: uncut)
    max_length: int = 1024  # tokens; longer training pairs are dropped or truncated (over_length)
    # Run
    seed: int = 0  # score-head initialisation, LoRA initialisation, batch order
    dtype: str = "bfloat16"  # weights' dtype during training and in the saved model
    gradient_checkpointing: bool = False
    save_steps: int | None = None  # keep a LoRA checkpoint every N steps (None: none)
    logging_steps: int = 10
    # --- added for the paper recipe (the authors' scripts); defaults are the book's earlier behaviour
    disable_dropout: bool = True  # TRL zeroes every dropout, LoRA's included (False: lora_dropout applies)
    max_grad_norm: float = 1.0  # gradient clipping (the Trainer's default; the authors' 5.0)
    optimizer: str | None = None  # None: the Trainer's default AdamW; "adamw_hf": transformers 4's AdamW
    over_length: str = "drop"  # pairs longer than max_length: "drop" (as TRL does) or "truncate" (the authors)
    selection: str = "shuffle"  # training pairs: a seeded "shuffle", or "every-kth" row (the authors)
    stride: int | None = None  # every-kth: the stride (None: the largest that still gives n_train pairs)
    heldout: str = "carve"  # "carve" n_heldout pairs out of train, or the dataset's "authors" held-out pairs
    summarize_prefix: bool = False  # the authors' prefix for Unified-Feedback's summarisation pairs
    keep_irregular: bool = False  # keep hub pairs that fail the book's checks, as the authors trained on them
    tokenisation: str = "single-bos"  # rmbias.scoring.ChatFormat: "single-bos" or the authors' two BOS
    chat_date: str = FIXED_DATE  # the date templates print; "unset" passes none, as the authors did
    # --- added for the CPU recipes: the same loss, computed without most of the padding
    split_by_length: bool = False  # run each batch's sequences in groups of similar length (length_groups)

    def __post_init__(self) -> None:
        checks = {
            "over_length": (self.over_length, OVER_LENGTH),
            "selection": (self.selection, SELECTIONS),
            "heldout": (self.heldout, HELDOUT_RULES),
            "tokenisation": (self.tokenisation, TOKENISATIONS),
            "optimizer": (self.optimizer, OPTIMIZERS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"TrainConfig.{name}={value!r} is not one of {', '.join(map(str, allowed))}")
        ChatFormat(self.tokenisation, self.chat_date)  # checks the date

    @classmethod
    def paper(cls, **changes: Any) -> TrainConfig:
        """The paper's recipe as the authors' scripts ran it (Generalizable-Reward-Model @ 5b06789,
        ``scripts/unified/step*/*.sbatch`` and ``reward_models/run_reward_models_train.py``): LoRA r=32,
        alpha=64, dropout 0.05 on q/k/v/o; lr 1e-5 cosine, 3% warm-up, transformers 4's AdamW, gradient
        norm clipped at 5.0; effective batch 16, 2 epochs; pairs truncated at 1024 tokens; every k-th
        untied pair; the dataset's own held-out pairs; the summarise prefix; chats rendered to text and
        tokenised again (two BOS) with no date; bf16, gradient checkpointing. For a GPU."""
        recipe = cls(
            lora_r=32,
            lora_alpha=64,
            lora_dropout=0.05,
            learning_rate=1e-5,
            lr_scheduler="cosine",
            warmup_ratio=0.03,
            per_device_batch=4,
            grad_accum=4,
            epochs=2.0,
            max_length=1024,
            dtype="bfloat16",
            gradient_checkpointing=True,
            n_heldout=400,
            disable_dropout=False,
            max_grad_norm=5.0,
            optimizer="adamw_hf",
            over_length="truncate",
            selection="every-kth",
            heldout="authors",
            summarize_prefix=True,
            keep_irregular=True,
            tokenisation="authors",
            chat_date=UNSET_DATE,
        )
        return replace(recipe, **changes)

    @classmethod
    def demo(cls, **changes: Any) -> TrainConfig:
        """The miniature recipe for a 2-core CPU, on which chapter 05's demo grid is built
        (:meth:`rmbias.ablation.Ablation.demo` halves its batch and cuts messages at 200 characters;
        chapter 02's two reward models are runs of that grid). As it stands here, both demo models
        trained and were evaluated, cold, in about nine minutes (534 s in a cold CI build on 2 AMD
        EPYC cores, GGUF conversion and held-out evaluation included; training alone 194 s for
        SmolLM2 and 160 s for Gemma-3).

        - Short sequences: the last exchange of each dialogue, messages cut at 400 characters
          (about 50-130 tokens with the chat template); forward passes dominate the cost.
        - 384 training pairs, one epoch, 8 pairs a step: 48 optimiser steps.
        - LoRA r=8 (alpha 16) on q/k/v/o of the top 4 decoder layers only, so the backward pass
          stops four layers down (about 15% of a forward pass, against 100% for all layers).
        - Learning rates far above the paper's 1e-5, which assumes thousands of steps: 1e-3 for
          LoRA and 5e-3 for the newly initialised score head, whose random start otherwise
          dominates after 48 steps (at 2e-4 or 1e-3 for everything nothing was learned).
        - float32 (this CPU has no fast bf16); 256 held-out pairs for pairwise accuracy.
        - Each batch's 16 sequences run in groups of similar length (``split_by_length``,
          :func:`length_groups`): the loss and gradients are the padded batch's, but about a third
          fewer token positions are computed (the chats are 30 to 280 tokens long).

        Chosen on a development split carved from the training pairs, never the held-out ones.
        """
        recipe = cls(
            lora_r=8,
            lora_alpha=16,
            lora_top_layers=4,
            learning_rate=1e-3,
            score_learning_rate=5e-3,
            lr_scheduler="cosine",
            warmup_ratio=0.03,
            per_device_batch=8,
            grad_accum=1,
            epochs=1.0,
            n_train=384,
            n_heldout=256,
            last_turns=1,
            max_chars=400,
            max_length=256,
            dtype="float32",
            gradient_checkpointing=False,
            logging_steps=4,
            split_by_length=True,
        )
        return replace(recipe, **changes)

    @property
    def effective_batch(self) -> int:
        return self.per_device_batch * self.grad_accum

    @property
    def chat(self) -> ChatFormat:
        """How chats become token ids in training and in scoring the trained model."""
        return ChatFormat(self.tokenisation, self.chat_date)

    def key_dict(self) -> dict[str, Any]:
        """The recipe as cache keys see it: every field, except the fields added for the paper recipe
        while they hold their defaults (so results cached before they existed keep their keys)."""
        return key_dict(self, PAPER_FIELDS)

    def fingerprint(self) -> str:
        return fingerprint(self.key_dict())


PAPER_FIELDS = (
    "disable_dropout",
    "max_grad_norm",
    "optimizer",
    "over_length",
    "selection",
    "stride",
    "heldout",
    "summarize_prefix",
    "keep_irregular",
    "tokenisation",
    "chat_date",
    "split_by_length",
)


def key_dict(obj: Any, late_fields: Sequence[str]) -> dict[str, Any]:
    """``asdict(obj)`` without the ``late_fields`` that hold their default value: fields added to a
    dataclass after results were cached under its fingerprint then leave the old keys unchanged."""
    from dataclasses import MISSING, fields

    defaults = {f.name: f.default for f in fields(obj) if f.default is not MISSING}
    out = asdict(obj)
    for name in late_fields:
        if name in out and name in defaults and out[name] == defaults[name]:
            del out[name]
    return out


# --- chats, pad token, BOS ------------------------------------------------------------------------


def check_chat_ids(
    tokenizer, messages: Sequence[dict[str, str]], ids: Sequence[int], chat: ChatFormat = DEFAULT_CHAT
) -> None:
    """Raise ValueError unless ``ids`` holds as many BOS tokens as ``chat``'s route writes.

    ``single-bos``: as many as the template writes (one, for templates that open with
    ``bos_token``; SmolLM2's BOS is its turn-start token ``<|im_start|>``, written once per turn),
    and never two at the start. ``authors``: the template's, plus the one the tokenizer adds when it
    tokenises the rendered text again (two at the start for Gemma and Llama 3), as the authors'
    models were trained."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return
    ids = list(ids)
    expected = render_chat(tokenizer, messages, chat).count(tokenizer.bos_token)
    if chat.tokenisation == "authors":
        expected += list(tokenizer("")["input_ids"]).count(bos)
    elif len(ids) > 1 and ids[0] == bos and ids[1] == bos:
        raise ValueError("the chat starts with two BOS tokens")
    if ids.count(bos) != expected:
        raise ValueError(
            f"the chat holds {ids.count(bos)} BOS tokens but the {chat.tokenisation!r} route writes {expected}"
        )


def choose_pad_token(tokenizer, chats: Sequence[Sequence[dict[str, str]]], chat: ChatFormat = DEFAULT_CHAT) -> str:
    """A pad token that occurs in none of ``chats`` (tokenised as ``chat`` says) and is neither BOS
    nor EOS.

    The tokenizer's own pad token if it qualifies, else its lowest-id added special token that
    does (SmolLM2: ``<|endoftext|>``, id 0, in place of ``<|im_end|>``)."""
    used = {tokenizer.bos_token_id, tokenizer.eos_token_id}
    for messages in chats:
        used.update(encode_chat(tokenizer, messages, chat))
    if tokenizer.pad_token is not None and tokenizer.pad_token_id not in used:
        return tokenizer.pad_token
    for token, idx in sorted(tokenizer.get_added_vocab().items(), key=lambda item: item[1]):
        if idx not in used:
            return token
    raise ValueError(f"no special token of {tokenizer.name_or_path!r} is free to pad with")


def set_safe_pad_token(
    model, tokenizer, chats: Sequence[Sequence[dict[str, str]]], chat: ChatFormat = DEFAULT_CHAT
) -> str:
    """Set a pad token that never occurs inside the chats on the tokenizer and on the model
    config, so transformers' last-non-pad pooling picks the last real token. Returns it."""
    pad = choose_pad_token(tokenizer, chats, chat)
    tokenizer.pad_token = pad
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    return pad


def _probe_chats(pairs: Sequence[Pair]) -> list[list[dict[str, str]]]:
    """A chat with every role the template writes, plus a few real ones."""
    probe = [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi."},
        {"role": "user", "content": "How are you?"},
        {"role": "assistant", "content": "Well."},
    ]
    return [probe] + [pair[side] for pair in pairs[:8] for side in ("chosen", "rejected")]


# --- scoring pairs -------------------------------------------------------------------------------


def pair_scores(
    model,
    tokenizer,
    pairs: Sequence[Pair],
    batch_size: int = 16,
    chat: ChatFormat = DEFAULT_CHAT,
    max_length: int | None = None,
    trunk: FrozenTrunk | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the chosen and of the rejected dialogue of each pair, read by the scoring
    engine (its full route, last real token from the attention mask), with chats tokenised as
    ``chat`` says and cut at ``max_length`` tokens if given. Sequences are batched by length to
    spare padding. ``trunk``: what the model's frozen layers make of these pairs, shared by the
    runs of one base (:class:`rmbias.scoring.FrozenTrunk`)."""
    sequences = [
        encode_chat(tokenizer, pair[side], chat)[:max_length] for side in ("chosen", "rejected") for pair in pairs
    ]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    was_training = model.training
    model.eval()
    scores = score(model, [sequences[i] for i in order], route="full", batch_size=batch_size, trunk=trunk).values
    model.train(was_training)
    out = torch.empty_like(scores)
    out[torch.tensor(order)] = scores
    return out[: len(pairs)], out[len(pairs) :]


def pairwise_accuracy(
    model, tokenizer, pairs: Sequence[Pair], batch_size: int = 16, chat: ChatFormat = DEFAULT_CHAT
) -> float:
    """Fraction of pairs whose chosen dialogue scores strictly above the rejected one."""
    chosen, rejected = pair_scores(model, tokenizer, pairs, batch_size, chat)
    return float((chosen > rejected).float().mean())


def accuracy_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval for ``correct`` of ``n``."""
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


# --- data ----------------------------------------------------------------------------------------


def pair_pool(config: TrainConfig) -> PairPool:
    """The pairs ``config.data`` offers, read once (:class:`rmbias.preferences.PairPool`): a grid of
    runs with one data source and held-out rule shares one pool."""
    return PairPool.load(
        config.data,
        n_heldout=config.n_heldout,
        split_seed=config.split_seed,
        heldout=config.heldout,
        summarize_prefix=config.summarize_prefix,
        keep_irregular=config.keep_irregular,
        last_turns=config.last_turns,
        max_chars=config.max_chars,
    )


def prepare_pairs(
    config: TrainConfig, sample_seed: int | None = None, pool: PairPool | None = None
) -> tuple[list[Pair], list[Pair], dict[str, Any]]:
    """The (train, held-out) pairs of a recipe and a record of how they were made.

    A registered file: all usable pairs are shortened (``last_turns``, ``max_chars``), split into
    disjoint train and held-out sets (``split_seed``), and ``n_train`` pairs are drawn from the train
    set with ``sample_seed`` (default: ``split_seed``), nested across sizes for one seed. A data-size
    ablation with several seeds keeps ``split_seed`` fixed, so every run is judged on the same
    held-out pairs, and varies ``sample_seed``. A hub dataset: ``n_train`` pairs are selected on the
    Arrow table (``selection``: a seeded shuffle, or the authors' every k-th pair) and only they are
    parsed; the held-out pairs follow ``heldout``. ``pool`` (:func:`pair_pool`) is the data read
    once for a whole grid; without it the data are read here.
    """
    pool = pool_for(config, pool)
    sample_seed = config.split_seed if sample_seed is None else sample_seed
    common = {"split_seed": config.split_seed, "last_turns": config.last_turns, "max_chars": config.max_chars}
    if pool.rows is None:  # a registered file
        train, heldout = split_pairs(pool.pairs, config.n_heldout, seed=config.split_seed)
        if config.selection == "every-kth":  # over the split's (shuffled) order
            n = len(train) if config.n_train is None else config.n_train
            k = config.stride or (largest_stride(len(train), n) if n else 1)
            train = [train[i] for i in every_kth(range(len(train)), k, n)]
            info = {**pool.info, **common, "selection": "every-kth", "stride": k}
        else:
            train = subsample(train, config.n_train, seed=sample_seed)
            info = {**pool.info, **common, "sample_seed": sample_seed}
    else:
        train, draw = pool.draw(config.n_train, seed=sample_seed, selection=config.selection, stride=config.stride)
        heldout = list(pool.heldout)
        info = {
            "n_records": pool.info["n_records"],
            "source": pool.info,
            "draw": draw,
            **common,
            "sample_seed": sample_seed if config.selection == "shuffle" else None,
            "heldout_rule": config.heldout,
        }
    info.update(
        n_train=len(train),
        n_heldout=len(heldout),
        train_index=[p["index"] for p in train],
        heldout_index=[p["index"] for p in heldout],
    )
    return train, heldout, info


def pool_for(config: TrainConfig, pool: PairPool | None) -> PairPool:
    """``pool`` if it holds ``config``'s data read with ``config``'s rules, else a fresh one; a pool of
    other data, or read under other rules, is refused rather than silently used."""
    if pool is None:
        return pair_pool(config)
    wanted = {
        "summarize_prefix": config.summarize_prefix,
        "keep_irregular": config.keep_irregular,
        "last_turns": config.last_turns,
        "max_chars": config.max_chars,
        "heldout": config.heldout,
        "split_seed": config.split_seed,
    }
    if pool.data != config.data or pool.rules != wanted or (pool.rows is None and pool.n_heldout != config.n_heldout):
        raise ValueError(f"the pair pool holds {pool.data} read with {pool.rules}, not {config.data} with {wanted}")
    return pool


def _encode_pairs(
    tokenizer, pairs: Sequence[Pair], max_length: int | None, chat: ChatFormat = DEFAULT_CHAT, over_length: str = "drop"
) -> tuple[dict[str, list], dict[str, int]]:
    """Token ids of every pair, and what happened to the others, counted.

    A pair whose chats contain the pad token (a reply that quotes Gemma's ``<pad>`` as text, which
    the tokenizer reads as the pad token) is dropped, since padding-based pooling would read its
    reward early: ``dropped_pad_literal``. A pair longer than ``max_length`` tokens is dropped
    (``dropped_over_max_length``) or, with ``over_length="truncate"``, cut to its first ``max_length``
    tokens as the authors' tokenizer call did (``truncated_to_max_length``)."""
    chosen, rejected = [], []
    counts = {"dropped_pad_literal": 0, "dropped_over_max_length": 0, "truncated_to_max_length": 0}
    for pair in pairs:
        c, r = encode_chat(tokenizer, pair["chosen"], chat), encode_chat(tokenizer, pair["rejected"], chat)
        check_chat_ids(tokenizer, pair["chosen"], c, chat)
        check_chat_ids(tokenizer, pair["rejected"], r, chat)
        if tokenizer.pad_token_id in c or tokenizer.pad_token_id in r:
            counts["dropped_pad_literal"] += 1
            continue
        if max_length is not None and max(len(c), len(r)) > max_length:
            if over_length == "drop":
                counts["dropped_over_max_length"] += 1
                continue
            counts["truncated_to_max_length"] += 1
            c, r = c[:max_length], r[:max_length]
        chosen.append(c)
        rejected.append(r)
    return {"chosen_ids": chosen, "rejected_ids": rejected}, counts


# --- training ------------------------------------------------------------------------------------


class LegacyAdamW(torch.optim.Optimizer):
    """AdamW as transformers 4 implemented it (``optim="adamw_hf"``, the authors' optimiser), which
    transformers 5 removed.

    It differs from ``torch.optim.AdamW`` in two places: epsilon is added to the square root of the
    uncorrected second moment and the bias corrections are folded into the step size
    (``lr * sqrt(1 - beta2**t) / (1 - beta1**t)``), and weight decay is applied after the Adam step,
    to the updated weights. With the authors' settings (betas 0.9 and 0.999, epsilon 1e-8, no weight
    decay) only the first matters, and only while the second moment is tiny.
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        correct_bias: bool = True,
    ):
        if lr < 0 or eps < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"invalid AdamW settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(
            params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay, "correct_bias": correct_bias}
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                first, second = state["exp_avg"], state["exp_avg_sq"]
                first.mul_(beta1).add_(grad, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                size = group["lr"]
                if group["correct_bias"]:
                    size = size * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
                param.addcdiv_(first, second.sqrt().add_(group["eps"]), value=-size)
                if group["weight_decay"] > 0:
                    param.add_(param, alpha=-group["lr"] * group["weight_decay"])
        return loss


def optimizer_choice(config: Any) -> tuple[dict[str, Any], tuple | None]:
    """The Trainer arguments and ``optimizer_cls_and_kwargs`` that give ``config.optimizer``: the
    Trainer's default (None), a Trainer optimiser by name, or :class:`LegacyAdamW` for ``"adamw_hf"``
    (betas, epsilon and weight decay as the Trainer passes them)."""
    name = getattr(config, "optimizer", None)
    if name is None:
        return {}, None
    if name == "adamw_hf":
        return {}, (LegacyAdamW, {"lr": config.learning_rate, "betas": (0.9, 0.999), "eps": 1e-8})
    return {"optim": name}, None


# A forward and backward pass on the CPU costs about as much as 60 more token positions
# (SmolLM2-135M and Gemma-3-270M: 120-140 ms for one short row, 2.2-2.3 ms per position in a batch).
PASS_OVERHEAD_POSITIONS = 64


def length_groups(lengths: Sequence[int], overhead: int = PASS_OVERHEAD_POSITIONS) -> list[list[int]]:
    """The rows of a right-padded batch (their real ``lengths``) in groups of similar length, each to
    run as a batch of its own, padded only to its longest row.

    Among the splits of the rows sorted by length, the one with the least cost: the token positions
    computed (rows x longest row, summed over groups) plus ``overhead`` positions for each pass.
    One group when padding costs less than another pass. Found by dynamic programming (n^2 for
    n rows). Within a group, rows keep their order in the batch."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    longest = [lengths[i] for i in order]
    best = [0.0] + [math.inf] * len(order)  # best[j]: the cheapest split of the j shortest rows
    start = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(j):
            cost = best[i] + (j - i) * longest[j - 1] + overhead
            if cost < best[j]:
                best[j], start[j] = cost, i
    groups, j = [], len(order)
    while j > 0:
        groups.append(sorted(order[start[j] : j]))
        j = start[j]
    return groups[::-1]


class LengthGroupedForward:
    """A model called on a right-padded batch as :func:`length_groups` splits it: each group of
    rows is cut to its own longest row and run alone, and the outputs' ``logits`` come back in the
    batch's order. With causal attention and right padding a row's values at its real positions do
    not depend on the padding after it, so the logits (and the gradients through them) are the
    padded batch's, up to floating-point rounding; only the padded positions are not computed."""

    def __init__(self, model, overhead: int | None = None):
        self.model = model
        self.overhead = PASS_OVERHEAD_POSITIONS if overhead is None else overhead

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: Any):
        lengths = attention_mask.sum(dim=1).tolist()
        groups = length_groups(lengths, self.overhead)
        if len(groups) == 1:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        parts, rows = [], []
        for group in groups:
            index = torch.tensor(group, device=input_ids.device)
            cut = max(lengths[i] for i in group)
            out = self.model(input_ids=input_ids[index, :cut], attention_mask=attention_mask[index, :cut], **kwargs)
            parts.append(out.logits)
            rows.extend(group)
        place = torch.empty(len(rows), dtype=torch.long, device=input_ids.device)
        place[torch.tensor(rows, device=input_ids.device)] = torch.arange(len(rows), device=input_ids.device)
        return SimpleNamespace(logits=torch.cat(parts)[place])


def _trainer_class():
    """TRL's RewardTrainer, with an optional learning rate of its own for the score head and, with
    ``split_by_length``, each batch run in groups of similar length (:class:`LengthGroupedForward`)."""
    from trl import RewardTrainer

    class _RewardTrainer(RewardTrainer):
        score_learning_rate: float | None = None
        split_by_length: bool = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self.split_by_length:
                model = LengthGroupedForward(model)
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if self.score_learning_rate is None:
                return optimizer
            head = {
                id(p)
                for name, p in (model or self.model).named_parameters()
                if p.requires_grad and "score" in name.split(".")
            }
            for group in list(optimizer.param_groups):
                mine = [p for p in group["params"] if id(p) in head]
                if mine:
                    group["params"] = [p for p in group["params"] if id(p) not in head]
                    optimizer.add_param_group(
                        {
                            **{k: v for k, v in group.items() if k != "params"},
                            "params": mine,
                            "lr": self.score_learning_rate,
                        }
                    )
            optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
            return optimizer

    return _RewardTrainer


def trainer_arguments(config: Any, output_dir: Path, verbose: bool) -> dict[str, Any]:
    """The training arguments every trainer here shares (reward models; :mod:`rmbias.sft`), read
    from a recipe with ``per_device_batch``, ``grad_accum``, ``learning_rate``, ``lr_scheduler``,
    ``weight_decay``, ``seed``, ``dtype`` and ``logging_steps`` (and, where the recipe has it,
    ``max_grad_norm``): batches, optimiser, gradient clipping, seeds (data order included), precision,
    checkpoints under ``output_dir/checkpoints``, no reporting."""
    return dict(
        max_grad_norm=getattr(config, "max_grad_norm", 1.0),
        output_dir=str(Path(output_dir) / "checkpoints"),
        per_device_train_batch_size=config.per_device_batch,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        weight_decay=config.weight_decay,
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.dtype == "bfloat16",
        fp16=False,
        logging_steps=config.logging_steps,
        report_to="none",
        disable_tqdm=not verbose,
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),  # a bf16 recipe then trains on the CPU instead of refusing
    )


def quiet(trainer, verbose: bool, label: str) -> None:
    """Unless ``verbose`` (the Trainer's own bar and log lines), show one progress bar of
    optimiser steps (``training <label>``; :mod:`rmbias.progress`) and nothing else: with its tqdm
    off, a Trainer would print every log line into the notebook."""
    if not verbose:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(progress.trainer_callback(label))


def steps_per_epoch(config: TrainConfig, n_pairs: int) -> int:
    """Optimiser steps per epoch over ``n_pairs`` pairs, counted as the Trainer counts them: a last,
    partial accumulation of batches is a step of its own."""
    return max(1, math.ceil(math.ceil(n_pairs / config.per_device_batch) / config.grad_accum))


def optimizer_steps(config: TrainConfig, n_pairs: int) -> int:
    """All optimiser steps of a run over ``n_pairs`` pairs: ``max_steps``, or the epochs' steps."""
    if config.max_steps is not None:
        return config.max_steps
    return math.ceil(steps_per_epoch(config, n_pairs) * config.epochs)


def run_record(
    base_key: str, config: Any, trainer, result, train_seconds: float, trained, started: float, recipe_version: int
) -> dict[str, Any]:
    """The provenance every trained model here carries (reward models; :mod:`rmbias.sft`): the base
    model, the recipe, the loss history, times, device and library versions."""
    return {
        "base_model": registry.describe(base_key),
        "base_key": base_key,
        "base_fingerprint": registry.spec(base_key).fingerprint(),
        "config": asdict(config),
        "recipe_version": recipe_version,
        "training": {
            "optimizer_steps": trainer.state.global_step,
            "train_loss": result.training_loss,
            "history": [e for e in trainer.state.log_history if "loss" in e],
            "seconds": train_seconds,
            "device": str(next(trained.parameters()).device),
            "torch_threads": torch.get_num_threads(),
        },
        "total_seconds": time.perf_counter() - started,
        "versions": library_versions(),
    }


def latest_checkpoint(folder: Path) -> Path | None:
    """The Trainer checkpoint (``checkpoint-<step>``) with the highest step in ``folder``, if any."""
    found = [
        p
        for p in Path(folder).glob("checkpoint-*")
        if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def train_reward_model(
    base_key: str,
    train_pairs: Sequence[Pair],
    config: TrainConfig,
    output_dir: str | Path,
    heldout_pairs: Sequence[Pair] | None = None,
    data_info: dict[str, Any] | None = None,
    merge: bool = True,
    verbose: bool = False,
    callbacks: Sequence[Any] = (),
    resume: bool = False,
    heldout_trunk: FrozenTrunk | None = None,
) -> Path:
    """Train a Bradley-Terry reward model from ``base_key`` on ``train_pairs`` with ``config``.

    Writes into ``output_dir`` (created; must be empty if it exists): the model with the LoRA
    merged into its weights and the trained score head (``merge=False`` saves the adapter and
    head alone, as peft does), the tokenizer with its chat template and safe pad token, any
    checkpoints under ``checkpoints/`` (``config.save_steps``), and ``training.json``: recipe,
    base model, data, pad token, loss history, held-out pairwise accuracy with a 95% interval,
    times and library versions. Returns ``output_dir``.

    ``callbacks`` are transformers ``TrainerCallback`` objects (chapter 05 scores the model at
    chosen steps with one). With ``resume=True`` an unfinished ``output_dir`` is not an error: the
    run continues from its last checkpoint (``config.save_steps`` must be set for there to be
    one), or starts again if it has none. ``heldout_trunk``: what the base's frozen layers make of
    the held-out pairs, shared by the runs of one base (with ``merge=False``, whose model still
    says which layers are trained; :class:`rmbias.scoring.FrozenTrunk`).
    """
    from datasets import Dataset
    from peft import LoraConfig
    from trl import RewardConfig

    output_dir = Path(output_dir)
    last_checkpoint = None
    if resume and (output_dir / "training.json").is_file():
        raise FileExistsError(f"{output_dir} holds a finished model; nothing to resume")
    if resume and output_dir.exists():
        last_checkpoint = latest_checkpoint(output_dir / "checkpoints")
        if last_checkpoint is None:
            shutil.rmtree(output_dir)
    elif output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty")
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    torch.manual_seed(config.seed)  # LoRA initialisation (the Trainer re-seeds before training)
    model, tokenizer = models.load_reward_model(base_key, dtype=config.dtype, head_seed=config.seed)
    model.train()
    if config.score_init_std is not None:
        with torch.no_grad():
            if config.score_init_std:
                model.score.weight.normal_(0.0, config.score_init_std)
            else:
                model.score.weight.zero_()
    chat = config.chat
    pad = set_safe_pad_token(model, tokenizer, _probe_chats(list(train_pairs)), chat)
    encoded, counts = _encode_pairs(tokenizer, train_pairs, config.max_length, chat, config.over_length)
    if not encoded["chosen_ids"]:
        raise ValueError(f"no training pair is left to train on ({counts})")
    dataset = Dataset.from_dict(encoded)

    n_layers = model.config.get_text_config().num_hidden_layers
    layers = None
    if config.lora_top_layers is not None:
        layers = list(range(max(0, n_layers - config.lora_top_layers), n_layers))
    peft_config = LoraConfig(
        task_type="SEQ_CLS",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        layers_to_transform=layers,
        modules_to_save=["score"],
    )
    optim_args, optimizer_cls_and_kwargs = optimizer_choice(config)
    args = RewardConfig(
        **trainer_arguments(config, output_dir, verbose),
        **optim_args,
        warmup_steps=config.warmup_ratio,  # transformers 5: a value below 1 is a ratio of total steps
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        max_length=config.max_length,
        gradient_checkpointing=config.gradient_checkpointing,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        disable_dropout=config.disable_dropout,
    )
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=list(callbacks),
        optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
    )
    trainer.score_learning_rate = config.score_learning_rate
    trainer.split_by_length = config.split_by_length
    quiet(trainer, verbose, f"{base_key} reward model")
    if trainer.model.config.pad_token_id != tokenizer.pad_token_id:
        raise RuntimeError("RewardTrainer changed the pad token")
    t0 = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(last_checkpoint) if last_checkpoint else None)
    train_seconds = time.perf_counter() - t0

    trained = trainer.model
    if merge:
        trained = trained.merge_and_unload()
    trained.eval()

    evaluation: dict[str, Any] = {}
    if heldout_pairs:
        t0 = time.perf_counter()
        cut = config.max_length if config.over_length == "truncate" else None
        trunk = heldout_trunk if not merge else None  # a merged model no longer marks its trained layers
        chosen, rejected = pair_scores(trained, tokenizer, heldout_pairs, chat=chat, max_length=cut, trunk=trunk)
        correct = int((chosen > rejected).sum())
        low, high = accuracy_interval(correct, len(heldout_pairs))
        evaluation = {
            "n_pairs": len(heldout_pairs),
            "correct": correct,
            "pairwise_accuracy": correct / len(heldout_pairs),
            "ci95": [low, high],
            "ci_method": "Clopper-Pearson exact binomial",
            "ties": int((chosen == rejected).sum()),
            "mean_margin": float((chosen - rejected).mean()),
            "seconds": time.perf_counter() - t0,
            "index": [pair.get("index") for pair in heldout_pairs],
            "chosen_scores": chosen.tolist(),
            "rejected_scores": rejected.tolist(),
        }

    trained.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = run_record(base_key, config, trainer, result, train_seconds, trained, started, RECIPE_VERSION)
    record["training"].update(
        steps_per_epoch=steps_per_epoch(config, len(dataset)),
        resumed_from=last_checkpoint.name if last_checkpoint else None,
    )
    record.update(
        {
            "merged": merge,
            "model_class": type(trained).__name__,
            "attn_implementation": getattr(trained.config, "_attn_implementation", None),
            "pad_token": pad,
            "pad_token_id": tokenizer.pad_token_id,
            "chat_template": tokenizer.chat_template,
            "chat_format": chat.as_dict(),
            "optimizer": type(
                getattr(trainer.optimizer, "optimizer", trainer.optimizer)
            ).__name__,  # under accelerate's wrapper
            "data": {
                **(data_info or {}),
                "n_train_pairs_given": len(train_pairs),
                "n_train_pairs_used": len(dataset),
                **counts,
            },
            "heldout": evaluation,
        }
    )
    write_json(output_dir / "training.json", record)  # atomically: its presence means the run finished
    if not config.save_steps:
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    return output_dir


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``training.json`` provenance record of a saved reward model."""
    return json.loads((Path(path) / "training.json").read_text())


def run_summary(record: dict[str, Any]) -> dict[str, Any]:
    """One flat row of a ``training.json`` record, as the chapters tabulate runs: the base, the pairs
    used and those dropped or truncated (and why), optimiser steps, training seconds, the last
    logged loss, and the held-out pairs, pairwise accuracy and its 95% interval (NaN where the run
    was not evaluated, or logged no loss)."""
    held, data, run = record.get("heldout") or {}, record["data"], record["training"]
    low, high = held.get("ci95", [math.nan, math.nan])
    return {
        "base": record["base_key"],
        "pairs_used": data["n_train_pairs_used"],
        "dropped_pad_literal": data.get("dropped_pad_literal", 0),
        "dropped_over_length": data.get("dropped_over_max_length", 0),
        "truncated": data.get("truncated_to_max_length", 0),
        "steps": run["optimizer_steps"],
        "train_seconds": run["seconds"],
        "final_loss": run["history"][-1]["loss"] if run["history"] else math.nan,
        "heldout_pairs": held.get("n_pairs", 0),
        "heldout_accuracy": held.get("pairwise_accuracy", math.nan),
        "ci_low": low,
        "ci_high": high,
    }


def load_trained(path: str | Path, device: str = "cpu"):
    """A saved reward model (merged) and its tokenizer, in eval mode, float32 unless saved otherwise."""
    from transformers import AutoModelForSequenceClassification

    model = placement.from_pretrained(AutoModelForSequenceClassification, path, device, "auto", num_labels=1)
    return model, models.cached_tokenizer(Path(path))
