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


@pytest.fixture(scope="session")
def paper_hub(tmp_path_factory) -> Path:
    """A local Hugging Face cache holding a stand-in of every model and dataset the paper profile
    loads, in its published layout at its pinned revision (rmbias.standins): written once per run."""
    from rmbias import standins

    cache = tmp_path_factory.mktemp("paper-hub")
    standins.write_paper_standins(cache)
    return cache


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A Hugging Face cache holding stand-in snapshots of Unified-Feedback and Skywork 80K, served
    offline (HF_HUB_OFFLINE is set for every test) through the real loader: ``(cache, folders)``."""
    import datasets.config
    import huggingface_hub.constants

    from rmbias import standins

    cache = tmp_path_factory.mktemp("hf-hub")
    folders = standins.write_preference_standins(cache)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(cache))
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        patch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path_factory.mktemp("hf-datasets"))
        yield cache, folders
