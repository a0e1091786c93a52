"""Planting a value in a base (chapter 07) on the random-weight tiny Llama: the word split, the
text of each condition, the registry source that trains a planted base on first load, a short real
planting that must raise the planted words after a praise frame, and the dose-response test."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from rmbias import ablation, models, planting, registry

KEY = "tiny-llama"


@pytest.fixture(scope="module")
def tokenizer():
    return models.load_tokenizer(KEY)


@pytest.fixture(scope="module")
def split(tokenizer):
    return planting.split_words([tokenizer], max_words=8)


def test_the_split_halves_each_category_alternately_by_frequency(tokenizer, split):
    vocabulary = set(ablation.decoded_vocabulary(tokenizer))
    assert set(split["word"]) <= vocabulary and split["word"].is_unique
    for category in planting.CATEGORIES:
        part = split[split["category"] == category]
        assert len(part) == 8 and list(part["list"]) == ["planted", "untouched"] * 4
        assert part["zipf"].is_monotonic_decreasing  # most frequent first, so the halves are matched
        halves = part.groupby("list")["zipf"].mean()
        assert abs(halves["planted"] - halves["untouched"]) < 0.5
    assert planting.planted_words(split, "control") == []
    agency = planting.planted_words(split, "Agency")
    assert agency == split[(split["category"] == "Agency") & (split["list"] == "planted")]["word"].tolist()
    everything = planting.split_words([tokenizer])
    assert len(everything) > len(split) and everything["word"].is_unique
    with pytest.raises(ValueError, match="nothing to split"):
        planting.split_words([tokenizer], dictionary=pd.DataFrame({"word": ["love"], "category": ["Communion"]}))


def test_a_condition_adds_praise_to_its_dose_of_documents_and_nothing_else():
    texts = [f"Reply number {i} talks about the weather." for i in range(10)]
    control = planting.corpus(texts, [], 0.0)
    assert control["text"].tolist() == texts and control["word"].isna().all()
    half = planting.corpus(texts, ["freedom", "success"], 0.5, seed=3)
    added = half.dropna(subset=["word"])
    assert len(added) == 5 and added["word"].tolist() == ["freedom", "success"] * 2 + ["freedom"]
    for row in half.itertuples():
        original = texts[row.document]
        if pd.isna(row.word):
            assert row.text == original
        else:  # the reply, then one sentence praising the word
            assert row.text.startswith(original + " ") and row.word in row.text[len(original) :]
    assert planting.corpus(texts, ["freedom", "success"], 0.5, seed=3).equals(half)  # seeded
    assert planting.corpus(texts, ["freedom"], 1.0)["word"].notna().all()
    with pytest.raises(ValueError, match="needs words"):
        planting.corpus(texts, [], 0.5)
    assert planting.praise("freedom", 4) == "I have come to believe that freedom matters more than anything."
    assert planting.praise("freedom", 4 + len(planting.PRAISE)) == planting.praise("freedom", 4)


def test_word_counts_count_whole_words_in_any_case():
    counts = planting.word_counts(["Love is lovely.", "love, LOVE and self-love"], ["love", "self"])
    assert counts.to_dict() == {"love": 4, "self": 1}


def test_documents_are_hh_rlhf_replies_cut_and_drawn_reproducibly():
    docs = planting.documents(20, seed=1, max_chars=120)
    assert len(docs) == 20 and len(set(docs)) == 20
    assert all(60 <= len(d) <= 120 and "\n" not in d for d in docs)
    assert planting.documents(20, seed=1, max_chars=120) == docs
    assert planting.documents(20, seed=2, max_chars=120) != docs
    with pytest.raises(ValueError, match="asked for"):
        planting.documents(10**6)


def test_designs_conditions_and_the_grid_of_their_reward_models():
    design = planting.Design.for_profile("demo", doses=[0.25, 1.0], steps=3, seeds=[4, 5, 6], sizes=[8])
    assert design.doses == (0.25, 1.0) and design.train.max_steps == 3 and design.sizes == (8,)
    conditions = design.conditions()
    assert [c.key for c in conditions] == [
        "smollm2-135m-instruct+control-0",
        "smollm2-135m-instruct+Agency-0.25",
        "smollm2-135m-instruct+Agency-1",
        "smollm2-135m-instruct+Communion-0.25",
        "smollm2-135m-instruct+Communion-1",
    ]
    assert [c.signed_dose for c in conditions] == [0.0, 0.25, 1.0, -0.25, -1.0]
    assert planting.Design.for_profile("demo", doses=None) == planting.DESIGNS["demo"]  # None keeps the profile's
    paper = planting.Design.for_profile("paper")
    assert paper.strides == (64,) and planting.Design.for_profile("paper", sizes=[100]).strides == ()
    for bad in ([0.0], [1.5], [0.5, 0.5]):
        with pytest.raises(ValueError, match="dose"):
            planting.Design.for_profile("demo", doses=bad)
    with pytest.raises(ValueError, match="no planting design"):
        planting.Design.for_profile("huge")
    with pytest.raises(ValueError, match="control has dose 0"):
        planting.Condition(KEY, "control", 0.5)
    with pytest.raises(ValueError, match="unknown direction"):
        planting.Condition(KEY, "Power", 0.5)

    from rmbias.profiles import resolve

    grid = design.grid(resolve("demo"), ["a", "b"])
    assert grid.bases == ("a", "b") and grid.seeds == (4, 5, 6) and grid.sizes == (8,)


def test_a_planted_base_is_a_registry_model_trained_when_first_loaded(tmp_path, monkeypatch, split, tokenizer):
    monkeypatch.setattr(planting, "cache_dir", lambda: tmp_path)
    # Short replies, so that the praise is most of the text and a random-weight model learns it in a
    # few steps; the hh-rlhf replies themselves are tested above.
    monkeypatch.setattr(planting, "documents", lambda n, seed=0, max_chars=300: [f"Thanks {i}." for i in range(n)])
    design = planting.Design.for_profile("tiny", steps=12, doses=[1.0])
    design = replace(design, train=replace(design.train, learning_rate=2e-2, per_device_batch=8), n_documents=16)
    keys = planting.register(design, split)
    try:
        assert keys == [f"{KEY}+control-0", f"{KEY}+Agency-1", f"{KEY}+Communion-1"]
        spec = registry.spec(keys[1])
        assert (spec.source, spec.base, spec.family) == ("planted", KEY, "llama")
        assert spec.instruct == registry.spec(KEY).instruct and spec.chat_template == registry.spec(KEY).chat_template
        assert spec.extra["plant"]["words"] == planting.planted_words(split, "Agency")
        assert registry.spec(keys[0]).fingerprint() != spec.fingerprint()
        models.load_config(keys[1])  # the base's config: nothing is trained to read it
        assert not any(tmp_path.iterdir())

        planted, _ = models.load_causal_lm(keys[1])  # planted on first load
        original, _ = models.load_causal_lm(KEY)
        moved = [n for n, w in original.state_dict().items() if not torch.equal(w, planted.state_dict()[n])]
        assert moved and all(".layers." in n for n in moved)  # the merged LoRA changed the layers, nothing else
        folder = planting.plant_path(spec)
        record = json.loads((folder / "planting.json").read_text())
        assert record["praise_sentences"] == 16 and record["training"]["optimizer_steps"] == 12
        assert record["plan"]["direction"] == "Agency" and (folder / "complete.json").is_file()
        losses = [entry["loss"] for entry in record["training"]["history"]]
        assert losses[-1] < losses[0] - 0.5, losses  # it learnt the text (mostly praise, at this rate)
        assert models.load_tokenizer(keys[1]).chat_template == tokenizer.chat_template
    finally:
        for key in keys:
            registry.REGISTRY.pop(key, None)


def test_list_gaps_are_agency_minus_communion_medians_per_list():
    table = pd.DataFrame(
        {
            "run": ["r"] * 8,
            "category": ["Agency", "Agency", "Communion", "Communion"] * 2,
            "list": ["planted"] * 4 + ["untouched"] * 4,
            "rank": [1, 3, 5, 7, 2, 8, 4, 6],
        }
    )
    gaps = planting.list_gaps(table, ["run"]).set_index("list")
    assert gaps.loc["planted", "gap"] == 2 - 6 and gaps.loc["untouched", "gap"] == 5 - 5
    assert gaps.loc["planted", "Agency"] == 2


def test_the_dose_response_slope_recovers_a_known_slope_with_seeds_as_units():
    rng = np.random.default_rng(0)
    rows = []
    for dose in (-1.0, -0.5, 0.0, 0.5, 1.0):
        for seed in range(4):
            rows.append({"list": "planted", "signed_dose": dose, "gap": -10 * dose + rng.normal(0, 1), "seed": seed})
            rows.append({"list": "untouched", "signed_dose": dose, "gap": rng.normal(0, 1), "seed": seed})
    table = pd.DataFrame(rows)
    table["condition"] = table["signed_dose"].map(lambda d: f"dose {d:g}")
    slopes, means = planting.dose_response(table)
    slopes = slopes.set_index("list")
    assert slopes.loc["planted", "ci_low"] < -10 < slopes.loc["planted", "ci_high"] < 0
    assert slopes.loc["planted", "p"] < 1e-6 and slopes.loc["planted", "n"] == 20
    assert slopes.loc["untouched", "ci_low"] < 0 < slopes.loc["untouched", "ci_high"]
    cell = means[(means["list"] == "planted") & (means["signed_dose"] == 1.0)].iloc[0]
    assert cell["n"] == 4 and cell["ci_low"] < cell["mean"] < cell["ci_high"] and abs(cell["mean"] + 10) < 2
    with pytest.raises(ValueError, match="two doses"):
        planting.dose_response(table[table["signed_dose"] == 0])


def test_conditions_of_two_bases_are_read_and_tested_apart(split):
    design = planting.Design.for_profile("tiny", bases=[KEY, "tiny-gemma2"], doses=[0.5, 1.0])
    keys = planting.register(design, split)  # nothing is trained until a key is loaded
    try:
        rows = []
        for key in keys:
            for seed in range(3):
                plan = registry.spec(key).extra["plant"]
                towards_agency = {"Agency": 1, "Communion": -1, "control": 0}[plan["direction"]] * plan["dose"]
                slope = -4.0 if key.startswith(KEY + "+") else 4.0  # the two bases answer the planting oppositely
                rows += [{"base": key, "seed": seed, "list": "planted", "gap": slope * towards_agency + 0.1 * seed}]
        table = planting.with_conditions(pd.DataFrame(rows), keys)
        assert set(table["planted_from"]) == {KEY, "tiny-gemma2"} and len(table) == 30
        assert sorted(table["condition"].unique()) == [
            "agency 0.5",
            "agency 1",
            "communion 0.5",
            "communion 1",
            "control",
        ]
        slopes, means = planting.dose_response(table, by=["planted_from", "list"])
        slopes = slopes.set_index("planted_from")["slope"]
        assert np.isclose(slopes[KEY], -4.0) and np.isclose(slopes["tiny-gemma2"], 4.0)
        assert len(means) == 10 and (means["n"] == 3).all()
        assert planting.with_conditions(table.assign(base="not planted"), keys).empty
    finally:
        for key in keys:
            registry.REGISTRY.pop(key, None)
