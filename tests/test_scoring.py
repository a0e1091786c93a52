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
    body, head = scoring._backbone_and_head(model)
    for i in (0, 6):  # a short and a long candidate
        hidden = body(input_ids=torch.tensor([sequences[i]])).last_hidden_state
        assert torch.allclose(scores[i], head(hidden[0, -1]).float()[0], atol=1e-5)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="word list is empty"):
        scoring.split_shared_prefix([])
    tokenizer = models.load_tokenizer("llama-3-tokenizer")
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        scoring.chat_ids(tokenizer, PROMPT, "Love")
