"""Placing models: quantised weights and split models give the results of the plain model.

bitsandbytes runs on the CPU, so 8-bit and 4-bit loading is exercised for real here. A split over
several GPUs cannot be, but the code that serves it can: a device map that offloads one layer to
disk makes accelerate run the model through the same hooks (weights on the ``meta`` device until
their layer runs, activations moved between modules) that a multi-GPU split uses.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from rmbias import architectures, logprobs, models, placement, prompts, registry, rewards, scoring

PROMPTS = prompts.select(["greatest_ever_one", "worst_world_please"])
WORDS = ["freedom", "love", "family", "success", "power", "honesty", "friendship", "ambition"]
# tiny-llama's modules, the second decoder layer offloaded to disk
SPLIT = {
    "model.embed_tokens": "cpu",
    "model.layers.0": "cpu",
    "model.layers.1": "disk",
    "model.norm": "cpu",
    "model.rotary_emb": "cpu",
    "lm_head": "cpu",
}


@pytest.mark.parametrize("quantize", placement.QUANTIZATIONS)
def test_quantised_traces_keep_the_ranking_and_are_kept_apart(quantize, tmp_path):
    full = logprobs.trace("tiny-llama", PROMPTS, tmp_path)
    low = logprobs.trace("tiny-llama", PROMPTS, tmp_path / "q", quantize=quantize)
    model, _ = models.load_causal_lm("tiny-llama", quantize=quantize)
    layer = type(model.model.layers[0].self_attn.q_proj).__name__
    assert layer == {"8bit": "Linear8bitLt", "4bit": "Linear4bit"}[quantize]
    assert low.meta["quantize"] == quantize and full.meta["quantize"] is None
    # close to full precision, but not equal to it
    for key in PROMPTS["key"]:
        a, b = full.column(key), low.column(key)
        assert not np.allclose(a, b, atol=1e-6)
        assert spearmanr(a, b).statistic > 0.9
    # in the same folder a quantised run is never taken for the full-precision one, nor the reverse
    again = logprobs.trace("tiny-llama", PROMPTS, tmp_path, quantize=quantize)
    np.testing.assert_array_equal(again.logprobs, low.logprobs)
    back = logprobs.trace("tiny-llama", PROMPTS, tmp_path)
    np.testing.assert_array_equal(back.logprobs, full.logprobs)


def test_quantised_reward_models_score_with_the_cached_engine(tmp_path):
    model, tokenizer = models.load_reward_model("tiny-gemma2", quantize="8bit")
    sequences = scoring.word_sequences(tokenizer, PROMPTS["text"][0], WORDS)
    cached, full = scoring.score_cached(model, sequences, 3), scoring.score_full(model, sequences, 8)
    assert torch.allclose(cached, full, atol=1e-2) and cached.std() > 0
    plain, _ = models.load_reward_model("tiny-gemma2")
    reference = scoring.score_full(plain, sequences, 8)
    assert spearmanr(reference, full).statistic > 0.8
    scored = rewards.score_words("tiny-gemma2", PROMPTS.head(1), WORDS, tmp_path, quantize="8bit")
    meta = json.loads((tmp_path / "tiny-gemma2" / f"{PROMPTS['key'][0]}.meta.json").read_text())
    assert meta["quantize"] == "8bit" and len(scored) == len(WORDS)
    unquantised = rewards.score_words("tiny-gemma2", PROMPTS.head(1), WORDS, tmp_path)
    assert not np.allclose(unquantised["score"], scored["score"])  # recomputed, not read back


def test_a_split_model_gives_the_plain_models_results(tmp_path):
    plain, tokenizer = models.load_causal_lm("tiny-llama")
    split, _ = models.load_causal_lm("tiny-llama", device=SPLIT)
    assert split.hf_device_map["model.layers.1"] == "disk"
    assert split.model.layers[1].self_attn.q_proj.weight.device.type == "meta"  # loaded only to run
    assert placement.input_device(split) == torch.device("cpu")
    sequences = [logprobs.prompt_ids(tokenizer, text, instruct=True) for text in PROMPTS["text"]]
    torch.testing.assert_close(
        logprobs.next_token_logprobs(split, sequences),
        logprobs.next_token_logprobs(plain, sequences),
        atol=1e-5,
        rtol=0,
    )
    encoded = tokenizer(["freedom", " friendship", " antidisestablishmentarianism"], add_special_tokens=False)
    np.testing.assert_allclose(
        logprobs.continuation_logprobs(split, sequences[0], encoded["input_ids"], batch_size=2),
        logprobs.continuation_logprobs(plain, sequences[0], encoded["input_ids"]),
        atol=1e-4,
    )
    assert placement.describe(split, SPLIT, None)["device_map"] == {"cpu": 5, "disk": 1}


def test_a_split_reward_model_scores_like_the_plain_one():
    plain, tokenizer = models.load_reward_model("tiny-llama")
    split_map = {**{k: v for k, v in SPLIT.items() if k != "lm_head"}, "score": "cpu"}
    split, _ = models.load_reward_model("tiny-llama", device=split_map)
    sequences = scoring.word_sequences(tokenizer, PROMPTS["text"][0], WORDS)
    reference = scoring.score_full(plain, sequences, 8)
    torch.testing.assert_close(scoring.score_cached(split, sequences, 3), reference, atol=1e-4, rtol=0)
    torch.testing.assert_close(scoring.score_full(split, sequences, 8), reference, atol=1e-4, rtol=0)


def test_settings_that_cannot_be_honoured_are_refused_before_loading(monkeypatch):
    with pytest.raises(placement.PlacementError, match="unknown quantisation '3bit'.*8bit, 4bit"):
        models.load_causal_lm("tiny-llama", quantize="3bit")
    with pytest.raises(placement.PlacementError, match="unknown device 'tpu'"):
        models.load_causal_lm("tiny-llama", device="tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(placement.PlacementError, match="'multi-gpu' splits a model over GPUs, and none is visible"):
        models.load_causal_lm("tiny-llama", device="multi-gpu")
    with pytest.raises(placement.PlacementError, match="asks for a GPU"):
        models.load_reward_model("tiny-llama", device="cuda")
    real_find_spec = placement.importlib.util.find_spec
    monkeypatch.setattr(
        placement.importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else real_find_spec(name)
    )
    with pytest.raises(placement.PlacementError, match=r"pip install bitsandbytes==0\.50\.2"):
        rewards.score_words("tiny-llama", PROMPTS.head(1), WORDS, "unused", quantize="4bit")


def test_a_multi_gpu_load_asks_accelerate_for_the_gpus_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: (80 * 2**30, 80 * 2**30))
    got = placement.load_arguments("multi-gpu", "bfloat16")
    assert got["device_map"] == "auto" and set(got["max_memory"]) == {0, 1}  # no "cpu", no "disk"
    assert got["max_memory"][0] == int(72 * 2**30)
    assert placement.load_arguments("cuda:1", "bfloat16") == {"device_map": "cuda:1"}
    assert placement.load_arguments("cpu", "float32") == {}

    class Spilled:  # what accelerate returns when the GPUs are full: the rest in CPU memory
        hf_device_map = {"model.embed_tokens": 0, "model.layers.0": 1, "model.layers.1": "cpu", "lm_head": "cpu"}

    with pytest.raises(placement.PlacementError, match="does not fit on the 2 visible GPU.*2 module"):
        placement._check_placed(Spilled(), "multi-gpu")
    placement._check_placed(Spilled(), "cuda")  # only a multi-gpu split is checked


def test_running_out_of_memory_while_loading_says_what_the_weights_need(monkeypatch, tmp_path):
    from transformers import AutoModelForCausalLM

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", out_of_memory)
    with pytest.raises(registry.ModelError, match="does not fit on cpu.*multi-gpu.*quantize.*LANGUAGE_MODELS"):
        logprobs.trace("tiny-llama", PROMPTS.head(1), tmp_path)
    assert not (tmp_path / "tiny-llama" / "next_token.meta.json").exists()
    # a paper model's error says how much its weights need (from its published config)
    with pytest.raises(registry.ModelError, match=r"weights alone take 131 GiB in bfloat16"):
        models.load_causal_lm("meta-llama/Llama-3.3-70B-Instruct", "bfloat16")
    with pytest.raises(registry.ModelError, match=r"quantised to 4bit"):
        models.load_causal_lm("meta-llama/Llama-3.3-70B-Instruct", "bfloat16", quantize="4bit")


def _stored_bytes(model) -> int:
    """What a loaded model's weights occupy: each parameter's storage, plus the float32 scales that
    bitsandbytes keeps beside 8-bit (per row) and 4-bit (per block) weights."""
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size()
        scales = getattr(p, "SCB", None)
        if scales is None and getattr(p, "quant_state", None) is not None:
            scales = p.quant_state.absmax
        if scales is not None:
            total += scales.numel() * scales.element_size()
    return total


@pytest.mark.parametrize("quantize", [None, *placement.QUANTIZATIONS])
def test_the_hardware_pages_quantised_sizes_are_what_a_quantised_load_stores(quantize):
    plain, _ = models.load_causal_lm("tiny-gemma2")
    loaded, _ = models.load_causal_lm("tiny-gemma2", quantize=quantize)
    assert architectures.weight_bytes(plain, "float32", quantize) == _stored_bytes(loaded)
    # (tests/test_book.py checks the same count at the paper's 70B shape, on the meta device)
