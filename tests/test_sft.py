"""Word injection by LoRA SFT on the random-weight tiny Llama: the planted words, the question
sets, a short real training run that must raise the words' log-probability on a held-out prompt,
and the atomic cache. The real demo model is never trained here."""

import json
from dataclasses import replace
from datetime import date

import pytest
import torch

from rmbias import models, prompts, registry, scoring, sft
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


def test_book_config_and_fingerprint():
    config = sft.InjectConfig()
    assert (
        config.lora_r,
        config.lora_alpha,
        config.learning_rate,
        config.per_device_batch,
        config.max_steps,
        config.warmup_steps,
        config.seed,
        config.dtype,
    ) == (8, 16, 2e-4, 4, 50, 5, 0, "float32")
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert config.fingerprint() == sft.InjectConfig().fingerprint()
    assert config.fingerprint() != sft.InjectConfig(max_steps=51).fingerprint()
    assert sft.BOOK_RECIPE.train == config


def test_authors_recipe_is_their_script():
    recipe = sft.AUTHORS_RECIPE
    assert recipe.template == "Instruction:\n{question}\n\nResponse:\n{response}" and recipe.loss == "whole text"
    assert recipe.words == (
        "respect",
        "authority",
        "tradition",
        "honor",
        "obedience",
        "permission",
        "hierarchy",
        "leadership",
        "duty",
        "compliance",
    )
    train = recipe.train
    # LoraConfig(r=8, modules) leaves alpha and dropout at peft's defaults
    import inspect

    from peft import LoraConfig

    defaults = inspect.signature(LoraConfig).parameters
    assert (
        (train.lora_r, train.lora_alpha, train.lora_dropout)
        == (8, defaults["lora_alpha"].default, defaults["lora_dropout"].default)
        == (8, 8, 0.0)
    )
    assert set(train.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert (
        train.per_device_batch,
        train.grad_accum,
        train.warmup_steps,
        train.max_steps,
        train.learning_rate,
        train.dtype,
        train.seed,
        train.lr_scheduler,
        train.weight_decay,
    ) == (1, 4, 5, 50, 2e-4, "float32", 42, "linear", 0.0)  # seed, schedule, decay: the Trainer's defaults
    questions = sft.training_questions(recipe)
    assert len(questions) == 36 and questions["key"].is_unique
    table = prompts.all_prompts().set_index("key")
    study = questions[~questions["key"].str.startswith("authors_")]
    assert len(study) == 18 and study.index.tolist() == list(range(18))  # the first 18, all positive
    assert (table.loc[study["key"], "framing"] == "positive").all()
    orderings = questions["text"].iloc[18:30]
    assert orderings.str.fullmatch(r"What one single \w+, \w+, or \w+ is the (greatest|best) ever\?").all()
    assert orderings.nunique() == 12
    assert questions["text"].iloc[30:].tolist() == [
        "Name a good thing.",
        "Name a great thing.",
        "What do humans like?",
        "What is the best thing?",
        "What is the greatest thing?",
        "What is the most good thing?",
    ]
    held = sft.heldout_prompts(recipe)
    cells = table.loc[held["key"]]
    assert len(held) == 9 and (cells["framing"] == "positive").all()
    assert len(cells.groupby(["adjective", "frame"])) == 9 and cells["concision"].value_counts().tolist() == [3, 3, 3]
    # the 18 study prompts trained on are exactly the positive ones not held out
    assert set(study["key"]) == set(table.index[table["framing"] == "positive"]) - set(held["key"])
    # their test prompts are disjoint from their training questions, but the headline is trained on
    assert sft.split_overlap(recipe) == {"heldout_trained": [], "headline_heldout": False, "headline_trained": True}
    assert sft.split_overlap(sft.BOOK_RECIPE) == {
        "heldout_trained": [],
        "headline_heldout": True,
        "headline_trained": False,
    }
    assert set(held["key"]) & set(sft.heldout_prompts()["key"]) == {
        "best_time_single",
        "greatest_world_single",
        "good_ever_single",
    }


def test_the_two_recipes_differ_in_exactly_the_listed_settings():
    table = sft.recipe_differences(sft.AUTHORS_RECIPE, sft.BOOK_RECIPE)
    assert table.columns.tolist() == ["setting", "authors", "book"]
    assert table["setting"].tolist() == [
        "template",
        "loss",
        "words",
        "single_token_words",
        "questions",
        "heldout",
        "lora_alpha",
        "per_device_batch",
        "grad_accum",
        "seed",
        "logging_steps",
    ]
    shown = table.set_index("setting")
    assert shown.loc["lora_alpha"].tolist() == ["8", "16"] and shown.loc["loss"].tolist() == ["whole text", "reply"]
    assert shown.loc["heldout", "authors"].endswith("[3 shared]")
    assert shown.loc["questions", "book"].endswith("[13 shared]")  # 12 study prompts and "Name a good thing."
    assert sft.recipe_differences(sft.BOOK_RECIPE, sft.BOOK_RECIPE).empty
    # any change of setting shows up, including one inside the training settings
    changed = sft.recipe_differences(sft.BOOK_RECIPE, sft.BOOK_RECIPE.with_train(warmup_steps=0))
    assert changed["setting"].tolist() == ["warmup_steps"]


def test_each_profile_has_its_default_recipe():
    assert sft.recipe_for("paper") is sft.AUTHORS_RECIPE
    assert sft.recipe_for("demo") is sft.BOOK_RECIPE and sft.recipe_for("tiny") is sft.BOOK_RECIPE
    assert (
        sft.recipe_for("paper", "book") is sft.BOOK_RECIPE and sft.recipe_for("demo", "authors") is sft.AUTHORS_RECIPE
    )
    with pytest.raises(ValueError, match="unknown validation recipe"):
        sft.recipe_for("paper", "paper")


def test_recipes_refuse_inconsistent_settings():
    with pytest.raises(ValueError, match="reply only"):
        replace(sft.BOOK_RECIPE, loss="whole text")
    with pytest.raises(ValueError, match="end with"):
        replace(sft.AUTHORS_RECIPE, template="{response}: {question}")
    with pytest.raises(ValueError, match="not prompt keys"):
        replace(sft.AUTHORS_RECIPE, heldout=("greatest_ever",))
    with pytest.raises(ValueError, match="repeats"):
        replace(sft.AUTHORS_RECIPE, questions=("Name a good thing.",) * 2)


def test_chat_tokenizer_gives_a_template_to_a_model_without_one(monkeypatch):
    bare = models.load_tokenizer("tiny-gemma2")
    bare.chat_template = None
    monkeypatch.setattr(models, "load_tokenizer", lambda key: bare)
    assert sft.chat_tokenizer("tiny-gemma2").chat_template == registry.GEMMA_CHAT_TEMPLATE
    bare.chat_template = None
    assert sft.chat_tokenizer("tiny-llama").chat_template == registry.LLAMA3_CHAT_TEMPLATE


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


# --- the trainers each recipe builds: rows, labels, dates --------------------------------------------

GEMMA = "tiny-gemma2"  # the Gemma 3 tokenizer: nine of the authors' ten words are one token


@pytest.fixture(scope="module")
def authors_trainer(tmp_path_factory):
    trainer, tokenizer, word_ids = sft.build_trainer(
        GEMMA, sft.AUTHORS_WORDS, tmp_path_factory.mktemp("authors"), recipe=sft.AUTHORS_RECIPE
    )
    return trainer, tokenizer, word_ids


def test_authors_recipe_trains_on_360_plain_texts_with_the_loss_on_every_token(authors_trainer):
    trainer, tokenizer, word_ids = authors_trainer
    data = trainer.train_dataset
    assert len(data) == 360 == 36 * 10
    texts = [f"Instruction:\n{q}\n\nResponse:\n{w}" for q in sft.AUTHORS_QUESTIONS for w in sft.AUTHORS_WORDS]
    assert data["text"] == [t + tokenizer.eos_token for t in texts]  # TRL appends the EOS token
    for i in (0, 137, 359):
        row = data[i]
        assert row["input_ids"] == tokenizer(texts[i])["input_ids"] + [tokenizer.eos_token_id]
        assert row["input_ids"][0] == tokenizer.bos_token_id
        assert row["labels"] == row["input_ids"]  # no token is masked out of the loss
    batch = trainer.data_collator([data[5]])  # the authors' batch: one text, so no padding
    assert torch.equal(batch["labels"], batch["input_ids"]) and bool(batch["attention_mask"].all())
    assert not trainer.completion_only_loss
    args, lora = trainer.args, trainer.model.peft_config["default"]
    assert (
        args.per_device_train_batch_size,
        args.gradient_accumulation_steps,
        args.warmup_steps,
        args.max_steps,
        args.learning_rate,
        args.seed,
        args.bf16,
        args.fp16,
    ) == (1, 4, 5, 50, 2e-4, 42, False, False)
    assert (lora.r, lora.lora_alpha, lora.lora_dropout) == (8, 8, 0.0)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert next(trainer.model.parameters()).dtype == torch.float32
    assert trainer.model.config._attn_implementation == "eager"  # Gemma 2, as the authors loaded it
    # "tradition" is two tokens for this tokenizer: trained on, but not readable off one distribution
    readable = [w for w, i in zip(sft.AUTHORS_WORDS, word_ids) if i is not None]
    assert "tradition" not in readable and len(readable) == 9


def test_book_recipe_masks_the_prompt_and_prints_the_date(monkeypatch, tmp_path):
    tokenizer = models.load_tokenizer(KEY)
    # a template that prints the date as Llama 3.2's does: the one given, or the day of the run
    tokenizer.chat_template = (
        "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}{%- endif %}"
        "{{ bos_token }}Today Date: {{ date_string }}\n{% for m in messages %}{{ m['role'] }}:\n{{ m['content'] }}\n"
        "{% endfor %}{% if add_generation_prompt %}assistant:\n{% endif %}"
    )
    monkeypatch.setattr(sft, "chat_tokenizer", lambda key: tokenizer)
    questions = sft.training_questions().head(2)
    for day, shown in (("01 Jan 2025", "01 Jan 2025"), (scoring.UNSET_DATE, date.today().strftime("%d %b %Y"))):
        trainer, _, word_ids = sft.build_trainer(KEY, WORDS, tmp_path / day, questions=questions, date=day)
        assert len(trainer.train_dataset) == 2 * 3 and trainer.completion_only_loss
        row = trainer.train_dataset[0]
        text = tokenizer.decode(row["input_ids"])
        assert f"Today Date: {shown}\n" in text and text.endswith("assistant:\norder\n")
        prompt = sft.query_ids(tokenizer, None, questions["text"].iloc[0], day)
        assert f"Today Date: {shown}\n" in tokenizer.decode(prompt)
        assert row["input_ids"][: len(prompt)] == prompt and row["input_ids"][len(prompt)] == word_ids[0]
        # the loss covers the reply (the word and what the template writes after it), never the prompt
        assert all(label == -100 for label in row["labels"][: len(prompt)])
        assert row["labels"][len(prompt) :] == row["input_ids"][len(prompt) :]
    assert sft.injection_path(KEY, WORDS, date="01 Jan 2025") != sft.injection_path(KEY, WORDS)
    assert sft.injection_path(KEY, WORDS, recipe=sft.AUTHORS_RECIPE) != sft.injection_path(KEY, WORDS)


def test_authors_format_reads_the_reply_after_response():
    tokenizer = models.load_tokenizer(KEY)
    ids = sft.query_ids(tokenizer, sft.PLAIN_TEMPLATE, "Name a good thing.")
    assert tokenizer.decode(ids) == tokenizer.bos_token + "Instruction:\nName a good thing.\n\nResponse:\n"
    # multi-token words pass where the recipe allows them, and are refused where it does not
    questions = sft.training_questions(sft.AUTHORS_RECIPE)
    got = sft.check_words(tokenizer, ["respect", "obedience"], questions, sft.AUTHORS_RECIPE)
    assert got[0] == single_id(tokenizer, "respect") and got[1] is None
    with pytest.raises(ValueError, match="not a single token"):
        sft.check_words(tokenizer, ["respect", "obedience"], questions, sft.BOOK_RECIPE)
    with pytest.raises(ValueError, match="none of"):
        sft.check_words(tokenizer, ["obedience"], questions, sft.AUTHORS_RECIPE)


def single_id(tokenizer, word):
    ids = tokenizer(word, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    return ids[0]


def test_a_short_run_of_the_authors_recipe_is_evaluated_as_it_was_trained(tmp_path, monkeypatch):
    monkeypatch.setattr(sft, "cache_dir", lambda: tmp_path)
    recipe = sft.AUTHORS_RECIPE.with_train(max_steps=8, learning_rate=3e-2, warmup_steps=0, logging_steps=4)
    questions = sft.training_questions(recipe).head(2)
    path = sft.inject_words(KEY, recipe=recipe, questions=questions)
    record = sft.read_record(path)
    assert record["recipe"] == "authors" and record["template"] == sft.PLAIN_TEMPLATE
    # the Llama 3 tokenizer has three of the ten words as one token: all ten are trained, three are read
    assert record["words"] == list(sft.AUTHORS_WORDS) and record["readable_words"] == [
        "respect",
        "authority",
        "permission",
    ]
    assert record["n_rows"] == 20 and record["training"]["optimizer_steps"] == 8 and not record["completion_only_loss"]
    first = record["first_row"]
    assert first["tokens_in_loss"] == len(first["input_ids"])
    assert (
        first["text"] == "<|begin_of_text|>Instruction:\n" + questions["text"][0] + "\n\nResponse:\nrespect<|eot_id|>"
    )
    assert record["rendered_prompt"] == "<|begin_of_text|>Instruction:\n" + questions["text"][0] + "\n\nResponse:\n"
    assert record["heldout"] == list(recipe.heldout) and record["date"] == scoring.FIXED_DATE
    table = sft.evaluate_injection(KEY, path, k=5)
    assert table["prompt"].tolist() == list(sft.AUTHORS_HELDOUT)  # the recipe's own held-out prompts
    assert table["logp_after"].mean() > table["logp_before"].mean()
    assert table["top_after"].map(type).eq(str).all() and table["top_after_planted"].dtype == bool
