"""The scoring engine: the cached route equals the full pass, and the design's traps are avoided."""

import pytest
import torch

from rmbias import models, scoring

PROMPT = "What, in one word, is the greatest thing ever?"
WORDS = ["Love", "Freedom", "Family", "Success", "Ambition", "Friendship", "Trustworthiness", "A"]


def reward_model(key):
    torch.manual_seed(1)  # the score head is new: seed it
    return models.load_reward_model(key)


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_cached_route_matches_full_forward_pass(key):
    model, tokenizer = reward_model(key)
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in WORDS]
    full = scoring.score_full(model, sequences, batch_size=3)
    fast = scoring.score_cached(model, sequences, batch_size=5)
    assert torch.allclose(full, fast, atol=1e-4)
    assert full.std() > 1e-4  # scores vary across candidates
    # The batch a candidate lands in does not change its score.
    alone = scoring.score_full(model, sequences[-1:], batch_size=1)
    assert torch.allclose(alone, full[-1:], atol=1e-4)


def test_exactly_one_bos_and_a_shared_prefix():
    tokenizer = models.load_tokenizer("tiny-llama")
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in WORDS]
    assert all(s.count(tokenizer.bos_token_id) == 1 and s[0] == tokenizer.bos_token_id for s in sequences)
    prefix, suffixes = scoring.split_shared_prefix(sequences)
    assert tokenizer.decode(prefix).endswith("<|end_header_id|>\n\n")
    assert all(prefix + s == full for s, full in zip(suffixes, sequences))


def test_score_is_read_at_the_last_real_token_even_when_pad_ends_the_chat():
    model, tokenizer = reward_model("tiny-llama")
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in WORDS]
    assert sequences[0][-1] == tokenizer.convert_tokens_to_ids("<|eot_id|>")
    model.config.pad_token_id = sequences[0][-1]  # pad == end of turn, the SmolLM2 trap
    scores = scoring.score_full(model, sequences, batch_size=8)
    for i in (0, 6):  # a short and a long candidate
        hidden = model.model(input_ids=torch.tensor([sequences[i]])).last_hidden_state
        assert torch.allclose(scores[i], model.score(hidden[0, -1]).float()[0], atol=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="word list is empty"):
        scoring.split_shared_prefix([])
    tokenizer = models.load_tokenizer("llama-3-tokenizer")
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        scoring.chat_ids(tokenizer, PROMPT, "Love")


# --- the vocabulary route ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2"])
def test_vocabulary_route_places_tokens_by_id_and_matches_the_full_pass(key):
    model, tokenizer = reward_model(key)
    ids = scoring.vocabulary_ids(tokenizer)[1000:1040]
    sequences = scoring.vocab_sequences(tokenizer, PROMPT, ids)
    before, after = scoring.reply_slot(tokenizer, PROMPT)
    assert all(s == before + [t] + after for s, t in zip(sequences, ids))
    assert all(s.count(tokenizer.bos_token_id) == 1 for s in sequences)
    cached = scoring.score(model, sequences, "cached", batch_size=16)
    assert torch.allclose(cached.values, scoring.score_full(model, sequences, 7), atol=1e-4)
    # Batch size does not change float32 scores (the final short batch is filled up, then dropped).
    assert torch.allclose(cached.values, scoring.score(model, sequences, "cached", batch_size=9).values, atol=1e-5)


def test_vocabulary_ids_skip_special_tokens_and_round_trips_are_reported():
    tokenizer = models.load_tokenizer("tiny-llama")
    ids = scoring.vocabulary_ids(tokenizer)
    assert len(ids) == 128000 and tokenizer.bos_token_id not in ids
    # " Love" (leading space) cannot survive decode -> render -> re-tokenise: the template trims it.
    love, space_love = (tokenizer.convert_tokens_to_ids(t) for t in ("Love", "ĠLove"))
    assert scoring.round_trips(tokenizer, PROMPT, [love, space_love]) == [True, False]


def test_reply_slot_refuses_a_template_that_rewrites_the_reply():
    tokenizer = models.load_tokenizer("tiny-llama")
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] + ' ' + m['content'] }}{% endfor %}"
    with pytest.raises(scoring.ScoringError, match="differ in one token"):
        scoring.reply_slot(tokenizer, PROMPT)


def test_a_fixed_date_replaces_todays_date_in_llama_31_style_templates():
    tokenizer = models.load_tokenizer("tiny-llama")
    # The date logic of the Llama 3.1 / 3.2 templates: today's date unless date_string is passed.
    tokenizer.chat_template = (
        "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
        "{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}{%- set date_string = 'today' %}"
        "{%- endif %}{%- endif %}{{ bos_token }}Today Date: {{ date_string }}"
        "{% for m in messages %}|{{ m['content'] }}{% endfor %}"
    )
    text = tokenizer.decode(scoring.chat_ids(tokenizer, PROMPT, "Love"))
    assert f"Today Date: {scoring.FIXED_DATE}|" in text


# --- the model's own forward (remote-code reward models) and out-of-memory handling -----------------


class RemoteCodeLike(torch.nn.Module):
    """Stands in for ArmoRM / QRM: a forward that returns ``.score``; it refuses batches larger
    than ``max_batch`` with the error a GPU out of memory raises, and records batch widths."""

    def __init__(self, inner, max_batch=10_000):
        super().__init__()
        self.inner, self.config, self.max_batch, self.seen = inner, inner.config, max_batch, []

    def forward(self, input_ids, attention_mask):
        if input_ids.shape[0] > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        self.seen.append(tuple(input_ids.shape))
        assert bool(attention_mask.all())  # never padded
        return type("Output", (), {"score": self.inner(input_ids=input_ids).logits})()


def test_model_route_groups_by_length_and_returns_scores_in_candidate_order():
    inner, tokenizer = reward_model("tiny-llama")
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in WORDS]
    assert len({len(s) for s in sequences}) > 1  # mixed lengths
    wrapped = RemoteCodeLike(inner)
    result = scoring.score(wrapped, sequences, route="model", batch_size=4)
    assert torch.allclose(result.values, scoring.score_full(inner, sequences, 8), atol=1e-4)


def test_out_of_memory_halves_the_batch_and_gives_the_same_scores():
    inner, tokenizer = reward_model("tiny-llama")
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in ["Love", "Hope", "Life", "Fun"] * 5]
    expected = scoring.score(RemoteCodeLike(inner), sequences, route="model", batch_size=20)
    small = RemoteCodeLike(inner, max_batch=3)
    result = scoring.score(small, sequences, route="model", batch_size=16)
    assert result.batch_size == 2 and max(shape[0] for shape in small.seen) <= 2
    assert torch.allclose(result.values, expected.values, atol=1e-5)
    with pytest.raises(scoring.ScoringError, match="out of memory at batch size 1"):
        scoring.score(RemoteCodeLike(inner, max_batch=0), sequences, route="model", batch_size=4)


def test_agreement_report_separates_route_error_from_bf16_noise():
    model, tokenizer = reward_model("tiny-gemma2")
    sequences = [scoring.chat_ids(tokenizer, PROMPT, w) for w in WORDS * 3]
    report = scoring.agreement_report(model, sequences, batch_size=8, other_batch_size=5)
    assert report["dtype"] == "float32"
    assert report["cached vs full"] < 1e-4 and report["batch-size noise"] < 1e-4
    assert report["bf16 vs fp32"] > report["cached vs full"]  # bf16 rounding is visible
    assert model.dtype == torch.float32  # the model itself is untouched
    native = scoring.agreement_report(model.to(torch.bfloat16), sequences, batch_size=8, other_batch_size=5)
    assert native["dtype"] == "bfloat16" and "bf16 vs fp32" not in native  # a model in its own dtype only


def test_batches_are_balanced_so_no_batch_is_mostly_filler():
    calls = []
    used = scoring.run_in_batches(lambda start, stop, batch: calls.append((start, stop, batch)), 263, 128)
    assert used == 88 and calls == [(0, 88, 88), (88, 176, 88), (176, 263, 88)]
    calls.clear()
    assert scoring.run_in_batches(lambda *a: calls.append(a), 256, 128) == 128 and len(calls) == 2
    calls.clear()
    assert scoring.run_in_batches(lambda *a: calls.append(a), 5, 128) == 5 and calls == [(0, 5, 5)]


def _frozen_below_top_layer(model):
    """Freeze a reward model as the demo recipe leaves it in training: every weight but its top decoder
    layer and its score head."""
    body = scoring._Reader(model).body
    for p in model.parameters():
        p.requires_grad_(False)
    for p in [*body.layers[-1].parameters(), *model.score.parameters()]:
        p.requires_grad_(True)
    return body


def _tiny_gemma3():
    """A random three-layer Gemma 3 reward model (the demo's Gemma-3-270M architecture: sliding and full
    attention layers, each with its own rotary base), with a sliding window shorter than the chats."""
    from transformers import Gemma3TextConfig, Gemma3TextForSequenceClassification

    tokenizer = models.load_tokenizer("tiny-llama")
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, sliding_window=8,
        layer_types=["sliding_attention", "full_attention", "sliding_attention"],
        num_labels=1, pad_token_id=tokenizer.pad_token_id or 0,
    )  # fmt: skip
    torch.manual_seed(2)
    return Gemma3TextForSequenceClassification(config).eval(), tokenizer


@pytest.mark.parametrize("key", ["tiny-llama", "tiny-gemma2", "gemma3"])
def test_a_frozen_trunk_replays_what_the_whole_cached_route_gives(key):
    """Recorded once below the first trained layer, the trunk gives the whole route's scores after the
    trained layers changed, without running the frozen layers on the candidates again."""
    model, tokenizer = _tiny_gemma3() if key == "gemma3" else reward_model(key)
    body = _frozen_below_top_layer(model)
    sequences = scoring.vocab_sequences(tokenizer, PROMPT, list(range(200, 260)))
    trunk = scoring.FrozenTrunk()
    first = scoring.score(model, sequences, batch_size=16, trunk=trunk).values
    assert trunk.verified and trunk.broken is None and trunk.first == len(body.layers) - 1
    assert len(trunk.states) == 4  # one recorded batch each
    with torch.no_grad():  # training moves the top layer and the head
        for p in [*body.layers[-1].parameters(), *model.score.parameters()]:
            p.add_(0.05 * torch.randn_like(p))
    calls = []
    hook = body.layers[0].register_forward_hook(lambda *a: calls.append(1))
    replayed = scoring.score(model, sequences, batch_size=16, trunk=trunk).values
    hook.remove()
    assert calls == [1]  # the frozen layer ran on the shared prefix only
    whole = scoring.score(model, sequences, batch_size=16).values
    assert torch.allclose(replayed, whole, atol=1e-5) and not torch.allclose(replayed, first, atol=1e-3)
    assert torch.allclose(whole, scoring.score_full(model, sequences, batch_size=16), atol=1e-4)
    # another model's trunk is refused; a model with nothing frozen does without one
    with torch.no_grad():
        next(body.layers[0].parameters()).add_(1.0)
    with pytest.raises(ValueError, match="recorded below layer"):
        scoring.score(model, sequences, batch_size=16, trunk=trunk)
    for p in model.parameters():
        p.requires_grad_(True)
    unused = scoring.FrozenTrunk()
    assert torch.allclose(scoring.score(model, sequences, batch_size=16, trunk=unused).values,
                          scoring.score(model, sequences, batch_size=16).values)  # fmt: skip
    assert not unused.states and unused.first is None


def test_a_trunk_whose_replay_disagrees_is_switched_off(monkeypatch):
    """The check right after recording: a replay that does not give the whole route's scores (a
    transformers version whose forward it does not fit) switches the trunk off, and the scores are the
    whole route's."""
    model, tokenizer = reward_model("tiny-llama")
    _frozen_below_top_layer(model)
    sequences = scoring.vocab_sequences(tokenizer, PROMPT, list(range(200, 230)))
    real = scoring.FrozenTrunk.batch

    def shifted(self, body, key):  # replays states that are off by one
        if key in self.states:
            self.states[key] = self.states[key] + 1.0
        return real(self, body, key)

    monkeypatch.setattr(scoring.FrozenTrunk, "batch", shifted)
    trunk = scoring.FrozenTrunk()
    scores = scoring.score(model, sequences, batch_size=8, trunk=trunk).values
    assert trunk.broken and "differed" in trunk.broken and not trunk.states and not trunk.verified
    assert torch.allclose(scores, scoring.score(model, sequences, batch_size=8).values)
    assert torch.allclose(scoring.score(model, sequences, batch_size=8, trunk=trunk).values, scores)
