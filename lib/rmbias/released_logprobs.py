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

from . import models
from .data import DataError, build_once, cache_dir, fetch_hub_file, gather
from .logprobs import Trace

DATASET = "Oxford-HIPlab/iclr2026-lm-logprobs"
# No commit of the dataset is on public record where this book was written, so downloads follow the
# main branch and every trace records the commit it resolved to. Pin one here once it is known.
REVISION: str | None = None
METADATA = ("token_id", "token_name", "token_decoded")


def file_name(model_id: str) -> str:
    """The release's file for a hub id: ``org/name`` -> ``org--name.csv``."""
    return f"{model_id.replace('/', '--')}.csv"


def convert(csv: Path, target: Path) -> dict:
    """Write one released CSV as ``target/logprobs.parquet`` (build_once's builder).

    Token strings are read as written: an empty string stays empty and ``nan`` stays a word (the
    CSV quotes tokens that hold line breaks). The log-probabilities were float32 values printed in
    full, so they are stored as float32 when that loses nothing, which is checked.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    text = {name: pa.string() for name in METADATA[1:]}
    table = pacsv.read_csv(csv, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                           convert_options=pacsv.ConvertOptions(column_types={"token_id": pa.int64(), **text},
                                                                strings_can_be_null=False))
    missing = [name for name in METADATA if name not in table.column_names]
    if missing:
        raise DataError(f"{csv} lacks the column(s) {', '.join(missing)} of the released layout "
                        f"({', '.join(METADATA)}, then one column per prompt): a different file?")
    columns = {}
    for name in table.column_names:
        column = table[name]
        if name not in METADATA:
            values = column.to_numpy().astype(np.float64)
            narrow = values.astype(np.float32)
            column = pa.array(narrow if np.array_equal(narrow.astype(np.float64), values, equal_nan=True) else values)
        columns[name] = column
    target.mkdir(parents=True)
    pq.write_table(pa.table(columns), target / "logprobs.parquet")
    prompts = [name for name in table.column_names if name not in METADATA]
    return {"rows": table.num_rows, "prompts": prompts, "source": str(csv)}


def released_table(model_id: str, prompts: Sequence[str] | None = None,
                   revision: str | None = REVISION) -> tuple[pd.DataFrame, dict]:
    """One model's released log-probabilities (``token_id``, ``token_decoded`` and the prompt
    columns asked for, all when ``prompts`` is None), and their provenance.

    Raises :class:`rmbias.data.DataError` when the file cannot be had or fails its hash check, and
    when a prompt asked for is not in it.
    """
    csv, record = fetch_hub_file(DATASET, file_name(model_id), revision=revision)
    folder = build_once(cache_dir() / "released-logprobs" / record["commit"] / csv.stem,
                        lambda target: {**convert(csv, target), **record})
    import pyarrow.parquet as pq

    schema = pq.read_schema(folder / "logprobs.parquet")
    available = [name for name in schema.names if name not in METADATA]
    wanted = list(prompts) if prompts is not None else available
    absent = [p for p in wanted if p not in available]
    if absent:
        raise DataError(f"The released file of {model_id} has no column for prompt(s) {', '.join(absent)}; "
                        f"it has {len(available)} prompts: {', '.join(available)}.")
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
    spec = models.spec(model_id)
    return Trace(model=spec.label, key=model_id, family=spec.family, instruct=spec.instruct,
                 prompts=record["prompts"],
                 logprobs=np.ascontiguousarray(table[record["prompts"]].to_numpy(np.float32).T),
                 tokens=pd.DataFrame({"token_id": table["token_id"].to_numpy(), "token": table["token_decoded"]}),
                 meta={"source": "the authors' release", **record})


def released_traces(model_ids: Sequence[str], prompts: Sequence[str] | None = None, mode: str = "auto",
                    revision: str | None = REVISION) -> tuple[dict[str, Trace], dict[str, str]]:
    """The released traces of several models, and for each one that could not be had, why
    (:func:`rmbias.data.gather`: ``mode="auto"`` returns what it could, ``"required"`` stops)."""
    return gather({m: (lambda m=m: released_trace(m, prompts, revision)) for m in model_ids}, mode)
