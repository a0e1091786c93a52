"""Progress a person can see while a chapter runs, and that never lands in the rendered book.

In Jupyter, Colab or a terminal, :func:`bar` is a plain tqdm bar. During a book build
(``python -m rmbias.book run``), the chapter runs in a papermill kernel whose output becomes the
page, so the build sets ``RMBIAS_PROGRESS`` to a file: bars and :func:`note` lines are written
there instead of into the notebook, and the build prints them on its terminal as they come
(``book.execute``), prefixed by the chapter's name. Chapters executed side by side each have
their own file, named in their own kernel's environment.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, TextIO

PROGRESS_ENV = "RMBIAS_PROGRESS"
# During a book build that runs chapters side by side, a file holding this kernel's share of the
# cores (torch threads), rewritten by the build as chapters start and finish (rmbias.book.CoreShares)
THREADS_ENV = "RMBIAS_THREADS"
# The libraries' own bars (transformers' "Loading weights" and first conversion of a GGUF file,
# datasets' "Map") would land in the page: off during a build. TQDM_DISABLE is every tqdm bar's
# default; this module's own bars say disable=False.
QUIET_LIBRARIES = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}
BUILD_INTERVAL = 10.0  # seconds between a bar's updates in a build log (a terminal or CI log, not a widget)


def _build_stream() -> TextIO | None:
    """The build's progress file, or None outside a build; opened once per kernel (every bar and
    note of a chapter writes to the same handle, which lives as long as the kernel)."""
    path = os.environ.get(PROGRESS_ENV)
    return _open(path) if path else None


@lru_cache(maxsize=None)
def _open(path: str) -> TextIO:
    return open(path, "a", buffering=1, encoding="utf-8")


def follow_core_share() -> None:
    """Take this kernel's current share of the cores, where a book build says it (:data:`THREADS_ENV`):
    chapters run side by side start with an equal share each, and one left running alone takes the
    cores the others freed. Called by every progress update (:func:`bar`, :func:`note`), which the
    long loops make from the kernel's main thread, the thread whose torch thread count this sets;
    does nothing outside a build or before torch is imported."""
    path, torch = os.environ.get(THREADS_ENV), sys.modules.get("torch")
    if not path or torch is None:
        return
    try:
        share = int(Path(path).read_text().strip() or 0)
    except (OSError, ValueError):  # not written yet, or being replaced
        return
    if share >= 1 and share != torch.get_num_threads():
        torch.set_num_threads(share)


def _bar_class():
    """tqdm, with :func:`follow_core_share` at every update."""
    from tqdm import tqdm

    class Bar(tqdm):
        def update(self, n: float | None = 1):
            follow_core_share()
            return super().update(n)

    return Bar


def bar(total: int | None, desc: str, unit: str = "it", initial: int = 0, **options: Any):
    """A tqdm bar of ``total`` ``unit``s labelled ``desc``: in the notebook, or in the build's log."""
    tqdm = _bar_class()
    follow_core_share()
    stream = _build_stream()
    if stream is None:
        return tqdm(total=total, desc=desc, unit=unit, initial=initial, mininterval=2.0, **options)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        initial=initial,
        file=stream,
        mininterval=BUILD_INTERVAL,
        ascii=True,
        ncols=100,
        disable=False,
        **options,
    )


def note(message: str) -> None:
    """One line of progress (``run 3/18: ...``): in the notebook, or in the build's log."""
    follow_core_share()
    stream = _build_stream()
    if stream is None:
        print(message, flush=True)
    else:
        stream.write(message + "\n")


def trainer_callback(label: str):
    """A transformers ``TrainerCallback`` showing optimiser steps as a :func:`bar` (``training
    <label>``, steps done of all, seconds a step, time left), also when a run resumes."""
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        def __init__(self) -> None:
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            self.bar = bar(state.max_steps, f"training {label}", unit="step", initial=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return _Progress()


class Relay(threading.Thread):
    """Follows a progress file and prints each update on ``out`` as a line of its own, prefixed:
    tqdm separates its updates with carriage returns, which a log would show as one endless line.
    Each update is written and flushed whole (tqdm flushes after each), so it is printed as soon
    as it is seen."""

    def __init__(self, path: Path, prefix: str, out: TextIO | None = None, poll: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.path, self.prefix, self.out, self.poll = Path(path), prefix, out or sys.stdout, poll
        self.finished = threading.Event()
        self._offset = 0

    @property
    def env(self) -> dict[str, str]:
        """What the relayed kernel's environment needs: ``RMBIAS_PROGRESS`` naming the followed file,
        and the libraries' own progress bars off (``QUIET_LIBRARIES``)."""
        return {PROGRESS_ENV: str(self.path), **QUIET_LIBRARIES}

    def _drain(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8", errors="replace") as stream:
            stream.seek(self._offset)
            text = stream.read()
            self._offset = stream.tell()
        for piece in re.split(r"[\r\n]", text):
            if piece.strip():
                self.out.write(f"{self.prefix}{piece.rstrip()}\n")
        self.out.flush()

    def run(self) -> None:
        while not self.finished.wait(self.poll):
            self._drain()

    def stop(self) -> None:
        """Print what is left and end the thread."""
        self.finished.set()
        self.join()
        self._drain()


@contextmanager
def relayed(prefix: str, folder: Path) -> Iterator[Relay]:
    """For a book build: relay a progress file in ``folder`` to stdout while the block runs. The
    kernel the block starts must be given ``relay.env``: ``RMBIAS_PROGRESS`` naming that file, and
    the libraries' own progress bars switched off (``QUIET_LIBRARIES``). This process's environment
    is left as it is, so chapters executed side by side each relay their own file."""
    path = Path(folder) / "progress.log"
    path.touch()
    relay = Relay(path, prefix)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
