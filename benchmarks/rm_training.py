"""Benchmark: the paper's reward-model training recipe at the real shapes, on random weights.

Chapter 05's paper profile trains gemma-2-2b-it and Llama-3.2-3B-Instruct with LoRA r=32 on
q/k/v/o of every layer, 16 pairs per optimiser step (4 x 4 accumulation), max length 1024, bf16
and gradient checkpointing, and scores the model on the Big Two token variants while it trains.
This script runs that path (``rmbias.training.train_reward_model`` with the chapter's scoring
callback) for a few optimiser steps on random-weight models built from the published configs, with
hh-rlhf dialogues uncut (the hub data are not needed), and prints per shape: seconds per optimiser
step (median after the first), pairs per second, peak GPU memory, and the seconds to score the
candidates once. Multiply by the paper's step counts (about 6,600 steps for 53k pairs over two
epochs) to plan a run.

    python benchmarks/rm_training.py --shapes llama-3.2-3b gemma-2-2b --steps 12
    python benchmarks/rm_training.py --shapes tiny-llama --steps 3 --dtype float32   # CPU smoke test
    python benchmarks/rm_training.py --shapes llama-3.2-3b --layers 2 --steps 2 --dtype float32   # CPU, real width
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import TrainerCallback

from rmbias import ablation, architectures, models, prompts, scoring, training
from rmbias.preferences import HH_HARMLESS_TEST


class StepClock(TrainerCallback):
    """Wall time of every optimiser step (synchronised on a GPU)."""

    def __init__(self):
        self.times: list[float] = []
        self.last = None

    def _now(self) -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        if self.last is None:
            self.last = self._now()

    def on_step_end(self, args, state, control, **kwargs):
        now = self._now()
        self.times.append(now - self.last)
        self.last = now


class Mark(TrainerCallback):
    """Appends the time to ``marks`` when training begins (placed before and after the scorer, the
    difference is the time to score every candidate once)."""

    def __init__(self, marks: list[float]):
        self.marks = marks

    def on_train_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())


class BeforeScoring(Mark):
    pass


class AfterScoring(Mark):
    pass


def register(shape: str, layers: int | None = None) -> str:
    """A registry key for a random-weight stand-in of a published architecture (all layers unless
    ``layers`` says; :func:`rmbias.architectures.stand_in`), or the key given."""
    return architectures.stand_in(shape, layers=layers) if shape in architectures.ARCHITECTURES else shape


def run(shape: str, steps: int, dtype: str, candidates_for: list[str], layers: int | None = None) -> dict:
    key = register(shape, layers)
    grid = ablation.Ablation.paper(bases=(key,), sizes=(16 * steps,), seeds=(0,))
    config = replace(
        grid.config(16 * steps, 0),
        data=HH_HARMLESS_TEST,
        n_heldout=64,
        max_steps=steps,
        dtype=dtype,
        save_steps=None,
        logging_steps=1,
    )
    train, _, _ = training.prepare_pairs(config)
    tokenizers = {k: models.load_tokenizer(k) for k in dict.fromkeys([key, *map(register, candidates_for)])}
    candidates = ablation.big2_candidates(tokenizers)
    tokenizer = tokenizers[key]
    text = prompts.select([grid.prompt])["text"].iloc[0]
    sequences = scoring.vocab_sequences(tokenizer, text, candidates[f"id_{key}"].tolist())
    clock, marks = StepClock(), []
    with tempfile.TemporaryDirectory() as scratch:
        scorer = ablation.checkpoint_scorer()(
            Path(scratch) / "scores", candidates[["token", "word", "category"]], sequences, [0], grid.batch_size
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        training.train_reward_model(
            key,
            train,
            config,
            Path(scratch) / "model",
            merge=False,
            callbacks=[BeforeScoring(marks), scorer, AfterScoring(marks), clock],
        )
        total = time.perf_counter() - started
    step = statistics.median(clock.times[1:] or clock.times)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else float("nan")
    lengths = [len(scoring.encode_chat(tokenizer, p["chosen"])) for p in train[: 16 * steps]]
    return {
        "shape": shape,
        "steps": len(clock.times),
        "s_per_step": step,
        "pairs_per_s": 16 / step,
        "first_step_s": clock.times[0],
        "peak_gib": peak,
        "candidates": len(candidates),
        "score_s": marks[1] - marks[0],
        "median_tokens": statistics.median(lengths),
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["llama-3.2-3b", "gemma-2-2b"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="cut a published shape to this many layers (a CPU smoke test at real width)",
    )
    parser.add_argument(
        "--candidates-from",
        nargs="+",
        default=["llama-3-tokenizer", "gemma-3-270m"],
        help="tokenizers whose shared Big Two variants are scored (the paper: all the bases')",
    )
    args = parser.parse_args()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(
        f"device: {device}; torch {torch.__version__}; paper recipe (LoRA r=32 all layers, 16 pairs/step, "
        f"max length 1024, gradient checkpointing), {args.dtype}, {args.steps} steps"
        + (f", {args.layers} layers" if args.layers else "")
    )
    print(
        "| shape | steps | s/step (median) | pairs/s | first step s | peak GiB | candidates | scoring s | median tokens/chat | total s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        r = run(shape, args.steps, args.dtype, args.candidates_from, args.layers)
        print(
            f"| {r['shape']} | {r['steps']} | {r['s_per_step']:.2f} | {r['pairs_per_s']:.1f} | {r['first_step_s']:.1f} "
            f"| {r['peak_gib']:.1f} | {r['candidates']} | {r['score_s']:.1f} | {r['median_tokens']:.0f} | {r['total_s']:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
