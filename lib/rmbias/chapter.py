"""What every chapter opens with: its settings, its results folder, and one call per number it reports.

A chapter starts with ``chapter = Chapter.open("02_rm_scoring", PROFILE, ...)``: the profile is
resolved with the chapter's overrides (:func:`rmbias.profiles.resolve`, so a bad setting stops it
before any work), and its results go to ``results/<profile>/<chapter>/``
(:func:`rmbias.artifacts.results_dir`). Then:

- :meth:`Chapter.number` glues a value into the prose (``{glue:text}`name```) and, where it is a
  number, records it in the chapter's ``summary.json``: one call, so the page and the record cannot
  disagree;
- :meth:`Chapter.table` and :meth:`Chapter.figure` write tables (with provenance) and figures;
- :meth:`Chapter.earlier` and :meth:`Chapter.read_table` read what an earlier chapter of the same
  profile wrote, and say which chapter to run when it has not run (they never create its folder);
- :meth:`Chapter.finish` writes ``summary.json`` last.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import artifacts, profiles
from .glue import glue


@dataclass
class Chapter:
    """One chapter's run: ``name`` (``"02_rm_scoring"``), its resolved ``settings``, its results
    folder ``out`` and the ``summary`` of numbers that :meth:`finish` writes."""

    name: str
    settings: profiles.Profile
    out: Path
    summary: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, name: str, profile: str, **overrides: Any) -> Chapter:
        """The chapter ``name`` under ``profile`` with the setting ``overrides`` (None keeps the
        profile's value); its results folder is created."""
        settings = profiles.resolve(profile, **overrides)
        return cls(name, settings, artifacts.results_dir(settings.name, name))

    def number(self, name: str, value: Any, display: bool = True) -> Any:
        """Glue ``value`` under ``name`` for the prose (shown in the cell if ``display``, as
        :func:`rmbias.glue.glue`), and record it in ``summary.json`` if it is a number (text glued for
        a sentence is not recorded). Returns ``value``."""
        glue(name, value, display=display)
        if isinstance(value, (numbers.Number, np.bool_)):  # numpy scalars and bools included
            self.summary[name] = value
        return value

    def table(self, table: pd.DataFrame, name: str, **provenance: Any) -> Path:
        """Write ``name.parquet`` with its provenance (:func:`rmbias.artifacts.write_table`)."""
        return artifacts.write_table(table, self.out, name, **provenance)

    def figure(self, fig, name: str) -> Path:
        """Save ``fig`` as ``name.png`` in the results folder."""
        return artifacts.save_figure(fig, self.out, name)

    def earlier(self, chapter: str, required: bool = True) -> Path:
        """The results folder of an earlier chapter of this profile, to read (it is never created
        here). A chapter that has not run (no ``summary.json``: it writes that last) is an error naming
        the command that runs it, unless not ``required`` (a chapter that reads it only where it is)."""
        folder = self.out.parent / chapter
        if required and not (folder / "summary.json").is_file():
            raise FileNotFoundError(
                f"chapter {self.name} reads the results of chapter {chapter}, which has not run with the "
                f"{self.settings.name!r} profile ({folder} has no summary.json). Run it first: "
                f"python -m rmbias.book run --profile {self.settings.name} --only {chapter[:2]}"
            )
        return folder

    def read_table(self, chapter: str, name: str) -> pd.DataFrame:
        """A table an earlier chapter of this profile wrote (:meth:`earlier`)."""
        return artifacts.read_table(self.earlier(chapter), name)

    def finish(self, **extra: Any) -> Path:
        """Write ``summary.json``: every recorded number, then ``extra`` (run times, say)."""
        return artifacts.write_summary(self.out, {**self.summary, **extra}, profile=self.settings.name)
