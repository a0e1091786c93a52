"""Rehearse a chapter's first run on Colab, here: `make colab-check`.

1. A virtual environment holding Colab's own versions of the packages that matter (the book's
   dependencies that Colab preloads, its kernel and notebook stack, its pip), read from Google's record
   of the Colab GPU runtime (rmbias.data, ``pip-freeze.gpu.txt``). Two things cannot match here and are
   stood in for: this machine's Python (Colab: 3.13) and the CPU build of the Makefile's torch (Colab: a
   CUDA build of torch 2.11).
2. The working tree copied where Colab would have cloned it (``RMBIAS_COLAB_DIR``).
3. Chapter 01's first cell run as Colab runs it: in Colab's ipykernel, with numpy and pandas already
   imported and ``google.colab`` present. It must install what is missing, restart the kernel once by
   itself, and go straight through in the restarted kernel.
4. Chapters (01 and 02 by default) executed in the tiny profile in that environment, through that cell.

Prints what was kept, installed and replaced, and the time of each step. Needs the package registry
(pip) but not the hub: the data come from ``RMBIAS_DATA_MIRROR`` or the pinned downloads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Colab's versions of these are installed before the book's first cell runs (the book's own dependencies
# are added to this list from pyproject.toml). Not setuptools: the stand-in torch 2.13 needs a newer one
# than Colab's 75.2.
COLAB_STACK = (
    "pip",
    "ipykernel",
    "ipython",
    "jupyter-client",
    "jupyter-core",
    "notebook",
    "tornado",
    "traitlets",
    "pyzmq",
    "nbclient",
    "nbformat",
    "huggingface-hub",
    "tokenizers",
    "safetensors",
    "scikit-learn",
    "sphinx",
    "docutils",
    "markdown-it-py",
    "jinja2",
    "requests",
)

# Run in the kernel before the first cell: what a Colab kernel has when a reader opens a chapter.
# google.colab is an empty stand-in package (in a namespace ``google``, as on Colab) on PYTHONPATH.
PREAMBLE = """\
import google.colab
import numpy, pandas  # Colab's kernel has them imported already
"""


def log(message: str) -> None:
    print(message, flush=True)


def run(command: list[str], **kwargs) -> None:
    log("$ " + " ".join(command))
    subprocess.run(command, check=True, **kwargs)


def first_code_cell(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


# --- outside: build the environment (runs in the book's own environment) ---------------------------


def colab_environment(venv: Path) -> dict[str, str]:
    """Create ``venv`` with Colab's recorded versions; return the versions installed from the record."""
    sys.path.insert(0, str(ROOT / "lib"))
    from rmbias import colab, data

    record = colab.read_freeze(data.fetch("pip-freeze.gpu.txt"))
    wanted = [*COLAB_STACK, *(n for n in colab.floors(ROOT) if n != "torch")]
    chosen = {n: record[n] for n in wanted if n in record}
    torch = re.search(r"TORCH_SPEC \?= (\S+)", (ROOT / "Makefile").read_text()).group(1)
    run([sys.executable, "-m", "venv", str(venv)])  # this machine's Python (Colab's is 3.13)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run([*pip, f"pip=={chosen.pop('pip')}"])
    run([*pip, torch, *(f"{n}=={v}" for n, v in sorted(chosen.items()))])
    return chosen


def copy_tree(target: Path) -> None:
    """The working tree as git sees it (tracked and untracked, not ignored): what a clone would hold."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def outside(args: argparse.Namespace) -> int:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rmbias-colab-check-")).resolve()
    if work.exists() and any(work.iterdir()):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    venv, book, cache = work / "venv", work / "content" / "rmbias-book", work / "cache"
    clock = time.perf_counter()
    chosen = colab_environment(venv)
    built = time.perf_counter() - clock
    copy_tree(book)
    stubs = work / "stubs"
    (stubs / "google" / "colab").mkdir(parents=True)
    (stubs / "google" / "colab" / "__init__.py").write_text('"""Stand-in for Colab\'s own package."""\n')
    env = {
        **os.environ,
        "PYTHONPATH": str(stubs),
        "RMBIAS_COLAB_DIR": str(book),
        "RMBIAS_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "PYTHONNOUSERSITE": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    result = subprocess.run(
        [str(venv / "bin" / "python"), __file__, "--inside", "--book", str(book), "--chapters", *args.chapters],
        env=env,
        cwd=work,
    )
    log(
        f"\nColab's recorded versions installed first ({len(chosen)} packages, {built:.0f} s): "
        + ", ".join(f"{n} {v}" for n, v in sorted(chosen.items()))
    )
    log(f"Python here: {sys.version.split()[0]} (Colab: 3.13); torch: the Makefile's CPU build (Colab: CUDA 2.11)")
    log(f"work folder: {work}")
    return result.returncode


# --- inside: Colab's kernel (runs in the Colab-like environment) -----------------------------------


def run_in_fresh_kernel(code: str, cwd: Path, timeout: float) -> tuple[str, str, bool]:
    """Execute ``code`` in a new ipykernel; return its output, the reply status, and whether the kernel
    is still alive 30 s after the cell finished."""
    from jupyter_client.manager import KernelManager

    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(cwd))
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=120)
    pieces: list[str] = []

    def collect(message: dict) -> None:
        content = message["content"]
        if message["msg_type"] == "stream":
            pieces.append(content["text"])
        elif message["msg_type"] == "error":
            pieces.append("\n".join(content["traceback"]) + "\n")

    reply = client.execute_interactive(code, output_hook=collect, timeout=timeout)
    deadline = time.time() + 30
    while manager.is_alive() and time.time() < deadline and reply["content"]["status"] != "ok":
        time.sleep(0.5)
    alive = manager.is_alive()
    client.stop_channels()
    if alive:
        manager.shutdown_kernel(now=True)
    return "".join(pieces), reply["content"]["status"], alive


def tiny_chapter(source: Path, cwd: Path, timeout: float) -> float:
    """Execute one chapter's .ipynb in the tiny profile, through its Colab cell, in a fresh kernel."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    notebook.cells.insert(0, nbformat.v4.new_code_cell(PREAMBLE))
    parameters = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    parameters.source = re.sub(r'^PROFILE = "\w+"', 'PROFILE = "tiny"', parameters.source, flags=re.M)
    assert 'PROFILE = "tiny"' in parameters.source, source
    clock = time.perf_counter()
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    out = cwd / "results" / "colab-check"
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, out / source.name)
    return time.perf_counter() - clock


def inside(args: argparse.Namespace) -> int:
    book = Path(args.book)
    cell = PREAMBLE + first_code_cell(book / "notebooks" / "01_corpora.ipynb")
    failures = []
    clock = time.perf_counter()
    output, status, alive = run_in_fresh_kernel(cell, book.parent, timeout=1800)
    log(
        f"--- first run of the first cell ({time.perf_counter() - clock:.0f} s): status {status}, "
        f"kernel {'still running' if alive else 'restarted'}\n{output}"
    )
    if status == "ok" or alive or "run this cell again" not in output:
        failures.append("the first run did not install and restart the kernel once")
    clock = time.perf_counter()
    versions = (
        "\nimport importlib.metadata as m\n"
        "print({n: m.version(n) for n in ('numpy', 'pandas', 'transformers', 'torch', 'trl', 'pingouin', "
        "'ipykernel', 'jupyter_client', 'tornado')})\nimport rmbias, rmbias.training, pingouin, trl\n"
    )
    output, status, alive = run_in_fresh_kernel(cell + versions, book.parent, timeout=600)
    log(f"--- second run, restarted kernel ({time.perf_counter() - clock:.0f} s): status {status}\n{output}")
    if status != "ok" or "everything the book needs is installed" not in output:
        failures.append("the second run did not go straight through")
    for stem in args.chapters:
        source = next((book / "notebooks").glob(f"{stem}*.ipynb"))
        try:
            seconds = tiny_chapter(source, book.parent, timeout=1800)
        except Exception as err:  # report every chapter, then fail
            failures.append(f"{source.name}: {type(err).__name__}: {str(err)[-2000:]}")
            log(f"--- {source.name}, tiny profile: FAILED")
        else:
            log(f"--- {source.name}, tiny profile: executed in {seconds:.0f} s")
    for failure in failures:
        log(f"FAILED: {failure}")
    log("colab-check: " + ("FAILED" if failures else "passed"))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", default=["01", "02"], help="chapter numbers to execute")
    parser.add_argument("--workdir", help="where to build (default: a new temporary folder); emptied first")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--book", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return inside(args) if args.inside else outside(args)


if __name__ == "__main__":
    sys.exit(main())
