"""Benchmark: the scoring engine (shared-prefix cache) against the naive route.

Naive route: render each chat as text, tokenise with padding, run every chat through the full
model. Engine: :func:`rmbias.scoring.score_cached`. Both score the same candidates (single
vocabulary tokens as one-word replies to the headline prompt) with the same random-weight model at
the real shape of a reward model's base, and the table reports candidates per second, the ratio,
the largest score difference, and the floor set by 2 x (non-embedding parameters) x (suffix tokens)
at this device's measured bf16 matrix-multiply rate.

    python benchmarks/rm_scoring.py --device cuda --shapes llama-3.2-3b llama-3.1-8b gemma-2-2b gemma-2-27b
    python benchmarks/rm_scoring.py --device cpu --shapes smollm2-135m-instruct --candidates 64 --dtype float32
    python benchmarks/rm_scoring.py --device cpu --shapes llama-3.2-3b --layers 2 --candidates 64 --dtype float32
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch

from rmbias import architectures, models, scoring, standins
from rmbias.prompts import HEADLINE, select

# The shapes benchmarked by default: the bases of the paper's reward models (rmbias.architectures).
SHAPES = ("llama-3.2-3b", "llama-3.1-8b", "gemma-2-2b", "gemma-2-27b")


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> tuple[float, object]:
    """Median wall time of ``fn`` over ``repeats`` runs after one warm-up."""
    result = fn()
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def matmul_rate(device: str, dtype: torch.dtype) -> float:
    n = 8192 if device.startswith("cuda") else 1024
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    seconds, _ = timed(lambda: a @ b, device, 10)
    return 2 * n**3 / seconds


def build(shape: str, device: str, dtype: torch.dtype, layers: int | None = None):
    if shape in architectures.ARCHITECTURES:  # random weights at the published shape
        return standins.random_model(shape, layers, reward=True, dtype=str(dtype).removeprefix("torch."), device=device)
    # a registered model (demo profile): real weights and a new score head
    torch.manual_seed(0)
    model, tokenizer = models.load_reward_model(shape, str(dtype).removeprefix("torch."), device)
    return model.eval(), tokenizer


@torch.no_grad()
def naive(model, tokenizer, texts: list[str], batch_size: int, device: str) -> torch.Tensor:
    """Render-as-text route (add_special_tokens=False, so at least no second BOS), full forward,
    the model's own pooling."""
    tokenizer.padding_side = "right"
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, add_special_tokens=False, return_tensors="pt"
        ).to(device)
        out.append(model(**batch).logits[:, 0].float().cpu())
    return torch.cat(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES))
    parser.add_argument("--candidates", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--layers",
        type=int,
        default=None,
        help="cut a published shape to this many layers (a CPU smoke test at real width)",
    )
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    rate = matmul_rate(args.device, dtype)
    print(
        f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
        f"{args.dtype}, measured matmul {rate / 1e12:.1f} TFLOP/s, {args.candidates} candidates",
        flush=True,
    )
    prompt = select([HEADLINE])["text"][0]
    rows = []
    for shape in args.shapes:
        model, tokenizer = build(shape, args.device, dtype, args.layers)
        words = [tokenizer.decode([i]).strip() or "x" for i in range(1000, 1000 + args.candidates)]
        sequences = [scoring.chat_ids(tokenizer, prompt, w) for w in words]
        texts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": w}],
                tokenize=False,
                date_string=scoring.FIXED_DATE,
            )
            for w in words
        ]
        prefix, suffixes = scoring.split_shared_prefix(sequences)
        suffix_tokens = statistics.mean(len(s) for s in suffixes)
        embed = model.get_input_embeddings().weight.numel()
        params = sum(p.numel() for p in model.parameters()) - embed
        t_naive, s_naive = timed(
            lambda: naive(model, tokenizer, texts, args.batch_size, args.device), args.device, args.repeats
        )
        t_fast, s_fast = timed(
            lambda: scoring.score_cached(model, sequences, args.batch_size), args.device, args.repeats
        )
        # The noise floor: the engine's own scores when only the batch size changes.
        s_other = scoring.score_cached(model, sequences, max(1, args.batch_size // 2 - 1))
        noise = (s_fast - s_other).abs().max().item()
        floor = args.candidates * 2 * params * suffix_tokens / rate
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
        rows.append(
            (
                shape,
                params / 1e9,
                len(prefix),
                suffix_tokens,
                args.candidates / t_naive,
                args.candidates / t_fast,
                t_naive / t_fast,
                floor / t_fast,
                (s_naive - s_fast).abs().max().item(),
                noise,
                peak,
            )
        )
        print(f"  {shape}: done", flush=True)
        model = None  # freed before the next shape is built
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    print(
        "\n| shape | non-emb params (B) | prefix tok | suffix tok | naive cand/s | engine cand/s | speed-up "
        "| share of floor | max abs diff | batch-size noise | peak GiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r[0]} | {r[1]:.2f} | {r[2]} | {r[3]:.2f} | {r[4]:,.0f} | {r[5]:,.0f} | {r[6]:.1f}x | {r[7]:.0%} "
            f"| {r[8]:.3g} | {r[9]:.3g} | {r[10]:.1f} |"
        )


if __name__ == "__main__":
    main()
