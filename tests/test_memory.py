"""The fit check: models that cannot fit are named before anything loads."""

import pytest

from rmbias import memory, models, registry


def test_weights_are_counted_from_the_config_in_the_dtype_asked():
    fp32 = memory.weight_bytes("tiny-llama", "float32")
    assert memory.weight_bytes("tiny-llama", "bfloat16") * 2 == fp32
    model, _ = models.load_causal_lm("tiny-llama")
    assert fp32 == 4 * sum(p.numel() for p in model.parameters())
    reward, _ = models.load_reward_model("tiny-llama")  # tied LM head replaced by a one-output score head
    assert memory.weight_bytes("tiny-llama", "float32", reward=True) == 4 * sum(p.numel() for p in reward.parameters())
    # a trained demo reward model is counted from its base's config, without training it
    assert memory.weight_bytes("smollm2-135m-rm", "float32", reward=True) > 4 * 130e6


def test_models_that_do_not_fit_are_named_or_skipped_before_anything_loads(monkeypatch):
    def no_load(*args, **kwargs):
        raise AssertionError("a fit check must not load weights")

    monkeypatch.setattr(models, "load_causal_lm", no_load)
    monkeypatch.setattr(models, "load_reward_model", no_load)

    def need(key):
        return memory.weight_bytes(key, "float32") * 1.1 + memory.GIB

    room = int((need("tiny-llama") + need("tiny-gemma2")) / 2)  # tiny-llama fits, tiny-gemma2 (262k rows) not
    keys = ["tiny-llama", "tiny-gemma2"]
    assert memory.check_fit(keys, dtype="float32", device="cpu", available=2 * room).kept == keys
    with pytest.raises(registry.ModelError, match="1 model\\(s\\) do not fit cpu.*tiny-gemma2 needs .*SKIP_UNFIT=True"):
        memory.check_fit(keys, dtype="float32", device="cpu", available=room)
    fit = memory.check_fit(keys, dtype="float32", device="cpu", available=room, skip_unfit=True)
    assert fit.kept == ["tiny-llama"] and fit.skipped == ["tiny-gemma2"] and fit.table["fits"].tolist() == [True, False]
    assert memory.fit_summary(fit)["skipped_unfit"] == ["tiny-gemma2"]
    with pytest.raises(registry.ModelError, match="do not fit"):  # training needs a larger margin
        memory.check_fit(["tiny-llama"], dtype="float32", device="cpu", available=room, purpose="training")


def test_a_quantised_model_needs_less():
    full = memory.weight_bytes("tiny-llama", "bfloat16")
    assert memory.weight_bytes("tiny-llama", "bfloat16", "8bit") < full
    assert memory.weight_bytes("tiny-llama", "bfloat16", "4bit") < memory.weight_bytes("tiny-llama", "bfloat16", "8bit")
