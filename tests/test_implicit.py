"""Implicit-reward metrics and readers, on small hand-made log-probabilities whose answers are
worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from rmbias import implicit

LOG = math.log


def series(values: dict[str, float]) -> pd.Series:
    return pd.Series(values, dtype=float, name="logprob")


def test_log_ratio_and_mwlr_on_hand_computed_values():
    lq, lp = np.array([LOG(0.4), LOG(0.1), LOG(1e-9)]), np.array([LOG(0.1), LOG(0.4), LOG(1e-12)])
    assert implicit.log_ratio(lq, lp) == pytest.approx([LOG(4), -LOG(4), LOG(1000)])
    # MWLR = 0.5 (p + q) (log q - log p): the sign of the ratio, scaled by the mixture's mass
    assert implicit.mwlr(lq, lp) == pytest.approx([0.25 * LOG(4), -0.25 * LOG(4), 0.5 * (1e-9 + 1e-12) * LOG(1000)])
    # the junk token has the largest raw ratio but a negligible MWLR
    assert np.argmax(implicit.log_ratio(lq, lp)) == 2 and np.argmax(implicit.mwlr(lq, lp)) == 0
    # antisymmetric in the two models, zero when they agree
    assert implicit.mwlr(lp, lq) == pytest.approx(-implicit.mwlr(lq, lp))
    assert implicit.mwlr(np.array([LOG(0.3)]), np.array([LOG(0.3)]))[0] == 0.0


def test_flooring_zeroes_tokens_both_models_rule_out():
    floor = LOG(1e-6)
    lq = np.array([LOG(1e-9), LOG(1e-3), LOG(1e-9), LOG(0.5)])
    lp = np.array([LOG(1e-12), LOG(1e-9), LOG(1e-3), LOG(0.25)])
    got = implicit.floored_log_ratio(lq, lp, floor)
    assert got == pytest.approx([0.0, LOG(1e-3) - floor, floor - LOG(1e-3), LOG(2)])
    assert implicit.log_ratio(lq, lp)[0] == pytest.approx(LOG(1000))  # what the floor removed
    assert implicit.METRICS["floor 1e-4"](lq, lp)[1] == pytest.approx(LOG(1e-3) - LOG(1e-4))
    assert implicit.METRICS["floor 1e-6"](lq, lp)[1] == pytest.approx(LOG(1e-3) - LOG(1e-6))


def test_shared_strings_joins_on_decoded_string():
    p = series({"a": -1.0, " b": -2.0, "c": -3.0, "only_p": -4.0})
    q = series({"c": -0.5, "a": -1.5, "only_q": -0.1, " b": -2.5})
    table = implicit.shared_strings(p, q)
    assert list(table.columns) == ["token", "logp_p", "logp_q"]
    assert table["token"].tolist() == ["a", " b", "c"]  # p's order
    assert table.set_index("token")["logp_q"].to_dict() == {"a": -1.5, " b": -2.5, "c": -0.5}
    assert table.attrs == {"n_p": 4, "n_q": 4, "n_shared": 3}
    with pytest.raises(ValueError, match="duplicate"):
        implicit.shared_strings(pd.Series([-1.0, -2.0], index=["a", "a"]), q)
    with pytest.raises(ValueError, match="share no"):
        implicit.shared_strings(series({"x": -1.0}), series({"y": -1.0}))


@pytest.fixture
def rewards() -> pd.DataFrame:
    # q (the Llama side) prefers Freedom, p (the Gemma side) prefers Love and the Markdown tokens
    p = series(
        {
            "Freedom": LOG(0.05),
            " freedom": LOG(0.01),
            "Love": LOG(0.3),
            " love": LOG(0.02),
            "**": LOG(0.4),
            "\n\n": LOG(0.1),
            "Peace": LOG(0.1),
            "junk": LOG(1e-12),
        }
    )
    q = series(
        {
            "Freedom": LOG(0.4),
            " freedom": LOG(0.02),
            "Love": LOG(0.1),
            " love": LOG(0.01),
            "**": LOG(0.05),
            "\n\n": LOG(0.05),
            "Peace": LOG(0.1),
            "junk": LOG(1e-8),
        }
    )
    return implicit.implicit_rewards(implicit.shared_strings(p, q))


def test_implicit_rewards_adds_one_column_per_metric(rewards):
    assert set(implicit.METRICS) <= set(rewards.columns)
    row = rewards.set_index("token").loc["Freedom"]
    assert row["raw"] == pytest.approx(LOG(8))
    assert row["MWLR"] == pytest.approx(0.5 * 0.45 * LOG(8))
    assert rewards.set_index("token").loc["junk", "floor 1e-6"] == 0.0


def test_is_markup():
    for token in ["**", "##", "\n\n", " ", "---", "`", "|", " *", "...", "“"]:
        assert implicit.is_markup(token), token
    for token in ["Love", " love", "A", "1", "**bold", "", "😊"]:
        assert not implicit.is_markup(token), token


def test_top_bottom_ranks_and_markup_filter(rewards):
    # MWLR order: Freedom > " freedom" > junk (~5e-8) > Peace (0) > " love" > \n\n > Love > **
    table = implicit.top_bottom(rewards, "MWLR", n=2)
    assert list(table.columns) == ["end", "rank", "token", "value"]
    top, bottom = table[table["end"] == "top"], table[table["end"] == "bottom"]
    assert top["token"].tolist() == ["Freedom", " freedom"] and top["rank"].tolist() == [1, 2]
    assert bottom["token"].tolist() == ["**", "Love"] and bottom["rank"].tolist() == [8, 7]  # worst first
    filtered = implicit.top_bottom(rewards, "MWLR", n=2, drop_markup=True)
    bottom = filtered[filtered["end"] == "bottom"]
    assert bottom["token"].tolist() == ["Love", " love"]  # pessimum ignoring Markdown, ranks kept
    assert bottom["rank"].tolist() == [7, 5]
    # the raw ratio puts the junk token on top: what MWLR is for
    assert implicit.top_bottom(rewards, "raw", n=1)["token"].tolist()[0] == "junk"
    with pytest.raises(KeyError):
        implicit.top_bottom(rewards, "nope")


def test_word_score_averages_case_and_space_variants(rewards):
    by = rewards.set_index("token")["MWLR"]
    assert implicit.word_score(rewards, "freedom", "MWLR") == pytest.approx((by["Freedom"] + by[" freedom"]) / 2)
    assert implicit.word_score(rewards, " LOVE ", "MWLR") == pytest.approx((by["Love"] + by[" love"]) / 2)
    assert implicit.word_score(rewards, "Peace", "raw") == pytest.approx(0.0)
    assert math.isnan(implicit.word_score(rewards, "justice", "MWLR"))


def test_word_scores_keeps_given_order_and_defaults_to_every_metric(rewards):
    table = implicit.word_scores(rewards, ["peace", "justice", " FREEDOM", "freedom"])
    assert table["word"].tolist() == ["peace", "freedom"]  # absent word left out, duplicates merged
    assert table["n_variants"].tolist() == [1, 2]
    assert set(implicit.METRICS) <= set(table.columns)
    assert table.loc[1, "raw"] == pytest.approx(implicit.word_score(rewards, "freedom", "raw"))
    assert list(implicit.word_scores(rewards, ["love"], "MWLR").columns) == ["word", "MWLR", "n_variants"]


def test_precision_at_k(rewards):
    # MWLR top 4: Freedom, " freedom", junk, Peace
    assert implicit.precision_at_k(rewards, "MWLR", ["FREEDOM"], 1) == 1.0
    assert implicit.precision_at_k(rewards, "MWLR", ["freedom"], 2) == 1.0  # both variants count
    assert implicit.precision_at_k(rewards, "MWLR", ["freedom"], 4) == 0.5
    assert implicit.precision_at_k(rewards, "MWLR", ["freedom", "peace"], 4) == 0.75
    assert implicit.precision_at_k(rewards, "raw", ["freedom"], 1) == 0.0  # junk first
    with pytest.raises(ValueError):
        implicit.precision_at_k(rewards, "MWLR", ["freedom"], 0)
    with pytest.raises(ValueError):
        implicit.precision_at_k(rewards, "MWLR", ["freedom"], 99)


def test_word_scores_agree_with_word_score_for_every_word():
    from rmbias import implicit as imp

    table = imp.implicit_rewards(
        pd.DataFrame(
            {
                "token": ["Freedom", " freedom", "love", " Love", "duty", "x"],
                "logp_p": np.log([0.1, 0.2, 0.3, 0.05, 0.01, 0.2]),
                "logp_q": np.log([0.3, 0.1, 0.1, 0.02, 0.02, 0.1]),
            }
        )
    )
    out = imp.word_scores(table, ["freedom", "Love", "absent"], ["MWLR", "raw"]).set_index("word")
    assert sorted(out.index) == ["freedom", "love"]
    for word in ("freedom", "love"):
        for metric in ("MWLR", "raw"):
            assert out.loc[word, metric] == pytest.approx(imp.word_score(table, word, metric))
    assert out.loc["freedom", "n_variants"] == 2


# --- which models are paired -------------------------------------------------------------------


def test_the_paper_profile_pairs_21_instruct_and_1_pretrained_and_never_mixes():
    from rmbias import profiles, registry

    keys = profiles.resolve("paper").language_models
    pairs = implicit.model_pairs(keys)
    kinds = [pair.kind for pair in pairs]
    assert kinds == ["instruct"] * 21 + ["pretrained"]
    for pair in pairs:
        p, q = registry.spec(pair.p), registry.spec(pair.q)
        assert (p.family, q.family) == ("gemma", "llama") and p.instruct == q.instruct == (pair.kind == "instruct")
    instruct = [(pair.p, pair.q) for pair in pairs if pair.kind == "instruct"]
    gemma_it = ["google/gemma-2-2b-it", "google/gemma-2-9b-it", "google/gemma-2-27b-it"]
    llama_it = [k for k in keys if k.startswith("meta-llama/") and k.endswith("Instruct")]
    assert len(llama_it) == 7 and set(instruct) == {(g, m) for g in gemma_it for m in llama_it}
    assert (pairs[-1].p, pairs[-1].q) == ("google/gemma-2-2b", "meta-llama/Llama-3.2-3B")
    assert (implicit.table_pair(pairs).p, implicit.table_pair(pairs).q) == registry.TABLE1_PAIR
    # the old rule paired every Gemma with every Llama model: 4 x 8 = 32
    assert len(registry.family_pairs(list(keys))) == 32


def test_a_mixed_pair_only_when_no_same_kind_pair_exists():
    from rmbias import profiles

    # one pretrained Gemma, one instruct Gemma, one instruct Llama: the pretrained Gemma stays unpaired
    pairs = implicit.model_pairs(["google/gemma-2-2b", "google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"])
    assert pairs == [implicit.ModelPair("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct", "instruct")]
    # the demo profile: an instruct Llama and a pretrained Gemma, so its one pair is marked mixed
    demo = profiles.resolve("demo").language_models
    assert implicit.model_pairs(demo) == [implicit.ModelPair("gemma-3-270m", "smollm2-135m-instruct", "mixed")]
    assert implicit.model_pairs(demo, fallback_mixed=False) == []
    assert implicit.model_pairs(profiles.resolve("tiny").language_models) == [
        implicit.ModelPair("tiny-gemma2", "tiny-llama", "instruct")
    ]
    assert implicit.model_pairs(["tiny-llama"]) == []
    with pytest.raises(ValueError, match="no Gemma x Llama pair"):
        implicit.table_pair([])
    with pytest.raises(ValueError, match="unknown pair kind"):
        implicit.ModelPair("tiny-gemma2", "tiny-llama", "both")
    # without the paper's Table 1 pair, the first (instruct) pair
    first = implicit.model_pairs(
        ["google/gemma-2-9b-it", "google/gemma-2-2b", "meta-llama/Llama-3.2-3B", "meta-llama/Llama-3.2-1B-Instruct"]
    )
    assert [p.kind for p in first] == ["instruct", "pretrained"] and implicit.table_pair(first) == first[0]


def test_word_scores_by_prompt_equal_the_whole_vocabulary_join_on_every_prompt():
    from rmbias.logprobs import Trace

    rng = np.random.default_rng(0)
    # duplicates (two ids, one string: the higher log-prob counts), empty strings, case and space
    # variants, strings only one side has, and a word only one side has
    vocab_p = ["Freedom", " freedom", " freedom", "love", "", "x", "duty", " Duty", "home"]
    vocab_q = [" Love", "love", "Freedom", "", "y", " Duty", "x", " freedom", "home", "home", "duty2"]
    prompts = ["a", "b", "c"]

    def trace(vocab, name):
        logits = rng.normal(size=(len(prompts), len(vocab)))
        logprobs = (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
        tokens = pd.DataFrame({"token_id": np.arange(len(vocab)), "token": vocab})
        return Trace(name, name, "gemma", True, prompts, logprobs, tokens, {})

    p, q = trace(vocab_p, "p"), trace(vocab_q, "q")
    p.logprobs[1, vocab_p.index("home")] = q.logprobs[1, vocab_q.index("home")] = -5.0  # MWLR 0 on b
    words = ["freedom", "Love", "duty", "home", "absent"]
    fast = implicit.word_scores_by_prompt(p, q, words, prompts)
    for prompt in prompts:
        whole = implicit.implicit_rewards(implicit.shared_strings(p.by_string(prompt), q.by_string(prompt)))
        slow = implicit.word_scores(whole, words, list(implicit.METRICS))
        got = fast[fast["prompt"] == prompt].drop(columns="prompt").reset_index(drop=True)
        pd.testing.assert_frame_equal(got, slow[got.columns], check_dtype=False)
    assert set(fast["word"]) == {"freedom", "love", "duty", "home"} and len(fast) == 12
    assert (fast.loc[fast["word"] == "freedom", "n_variants"] == 2).all()  # joined on exact strings
    # only the words' variants are looked up, the duplicate " freedom" once
    assert implicit.variant_strings(p.tokens["token"], words) == [
        "Freedom",
        " freedom",
        "love",
        "duty",
        " Duty",
        "home",
    ]
    # no shared variant on any prompt: an empty table with the columns
    none = implicit.word_scores_by_prompt(p, q, ["y"], prompts, {"raw": implicit.log_ratio})
    assert none.empty and list(none.columns) == ["prompt", "word", "raw", "n_variants"]
    with pytest.raises(KeyError, match="prompt 'd' was not traced for p"):
        implicit.word_scores_by_prompt(p, q, words, ["a", "d"])
