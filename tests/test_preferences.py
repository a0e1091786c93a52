"""hh-rlhf preference pairs: parsing, checks, split and subsample. (The file is red-teaming data;
these tests assert on structure only and print nothing of it.)"""

import pytest

from rmbias import preferences as P

TWO = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: {}"


def test_parse_dialogue_alternates_roles_and_strips():
    messages = P.parse_dialogue(TWO.format("  Blue. "))
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "Hi there" and messages[-1]["content"] == "Blue."


@pytest.mark.parametrize("chosen, rejected, reason", [
    (TWO.format("Blue."), TWO.format("Blue."), "identical_replies"),
    (TWO.format("Blue."), TWO.replace("Hi there", "Hey").format("Red."), "prefix_differs"),
    (TWO.format("Blue."), TWO.format(""), "empty_reply"),
    ("\n\nHuman: a\n\nHuman: b\n\nAssistant: c", "\n\nHuman: a\n\nHuman: b\n\nAssistant: d",
     "roles_do_not_alternate"),
    ("\n\nAssistant: a", "\n\nAssistant: b", "roles_do_not_alternate"),
    ("Hi\n\nAssistant: a", "Hi\n\nAssistant: b", "no_leading_human"),
    ("\n\nHuman: a\n\nAssistant: b\n\nHuman: c", "\n\nHuman: a\n\nAssistant: b\n\nHuman: d", "no_final_reply"),
])
def test_bad_pairs_are_rejected_with_a_reason(chosen, rejected, reason):
    with pytest.raises(P.PairError) as err:
        P.to_pair(chosen, rejected)
    assert err.value.reason == reason


def test_good_pair_shares_every_turn_but_the_last():
    pair = P.to_pair(TWO.format("Blue."), TWO.format("Red."), index=7)
    assert pair["index"] == 7
    assert pair["chosen"][:-1] == pair["rejected"][:-1]
    assert pair["chosen"][-1] != pair["rejected"][-1]


@pytest.fixture(scope="module")
def parsed():
    return P.load_pairs()


def test_hh_rlhf_harmless_test_parses(parsed):
    assert parsed.n_records == 2312
    assert len(parsed.pairs) + sum(parsed.dropped.values()) == 2312
    assert len(parsed.pairs) == 2299  # 9 with two Human turns in a row, 4 with an empty reply
    assert parsed.source["licence"] == "MIT"
    for pair in parsed.pairs:
        chosen, rejected = pair["chosen"], pair["rejected"]
        assert chosen[:-1] == rejected[:-1] and chosen[-1]["content"] != rejected[-1]["content"]
        assert [m["role"] for m in chosen] == ["user", "assistant"] * (len(chosen) // 2)
    assert len({p["index"] for p in parsed.pairs}) == len(parsed.pairs)


def test_split_is_disjoint_complete_and_reproducible(parsed):
    train, held = P.split_pairs(parsed.pairs, 300, seed=3)
    ids = lambda ps: [p["index"] for p in ps]  # noqa: E731
    assert len(held) == 300 and len(train) == len(parsed.pairs) - 300
    assert not set(ids(train)) & set(ids(held))
    assert set(ids(train)) | set(ids(held)) == set(ids(parsed.pairs))
    again_train, again_held = P.split_pairs(parsed.pairs, 300, seed=3)
    assert ids(again_train) == ids(train) and ids(again_held) == ids(held)
    assert ids(P.split_pairs(parsed.pairs, 300, seed=4)[1]) != ids(held)
    with pytest.raises(ValueError):
        P.split_pairs(parsed.pairs, len(parsed.pairs) + 1)


def test_subsamples_are_seeded_and_nested(parsed):
    small, large = P.subsample(parsed.pairs, 50, seed=1), P.subsample(parsed.pairs, 200, seed=1)
    assert [p["index"] for p in small] == [p["index"] for p in large[:50]]
    assert [p["index"] for p in P.subsample(parsed.pairs, 50, seed=1)] == [p["index"] for p in small]
    assert len(P.subsample(parsed.pairs, None)) == len(parsed.pairs)


def test_shorten_keeps_the_last_exchange_and_cuts_at_a_word():
    pair = P.to_pair(TWO.format("Blue is a calm colour of the sky."), TWO.format("Red, like fire and blood."))
    short = P.shorten(pair, last_turns=1, max_chars=10)
    assert [m["role"] for m in short["chosen"]] == ["user", "assistant"]
    assert short["chosen"][0]["content"] == "Name a"  # cut at the last space within 10 characters
    assert short["chosen"][-1]["content"] == "Blue is a"
    assert short["chosen"][:-1] == short["rejected"][:-1]
    assert P.shorten(pair) == pair
    same_start = P.to_pair(TWO.format("Blue is nice, really."), TWO.format("Blue is nice, truly."))
    with pytest.raises(P.PairError):
        P.shorten(same_start, max_chars=13)
    kept, dropped = P.shorten_all([pair, same_start], max_chars=13)
    assert len(kept) == 1 and dropped == 1
