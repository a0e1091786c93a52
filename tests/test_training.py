"""Reward-model training on the random-weight tiny models: pad pooling, BOS, a few training
steps, the saved folder, and the atomic cache. The real demo models are never trained here."""

import dataclasses
import json

import pytest
import torch

from rmbias import models, training
from rmbias.preferences import to_pair
from rmbias.scoring import UNSET_DATE, ChatFormat, score_full

DIALOGUES = [
    ("Name a colour.", "Blue.", "I will not say."),
    ("How do I boil an egg?", "Put it in boiling water for eight minutes.", "Eggs are bad."),
    ("What is two plus two?", "Four.", "Five, I think, or maybe six."),
    ("Suggest a name for a cat.", "Whiskers.", "No."),
    ("Is the sea salty?", "Yes, it holds dissolved salts.", "Only on Tuesdays."),
    ("Say hello in French.", "Bonjour.", "Hallo."),
    ("What is the capital of Italy?", "Rome.", "Milan, the capital of fashion."),
    ("Recommend a book.", "Middlemarch, by George Eliot.", "Books are boring."),
]


def make_pairs():
    pairs = []
    for i, (question, good, bad) in enumerate(DIALOGUES):
        history = "\n\nHuman: Hello\n\nAssistant: Hi, how can I help?" if i % 2 else ""
        pairs.append(
            to_pair(
                f"{history}\n\nHuman: {question}\n\nAssistant: {good}",
                f"{history}\n\nHuman: {question}\n\nAssistant: {bad}",
                index=i,
            )
        )
    return pairs


def tiny_config(**changes):
    return training.TrainConfig.demo(
        **{
            "per_device_batch": 2,
            "grad_accum": 1,
            "max_steps": 3,
            "learning_rate": 5e-3,
            "lora_top_layers": 1,
            "logging_steps": 1,
            **changes,
        }
    )


def padded(tokenizer, chats, pad_id):
    rows = [training.encode_chat(tokenizer, chat) for chat in chats]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    return rows, ids, mask


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_chats_are_tokenised_with_exactly_one_bos_as_trl_does(key):
    from trl.data_utils import _tokenize

    tokenizer = models.load_tokenizer(key)
    for pair in make_pairs():
        ids = training.encode_chat(tokenizer, pair["chosen"])
        assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
        training.check_chat_ids(tokenizer, pair["chosen"], ids)
        assert _tokenize(tokenizer, pair["chosen"])["input_ids"] == ids  # RewardTrainer's own route
    with pytest.raises(ValueError, match="two BOS"):
        training.check_chat_ids(tokenizer, pair["chosen"], [tokenizer.bos_token_id] + ids)


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_transformers_pools_the_last_real_token_with_the_safe_pad(key):
    torch.manual_seed(0)
    model, tokenizer = models.load_reward_model(key)
    chats = [p[side] for p in make_pairs() for side in ("chosen", "rejected")]
    pad = training.set_safe_pad_token(model, tokenizer, chats)
    pad_id = tokenizer.pad_token_id
    assert model.config.pad_token_id == pad_id and pad not in (tokenizer.eos_token, tokenizer.bos_token)
    rows, ids, mask = padded(tokenizer, chats, pad_id)
    assert all(pad_id not in row for row in rows)
    # The position transformers' sequence-classification head pools: the rightmost non-pad token.
    pooled = ((ids != pad_id).long() * torch.arange(ids.shape[1])).argmax(-1)
    assert torch.equal(pooled, mask.sum(1) - 1)
    with torch.no_grad():
        head = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert torch.allclose(head, score_full(model, rows), atol=1e-5)


def test_the_pad_trap_is_real_and_is_avoided():
    """With pad equal to the end-of-turn token that ends the chat (SmolLM2's case), transformers pools
    the wrong position; choose_pad_token replaces such a pad."""
    torch.manual_seed(0)
    model, tokenizer = models.load_reward_model("tiny-llama")
    chats = [p["chosen"] for p in make_pairs()]
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    rows, ids, mask = padded(tokenizer, chats, eot)
    assert all(row[-1] == eot for row in rows)  # the Llama 3 template ends every chat with it
    model.config.pad_token_id = eot
    with torch.no_grad():
        trapped = model(input_ids=ids, attention_mask=mask).logits[:, 0]
    assert not torch.allclose(trapped, score_full(model, rows), atol=1e-5)
    tokenizer.pad_token = "<|eot_id|>"
    chosen = training.choose_pad_token(tokenizer, chats)
    assert tokenizer.convert_tokens_to_ids(chosen) not in {t for row in rows for t in row}


def test_pairwise_accuracy_counts_chosen_above_rejected():
    torch.manual_seed(0)
    model, tokenizer = models.load_reward_model("tiny-llama")
    pairs = make_pairs()
    chosen, rejected = training.pair_scores(model, tokenizer, pairs, batch_size=3)
    accuracy = training.pairwise_accuracy(model, tokenizer, pairs)
    assert accuracy == pytest.approx(float((chosen > rejected).float().mean()))
    swapped = [{**p, "chosen": p["rejected"], "rejected": p["chosen"]} for p in pairs]
    assert training.pairwise_accuracy(model, tokenizer, swapped) == pytest.approx(1 - accuracy)
    low, high = training.accuracy_interval(6, 8)
    assert 0 < low < 0.75 < high < 1


def test_paper_recipe_matches_section_6_and_the_authors_scripts():
    paper = training.TrainConfig.paper()
    assert (paper.lora_r, paper.lora_alpha, paper.learning_rate, paper.lr_scheduler) == (32, 64, 1e-5, "cosine")
    assert (paper.warmup_ratio, paper.effective_batch, paper.epochs, paper.max_length) == (0.03, 16, 2.0, 1024)
    assert paper.dtype == "bfloat16" and set(paper.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert paper.lora_top_layers is None
    # Generalizable-Reward-Model @ 5b06789: run_reward_models_train.py defaults and load_datasets.py
    assert (paper.lora_dropout, paper.disable_dropout, paper.max_grad_norm, paper.optimizer) == (
        0.05,
        False,
        5.0,
        "adamw_hf",
    )
    assert (paper.over_length, paper.selection, paper.heldout, paper.summarize_prefix, paper.keep_irregular) == (
        "truncate",
        "every-kth",
        "authors",
        True,
        True,
    )
    assert paper.chat == ChatFormat("authors", UNSET_DATE)
    assert training.TrainConfig.demo().fingerprint() != paper.fingerprint()
    with pytest.raises(ValueError, match="over_length"):
        training.TrainConfig(over_length="cut")


def test_the_demo_recipe_keeps_its_cache_key():
    """Fields added later count in a recipe's key only where they differ from their defaults: the
    paper recipe's fields leave the demo recipe's key alone; split_by_length, which the demo recipe
    sets, gives it a key of its own (the same loss, other rounding), and without it the old key."""
    demo = training.TrainConfig.demo()
    assert demo.split_by_length
    assert training.TrainConfig.demo(split_by_length=False).fingerprint() == "efb65995bc"  # the earlier key
    assert demo.fingerprint() != "efb65995bc"
    assert set(demo.key_dict()) == set(dataclasses.asdict(demo)) - set(training.PAPER_FIELDS) | {"split_by_length"}
    assert "max_grad_norm" in training.TrainConfig.demo(max_grad_norm=5.0).key_dict()
    assert not training.TrainConfig.paper().split_by_length  # a GPU pays little for padding


def _split_cost(lengths, groups, overhead):
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


def test_length_groups_are_the_cheapest_split_of_the_sorted_rows():
    import itertools
    import random

    assert training.length_groups([5, 100, 5, 5], overhead=0) == [[0, 2, 3], [1]]
    assert training.length_groups([5, 100, 5, 5], overhead=1000) == [[0, 1, 2, 3]]
    assert training.length_groups([7], overhead=64) == [[0]]
    rng = random.Random(0)
    for _ in range(30):
        lengths = [rng.randint(20, 280) for _ in range(rng.randint(1, 9))]
        overhead = rng.choice([0, 16, 64, 256])
        groups = training.length_groups(lengths, overhead)
        assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # every row once
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        cheapest = min(
            _split_cost(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], overhead)
            for k in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), k)
        )
        assert _split_cost(lengths, groups, overhead) == cheapest


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_a_batch_run_in_length_groups_has_the_padded_batchs_rewards_and_gradients(key):
    torch.manual_seed(0)
    model, tokenizer = models.load_reward_model(key)
    chats = [p[side] for p in make_pairs() for side in ("chosen", "rejected")]
    training.set_safe_pad_token(model, tokenizer, chats)
    rows, ids, mask = padded(tokenizer, chats, tokenizer.pad_token_id)
    assert len({len(r) for r in rows}) > 3  # rows of several lengths, so padding is there to save
    passes = []
    hook = model.register_forward_pre_hook(
        lambda module, args, kwargs: passes.append(kwargs["input_ids"].shape), with_kwargs=True
    )
    grads = []
    for forward in (model, training.LengthGroupedForward(model, overhead=0)):
        model.zero_grad()
        logits = forward(input_ids=ids, attention_mask=mask).logits
        (logits[: len(rows) // 2] - logits[len(rows) // 2 :]).sigmoid().log().mean().backward()
        grads.append((logits.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    hook.remove()
    (padded_logits, padded_grads), (grouped_logits, grouped_grads) = grads
    assert torch.allclose(grouped_logits, padded_logits, atol=1e-5)
    assert len(grouped_grads) == len(padded_grads) > 0
    assert all(torch.allclose(g, p, atol=1e-5) for g, p in zip(grouped_grads, padded_grads))
    assert passes[0] == ids.shape and len(passes) > 2
    assert sum(a * b for a, b in passes[1:]) == sum(len(r) for r in rows)  # no padded position computed


def test_training_split_by_length_follows_the_padded_run(tmp_path, monkeypatch):
    """The demo recipe's split_by_length reaches the trainer: its passes carry no padding, and the
    losses are the padded run's."""
    from transformers import TrainerCallback

    monkeypatch.setattr(training, "PASS_OVERHEAD_POSITIONS", 0)  # split even the tiny chats
    passes = []

    class Watch(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            model.register_forward_pre_hook(
                lambda m, a, kw: passes.append(kw["attention_mask"].min().item()), with_kwargs=True
            )

    pairs = make_pairs()
    losses = {}
    for split in (False, True):
        passes.clear()
        out = training.train_reward_model(
            "tiny-llama", pairs[:6], tiny_config(split_by_length=split), tmp_path / str(split), callbacks=[Watch()]
        )
        losses[split] = [entry["loss"] for entry in training.read_record(out)["training"]["history"]]
        if split:
            assert len(passes) > 3 and min(passes) == 1  # more passes than steps, none with a padded position
        else:
            assert len(passes) == 3 and min(passes) == 0
    assert len(losses[True]) == 3
    assert losses[True] == pytest.approx(losses[False], abs=1e-4)


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_the_authors_tokenisation_has_two_bos_and_is_checked_as_such(key):
    tokenizer = models.load_tokenizer(key)
    chat = ChatFormat("authors", UNSET_DATE)
    pair = make_pairs()[1]
    ids = training.encode_chat(tokenizer, pair["chosen"], chat)
    rendered = tokenizer.apply_chat_template(pair["chosen"], tokenize=False)
    assert ids == tokenizer(rendered)["input_ids"]  # the authors' route: render, then tokenise again
    assert ids[:2] == [tokenizer.bos_token_id] * 2
    training.check_chat_ids(tokenizer, pair["chosen"], ids, chat)
    with pytest.raises(ValueError, match="two BOS"):
        training.check_chat_ids(tokenizer, pair["chosen"], ids)  # the book's single-BOS route refuses it
    with pytest.raises(ValueError, match="BOS tokens"):
        training.check_chat_ids(tokenizer, pair["chosen"], ids[1:], chat)  # and the authors' wants both


def test_a_pair_quoting_the_pad_token_is_dropped_and_counted():
    tokenizer = models.load_tokenizer("tiny-gemma2")
    assert tokenizer.pad_token == "<pad>"
    pairs = make_pairs()
    quoting = to_pair(
        "\n\nHuman: How do I pad a batch?\n\nAssistant: Append <pad> tokens.",
        "\n\nHuman: How do I pad a batch?\n\nAssistant: You cannot.",
        index=99,
    )
    encoded, counts = training._encode_pairs(tokenizer, pairs + [quoting], 256)
    assert counts["dropped_pad_literal"] == 1 and len(encoded["chosen_ids"]) == len(pairs)


def test_over_long_pairs_are_truncated_as_the_authors_did_or_dropped():
    tokenizer = models.load_tokenizer("tiny-llama")
    chat = ChatFormat("authors", UNSET_DATE)
    pairs = make_pairs()
    lengths = [len(training.encode_chat(tokenizer, p["chosen"], chat)) for p in pairs]
    cut = sorted(lengths)[len(lengths) // 2]
    longer = sum(
        max(length, len(training.encode_chat(tokenizer, p["rejected"], chat))) > cut
        for p, length in zip(pairs, lengths)
    )
    encoded, counts = training._encode_pairs(tokenizer, pairs, cut, chat, over_length="truncate")
    assert counts["truncated_to_max_length"] == longer > 0 and len(encoded["chosen_ids"]) == len(pairs)
    assert max(map(len, encoded["chosen_ids"] + encoded["rejected_ids"])) == cut
    for pair, ids in zip(pairs, encoded["chosen_ids"]):  # encode_plus(truncation=True, max_length=cut)
        text = tokenizer.apply_chat_template(pair["chosen"], tokenize=False)
        assert ids == tokenizer(text, truncation=True, max_length=cut)["input_ids"]
    encoded, counts = training._encode_pairs(tokenizer, pairs, cut, chat, over_length="drop")
    assert counts["dropped_over_max_length"] == longer and len(encoded["chosen_ids"]) == len(pairs) - longer


def test_legacy_adamw_is_transformers_4s_adamw():
    from transformers.training_args import OptimizerNames

    assert "adamw_hf" not in {o.value for o in OptimizerNames}  # removed in transformers 5
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(5))
    start, grads = weight.detach().clone(), [torch.randn(5) for _ in range(3)]
    optimizer = training.LegacyAdamW([weight], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    m = v = torch.zeros(5)
    expected = start.clone()
    for t, grad in enumerate(grads, start=1):
        weight.grad = grad.clone()
        optimizer.step()
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
        expected = expected - 0.1 * (1 - 0.999**t) ** 0.5 / (1 - 0.9**t) * m / (v.sqrt() + 1e-8)
    assert torch.allclose(weight.detach(), expected, atol=1e-6)
    assert training.optimizer_choice(training.TrainConfig.paper())[1][0] is training.LegacyAdamW
    assert training.optimizer_choice(training.TrainConfig.demo()) == ({}, None)


def test_the_paper_settings_reach_the_trainer(tmp_path):
    """LoRA dropout stays on (TRL's disable_dropout would zero it), gradients are clipped at 5.0, the
    optimiser is transformers 4's AdamW, and chats carry two BOS tokens; a pair quoting the pad token
    is dropped and counted, not a crash."""
    from transformers import TrainerCallback

    seen = {}

    class Inspect(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, train_dataloader=None, **kwargs):
            seen["dropout"] = {m.p for name, m in model.named_modules() if "lora_dropout" in name and hasattr(m, "p")}
            seen["max_grad_norm"] = args.max_grad_norm
            seen["optimizer"] = type(getattr(optimizer, "optimizer", optimizer)).__name__  # accelerate wraps it
            seen["bos"] = [list(row[:2]) for row in train_dataloader.dataset["chosen_ids"]]

    pairs = make_pairs()
    quoting = to_pair(
        "\n\nHuman: How do I pad a batch?\n\nAssistant: Append <pad> tokens.",
        "\n\nHuman: How do I pad a batch?\n\nAssistant: You cannot.",
        index=99,
    )
    paper = training.TrainConfig.paper(
        dtype="float32",
        per_device_batch=2,
        grad_accum=1,
        max_steps=2,
        gradient_checkpointing=False,
        logging_steps=1,
        max_length=48,
    )
    out = training.train_reward_model(
        "tiny-gemma2",
        pairs[:6] + pairs[:3] + [quoting],
        paper,
        tmp_path / "rm",
        heldout_pairs=pairs[6:],
        callbacks=[Inspect()],
    )
    assert seen["dropout"] == {0.05} and seen["max_grad_norm"] == 5.0 and seen["optimizer"] == "LegacyAdamW"
    tokenizer = models.load_tokenizer("tiny-gemma2")
    assert all(row == [tokenizer.bos_token_id] * 2 for row in seen["bos"])
    record = training.read_record(out)
    assert record["data"]["dropped_pad_literal"] == 1 and record["data"]["n_train_pairs_used"] == 9
    assert record["chat_format"] == {"tokenisation": "authors", "date": UNSET_DATE} and record["pad_token"] == "<pad>"
    assert record["optimizer"] == "LegacyAdamW"
    seen.clear()
    # the demo recipe, as before: TRL's disable_dropout zeroes a LoRA dropout, and clipping stays at 1.0
    training.train_reward_model(
        "tiny-gemma2", pairs[:6], tiny_config(lora_dropout=0.1), tmp_path / "demo", callbacks=[Inspect()]
    )
    assert seen["dropout"] == {0.0} and seen["max_grad_norm"] == 1.0 and seen["optimizer"] != "LegacyAdamW"


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_training_changes_the_weights_and_saves_a_loadable_model(key, tmp_path):
    from transformers import AutoModelForSequenceClassification

    config = tiny_config()
    pairs = make_pairs()
    torch.manual_seed(config.seed)  # the initial score head, as train_reward_model draws it
    base, _ = models.load_reward_model(key)
    out = training.train_reward_model(key, pairs[:6], config, tmp_path / "rm", heldout_pairs=pairs[6:])

    record = json.loads((out / "training.json").read_text())
    assert record["training"]["optimizer_steps"] == 3 and record["base_key"] == key
    assert record["data"]["n_train_pairs_used"] == 6 and record["heldout"]["n_pairs"] == 2
    run = training.run_summary(training.read_record(out))  # the row chapters 02 and 05 tabulate
    assert (run["base"], run["pairs_used"], run["steps"], run["heldout_pairs"]) == (key, 6, 3, 2)
    assert run["heldout_accuracy"] == record["heldout"]["pairwise_accuracy"] in (0.0, 0.5, 1.0)
    assert run["ci_low"] <= run["heldout_accuracy"] <= run["ci_high"]
    assert run["final_loss"] == record["training"]["history"][-1]["loss"] and run["train_seconds"] > 0
    assert not (out / "checkpoints").exists()

    loaded = AutoModelForSequenceClassification.from_pretrained(out, num_labels=1).eval()
    assert type(loaded).__name__ == record["model_class"]
    assert loaded.config.pad_token_id == record["pad_token_id"]
    # the score head and the LoRA-merged top layer moved; a layer without LoRA did not
    assert not torch.allclose(loaded.score.weight, base.score.weight)
    top, bottom = base.config.num_hidden_layers - 1, 0
    layer = lambda m, i: m.model.layers[i].self_attn.q_proj.weight  # noqa: E731
    assert not torch.allclose(layer(loaded, top), layer(base, top))
    assert torch.equal(layer(loaded, bottom), layer(base, bottom))

    tokenizer = training.load_trained(out)[1]
    assert tokenizer.pad_token == record["pad_token"] and tokenizer.chat_template
    chosen, rejected = training.pair_scores(loaded, tokenizer, pairs[6:])
    assert torch.allclose(chosen, torch.tensor(record["heldout"]["chosen_scores"]), atol=1e-5)
    assert torch.allclose(rejected, torch.tensor(record["heldout"]["rejected_scores"]), atol=1e-5)
    # transformers' own pooling (pad-based) gives the same scores as the engine (mask-based)
    rows, ids, mask = padded(tokenizer, [p["chosen"] for p in pairs[6:]], tokenizer.pad_token_id)
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids, attention_mask=mask).logits[:, 0], chosen, atol=1e-5)


def test_a_run_without_evaluation_or_logged_loss_is_summarised_with_gaps():
    import math

    record = {
        "base_key": "tiny-llama",
        "heldout": {},
        "data": {"n_train_pairs_used": 4, "dropped_pad_literal": 1, "truncated_to_max_length": 2},
        "training": {"optimizer_steps": 1, "seconds": 2.5, "history": []},
    }
    run = training.run_summary(record)
    assert (run["pairs_used"], run["dropped_pad_literal"], run["dropped_over_length"], run["truncated"]) == (4, 1, 0, 2)
    assert run["heldout_pairs"] == 0
    assert all(math.isnan(run[k]) for k in ("final_loss", "heldout_accuracy", "ci_low", "ci_high"))
