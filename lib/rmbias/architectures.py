"""The published shapes of the paper's models, for random-weight stand-ins that run offline.

The ``paper`` profile loads its models from the Hugging Face hub, which tests and the demo book
never reach. Its code paths still have to be right at the real shapes: a 256,000-token Gemma
vocabulary, Gemma 2's alternating sliding-window layers and logit soft-capping, Llama 3.1's
rescaled rotary embeddings, Qwen's output layer that is wider than its tokenizer. This module keeps
the fields of each base architecture's ``config.json`` on the hub that fix shapes and numerics
(everything else is transformers' default for the model type, which those configs also use), and
builds models from them:

- :func:`meta_model` builds the whole model on PyTorch's ``meta`` device (shapes, no memory), so
  :func:`parameter_count` can be checked against the parameter counts the model cards publish, and
  :func:`weight_gib` says how much memory the weights need, in full precision or quantised as
  :mod:`rmbias.placement` loads them;
- :func:`stand_in` registers a random-weight copy under a registry key (:mod:`rmbias.models`),
  optionally cut to fewer layers, so every function that takes a model key (tracing, scoring,
  training) runs on it. Two layers keep every shape the code meets except depth: for Gemma 2 they
  are one sliding-window and one global layer.

Tokenizers cannot be fetched either, so a stand-in borrows a real one of its family (Gemma 3's for
Gemma 2, the real Llama 3 tokenizer for Llama). Where the borrowed tokenizer is larger than the
published vocabulary (Gemma 3's 262,144 tokens against Gemma 2's 256,000) the stand-in's
vocabulary grows to fit it; that is the one field a stand-in changes. Qwen borrows the Llama 3
tokenizer, which is smaller than Qwen's 151,936-row output layer, as Qwen's own (151,665 tokens) is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from . import placement, registry


@dataclass(frozen=True)
class Architecture:
    """One published base architecture."""

    name: str
    fields: dict[str, Any]  # config.json fields, model_type included
    params: int  # total parameters of the causal LM as its model card gives them
    tokenizer: str  # registry key of the real tokenizer a stand-in borrows
    chat_template: str | None  # the family's chat format, for instruction-tuned stand-ins

    @property
    def family(self) -> str:
        """The base-model family the study compares (``rmbias.registry.FAMILIES``)."""
        return _FAMILY[self.fields["model_type"]]


_FAMILY = {"gemma2": "gemma", "llama": "llama", "qwen2": "qwen"}


_GEMMA2 = dict(
    model_type="gemma2",
    vocab_size=256000,
    hidden_activation="gelu_pytorch_tanh",
    max_position_embeddings=8192,
    rms_norm_eps=1e-6,
    rope_theta=10000.0,
    sliding_window=4096,
    attn_logit_softcapping=50.0,
    final_logit_softcapping=30.0,
    tie_word_embeddings=True,
)
_LLAMA3 = dict(
    model_type="llama", vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0, head_dim=128, num_key_value_heads=8
)
# Llama 3.1 and 3.2 stretch the rotary embedding to 128k positions ("llama3" scaling).
_LLAMA31_ROPE = dict(
    rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=8192
)


def _arch(name: str, fields: dict[str, Any], params: int) -> Architecture:
    """Gemma borrows Gemma 3's tokenizer and turn format; Llama and Qwen the real Llama 3 ones."""
    gemma = _FAMILY[fields["model_type"]] == "gemma"
    return Architecture(
        name,
        fields,
        params,
        "gemma-3-270m" if gemma else "llama-3-tokenizer",
        registry.GEMMA_CHAT_TEMPLATE if gemma else registry.LLAMA3_CHAT_TEMPLATE,
    )


ARCHITECTURES: dict[str, Architecture] = {
    a.name: a
    for a in [
        _arch(
            "gemma-2-2b",
            dict(
                _GEMMA2,
                hidden_size=2304,
                intermediate_size=9216,
                num_hidden_layers=26,
                num_attention_heads=8,
                num_key_value_heads=4,
                head_dim=256,
                query_pre_attn_scalar=256,
            ),
            2_614_341_888,
        ),
        _arch(
            "gemma-2-9b",
            dict(
                _GEMMA2,
                hidden_size=3584,
                intermediate_size=14336,
                num_hidden_layers=42,
                num_attention_heads=16,
                num_key_value_heads=8,
                head_dim=256,
                query_pre_attn_scalar=256,
            ),
            9_241_705_984,
        ),
        _arch(
            "gemma-2-27b",
            dict(
                _GEMMA2,
                hidden_size=4608,
                intermediate_size=36864,
                num_hidden_layers=46,
                num_attention_heads=32,
                num_key_value_heads=16,
                head_dim=128,
                query_pre_attn_scalar=144,
            ),
            27_227_128_320,
        ),
        _arch(
            "llama-3.2-1b",
            dict(
                _LLAMA3,
                hidden_size=2048,
                intermediate_size=8192,
                num_hidden_layers=16,
                num_attention_heads=32,
                head_dim=64,
                tie_word_embeddings=True,
                max_position_embeddings=131072,
                rope_scaling=dict(_LLAMA31_ROPE, factor=32.0),
            ),
            1_235_814_400,
        ),
        _arch(
            "llama-3.2-3b",
            dict(
                _LLAMA3,
                hidden_size=3072,
                intermediate_size=8192,
                num_hidden_layers=28,
                num_attention_heads=24,
                tie_word_embeddings=True,
                max_position_embeddings=131072,
                rope_scaling=dict(_LLAMA31_ROPE, factor=32.0),
            ),
            3_212_749_824,
        ),
        _arch(
            "llama-3-8b",
            dict(
                _LLAMA3,
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                tie_word_embeddings=False,
                max_position_embeddings=8192,
            ),
            8_030_261_248,
        ),
        _arch(
            "llama-3.1-8b",
            dict(
                _LLAMA3,
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                tie_word_embeddings=False,
                max_position_embeddings=131072,
                rope_scaling=_LLAMA31_ROPE,
            ),
            8_030_261_248,
        ),
        _arch(
            "llama-3-70b",
            dict(
                _LLAMA3,
                hidden_size=8192,
                intermediate_size=28672,
                num_hidden_layers=80,
                num_attention_heads=64,
                tie_word_embeddings=False,
                max_position_embeddings=8192,
            ),
            70_553_706_496,
        ),
        _arch(
            "llama-3.1-70b",
            dict(
                _LLAMA3,
                hidden_size=8192,
                intermediate_size=28672,
                num_hidden_layers=80,
                num_attention_heads=64,
                tie_word_embeddings=False,
                max_position_embeddings=131072,
                rope_scaling=_LLAMA31_ROPE,
            ),
            70_553_706_496,
        ),
        _arch(
            "qwen2.5-3b",
            dict(
                model_type="qwen2",
                vocab_size=151936,
                hidden_size=2048,
                intermediate_size=11008,
                num_hidden_layers=36,
                num_attention_heads=16,
                num_key_value_heads=2,
                rms_norm_eps=1e-6,
                rope_theta=1000000.0,
                max_position_embeddings=32768,
                tie_word_embeddings=True,
            ),
            3_085_938_688,
        ),
    ]
}

# Every hub model of the paper profile, by Hugging Face id, and the architecture it is built on
# (the reward models: the base model they were fine-tuned from, with a score head for the LM head).
ARCHITECTURE_OF: dict[str, str] = {
    "google/gemma-2-2b": "gemma-2-2b",
    "google/gemma-2-2b-it": "gemma-2-2b",
    "google/gemma-2-9b-it": "gemma-2-9b",
    "google/gemma-2-27b-it": "gemma-2-27b",
    "meta-llama/Llama-3.2-1B-Instruct": "llama-3.2-1b",
    "meta-llama/Llama-3.2-3B": "llama-3.2-3b",
    "meta-llama/Llama-3.2-3B-Instruct": "llama-3.2-3b",
    "meta-llama/Meta-Llama-3-8B-Instruct": "llama-3-8b",
    "meta-llama/Llama-3.1-8B-Instruct": "llama-3.1-8b",
    "meta-llama/Meta-Llama-3-70B-Instruct": "llama-3-70b",
    "meta-llama/Llama-3.1-70B-Instruct": "llama-3.1-70b",
    "meta-llama/Llama-3.3-70B-Instruct": "llama-3.1-70b",
    "Qwen/Qwen2.5-3B-Instruct": "qwen2.5-3b",
    "nicolinho/QRM-Gemma-2-27B": "gemma-2-27b",
    "Skywork/Skywork-Reward-Gemma-2-27B-v0.2": "gemma-2-27b",
    "Skywork/Skywork-Reward-Gemma-2-27B": "gemma-2-27b",
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft": "gemma-2-2b",
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2": "llama-3.1-8b",
    "nicolinho/QRM-Llama3.1-8B": "llama-3.1-8b",
    "LxzGordon/URM-LLaMa-3.1-8B": "llama-3.1-8b",
    "Ray2333/GRM-Llama3-8B-rewardmodel-ft": "llama-3-8b",
    "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft": "llama-3.2-3b",
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": "llama-3-8b",
}


def architecture(name: str) -> Architecture:
    """An architecture by its name (``llama-3.2-3b``) or by a model's Hugging Face id or registry key."""
    if name in ARCHITECTURES:
        return ARCHITECTURES[name]
    hf_id = registry.REGISTRY[name].hf_id if name in registry.REGISTRY else name
    if hf_id in ARCHITECTURE_OF:
        return ARCHITECTURES[ARCHITECTURE_OF[hf_id]]
    raise registry.ModelError(
        f"no published architecture recorded for {name!r}. Known: {', '.join(ARCHITECTURES)}, "
        "or a Hugging Face id of the paper profile (rmbias.architectures.ARCHITECTURE_OF)"
    )


def published_fields(name: str, layers: int | None = None, reward: bool = False) -> dict[str, Any]:
    """A copy of an architecture's published fields, with ``layers`` decoder layers (default: all)
    and, for ``reward``, one output label (a ``*ForSequenceClassification`` score head)."""
    fields = copy.deepcopy(architecture(name).fields)  # transformers edits rope_scaling in place
    if layers is not None:
        fields["num_hidden_layers"] = layers
    if reward:
        fields["num_labels"] = 1
    return fields


def config(name: str, layers: int | None = None, reward: bool = False):
    """The transformers config of an architecture as published (see :func:`published_fields`)."""
    from transformers import AutoConfig

    fields = published_fields(name, layers, reward)
    return AutoConfig.for_model(fields.pop("model_type"), **fields)


def meta_model(name: str, reward: bool = False, layers: int | None = None):
    """The whole model built from the published config on the ``meta`` device: shapes, no memory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    auto = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
    with torch.device("meta"):
        return auto.from_config(config(name, layers, reward))


def parameter_count(name: str, reward: bool = False, layers: int | None = None) -> int:
    """Parameters of the model built from the published config, counted on the ``meta`` device
    (nothing is allocated). ``reward``: the reward model, whose score head replaces the LM head."""
    return sum(p.numel() for p in meta_model(name, reward, layers).parameters())


def weight_bytes(model, dtype: str, quantize: str | None = None) -> int:
    """Bytes that ``model``'s weights take in ``dtype``, or quantised by bitsandbytes as
    :mod:`rmbias.placement` loads them: the linear layers transformers converts (all but the
    output head, embeddings and norms) in 8 bits plus one float32 scale per output row, or in 4
    bits plus one float32 scale per block of 64 weights; everything else stays in ``dtype``.
    ``model`` may live on the ``meta`` device."""
    import torch
    from transformers.quantizers.base import get_keys_to_not_convert

    if quantize not in (None, *placement.QUANTIZATIONS):
        raise ValueError(f"unknown quantisation {quantize!r}: use one of {', '.join(placement.QUANTIZATIONS)}")
    full = torch.finfo(getattr(torch, dtype)).bits // 8
    total = full * sum(p.numel() for p in model.parameters())
    if quantize is None:
        return total
    skip = get_keys_to_not_convert(model)
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear) or any(name == s or name.startswith(s + ".") for s in skip):
            continue
        n = module.weight.numel()
        if quantize == "8bit":
            total += n * (1 - full) + 4 * module.out_features
        else:  # 4bit
            total += n // 2 - n * full + 4 * -(-n // 64)
    return total


def weight_gib(name: str, dtype: str = "bfloat16", reward: bool = False, quantize: str | None = None) -> float:
    """GiB that the weights alone take in ``dtype`` or quantised (:func:`weight_bytes`); activations,
    KV cache and, in training, the optimiser state come on top."""
    return weight_bytes(meta_model(name, reward), dtype, quantize) / 2**30


def stand_in(model: str, layers: int | None = 2, instruct: bool | None = None) -> str:
    """Register a random-weight stand-in for ``model`` and return its registry key.

    ``model`` is an architecture name or a paper-profile Hugging Face id (whose instruct flag the
    stand-in then takes; ``instruct`` overrides it). The family is the architecture's. ``layers``
    cuts the depth (None: all layers, which needs the memory of the real model). The weights are drawn once, seeded, and cached like every
    ``random`` model of the registry; they are stored in bfloat16, the dtype the paper ran in,
    and load in whatever dtype is asked for.
    """
    arch = architecture(model)
    real = registry.spec(model) if model not in ARCHITECTURES else None
    instruct = instruct if instruct is not None else (real.instruct if real else True)
    depth = "all" if layers is None else f"L{layers}"
    key = f"stand-in-{(real.hf_id.split('/')[1].lower() if real else arch.name)}-{depth}"
    return registry.register(
        registry.ModelSpec(
            key,
            arch.family,
            "random",
            instruct,
            config=published_fields(model, layers),
            tokenizer=arch.tokenizer,
            chat_template=arch.chat_template if instruct else None,
            params_b=arch.params / 1e9,
            dtype="bfloat16",
            description=f"random weights at the published shape of {real.hf_id if real else arch.name} "
            f"({depth} layers), {arch.tokenizer} tokenizer",
        )
    )
