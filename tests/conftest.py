"""Shared fixtures. The data tests need the authors' release: either network access, or
RMBIAS_DATA_MIRROR pointing at an offline mirror (CI sets it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The tests never reach the Hugging Face hub (set before transformers is first imported).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# `make test` runs the suite in parallel processes (pytest-xdist): each gets its share of the cores
# for torch, and so do the chapters' kernels it starts (they inherit the variable), so that two
# workers never run four busy threads on two cores.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    )

# Modules whose tests run on one worker, one after the other: each builds one expensive session
# fixture (the tiny build of the book, the rehearsal of the paper run), or loads models at the
# published widths (two of those at once would hold their memory at once). Every other test is
# sent to whichever worker is free. The groups are sent out first, longest first, so that no
# worker is left with one of them at the end while the other idles.
GROUPS = {
    "tests/test_rehearsal.py": "rehearsal",
    "tests/test_book.py": "tiny-book",
    "tests/test_architectures.py": "real-shapes",
    "tests/test_heads.py": "real-shapes",
}
ORDER = ("rehearsal", "tiny-book", "real-shapes")


def _group(nodeid: str) -> str | None:
    return GROUPS.get(nodeid.split("::")[0])


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: ORDER.index(_group(item.nodeid)) if _group(item.nodeid) else len(ORDER))


def pytest_xdist_make_scheduler(config, log):
    """pytest-xdist's scope scheduling with the scopes of GROUPS (one test each elsewhere), in the
    order of collection (xdist's own loadgroup marks no longer reach its scheduler under pytest 9)."""
    from xdist.scheduler import LoadScopeScheduling

    class GroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid) or nodeid

    config.option.loadscopereorder = False
    return GroupScheduling(config, log)


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
def paper_hub(tmp_path_factory, worker_id) -> Path:
    """A local Hugging Face cache holding a stand-in of every model and dataset the paper profile
    loads, in its published layout at its pinned revision (rmbias.standins): written once per run,
    by whichever parallel worker needs it first, into the run's folder that all workers share (the
    rehearsal and the head tests read it, usually on different workers); the tests only read it."""
    from filelock import FileLock

    from rmbias import standins

    shared = tmp_path_factory.getbasetemp()
    if worker_id != "master":  # each worker's base folder lies in the run's own
        shared = shared.parent
    cache, done = shared / "paper-hub", shared / "paper-hub.complete"
    with FileLock(str(shared / "paper-hub.lock")):
        if not done.is_file():
            shutil.rmtree(cache, ignore_errors=True)  # what an interrupted writer left
            standins.write_paper_standins(cache)
            done.touch()
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
