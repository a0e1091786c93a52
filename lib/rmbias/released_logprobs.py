"""The authors' released log-probabilities of their twelve language models, read as traces.

The authors published the next-token log-probabilities behind the paper's Figures 2 and 3 and
Table 1 as the Hugging Face dataset :data:`DATASET`: one CSV per model, named after its hub id
with ``/`` replaced by ``--`` (``google--gemma-2-2b-it.csv``), one row per vocabulary token
(``token_id``, ``token_name``, ``token_decoded``) and one column per prompt key, about 2 GB in
all. Their ``scripts/generate_logprobs.py`` made them as chapter 3 does: the logits at the last
prompt position, upcast to float32, log-softmax over the vocabulary; the chat template with the
generation prompt for instruction-tuned models, the raw prompt for pretrained ones.

Each CSV is downloaded once (:func:`rmbias.data.fetch_hub_file`: checked against the sha256 the
hub publishes, its dataset commit recorded) and converted once to a parquet copy in the cache,
which is then read by column: one model and the prompts asked for, never the whole release. A
model's table becomes a :class:`rmbias.logprobs.Trace`, so every analysis of chapter 3 and 4
runs on the released numbers exactly as on the book's own traces.

Whether a chapter must have them is its ``RELEASED`` setting (:func:`rmbias.data.gather`):
``"auto"`` draws what can be had and reports the rest in plain words; ``"required"`` stops with
the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from . import registry
from .data import DataError, build_once, cache_dir, fetch_hub_file, gather
from .logprobs import Trace, decoded_tokens, next_token_logprobs
from .profiles import PROFILES
from .scoring import ChatFormat, encode_chat

DATASET = "Oxford-HIPlab/iclr2026-lm-logprobs"
# No commit of the dataset is on public record where this book was written, so downloads follow the
# main branch and every trace records the commit it resolved to. Pin one here once it is known.
REVISION: str | None = None
METADATA = ("token_id", "token_name", "token_decoded")
# The models the release covers: the paper's twelve (its section 4), which the paper profile traces.
MODELS = PROFILES["paper"].language_models


def file_name(model_id: str) -> str:
    """The release's file for a hub id: ``org/name`` -> ``org--name.csv``."""
    return f"{model_id.replace('/', '--')}.csv"


def convert(csv: Path, target: Path) -> dict:
    """Write one released CSV as ``target/logprobs.parquet`` (build_once's builder).

    The files were written by pandas, which quotes a field holding a line feed but not one holding
    a bare carriage return (the decoded token ``"\\r"``), so lines end at line feeds only; a file
    with Windows line ends is refused rather than misread. Token strings are kept as written: an
    empty string stays empty and ``nan`` stays a word. The log-probabilities were float32 values
    printed in full, so they are stored as float32 when that loses nothing, which is checked.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(csv, "rb") as handle:
        header = handle.readline()
    if header.endswith(b"\r\n"):
        raise DataError(
            f"{csv} has Windows line ends, unlike the released files: a different or re-saved copy. "
            "Delete it and download it again."
        )
    names = header.decode().rstrip("\n").split(",")
    missing = [name for name in METADATA if name not in names]
    if missing:
        raise DataError(
            f"{csv} lacks the column(s) {', '.join(missing)} of the released layout "
            f"({', '.join(METADATA)}, then one column per prompt): a different file?"
        )
    prompts = [name for name in names if name not in METADATA]
    table = pd.read_csv(
        csv,
        lineterminator="\n",
        keep_default_na=False,
        dtype={"token_id": np.int64, "token_name": str, "token_decoded": str, **{p: np.float64 for p in prompts}},
    )
    columns = {name: pa.array(table[name].to_numpy()) for name in METADATA}
    for name in prompts:
        values = table[name].to_numpy()
        narrow = values.astype(np.float32)
        columns[name] = pa.array(
            narrow if np.array_equal(narrow.astype(np.float64), values, equal_nan=True) else values
        )
    target.mkdir(parents=True)
    pq.write_table(pa.table(columns), target / "logprobs.parquet")
    return {"rows": len(table), "prompts": prompts, "source": str(csv)}


def released_table(
    model_id: str, prompts: Sequence[str] | None = None, revision: str | None = REVISION
) -> tuple[pd.DataFrame, dict]:
    """One model's released log-probabilities (``token_id``, ``token_decoded`` and the prompt
    columns asked for, all when ``prompts`` is None), and their provenance.

    Raises :class:`rmbias.data.DataError` when the file cannot be had or fails its hash check, and
    when a prompt asked for is not in it.
    """
    csv, record = fetch_hub_file(DATASET, file_name(model_id), revision=revision)
    folder = build_once(
        cache_dir() / "released-logprobs" / record["commit"] / csv.stem,
        lambda target: {**convert(csv, target), **record},
    )
    import pyarrow.parquet as pq

    schema = pq.read_schema(folder / "logprobs.parquet")
    available = [name for name in schema.names if name not in METADATA]
    wanted = list(prompts) if prompts is not None else available
    absent = [p for p in wanted if p not in available]
    if absent:
        raise DataError(
            f"The released file of {model_id} has no column for prompt(s) {', '.join(absent)}; "
            f"it has {len(available)} prompts: {', '.join(available)}."
        )
    table = pd.read_parquet(folder / "logprobs.parquet", columns=["token_id", "token_decoded", *wanted])
    return table, {**record, "prompts": wanted, "rows": len(table)}


def released_trace(model_id: str, prompts: Sequence[str] | None = None, revision: str | None = REVISION) -> Trace:
    """One model's released log-probabilities as a :class:`~rmbias.logprobs.Trace`.

    Column ``i`` of the trace is row ``i`` of the file (sorted by token id; ids the tokenizer does
    not name, such as padding rows of the output layer, are not in the release), and
    ``tokens["token"]`` is the authors' ``token_decoded``, the id decoded on its own, as
    :func:`rmbias.logprobs.decoded_tokens` makes it. ``meta`` holds the provenance.
    """
    table, record = released_table(model_id, prompts, revision)
    table = table.sort_values("token_id", ignore_index=True)
    spec = registry.spec(model_id)
    return Trace(
        model=spec.label,
        key=model_id,
        family=spec.family,
        instruct=spec.instruct,
        prompts=record["prompts"],
        logprobs=np.ascontiguousarray(table[record["prompts"]].to_numpy(np.float32).T),
        tokens=pd.DataFrame({"token_id": table["token_id"].to_numpy(), "token": table["token_decoded"]}),
        meta={"source": "the authors' release", **record},
    )


def released_traces(
    model_ids: Sequence[str], prompts: Sequence[str] | None = None, mode: str = "auto", revision: str | None = REVISION
) -> tuple[dict[str, Trace], dict[str, str]]:
    """The released traces of several models, and for each one that could not be had, why
    (:func:`rmbias.data.gather`: ``mode="auto"`` returns what it could, ``"required"`` stops)."""
    return gather({m: (lambda m=m: released_trace(m, prompts, revision)) for m in model_ids}, mode)


# --- the book's traces against the release ------------------------------------------------------


def _matched(own: Trace, released: Trace) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``own`` and in ``released`` of the token ids both hold with the same decoded string."""
    mine = pd.DataFrame(
        {
            "token_id": own.tokens["token_id"].to_numpy(),
            "token": own.tokens["token"].to_numpy(),
            "own": np.arange(len(own.tokens)),
        }
    )
    theirs = pd.DataFrame(
        {
            "token_id": released.tokens["token_id"].to_numpy(),
            "token": released.tokens["token"].to_numpy(),
            "released": np.arange(len(released.tokens)),
        }
    )
    both = mine.merge(theirs, on=["token_id", "token"])
    return both["own"].to_numpy(), both["released"].to_numpy()


def _agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    finite = np.isfinite(a) & np.isfinite(b)
    return {
        "spearman": float(spearmanr(a[finite], b[finite]).statistic) if finite.sum() > 2 else np.nan,
        "max_abs_diff": float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else np.nan,
    }


def compare(own: Trace, released: Trace, words: pd.DataFrame, column: str = "word") -> pd.DataFrame:
    """How closely one of the book's traces reproduces the released one of the same model.

    Per prompt both hold: the number of token ids matched (same id, same decoded string), the
    Spearman rank correlation of the log-probabilities over them, their largest absolute
    difference, and the largest absolute difference over the ``words`` that are single tokens in
    both (the Big Two nouns: what Figure 2 ranks). Differences are in nats.
    """
    own_at, released_at = _matched(own, released)
    strings = set(own.tokens["token"]) & set(released.tokens["token"])
    nouns = [w for w in words[column] if w in strings]
    rows = []
    for prompt in [p for p in own.prompts if p in released.prompts]:
        a, b = own.column(prompt)[own_at].astype(np.float64), released.column(prompt)[released_at].astype(np.float64)
        noun_a, noun_b = own.by_string(prompt).reindex(nouns), released.by_string(prompt).reindex(nouns)
        rows.append(
            {
                "model": own.model,
                "prompt": prompt,
                "tokens_matched": len(own_at),
                **_agreement(a, b),
                "nouns": len(nouns),
                "max_abs_diff_nouns": float(np.max(np.abs(noun_a - noun_b))) if nouns else np.nan,
            }
        )
    return pd.DataFrame(rows)


def rendering_probe(
    model, tokenizer, released: Trace, prompt_key: str, prompt_text: str, formats: Sequence[ChatFormat]
) -> pd.DataFrame:
    """Which way of turning the chat into ids reproduces the released log-probabilities best.

    For each chat format (tokenisation route and the date a template prints), the model's
    next-token log-probabilities after the one-turn chat are compared with the released column of
    ``prompt_key``. Formats that give the same ids are one row (``formats`` lists them). Sorted
    best first, by the largest absolute difference over the matched vocabulary.
    """
    tokens = decoded_tokens(tokenizer, len(tokenizer))
    rendered: dict[tuple[int, ...], list[ChatFormat]] = {}
    for chat in formats:
        ids = tuple(
            encode_chat(tokenizer, [{"role": "user", "content": prompt_text}], chat, add_generation_prompt=True)
        )
        rendered.setdefault(ids, []).append(chat)
    values = next_token_logprobs(model, [list(ids) for ids in rendered], batch_size=len(rendered)).numpy()
    rows = []
    for (ids, chats), row in zip(rendered.items(), values):
        own = Trace(
            model=released.model,
            key=released.key,
            family=released.family,
            instruct=True,
            prompts=[prompt_key],
            logprobs=row[None, : len(tokens)],
            tokens=tokens,
            meta={},
        )
        own_at, released_at = _matched(own, released)
        rows.append(
            {
                "formats": ", ".join(f"{c.tokenisation} / {c.date}" for c in chats),
                "n_ids": len(ids),
                "n_bos": sum(1 for i in ids if i == tokenizer.bos_token_id),
                **_agreement(
                    row[own_at].astype(np.float64), released.column(prompt_key)[released_at].astype(np.float64)
                ),
            }
        )
    return pd.DataFrame(rows).sort_values("max_abs_diff", ignore_index=True)
