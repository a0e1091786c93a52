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
