"""Logit tracing on random-weight tiny models with real tokenizers (the paper profile's code paths:
Llama and Gemma 2 architectures, chat template vs raw prompt, the cached prefix, resumable runs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from rmbias import logprobs, models, prompts

PROMPTS = prompts.select(["greatest_ever_one", "worst_world_please", "good_time_single"])


@pytest.fixture(scope="module", params=["tiny-llama", "tiny-gemma2"])
def loaded(request):
    model, tokenizer = models.load_causal_lm(request.param)
    return request.param, model, tokenizer


def _reference(model, ids: list[int]) -> torch.Tensor:
    """Plain full forward pass: float32 log-softmax at every position."""
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)


def test_prompt_formats_chat_vs_raw_with_one_bos(loaded):
    _, _, tokenizer = loaded
    text = PROMPTS["text"][0]
    chat = logprobs.prompt_ids(tokenizer, text, instruct=True)
    raw = logprobs.prompt_ids(tokenizer, text, instruct=False)
    assert chat.count(tokenizer.bos_token_id) == 1 and raw.count(tokenizer.bos_token_id) == 1
    assert raw[0] == tokenizer.bos_token_id and tokenizer.decode(raw[1:]) == text
    # the chat ends with the assistant's header: the reply starts right after it
    rendered = tokenizer.decode(chat)
    assert text in rendered and rendered.rstrip().endswith(("assistant<|end_header_id|>", "<start_of_turn>model"))


def test_batched_next_token_logprobs_match_one_at_a_time(loaded):
    _, model, tokenizer = loaded
    sequences = [logprobs.prompt_ids(tokenizer, t, instruct=True) for t in PROMPTS["text"]]
    assert len({len(s) for s in sequences}) > 1  # different lengths: batching must not mix them up
    batched = logprobs.next_token_logprobs(model, sequences, batch_size=3)
    assert batched.dtype == torch.float32 and batched.shape[0] == 3
    for row, ids in zip(batched, sequences):
        assert torch.allclose(row, _reference(model, ids)[-1], atol=1e-5)
    assert torch.allclose(batched.exp().sum(dim=1), torch.ones(3), atol=1e-4)


def test_teacher_forcing_matches_the_full_pass_at_any_batch_size(loaded):
    _, model, tokenizer = loaded
    prefix = logprobs.prompt_ids(tokenizer, PROMPTS["text"][0], instruct=True)
    forms = ["freedom", " Friendship", "Love", "responsibility", " antidisestablishmentarianism"]
    encoded = tokenizer(forms, add_special_tokens=False)["input_ids"]
    assert any(len(e) == 1 for e in encoded) and any(len(e) > 2 for e in encoded)
    expected = []
    for cont in encoded:
        ref = _reference(model, prefix + cont)
        expected.append(sum(float(ref[len(prefix) - 1 + k, t]) for k, t in enumerate(cont)))
    for batch_size in (2, 64):
        got = logprobs.continuation_logprobs(model, prefix, encoded, batch_size=batch_size)
        np.testing.assert_allclose(got, expected, atol=1e-4)
    with pytest.raises(ValueError, match="empty continuation"):
        logprobs.continuation_logprobs(model, prefix, [[]])


def test_trace_is_resumable_and_recomputed_for_another_request(tmp_path, monkeypatch):
    first = logprobs.trace("tiny-llama", PROMPTS, tmp_path)
    assert first.logprobs.shape == (3, len(first.tokens)) and first.prompts == list(PROMPTS["key"])
    assert first.meta["prompt_format"] == "chat template + generation prompt"
    assert "What, in one word, is the greatest thing ever?" in first.meta["rendered_prompt"]

    def refuse(*args, **kwargs):
        raise AssertionError("a finished trace must not load the model again")

    monkeypatch.setattr(models, "load_causal_lm", refuse)
    again = logprobs.trace("tiny-llama", PROMPTS, tmp_path)
    np.testing.assert_array_equal(again.logprobs, first.logprobs)
    with pytest.raises(AssertionError, match="must not load"):  # other prompts: a new request
        logprobs.trace("tiny-llama", PROMPTS.head(2), tmp_path)


def test_a_trace_without_its_completion_mark_is_redone(tmp_path):
    first = logprobs.trace("tiny-gemma2", PROMPTS.head(1), tmp_path)
    meta = tmp_path / "tiny-gemma2" / "next_token.meta.json"
    meta.unlink()  # as if the run had been killed after writing the array
    np.save(tmp_path / "tiny-gemma2" / "next_token.npy", np.zeros((1, 3), dtype=np.float32))
    again = logprobs.trace("tiny-gemma2", PROMPTS.head(1), tmp_path)
    assert meta.is_file()
    np.testing.assert_allclose(again.logprobs, first.logprobs)


def test_by_string_keeps_the_best_of_duplicate_strings():
    item = logprobs.Trace(
        "m",
        "m",
        "llama",
        True,
        ["p"],
        np.array([[-1.0, -3.0, -0.5, -2.0]], dtype=np.float32),
        pd.DataFrame({"token_id": range(4), "token": ["a", "b", "a", ""]}),
        {},
    )
    assert item.by_string("p").to_dict() == {"a": -0.5, "b": -3.0}
    with pytest.raises(KeyError, match="was not traced"):
        item.column("q")


def test_shared_single_tokens_and_their_table():
    def fake(name, tokens, values):
        return logprobs.Trace(
            name,
            name,
            "llama",
            True,
            ["p"],
            np.array([values], dtype=np.float32),
            pd.DataFrame({"token_id": range(len(tokens)), "token": tokens}),
            {},
        )

    one = fake("one", ["love", "freedom", "duty"], [-1.0, -2.0, -3.0])
    two = fake("two", ["love", "duty", "x"], [-4.0, -5.0, -6.0])
    words = pd.DataFrame({"word": ["love", "freedom", "duty"], "category": ["Communion", "Agency", "Agency"]})
    shared = logprobs.shared_single_tokens([one, two], words)
    assert shared["word"].tolist() == ["love", "duty"]
    table = logprobs.single_token_table([one, two], shared)
    assert table.set_index(["model", "word"])["logprob"].to_dict() == {
        ("one", "love"): -1.0,
        ("one", "duty"): -3.0,
        ("two", "love"): -4.0,
        ("two", "duty"): -5.0,
    }


def test_word_logprob_adds_the_probabilities_of_its_forms():
    words = pd.DataFrame({"word": ["love"], "category": ["Communion"]})
    forms = logprobs.word_forms(words)
    assert forms["form"].tolist() == ["love", " love", "Love", " Love"]
    forced = pd.DataFrame(
        {
            "model": "m",
            "prompt": "p",
            "form": forms["form"],
            "n_tokens": [1, 1, 2, 3],
            "logprob": np.log([0.1, 0.2, 0.3, 0.05]),
        }
    )
    out = logprobs.word_logprobs(forced, forms)
    row = out.iloc[0]
    assert row["logprob"] == pytest.approx(np.log(0.65))
    assert row["best_variant"] == "Capital" and row["max_tokens"] == 3 and row["category"] == "Communion"


def test_force_words_chunks_per_prompt_and_resumes(tmp_path, monkeypatch):
    forms = ["love", " Freedom", "trustworthiness"]
    first = logprobs.force_words("tiny-gemma2", PROMPTS.head(2), forms, tmp_path, batch_size=2)
    assert len(first) == 6 and set(first["prompt"]) == set(PROMPTS["key"].head(2))
    trace = logprobs.trace("tiny-gemma2", PROMPTS.head(2), tmp_path)
    single = first[first["n_tokens"] == 1]
    for _, row in single.iterrows():  # one-token forms equal the traced distribution
        token = models.load_tokenizer("tiny-gemma2")(row["form"], add_special_tokens=False)["input_ids"][0]
        assert row["logprob"] == pytest.approx(trace.column(row["prompt"])[token], abs=1e-5)
    monkeypatch.setattr(models, "load_causal_lm", lambda *a, **k: (_ for _ in ()).throw(AssertionError("reloaded")))
    pd.testing.assert_frame_equal(logprobs.force_words("tiny-gemma2", PROMPTS.head(2), forms, tmp_path), first)
    with pytest.raises(ValueError, match="non-empty"):
        logprobs.force_words("tiny-gemma2", PROMPTS.head(1), ["love", ""], tmp_path)
