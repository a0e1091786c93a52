"""The paper profile's code paths at the published shapes, offline.

The configs in :mod:`rmbias.architectures` are checked against the published parameter counts
(whole models on the meta device), then random-weight stand-ins cut to two layers (real widths,
heads, vocabularies, rotary scaling, soft-capping, sliding windows) run what the paper profile
runs: logit tracing in float32 and bfloat16, teacher forcing against the cached prefix, the implicit
reward model across a 262k and a 128k vocabulary, the reward-model engine, a step of the paper's
reward-model recipe with the chapter 05 scorer, and a step of the word-injection SFT.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from rmbias import ablation, architectures, implicit, logprobs, models, preferences, prompts, registry, scoring, sft

PROMPTS = prompts.select(["greatest_ever_one", "worst_world_please"])
GEMMA, LLAMA, QWEN = "google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen2.5-3B-Instruct"


@pytest.mark.parametrize("name", list(architectures.ARCHITECTURES))
def test_published_configs_give_the_published_parameter_counts(name):
    arch = architectures.ARCHITECTURES[name]
    assert architectures.parameter_count(name) == arch.params
    # a reward model swaps the LM head for a one-output score head (tied heads cost nothing)
    hidden, vocab = arch.fields["hidden_size"], arch.fields["vocab_size"]
    head = 0 if arch.fields.get("tie_word_embeddings") else hidden * vocab
    assert architectures.parameter_count(name, reward=True) == arch.params - head + hidden


def test_every_paper_hub_model_has_its_architecture():
    hub = [s for s in registry.REGISTRY.values() if s.source == "hub"]
    assert {s.hf_id for s in hub} == set(architectures.ARCHITECTURE_OF)
    for spec in hub:
        model_type = architectures.architecture(spec.hf_id).fields["model_type"]
        assert model_type == {"gemma": "gemma2", "llama": "llama", "qwen": "qwen2"}[spec.family], spec.hf_id
    # Skywork-Reward-Llama-3.1-8B's card gives 7.5B: the 8.0B model less its untied LM head
    assert round(architectures.parameter_count("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", reward=True) / 1e9, 1) == 7.5
    assert 130 < architectures.weight_gib("meta-llama/Llama-3.3-70B-Instruct") < 132  # why 70B needs two GPUs
    with pytest.raises(registry.ModelError, match="no published architecture"):
        architectures.architecture("org/unknown-model")


@pytest.fixture(scope="module")
def stand_in_keys():
    """The stand-ins' keys and tokenizers, without their weights: {hf_id: (key, tokenizer)}."""
    return {
        hf_id: (key, models.load_tokenizer(key))
        for hf_id in (GEMMA, LLAMA, QWEN)
        for key in [architectures.stand_in(hf_id)]
    }


class TestLoadedStandIns:
    """The tests that share the three loaded stand-ins (about 7 GB in float32): they run together,
    and the models are freed before the tests that load models of their own."""

    @pytest.fixture(scope="class")
    def stand_ins(self, stand_in_keys):
        """Two-layer stand-ins, loaded in float32: {hf_id: (key, model, tokenizer)}."""
        return {
            hf_id: (key, models.load_causal_lm(key)[0], tokenizer) for hf_id, (key, tokenizer) in stand_in_keys.items()
        }

    @pytest.fixture(scope="class")
    def traces(self, stand_ins, tmp_path_factory):
        """Each stand-in's trace of the two prompts (float32): {hf_id: Trace}."""
        folder = tmp_path_factory.mktemp("traces")
        return {hf_id: logprobs.trace(key, PROMPTS, folder) for hf_id, (key, _, _) in stand_ins.items()}

    def test_a_stand_in_keeps_every_published_field_but_depth_and_a_borrowed_vocabulary(self, stand_ins):
        for hf_id, (key, model, tokenizer) in stand_ins.items():
            spec, fields = registry.spec(key), architectures.architecture(hf_id).fields
            assert spec.family == registry.family_of(hf_id) and spec.instruct
            config = model.config
            assert config.num_hidden_layers == 2
            for name in (
                "hidden_size",
                "intermediate_size",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "sliding_window",
                "final_logit_softcapping",
                "query_pre_attn_scalar",
                "tie_word_embeddings",
            ):
                if name in fields:
                    assert getattr(config, name) == fields[name], (hf_id, name)
            assert config.rope_parameters["rope_theta"] == fields["rope_theta"]
            assert config.vocab_size == max(fields["vocab_size"], len(tokenizer))
        gemma = stand_ins[GEMMA][1].config
        assert gemma.vocab_size == 262144 and gemma.layer_types == ["sliding_attention", "full_attention"]
        assert gemma._attn_implementation == "eager"
        assert stand_ins[LLAMA][1].config.rope_parameters["rope_type"] == "llama3"
        assert stand_ins[QWEN][1].config.vocab_size == 151936 > len(stand_ins[QWEN][2])

    def test_tracing_at_the_real_vocabularies(self, stand_ins, traces):
        for hf_id, (key, model, tokenizer) in stand_ins.items():
            trace = traces[hf_id]
            vocab = model.config.vocab_size
            assert trace.logprobs.shape == (2, vocab) and len(trace.tokens) == vocab
            assert trace.meta["vocabulary"] == vocab and trace.meta["tokenizer_size"] == len(tokenizer)
            # normalised up to the float32 log-softmax's own rounding: summing 262,144 terms in float32
            # misplaces the normaliser by about 5e-4 nats (the same for every token, so no rank moves)
            np.testing.assert_allclose(np.exp(trace.logprobs.astype(np.float64)).sum(axis=1), 1, atol=2e-3)
            # Qwen's output layer is wider than its tokenizer: the extra rows decode to nothing and are
            # never looked up by string
            extra = trace.tokens["token"].iloc[len(tokenizer) :]
            assert (extra == "").all() and len(extra) == max(0, vocab - len(tokenizer))
            assert len(trace.by_string(PROMPTS["key"][0])) <= len(tokenizer)
            # a pretrained model's raw prompt and an instruct model's chat, batched together
            text = PROMPTS["text"][0]
            both = [logprobs.prompt_ids(tokenizer, text, instruct=True), logprobs.prompt_ids(tokenizer, text, False)]
            batched = logprobs.next_token_logprobs(model, both, batch_size=2)
            assert torch.allclose(batched[0], torch.from_numpy(trace.column(PROMPTS["key"][0])), atol=1e-5)
            single = logprobs.next_token_logprobs(model, both[1:])[0]
            assert torch.allclose(batched[1], single, atol=1e-5)

    def test_teacher_forcing_and_bfloat16_at_the_real_shapes(self, stand_ins):
        for hf_id in (GEMMA, LLAMA):
            _, model, tokenizer = stand_ins[hf_id]
            prefix = logprobs.prompt_ids(tokenizer, PROMPTS["text"][0], instruct=True)
            encoded = tokenizer(["freedom", " Friendship", " antidisestablishmentarianism"], add_special_tokens=False)
            encoded = encoded["input_ids"]
            expected = []
            with torch.no_grad():
                for cont in encoded:
                    full = torch.log_softmax(model(torch.tensor([prefix + cont])).logits[0].float(), dim=-1)
                    expected.append(sum(float(full[len(prefix) - 1 + k, t]) for k, t in enumerate(cont)))
            got = logprobs.continuation_logprobs(model, prefix, encoded, batch_size=2)
            np.testing.assert_allclose(got, expected, atol=1e-4, err_msg=hf_id)
            # the paper's bf16 run: logits upcast before the softmax, rows still normalised
            half = logprobs.next_token_logprobs(model.to(torch.bfloat16), [prefix])
            model.float()
            assert half.dtype == torch.float32 and abs(float(half.exp().sum()) - 1) < 1e-3

    def test_the_implicit_reward_model_across_a_262k_and_a_128k_vocabulary(self, traces):
        p, q = traces[GEMMA], traces[LLAMA]
        key = PROMPTS["key"][0]
        table = implicit.shared_strings(p.by_string(key), q.by_string(key))
        assert 40_000 < len(table) < len(q.by_string(key)) and table["token"].is_unique
        rewards = implicit.implicit_rewards(table)
        assert np.isfinite(rewards["MWLR"]).all()
        top = implicit.top_bottom(rewards, "MWLR", n=15, drop_markup=True)
        assert len(top) == 30
        assert np.isfinite(implicit.word_score(rewards, "freedom", "MWLR"))


def test_the_reward_model_engine_at_the_real_shapes(stand_in_keys):
    for hf_id in (GEMMA, LLAMA):
        key = stand_in_keys[hf_id][0]
        model, tokenizer = models.load_reward_model(key)
        text = PROMPTS["text"][0]
        words = ["freedom", "love", "family", "success", "Power", " honesty"]
        sequences = scoring.word_sequences(tokenizer, text, words)
        cached, full = scoring.score_cached(model, sequences, 4), scoring.score_full(model, sequences, 3)
        assert torch.allclose(cached, full, atol=1e-4) and cached.std() > 0, hf_id
        ids = scoring.vocabulary_ids(tokenizer)[5000:5012]
        vocab = scoring.vocab_sequences(tokenizer, text, ids)
        assert torch.allclose(scoring.score_cached(model, vocab, 5), scoring.score_full(model, vocab, 4), atol=1e-4)


def test_a_step_of_the_paper_recipe_with_the_chapter_05_scorer(stand_in_keys, tmp_path):
    keys = [stand_in_keys[GEMMA][0], stand_in_keys[LLAMA][0]]
    candidates = ablation.big2_candidates({k: models.load_tokenizer(k) for k in keys})
    assert 1300 < len(candidates) < 1400  # the paper's three vocabularies share 1,365
    candidates = candidates.iloc[::40].reset_index(drop=True)
    paper = ablation.Ablation.paper()
    for key in keys:
        # the paper's recipe (LoRA r=32 on q/k/v/o of every layer, gradient checkpointing, accumulation,
        # two epochs, cosine schedule with warm-up), two pairs a step in float32 so it runs on a CPU
        grid = replace(
            paper,
            bases=(key,),
            sizes=(2,),
            seeds=(0,),
            score_every=1,
            batch_size=16,
            recipe=replace(
                paper.recipe,
                data=preferences.HH_HARMLESS_TEST,
                n_heldout=2,
                dtype="float32",
                per_device_batch=1,
                grad_accum=2,
                max_chars=200,
            ),
        )
        folder = ablation.train_run(grid, key, 2, 0, candidates, tmp_path / key)
        record = json.loads((folder / "model" / "training.json").read_text())
        assert record["training"]["optimizer_steps"] == 2 and record["config"]["gradient_checkpointing"]
        scores = ablation.read_scores(folder)
        assert sorted(scores["step"].unique()) == [0, 1, 2] and len(scores) == 3 * len(candidates)
        moved = scores.pivot(index="token", columns="step", values="score")
        # the first step is the warm-up's, at learning rate 0; the second moves the scores
        assert (moved[0] == moved[1]).all() and (moved[1] != moved[2]).all()
        adapter = json.loads((folder / "model" / "adapter_config.json").read_text())
        assert adapter["r"] == 32 and set(adapter["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
        assert adapter["layers_to_transform"] is None and "score" in adapter["modules_to_save"]


def test_a_step_of_word_injection_on_the_gemma_shape(stand_in_keys, tmp_path):
    key, tokenizer = stand_in_keys[GEMMA]
    words = sft.injected_words(tokenizer, n=2)
    config = sft.InjectConfig(max_steps=1, warmup_steps=0, per_device_batch=2, logging_steps=1)
    out = sft.train_injection(key, words, config, tmp_path / "sft", questions=sft.training_questions().head(1))
    record = sft.read_record(out)
    assert record["training"]["optimizer_steps"] == 1 and record["word_ids"] == [
        tokenizer.convert_tokens_to_ids(w) for w in words
    ]
    saved = json.loads((out / "config.json").read_text())  # the merged model, at the Gemma shape
    assert saved["vocab_size"] == 262144 and saved["num_hidden_layers"] == 2
