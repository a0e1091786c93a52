"""Benchmark: the scoring engine (shared-prefix cache) against the naive route.

Naive route: render each chat as text, tokenise with padding, run every chat through the full
model. Engine: :func:`rmbias.scoring.score_cached`. Both score the same candidates (single
vocabulary tokens as one-word replies to the headline prompt) with the same random-weight model at
the real shape of a reward model's base, and the table reports candidates per second, the ratio,
the largest score difference, and the floor set by 2 x (non-embedding parameters) x (suffix tokens)
at this device's measured bf16 matrix-multiply rate.

    python benchmarks/rm_scoring.py --device cuda --shapes llama-3.2-3b llama-3.1-8b gemma-2-2b gemma-2-27b
    python benchmarks/rm_scoring.py --device cpu --shapes smollm2-135m-instruct --candidates 64 --dtype float32
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from rmbias import models, scoring
from rmbias.prompts import HEADLINE, select

# Published config.json values of the base models (random weights are built from them).
SHAPES = {
    "llama-3.2-3b": ("llama-3-tokenizer", dict(model_type="llama", hidden_size=3072, intermediate_size=8192,
                     num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8, head_dim=128,
                     rope_theta=500000.0, tie_word_embeddings=True, max_position_embeddings=131072)),
    "llama-3.1-8b": ("llama-3-tokenizer", dict(model_type="llama", hidden_size=4096, intermediate_size=14336,
                     num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8, head_dim=128,
                     rope_theta=500000.0, tie_word_embeddings=False, max_position_embeddings=131072)),
    "gemma-2-2b": ("gemma-3-270m", dict(model_type="gemma2", hidden_size=2304, intermediate_size=9216,
                   num_hidden_layers=26, num_attention_heads=8, num_key_value_heads=4, head_dim=256,
                   query_pre_attn_scalar=256, sliding_window=4096, attn_logit_softcapping=50.0,
                   final_logit_softcapping=30.0)),
    "gemma-2-27b": ("gemma-3-270m", dict(model_type="gemma2", hidden_size=4608, intermediate_size=36864,
                    num_hidden_layers=46, num_attention_heads=32, num_key_value_heads=16, head_dim=128,
                    query_pre_attn_scalar=144, sliding_window=4096, attn_logit_softcapping=50.0,
                    final_logit_softcapping=30.0)),
}


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


def build(shape: str, device: str, dtype: torch.dtype):
    if shape in SHAPES:
        tokenizer_key, fields = SHAPES[shape]
        tokenizer = models.load_tokenizer(tokenizer_key)
        fields = dict(fields)
        config = AutoConfig.for_model(fields.pop("model_type"), vocab_size=len(tokenizer), num_labels=1,
                                      pad_token_id=tokenizer.pad_token_id, **fields)
        if config.model_type == "gemma2":
            config._attn_implementation = "eager"
        torch.manual_seed(0)
        with torch.device(device):
            model = AutoModelForSequenceClassification.from_config(config, dtype=dtype)
    else:  # a registered model (demo profile): real weights and a new score head
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
        batch = tokenizer(texts[start:start + batch_size], padding=True, add_special_tokens=False,
                          return_tensors="pt").to(device)
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
    args = parser.parse_args()
    dtype = getattr(torch, args.dtype)
    rate = matmul_rate(args.device, dtype)
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device.startswith('cuda') else 'CPU'}), "
          f"{args.dtype}, measured matmul {rate / 1e12:.1f} TFLOP/s, {args.candidates} candidates", flush=True)
    prompt = select([HEADLINE])["text"][0]
    rows = []
    for shape in args.shapes:
        model, tokenizer = build(shape, args.device, dtype)
        words = [tokenizer.decode([i]).strip() or "x" for i in range(1000, 1000 + args.candidates)]
        sequences = [scoring.chat_ids(tokenizer, prompt, w) for w in words]
        texts = [tokenizer.apply_chat_template([{"role": "user", "content": prompt},
                                                {"role": "assistant", "content": w}], tokenize=False,
                                               date_string=scoring.FIXED_DATE) for w in words]
        prefix, suffixes = scoring.split_shared_prefix(sequences)
        suffix_tokens = statistics.mean(len(s) for s in suffixes)
        embed = model.get_input_embeddings().weight.numel()
        params = sum(p.numel() for p in model.parameters()) - embed
        t_naive, s_naive = timed(lambda: naive(model, tokenizer, texts, args.batch_size, args.device),
                                 args.device, args.repeats)
        t_fast, s_fast = timed(lambda: scoring.score_cached(model, sequences, args.batch_size),
                               args.device, args.repeats)
        # The noise floor: the engine's own scores when only the batch size changes.
        s_other = scoring.score_cached(model, sequences, max(1, args.batch_size // 2 - 1))
        noise = (s_fast - s_other).abs().max().item()
        floor = args.candidates * 2 * params * suffix_tokens / rate
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
        rows.append((shape, params / 1e9, len(prefix), suffix_tokens, args.candidates / t_naive,
                     args.candidates / t_fast, t_naive / t_fast, floor / t_fast,
                     (s_naive - s_fast).abs().max().item(), noise, peak))
        print(f"  {shape}: done", flush=True)
        del model
        gc.collect()
        if args.device.startswith("cuda"):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
    print("\n| shape | non-emb params (B) | prefix tok | suffix tok | naive cand/s | engine cand/s | speed-up "
          "| share of floor | max abs diff | batch-size noise | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]:.2f} | {r[2]} | {r[3]:.2f} | {r[4]:,.0f} | {r[5]:,.0f} | {r[6]:.1f}x | {r[7]:.0%} "
              f"| {r[8]:.3g} | {r[9]:.3g} | {r[10]:.1f} |")


if __name__ == "__main__":
    main()
