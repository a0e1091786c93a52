"""Bradley-Terry reward-model training: one function, one recipe dataclass.

The paper (section 6) trains reward models from two base models with identical data and recipe
and compares what they learned. :func:`train_reward_model` does that for any registered base
model: TRL's ``RewardTrainer`` minimises the Bradley-Terry loss ``-log sigmoid(r_chosen -
r_rejected)`` over preference pairs, with LoRA adapters (peft) on the attention projections and
a fully trained score head. The recipe lives in :class:`TrainConfig`; :meth:`TrainConfig.paper`
is the paper's, :meth:`TrainConfig.demo` is a miniature that trains on a 2-core CPU in minutes.
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
- **Double BOS.** Chats are tokenised by the chat template itself (:func:`encode_chat`, the same
  call TRL makes), never rendered and re-tokenised; :func:`check_chat_ids` rejects a doubled BOS.

:func:`demo_reward_model` trains the demo reward model of a base model once and caches it
atomically, so notebooks can call it freely.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from . import models, placement
from .data import FILES, build_once, cache_dir
from .preferences import HH_HARMLESS_TEST, Pair, load_pairs, shorten_all, split_pairs, subsample
from .artifacts import library_versions
from .scoring import FIXED_DATE, encode_chat, score_full

# Bump when the training code changes in a way that changes the trained weights: the demo
# reward models' cache folders are named by a fingerprint that includes it.
RECIPE_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """A reward-model training recipe: LoRA, optimiser, data and run settings.

    Batches count preference pairs (each pair is two sequences, chosen and rejected). The
    learning-rate schedule's warm-up is a fraction of the total optimiser steps.
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
    data: str = HH_HARMLESS_TEST  # a registered preference file (rmbias.data)
    n_train: int | None = None  # pairs drawn from the train split (None: all of it)
    n_heldout: int = 400  # pairs held out for pairwise accuracy
    split_seed: int = 0  # seeds the train / held-out split and the subsample
    last_turns: int | None = None  # keep only the last N exchanges of each dialogue (None: all)
    max_chars: int | None = None  # cut every message to N characters (None: uncut)
    max_length: int = 1024  # tokens; longer training pairs are dropped (as TRL does)
    # Run
    seed: int = 0  # score-head initialisation, LoRA initialisation, batch order
    dtype: str = "bfloat16"  # weights' dtype during training and in the saved model
    gradient_checkpointing: bool = False
    save_steps: int | None = None  # keep a LoRA checkpoint every N steps (None: none)
    logging_steps: int = 10

    @classmethod
    def paper(cls, **changes: Any) -> TrainConfig:
        """The paper's recipe (section 6): LoRA r=32, alpha=64 on q/k/v/o, lr 1e-5 cosine, 3%
        warm-up, effective batch 16, 2 epochs, max length 1024, bf16. For a GPU."""
        recipe = cls(lora_r=32, lora_alpha=64, learning_rate=1e-5, lr_scheduler="cosine", warmup_ratio=0.03,
                     per_device_batch=4, grad_accum=4, epochs=2.0, max_length=1024, dtype="bfloat16",
                     gradient_checkpointing=True, n_heldout=400)
        return replace(recipe, **changes)

    @classmethod
    def demo(cls, **changes: Any) -> TrainConfig:
        """The miniature recipe for a 2-core CPU: both demo models train and are evaluated, cold,
        in under ten minutes (573 s measured on 2 AMD EPYC cores without other load, GGUF
        conversion included; about twice that when other jobs share the cores).

        - Short sequences: the last exchange of each dialogue, messages cut at 400 characters
          (about 50-130 tokens with the chat template); forward passes dominate the cost.
        - 384 training pairs, one epoch, 8 pairs a step: 48 optimiser steps.
        - LoRA r=8 (alpha 16) on q/k/v/o of the top 4 decoder layers only, so the backward pass
          stops four layers down (about 15% of a forward pass, against 100% for all layers).
        - Learning rates far above the paper's 1e-5, which assumes thousands of steps: 1e-3 for
          LoRA and 5e-3 for the newly initialised score head, whose random start otherwise
          dominates after 48 steps (at 2e-4 or 1e-3 for everything nothing was learned).
        - float32 (this CPU has no fast bf16); 256 held-out pairs for pairwise accuracy.

        Chosen on a development split carved from the training pairs, never the held-out ones.
        """
        recipe = cls(lora_r=8, lora_alpha=16, lora_top_layers=4, learning_rate=1e-3, score_learning_rate=5e-3,
                     lr_scheduler="cosine", warmup_ratio=0.03, per_device_batch=8, grad_accum=1, epochs=1.0,
                     n_train=384, n_heldout=256, last_turns=1, max_chars=400, max_length=256, dtype="float32",
                     gradient_checkpointing=False, logging_steps=4)
        return replace(recipe, **changes)

    @property
    def effective_batch(self) -> int:
        return self.per_device_batch * self.grad_accum

    def fingerprint(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


# --- chats, pad token, BOS ------------------------------------------------------------------------

def check_chat_ids(tokenizer, messages: Sequence[dict[str, str]], ids: Sequence[int]) -> None:
    """Raise ValueError if ``ids`` starts with two BOS tokens, or holds more BOS tokens than the
    template writes (one, for templates that open with ``bos_token``; SmolLM2's BOS is its
    turn-start token ``<|im_start|>``, written once per turn)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return
    if len(ids) > 1 and ids[0] == bos and ids[1] == bos:
        raise ValueError("the chat starts with two BOS tokens")
    rendered = tokenizer.apply_chat_template(list(messages), tokenize=False, date_string=FIXED_DATE)
    if ids.count(bos) != rendered.count(tokenizer.bos_token):
        raise ValueError(f"the chat holds {ids.count(bos)} BOS tokens but its template writes "
                         f"{rendered.count(tokenizer.bos_token)}")


def choose_pad_token(tokenizer, chats: Sequence[Sequence[dict[str, str]]]) -> str:
    """A pad token that occurs in none of ``chats`` (rendered) and is neither BOS nor EOS.

    The tokenizer's own pad token if it qualifies, else its lowest-id added special token that
    does (SmolLM2: ``<|endoftext|>``, id 0, in place of ``<|im_end|>``)."""
    used = {tokenizer.bos_token_id, tokenizer.eos_token_id}
    for chat in chats:
        used.update(encode_chat(tokenizer, chat))
    if tokenizer.pad_token is not None and tokenizer.pad_token_id not in used:
        return tokenizer.pad_token
    for token, idx in sorted(tokenizer.get_added_vocab().items(), key=lambda item: item[1]):
        if idx not in used:
            return token
    raise ValueError(f"no special token of {tokenizer.name_or_path!r} is free to pad with")


def set_safe_pad_token(model, tokenizer, chats: Sequence[Sequence[dict[str, str]]]) -> str:
    """Set a pad token that never occurs inside the chats on the tokenizer and on the model
    config, so transformers' last-non-pad pooling picks the last real token. Returns it."""
    pad = choose_pad_token(tokenizer, chats)
    tokenizer.pad_token = pad
    model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    return pad


def _probe_chats(pairs: Sequence[Pair]) -> list[list[dict[str, str]]]:
    """A chat with every role the template writes, plus a few real ones."""
    probe = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi."},
             {"role": "user", "content": "How are you?"}, {"role": "assistant", "content": "Well."}]
    return [probe] + [pair[side] for pair in pairs[:8] for side in ("chosen", "rejected")]


# --- scoring pairs -------------------------------------------------------------------------------

def pair_scores(model, tokenizer, pairs: Sequence[Pair], batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the chosen and of the rejected dialogue of each pair, read by the scoring
    engine (:func:`rmbias.scoring.score_full`, last real token from the attention mask).
    Sequences are batched by length to spare padding."""
    sequences = [encode_chat(tokenizer, pair[side]) for side in ("chosen", "rejected") for pair in pairs]
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    was_training = model.training
    model.eval()
    scores = score_full(model, [sequences[i] for i in order], batch_size=batch_size)
    model.train(was_training)
    out = torch.empty_like(scores)
    out[torch.tensor(order)] = scores
    return out[: len(pairs)], out[len(pairs):]


def pairwise_accuracy(model, tokenizer, pairs: Sequence[Pair], batch_size: int = 16) -> float:
    """Fraction of pairs whose chosen dialogue scores strictly above the rejected one."""
    chosen, rejected = pair_scores(model, tokenizer, pairs, batch_size)
    return float((chosen > rejected).float().mean())


def accuracy_interval(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) binomial confidence interval for ``correct`` of ``n``."""
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)


# --- data ----------------------------------------------------------------------------------------

def prepare_pairs(config: TrainConfig, sample_seed: int | None = None) -> tuple[list[Pair], list[Pair], dict[str, Any]]:
    """The (train, held-out) pairs of a recipe and a record of how they were made.

    All usable pairs of ``config.data`` are shortened (``last_turns``, ``max_chars``), split
    into disjoint train and held-out sets (``split_seed``), and ``n_train`` pairs are drawn from
    the train set with ``sample_seed`` (default: ``split_seed``), nested across sizes for one
    seed. A data-size ablation with several seeds keeps ``split_seed`` fixed, so every run is
    judged on the same held-out pairs, and varies ``sample_seed``."""
    parsed = load_pairs(config.data)
    short, n_dropped = shorten_all(parsed.pairs, config.last_turns, config.max_chars)
    train, heldout = split_pairs(short, config.n_heldout, seed=config.split_seed)
    sample_seed = config.split_seed if sample_seed is None else sample_seed
    train = subsample(train, config.n_train, seed=sample_seed)
    info = {**parsed.summary(), "dropped_identical_after_shortening": n_dropped,
            "split_seed": config.split_seed, "sample_seed": sample_seed, "n_train": len(train), "n_heldout": len(heldout),
            "last_turns": config.last_turns, "max_chars": config.max_chars,
            "train_index": [p["index"] for p in train], "heldout_index": [p["index"] for p in heldout]}
    return train, heldout, info


def _encode_pairs(tokenizer, pairs: Sequence[Pair], max_length: int | None) -> tuple[dict[str, list], int]:
    chosen, rejected, too_long = [], [], 0
    for pair in pairs:
        c, r = encode_chat(tokenizer, pair["chosen"]), encode_chat(tokenizer, pair["rejected"])
        check_chat_ids(tokenizer, pair["chosen"], c)
        check_chat_ids(tokenizer, pair["rejected"], r)
        if tokenizer.pad_token_id in c or tokenizer.pad_token_id in r:
            raise ValueError(f"pair {pair.get('index')} contains the pad token {tokenizer.pad_token!r}")
        if max_length is not None and max(len(c), len(r)) > max_length:
            too_long += 1
            continue
        chosen.append(c)
        rejected.append(r)
    return {"chosen_ids": chosen, "rejected_ids": rejected}, too_long


# --- training ------------------------------------------------------------------------------------

def _trainer_class():
    """TRL's RewardTrainer, with an optional learning rate of its own for the score head."""
    from trl import RewardTrainer

    class _RewardTrainer(RewardTrainer):
        score_learning_rate: float | None = None

        def create_optimizer(self, model=None):
            optimizer = super().create_optimizer(model)
            if self.score_learning_rate is None:
                return optimizer
            head = {id(p) for name, p in (model or self.model).named_parameters()
                    if p.requires_grad and "score" in name.split(".")}
            for group in list(optimizer.param_groups):
                mine = [p for p in group["params"] if id(p) in head]
                if mine:
                    group["params"] = [p for p in group["params"] if id(p) not in head]
                    optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                               "params": mine, "lr": self.score_learning_rate})
            optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
            return optimizer

    return _RewardTrainer


def trainer_arguments(config: Any, output_dir: Path, verbose: bool) -> dict[str, Any]:
    """The training arguments every trainer here shares (reward models; :mod:`rmbias.sft`), read
    from a recipe with ``per_device_batch``, ``grad_accum``, ``learning_rate``, ``lr_scheduler``,
    ``weight_decay``, ``seed``, ``dtype`` and ``logging_steps``: batches, optimiser, seeds (data
    order included), precision, checkpoints under ``output_dir/checkpoints``, no reporting."""
    return dict(
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
    )


def quiet(trainer, verbose: bool) -> None:
    """With tqdm off, a Trainer prints every log line instead; unless ``verbose``, keep notebooks quiet."""
    if not verbose:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


def steps_per_epoch(config: TrainConfig, n_pairs: int) -> int:
    """Optimiser steps per epoch over ``n_pairs`` pairs, counted as the Trainer counts them: a last,
    partial accumulation of batches is a step of its own."""
    return max(1, math.ceil(math.ceil(n_pairs / config.per_device_batch) / config.grad_accum))


def optimizer_steps(config: TrainConfig, n_pairs: int) -> int:
    """All optimiser steps of a run over ``n_pairs`` pairs: ``max_steps``, or the epochs' steps."""
    if config.max_steps is not None:
        return config.max_steps
    return math.ceil(steps_per_epoch(config, n_pairs) * config.epochs)


def run_record(base_key: str, config: Any, trainer, result, train_seconds: float, trained, started: float,
               recipe_version: int) -> dict[str, Any]:
    """The provenance every trained model here carries (reward models; :mod:`rmbias.sft`): the base
    model, the recipe, the loss history, times, device and library versions."""
    return {
        "base_model": models.describe(base_key),
        "base_key": base_key,
        "base_fingerprint": models.spec(base_key).fingerprint(),
        "config": asdict(config),
        "recipe_version": recipe_version,
        "training": {"optimizer_steps": trainer.state.global_step, "train_loss": result.training_loss,
                     "history": [e for e in trainer.state.log_history if "loss" in e], "seconds": train_seconds,
                     "device": str(next(trained.parameters()).device), "torch_threads": torch.get_num_threads()},
        "total_seconds": time.perf_counter() - started,
        "versions": library_versions(),
    }


def latest_checkpoint(folder: Path) -> Path | None:
    """The Trainer checkpoint (``checkpoint-<step>``) with the highest step in ``folder``, if any."""
    found = [p for p in Path(folder).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()
             and (p / "trainer_state.json").is_file()]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def train_reward_model(base_key: str, train_pairs: Sequence[Pair], config: TrainConfig, output_dir: str | Path,
                       heldout_pairs: Sequence[Pair] | None = None, data_info: dict[str, Any] | None = None,
                       merge: bool = True, verbose: bool = False, callbacks: Sequence[Any] = (),
                       resume: bool = False) -> Path:
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
    one), or starts again if it has none.
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
    pad = set_safe_pad_token(model, tokenizer, _probe_chats(list(train_pairs)))
    encoded, too_long = _encode_pairs(tokenizer, train_pairs, config.max_length)
    if not encoded["chosen_ids"]:
        raise ValueError("no training pair fits max_length")
    dataset = Dataset.from_dict(encoded)

    n_layers = model.config.get_text_config().num_hidden_layers
    layers = None
    if config.lora_top_layers is not None:
        layers = list(range(max(0, n_layers - config.lora_top_layers), n_layers))
    peft_config = LoraConfig(task_type="SEQ_CLS", r=config.lora_r, lora_alpha=config.lora_alpha,
                             lora_dropout=config.lora_dropout, target_modules=list(config.target_modules),
                             layers_to_transform=layers, modules_to_save=["score"])
    args = RewardConfig(
        **trainer_arguments(config, output_dir, verbose),
        warmup_steps=config.warmup_ratio,  # transformers 5: a value below 1 is a ratio of total steps
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        max_length=config.max_length,
        gradient_checkpointing=config.gradient_checkpointing,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 500,
        disable_dropout=True,
    )
    trainer = _trainer_class()(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                 peft_config=peft_config, callbacks=list(callbacks))
    trainer.score_learning_rate = config.score_learning_rate
    quiet(trainer, verbose)
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
        chosen, rejected = pair_scores(trained, tokenizer, heldout_pairs)
        correct = int((chosen > rejected).sum())
        low, high = accuracy_interval(correct, len(heldout_pairs))
        evaluation = {"n_pairs": len(heldout_pairs), "correct": correct,
                      "pairwise_accuracy": correct / len(heldout_pairs), "ci95": [low, high],
                      "ci_method": "Clopper-Pearson exact binomial", "ties": int((chosen == rejected).sum()),
                      "mean_margin": float((chosen - rejected).mean()), "seconds": time.perf_counter() - t0,
                      "index": [pair.get("index") for pair in heldout_pairs],
                      "chosen_scores": chosen.tolist(), "rejected_scores": rejected.tolist()}

    trained.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = run_record(base_key, config, trainer, result, train_seconds, trained, started, RECIPE_VERSION)
    record["training"].update(steps_per_epoch=steps_per_epoch(config, len(dataset)),
                              resumed_from=last_checkpoint.name if last_checkpoint else None)
    record.update({
        "merged": merge,
        "model_class": type(trained).__name__,
        "attn_implementation": getattr(trained.config, "_attn_implementation", None),
        "pad_token": pad,
        "pad_token_id": tokenizer.pad_token_id,
        "chat_template": tokenizer.chat_template,
        "data": {**(data_info or {}), "n_train_pairs_given": len(train_pairs), "n_train_pairs_used": len(dataset),
                 "dropped_over_max_length": too_long},
        "heldout": evaluation,
    })
    (output_dir / "training.json").write_text(json.dumps(record, indent=1, default=str))
    if not config.save_steps:
        shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)
    return output_dir


# --- the cached demo reward models ---------------------------------------------------------------

def _cache_fingerprint(base_key: str, config: TrainConfig) -> str:
    blob = json.dumps({"base": models.spec(base_key).fingerprint(), "config": asdict(config),
                       "data_sha256": [sha for (_, path), sha in FILES.items() if path.endswith(config.data)],
                       "recipe_version": RECIPE_VERSION}, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:10]


def reward_model_path(base_key: str, config: TrainConfig | None = None) -> Path:
    """Where the reward model of ``base_key`` trained with ``config`` (default: the demo recipe)
    is cached."""
    config = config or TrainConfig.demo()
    return cache_dir() / "reward_models" / f"{base_key}-{_cache_fingerprint(base_key, config)}"


def demo_reward_model(base_key: str, config: TrainConfig | None = None, verbose: bool = False) -> Path:
    """The folder of ``base_key``'s reward model trained with ``config`` (default: the demo
    recipe) on hh-rlhf, trained on first use and cached.

    Built in a scratch folder beside the target and renamed into place after a completion marker
    (``complete.json``) is written last, so an interrupted run never leaves a folder that looks
    complete. Load it with ``AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)``
    and ``AutoTokenizer.from_pretrained(path)``.
    """
    config = config or TrainConfig.demo()

    def build(folder: Path) -> dict[str, Any]:
        train, heldout, info = prepare_pairs(config)
        train_reward_model(base_key, train, config, folder, heldout_pairs=heldout, data_info=info, verbose=verbose)
        return {"base_key": base_key, "config": asdict(config)}

    return build_once(reward_model_path(base_key, config), build)


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``training.json`` provenance record of a saved reward model."""
    return json.loads((Path(path) / "training.json").read_text())


def load_trained(path: str | Path, device: str = "cpu"):
    """A saved reward model (merged) and its tokenizer, in eval mode, float32 unless saved otherwise."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = placement.from_pretrained(AutoModelForSequenceClassification, path, device, "auto", num_labels=1)
    return model, AutoTokenizer.from_pretrained(path)
