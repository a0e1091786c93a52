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
#   all/train-* and all/val-*; six train shards all/train-0000N-of-00006.parquet and one val shard
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

_UF_SOURCES = ("Anthropic/hh-rlhf", "openai/summarize_from_feedback(comparisons)",
               "lmsys/chatbot_arena_conversations", "berkeley-nest/Nectar", "evol_instruct",
               "openai/webgpt_comparisons", "Dahoas/synthetic-instruct-gptj-pairwise",
               "argilla/ultrafeedback-binarized-preferences-cleaned")
_QUESTIONS = ("Name a colour.", "How do I boil an egg?", "What is two plus two?", "Suggest a name for a cat.",
              "Is the sea salty?", "Say hello in French.", "What is the capital of Italy?", "Recommend a book.")
_GOOD = ("Blue.", "Put it in boiling water for eight minutes.", "Four.", "Whiskers.",
         "Yes, it holds dissolved salts.", "Bonjour.", "Rome.", "Middlemarch, by George Eliot.")
_BAD = ("I will not say.", "Eggs are bad.", "Five, I think.", "No.", "Only on Tuesdays.", "Hallo.",
        "Milan.", "Books are boring.")
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
            history = ([(question, good), ("And why?", "Because it is so.")],
                       [(question, bad), ("And why?", "I cannot say why.")])
        if i == PAD_LITERAL_ROW:
            history = [(question, "Pad a batch with the <pad> token.")], history[1]
        high, low = (-1.0, -3.0) if source.startswith("berkeley-nest") else (1.0, 0.0)  # Nectar: negative ranks
        if source.startswith("lmsys") and i % 4 == 2:
            high = low = 0.5  # an arena tie
        good_conv, bad_conv = _turns(True, history[0]), _turns(True, history[1])
        # the better conversation is conv_A in even records and conv_B in odd ones
        conv_a, conv_b, rating_a, rating_b = ((good_conv, bad_conv, high, low) if i % 2 == 0
                                              else (bad_conv, good_conv, low, high))
        records.append({"id": f"standin_{i}", "conv_A": conv_a, "conv_B": conv_b,
                        "conv_A_rating": rating_a, "conv_B_rating": rating_b,
                        "num_turns": len(conv_a) // 2, "source": source})
    return records


def skywork_records(n: int) -> list[dict]:
    """``n`` made-up Skywork 80K records in the published columns (see the section note)."""
    sources = ("helpsteer2", "offsetbias", "wildguard", "magpie_ultra", "magpie_pro_llama3.1")
    return [{"chosen": _turns(False, [(f"{_QUESTIONS[i % 8]} (item {i})", _GOOD[i % 8])]),
             "rejected": _turns(False, [(f"{_QUESTIONS[i % 8]} (item {i})", _BAD[i % 8])]),
             "source": sources[i % len(sources)]} for i in range(n)]


def _features(layout: str):
    from datasets import Features, Value

    if layout == "rated":
        message = [{"role": Value("string"), "content": Value("string")}]
        return Features({"id": Value("string"), "conv_A": message, "conv_B": message,
                         "conv_A_rating": Value("float32"), "conv_B_rating": Value("float32"),
                         "num_turns": Value("int32"), "source": Value("string")})
    message = [{"content": Value("string"), "role": Value("string")}]
    return Features({"chosen": message, "rejected": message, "source": Value("string")})


def _card(config: str, files: dict[str, str], features, splits: dict, licence: str | None) -> str:
    """A dataset card whose YAML header declares one configuration and its features, as push_to_hub
    writes it."""
    import yaml

    header: dict = {"license": licence} if licence else {}
    header["configs"] = [{"config_name": config,
                          "data_files": [{"split": split, "path": pattern} for split, pattern in files.items()]}]
    header["dataset_info"] = [{"config_name": config, "features": features._to_yaml_list(),
                               "splits": [{"name": split, "num_bytes": int(table.data.nbytes),
                                           "num_examples": len(table)} for split, table in splits.items()],
                               "dataset_size": int(sum(t.data.nbytes for t in splits.values()))}]
    return "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\nA small stand-in with the published file layout.\n"


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
            str(folder / "all" / f"train-{shard:05d}-of-{UF_SHARDS:05d}.parquet"))
    val.to_parquet(str(folder / "all" / "val-00000-of-00001.parquet"))
    (folder / "README.md").write_text(_card("all", {"train": "all/train-*", "val": "all/val-*"}, features,
                                            {"train": train, "val": val}, "mit"))
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
