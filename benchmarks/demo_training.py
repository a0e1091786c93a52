"""Benchmark: the demo reward-model recipe on the CPU, with and without ``split_by_length``.

Chapter 02 trains its two demo reward models (SmolLM2-135M-Instruct, Gemma-3-270M) with
``TrainConfig.demo()``: 8 pairs a step, so 16 chats of 30 to 280 tokens, right-padded to the longest
of each batch. With ``split_by_length`` (:func:`rmbias.training.length_groups`) each batch runs as a
few groups of similar length instead, which is the same loss with fewer token positions computed.
This script trains each base for a few optimiser steps both ways, on the same pairs, and prints per
model: seconds per optimiser step (median after the first), the share of the padded batches' token
positions that the split computes, and the largest difference between the two runs' logged losses.

    python benchmarks/demo_training.py --steps 10
    python benchmarks/demo_training.py --models smollm2-135m-instruct --steps 4
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from rm_training import StepClock  # this folder's training benchmark: wall time of every optimiser step
from transformers import TrainerCallback

from rmbias import registry, training


class Positions(TrainerCallback):
    """Token positions the model's forward passes compute, counted by a hook on the model."""

    def __init__(self):
        self.count = 0

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def hook(module, positional, named):
            self.count += named["input_ids"].numel()

        model.register_forward_pre_hook(hook, with_kwargs=True)


def run(key: str, steps: int, split: bool, folder: Path) -> dict:
    config = training.TrainConfig.demo(max_steps=steps, split_by_length=split)
    train, _, _ = training.prepare_pairs(config)
    clock, positions = StepClock(), Positions()
    out = training.train_reward_model(key, train, config, folder / f"{key}-{split}", callbacks=[clock, positions])
    record = training.read_record(out)
    return {
        "step": statistics.median(clock.times[1:] or clock.times),
        "positions": positions.count,
        "losses": [entry["loss"] for entry in record["training"]["history"]],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=["smollm2-135m-instruct", "gemma-3-270m"])
    parser.add_argument("--steps", type=int, default=10, help="optimiser steps per run (the demo recipe has 48)")
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, demo recipe, {args.steps} steps\n")
    print("| model | padded s/step | split s/step | speed-up | positions computed | largest loss difference |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for key in args.models:
            registry.spec(key)  # a clear error for an unknown key before anything trains
            padded, split = (run(key, args.steps, flag, Path(scratch)) for flag in (False, True))
            diff = max((abs(a - b) for a, b in zip(padded["losses"], split["losses"])), default=float("nan"))
            print(
                f"| {key} | {padded['step']:.2f} | {split['step']:.2f} | {padded['step'] / split['step']:.2f}x "
                f"| {split['positions'] / padded['positions']:.0%} | {diff:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
