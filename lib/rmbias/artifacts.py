"""Artifacts: every table, figure and headline number a chapter writes, with what made it.

Layout: ``results/<profile>/<chapter>/`` (``RMBIAS_RESULTS`` moves the root). A table
``name.parquet`` has a ``name.meta.json`` beside it recording its provenance; each chapter has a
``summary.json`` of headline numbers. Files are written to a temporary name and renamed, so an
interrupted run never leaves a half-written file that looks complete.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

RESULTS_ENV = "RMBIAS_RESULTS"
_TRACKED = (
    "rmbias",
    "torch",
    "transformers",
    "trl",
    "peft",
    "datasets",
    "tokenizers",
    "pandas",
    "numpy",
    "statsmodels",
    "pingouin",
    "seaborn",
    "matplotlib",
    "wordfreq",
    "papermill",
    "jupyter-book",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries whose behaviour the numbers depend on."""
    out = {"python": platform.python_version()}
    for name in _TRACKED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def results_dir(profile: str, chapter: str) -> Path:
    """``results/<profile>/<chapter>/``, created if needed."""
    root = Path(os.environ.get(RESULTS_ENV, "results"))
    path = root / profile / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: Path, write) -> Path:
    """Create ``path`` all at once: ``write(tmp)`` fills a hidden file beside it, which then replaces
    ``path``, so an interrupted run never leaves a half-written file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write a JSON file atomically (numpy scalars become plain numbers)."""
    text = json.dumps(data, indent=2, default=_json_default, sort_keys=False)
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text + "\n"))


def write_table(table: pd.DataFrame, directory: Path, name: str, **provenance: Any) -> Path:
    """Write ``name.parquet`` and its ``name.meta.json`` (provenance, versions, time, shape)."""
    directory = Path(directory)
    path = atomic_write(directory / f"{name}.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    meta = {
        "table": path.name,
        "rows": len(table),
        "columns": list(map(str, table.columns)),
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        **provenance,
    }
    write_json(directory / f"{name}.meta.json", meta)
    return path


def read_table(directory: Path, name: str) -> pd.DataFrame:
    """Read a table another chapter wrote, with a clear error if that chapter has not run."""
    path = Path(directory) / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run the chapter that writes it first "
            "(python -m rmbias.book run --profile <profile>)"
        )
    return pd.read_parquet(path)


def write_summary(directory: Path, numbers: dict[str, Any], profile: str) -> Path:
    """The chapter's ``summary.json``: headline numbers plus the profile and library versions."""
    record = {
        "profile": profile,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "numbers": numbers,
    }
    return write_json(Path(directory) / "summary.json", record)


def save_figure(fig, directory: Path, name: str) -> Path:
    """Save a figure as PNG (and keep it displayed in the notebook)."""
    return atomic_write(Path(directory) / f"{name}.png", lambda tmp: fig.savefig(tmp, format="png"))
