"""Stand-ins for the paper profile's hub files: a local Hugging Face cache in the hub's own layout.

The paper profile loads its models and preference data from the Hugging Face hub by id and pinned
revision, which no test can reach. A rehearsal of the real run instead points ``HF_HUB_CACHE`` at a
folder laid out as the hub's cache (``models--org--name/refs/main`` and
``models--org--name/snapshots/<commit>/...``) and runs with ``HF_HUB_OFFLINE=1``: every
``from_pretrained(hub_id, revision=...)`` and ``snapshot_download`` of the book then finds its files
there, by the same code path a real run takes, with no switch in the library. What the snapshots hold
is up to the caller: random weights at a narrow width in the published layout (config fields, head,
weight names), a real tokenizer of the same family with the model's chat template, and preference
records in the dataset's published layout.

:func:`snapshot_folder` makes the folder of one snapshot (and the ref that names it), for a model or a
dataset repository.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_TYPES = {"model": "models", "dataset": "datasets"}
MAIN = "main"


def repo_folder(cache: Path, repo_id: str, repo_type: str = "model") -> Path:
    """The cache folder of one hub repository (``models--org--name``), as huggingface_hub names it."""
    if repo_type not in REPO_TYPES:
        raise ValueError(f"unknown repository type {repo_type!r}: use one of {', '.join(REPO_TYPES)}")
    return Path(cache) / f"{REPO_TYPES[repo_type]}--{repo_id.replace('/', '--')}"


def snapshot_folder(cache: Path, repo_id: str, revision: str | None = None, repo_type: str = "model") -> Path:
    """Create (if needed) and return the snapshot folder of ``repo_id`` at ``revision``.

    ``revision`` is the 40-hex commit a pinned load asks for; ``None`` stands for an unpinned load
    from the hub's main branch, and gets a made-up commit that ``refs/main`` points at. Either way
    ``refs/main`` names the snapshot, so unpinned loads find it too.
    """
    import hashlib

    commit = revision or hashlib.sha1(f"stand-in {repo_type} {repo_id}".encode()).hexdigest()
    if len(commit) != 40 or any(c not in "0123456789abcdef" for c in commit):
        raise ValueError(f"revision {revision!r} of {repo_id!r} is not a 40-hex commit; pins must be commits")
    folder = repo_folder(cache, repo_id, repo_type)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / MAIN).write_text(commit)
    snapshot = folder / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def store_file(snapshot: Path, filename: str, content: bytes) -> Path:
    """Store ``content`` as ``snapshot/filename`` the way huggingface_hub stores a download: a blob
    named by its sha256 in the repository's ``blobs/``, linked from the snapshot (a reader that
    checks a file against its blob name, :func:`rmbias.data.fetch_hub_file`, needs this layout).
    Returns the blob."""
    import hashlib
    import os

    blob = snapshot.parent.parent / "blobs" / hashlib.sha256(content).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(content)
    link = snapshot / filename
    link.unlink(missing_ok=True)
    link.symlink_to(os.path.relpath(blob, snapshot))
    return blob


# --- models: the paper profile's checkpoints in their published layouts ----------------------------

# The width of a model stand-in; depth, vocabulary and every other field stay as published
# (rmbias.architectures). Narrow layers keep every code path (attention, rotary scaling, soft-capping,
# the heads) and cost nothing.
NARROW = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2, head_dim=16)

# Chat templates as the published tokenizers write them (tool-use branches left out). Llama 3.1 and
# 3.3 print a system header with "Today Date", 26 Jul 2024 unless told otherwise; Llama 3.2 prints the
# day of the run instead (strftime_now), the trap of audit item C3.
_LLAMA31_HEADER = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}{{- 'Cutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' }}{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)
LLAMA31_CHAT_TEMPLATE = (
    "{%- if not date_string is defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}" + _LLAMA31_HEADER
)
LLAMA32_CHAT_TEMPLATE = (
    "{%- if not date_string is defined %}{%- if strftime_now is defined %}"
    "{%- set date_string = strftime_now('%d %b %Y') %}{%- else %}"
    "{%- set date_string = '26 Jul 2024' %}{%- endif %}{%- endif %}" + _LLAMA31_HEADER
)
QWEN25_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}"
    "{%- endif %}{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)
_LLAMA31 = (
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct",
    "Skywork/Skywork-Reward-Llama-3.1-8B-v0.2",
    "nicolinho/QRM-Llama3.1-8B",
    "LxzGordon/URM-LLaMa-3.1-8B",
)
_LLAMA32 = (
    "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "Ray2333/GRM-Llama3.2-3B-rewardmodel-ft",
)


def chat_template(hf_id: str) -> str | None:
    """The chat format of a paper model as its tokenizer publishes it (None for pretrained models)."""
    from .registry import GEMMA_CHAT_TEMPLATE, LLAMA3_CHAT_TEMPLATE, spec

    found = spec(hf_id)
    if not found.instruct:
        return None
    if hf_id in _LLAMA31:
        return LLAMA31_CHAT_TEMPLATE
    if hf_id in _LLAMA32:
        return LLAMA32_CHAT_TEMPLATE
    return {"gemma": GEMMA_CHAT_TEMPLATE, "llama": LLAMA3_CHAT_TEMPLATE, "qwen": QWEN25_CHAT_TEMPLATE}[found.family]


def _bn(name: str, width: int) -> dict[str, tuple[int, ...]]:
    return {f"{name}.{part}": (width,) for part in ("weight", "bias", "running_mean", "running_var")} | {
        f"{name}.num_batches_tracked": ()
    }


def _qrm_gate(linear: tuple[int, ...], norms: tuple[int, ...], final: int, hidden: int, n: int) -> dict:
    width = 1024  # gating_hidden_dim: the published code's default
    out = {"gating.logit_scale": (1,), f"gating.layers.{final}.weight": (n, width), f"gating.layers.{final}.bias": (n,)}
    for i, index in enumerate(linear):
        out[f"gating.layers.{index}.weight"] = (width, hidden if i == 0 else width)
    for index in norms:
        out |= _bn(f"gating.layers.{index}", width)
    return out


def head_layout(reward: str, config) -> dict[str, tuple[int, ...]]:
    """The non-body weights (name: shape) of a reward model's checkpoint as published, from the
    public record of each head (a table of its own, independent of :mod:`rmbias.heads`, so a test
    that loads it checks those classes against the published names)."""
    h = config.hidden_size
    if reward == "head":
        return {"score.weight": (config.num_labels, h)}
    if reward == "armorm":
        n, w = config.num_objectives, 1024
        return {
            "regression_layer.weight": (n, h),
            "reward_transform_matrix": (n, n),
            "gating.logit_scale": (1,),
            **{f"gating.layers.{i}.weight": (w, h if i == 0 else w) for i in range(3)},
            **{f"gating.layers.{i}.bias": (w,) for i in range(3)},
            "gating.layers.3.weight": (n, w),
            "gating.layers.3.bias": (n,),
        }
    if reward == "qrm-llama":
        n = config.num_objectives
        return {
            "regression_layer.weight": (n * config.num_quantiles, h),
            "reward_transform_matrix": (n, n),
            **_qrm_gate((0, 3, 6), (2, 5, 8), 9, h, n),
        }
    if reward == "qrm-gemma2":  # dropout (no weights) at 3 and 7; no transform matrix
        n = config.num_objectives
        return {"regression_layer.weight": (n * config.num_quantiles, h), **_qrm_gate((0, 4, 8), (2, 6, 10), 11, h, n)}
    if reward == "urm":
        return {
            "score.weight": (10, h),
            "weights.fc.0.weight": (h, h),
            "weights.fc.0.bias": (h,),
            "weights.fc.2.weight": (h, h),
            "weights.fc.2.bias": (h,),
            "weights.fc.4.weight": (5, h),
            "weights.fc.4.bias": (5,),
        }
    raise ValueError(f"no published layout on record for reward head {reward!r}")


# Per paper reward model: the published head layout, `architectures` and the config fields its head reads.
CHECKPOINTS: dict[str, tuple[str, str, dict]] = {
    "nicolinho/QRM-Gemma-2-27B": (
        "qrm-gemma2",
        "Gemma2ForRewardModelWithGating",
        dict(num_objectives=5, num_quantiles=19),
    ),
    "nicolinho/QRM-Llama3.1-8B": (
        "qrm-llama",
        "LlamaForRewardModelWithGating31",
        dict(num_objectives=19, num_quantiles=19),
    ),
    "RLHFlow/ArmoRM-Llama3-8B-v0.1": ("armorm", "LlamaForRewardModelWithGating", dict(num_objectives=19)),
    "LxzGordon/URM-LLaMa-3.1-8B": ("urm", "LlamaForSequenceClassificationWithNormal_Weights", dict(num_labels=10)),
    # GRM-gemma2-2B's config pads with <eos> (id 1) while its tokenizer pads with <pad>: kept.
    "Ray2333/GRM-gemma2-2B-rewardmodel-ft": ("head", "Gemma2ForSequenceClassification", dict(pad_token_id=1)),
}


def _random_head(layout: dict[str, tuple[int, ...]], generator) -> dict:
    """Random weights for a head table: linear layers scaled by fan-in (so gates are not flat),
    batch-norm statistics that are plausible, a verbosity-removing transform as ArmoRM's."""
    import torch

    out = {}
    for name, shape in layout.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[name] = torch.tensor(1000, dtype=torch.long)
        elif leaf == "running_var":
            out[name] = 0.5 + torch.rand(shape, generator=generator)
        elif name == "reward_transform_matrix":
            matrix = torch.eye(shape[0])
            matrix[4] -= 0.2 * torch.rand(shape[0], generator=generator)
            matrix[4, 4] = 0.0
            out[name] = matrix
        elif name == "gating.logit_scale" or (leaf == "weight" and len(shape) == 1):
            out[name] = 1.0 + 0.1 * torch.randn(shape, generator=generator)
        elif leaf == "weight":
            out[name] = torch.randn(shape, generator=generator) / shape[1] ** 0.5
        else:
            out[name] = 0.1 * torch.randn(shape, generator=generator)
    return out


def write_model_standin(
    cache: Path, hf_id: str, revision: str | None = None, layers: int = 2, tokenizers: dict | None = None
) -> Path:
    """Write a random-weight stand-in of a paper model into the hub cache ``cache``, in its published
    layout: the published config at :data:`NARROW` width and ``layers`` layers (vocabulary grown to
    the borrowed tokenizer, :mod:`rmbias.architectures`), ``architectures`` and head config fields,
    weights under the checkpoint's own names (body from transformers' own model, head from
    :func:`head_layout`), stored in bfloat16, and a real tokenizer of the family with the model's
    published chat format. ``revision`` is the commit a pinned load asks for. ``tokenizers`` caches
    the borrowed tokenizers between calls. Returns the snapshot folder."""
    import hashlib

    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoModelForCausalLM

    from . import architectures, models, registry

    spec = registry.spec(hf_id)
    arch = architectures.architecture(hf_id)
    tokenizers = {} if tokenizers is None else tokenizers
    if arch.tokenizer not in tokenizers:
        tokenizers[arch.tokenizer] = models.load_tokenizer(arch.tokenizer)
    tokenizer = tokenizers[arch.tokenizer]
    reward, architecture, extra = CHECKPOINTS.get(hf_id, ("head", None, {}))
    if spec.reward is None:
        reward = None
    if hf_id == "RLHFlow/ArmoRM-Llama3-8B-v0.1":  # a [PAD] token added to Llama 3's 128,256
        tokenizer = __import__("copy").deepcopy(tokenizer)
        tokenizer.add_special_tokens({"pad_token": "[PAD]"})
        extra = dict(extra, pad_token_id=tokenizer.convert_tokens_to_ids("[PAD]"))
    fields = dict(architectures.published_fields(hf_id, layers), **NARROW)
    if fields["model_type"] == "gemma2":
        fields["query_pre_attn_scalar"] = NARROW["head_dim"]
    config = models.random_config(fields, tokenizer)
    for name, value in extra.items():
        setattr(config, name, value)
    if reward is not None:
        config.num_labels = extra.get("num_labels", 1)
        default = (
            "Gemma2ForSequenceClassification" if fields["model_type"] == "gemma2" else "LlamaForSequenceClassification"
        )
        config.architectures = [architecture or default]
    seed = int(hashlib.sha256(hf_id.encode()).hexdigest()[:8], 16)
    torch.manual_seed(seed)
    folder = snapshot_folder(cache, hf_id, revision)
    if reward is None:  # a language model
        AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16).save_pretrained(folder)
    else:
        body = AutoModel.from_config(config, dtype=torch.bfloat16)
        state = {f"model.{k}": v.contiguous() for k, v in body.state_dict().items()}
        head = _random_head(head_layout(reward, config), torch.Generator().manual_seed(seed))
        state |= {k: (v if v.dtype == torch.long else v.to(torch.bfloat16)) for k, v in head.items()}
        config.dtype = torch.bfloat16
        config.save_pretrained(folder)
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    template = chat_template(hf_id)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    return folder


def paper_model_ids() -> list[str]:
    """Every hub model the paper profile loads: its tokenizers, language models, reward models, the
    model chapter 04 fine-tunes and the bases chapter 05 trains, once each."""
    from .profiles import PROFILES
    from .registry import spec

    paper = PROFILES["paper"]
    keys = [*paper.tokenizers, *paper.language_models, *paper.reward_models, paper.validation_model, *paper.bases]
    return list(dict.fromkeys(spec(k).hf_id for k in keys))


def write_paper_standins(cache: Path, layers: int = 2) -> list[str]:
    """Stand-ins of every model of :func:`paper_model_ids` (at their pinned revisions) and of the
    paper's preference datasets, written into the hub cache ``cache``: what a rehearsal of the paper
    profile needs. Returns the model ids."""
    from .architectures import architecture
    from .profiles import PROFILES
    from .registry import spec

    tokenizers: dict = {}
    ids = paper_model_ids()
    for hf_id in ids:
        write_model_standin(cache, hf_id, spec(hf_id).revision, layers, tokenizers)
    write_preference_standins(cache)
    # each language model's released file is named by the tokenizer its stand-in borrowed and saved
    # (chat templates aside, which decoding does not read): handed over, not read back from every
    # snapshot, so that each vocabulary is loaded and decoded once
    borrowed = {m: tokenizers[architecture(spec(m).hf_id).tokenizer] for m in PROFILES["paper"].language_models}
    write_logprob_standins(cache, borrowed)
    return ids


# --- the authors' released log-probabilities (Oxford-HIPlab/iclr2026-lm-logprobs) ------------------


def write_logprob_standins(cache: Path, snapshots: dict, rows: int = 1500) -> Path:
    """Stand-ins of the authors' log-probability files for the models in ``snapshots`` (hub id ->
    the model stand-in's snapshot, or a tokenizer; its tokenizer names the tokens), in the released layout:
    ``token_id``, ``token_name``, ``token_decoded``, then one column of log-probabilities per prompt
    key, all 54. Only the amount is cut: the first ``rows`` token ids and every id whose decoded
    string is a Big Two noun in any case or spacing (``freedom``, `` Freedom``), with random
    log-probabilities normalised over those rows. Each file is stored as huggingface_hub stores a
    download (:func:`store_file`). Returns the snapshot folder."""
    import hashlib

    import numpy as np
    import pandas as pd
    from transformers import AutoTokenizer

    from . import corpora, prompts
    from .logprobs import decoded_tokens
    from .released_logprobs import DATASET, file_name

    folder = snapshot_folder(cache, DATASET, repo_type="dataset")
    keys = prompts.all_prompts()["key"].tolist()
    words = set(corpora.big2_nouns()["word"])
    decodings: list[tuple[Any, list[str]]] = []  # each tokenizer object decoded once, however many models share it
    for hf_id, snapshot in snapshots.items():
        tokenizer = AutoTokenizer.from_pretrained(snapshot) if isinstance(snapshot, (str, Path)) else snapshot
        decoded = next((done for seen, done in decodings if seen is tokenizer), None)
        if decoded is None:
            decoded = decoded_tokens(tokenizer, len(tokenizer))["token"].tolist()
            decodings.append((tokenizer, decoded))
        ids = sorted(
            set(range(min(rows, len(decoded)))) | {i for i, text in enumerate(decoded) if text.strip().lower() in words}
        )
        rng = np.random.default_rng(int(hashlib.sha256(hf_id.encode()).hexdigest()[:8], 16))
        logits = rng.normal(scale=3.0, size=(len(keys), len(ids))).astype(np.float32)
        logprobs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        table = pd.DataFrame(
            {
                "token_id": ids,
                "token_name": tokenizer.convert_ids_to_tokens(ids),
                "token_decoded": [decoded[i] for i in ids],
            }
        )
        table = pd.concat([table, pd.DataFrame(logprobs.T.astype(np.float64), columns=keys)], axis=1)
        store_file(folder, file_name(hf_id), table.to_csv(index=False).encode())
    return folder


# --- preference datasets: Unified-Feedback and Skywork 80K in their published layouts -------------
#
# Chapter 05's paper profile reads two preference datasets from the hub (rmbias.preferences): the
# "all" subset of llm-blender/Unified-Feedback and Skywork/Skywork-Reward-Preference-80K-v0.2.
# write_preference_standins lays out a small copy of each, file for file as published, so that the
# real loader (huggingface_hub.snapshot_download, then datasets.load_dataset on the snapshot) runs
# offline. The layouts, from the datasets' cards and the Unified-Feedback build script
# (jdf-prog/UnifiedFeedback, process_and_upload_dataset.py, uploaded with push_to_hub):
#
# - Unified-Feedback: README.md whose YAML names the configuration "all" with data files
#   all/train-* and all/val-* (and eight other subsets, whose files a download of "all" skips and the
#   stand-in leaves out); six train shards all/train-0000N-of-00006.parquet and one val shard
#   all/val-00000-of-00001.parquet. Columns: id (string), conv_A and conv_B (lists of {role, content}),
#   conv_A_rating and conv_B_rating (float32), num_turns (int32), source (string: the original
#   dataset, e.g. "Anthropic/hh-rlhf", "openai/summarize_from_feedback(comparisons)", or an
#   UltraFeedback source such as "evol_instruct"). Arena ties are rated 0.5 and 0.5.
# - Skywork 80K v0.2: README.md with the default configuration's data files data/train-*; one
#   shard data/train-00000-of-00001.parquet. Columns: chosen and rejected (lists of
#   {content, role}), source (string).
#
# The records are made up (short, harmless), with the cases a loader must handle: ties, a
# summarisation source, multi-turn arena chats whose earlier replies differ, Nectar's negative rank
# ratings, and one reply holding Gemma's pad token as text ("<pad>").

UF_SHARDS = 6

_UF_SOURCES = (
    "Anthropic/hh-rlhf",
    "openai/summarize_from_feedback(comparisons)",
    "lmsys/chatbot_arena_conversations",
    "berkeley-nest/Nectar",
    "evol_instruct",
    "openai/webgpt_comparisons",
    "Dahoas/synthetic-instruct-gptj-pairwise",
    "argilla/ultrafeedback-binarized-preferences-cleaned",
)
_QUESTIONS = (
    "Name a colour.",
    "How do I boil an egg?",
    "What is two plus two?",
    "Suggest a name for a cat.",
    "Is the sea salty?",
    "Say hello in French.",
    "What is the capital of Italy?",
    "Recommend a book.",
)
_GOOD = (
    "Blue.",
    "Put it in boiling water for eight minutes.",
    "Four.",
    "Whiskers.",
    "Yes, it holds dissolved salts.",
    "Bonjour.",
    "Rome.",
    "Middlemarch, by George Eliot.",
)
_BAD = (
    "I will not say.",
    "Eggs are bad.",
    "Five, I think.",
    "No.",
    "Only on Tuesdays.",
    "Hallo.",
    "Milan.",
    "Books are boring.",
)
PAD_LITERAL_ROW = 5  # the Unified-Feedback train row whose chosen reply holds "<pad>" as text


def _turns(role_first: bool, pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    out = []
    for user, reply in pairs:
        for role, content in (("user", user), ("assistant", reply)):
            out.append({"role": role, "content": content} if role_first else {"content": content, "role": role})
    return out


def unified_feedback_records(n: int, offset: int = 0) -> list[dict]:
    """``n`` made-up Unified-Feedback records in the published columns (see the section note)."""
    records = []
    for i in range(offset, offset + n):
        source = _UF_SOURCES[i % len(_UF_SOURCES)]
        q, good, bad = _QUESTIONS[i % 8], _GOOD[i % 8], _BAD[i % 8]
        question = f"{q} (item {i})"
        if source.startswith("openai/summarize"):
            question = f"A post about item {i}: I lost my keys and found them in the fridge."
            good, bad = "Keys found in the fridge.", "A post."
        history = [(question, good)], [(question, bad)]
        if source.startswith("lmsys") and i % 3 == 0:  # arena: both models answer every turn
            history = (
                [(question, good), ("And why?", "Because it is so.")],
                [(question, bad), ("And why?", "I cannot say why.")],
            )
        if i == PAD_LITERAL_ROW:
            history = [(question, "Pad a batch with the <pad> token.")], history[1]
        high, low = (-1.0, -3.0) if source.startswith("berkeley-nest") else (1.0, 0.0)  # Nectar: negative ranks
        if source.startswith("lmsys") and i % 16 == 2:
            high = low = 0.5  # an arena tie (every other arena record)
        good_conv, bad_conv = _turns(True, history[0]), _turns(True, history[1])
        # the better conversation is conv_A in even records and conv_B in odd ones
        conv_a, conv_b, rating_a, rating_b = (
            (good_conv, bad_conv, high, low) if i % 2 == 0 else (bad_conv, good_conv, low, high)
        )
        records.append(
            {
                "id": f"standin_{i}",
                "conv_A": conv_a,
                "conv_B": conv_b,
                "conv_A_rating": rating_a,
                "conv_B_rating": rating_b,
                "num_turns": len(conv_a) // 2,
                "source": source,
            }
        )
    return records


def skywork_records(n: int) -> list[dict]:
    """``n`` made-up Skywork 80K records in the published columns (see the section note)."""
    sources = ("helpsteer2", "offsetbias", "wildguard", "magpie_ultra", "magpie_pro_llama3.1")
    return [
        {
            "chosen": _turns(False, [(f"{_QUESTIONS[i % 8]} (item {i})", _GOOD[i % 8])]),
            "rejected": _turns(False, [(f"{_QUESTIONS[i % 8]} (item {i})", _BAD[i % 8])]),
            "source": sources[i % len(sources)],
        }
        for i in range(n)
    ]


def _features(layout: str):
    from datasets import Features, Value

    if layout == "rated":
        message = [{"role": Value("string"), "content": Value("string")}]
        return Features(
            {
                "id": Value("string"),
                "conv_A": message,
                "conv_B": message,
                "conv_A_rating": Value("float32"),
                "conv_B_rating": Value("float32"),
                "num_turns": Value("int32"),
                "source": Value("string"),
            }
        )
    message = [{"content": Value("string"), "role": Value("string")}]
    return Features({"chosen": message, "rejected": message, "source": Value("string")})


# The other subsets Unified-Feedback's card declares (main, "Add all val dataset"), each with
# <name>/train-* and <name>/val-*: a download of the "all" subset leaves their files out.
UF_OTHER_SUBSETS = (
    "Nectar",
    "UltraFeedback",
    "chatbot_arena_conversations",
    "hh-rlhf",
    "summarize_from_feedback",
    "synthetic-instruct-gptj-pairwise",
    "ultrafeedback-binarized-preferences-cleaned",
    "webgpt_comparisons",
)


def _card(
    config: str, files: dict[str, str], features, splits: dict, licence: str | None, others: tuple[str, ...] = ()
) -> str:
    """A dataset card whose YAML header declares ``config`` with its features, as push_to_hub writes
    it, and the configurations ``others`` (files ``<name>/<split>-*``) whose files are not written."""
    import yaml

    header: dict = {"license": licence} if licence else {}
    declared = {name: {split: f"{name}/{split}-*" for split in files} for name in others}
    declared[config] = files
    header["configs"] = [
        {
            "config_name": name,
            "data_files": [{"split": split, "path": pattern} for split, pattern in declared[name].items()],
        }
        for name in sorted(declared)
    ]
    header["dataset_info"] = [
        {
            "config_name": config,
            "features": features._to_yaml_list(),
            "splits": [
                {"name": split, "num_bytes": int(table.data.nbytes), "num_examples": len(table)}
                for split, table in splits.items()
            ],
            "dataset_size": int(sum(t.data.nbytes for t in splits.values())),
        }
    ]
    return (
        "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\nA small stand-in with the published file layout.\n"
    )


def write_preference_standins(cache: Path, n_train: int = 96, n_val: int = 16, n_skywork: int = 48) -> dict[str, Path]:
    """Write stand-in snapshots of Unified-Feedback ("all": ``n_train`` train and ``n_val`` val records
    over the published shards) and Skywork 80K v0.2 (``n_skywork`` records) into the hub cache folder
    ``cache``, at the revisions :data:`rmbias.preferences.HUB_PREFERENCES` pins (a made-up commit behind
    ``refs/main`` where a dataset is unpinned). Returns each dataset's snapshot folder."""
    from datasets import Dataset

    from .preferences import HUB_PREFERENCES, SKYWORK, UNIFIED_FEEDBACK

    out = {}
    uf = HUB_PREFERENCES[UNIFIED_FEEDBACK]
    folder = snapshot_folder(cache, uf.repo_id, uf.revision, repo_type="dataset")
    features = _features("rated")
    train = Dataset.from_list(unified_feedback_records(n_train), features=features)
    val = Dataset.from_list(unified_feedback_records(n_val, offset=10_000), features=features)
    (folder / "all").mkdir(parents=True, exist_ok=True)
    for shard in range(UF_SHARDS):  # contiguous shards, as push_to_hub cuts them
        train.shard(UF_SHARDS, shard, contiguous=True).to_parquet(
            str(folder / "all" / f"train-{shard:05d}-of-{UF_SHARDS:05d}.parquet")
        )
    val.to_parquet(str(folder / "all" / "val-00000-of-00001.parquet"))
    (folder / "README.md").write_text(
        _card(
            "all",
            {"train": "all/train-*", "val": "all/val-*"},
            features,
            {"train": train, "val": val},
            "mit",
            UF_OTHER_SUBSETS,
        )
    )
    out[UNIFIED_FEEDBACK] = folder

    sky = HUB_PREFERENCES[SKYWORK]
    folder = snapshot_folder(cache, sky.repo_id, sky.revision, repo_type="dataset")
    features = _features("messages")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    train = Dataset.from_list(skywork_records(n_skywork), features=features)
    train.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    (folder / "README.md").write_text(_card("default", {"train": "data/train-*"}, features, {"train": train}, None))
    out[SKYWORK] = folder
    return out


def random_model(
    name: str,
    layers: int | None = None,
    reward: bool = False,
    dtype: str = "bfloat16",
    device: str = "cpu",
    seed: int = 0,
):
    """A random-weight model at the published shape, built straight on ``device`` (nothing is
    written to disk, unlike :func:`rmbias.architectures.stand_in`), with its borrowed tokenizer:
    ``(model, tokenizer)`` in eval mode. ``reward``: a one-output ``*ForSequenceClassification`` model. For benchmarks at
    full size on a GPU; the attention implementation is the one the real models get
    (:func:`rmbias.registry.attention_for`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from . import architectures, models, registry

    arch = architectures.architecture(name)
    tokenizer = models.load_tokenizer(arch.tokenizer)
    built = models.random_config(architectures.published_fields(name, layers, reward), tokenizer)
    attention = registry.attention_for(arch.fields["model_type"])
    if attention:  # None: transformers' default
        built._attn_implementation = attention
    auto = AutoModelForSequenceClassification if reward else AutoModelForCausalLM
    torch.manual_seed(seed)
    with torch.device(device):
        model = auto.from_config(built, dtype=getattr(torch, dtype))
    return model.eval(), tokenizer
