"""The model registry: specs and families, readable without torch."""

import subprocess
import sys

import pytest

import rmbias
from rmbias import ablation, registry


def test_the_registry_imports_without_torch_or_transformers():
    # Blocking both makes any import of them fail: the registry, and the profiles' model lists it
    # describes, must be readable where neither is installed.
    # Compared with a fresh interpreter that may import them, not with this process: other tests in
    # this worker register stand-ins, so this process's registry can hold more than the shipped one.
    block = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
    code = "import rmbias.registry as r, rmbias.keys\nprint(sorted(r.REGISTRY), r.family_of('google/gemma-2-2b-it'))"

    def run(source: str) -> str:
        return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True).stdout

    blocked, free = run(block + code), run(code)
    assert blocked == free  # the same specs, every one of them, with or without torch
    assert blocked.split()[-1] == "gemma" and "'smollm2-135m-rm'" in blocked


@pytest.mark.parametrize(
    "name, family",
    [
        ("smollm2-135m-rm", "llama"),  # a registry key: the spec's family, though the name marks none
        ("gemma-3-270m", "gemma"),
        ("Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "gemma"),  # a registered hub id
        ("acme/Some-Gemma-RM", "gemma"),  # an unregistered hub id, by its name
        # the model ids of the authors' released ablation tables
        ("R-Gem-2B", "gemma"),
        ("R-Lla-3B", "llama"),
        ("llama3b_unified27k_lora", "llama"),
        ("qwen--qwen2.5-3B-instruct", "qwen"),
        ("google--gemma-2b-it-Unified", "gemma"),
    ],
)
def test_family_of_reads_the_spec_first_and_else_the_name(name, family):
    assert registry.family_of(name) == family


def test_a_name_that_marks_no_family_or_two_is_refused_with_the_way_out():
    with pytest.raises(registry.ModelError, match="cannot tell the base family of 'mistralai/Mistral-7B'.*register"):
        registry.family_of("mistralai/Mistral-7B")
    with pytest.raises(registry.ModelError, match="marks gemma and llama"):
        registry.family_of("gemma-llama-merge")


def test_family_pairs_put_gemma_first_and_skip_other_families():
    keys = ["meta-llama/Llama-3.2-3B", "google/gemma-2-2b", "qwen2.5-3b-instruct", "google/gemma-2-2b-it"]
    assert registry.family_pairs(keys) == [
        ("google/gemma-2-2b", "meta-llama/Llama-3.2-3B"),
        ("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B"),
    ]


def test_a_registered_spec_is_found_and_a_trained_model_has_its_builder(monkeypatch):
    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))
    key = registry.register(registry.ModelSpec("acme-rm", "qwen", "hub", True, hf_id="acme/rm"))
    assert registry.spec("acme/rm").key == key == "acme-rm" and registry.family_of("acme-rm") == "qwen"
    # rmbias.ablation registers the builder of trained models when it is imported (as here)
    assert registry.builder("trained").__module__ == ablation.__name__
    # and where nothing has imported it yet, the loader imports it on first need
    monkeypatch.setattr(registry, "_BUILDERS", {})
    monkeypatch.delitem(sys.modules, "rmbias.ablation")  # restored after the test, and so is the
    monkeypatch.setattr(rmbias, "ablation", ablation)  # package's attribute the import rebinds
    assert registry.builder("trained").__module__ == "rmbias.ablation"
    monkeypatch.setattr(registry, "_BUILDERS", {})
    monkeypatch.setitem(registry._BUILT_BY, "trained", "rmbias.keys")  # a module that registers nothing
    with pytest.raises(registry.ModelError, match="no builder is registered for models of source 'trained'"):
        registry.builder("trained")
