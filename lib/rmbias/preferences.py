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
paper recipe keeps everything and lets the tokenised length limit drop over-long pairs, as TRL does.
A pair whose two replies become identical after cutting is dropped and counted.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

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
        return {"n_records": self.n_records, "n_pairs": len(self.pairs), "dropped": dict(self.dropped),
                "source": self.source}


# Preference datasets on the Hugging Face hub that the paper profile trains on: (subset, split,
# layout). "messages": columns ``chosen`` and ``rejected``, each a list of {role, content}
# messages (Skywork). "rated": two conversations ``conv_A`` and ``conv_B`` with ratings
# ``conv_A_rating`` and ``conv_B_rating``; the higher-rated one is chosen, ties are dropped
# (Unified-Feedback, as the GRM authors used it).
HUB_PREFERENCES = {
    "Skywork/Skywork-Reward-Preference-80K-v0.2": (None, "train", "messages"),
    "llm-blender/Unified-Feedback": ("all", "train", "rated"),
}


def _messages(conversation: Sequence[dict[str, Any]]) -> list[Message]:
    return [{"role": str(m["role"]), "content": str(m["content"]).strip()} for m in conversation]


def hub_record_pair(record: dict[str, Any], layout: str, index: int = -1) -> Pair:
    """One record of a hub preference dataset (``layout`` as in :data:`HUB_PREFERENCES`) as a
    checked conversational pair; raises :class:`PairError` (``tie`` for equal ratings)."""
    if layout == "messages":
        chosen, rejected = _messages(record["chosen"]), _messages(record["rejected"])
    elif layout == "rated":
        a, b = float(record["conv_A_rating"]), float(record["conv_B_rating"])
        if a == b:
            raise PairError("tie")
        first, second = _messages(record["conv_A"]), _messages(record["conv_B"])
        chosen, rejected = (first, second) if a > b else (second, first)
    else:
        raise ValueError(f"unknown preference layout {layout!r}; known: messages, rated")
    if not chosen or chosen[-1]["role"] != "assistant":
        raise PairError("no_final_reply")
    check_pair(chosen, rejected)
    return {"index": index, "chosen": chosen, "rejected": rejected}


def load_hub_pairs(dataset_id: str, records=None) -> Parsed:
    """All usable pairs of a hub preference dataset of :data:`HUB_PREFERENCES` (needs the hub,
    or a local datasets cache), in dataset order. ``records`` (any iterable of dicts in the
    dataset's layout) replaces the download, for tests."""
    if dataset_id not in HUB_PREFERENCES:
        raise ValueError(f"unknown preference dataset {dataset_id!r}; known: {', '.join(HUB_PREFERENCES)} "
                         f"and the registered file {HH_HARMLESS_TEST}")
    subset, split, layout = HUB_PREFERENCES[dataset_id]
    if records is None:
        from datasets import load_dataset

        try:
            records = load_dataset(dataset_id, subset, split=split)
        except Exception as err:  # offline, gated, or renamed
            raise RuntimeError(f"could not load {dataset_id} from the Hugging Face hub ({err}); the paper "
                               "profile needs network access to the hub, or the dataset in the local cache") from err
    return _parse(records, lambda record, i: hub_record_pair(record, layout, index=i),
                  {"dataset": dataset_id, "subset": str(subset), "split": split})


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
    return _parse(records, lambda record, i: to_pair(record["chosen"], record["rejected"], index=i),
                  provenance(path))


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


def _cut(text: str, max_chars: int | None) -> str:
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
        return [{"role": m["role"], "content": _cut(m["content"], max_chars)} for m in kept]

    out = {**pair, "chosen": trim(pair["chosen"]), "rejected": trim(pair["rejected"])}
    check_pair(out["chosen"], out["rejected"])
    return out


def shorten_all(pairs: Sequence[Pair], last_turns: int | None = None,
                max_chars: int | None = None) -> tuple[list[Pair], int]:
    """:func:`shorten` on every pair; returns the kept pairs and how many were dropped."""
    kept = []
    for pair in pairs:
        try:
            kept.append(shorten(pair, last_turns, max_chars))
        except PairError:
            pass
    return kept, len(pairs) - len(kept)
