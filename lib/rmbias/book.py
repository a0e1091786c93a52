"""Execute the chapters with papermill and place them in the book.

``python -m rmbias.book run --profile demo`` turns each ``notebooks/NN_name.py`` (jupytext
py:percent) into a notebook, executes it with ``PROFILE`` set, and writes ``book/NN_name.ipynb``
for Jupyter Book to render (Jupyter Book itself never executes anything). A chapter is written
only when it ran to the end: a failure leaves ``book/NN_name.failed.ipynb`` to inspect, never a
half-run chapter that looks complete. Timings and versions go to ``book/generated/build_info.md``
(shown in the introduction) and ``results/<profile>/execution.json``.

A chapter is executed again only when something it depends on changed: its source, the library
modules it imports (directly or through other modules), the profile and parameters, the versions
of the libraries the numbers depend on, and the result tables of earlier chapters it reads. A
digest of these (:func:`build_key`) is stored in the executed notebook's metadata; ``--force``
executes every chapter regardless.

``--jobs`` chapters run at once (:func:`default_jobs`: three on a CPU profile, one on a GPU), each
as soon as the earlier chapters whose results it reads have finished (:func:`chapter_order`,
:func:`schedule`); each kernel gets its own environment (progress file, its share of the cores,
shared anew as chapters start and finish: :class:`CoreShares`).

``python -m rmbias.book student`` writes each chapter without its solutions to
``notebooks/student/`` (:func:`student_copies`), for teachers to hand out.

``python -m rmbias.book links`` points every chapter's Colab badge, and the repository its first
cell clones on Colab, at the repository and branch named in ``_config.yml`` (:func:`colab_links`).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .artifacts import RESULTS_ENV, library_versions, write_json
from .keys import fingerprint
from .profiles import PROFILES, Profile, resolve
from .progress import relayed

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = Path(__file__).resolve().parent
KEY_FIELD = "rmbias_build"  # the executed notebook's metadata entry holding its build key


def notebook_sources(root: Path = ROOT) -> list[Path]:
    """The chapter sources, in book order (``notebooks/01_*.py``, ``02_*.py``, ...)."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))


PYTHON_KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}


# CPython 3.11 builds the Python objects of a parsed tree with a recursion counter shared by all
# threads: two threads parsing at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905). Chapters run side by side are readied and keyed in worker
# threads, so every parse here takes this lock: the library's sources (:func:`_parse`) and the
# chapters' (jupytext reads cell metadata with ``ast.literal_eval``).
_PARSING = threading.Lock()


def _parse(path: Path) -> ast.AST:
    """The syntax tree of a Python file, parsed under :data:`_PARSING`."""
    text = Path(path).read_text()
    with _PARSING:
        return ast.parse(text)


def _as_notebook(source: Path, folder: Path) -> Path:
    """A chapter's jupytext source written as a plain notebook (with a Python kernel) in ``folder``."""
    import jupytext

    plain = folder / f"{source.stem}.ipynb"
    with _PARSING:
        notebook = jupytext.read(source)
    notebook.metadata.setdefault("kernelspec", dict(PYTHON_KERNEL))
    jupytext.write(notebook, plain)
    return plain


def declared_parameters(notebook_path: Path) -> dict[str, Any]:
    """The names and defaults declared in a notebook's ``parameters`` cell (a notebook, or a
    chapter's jupytext source)."""
    import papermill

    if notebook_path.suffix != ".ipynb":
        with tempfile.TemporaryDirectory() as scratch:
            return declared_parameters(_as_notebook(notebook_path, Path(scratch)))
    return {name: info["default"] for name, info in papermill.inspect_notebook(str(notebook_path)).items()}


def _kernel_manager(env: dict[str, str]):
    """A Jupyter kernel manager class whose kernels start with ``env`` over this process's
    environment. Chapters executed side by side (threads of one build) each need their own
    variables (progress file, threads); ``os.environ`` is shared by every thread."""
    from jupyter_client.manager import AsyncKernelManager

    class ChapterKernel(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw["env"] = {**os.environ, **kw.get("env", {}), **env}
            await super().start_kernel(**kw)

    return ChapterKernel


def execute(
    source: Path,
    output: Path,
    parameters: dict[str, Any],
    cwd: Path = ROOT,
    key: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Execute one chapter into ``output``; return the wall time in seconds. ``key`` (from
    :func:`build_key`) is stored in the executed notebook's metadata; ``env`` is added to the
    kernel's environment.

    Raises ``ValueError`` for a parameter the notebook does not declare (papermill would only
    warn), and ``RuntimeError`` naming the failed copy if a cell fails.
    """
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        plain = _as_notebook(source, Path(scratch))
        declared = declared_parameters(plain)
        unknown = sorted(set(parameters) - set(declared))
        if unknown:
            raise ValueError(f"{source.name} has no parameter(s) {unknown}; it declares: {', '.join(declared)}")
        ran = Path(scratch) / "executed.ipynb"
        start = time.perf_counter()
        try:
            with relayed(f"  [{source.stem}] ", Path(scratch)) as relay:
                papermill.execute_notebook(
                    str(plain),
                    str(ran),
                    parameters=parameters,
                    kernel_name="python3",
                    cwd=str(cwd),
                    progress_bar=False,
                    kernel_manager_class=_kernel_manager({**relay.env, **(env or {})}),
                )
        except papermill.PapermillExecutionError as err:
            failed = output.with_suffix(".failed.ipynb")
            os.replace(ran, failed)
            raise RuntimeError(
                f"{source.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}. "
                f"The executed copy is in {failed}"
            ) from err
        elapsed = time.perf_counter() - start
        _finish(ran, parameters, key)
        os.replace(ran, output)
    stale = output.with_suffix(".failed.ipynb")
    if stale.exists():
        stale.unlink()
    return elapsed


# --- what a chapter depends on -------------------------------------------------------------------


def _imported_modules(tree: ast.AST, package_level: bool) -> set[str]:
    """Names of ``rmbias`` modules a parsed file imports anywhere (function bodies included):
    ``from rmbias import a``, ``import rmbias.a``, ``from rmbias.a import x`` in a chapter, or
    ``from .a import x`` / ``from . import a`` inside the library (``package_level``)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rmbias."))
        elif isinstance(node, ast.ImportFrom):
            relative = package_level and node.level == 1
            if node.module == "rmbias" or (relative and node.module is None):
                found.update(a.name for a in node.names)
            elif node.module and node.module.startswith("rmbias."):
                found.add(node.module.split(".")[1])
            elif relative and node.module:
                found.add(node.module.split(".")[0])
    return found


def library_modules(source: Path, library: Path = LIBRARY) -> list[str]:
    """The library modules a chapter runs: those its source imports and, transitively, those they
    import (``__init__`` always). Names that are not modules (``from rmbias import X`` of a class)
    are dropped."""
    todo = _imported_modules(_parse(source), package_level=False) | {"__init__"}
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        path = library / f"{name}.py"
        if name in seen or not path.is_file():
            continue
        seen.add(name)
        todo |= _imported_modules(_parse(path), package_level=True) - seen
    return sorted(seen)


def earlier_chapters(source: Path, chapters: list[str]) -> list[str]:
    """The other chapters whose results a chapter reads: those it names in a string literal (as in
    ``artifacts.results_dir(profile, "02_rm_scoring")``)."""
    named = set(re.findall(r"""["'](\d\d_[a-z0-9_]+)["']""", Path(source).read_text()))
    return sorted(named & (set(chapters) - {Path(source).stem}))


def _digest_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


# How an executed chapter is readied for the page (:func:`_finish`): part of every build key, raised
# when that changes, so that chapters executed before are executed again.
PRESENTATION = 1


def build_key(
    source: Path,
    profile: str,
    parameters: dict[str, Any],
    results_root: Path,
    chapters: list[str],
    library: Path = LIBRARY,
) -> dict[str, Any]:
    """What a chapter's executed notebook depends on, each part as a digest, and ``key`` over them
    all. Earlier chapters' results count by their top-level files (tables, summaries); their
    subfolders are content-keyed caches (traces, scored chunks) that later chapters may add to."""
    modules = library_modules(source, library)
    inputs = {}
    for name in earlier_chapters(source, chapters):
        folder = Path(results_root) / profile / name
        inputs[name] = _digest_files(sorted(p for p in folder.glob("*") if p.is_file())) if folder.is_dir() else None
    versions = {k: v for k, v in library_versions().items() if k not in ("rmbias", "papermill", "jupyter-book")}
    parts = {
        "source": _digest_files([Path(source)]),
        "library": {m: _digest_files([library / f"{m}.py"]) for m in modules},
        "profile": profile,
        "parameters": parameters,
        "results read": inputs,
        "versions": versions,
        "presentation": PRESENTATION,
    }
    return {"key": fingerprint(parts, 16), **parts}


def stored_key(notebook: Path) -> str | None:
    """The build key recorded in an executed chapter, or None (missing, unreadable or never keyed)."""
    try:
        metadata = json.loads(Path(notebook).read_text()).get("metadata", {})
    except (OSError, ValueError):
        return None
    return (metadata.get(KEY_FIELD) or {}).get("key")


def profile_line(parameters: dict[str, Any]) -> str:
    """The line a rendered chapter shows instead of its parameters cells: which profile built the page
    and which settings the run gave, e.g. *Executed with the demo profile: real small models ...*."""
    profile = parameters.get("PROFILE", "demo")
    line = f"*Executed with the `{profile}` profile"
    if profile in PROFILES:
        line += f": {PROFILES[profile].description}"
    line += "."
    given = {k: v for k, v in parameters.items() if k != "PROFILE"}
    if given:
        line += " Settings given for this run: " + ", ".join(f"`{k} = {v!r}`" for k, v in sorted(given.items())) + "."
    return line + " Run times and versions: {doc}`execution`.*"


# Tags that keep a code cell's source off the rendered page (MyST-NB removes it or folds it behind a toggle).
HIDING_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell")
# The parameters cells: a chapter's declared defaults, and the values papermill injects after them.
PARAMETER_TAGS = ("parameters", "injected-parameters")


def visible_code(source: Path) -> list[str]:
    """The code lines a reader of a rendered chapter sees without unfolding anything: those of its
    code cells that carry none of :data:`HIDING_TAGS` and are not the parameters cell (the page shows
    :func:`profile_line` instead), blank lines and comment lines aside."""
    import jupytext

    shown = []
    for cell in jupytext.read(source).cells:
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type == "code" and not tags & {*HIDING_TAGS, *PARAMETER_TAGS}:
            shown += [line for line in cell.source.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return shown


def _finish(notebook: Path, parameters: dict[str, Any], key: dict[str, Any] | None) -> None:
    """Ready an executed chapter for the page: its parameters cells (the declared defaults and
    papermill's injected values) are tagged ``remove-cell`` and a line naming the profile and the
    given settings (:func:`profile_line`) takes their place; ``key`` goes into the metadata."""
    import nbformat

    executed = nbformat.read(notebook, as_version=4)
    if key is not None:
        executed.metadata[KEY_FIELD] = key
    position = None
    for i, cell in enumerate(executed.cells):
        tags = cell.metadata.setdefault("tags", [])
        if set(PARAMETER_TAGS) & set(tags):
            if "remove-cell" not in tags:
                tags.append("remove-cell")
            position = i
    if position is not None:
        executed.cells.insert(position + 1, nbformat.v4.new_markdown_cell(profile_line(parameters)))
    nbformat.write(executed, notebook)


def _build_info(profile: str, chapters: dict[str, dict[str, Any]]) -> str:
    """The execution record as a Markdown table: profile, each chapter's run time and date, versions."""
    chosen = PROFILES[profile]
    versions = library_versions()
    overlapped = any(entry.get("jobs", 1) > 1 for entry in chapters.values())
    lines = [
        "| | |",
        "| --- | --- |",
        f"| Profile | `{profile}`: {chosen.description} |",
        *[
            f"| `{name}` | {entry['seconds']:.0f} s, executed {entry['executed']}"
            + (f", {entry['jobs']} chapters at a time |" if entry.get("jobs", 1) > 1 else " |")
            for name, entry in sorted(chapters.items())
        ],
        f"| Total | {sum(e['seconds'] for e in chapters.values()) / 60:.1f} min"
        + (" (the chapters' times added up; those run side by side overlapped) |" if overlapped else " |"),
        "| Versions | "
        + ", ".join(
            f"{k} {versions[k]}"
            for k in (
                "python",
                "torch",
                "transformers",
                "trl",
                "peft",
                "pandas",
                "statsmodels",
                "pingouin",
                "jupyter-book",
            )
        )
        + " |",
    ]
    return "\n".join(lines) + "\n"


# The profile settings that name models whose weights a chapter loads, with how the hardware page
# marks the use (the tokenizers of chapter 01 load no weights).
MODEL_SETTINGS = {
    "reward_models": "",
    "language_models": "",
    "validation_model": " (fine-tuned)",
    "bases": " (trained)",
}


def model_settings_by_chapter(root: Path = ROOT) -> dict[str, list[str]]:
    """For each model setting of :data:`MODEL_SETTINGS`, the chapters (``"02"``) that declare it as a
    parameter (``REWARD_MODELS``): a chapter takes its models from the settings it declares, so
    this is which chapter loads which model, read from the chapters themselves."""
    out: dict[str, list[str]] = {setting: [] for setting in MODEL_SETTINGS}
    for source in notebook_sources(root):
        declared = declared_parameters(source)
        for setting in MODEL_SETTINGS:
            if setting.upper() in declared:
                out[setting].append(source.stem[:2])
    return out


def _chapter_use(chapter: str, marks: list[str]) -> str:
    """How the hardware page names one chapter's use of a model from its settings' marks
    (:data:`MODEL_SETTINGS`): ``"04"``, ``"04 (fine-tuned)"``, or ``"04 (also fine-tuned)"`` where
    the chapter also loads it plainly."""
    special = [mark.strip(" ()") for mark in dict.fromkeys(marks) if mark]
    if not special:
        return chapter
    return f"{chapter} ({'also ' if '' in marks else ''}{' and '.join(special)})"


def _model_sizes() -> str:
    """The paper profile's models as a Markdown table: the chapters that load each, its parameters
    (from the published config, :mod:`rmbias.architectures`) and the GiB its weights take in the
    dtype it is loaded in and quantised to 8 and 4 bits (activations, caches and optimiser state
    come on top)."""
    from . import architectures, registry

    paper = PROFILES["paper"]
    marks: dict[str, dict[str, list[str]]] = {}  # model -> chapter -> how it uses it
    for setting, chapters in model_settings_by_chapter().items():
        value = getattr(paper, setting)
        for key in (value,) if isinstance(value, str) else value:
            for chapter in chapters:
                marks.setdefault(key, {}).setdefault(chapter, []).append(MODEL_SETTINGS[setting])
    uses = {key: [_chapter_use(chapter, how) for chapter, how in sorted(by.items())] for key, by in marks.items()}
    short = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
    lines = [
        "| model | chapters | parameters | weights | 8-bit | 4-bit | hub commit |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, chapters in uses.items():
        spec = registry.spec(key)
        dtype = registry.dtype_for(key, paper.dtype)
        model = architectures.meta_model(key, reward=spec.reward is not None)
        params = sum(p.numel() for p in model.parameters())
        size = {q: architectures.weight_bytes(model, dtype, q) / 2**30 for q in (None, "8bit", "4bit")}
        lines.append(
            f"| `{spec.hf_id}` | {', '.join(dict.fromkeys(chapters))} | {params / 1e9:.2f} B "
            f"| {size[None]:.1f} GiB {short.get(dtype, dtype)} | {size['8bit']:.1f} GiB | {size['4bit']:.1f} GiB "
            f"| {f'`{spec.revision[:7]}`' if spec.revision else 'unpinned'} |"
        )
    return "\n".join(lines) + "\n"


def _merged_record(path: Path, profile: str, timings: dict[str, float], jobs: int = 1) -> dict[str, Any]:
    """The profile's execution record with this run's chapters added or replaced, so that running
    one chapter (``--only``) keeps the others' times. A record of another profile is replaced.
    ``jobs``: how many chapters this run executed at once (their times then overlap)."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    chapters = old.get("chapters", {}) if old.get("profile") == profile else {}
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    chapters.update({name: {"seconds": seconds, "executed": stamp, "jobs": jobs} for name, seconds in timings.items()})
    return {
        "profile": profile,
        "chapters": chapters,
        "seconds": {name: entry["seconds"] for name, entry in chapters.items()},
        "versions": library_versions(),
    }


def check_overrides(profile: str, overrides: dict[str, Any]) -> None:
    """Refuse a bad value before any chapter runs: every parameter that names a profile setting
    (``REWARD_MODELS`` is ``reward_models``) is checked as the chapters will resolve it."""
    settings = {f.name for f in fields(Profile)}
    resolve(profile, **{k.lower(): v for k, v in overrides.items() if k.lower() in settings})


def parse_set(items: list[str]) -> dict[str, Any]:
    """``NAME=JSON`` items from the command line as parameter values; a malformed one is refused
    with the item, the reason and an example."""
    out: dict[str, Any] = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ValueError(f"--set {item!r}: write NAME=VALUE, e.g. --set MAX_WORDS=20")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"--set {item!r}: the value of {name} is not JSON ({err.msg}); strings and lists "
                """of strings need double quotes, e.g. --set 'PROMPTS=["greatest_ever_one"]'"""
            ) from None
    return out


def default_jobs(profile: str) -> int:
    """How many chapters a build executes at once: three on a CPU profile where the machine has two
    cores or more, one where a GPU may be used (several chapters' models would share its memory,
    which :mod:`rmbias.memory` sizes for one). Three, not two, because the book has three long
    chapters that read nothing of each other (02, 05 and 07, a quarter of an hour each on two cores):
    two at a time left the third to run alone after them, on one core. Each kernel gets an equal
    share of the cores (at least one thread), and much of a chapter is one-threaded Python, so three
    on two cores finish sooner than two."""
    return 3 if resolve(profile).device == "cpu" and (os.cpu_count() or 1) >= 2 else 1


def kernel_env(jobs: int, chapters: int | None = None) -> dict[str, str]:
    """What the kernels of ``jobs`` chapters running at once add to their environment: an equal
    share of the cores each (``OMP_NUM_THREADS``, torch's thread count), unless the caller set it.
    Where only ``chapters`` are to run, and fewer than ``jobs``, they share the cores among
    themselves (one chapter alone gets them all)."""
    at_once = min(jobs, chapters) if chapters else jobs
    if at_once > 1 and "OMP_NUM_THREADS" not in os.environ:
        return {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // at_once))}
    return {}


class CoreShares:
    """The cores shared among the chapters running at once, as they start and finish.

    Each running chapter has a file in ``folder`` holding its share (``cores`` divided by the
    chapters running, at least one thread), rewritten whenever a chapter starts or finishes; its
    kernel reads the file at every progress update (:func:`rmbias.progress.follow_core_share`,
    named in its environment by :data:`rmbias.progress.THREADS_ENV`). A chapter left running alone
    at the end of a build then takes the cores the others freed, rather than keep the share it
    started with."""

    def __init__(self, folder: Path, cores: int) -> None:
        self.folder, self.cores = Path(folder), max(1, cores)
        self.running: set[str] = set()
        self._lock = threading.Lock()

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.threads"

    def share(self) -> int:
        """Threads for each running chapter now."""
        return max(1, self.cores // max(1, len(self.running)))

    def _write(self) -> None:
        for name in self.running:
            scratch = self.path(name).with_suffix(".tmp")
            scratch.write_text(str(self.share()))
            os.replace(scratch, self.path(name))  # whole, never half-written

    def start(self, name: str) -> dict[str, str]:
        """Count ``name`` as running; what its kernel's environment needs: its file (the kernel
        starts with the build's equal share, :func:`kernel_env`, and follows the file from its
        first progress update)."""
        from .progress import THREADS_ENV

        with self._lock:
            self.running.add(name)
            self._write()
            return {THREADS_ENV: str(self.path(name))}

    def finish(self, name: str) -> None:
        """``name`` has finished: the others share its cores."""
        with self._lock:
            self.running.discard(name)
            self.path(name).unlink(missing_ok=True)
            self._write()


def chapter_order(sources: list[Path], chapters: list[str]) -> dict[str, set[str]]:
    """For each chapter of ``sources``, the chapters among them that it must wait for: those before
    it in the book whose results it reads (:func:`earlier_chapters`)."""
    stems = [s.stem for s in sources]
    return {
        s.stem: {c for c in earlier_chapters(s, chapters) if c in stems and stems.index(c) < stems.index(s.stem)}
        for s in sources
    }


def schedule(names: list[str], waits_for: dict[str, set[str]], work, jobs: int) -> None:
    """Call ``work(name)`` for every name, at most ``jobs`` at once, each only after the names it
    waits for have finished; the ready ones start in the order given. After a failure nothing new
    starts; the running ones finish and the first error is raised."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    pending, running, done = list(names), {}, set()
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while True:
            while error is None and len(running) < max(1, jobs):
                ready = next((n for n in pending if waits_for.get(n, set()) <= done), None)
                if ready is None:
                    break
                pending.remove(ready)
                running[pool.submit(work, ready)] = ready
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                if future.exception() is None:
                    done.add(name)
                elif error is None:
                    error = future.exception()
    if error is not None:
        raise error
    if pending:  # only when a name waits for one that is not among the names nor done
        raise ValueError(f"chapters {pending} wait for chapters that never ran")


def run(
    profile: str,
    only: list[str] | None = None,
    book_dir: Path = ROOT / "book",
    results_dir: Path = ROOT / "results",
    cwd: Path = ROOT,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    jobs: int = 1,
) -> dict[str, float]:
    """Execute every chapter (or those whose names start with an entry of ``only``) in a profile,
    except those whose executed notebook was built from the same inputs (:func:`build_key`; all of
    them with ``force``). Up to ``jobs`` chapters run at once, each after the earlier chapters whose
    results it reads (:func:`chapter_order`); with more than one, each kernel gets an equal share
    of the CPU cores (``OMP_NUM_THREADS``, unless it is set). Returns the wall time of each chapter
    executed."""
    resolve(profile)  # a clear error for an unknown profile before anything runs
    if jobs < 1:
        raise ValueError(f"jobs={jobs}: execute at least one chapter at a time")
    sources = notebook_sources(cwd)
    if only:
        sources = [s for s in sources if any(s.stem.startswith(o) for o in only)]
        if not sources:
            raise ValueError(f"no chapter matches {only}; chapters: {[s.stem for s in notebook_sources(cwd)]}")
    overrides = dict(overrides or {})
    declared = {source.stem: set(declared_parameters(source)) for source in sources}
    orphans = sorted(set(overrides) - set().union(*declared.values()))
    if orphans:
        raise ValueError(
            f"no chapter run here declares {orphans}; parameters: {', '.join(sorted(set().union(*declared.values())))}"
        )
    check_overrides(profile, overrides)
    os.environ[RESULTS_ENV] = str(Path(results_dir).resolve())
    env = kernel_env(jobs, len(sources))
    # chapters side by side that share the cores equally (not where the caller set the threads) also
    # share them anew as they start and finish
    shares = CoreShares(Path(tempfile.mkdtemp(prefix="rmbias-threads-")), os.cpu_count() or 1) if env else None
    timings: dict[str, float] = {}
    chapters = [s.stem for s in notebook_sources(cwd)]
    by_name = {s.stem: s for s in sources}

    def execute_if_changed(name: str) -> None:
        source = by_name[name]
        params = {"PROFILE": profile, **{k: v for k, v in overrides.items() if k in declared[name]}}
        output = Path(book_dir) / f"{name}.ipynb"
        key = build_key(source, profile, params, Path(results_dir), chapters)  # after the chapters it reads
        if not force and stored_key(output) == key["key"]:
            print(
                f"{source.name}: unchanged since it was executed (build key {key['key']}); not executed "
                "again (--force to execute it)",
                flush=True,
            )
            return
        print(f"executing {source.name} (profile {profile}) ...", flush=True)
        try:
            own = {**env, **shares.start(name)} if shares else env
            timings[name] = execute(source, output, params, cwd=cwd, key=key, env=own)
        finally:
            if shares:
                shares.finish(name)
        print(f"  {name} done in {timings[name]:.1f} s", flush=True)

    try:
        schedule(list(by_name), chapter_order(sources, chapters), execute_if_changed, jobs)
    finally:  # the chapters that finished are recorded, also when another failed
        if shares:
            shutil.rmtree(shares.folder, ignore_errors=True)
        record_path = Path(results_dir) / profile / "execution.json"
        record_path.parent.mkdir(parents=True, exist_ok=True)
        record = _merged_record(record_path, profile, timings, jobs)
        write_json(record_path, record)
    generated = Path(book_dir) / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "build_info.md").write_text(_build_info(profile, record["chapters"]))
    (generated / "model_sizes.md").write_text(_model_sizes())
    return timings


# --- where the chapters point on GitHub and Colab ------------------------------------------------

# A chapter's Colab badge, ``](https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/...)``.
_BADGE = re.compile(r"(?<=\]\()https://colab\.research\.google\.com/github/[^\s)]+(?=\))")

# Every chapter's first code cell: on Colab, clone the book and set the runtime up (rmbias.colab). A
# notebook opened in Colab has nothing of the book yet, so each chapter carries the cell itself;
# :func:`colab_links` writes it from this one text, with the repository and branch of _config.yml.
COLAB_CELL = """# %% tags=["remove-cell"]
# On Colab: fetch the book's code, install only what the runtime lacks, and restart the runtime once if
# one of Colab's own packages had to change (then run this cell again). A no-op everywhere else.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    BOOK = os.environ.get("RMBIAS_COLAB_DIR", "/content/rmbias-book")  # a folder on Google Drive keeps results
    if not os.path.exists(BOOK):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "BRANCH", "URL",
                        BOOK], check=True)
    if os.path.join(BOOK, "lib") not in sys.path:
        sys.path.insert(0, os.path.join(BOOK, "lib"))
    os.chdir(BOOK)
    from rmbias import colab

    colab.setup()

"""
_COLAB_CELL = re.compile(r'^# %% tags=\["remove-cell"\]\n# On Colab:.*?(?=^# %%)', re.M | re.S)


def colab_cell(url: str, branch: str) -> str:
    """:data:`COLAB_CELL` for the repository ``url`` and its ``branch``."""
    return COLAB_CELL.replace('"BRANCH"', f'"{branch}"').replace('"URL"', f'"{url}"')


def repository(root: Path = ROOT) -> tuple[str, str]:
    """The book's GitHub repository and branch, ``repository: url`` and ``branch`` in ``_config.yml``
    (the one place they are written; :func:`colab_links` carries them into the chapters). The URL
    is returned without a trailing slash or ``.git``."""
    import yaml

    config = Path(root) / "_config.yml"
    entry = (yaml.safe_load(config.read_text()) or {}).get("repository") or {}
    url, branch = str(entry.get("url") or ""), str(entry.get("branch") or "")
    url = url.rstrip("/").removesuffix(".git")
    if not re.fullmatch(r"https://github\.com/[^/\s]+/[^/\s]+", url) or not branch:
        raise ValueError(
            f"{config}: repository: url must be https://github.com/OWNER/REPO and branch must be set "
            f"(found url {url!r}, branch {branch!r})"
        )
    return url, branch


def colab_links(root: Path = ROOT, write: bool = True) -> list[Path]:
    """Make every chapter's Colab badges and its first cell (:data:`COLAB_CELL`, which clones the book
    on Colab) those of :func:`repository`: the badges open ``notebooks/NN_name.ipynb`` (and the student
    copy) of that repository and branch.
    ``CITATION.cff``'s ``repository-code`` follows too. Returns the files that were changed (with
    ``write=False``: that would be changed, leaving them as they are). The chapters' paired notebooks
    follow with ``jupytext --sync``.

    Raises ``ValueError`` naming the chapter if it has no badge or no Colab cell.
    """
    url, branch = repository(root)
    owner_repo = url.removeprefix("https://github.com/")
    changed: list[Path] = []
    for source in notebook_sources(Path(root)):
        text = source.read_text()
        missing = [
            what for what, pattern in (("Colab badge", _BADGE), ("Colab cell", _COLAB_CELL)) if not pattern.search(text)
        ]
        if missing:
            raise ValueError(
                f"{source}: no {' and no '.join(missing)} found; the first markdown cell needs "
                "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                "(https://colab.research.google.com/github/OWNER/REPO/blob/BRANCH/notebooks/"
                "NN_name.ipynb), and the first code cell starts '# %% tags=[\"remove-cell\"]' "
                "then '# On Colab:' (rmbias.book.COLAB_CELL)"
            )
        prefix = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/notebooks/"

        def badge(match: re.Match) -> str:  # the chapter itself, or its student copy (notebooks/student/)
            folder = f"{STUDENT_FOLDER}/" if f"/notebooks/{STUDENT_FOLDER}/" in match.group(0) else ""
            return f"{prefix}{folder}{source.stem}.ipynb"

        new = _BADGE.sub(badge, text)
        new = _COLAB_CELL.sub(lambda match: colab_cell(url, branch), new)
        if new != text:
            changed.append(source)
            if write:
                source.write_text(new)
    citation = Path(root) / "CITATION.cff"  # GitHub's "Cite this repository" names the repository too
    if citation.is_file():
        text = citation.read_text()
        new = re.sub(r"^repository-code: .*$", f'repository-code: "{url}"', text, flags=re.M)
        if new != text:
            changed.append(citation)
            if write:
                citation.write_text(new)
    return changed


# --- student copies: the chapters without their solutions -----------------------------------------

SOLUTION_TAG = "solution"  # a code cell with this tag is an exercise's solution
STUDENT_FOLDER = "student"  # notebooks/student/NN_name.ipynb, opened in Colab from the chapter's second badge


def student_notebook(source: Path):
    """Chapter ``source`` (its jupytext ``.py``) as a notebook to hand out: each cell tagged
    ``solution`` keeps only a line saying which exercise it is for (in Colab a folded cell is not
    hidden, so the code has to go), and loses its tags so that the empty cell shows.

    Raises ``ValueError`` if a code cell without the tag follows a solution: it could use what the
    solution computed, and the student copy would fail there.
    """
    import jupytext

    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # a plain notebook, not paired with the chapter's .py
    notebook.metadata.setdefault("kernelspec", dict(PYTHON_KERNEL))
    solutions = 0
    for index, cell in enumerate(notebook.cells):
        cell["id"] = f"{source.stem[:2]}-{index:03d}"  # fixed ids, so that an unchanged chapter gives the same file
        if SOLUTION_TAG in cell.metadata.get("tags", []):
            solutions += 1
            number = re.search(r"Solution to exercise (\d+)", cell.source)
            cell.source = f"# Your solution to exercise {number.group(1) if number else solutions}"
            cell.metadata.pop("tags")
        elif solutions and cell.cell_type == "code":
            raise ValueError(
                f"{source.name}: code cell {index} follows a solution but is not tagged "
                f"{SOLUTION_TAG!r}; keep the exercises and their solutions at the end of the chapter"
            )
    if not solutions:
        raise ValueError(f"{source.name}: no cell is tagged {SOLUTION_TAG!r}; tag each exercise's solution")
    return notebook


def student_copies(root: Path = ROOT, write: bool = True) -> list[Path]:
    """Write ``notebooks/student/NN_name.ipynb`` for every chapter from :func:`student_notebook`;
    return the copies that were (with ``write=False``: would be) new or different."""
    import nbformat

    changed = []
    for source in notebook_sources(Path(root)):
        target = Path(root) / "notebooks" / STUDENT_FOLDER / f"{source.stem}.ipynb"
        text = nbformat.writes(student_notebook(source)) + "\n"
        if not target.is_file() or target.read_text() != text:
            changed.append(target)
            if write:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmbias.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("run", help="execute chapters into book/")
    cmd.add_argument("--profile", default="demo", help=f"one of {', '.join(PROFILES)}")
    cmd.add_argument("--only", nargs="*", help="chapter name prefixes, e.g. 01 02_rm")
    cmd.add_argument(
        "--set", nargs="*", default=[], metavar="NAME=JSON", help="override a notebook parameter, e.g. MAX_WORDS=20"
    )
    cmd.add_argument("--force", action="store_true", help="execute every chapter, changed or not")
    cmd.add_argument(
        "--jobs", type=int, help="chapters executed at once (default: 2 for a CPU profile on two or more cores, else 1)"
    )
    cmd.add_argument("--book-dir", type=Path, default=ROOT / "book")
    cmd.add_argument("--results-dir", type=Path, default=ROOT / "results")
    sub.add_parser("links", help="point every chapter's Colab badge and clone URL at _config.yml's repository")
    sub.add_parser("student", help="write the chapters without their solutions to notebooks/student/")
    args = parser.parse_args(argv)
    try:
        if args.command == "links":
            changed = colab_links(ROOT, write=True)
            url, branch = repository(ROOT)
            for source in changed:
                print(f"{source.relative_to(ROOT)}: now points at {url} ({branch})")
            if not changed:
                print(f"every chapter already points at {url} ({branch})")
        elif args.command == "student":
            changed = student_copies(ROOT, write=True)
            for copy in changed:
                print(f"wrote {copy.relative_to(ROOT)}")
            if not changed:
                print(f"every student copy in notebooks/{STUDENT_FOLDER}/ is up to date")
        else:
            run(
                args.profile,
                args.only,
                args.book_dir,
                args.results_dir,
                overrides=parse_set(args.set),
                force=args.force,
                jobs=args.jobs or default_jobs(args.profile),
            )
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
