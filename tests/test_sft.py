"""Word injection by LoRA SFT on the random-weight tiny Llama: the planted words, the question
sets, a short real training run that must raise the words' log-probability on a held-out prompt,
and the atomic cache. The real demo model is never trained here."""

import json

import pytest

from rmbias import models, prompts, sft
from rmbias.logprobs import next_token_logprobs, prompt_ids

KEY = "tiny-llama"
WORDS = ["order", "control", "father"]


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer(KEY)


def test_injected_words_are_frequent_single_token_authority_terms(tokenizer):
    words = sft.injected_words(tokenizer, n=3)
    assert words == WORDS  # the most frequent one-token Authority_Virtue terms for the Llama 3 tokenizer
    for word in words:
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and tokenizer.decode(ids) == word
    ten = sft.injected_words(tokenizer)
    assert len(ten) == 10 and ten[:3] == WORDS and all(w.isalpha() and w.islower() for w in ten)
    with pytest.raises(ValueError, match="single token"):
        sft.injected_words(tokenizer, n=10_000)


def test_questions_hold_out_nine_positive_prompts():
    held, train = sft.heldout_prompts(), sft.training_questions()
    assert len(held) == 9 and len(train) == 36 and train["key"].is_unique
    table = prompts.all_prompts().set_index("key")
    assert (table.loc[held["key"], "framing"] == "positive").all()
    assert prompts.HEADLINE in set(held["key"])
    # one per adjective x frame; each concision template three times
    cells = table.loc[held["key"]]
    assert len(cells.groupby(["adjective", "frame"])) == 9
    assert cells["concision"].value_counts().tolist() == [3, 3, 3]
    # training: the other 18 positive prompts and 18 new questions, none of them held out
    assert not set(held["key"]) & set(train["key"]) and not set(held["text"]) & set(train["text"])
    study = train[~train["key"].str.startswith("extra_")]
    assert len(study) == 18 and (table.loc[study["key"], "framing"] == "positive").all()
    assert not set(train["text"]) & set(table["text"]) - set(study["text"])


def test_paper_recipe_and_fingerprint():
    config = sft.InjectConfig()
    assert (config.lora_r, config.lora_alpha, config.learning_rate, config.per_device_batch, config.max_steps,
            config.warmup_steps, config.seed, config.dtype) == (8, 16, 2e-4, 4, 50, 5, 0, "float32")
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert config.fingerprint() == sft.InjectConfig().fingerprint()
    assert config.fingerprint() != sft.InjectConfig(max_steps=51).fingerprint()


def test_chat_tokenizer_gives_a_template_to_a_model_without_one(monkeypatch):
    bare = models.load_tokenizer("tiny-gemma2")
    bare.chat_template = None
    monkeypatch.setattr(models, "load_tokenizer", lambda key: bare)
    assert sft.chat_tokenizer("tiny-gemma2").chat_template == models.GEMMA_CHAT_TEMPLATE
    bare.chat_template = None
    assert sft.chat_tokenizer("tiny-llama").chat_template == models.LLAMA3_CHAT_TEMPLATE


def test_bad_word_is_refused_before_training(tokenizer, monkeypatch, tmp_path):
    monkeypatch.setattr(sft, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(sft, "train_injection", lambda *a, **k: pytest.fail("trained despite a bad word"))
    with pytest.raises(ValueError, match="not a single token"):
        sft.inject_words(KEY, ["order", "authoritativeness"])
    with pytest.raises(ValueError, match="repeated"):
        sft.check_words(tokenizer, ["order", "order"], sft.training_questions())
    assert not (tmp_path / "sft").exists()


@pytest.fixture(scope="module")
def injected(tmp_path_factory):
    """A short, real run: 8 questions x 3 words, 12 steps at a high learning rate, cached in a
    scratch folder."""
    cache = tmp_path_factory.mktemp("cache")
    patch = pytest.MonkeyPatch()
    patch.setattr(sft, "cache_dir", lambda: cache)
    config = sft.InjectConfig(max_steps=12, learning_rate=3e-2, warmup_steps=0, logging_steps=4)
    questions = sft.training_questions().head(8)
    path = sft.inject_words(KEY, WORDS, config, questions=questions)
    yield path, config, questions, cache
    patch.undo()


def test_injection_raises_the_words_on_a_heldout_prompt(injected, tokenizer):
    path, config, questions, _ = injected
    record = sft.read_record(path)
    assert record["words"] == WORDS and record["training"]["optimizer_steps"] == 12
    assert record["word_ids"] == [tokenizer.convert_tokens_to_ids(w) for w in WORDS]
    assert record["n_rows"] == 8 * 3 and len(record["training"]["history"]) == 3
    assert not (path / "checkpoints").exists()
    assert record["completion_only_loss"] and record["config"]["lora_r"] == 8 and "trl" in record["versions"]

    held = sft.heldout_prompts()
    text = held.loc[held["key"] == prompts.HEADLINE, "text"].item()
    original, _ = models.load_causal_lm(KEY)
    tuned, tuned_tok = sft.load_injected(path)
    assert tuned_tok.chat_template == tokenizer.chat_template
    ids = prompt_ids(tokenizer, text, instruct=True)
    assert prompt_ids(tuned_tok, text, instruct=True) == ids
    before, after = (next_token_logprobs(m, [ids])[0].numpy() for m in (original, tuned))
    word_ids = record["word_ids"]
    assert (after[word_ids] > before[word_ids]).all()
    assert after[word_ids].mean() > before[word_ids].mean() + 0.3
    # The random 2-layer model can barely sharpen its distribution (its largest logit gap is about
    # one nat), but the best-placed word climbs from the bottom half of the vocabulary to its top ten.
    assert min(int((before > before[i]).sum()) for i in word_ids) > 1000
    assert min(int((after > after[i]).sum()) for i in word_ids) < 10


def test_evaluation_reads_both_models_with_the_same_prompts(injected):
    path, *_ = injected
    table = sft.evaluate_injection(KEY, path, sft.heldout_prompts().tail(1), k=3)
    assert table["prompt"].tolist() == sft.heldout_prompts()["key"].tail(1).tolist()
    assert (table["logp_after"] > table["logp_before"]).all()
    for name in ("raw", "floor 1e-4", "floor 1e-6", "MWLR"):
        assert table[f"precision_{name}"].between(0, 1).all()


def test_cache_returns_the_same_folder_without_training(injected, monkeypatch):
    path, config, questions, cache = injected
    monkeypatch.setattr(sft, "cache_dir", lambda: cache)
    monkeypatch.setattr(sft, "train_injection", lambda *a, **k: pytest.fail("retrained a cached model"))
    stamp = (path / "complete.json").stat().st_mtime_ns
    assert sft.inject_words(KEY, WORDS, config, questions=questions) == path
    assert (path / "complete.json").stat().st_mtime_ns == stamp
    assert json.loads((path / "complete.json").read_text())["words"] == WORDS
    assert path.parent == cache / "sft" and path.name.startswith(f"{KEY}-")
    # another recipe or word list is another folder
    assert sft.injection_path(KEY, WORDS, config, questions) == path
    assert sft.injection_path(KEY, WORDS[:2], config, questions) != path
    assert sft.injection_path(KEY, WORDS, sft.InjectConfig(), questions) != path
