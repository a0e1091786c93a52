"""rmbias.glue: myst-nb's glue where it is installed, a plain display where it is not (Colab)."""

import sys

import IPython.display
import pytest

from rmbias.glue import glue


@pytest.fixture
def shown(monkeypatch) -> list[tuple[tuple, dict]]:
    """The calls made to IPython.display.display, as (args, kwargs), instead of displaying."""
    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(IPython.display, "display", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def test_with_myst_nb_the_call_is_myst_nbs_glue(monkeypatch):
    myst_nb = pytest.importorskip("myst_nb")
    calls = []
    monkeypatch.setattr(myst_nb, "glue", lambda *args, **kwargs: calls.append((args, kwargs)))
    glue("n_words", 42)
    glue("table", [1, 2], display=False)
    assert calls == [(("n_words", 42), {"display": True}), (("table", [1, 2]), {"display": False})]


@pytest.mark.parametrize("display", [True, False])
def test_with_myst_nb_the_output_carries_the_scrapbook_name(monkeypatch, display):
    """What the book build reads: the glued output's metadata names the value (hidden when not
    displayed: its mime types are prefixed)."""
    glued = pytest.importorskip("myst_nb.ext.glue")
    calls = []
    monkeypatch.setattr(glued, "ipy_display", lambda *args, **kwargs: calls.append((args, kwargs)))
    glue("n_words", 42, display=display)
    ((args, kwargs),) = calls
    assert kwargs["metadata"]["scrapbook"] == {"name": "n_words", "mime_prefix": "" if display else glued.GLUE_PREFIX}
    assert args[0][("" if display else glued.GLUE_PREFIX) + "text/plain"] == "42"


def test_without_myst_nb_the_value_is_shown(monkeypatch, shown):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    glue("n_words", 42)
    assert shown == [((42,), {})]


def test_without_myst_nb_and_display_false_nothing_is_shown(monkeypatch, shown):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    glue("n_words", 42, display=False)
    assert shown == []
