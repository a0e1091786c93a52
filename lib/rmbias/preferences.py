"""Preference pairs from Anthropic's hh-rlhf, in TRL's conversational preference format.

**Content warning.** The harmless-base split is red-teaming data: people tried to get an assistant
to help with crimes, violence, self-harm, slurs and sexual content, and many replies (chosen ones
included: *chosen* means *less harmful*, not *harmless*) contain offensive or dangerous text. Print
examples only with that warning.

The registered file is ``harmless-base/test.jsonl.gz`` (2,312 pairs, MIT licence; see
:mod:`rmbias.data`). Each record holds two transcripts, ``chosen`` and ``rejected``, written as
``"\\n\\nHuman: ...\\n\\nAssistant: ..."``. :func:`load_pairs` turns each into a list of
``{"role", "content"}`` messages, as TRL's ``RewardTrainer`` expects, and keeps a pair only when
the two transcripts share every turn but the last assistant reply, the roles alternate from a user
turn to a final assistant turn, and the two final replies differ. Every dropped pair is counted by
reason (:class:`Parsed`), so the book can report it.

:func:`split_pairs` cuts the pairs into disjoint train and held-out sets with a seeded shuffle, and
:func:`subsample` draws ``n`` of them; both are deterministic, and subsamples with one seed are
nested (the first 100 of 200 are the 100), which suits a data-size ablation.

:func:`shorten` trims a pair so that it fits a CPU: keep only the last ``last_turns`` exchanges
(user turn + assistant reply) of the dialogue and cut every message after ``max_chars``
characters, at a word boundary. Cutting keeps the start of each message, because an assistant
reply shows its stance (help or refuse) in its first sentences; the end of a long reply is lost.
The demo recipe (:mod:`rmbias.training`) keeps one exchange and a few hundred characters; the
paper recipe keeps everything and truncates over-long pairs at the tokenised length limit, as the
authors' code did. A pair whose two replies become identical after cutting is dropped and counted.

The paper profile trains on two hub datasets (:data:`HUB_PREFERENCES`): Unified-Feedback's ``all``
subset and Skywork-Reward-Preference-80K-v0.2. Each is downloaded once as a snapshot of its hub
repository (:func:`hub_snapshot`, the pinned revision where a public record gives one) and read as a
memory-mapped Arrow table (:func:`load_hub_split`). A grid of runs reads it once into a
:class:`PairPool`; rows are chosen on the table (the authors' tie filter on the rating columns,
their every k-th pair, or a seeded draw) and only the chosen rows become Python dicts
(:func:`table_pairs`), under the authors' rules if asked (:data:`SUMMARIZE_PREFIX`, irregular pairs
kept).
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .data import fetch, provenance

HH_HARMLESS_TEST = "harmless-base/test.jsonl.gz"

_SPEAKER = re.compile(r"\n\n(Human|Assistant): ?")
_ROLES = {"Human": "user", "Assistant": "assistant"}

Message = dict[str, str]
Pair = dict[str, Any]  # {"index": int, "chosen": [Message], "rejected": [Message]}


class PairError(ValueError):
    """A record that is not a usable preference pair; ``reason`` is a short key for counting."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def parse_dialogue(text: str) -> list[Message]:
    """Messages of one hh-rlhf transcript (``"\\n\\nHuman: ...\\n\\nAssistant: ..."``).

    Contents are stripped of surrounding white space. Raises :class:`PairError` if the text does
    not start with a Human turn, the roles do not alternate, or it does not end with an Assistant
    turn.
    """
    parts = _SPEAKER.split(text)
    if parts[0].strip() or len(parts) < 3:
        raise PairError("no_leading_human", repr(text[:40]))
    speakers, contents = parts[1::2], parts[2::2]
    messages = [{"role": _ROLES[s], "content": c.strip()} for s, c in zip(speakers, contents)]
    for i, message in enumerate(messages):
        if message["role"] != ("user" if i % 2 == 0 else "assistant"):
            raise PairError("roles_do_not_alternate")
    if messages[-1]["role"] != "assistant":
        raise PairError("no_final_reply")
    return messages


def check_pair(chosen: list[Message], rejected: list[Message]) -> None:
    """Raise :class:`PairError` unless the two dialogues share every turn but the final assistant
    reply, and the final replies are non-empty and differ."""
    if len(chosen) != len(rejected) or chosen[:-1] != rejected[:-1]:
        raise PairError("prefix_differs")
    if not chosen[-1]["content"] or not rejected[-1]["content"]:
        raise PairError("empty_reply")
    if chosen[-1]["content"] == rejected[-1]["content"]:
        raise PairError("identical_replies")


def to_pair(chosen_text: str, rejected_text: str, index: int = -1) -> Pair:
    """One hh-rlhf record as a checked conversational pair (raises :class:`PairError`)."""
    chosen, rejected = parse_dialogue(chosen_text), parse_dialogue(rejected_text)
    check_pair(chosen, rejected)
    return {"index": index, "chosen": chosen, "rejected": rejected}


@dataclass
class Parsed:
    """The usable pairs of a file and what was dropped, by reason."""

    pairs: list[Pair]
    n_records: int
    dropped: dict[str, int] = field(default_factory=dict)
    source: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "n_records": self.n_records,
            "n_pairs": len(self.pairs),
            "dropped": dict(self.dropped),
            "source": self.source,
        }


# --- preference datasets on the Hugging Face hub (the paper profile) -----------------------------

SKYWORK = "Skywork/Skywork-Reward-Preference-80K-v0.2"
UNIFIED_FEEDBACK = "llm-blender/Unified-Feedback"
# The authors' reward-model code (Generalizable-Reward-Model, reward_models/load_datasets.py) puts this
# before the first message of every Unified-Feedback pair whose source names a summarisation set.
SUMMARIZE_PREFIX = "Generate one-sentence summary for the following post: "
UNPINNED = "unpinned (hub main)"


@dataclass(frozen=True)
class HubPreferences:
    """A preference dataset on the hub as the paper profile reads it, and as the authors held out from it.

    ``layout``: ``"messages"`` (columns ``chosen`` and ``rejected``, each a list of {content, role}
    messages: Skywork) or ``"rated"`` (two conversations ``conv_A`` and ``conv_B`` with ratings
    ``conv_A_rating`` and ``conv_B_rating``; the higher-rated one is chosen and ties are dropped:
    Unified-Feedback, as the GRM authors used it). ``files`` are the repository paths a download
    needs (the README's configuration and the subset's shards), so a download skips the other
    subsets. ``revision`` is a commit where a public record gives one; ``revision_source`` says which
    record, or why there is none. The authors' held-out pairs were a split of their own
    (``heldout_split``) or a fraction of the training split (``heldout_fraction``).
    """

    repo_id: str
    subset: str | None
    train_split: str
    layout: str
    files: tuple[str, ...]
    revision: str | None
    revision_source: str
    heldout_split: str | None = None
    heldout_fraction: float | None = None

    def describe(self) -> dict[str, Any]:
        """The provenance every run records."""
        return {
            "dataset": self.repo_id,
            "subset": str(self.subset),
            "split": self.train_split,
            "revision": self.revision or UNPINNED,
            "revision_source": self.revision_source,
        }


HUB_PREFERENCES: dict[str, HubPreferences] = {
    SKYWORK: HubPreferences(
        repo_id=SKYWORK,
        subset=None,
        train_split="train",
        layout="messages",
        files=("README.md", "data/*"),
        revision="196326738b67b9c3e6aa6829cab639d8401ad385",
        revision_source="the dataset card's 'Update README.md' commit, whose card lists 77,016 train pairs "
        "in data/train-* (the version the authors' manifest plots as 77k)",
        heldout_fraction=0.005,
    ),  # train_test_split(test_size=0.005) in the authors' load_datasets.py
    UNIFIED_FEEDBACK: HubPreferences(
        repo_id=UNIFIED_FEEDBACK,
        subset="all",
        train_split="train",
        layout="rated",
        files=("README.md", "all/*"),
        revision=None,
        revision_source="no full commit id of the current 'all' upload (short id 1a74174) is in any public "
        "record we found; the authors loaded hub main",
        heldout_split="val",
    ),  # the authors' eval_dataset: split='val', ties filtered as in train
}


def _hub_spec(dataset_id: str) -> HubPreferences:
    if dataset_id not in HUB_PREFERENCES:
        raise ValueError(
            f"unknown preference dataset {dataset_id!r}; known: {', '.join(HUB_PREFERENCES)} "
            f"and the registered file {HH_HARMLESS_TEST}"
        )
    return HUB_PREFERENCES[dataset_id]


def _messages(conversation: Sequence[dict[str, Any]], strip: bool = True) -> list[Message]:
    return [
        {"role": str(m["role"]), "content": str(m["content"]).strip() if strip else str(m["content"])}
        for m in conversation
    ]


def _hub_messages(
    record: dict[str, Any], layout: str, summarize_prefix: bool = False, strip: bool = True
) -> tuple[list[Message], list[Message]]:
    """The chosen and rejected conversations of one record; raises :class:`PairError` ``tie``.

    ``summarize_prefix``: as the authors did, a ``rated`` record whose ``source`` names a
    summarisation set gets :data:`SUMMARIZE_PREFIX` before its (stripped) first message."""
    if layout == "messages":
        chosen, rejected = _messages(record["chosen"], strip), _messages(record["rejected"], strip)
    elif layout == "rated":
        a, b = float(record["conv_A_rating"]), float(record["conv_B_rating"])
        if a == b:
            raise PairError("tie")
        first, second = _messages(record["conv_A"], strip), _messages(record["conv_B"], strip)
        chosen, rejected = (first, second) if a > b else (second, first)
        if summarize_prefix and "summarize" in str(record.get("source", "")):
            for conversation in (chosen, rejected):
                if conversation:
                    conversation[0] = {
                        **conversation[0],
                        "content": SUMMARIZE_PREFIX + conversation[0]["content"].strip(),
                    }
    else:
        raise ValueError(f"unknown preference layout {layout!r}; known: messages, rated")
    return chosen, rejected


def _check_hub_pair(chosen: list[Message], rejected: list[Message]) -> None:
    if not chosen or chosen[-1]["role"] != "assistant":
        raise PairError("no_final_reply")
    check_pair(chosen, rejected)


def hub_record_pair(record: dict[str, Any], layout: str, index: int = -1, summarize_prefix: bool = False) -> Pair:
    """One record of a hub preference dataset (``layout`` as in :class:`HubPreferences`) as a
    checked conversational pair; raises :class:`PairError` (``tie`` for equal ratings)."""
    chosen, rejected = _hub_messages(record, layout, summarize_prefix)
    _check_hub_pair(chosen, rejected)
    return {"index": index, "chosen": chosen, "rejected": rejected}


def load_hub_pairs(dataset_id: str, records=None) -> Parsed:
    """All usable pairs of a hub preference dataset of :data:`HUB_PREFERENCES`, in dataset order,
    with the book's checks (:func:`hub_record_pair`). ``records`` (any iterable of dicts in the
    dataset's layout) replaces the download, for tests. A grid reads the dataset once with
    :meth:`PairPool.load` instead."""
    spec = _hub_spec(dataset_id)
    if records is None:
        records = load_hub_split(dataset_id, spec.train_split)
    return _parse(records, lambda record, i: hub_record_pair(record, spec.layout, index=i), spec.describe())


def hub_snapshot(dataset_id: str) -> Path:
    """The local folder of the dataset's hub repository at its pinned revision (or main), downloaded
    into the Hugging Face cache if it is not there (only the files the subset needs). With
    ``HF_HUB_OFFLINE=1`` the cache alone serves it, as a rehearsal does (:mod:`rmbias.standins`)."""
    from huggingface_hub import snapshot_download

    spec = _hub_spec(dataset_id)
    try:
        return Path(
            snapshot_download(
                spec.repo_id, repo_type="dataset", revision=spec.revision, allow_patterns=list(spec.files)
            )
        )
    except Exception as err:  # offline without a cached copy, gated, renamed
        raise RuntimeError(
            f"could not get {dataset_id} (revision {spec.revision or UNPINNED}) from the Hugging "
            f"Face hub or its local cache ({type(err).__name__}: {err}); the paper profile needs "
            "hub access, or the dataset in the cache (HF_HUB_CACHE)"
        ) from err


def card_data_files(folder: Path, subset: str | None) -> dict[str, list[str]]:
    """The data files of ``subset`` (None: the default configuration) as the snapshot's dataset card
    declares them: ``{split: [absolute glob patterns]}``, read from the card's YAML ``configs``."""
    import yaml

    text = (Path(folder) / "README.md").read_text(encoding="utf-8")
    if not text.startswith("---"):
        raise ValueError(f"{folder}/README.md has no YAML header declaring its configurations")
    header = yaml.safe_load(text.split("---", 2)[1]) or {}
    configs = header.get("configs") or []
    if subset is None:
        chosen = [c for c in configs if c.get("default")] or [c for c in configs if c.get("config_name") == "default"]
    else:
        chosen = [c for c in configs if c.get("config_name") == subset]
    if not chosen:
        names = ", ".join(str(c.get("config_name")) for c in configs)
        raise ValueError(f"the dataset card in {folder} declares no configuration {subset or 'default'!r} ({names})")
    files = chosen[0]["data_files"]
    entries = files if isinstance(files, list) else [{"split": "train", "path": files}]
    out: dict[str, list[str]] = {}
    for entry in entries:
        paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
        out.setdefault(entry["split"], []).extend(str(Path(folder) / path) for path in paths)
    return out


_BUILDERS = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}


def load_hub_split(dataset_id: str, split: str, folder: Path | None = None):
    """One split of a hub preference dataset as a memory-mapped Arrow ``datasets.Dataset``, read from
    the local snapshot ``folder`` (default: :func:`hub_snapshot`); nothing becomes a Python object
    until rows are selected.

    The split's files are the ones the snapshot's dataset card declares for the subset
    (:func:`card_data_files`), read with the matching ``datasets`` builder: what
    ``load_dataset(folder, subset, split=split)`` reads, except that the card's other subsets, which a
    download skips, need not be present."""
    from datasets import load_dataset

    spec = _hub_spec(dataset_id)
    folder = hub_snapshot(dataset_id) if folder is None else Path(folder)
    try:
        files = card_data_files(folder, spec.subset)
        if split not in files:
            raise ValueError(f"the card declares splits {', '.join(files)}, not {split!r}")
        paths = sorted({path for pattern in files[split] for path in glob.glob(pattern)})
        if not paths:
            raise FileNotFoundError(f"no file matches {', '.join(files[split])}")
        suffixes = {Path(path).suffix for path in paths}
        if len(suffixes) != 1 or next(iter(suffixes)) not in _BUILDERS:
            raise ValueError(f"no reader for files ending in {', '.join(sorted(suffixes))}")
        return load_dataset(_BUILDERS[suffixes.pop()], data_files={split: paths}, split=split)
    except Exception as err:
        raise RuntimeError(
            f"could not read split {split!r} of {dataset_id} (subset {spec.subset}) from "
            f"{folder} ({type(err).__name__}: {err})"
        ) from err


def snapshot_commit(folder: Path) -> str | None:
    """The commit a hub-cache snapshot folder holds (its name), if it is one."""
    folder = Path(folder)
    return folder.name if folder.parent.name == "snapshots" else None


def untied_rows(table) -> np.ndarray:
    """Positions of the rows of a ``rated`` Arrow table whose two ratings differ, computed on the
    rating columns alone (the authors' tie filter, ``conv_A_rating != conv_B_rating``)."""
    if getattr(table, "_indices", None) is not None:
        table = table.flatten_indices()
    a = np.asarray(table.data.column("conv_A_rating").to_numpy(), dtype=float)
    b = np.asarray(table.data.column("conv_B_rating").to_numpy(), dtype=float)
    return np.flatnonzero(a != b)


def every_kth(rows: Sequence[int], k: int, n: int | None = None) -> list[int]:
    """Every ``k``-th of ``rows`` starting with the first, then the first ``n`` of those (all if None):
    the authors' ``ds.select(range(0, len(ds), k))`` followed by ``ds.select(range(0, size))``."""
    if k < 1:
        raise ValueError(f"the stride must be at least 1, not {k}")
    picked = [int(r) for r in list(rows)[::k]]
    if n is not None and n > len(picked):
        raise ValueError(f"every {k}th of {len(rows)} rows gives {len(picked)} pairs, not {n}")
    return picked if n is None else picked[:n]


def largest_stride(n_rows: int, n: int) -> int:
    """The largest stride ``k`` for which every ``k``-th of ``n_rows`` rows still gives ``n`` pairs."""
    if not 1 <= n <= n_rows:
        raise ValueError(f"cannot take {n} of {n_rows} rows")
    return n_rows if n == 1 else math.ceil(n_rows / (n - 1)) - 1


def table_pairs(
    table,
    rows: Sequence[int],
    layout: str,
    summarize_prefix: bool = False,
    keep_irregular: bool = False,
    source: dict[str, Any] | None = None,
) -> Parsed:
    """The pairs of the chosen ``rows`` of an Arrow table: only these rows become Python dicts.

    ``index`` is the row's position in the table. Ties are dropped. Pairs that fail the book's
    checks (a final turn that is not the assistant's, histories that differ, empty or identical
    replies) are dropped too, unless ``keep_irregular`` (the authors trained on every untied
    record): then they are kept and counted under ``irregular_kept`` in the source record.
    """
    rows = [int(r) for r in rows]
    selected = table.select(rows) if rows else table.select([])
    pairs, dropped, irregular = [], Counter(), Counter()
    for index, record in zip(rows, selected):
        try:
            chosen, rejected = _hub_messages(record, layout, summarize_prefix, strip=not keep_irregular)
        except PairError as err:
            dropped[err.reason] += 1
            continue
        try:
            _check_hub_pair(chosen, rejected)
        except PairError as err:
            if not keep_irregular:
                dropped[err.reason] += 1
                continue
            irregular[err.reason] += 1
        pairs.append({"index": index, "chosen": chosen, "rejected": rejected})
    info = {**(source or {}), "irregular_kept": dict(sorted(irregular.items()))}
    return Parsed(pairs, len(rows), dict(sorted(dropped.items())), info)


def _parse(records, convert, source: dict[str, str]) -> Parsed:
    """``convert(record, index)`` on every record; the pairs it returns, and its PairErrors counted by reason."""
    pairs, dropped, n = [], Counter(), 0
    for i, record in enumerate(records):
        n += 1
        try:
            pairs.append(convert(record, i))
        except PairError as err:
            dropped[err.reason] += 1
    return Parsed(pairs, n, dict(sorted(dropped.items())), source)


def load_pairs(path: str = HH_HARMLESS_TEST) -> Parsed:
    """All usable pairs of a registered hh-rlhf file, in file order (``index`` = line number), or
    of a hub preference dataset named by its id (:data:`HUB_PREFERENCES`)."""
    if path in HUB_PREFERENCES:
        return load_hub_pairs(path)
    with gzip.open(fetch(path), "rt", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    return _parse(records, lambda record, i: to_pair(record["chosen"], record["rejected"], index=i), provenance(path))


def _permutation(n: int, seed: int) -> list[int]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order


def split_pairs(pairs: Sequence[Pair], n_heldout: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """Disjoint (train, held-out) sets: a seeded shuffle, the first ``n_heldout`` held out.

    Both keep the shuffled order. The same pairs and seed always give the same split."""
    if not 0 <= n_heldout <= len(pairs):
        raise ValueError(f"cannot hold out {n_heldout} of {len(pairs)} pairs")
    order = _permutation(len(pairs), seed)
    return [pairs[i] for i in order[n_heldout:]], [pairs[i] for i in order[:n_heldout]]


def subsample(pairs: Sequence[Pair], n: int | None, seed: int = 0) -> list[Pair]:
    """``n`` pairs drawn without replacement by a seeded shuffle (all of them, shuffled, if ``n``
    is None). With one seed, smaller subsamples are prefixes of larger ones."""
    if n is not None and not 0 <= n <= len(pairs):
        raise ValueError(f"cannot draw {n} of {len(pairs)} pairs")
    order = _permutation(len(pairs), seed)
    return [pairs[i] for i in order[:n]]


def cut(text: str, max_chars: int | None) -> str:
    """``text`` cut after at most ``max_chars`` characters, at the last space when that keeps more
    than half of them (None: the whole text)."""
    if max_chars is None or len(text) <= max_chars:
        return text
    head = text[:max_chars]
    space = head.rfind(" ")
    return (head[:space] if space > max_chars // 2 else head).rstrip()


def shorten(pair: Pair, last_turns: int | None = None, max_chars: int | None = None) -> Pair:
    """The pair with only its last ``last_turns`` exchanges (user turn + assistant reply; None:
    all) and every message cut to at most ``max_chars`` characters (None: uncut), at a word
    boundary. Raises :class:`PairError` (``identical_replies``) if the cut replies coincide."""
    keep = None if last_turns is None else 2 * last_turns
    if keep is not None and keep < 2:
        raise ValueError("last_turns must be at least 1")

    def trim(messages: list[Message]) -> list[Message]:
        kept = messages[-keep:] if keep is not None else messages
        return [{"role": m["role"], "content": cut(m["content"], max_chars)} for m in kept]

    out = {**pair, "chosen": trim(pair["chosen"]), "rejected": trim(pair["rejected"])}
    check_pair(out["chosen"], out["rejected"])
    return out


def shorten_all(
    pairs: Sequence[Pair], last_turns: int | None = None, max_chars: int | None = None
) -> tuple[list[Pair], int]:
    """:func:`shorten` on every pair; returns the kept pairs and how many were dropped."""
    kept = []
    for pair in pairs:
        try:
            kept.append(shorten(pair, last_turns, max_chars))
        except PairError:
            pass
    return kept, len(pairs) - len(kept)


# --- the pool a grid of runs draws from ----------------------------------------------------------

SELECTIONS = ("shuffle", "every-kth")
HELDOUT_RULES = ("carve", "authors")


@dataclass
class PairPool:
    """The preference pairs a grid of runs draws from, read once.

    For a registered file (hh-rlhf), ``pairs`` holds every usable pair, shortened; each run splits
    and subsamples it (:func:`split_pairs`, :func:`subsample`). For a hub dataset, ``table`` is the
    train split as a memory-mapped Arrow table, ``rows`` the table rows a run may draw from (untied,
    not held out), and ``heldout`` the held-out pairs, already parsed; a run turns only the rows it
    selects into Python objects (:meth:`draw`). ``n_available`` is how many training pairs a run can
    ask for.
    """

    data: str
    info: dict[str, Any]
    pairs: list[Pair] | None = None
    n_heldout: int = 0
    table: Any = None
    rows: list[int] | None = None
    heldout: list[Pair] | None = None
    layout: str = ""
    rules: dict[str, Any] = field(default_factory=dict)

    @property
    def n_available(self) -> int:
        if self.rows is not None:
            return len(self.rows)
        return len(self.pairs) - self.n_heldout

    @classmethod
    def load(
        cls,
        data: str,
        *,
        n_heldout: int | None = 0,
        split_seed: int = 0,
        heldout: str = "carve",
        summarize_prefix: bool = False,
        keep_irregular: bool = False,
        last_turns: int | None = None,
        max_chars: int | None = None,
    ) -> PairPool:
        """Read ``data`` (a registered file or a dataset of :data:`HUB_PREFERENCES`) once.

        ``heldout``: ``"carve"`` holds out ``n_heldout`` pairs drawn with ``split_seed`` (the book's
        rule); ``"authors"`` holds out what the authors did for that dataset (Unified-Feedback: its
        ``val`` split, ties dropped; Skywork: ``heldout_fraction`` of the train split, rounded up, drawn
        with ``split_seed``), and carves for data they did not train on (the hh-rlhf file).
        ``summarize_prefix`` and ``keep_irregular``: see :func:`table_pairs`. ``last_turns`` and
        ``max_chars`` shorten every pair (:func:`shorten`).
        """
        if heldout not in HELDOUT_RULES:
            raise ValueError(f"unknown held-out rule {heldout!r}: use one of {', '.join(HELDOUT_RULES)}")
        rules = {
            "summarize_prefix": summarize_prefix,
            "keep_irregular": keep_irregular,
            "last_turns": last_turns,
            "max_chars": max_chars,
            "heldout": heldout,
            "split_seed": split_seed,
        }
        if data not in HUB_PREFERENCES:  # the authors did not train on it: the book's rule
            parsed = load_pairs(data)
            short, n_dropped = shorten_all(parsed.pairs, last_turns, max_chars)
            n_heldout = n_heldout or 0
            if not 0 <= n_heldout <= len(short):
                raise ValueError(f"cannot hold out {n_heldout} of {len(short)} pairs of {data}")
            info = {**parsed.summary(), "dropped_identical_after_shortening": n_dropped}
            if heldout == "authors":
                info["heldout_rule"] = f"carve (the authors did not train on {data})"
            return cls(data=data, info=info, pairs=short, n_heldout=n_heldout, rules=rules)

        spec = HUB_PREFERENCES[data]
        folder = hub_snapshot(data)
        table = load_hub_split(data, spec.train_split, folder)
        rows = untied_rows(table) if spec.layout == "rated" else np.arange(len(table))
        source = {
            **spec.describe(),
            "snapshot_commit": snapshot_commit(folder),
            "n_records": len(table),
            "n_ties": int(len(table) - len(rows)) if spec.layout == "rated" else 0,
        }
        convert = {"layout": spec.layout, "summarize_prefix": summarize_prefix, "keep_irregular": keep_irregular}
        if heldout == "authors" and spec.heldout_split is not None:
            held_table = load_hub_split(data, spec.heldout_split, folder)
            held_rows = untied_rows(held_table) if spec.layout == "rated" else np.arange(len(held_table))
            held = table_pairs(held_table, held_rows, **convert)
            train_rows = [int(r) for r in rows]
            source["heldout"] = {
                "split": spec.heldout_split,
                "n_records": len(held_table),
                "dropped": held.dropped,
                "irregular_kept": held.source["irregular_kept"],
            }
        else:
            order = [int(rows[i]) for i in _permutation(len(rows), split_seed)]
            if heldout == "authors":
                n_heldout = math.ceil(spec.heldout_fraction * len(rows))
            n_heldout = n_heldout or 0
            if not 0 <= n_heldout <= len(order):
                raise ValueError(f"cannot hold out {n_heldout} of {len(order)} pairs of {data}")
            held, used = _take(table, order, n_heldout, convert)
            taken = set(order[:used])
            # the authors' rule keeps the rest in dataset order; the book's keeps the shuffled order
            train_rows = sorted(set(order) - taken) if heldout == "authors" else [r for r in order if r not in taken]
            source["heldout"] = {
                "split": f"{spec.train_split} (held out with seed {split_seed})",
                "dropped": held.dropped,
            }
        heldout_pairs = [_shortened(p, last_turns, max_chars) for p in held.pairs]
        heldout_pairs = [p for p in heldout_pairs if p is not None]
        return cls(
            data=data, info=source, table=table, rows=train_rows, heldout=heldout_pairs, layout=spec.layout, rules=rules
        )

    def draw(
        self, n: int | None, seed: int = 0, selection: str = "shuffle", stride: int | None = None
    ) -> tuple[list[Pair], dict[str, Any]]:
        """``n`` training pairs of a hub pool (all available if None) and a record of the draw.

        ``"every-kth"``: every ``stride``-th available row (default: the largest stride that still
        gives ``n``), then the first ``n``: the authors' selection, row for row. ``"shuffle"``: the first
        ``n`` usable pairs of a permutation drawn with ``seed`` (nested across sizes for one seed).
        """
        if self.rows is None:
            raise TypeError("draw() is for hub pools; file pools are split and subsampled per recipe")
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}: use one of {', '.join(SELECTIONS)}")
        n_rows = len(self.rows)
        if n is not None and not 0 <= n <= n_rows:
            raise ValueError(f"cannot draw {n} of {n_rows} pairs of {self.data}")
        convert = {
            "layout": self.layout,
            "summarize_prefix": self.rules["summarize_prefix"],
            "keep_irregular": self.rules["keep_irregular"],
        }
        if selection == "every-kth":
            k = stride or (largest_stride(n_rows, n) if n else 1)
            parsed = table_pairs(self.table, every_kth(self.rows, k, n), **convert)
            record = {"selection": "every-kth", "stride": k}
        else:
            order = [self.rows[i] for i in _permutation(n_rows, seed)]
            parsed, _ = _take(self.table, order, n_rows if n is None else n, convert)
            record = {"selection": "shuffle", "sample_seed": seed}
        pairs = [
            p
            for p in (_shortened(p, self.rules["last_turns"], self.rules["max_chars"]) for p in parsed.pairs)
            if p is not None
        ]
        record.update(
            n_drawn=len(pairs),
            dropped=parsed.dropped,
            irregular_kept=parsed.source["irregular_kept"],
            dropped_identical_after_shortening=len(parsed.pairs) - len(pairs),
        )
        return pairs, record


def _shortened(pair: Pair, last_turns: int | None, max_chars: int | None) -> Pair | None:
    if last_turns is None and max_chars is None:
        return pair
    try:
        return shorten(pair, last_turns, max_chars)
    except PairError:
        return None


def _take(table, order: Sequence[int], n: int, convert: dict[str, Any]) -> tuple[Parsed, int]:
    """The first ``n`` usable pairs of ``order`` (rows of ``table``), converting no more rows than it
    needs; returns them (with what was dropped on the way) and how many rows of ``order`` it used."""
    pairs, dropped, irregular, used = [], Counter(), Counter(), 0
    while len(pairs) < n and used < len(order):
        chunk = order[used : used + n - len(pairs)]
        parsed = table_pairs(table, chunk, **convert)
        pairs.extend(parsed.pairs)
        dropped.update(parsed.dropped)
        irregular.update(parsed.source["irregular_kept"])
        used += len(chunk)
    if len(pairs) < n:
        raise ValueError(f"only {len(pairs)} usable pairs, not {n}")
    return Parsed(pairs, used, dict(sorted(dropped.items())), {"irregular_kept": dict(sorted(irregular.items()))}), used
