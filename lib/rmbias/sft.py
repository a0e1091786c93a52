"""Validating the implicit-reward metrics by planting a known preference (the paper's appendix).

Which metric of :mod:`rmbias.implicit` should be trusted? The paper answers with a planted
preference: fine-tune a model with a small LoRA SFT so that it answers positive questions with a
few chosen words, then treat the fine-tuned model as ``q`` and the original as ``p`` and ask which
metric puts the planted words at the top of the implicit reward. A metric that cannot find a
preference we put there ourselves cannot be trusted to find one that pretraining put there.

- :func:`injected_words`: the planted words, MFD 2.0 ``Authority_Virtue`` terms that are one
  token for the model's tokenizer (so they can be read off one next-token distribution), most
  frequent first.
- :func:`training_questions` and :func:`heldout_prompts`: 36 positive questions to train on (18
  of the study's positive prompts and 18 written here) and 9 positive prompts of the study held
  out for evaluation, one per adjective x frame in a Latin square over the concision templates.
- :class:`InjectConfig`: the paper's recipe (LoRA r=8, alpha=16 on the attention and MLP
  projections, lr 2e-4, batch 4, 50 steps, 5 warm-up steps, fp32).
- :func:`inject_words`: TRL's ``SFTTrainer`` on every question x every word (user: question;
  assistant: the bare word), loss on the reply only, cached atomically.
- :func:`load_injected` and :func:`evaluate_injection`: the two models' next-token
  log-probabilities on the held-out prompts, read with the same prompt ids, the metrics'
  precision@k at recovering the words, and the words' log-probabilities before and after.

The model sees every question through a chat template, so it is also queried through one: its
own for an instruction-tuned model, the registry's turn format for a pretrained model that has
none (:func:`chat_tokenizer`). The template is saved with the fine-tuned model, and both models are
read after the same prompt ids. Before training, each planted word is checked to be exactly the
first token of the reply that follows those prompt ids.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import corpora, implicit, lexicons, models, placement, prompts
from .data import build_once, cache_dir
from .logprobs import Trace, decoded_tokens, next_token_logprobs, prompt_ids
from .scoring import FIXED_DATE, encode_chat
from .training import quiet, run_record, trainer_arguments

# Bump when the code below changes what a cached fine-tuned model holds.
RECIPE_VERSION = 1

WORD_CATEGORY = "Authority_Virtue"

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


# --- words and questions -------------------------------------------------------------------------

def single_token_id(tokenizer, word: str) -> int | None:
    """The id of ``word`` if it is one token that decodes back to exactly ``word``, else None."""
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    if len(ids) == 1 and tokenizer.decode(ids) == word:
        return int(ids[0])
    return None


def injected_words(tokenizer, n: int = 10) -> list[str]:
    """The ``n`` words to plant: MFD 2.0 ``Authority_Virtue`` terms that are plain alphabetic
    words (no wildcards, spaces or hyphens) and one token in their bare lower-case form for
    ``tokenizer``, most frequent first (wordfreq Zipf frequency; ties alphabetical)."""
    mfd = corpora.mfd2()
    terms = mfd.loc[mfd["category"] == WORD_CATEGORY, "word"].astype(str)
    plain = sorted({t.lower() for t in terms if re.fullmatch(r"[A-Za-z]+", t)})
    single = [w for w in plain if single_token_id(tokenizer, w) is not None]
    if len(single) < n:
        raise ValueError(f"only {len(single)} {WORD_CATEGORY} words are a single token for "
                         f"{tokenizer.name_or_path!r} ({', '.join(single)}); asked for {n}")
    zipf = lexicons.zipf_frequency(single).fillna(0.0).to_numpy()
    order = sorted(range(len(single)), key=lambda i: (-zipf[i], single[i]))
    return [single[i] for i in order[:n]]


def heldout_prompts() -> pd.DataFrame:
    """The 9 positive prompts held out from training: one per adjective x frame, the concision
    template rotating as a Latin square (each template three times), headline prompt included.
    Columns ``key``, ``text``."""
    adjectives, frames, concisions = prompts.POSITIVE_ADJECTIVES, list(prompts.FRAMES), list(prompts.CONCISION)
    keys = [f"{a}_{f}_{concisions[(i + j + 2) % 3]}" for i, a in enumerate(adjectives) for j, f in enumerate(frames)]
    return prompts.select(keys)[["key", "text"]]


def training_questions() -> pd.DataFrame:
    """The 36 training questions: the 18 positive prompts of the study not held out, then the 18
    :data:`EXTRA_QUESTIONS` (keys ``extra_01`` ...). Columns ``key``, ``text``."""
    table = prompts.all_prompts()
    held = set(heldout_prompts()["key"])
    study = table[(table["framing"] == "positive") & ~table["key"].isin(held)][["key", "text"]]
    extra = pd.DataFrame({"key": [f"extra_{i + 1:02d}" for i in range(len(EXTRA_QUESTIONS))],
                          "text": list(EXTRA_QUESTIONS)})
    return pd.concat([study, extra], ignore_index=True)


def chat_tokenizer(base_key: str):
    """The tokenizer of ``base_key`` with a chat template: its own, the registry's
    (:func:`rmbias.models.load_tokenizer`), or for a Gemma or Llama model that ships none (a
    pretrained hub model such as gemma-2-2b) the family's turn format."""
    tokenizer = models.load_tokenizer(base_key)
    if not tokenizer.chat_template:
        family = models.spec(base_key).family
        fallback = {"gemma": models.GEMMA_CHAT_TEMPLATE, "llama": models.LLAMA3_CHAT_TEMPLATE}.get(family)
        if fallback is None:
            raise ValueError(f"{base_key!r} has no chat template; give its ModelSpec one (rmbias.models)")
        tokenizer.chat_template = fallback
    return tokenizer


# --- recipe --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InjectConfig:
    """The word-injection SFT recipe; the defaults are the paper's."""

    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 2e-4
    lr_scheduler: str = "linear"  # TRL's default; the paper names none
    warmup_steps: int = 5
    weight_decay: float = 0.0
    per_device_batch: int = 4
    grad_accum: int = 1
    max_steps: int = 50
    seed: int = 0
    dtype: str = "float32"
    logging_steps: int = 5

    def fingerprint(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


def _rows(questions: pd.DataFrame, words: Sequence[str]) -> list[dict[str, Any]]:
    """Every question x every word as a conversational prompt-completion example."""
    return [{"prompt": [{"role": "user", "content": text}],
             "completion": [{"role": "assistant", "content": word}],
             "chat_template_kwargs": {"date_string": FIXED_DATE}}
            for text in questions["text"] for word in words]


def check_words(tokenizer, words: Sequence[str], questions: pd.DataFrame) -> list[int]:
    """The token id of each word, after checking that it is one token and that the chat template
    makes it exactly the first token of the reply, right after the prompt ids the evaluation reads
    (:func:`rmbias.logprobs.prompt_ids` with the chat template). Raises ValueError otherwise."""
    if not words:
        raise ValueError("no words to inject")
    if len(set(words)) != len(words):
        raise ValueError(f"repeated words: {list(words)}")
    ids = []
    for word in words:
        idx = single_token_id(tokenizer, word)
        if idx is None:
            pieces = tokenizer.convert_ids_to_tokens(tokenizer(word, add_special_tokens=False)["input_ids"])
            raise ValueError(f"{word!r} is not a single token for {tokenizer.name_or_path!r} (it is {pieces}); "
                             "the implicit reward reads one next-token distribution, so pick one-token words "
                             "(injected_words does)")
        ids.append(idx)
    text = questions["text"].iloc[0]
    prefix = prompt_ids(tokenizer, text, instruct=True)
    for word, idx in zip(words, ids):
        full = encode_chat(tokenizer, [{"role": "user", "content": text}, {"role": "assistant", "content": word}])
        if full[: len(prefix) + 1] != prefix + [idx]:
            raise ValueError(f"the chat template does not make {word!r} the first token of the reply")
    return ids


def train_injection(base_key: str, words: Sequence[str], config: InjectConfig, output_dir: str | Path,
                    questions: pd.DataFrame | None = None, verbose: bool = False) -> Path:
    """Fine-tune ``base_key`` to answer ``questions`` (default :func:`training_questions`) with
    ``words``, and save the merged model, its tokenizer (chat template included) and ``sft.json``
    into ``output_dir`` (created; must be empty if it exists). Uncached: see :func:`inject_words`."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    questions = training_questions() if questions is None else questions
    words = list(words)
    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} is not empty")
    tokenizer = chat_tokenizer(base_key)
    word_ids = check_words(tokenizer, words, questions)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    torch.manual_seed(config.seed)
    model, _ = models.load_causal_lm(base_key, dtype=config.dtype)
    model.train()
    dataset = Dataset.from_list(_rows(questions, words))
    peft_config = LoraConfig(task_type="CAUSAL_LM", r=config.lora_r, lora_alpha=config.lora_alpha,
                             lora_dropout=config.lora_dropout, target_modules=list(config.target_modules))
    args = SFTConfig(
        **trainer_arguments(config, output_dir, verbose),
        warmup_steps=config.warmup_steps,
        max_steps=config.max_steps,
        gradient_checkpointing=False,
        completion_only_loss=True,
        max_length=None,
        save_strategy="no",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                         peft_config=peft_config)
    quiet(trainer, verbose)
    t0 = time.perf_counter()
    result = trainer.train()
    train_seconds = time.perf_counter() - t0

    trained = trainer.model.merge_and_unload().eval()
    trained.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    record = run_record(base_key, config, trainer, result, train_seconds, trained, started, RECIPE_VERSION)
    record.update({
        "words": words,
        "word_ids": word_ids,
        "questions": questions[["key", "text"]].to_dict(orient="records"),
        "n_rows": len(dataset),
        "completion_only_loss": bool(trainer.completion_only_loss),
        "chat_template": tokenizer.chat_template,
    })
    (output_dir / "sft.json").write_text(json.dumps(record, indent=1, default=str))
    shutil.rmtree(output_dir / "checkpoints", ignore_errors=True)  # the trainer's empty output folder
    return output_dir


def injection_path(base_key: str, words: Sequence[str], config: InjectConfig | None = None,
                   questions: pd.DataFrame | None = None) -> Path:
    """Where the fine-tuned model of :func:`inject_words` is cached:
    ``cache_dir()/sft/<base>-<fingerprint of base, recipe, words and questions>``."""
    config = config or InjectConfig()
    questions = training_questions() if questions is None else questions
    blob = json.dumps({"base": models.spec(base_key).fingerprint(), "config": asdict(config), "words": list(words),
                       "questions": list(questions["text"]), "recipe_version": RECIPE_VERSION},
                      sort_keys=True, default=str).encode()
    return cache_dir() / "sft" / f"{base_key}-{hashlib.sha256(blob).hexdigest()[:10]}"


def inject_words(base_key: str, words: Sequence[str], config: InjectConfig | None = None,
                 questions: pd.DataFrame | None = None, verbose: bool = False) -> Path:
    """The folder of ``base_key`` fine-tuned to answer with ``words`` (:func:`train_injection`),
    trained on first use and cached atomically (:func:`rmbias.data.build_once`): a second call
    with the same model, words, recipe and questions returns at once."""
    config = config or InjectConfig()
    questions = training_questions() if questions is None else questions
    tokenizer = chat_tokenizer(base_key)
    check_words(tokenizer, words, questions)  # fail fast, before anything is built

    def build(folder: Path) -> dict[str, Any]:
        train_injection(base_key, words, config, folder, questions=questions, verbose=verbose)
        return {"base_key": base_key, "words": list(words), "config": asdict(config)}

    return build_once(injection_path(base_key, words, config, questions), build)


def read_record(path: str | Path) -> dict[str, Any]:
    """The ``sft.json`` record of a fine-tuned model."""
    return json.loads((Path(path) / "sft.json").read_text())


def load_injected_tokenizer(path: str | Path):
    """The tokenizer saved with a fine-tuned model, chat template included."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def load_injected(path: str | Path, device: str = "cpu"):
    """A fine-tuned model (merged) and its tokenizer, in eval mode on ``device``. Query both it and
    the original model with :func:`rmbias.logprobs.prompt_ids` (``instruct=True``) on this
    tokenizer, then :func:`rmbias.logprobs.next_token_logprobs`, as :func:`traces` does."""
    from transformers import AutoModelForCausalLM

    return placement.from_pretrained(AutoModelForCausalLM, path, device, "auto"), load_injected_tokenizer(path)


# --- evaluation ----------------------------------------------------------------------------------

def traces(base_key: str, path: str | Path, prompt_table: pd.DataFrame | None = None, device: str = "cpu",
           batch_size: int = 8) -> tuple[Trace, Trace]:
    """Next-token log-probabilities of the original model (``p``) and the fine-tuned one (``q``)
    on ``prompt_table`` (default :func:`heldout_prompts`), both fed the same prompt ids: the chat
    template saved with the fine-tuned model, with the generation prompt. Returned as
    :class:`rmbias.logprobs.Trace` objects (not written to disk)."""
    prompt_table = heldout_prompts() if prompt_table is None else prompt_table
    spec = models.spec(base_key)
    loaders = {"original": lambda: models.load_causal_lm(base_key, device=device)[0],
               "injected": lambda: load_injected(path, device)[0]}
    tokenizer = load_injected_tokenizer(path)
    sequences = [prompt_ids(tokenizer, text, instruct=True) for text in prompt_table["text"]]
    out = []
    for label, load in loaders.items():  # one model in memory at a time
        model = load()
        values = next_token_logprobs(model, sequences, batch_size).numpy()
        out.append(Trace(model=f"{spec.label} ({label})", key=base_key, family=spec.family, instruct=True,
                         prompts=list(prompt_table["key"]), logprobs=values,
                         tokens=decoded_tokens(tokenizer, values.shape[1]),
                         meta={"prompt_format": "chat template + generation prompt", "source": str(path),
                               "rendered_prompt": tokenizer.decode(sequences[0])}))
        del model
    return out[0], out[1]


def evaluate_injection(base_key: str, path: str | Path, prompt_table: pd.DataFrame | None = None, k: int = 10,
                       device: str = "cpu") -> pd.DataFrame:
    """How well each metric of :data:`rmbias.implicit.METRICS` recovers the planted words.

    For each prompt (default :func:`heldout_prompts`): the precision@``k`` of every metric
    (column ``precision_<metric>``), with ``p`` = the original model and ``q`` = the fine-tuned
    one, over all decoded strings; and the planted words' mean next-token log-probability before
    (``logp_before``) and after (``logp_after``), read by token id. One row per prompt.
    """
    record = read_record(path)
    words, word_ids = record["words"], record["word_ids"]
    original, injected = traces(base_key, path, prompt_table, device)
    rows = []
    for key in original.prompts:
        table = implicit.implicit_rewards(implicit.shared_strings(original.by_string(key), injected.by_string(key)))
        row: dict[str, Any] = {"prompt": key}
        for name in implicit.METRICS:
            row[f"precision_{name}"] = implicit.precision_at_k(table, name, words, k)
        row["logp_before"] = float(np.mean(original.column(key)[word_ids]))
        row["logp_after"] = float(np.mean(injected.column(key)[word_ids]))
        row["prob_before"] = float(np.mean(np.exp(original.column(key)[word_ids])))
        row["prob_after"] = float(np.mean(np.exp(injected.column(key)[word_ids])))
        rows.append(row)
    return pd.DataFrame(rows)
