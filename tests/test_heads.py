"""Reward models with heads of their own (rmbias.heads): loaded from checkpoints in the published
layout, without remote code, and scored by the engine exactly as by the full pass."""

import json

import huggingface_hub.constants
import pytest
import torch
from safetensors.torch import load_file, save_file

from rmbias import heads, models, registry, scoring, standins

PROMPTS = [
    "What, in one word, is the greatest thing ever?",
    "What is the worst thing ever? Please answer in one word only.",
]
WORDS = ["Love", "Freedom", "Family", "Success", "Peace and quiet", "A"]
# one of each head layout, and a plain Gemma head whose config pads with <eos>
HEADS = [
    "RLHFlow/ArmoRM-Llama3-8B-v0.1",
    "nicolinho/QRM-Llama3.1-8B",
    "nicolinho/QRM-Gemma-2-27B",
    "LxzGordon/URM-LLaMa-3.1-8B",
    "urm-llama-3.1-8b-gated",
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft",
]


@pytest.fixture
def use_hub(paper_hub, monkeypatch):
    """The paper profile's stand-ins (conftest), as the hub."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(paper_hub))
    return paper_hub


@pytest.mark.parametrize("key", HEADS)
def test_head_loads_from_the_published_layout_and_the_engine_equals_the_full_pass(use_hub, key):
    model, tokenizer = models.load_reward_model(key, "float32")
    spec = registry.spec(key)
    if spec.reward in heads.CLASSES:
        assert isinstance(model, heads.CLASSES[spec.reward])
    for prompt in PROMPTS:
        for chat in (scoring.ChatFormat("single-bos"), scoring.ChatFormat("authors")):
            sequences = scoring.word_sequences(tokenizer, prompt, WORDS, chat)
            cached = scoring.score(model, sequences, "cached", batch_size=4).values
            full = scoring.score(model, sequences, "full", batch_size=3).values
            own = scoring.score(model, sequences, "model", batch_size=4).values
            assert torch.allclose(cached, full, atol=1e-5) and torch.allclose(own, full, atol=1e-5)
            assert cached.std() > 0  # the candidates are told apart


def test_urm_paper_route_is_column_0_of_the_plain_ten_output_head(use_hub):
    model, tokenizer = models.load_reward_model("LxzGordon/URM-LLaMa-3.1-8B", "float32")
    assert type(model).__name__ == "LlamaForSequenceClassification" and model.config.num_labels == 10
    sequences = scoring.word_sequences(tokenizer, PROMPTS[0], WORDS)
    with torch.no_grad():
        column0 = torch.stack([model(input_ids=torch.tensor([s])).logits[0, 0] for s in sequences])
    assert torch.allclose(scoring.score(model, sequences).values, column0, atol=1e-5)
    gated, _ = models.load_reward_model("urm-llama-3.1-8b-gated", "float32")  # same weights, another reward
    assert torch.equal(gated.score.weight, model.score.weight)
    assert not torch.allclose(scoring.score(gated, sequences).values, column0, atol=1e-3)


def test_gated_heads_read_their_gate_at_the_end_of_the_prompt(use_hub):
    model, tokenizer = models.load_reward_model("RLHFlow/ArmoRM-Llama3-8B-v0.1", "float32")
    sequences = scoring.word_sequences(tokenizer, PROMPTS[0], WORDS)
    ids = sequences[0]
    gate = model.gate_position(ids)
    assert ids[gate : gate + 5] == list(heads.LLAMA3_GATING_IDS) and tokenizer.decode(ids[gate]) == "<|eot_id|>"
    assert tokenizer.decode(ids[gate + 5 :]).startswith(WORDS[0])  # the reply follows the pattern
    out = model(input_ids=torch.tensor([sequences[0]]))
    same_prompt = model(input_ids=torch.tensor([sequences[1]]))
    other = model(input_ids=torch.tensor([scoring.chat_ids(tokenizer, PROMPTS[1], WORDS[0])]))
    assert torch.equal(out.gating, same_prompt.gating) and not torch.allclose(out.gating, other.gating)
    settings = model.head_settings()  # the stand-in's config, like the public record, names no gating_* field
    assert settings["from_default"] == ["gating_hidden_dim", "gating_n_hidden", "gating_temperature"]


def test_published_gating_ids_are_those_of_the_real_llama3_tokenizer():
    tokenizer = models.load_tokenizer("llama-3-tokenizer")
    assert tuple(tokenizer.encode(heads.LLAMA3_GATING_TEXT, add_special_tokens=False)) == heads.LLAMA3_GATING_IDS
    with pytest.raises(ValueError, match="gating pattern .* does not occur"):
        heads.last_occurrence([1, 2, 3], heads.LLAMA3_GATING_IDS)


def _edit_checkpoint(folder, change):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata={"format": "pt"})


def test_a_checkpoint_that_differs_from_the_layout_on_record_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    key = "RLHFlow/ArmoRM-Llama3-8B-v0.1"
    folder = standins.write_model_standin(tmp_path, key, registry.spec(key).revision)
    _edit_checkpoint(folder, lambda state: state.pop("gating.layers.3.bias"))
    with pytest.raises(registry.ModelError, match="not in the checkpoint .*gating.layers.3.bias"):
        models.load_reward_model(key)
    _edit_checkpoint(
        folder,
        lambda state: state.update(
            {"gating.layers.3.bias": torch.zeros(19), "gating.layers.4.weight": torch.zeros(19, 19)}
        ),
    )
    with pytest.raises(registry.ModelError, match="does not use: gating.layers.4.weight"):
        models.load_reward_model(key)
    _edit_checkpoint(folder, lambda state: state.update({"regression_layer.weight": torch.zeros(5, 64)}))
    with pytest.raises(registry.ModelError, match="another shape"):
        models.load_reward_model(key)


def test_a_plain_head_with_another_number_of_outputs_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    key = "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2"
    folder = standins.write_model_standin(tmp_path, key, registry.spec(key).revision)
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}  # a two-output head
    (folder / "config.json").write_text(json.dumps(config))
    _edit_checkpoint(folder, lambda state: state.update({"score.weight": torch.zeros(2, 64)}))
    with pytest.raises(registry.ModelError, match="another shape"):  # num_labels=1 is always passed
        models.load_reward_model(key)


def test_a_model_not_loaded_as_asked_is_refused():
    model, _ = models.load_causal_lm("tiny-llama")
    models.check_loaded("tiny", model, "float32", "cpu", None)
    with pytest.raises(registry.ModelError, match="weights are torch.float32, not bfloat16"):
        models.check_loaded("tiny", model, "bfloat16", "cpu", None)
    with pytest.raises(registry.ModelError, match="on cpu, not cuda"):
        models.check_loaded("tiny", model, "float32", "cuda", None)
    with pytest.raises(registry.ModelError, match="attention is 'sdpa', not 'flash_attention_2'"):
        models.check_loaded("tiny", model, "float32", "cpu", "flash_attention_2")


def test_no_remote_code_anywhere():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sources = [*(root / "lib").rglob("*.py"), *(root / "notebooks").glob("*.py"), *(root / "benchmarks").glob("*.py")]
    assert not [str(p) for p in sources if "trust_remote_code=" in p.read_text()]
