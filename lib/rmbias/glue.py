"""Glue a chapter's numbers into the book's text, with or without myst-nb.

The book build reads values glued by :func:`myst_nb.glue` from the executed notebooks. On Google
Colab the book is not built, and installing myst-nb there would downgrade Colab's own Sphinx and
markdown-it-py (myst-parser pins ``sphinx<8``). :func:`glue` therefore calls myst-nb where it is
installed, exactly as the chapters did before, and elsewhere only shows the value.
"""

from __future__ import annotations

from typing import Any


def glue(name: str, value: Any, display: bool = True) -> None:
    """Store ``value`` under ``name`` for the book's ``{glue}`` roles and directives.

    With myst-nb installed this is :func:`myst_nb.glue` (the value goes into the cell's output,
    shown if ``display``). Without it, the value is shown with :func:`IPython.display.display` if
    ``display`` is true, and nothing happens otherwise.
    """
    try:
        import myst_nb
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return
    myst_nb.glue(name, value, display=display)
