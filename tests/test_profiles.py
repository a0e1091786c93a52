import pandas as pd
import pytest

from rmbias import profiles


def test_default_is_demo_and_overrides_apply():
    assert profiles.resolve().name == "demo"
    tiny = profiles.resolve("tiny", tokenizers=["tiny-llama"], max_words=None)
    assert tiny.tokenizers == ("tiny-llama",)  # lists become tuples
    assert tiny.max_words == profiles.PROFILES["tiny"].max_words  # None keeps the default


def test_unknown_profile_and_setting_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid profiles: tiny, demo, paper"):
        profiles.resolve("huge")
    with pytest.raises(ValueError, match="unknown setting\\(s\\) \\['batch'\\].*valid settings: tokenizers"):
        profiles.resolve("demo", batch=3)
    with pytest.raises(ValueError, match="takes a list"):
        profiles.resolve("demo", tokenizers="tiny-llama")


def test_limit_words_samples_per_category_reproducibly():
    table = pd.DataFrame({"word": list("abcdefgh"), "category": ["A"] * 6 + ["B"] * 2})
    small = profiles.limit_words(table, 3)
    assert small["category"].value_counts().to_dict() == {"A": 3, "B": 2}
    assert small.equals(profiles.limit_words(table, 3))
    assert profiles.limit_words(table, None) is table


@pytest.mark.parametrize(
    "setting, value, message",
    [
        ("prompts", ["greatest_ever"], "setting 'prompts': unknown prompt key\\(s\\) \\['greatest_ever'\\]"),
        ("forced_prompts", ["best"], "setting 'forced_prompts': unknown prompt key"),
        ("scored_prompts", ["worst_ever"], "setting 'scored_prompts': unknown prompt key"),
        ("language_models", ["gemma-2-2b-itt"], "setting 'language_models': unknown model 'gemma-2-2b-itt'"),
        ("language_models", ["llama-3-tokenizer"], "is a tokenizer only"),
        ("reward_models", ["google/gemma-2-2b-it"], "not a reward model on record"),
        ("dtype", "fp16", "setting 'dtype': 'fp16' is not one of"),
        ("device", "tpu", "setting 'device': 'tpu'"),
        ("quantize", "3bit", "setting 'quantize': unknown quantisation"),
        ("tokenisation", "double", "setting 'tokenisation': unknown tokenisation"),
        ("chat_date", "", "setting 'chat_date'"),
        ("batch_size", 0, "setting 'batch_size': 0 must be at least 1"),
        ("bases", ["google/gemma-2-2b-it"], "setting 'bases': the ablation compares bases; give at least two"),
        ("bases", ["gemma-2-2b-it", "lama-3"], "setting 'bases': unknown model 'lama-3'"),
        ("sizes", [96, 0], "setting 'sizes'.*below one pair"),
        ("seeds", [], "setting 'seeds': give at least one seed"),
        ("score_every", 0, "setting 'score_every': 0 must be at least 1"),
        ("n_permutations", 0, "setting 'n_permutations': 0 must be at least 1"),
    ],
)
def test_a_bad_setting_is_refused_when_the_profile_resolves(setting, value, message):
    with pytest.raises(ValueError, match=message):
        profiles.resolve("paper", **{setting: value})


def test_the_paper_profile_renders_chats_as_the_authors_did():
    from rmbias import scoring

    assert profiles.resolve("paper").chat == scoring.ChatFormat("authors", scoring.UNSET_DATE)
    assert profiles.resolve("demo").chat == scoring.DEFAULT_CHAT
    assert profiles.resolve("paper", device="cuda:1").device == "cuda:1"


def test_the_ablation_grid_and_permutations_are_profile_settings():
    from rmbias import ablation

    demo = profiles.resolve("demo")
    assert demo.bases == demo.language_models  # the demo's two models, named once
    assert (demo.n_permutations, demo.permutation_seed) == (9999, 42)  # the authors' script
    grid = ablation.Ablation.for_profile(profiles.resolve("demo", seeds=[3], sizes=[12, 24], score_every=2))
    assert (grid.bases, grid.seeds, grid.sizes, grid.score_every) == (demo.bases, (3,), (12, 24), 2)
    assert ablation.Ablation.for_profile(demo) == ablation.Ablation.demo()
    # the paper profile names no sizes: they follow from the data (the authors' every-kth strides)
    paper = ablation.Ablation.for_profile(profiles.resolve("paper"))
    assert paper == ablation.Ablation.paper() and paper.strides == (64, 32, 16, 8) and paper.seeds == (0, 1, 2)
    assert ablation.Ablation.for_profile(profiles.resolve("paper", sizes=[16])).strides == ()
    assert (
        ablation.Ablation.for_profile(profiles.resolve("paper", tokenisation="single-bos")).recipe.tokenisation
        == "single-bos"
    )


def test_the_demo_scores_nouns_on_a_balanced_subset_of_the_prompts_and_the_paper_on_all():
    from rmbias import prompts

    demo = prompts.select(profiles.resolve("demo").scored_prompts)
    assert demo["framing"].value_counts().to_dict() == {"positive": 6, "negative": 6}
    assert prompts.HEADLINE in set(demo["key"])
    assert profiles.resolve("paper").scored_prompts is None  # chapter 02 then scores the profile's `prompts`: all 54
    assert profiles.resolve("demo", scored_prompts=["worst_ever_one"]).scored_prompts == ("worst_ever_one",)
