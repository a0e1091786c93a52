"""Interactive figures: hover shows the word and its numbers; the HTML needs no network."""

import re

import pandas as pd

from rmbias import plots


def test_an_interactive_scatter_shows_each_word_and_its_numbers_on_hover():
    frame = pd.DataFrame(
        {
            "token": [" love", " freedom", " family"],
            "score": [1.5, 2.0, -0.5],
            "zipf": [5.9, 4.8, 5.6],
            "rank": [2, 1, 3],
            "rm": ["gemma-rm", "llama-rm", "gemma-rm"],
        }
    )
    figure = plots.interactive_scatter(
        frame,
        x="zipf",
        y="score",
        word="token",
        colour="rm",
        palette={"gemma-rm": plots.FAMILY_COLOURS["gemma"], "llama-rm": plots.FAMILY_COLOURS["llama"]},
        hover=["rank"],
        labels={"zipf": "word frequency (Zipf)"},
    )
    traces = {trace.name: trace for trace in figure.data}
    assert set(traces) == {"gemma-rm", "llama-rm"}
    assert list(traces["gemma-rm"].hovertext) == [" love", " family"]
    assert traces["gemma-rm"].marker.color == plots.FAMILY_COLOURS["gemma"]
    assert "rank" in traces["gemma-rm"].hovertemplate and "%{hovertext}" in traces["gemma-rm"].hovertemplate
    assert traces["llama-rm"].type == "scatter"  # SVG, not WebGL: draws in a browser without a GPU
    assert figure.layout.xaxis.title.text == "word frequency (Zipf)"
    assert figure.layout.paper_bgcolor == "white"


def test_the_html_carries_plotly_js_and_no_network_reference():
    frame = pd.DataFrame({"token": ["a", "b"], "x": [0, 1], "y": [1, 0]})
    html = plots.as_html(plots.interactive_scatter(frame, "x", "y", "token")).data
    assert "plotly-graph-div" in html and len(html) > 1_000_000  # plotly.js itself is inline
    assert not re.search(r"<script[^>]*\bsrc=", html)  # nothing loaded from elsewhere
    assert "requirejs" not in html.lower()


def test_the_browser_check_sees_an_interactive_figure_drawn_and_one_that_is_not(tmp_path):
    from rmbias import browser

    frame = pd.DataFrame({"token": ["a", "b"], "x": [0, 1], "y": [1, 0]})
    html = plots.as_html(plots.interactive_scatter(frame, "x", "y", "token")).data
    root = tmp_path / "html"
    (root / "book").mkdir(parents=True)
    (root / "index.html").write_text("<html><body>index</body></html>")
    (root / "book" / "drawn.html").write_text(f"<html><body>{html}</body></html>")
    broken = re.sub(r"<script\b.*?</script>", "", html, flags=re.S)  # the figure's div without plotly.js
    (root / "book" / "broken.html").write_text(f"<html><body>{broken}</body></html>")
    report = browser.check_book(root, screenshots=False)
    assert report == {"broken.html": ["broken.html: 1 of its 1 interactive figures were not drawn"], "drawn.html": []}
