"""External data: the authors' release and Anthropic's hh-rlhf, fetched at pinned commits.

Nothing here is committed to the repository. Each file is downloaded once from its public
repository at a fixed commit, its sha256 is checked, and it is cached under ``RMBIAS_CACHE``
(default ``~/.cache/rmbias``). On a machine with no network, set ``RMBIAS_DATA_MIRROR`` to a
folder laid out like the upstream repositories (``authors-5d8d2e9/...``, ``hh-rlhf-354e5c3/...``);
the files are then read from there, after the same hash check. Files too large for the mirror
(:data:`BLOB_FILES`) are checked by their git blob id, and files of Hugging Face hub datasets
(:func:`fetch_hub_file`) by the sha256 the hub names them by.

Command line: ``python -m rmbias.data fetch`` fetches (or checks) every file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

MIRROR_ENV = "RMBIAS_DATA_MIRROR"
CACHE_ENV = "RMBIAS_CACHE"


class DataError(RuntimeError):
    """A data file could not be had or failed its integrity check; the message says what to do."""


@dataclass(frozen=True)
class Source:
    """A public repository pinned at one commit."""

    folder: str  # folder name in the cache and in the mirror
    owner: str
    repo: str
    commit: str
    licence: str

    def url(self, path: str) -> str:
        return f"https://raw.githubusercontent.com/{self.owner}/{self.repo}/{self.commit}/{path}"


AUTHORS = Source(
    folder="authors-5d8d2e9",
    owner="brchristian",
    repo="reward_models_inherit_value_biases_from_pretraining",
    commit="5d8d2e9d879bf0060c791b11300f0efda42c9bcf",
    licence="none stated: cite the paper (CC BY 4.0); not redistributed here",
)
HH_RLHF = Source(
    folder="hh-rlhf-354e5c3",
    owner="anthropics",
    repo="hh-rlhf",
    commit="354e5c3cb8960630860dd5774a6ac2a58313bf4d",
    licence="MIT",
)

# Google's record of the Colab GPU runtime (its preloaded packages): what `make colab-check` rebuilds and
# the tests of rmbias.colab plan against. Not used by any chapter.
COLAB_RECORD = Source(
    folder="colab-backend-info-a724079",
    owner="googlecolab",
    repo="backend-info",
    commit="a72407924822ea377410b69f0a290150bcb5c9c2",
    licence="Apache-2.0",
)

_RM = "data/reward_model_scores"
_TR = "data/reward_model_training"

# (source, path in the repository) -> sha256
FILES: dict[tuple[Source, str], str] = {
    (
        AUTHORS,
        "data/corpora/dict_big2_expanded.csv",
    ): "9554698f6b7dd619853a7c129db977b59884560e211e75699e2b9c4b746dd8f1",
    (AUTHORS, "data/corpora/dict_big2_nouns.csv"): "186886a25b2f03ea3ec7e78fad71fabee408e3b5ec1758683461df4359b45435",
    (
        AUTHORS,
        "data/corpora/moral-foundations-dictionary-20.dicx",
    ): "973957f99129b324c8a4ebf3fcb7ed4e1f9f017b2d041f50288f991b0844ce7a",
    (
        AUTHORS,
        "data/corpora/token_intersection.csv",
    ): "f5faabb094332b36528c21bfe4fe96532b510f5e3bebb16794560e4b1835814c",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.parquet",
    ): "150d2ec07d0a99d28698a4a8290040c501620044059d8c6435660966b12092d2",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Gemma-2-27B.parquet",
    ): "59ad320955c9e44f30e89f2ab89674709516909d134f6ced75886542fff73c46",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/MFD20_rewards_Skywork_Skywork-Reward-Llama-3.1-8B-v0.2.parquet",
    ): "e446d0ff63252b25a4af4823f5428c34fff203dfad0348a964e7bd3a3990e813",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/MFD20_rewards_nicolinho_QRM-Gemma-2-27B.parquet",
    ): "f0e483d04fdeedf224049d7e116009232c01175eb54cc90566bb4472e3def09c",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_LxzGordon_URM-LLaMa-3.1-8B.parquet",
    ): "833fbbdbbdcc48074d9ff9f79d0b20fdb59f5ba42224b85b7d6e62025a255d6b",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_RLHFlow_ArmoRM-Llama3-8B-v0.1.parquet",
    ): "827ddb077ea76d6d671e8e888817a7ce4f0cefd8b81b4af61dc406aa89a7a401",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_Ray2333_GRM-Llama3-8B-rewardmodel-ft.parquet",
    ): "3576377641ecfc359ffcb5a445f3dc038b2515afcfa154efa829b3345ac2c6a5",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_Ray2333_GRM-Llama3.2-3B-rewardmodel-ft.parquet",
    ): "7a3d5c31ca80d7ffca5e6b0de5e79b919e27fbc4164f1aaddb461dad235c6c28",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.parquet",
    ): "892deaddc20c2b2b6608075d67f1ee9338490e0c179968bc6597371b34d55fad",
    (
        AUTHORS,
        f"{_RM}/dict_MFD_20/big2_rewards_nicolinho_QRM-Llama3.1-8B.parquet",
    ): "ebf198dc7c3e49ce9ebbcc3800e2b6c7bd6e9487a762e74df7ccc863efb9c260",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_LxzGordon_URM-LLaMa-3.1-8B.parquet",
    ): "a2938310590ab58b7e3619c7cd5829c628b2ca30d6385c7080d20bf33e133515",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_RLHFlow_ArmoRM-Llama3-8B-v0.1.parquet",
    ): "a846e6b70e56b96851d3e3f390714c9eceb22d5b0ef80245ad7f4cffb74909dd",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Ray2333_GRM-Llama3-8B-rewardmodel-ft.parquet",
    ): "d2d01fe8b2233bdd79e299f8061a99103951f6cd68edd44962da662c0432d39b",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Ray2333_GRM-Llama3.2-3B-rewardmodel-ft.parquet",
    ): "db6d41262ddbace7c572f18b3631dedef07e558ada3d3a319b6f820cb1f8ae24",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Ray2333_GRM-gemma2-2B-rewardmodel-ft.parquet",
    ): "303e84eda5f5d046abf88afdf166f67af76b867a0d9cad963af62a6b82d7ffbc",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Gemma-2-27B-v0.2.parquet",
    ): "9afe776391b2f3f7a39e2697ad3e178efc2527cf6ef6a4b4b3f0ef6bf23853d2",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Gemma-2-27B.parquet",
    ): "ea4c16adcbc9822c24cbfec7af221b8cf3b76e3928c350c5a5d66febabb1ead5",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_Skywork_Skywork-Reward-Llama-3.1-8B-v0.2.parquet",
    ): "3bc0b94e6afb54b1f7655593ffccf59822b204c867d9560e0628cc2a8f676742",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_nicolinho_QRM-Gemma-2-27B.parquet",
    ): "3e00c711bbeb23f89bb720bd0eb91e667d61fec130782ddeaed7ecf981975878",
    (
        AUTHORS,
        f"{_RM}/dict_big2_nouns/big2_rewards_nicolinho_QRM-Llama3.1-8B.parquet",
    ): "a2cfb276be82025901354ee8a473dd4e189dcd579d5127a150d8c6423501070a",
    (AUTHORS, f"{_TR}/rank_results_grm_80k.csv"): "5c3483e286ef5f4233948de59333cf4b5ef755cff1d5c30ebb49a908bc4ff2b5",
    (AUTHORS, f"{_TR}/rank_results_sky_80k.csv"): "4674ea69eb3265b1738ebb790833e3169a5ab94dafe7a86434f8587c991b4fc2",
    (AUTHORS, f"{_TR}/rank_results_uf_100.csv"): "8d0a25dcedb785f02668fb5b2935c3d85c0d9a918b19cd870ba22de52b88138e",
    (AUTHORS, f"{_TR}/rank_results_uf_13.csv"): "905dbc2fa37577b7f69901d967c445c4df0699176dc2e4c540b938b4256347ba",
    (AUTHORS, f"{_TR}/rank_results_uf_27.csv"): "905dbc2fa37577b7f69901d967c445c4df0699176dc2e4c540b938b4256347ba",
    (AUTHORS, f"{_TR}/rank_results_uf_54.csv"): "80b4d0b88ffec4d3859b756f32f1d1191ea359d0e4da29ccce54817857f43e9f",
    (HH_RLHF, "LICENSE"): "d4fb18db48757e273261a5597b8a09381de8073da060474ce33d0643e06c875e",
    (HH_RLHF, "harmless-base/test.jsonl.gz"): "ebfaaed21162a4de120ae85366075b34425e2a6303fac59b99555002f7016f03",
    (COLAB_RECORD, "pip-freeze.gpu.txt"): "96f6efbdc6341ea8c28aeb1d06c51861cfeebd0ca531ee2a4de757b0b80b1982",
    (COLAB_RECORD, "os-info-gpu.txt"): "43cdf10db6519230db400a9a85e1b735d4403339aa3960b5d794c9c2267ce7e0",
}

# Files of the authors' release that the offline mirror leaves out for their size: the reward models'
# scores of every vocabulary token at each training checkpoint, behind the paper's Figure 5 and its Qwen
# version. No sha256 is published for them, so each is checked by its git blob id as the pinned commit's
# tree records it (``git ls-tree``): the blob id is the sha1 of ``"blob <size>\0" + content``, so it
# fixes the content as a sha256 would. ``fetch_all`` leaves them out unless asked (``--large``).
BLOB_FILES: dict[tuple[Source, str], str] = {
    (AUTHORS, f"{_TR}/greatest_ever_one_across_checkpoints_gemma.parquet"): "940fd137264593b171425f3224bebf20f91e8bb9",
    (AUTHORS, f"{_TR}/greatest_ever_one_across_checkpoints_llama.parquet"): "f53582e423e5d5db34e906a768dfeb37d4196e44",
    (AUTHORS, f"{_TR}/greatest_ever_one_across_checkpoints_qwen.parquet"): "e908e7396e7eec6bb5f46a778606a71eaead4110",
}


def cache_dir() -> Path:
    """Where downloads and converted models are kept (``RMBIAS_CACHE``, default ``~/.cache/rmbias``)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "rmbias").expanduser()


def build_once(target: Path, build: Callable[[Path], dict]) -> Path:
    """``target``, built by ``build(folder)`` on first use, atomically.

    ``build`` creates and fills a folder (it does not exist yet) inside a scratch folder beside
    ``target`` and returns a record that is written last, as ``complete.json``; only then is the
    folder renamed into place. An interrupted build
    never leaves a folder that a later call would take for complete, and if another process
    finished first, its folder is kept.
    """
    if (target / "complete.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with build_lock(target):
        if (target / "complete.json").is_file():  # built by another process while this one waited
            return target
        return _build(target, build)


@contextmanager
def build_lock(target: Path) -> Iterator[None]:
    """Hold ``target``'s lock while the block runs: two chapters executed side by side that need the
    same model (or the same training run, :func:`rmbias.ablation.train_run`) build it once, the
    second waiting for the first. The lock is a file in the temporary
    folder named by the target's path, so the cache holds only finished folders. Where ``fcntl`` is
    missing (Windows) nothing is locked, and both build; the rename keeps one."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    locks = Path(tempfile.gettempdir()) / "rmbias-locks"
    digest = hashlib.sha256(str(target.resolve()).encode()).hexdigest()[:16]
    try:
        locks.mkdir(exist_ok=True)
        handle = open(locks / f"{target.name}-{digest}.lock", "w")
    except OSError:  # another user's lock folder: build unlocked, as without fcntl
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(target: Path, build: Callable[[Path], dict]) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        built = scratch / target.name
        record = build(built)
        (built / "complete.json").write_text(json.dumps(record, default=str, indent=1))
        if (target / "complete.json").is_file():
            return target
        if target.exists():  # an older incomplete attempt
            shutil.rmtree(target)
        try:
            built.rename(target)
        except OSError:  # another process renamed its complete folder into place just now
            if not (target / "complete.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _lookup(path: str) -> tuple[Source, str]:
    """Find the registered file whose repository path is ``path`` (or ends with it)."""
    matches = [(src, p) for (src, p) in [*FILES, *BLOB_FILES] if p == path or p.endswith("/" + path)]
    if len(matches) != 1:
        known = "\n  ".join(sorted(p for _, p in [*FILES, *BLOB_FILES]))
        what = "matches several files" if matches else "is not a registered data file"
        raise DataError(f"{path!r} {what}. Registered files:\n  {known}")
    return matches[0]


def sha256sum(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_id(path: Path) -> str:
    """The id git gives a file's content: the sha1 of ``"blob <size>\\0"`` followed by the bytes."""
    digest = hashlib.sha1(f"blob {Path(path).stat().st_size}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# The two content checks, by the length of the recorded digest: 64 hex digits are a sha256, 40 a
# git blob id (as GitHub trees and the Hugging Face hub record files that are not in LFS). Each has the
# key it is recorded under in provenance; messages spell it with spaces.
HASHES: dict[int, tuple[str, Callable[[Path], str]]] = {64: ("sha256", sha256sum), 40: ("git_blob_id", git_blob_id)}


def digest_key(expected: str) -> str:
    """The kind of digest ``expected`` is, as provenance records it: ``sha256`` or ``git_blob_id``."""
    if len(expected) not in HASHES:
        raise ValueError(f"{expected!r} is neither a sha256 (64 hex digits) nor a git blob id (40)")
    return HASHES[len(expected)][0]


def digest_of(path: Path, expected: str) -> tuple[str, str]:
    """The name (in words) and value of ``path``'s digest of the kind ``expected`` is (:data:`HASHES`)."""
    key = digest_key(expected)
    return key.replace("_", " "), HASHES[len(expected)][1](Path(path))


@lru_cache(maxsize=None)
def _verified(path: Path, expected: str, size: int, mtime: float) -> bool:
    # Keyed on size and mtime too, so a file changed on disk is hashed again.
    return digest_of(path, expected)[1] == expected


def _check(path: Path, expected: str, fix: str) -> Path:
    stat = path.stat()
    if not _verified(path, expected, stat.st_size, stat.st_mtime):
        name, got = digest_of(path, expected)
        raise DataError(f"{path} is corrupt or a different version: its {name} is {got}, expected {expected}. {fix}")
    return path


def expected_digest(path: str) -> str:
    """The recorded sha256 or git blob id of a registered file (a path or unique tail of it)."""
    key = _lookup(path)
    return FILES[key] if key in FILES else BLOB_FILES[key]


def fetch(path: str) -> Path:
    """Return a local, hash-checked copy of one data file, downloading it if needed.

    ``path`` is the file's path in its repository (``data/corpora/dict_big2_nouns.csv``) or a
    unique tail of it (``dict_big2_nouns.csv``). With ``RMBIAS_DATA_MIRROR`` set, the file is read
    from the mirror and never downloaded.
    """
    source, repo_path = _lookup(path)
    expected = expected_digest(repo_path)
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        local = Path(mirror).expanduser() / source.folder / repo_path
        if not local.is_file():
            raise DataError(
                f"{local} is missing from the mirror set by {MIRROR_ENV}={mirror}. Copy "
                f"{source.url(repo_path)} there, or unset {MIRROR_ENV} to download it."
            )
        return _check(local, expected, f"Replace it with a fresh copy of {source.url(repo_path)}.")

    target = cache_dir() / "data" / source.folder / repo_path
    if target.is_file():
        return _check(target, expected, f"Delete {target} and run again to download it anew.")
    import pooch  # imported here: only downloads need it

    try:
        got = pooch.retrieve(
            url=source.url(repo_path),
            known_hash=f"sha256:{expected}" if digest_key(expected) == "sha256" else None,  # others: below
            fname=target.name,
            path=target.parent,
            progressbar=False,
        )
    except ValueError as err:  # pooch's hash mismatch (it deletes the bad download)
        raise DataError(
            f"The download of {source.url(repo_path)} failed its sha256 check ({err}). The upstream "
            "file may have changed; nothing was kept. Check the pinned commit in rmbias/data.py."
        ) from err
    except Exception as err:  # network errors come from requests, urllib3 or the OS
        raise DataError(
            f"Could not download {source.url(repo_path)}: {err}. Without network, set "
            f"{MIRROR_ENV} to a folder holding {source.folder}/{repo_path}."
        ) from err
    if digest_key(expected) != "sha256":  # pooch checked a sha256 already
        name, digest = digest_of(Path(got), expected)
        if digest != expected:
            Path(got).unlink()
            raise DataError(
                f"The download of {source.url(repo_path)} failed its {name} check (it is {digest}, expected "
                f"{expected}); nothing was kept. The upstream file may have changed: check the pinned commit "
                "in rmbias/data.py."
            )
    return Path(got)


def fetch_all(large: bool = False) -> list[Path]:
    """Fetch and check every registered file (what ``make data`` runs); ``large`` adds
    :data:`BLOB_FILES`, which the offline mirror does not hold."""
    keys = [*FILES, *BLOB_FILES] if large else list(FILES)
    return [fetch(path) for _, path in keys]


def provenance(path: str) -> dict[str, str]:
    """Where a data file comes from: repository, commit, URL, sha256 and licence."""
    source, repo_path = _lookup(path)
    return {
        "repository": f"github.com/{source.owner}/{source.repo}",
        "commit": source.commit,
        "path": repo_path,
        "url": source.url(repo_path),
        digest_key(expected_digest(repo_path)): expected_digest(repo_path),
        "licence": source.licence,
    }


def fetch_hub_file(
    repo_id: str, filename: str, revision: str | None = None, repo_type: str = "dataset"
) -> tuple[Path, dict[str, str]]:
    """A verified local copy of one file of a Hugging Face hub repository, and where it came from.

    The file is downloaded into the Hugging Face cache (``HF_HUB_CACHE``) by ``hf_hub_download``, or
    found there offline (``HF_HUB_OFFLINE=1``). The cache names each stored file by the hash the hub
    publishes for it (the sha256 of a file in LFS, else its git blob id), so that name is the
    expected digest; the content is hashed against it, and the snapshot folder's name is the commit
    that ``revision`` (default: the main branch) resolved to. Returns the path and a provenance
    record (repository, requested revision, resolved commit, file, digest).
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    where = f"{repo_type} {repo_id}, file {filename}" + (f" at {revision}" if revision else "")
    try:
        local = Path(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision))
    except LocalEntryNotFoundError as err:
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
        how = (
            (
                "HF_HUB_OFFLINE is set and it is not in the Hugging Face cache: run once with network, or copy "
                "the cache folder of this dataset into HF_HUB_CACHE"
            )
            if offline
            else f"the hub could not be reached ({err})"
        )
        raise DataError(f"Could not get the {where}: {how}.") from err
    except EntryNotFoundError as err:
        raise DataError(f"The hub has no file {filename} in {repo_type} {repo_id}. Check the name ({err}).") from err
    except RepositoryNotFoundError as err:
        raise DataError(f"The hub has no {repo_type} {repo_id} (or it is private). Check the name.") from err
    except Exception as err:  # network errors come from httpx or the OS
        raise DataError(f"Could not download the {where}: {err}.") from err
    stored = local.resolve()
    expected = stored.name
    if len(expected) not in HASHES:
        raise DataError(
            f"{local} is not a file of the Hugging Face cache (it resolves to {stored}), so its "
            "published hash is unknown. Point HF_HUB_CACHE at a cache made by huggingface_hub."
        )
    _check(stored, expected, f"Delete {stored} and {local}, and run again to download it anew.")
    record = {
        "repository": f"huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}",
        "revision": revision or "main",
        "commit": local.parts[local.parts.index("snapshots") + 1],
        "path": filename,
        digest_key(expected): expected,
    }
    return local, record


RELEASED_MODES = ("auto", "required")


def gather(loaders: dict[str, Callable[[], object]], mode: str = "auto") -> tuple[dict[str, object], dict[str, str]]:
    """Run each loader of a released source; return what loaded and, for each that failed, why.

    ``mode`` is a chapter's ``RELEASED`` setting: ``"auto"`` keeps going past a
    :class:`DataError` (the reasons let the chapter say, in words, what is missing);
    ``"required"`` stops at the first one, with its fix. Other errors always propagate.
    """
    if mode not in RELEASED_MODES:
        raise ValueError(f"RELEASED = {mode!r}: use one of {', '.join(RELEASED_MODES)}")
    found, missing = {}, {}
    for name, load in loaders.items():
        try:
            found[name] = load()
        except DataError as err:
            if mode == "required":
                raise DataError(
                    f"{err} (released data are required here; set RELEASED = 'auto' to build without them)"
                ) from err
            missing[name] = str(err)
    return found, missing


def missing_note(missing: dict[str, str], what: str) -> str:
    """A plain sentence for a chapter: what is not drawn, for which sources, and why (the first
    reason; the others are almost always the same). Empty when nothing is missing."""
    if not missing:
        return ""
    reason = next(iter(missing.values()))
    return (
        f"{what} is not drawn here: the authors' released data for {', '.join(missing)} could not be "
        f"read. The reason given: {reason}"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["fetch"], ["fetch", "--large"]):
        print("usage: python -m rmbias.data fetch [--large]", file=sys.stderr)
        return 2
    try:
        paths = fetch_all(large="--large" in args)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    where = os.environ.get(MIRROR_ENV) or str(cache_dir() / "data")
    print(f"{len(paths)} data files present and sha256-checked ({where})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
