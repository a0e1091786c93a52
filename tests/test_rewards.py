"""Scoring runs: resumable chunks that give the same output as an uninterrupted run."""

import json

import pandas as pd
import pytest

from rmbias import architectures, models, placement, registry, rewards
from rmbias.prompts import select

PROMPTS = select(["greatest_ever_one", "worst_ever_one", "best_world_please"])
WORDS = ["love", "freedom", "family", "success", "ambition", "friendship"]


class Stop(Exception):
    pass


def stop_after(n_batches):
    calls = []

    def on_batch(done):
        calls.append(done)
        if len(calls) == n_batches:
            raise Stop

    return on_batch


def test_an_interrupted_word_run_resumes_to_identical_output(tmp_path):
    whole = rewards.score_words("tiny-llama", PROMPTS, WORDS, tmp_path / "a", batch_size=4, progress=False)
    assert len(whole) == 3 * 6 and whole["score"].std() > 0
    assert list(whole["prompt"].unique()) == list(PROMPTS["key"])
    with pytest.raises(Stop):  # killed in the second prompt's second batch
        rewards.score_words(
            "tiny-llama", PROMPTS, WORDS, tmp_path / "b", batch_size=4, progress=False, on_batch=stop_after(4)
        )
    folder = tmp_path / "b" / "tiny-llama"
    assert sorted(p.name for p in folder.glob("*.meta.json")) == ["greatest_ever_one.meta.json"]
    calls = []
    resumed = rewards.score_words(
        "tiny-llama", PROMPTS, WORDS, tmp_path / "b", batch_size=4, progress=False, on_batch=calls.append
    )
    assert len(calls) == 2 * 2  # only the two missing prompts were computed
    pd.testing.assert_frame_equal(resumed, whole)
    meta = json.loads((folder / "worst_ever_one.meta.json").read_text())
    for field in (
        "request",
        "revision",
        "dtype",
        "attention",
        "batch_size",
        "versions",
        "rendered_chat",
        "chat_template_sha256",
        "candidates_per_second",
    ):
        assert field in meta
    assert "What, in one word, is the worst thing ever?" in meta["rendered_chat"]


def test_a_chunk_for_another_request_is_recomputed_not_reused(tmp_path):
    first = rewards.score_words("tiny-llama", PROMPTS[:1], WORDS, tmp_path, progress=False)
    other = rewards.score_words("tiny-llama", PROMPTS[:1], WORDS[:3], tmp_path, progress=False)
    assert list(other["word"]) == WORDS[:3]
    pd.testing.assert_frame_equal(other.reset_index(drop=True), first[:3].reset_index(drop=True))


def test_vocabulary_run_in_parts_resumes_and_reports_round_trips(tmp_path):
    tokenizer = models.load_tokenizer("tiny-gemma2")
    ids = list(range(2000, 2050))
    args = dict(token_ids=ids, part_size=20, batch_size=8, progress=False)
    whole = rewards.score_vocabulary("tiny-gemma2", "greatest_ever_one", PROMPTS["text"][0], tmp_path / "a", **args)
    assert list(whole["token_id"]) == ids and whole["token"][0] == tokenizer.decode([2000])
    assert whole["round_trips"].dtype == bool
    with pytest.raises(Stop):
        rewards.score_vocabulary(
            "tiny-gemma2", "greatest_ever_one", PROMPTS["text"][0], tmp_path / "b", on_batch=stop_after(4), **args
        )
    resumed = rewards.score_vocabulary("tiny-gemma2", "greatest_ever_one", PROMPTS["text"][0], tmp_path / "b", **args)
    pd.testing.assert_frame_equal(resumed, whole)


def test_bad_input_is_named(tmp_path):
    with pytest.raises(registry.ModelError, match="unknown model 'no-such-rm'"):
        rewards.score_words("no-such-rm", PROMPTS, WORDS, tmp_path)
    with pytest.raises(ValueError, match="word list is empty"):
        rewards.score_words("tiny-llama", PROMPTS, [], tmp_path)


def test_paper_reward_models_are_registered_with_their_heads_dtypes_and_pins():
    paper = [s for s in registry.PAPER_REWARD_MODELS]
    assert len(paper) == 10 and sum(s.family == "gemma" for s in paper) == 4
    own = {s.hf_id: s.reward for s in paper if s.reward != "head"}
    assert own == {
        "nicolinho/QRM-Gemma-2-27B": "qrm-gemma2",
        "nicolinho/QRM-Llama3.1-8B": "qrm-llama",
        "RLHFlow/ArmoRM-Llama3-8B-v0.1": "armorm",
    }
    urm = registry.spec("LxzGordon/URM-LLaMa-3.1-8B")  # the paper's route: the plain head, column 0
    assert urm.reward == "head" and urm.num_labels == 10 and urm.unused_weights == ("weights.fc.",)
    assert registry.spec("urm-llama-3.1-8b-gated").label != urm.label  # the extension never mixes with it
    assert all(s.num_labels == 1 for s in paper if s.reward == "head" and s is not urm)
    assert all(len(s.revision) == 40 for s in paper if s.hf_id in own)
    assert registry.spec("Ray2333/GRM-gemma2-2B-rewardmodel-ft").dtype == "float16"
    assert registry.default_attention("Skywork/Skywork-Reward-Gemma-2-27B") == "eager"


def test_the_engine_check_never_loads_a_large_model_in_float32_or_twice(monkeypatch):
    from rmbias import memory

    paper = [s.hf_id for s in registry.PAPER_REWARD_MODELS]
    free = {"bytes": 24 * 2**30}  # a 24 GB machine without a GPU
    monkeypatch.setattr(memory, "free_bytes", lambda device: free["bytes"])
    width = {"float32": 4, "bfloat16": 2, "float16": 2}  # the published sizes (rmbias.architectures), offline
    monkeypatch.setattr(
        memory,
        "weight_bytes",
        lambda key, dtype, quantize=None, reward=False: (
            architectures.parameter_count(key, reward=reward) * width[dtype]
        ),
    )
    # on a CPU, the models whose float32 copy fits are checked in float32 against their bf16 copies:
    # of the paper's, only the 2-3B GRM models; never an 8B or 27B one
    plan = rewards.engine_check_plan(paper, "cpu", "bfloat16")
    assert plan == [
        ("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "float32"),
        ("Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "float32"),
    ]
    # where none fits in float32: the smallest, once, in its own dtype
    free["bytes"] = 8 * 2**30
    assert rewards.engine_check_plan(paper, "cpu", "bfloat16") == [("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "float16")]
    # on a GPU: the smallest in its own dtype, however much memory there is
    free["bytes"] = 140 * 2**30
    monkeypatch.setattr(placement, "resolve_device", lambda device: "cuda")
    assert rewards.engine_check_plan(paper, "cuda", "bfloat16") == [("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "float16")]


def test_every_paper_model_is_pinned_where_a_public_record_gives_a_commit():
    from rmbias.profiles import PROFILES

    paper = PROFILES["paper"]
    unpinned = sorted(k for k in (*paper.reward_models, *paper.language_models) if registry.spec(k).revision is None)
    assert unpinned == ["Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "Ray2333/GRM-gemma2-2B-rewardmodel-ft"]
    assert all(len(registry.spec(k).revision) == 40 for k in paper.language_models)
