"""Execute the chapters with papermill and place them in the book.

``python -m rmbias.book run --profile demo`` turns each ``notebooks/NN_name.py`` (jupytext
py:percent) into a notebook, executes it with ``PROFILE`` set, and writes ``book/NN_name.ipynb``
for Jupyter Book to render (Jupyter Book itself never executes anything). A chapter is written
only when it ran to the end: a failure leaves ``book/NN_name.failed.ipynb`` to inspect, never a
half-run chapter that looks complete. Timings and versions go to ``book/generated/build_info.md``
(shown in the introduction) and ``results/<profile>/execution.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .artifacts import RESULTS_ENV, library_versions, write_json
from .profiles import PROFILES, Profile, resolve

ROOT = Path(__file__).resolve().parents[2]


def notebook_sources(root: Path = ROOT) -> list[Path]:
    """The chapter sources, in book order (``notebooks/01_*.py``, ``02_*.py``, ...)."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))


def _as_notebook(source: Path, folder: Path) -> Path:
    """A chapter's jupytext source written as a plain notebook (with a Python kernel) in ``folder``."""
    import jupytext

    plain = folder / f"{source.stem}.ipynb"
    notebook = jupytext.read(source)
    notebook.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
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


def execute(source: Path, output: Path, parameters: dict[str, Any], cwd: Path = ROOT) -> float:
    """Execute one chapter into ``output``; return the wall time in seconds.

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
            papermill.execute_notebook(str(plain), str(ran), parameters=parameters, kernel_name="python3",
                                       cwd=str(cwd), progress_bar=False)
        except papermill.PapermillExecutionError as err:
            failed = output.with_suffix(".failed.ipynb")
            os.replace(ran, failed)
            raise RuntimeError(f"{source.name} failed in cell {err.exec_count}: {err.ename}: {err.evalue}. "
                               f"The executed copy is in {failed}") from err
        elapsed = time.perf_counter() - start
        os.replace(ran, output)
    stale = output.with_suffix(".failed.ipynb")
    if stale.exists():
        stale.unlink()
    return elapsed


def _build_info(profile: str, chapters: dict[str, dict[str, Any]]) -> str:
    """The execution record as a Markdown table: profile, each chapter's run time and date, versions."""
    chosen = PROFILES[profile]
    versions = library_versions()
    lines = [
        "| | |", "| --- | --- |",
        f"| Profile | `{profile}`: {chosen.description} |",
        *[f"| `{name}` | {entry['seconds']:.0f} s, executed {entry['executed']} |" for name, entry in sorted(chapters.items())],
        f"| Total | {sum(e['seconds'] for e in chapters.values()) / 60:.1f} min |",
        "| Versions | " + ", ".join(f"{k} {versions[k]}" for k in ("python", "torch", "transformers", "trl", "peft",
                                                                     "pandas", "statsmodels", "pingouin",
                                                                     "jupyter-book")) + " |",
    ]
    return "\n".join(lines) + "\n"


def _model_sizes() -> str:
    """The paper profile's models as a Markdown table: the chapters that load each, its parameters
    (from the published config, :mod:`rmbias.architectures`) and the GiB its weights take in the
    dtype it is loaded in and quantised to 8 and 4 bits (activations, caches and optimiser state
    come on top)."""
    from . import architectures, models
    from .ablation import Ablation

    paper = PROFILES["paper"]
    uses: dict[str, list[str]] = {}
    for key in paper.reward_models:
        uses.setdefault(key, []).append("02")
    for key in paper.language_models:
        uses.setdefault(key, []).append("03, 04" if models.spec(key).instruct else "03")
    uses.setdefault(paper.validation_model, []).append("04 (fine-tuned)")
    for key in Ablation.paper().bases:
        uses.setdefault(key, []).append("05 (trained)")
    short = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
    lines = ["| model | chapters | parameters | weights | 8-bit | 4-bit | hub commit |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for key, chapters in uses.items():
        spec = models.spec(key)
        dtype = models.dtype_for(key, paper.dtype)
        model = architectures.meta_model(key, reward=spec.reward is not None)
        params = sum(p.numel() for p in model.parameters())
        size = {q: architectures.weight_bytes(model, dtype, q) / 2**30 for q in (None, "8bit", "4bit")}
        lines.append(f"| `{spec.hf_id}` | {', '.join(dict.fromkeys(chapters))} | {params / 1e9:.2f} B "
                     f"| {size[None]:.1f} GiB {short.get(dtype, dtype)} | {size['8bit']:.1f} GiB | {size['4bit']:.1f} GiB "
                     f"| {f'`{spec.revision[:7]}`' if spec.revision else 'unpinned'} |")
    return "\n".join(lines) + "\n"


def _merged_record(path: Path, profile: str, timings: dict[str, float]) -> dict[str, Any]:
    """The profile's execution record with this run's chapters added or replaced, so that running
    one chapter (``--only``) keeps the others' times. A record of another profile is replaced."""
    old = json.loads(path.read_text()) if path.is_file() else {}
    chapters = old.get("chapters", {}) if old.get("profile") == profile else {}
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    chapters.update({name: {"seconds": seconds, "executed": stamp} for name, seconds in timings.items()})
    return {"profile": profile, "chapters": chapters,
            "seconds": {name: entry["seconds"] for name, entry in chapters.items()}, "versions": library_versions()}


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
            raise ValueError(f"--set {item!r}: the value of {name} is not JSON ({err.msg}); strings and lists "
                             """of strings need double quotes, e.g. --set 'PROMPTS=["greatest_ever_one"]'""") from None
    return out


def run(profile: str, only: list[str] | None = None, book_dir: Path = ROOT / "book",
        results_dir: Path = ROOT / "results", cwd: Path = ROOT,
        overrides: dict[str, Any] | None = None) -> dict[str, float]:
    """Execute every chapter (or those whose names start with an entry of ``only``) in a profile."""
    resolve(profile)  # a clear error for an unknown profile before anything runs
    sources = notebook_sources(cwd)
    if only:
        sources = [s for s in sources if any(s.stem.startswith(o) for o in only)]
        if not sources:
            raise ValueError(f"no chapter matches {only}; chapters: {[s.stem for s in notebook_sources(cwd)]}")
    overrides = dict(overrides or {})
    declared = {source.stem: set(declared_parameters(source)) for source in sources}
    orphans = sorted(set(overrides) - set().union(*declared.values()))
    if orphans:
        raise ValueError(f"no chapter run here declares {orphans}; parameters: "
                         f"{', '.join(sorted(set().union(*declared.values())))}")
    check_overrides(profile, overrides)
    os.environ[RESULTS_ENV] = str(Path(results_dir).resolve())
    timings: dict[str, float] = {}
    for source in sources:
        print(f"executing {source.name} (profile {profile}) ...", flush=True)
        params = {"PROFILE": profile, **{k: v for k, v in overrides.items() if k in declared[source.stem]}}
        timings[source.stem] = execute(source, Path(book_dir) / f"{source.stem}.ipynb", params, cwd=cwd)
        print(f"  done in {timings[source.stem]:.1f} s", flush=True)
    record_path = Path(results_dir) / profile / "execution.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record = _merged_record(record_path, profile, timings)
    write_json(record_path, record)
    generated = Path(book_dir) / "generated"
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "build_info.md").write_text(_build_info(profile, record["chapters"]))
    (generated / "model_sizes.md").write_text(_model_sizes())
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rmbias.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("run", help="execute chapters into book/")
    cmd.add_argument("--profile", default="demo", help=f"one of {', '.join(PROFILES)}")
    cmd.add_argument("--only", nargs="*", help="chapter name prefixes, e.g. 01 02_rm")
    cmd.add_argument("--set", nargs="*", default=[], metavar="NAME=JSON",
                     help="override a notebook parameter, e.g. MAX_WORDS=20")
    cmd.add_argument("--book-dir", type=Path, default=ROOT / "book")
    cmd.add_argument("--results-dir", type=Path, default=ROOT / "results")
    args = parser.parse_args(argv)
    try:
        run(args.profile, args.only, args.book_dir, args.results_dir, overrides=parse_set(args.set))
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
