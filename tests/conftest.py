"""Shared fixtures. The data tests need the authors' release: either network access, or
RMBIAS_DATA_MIRROR pointing at an offline mirror (CI sets it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The tests never reach the Hugging Face hub (set before transformers is first imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def project_copy(tmp_path_factory) -> Path:
    """A scratch copy of the book's sources, so tests can execute and build without touching
    the working tree's book/ and results/."""
    dest = tmp_path_factory.mktemp("project")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "notebooks", dest / "notebooks")
    (dest / "book").mkdir()
    for path in (ROOT / "book").iterdir():
        if path.suffix in (".md", ".bib"):
            shutil.copy(path, dest / "book" / path.name)
    return dest
