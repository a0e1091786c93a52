"""The paper's figures drawn by rmbias.plots, read back from what matplotlib drew."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex as _to_hex

from rmbias import plots


def to_hex(colour) -> str:
    """A colour as the book writes it (#RRGGBB, upper case)."""
    return _to_hex(colour).upper()


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_released_ablation_draws_each_family_and_route_where_its_rows_say():
    rows = []
    for category, shift in (("Agency", 0), ("Communion", 100)):
        for family, base in (("gemma", 10), ("llama", 20)):
            rows += [
                {
                    "category": category,
                    "family": family,
                    "method": "BT",
                    "data_source": "Unified-Feedback",
                    "data_size": size,
                    "median_rank": base + shift + size,
                }
                for size in (53, 27, 106)
            ]
            rows.append(
                {
                    "category": category,
                    "family": family,
                    "method": "BT",
                    "data_source": "Skywork",
                    "data_size": 77,
                    "median_rank": base + shift,
                }
            )
            rows.append(
                {
                    "category": category,
                    "family": family,
                    "method": "GRM",
                    "data_source": "both",
                    "data_size": 550,
                    "median_rank": base + shift + 1,
                }
            )
    fig = plots.released_ablation(pd.DataFrame(rows), families=("gemma", "llama"))
    left, right = fig.axes
    lines = {(to_hex(line.get_color()), line.get_marker()): line for line in right.get_lines()}
    uf = lines[(plots.FAMILY_COLOURS["llama"], "o")]
    assert list(uf.get_xdata()) == [27, 53, 106] and list(uf.get_ydata()) == [147, 173, 226]  # sorted by size
    assert list(lines[(plots.FAMILY_COLOURS["gemma"], "D")].get_xdata()) == [140]  # GRM at the right edge
    assert list(lines[(plots.FAMILY_COLOURS["gemma"], "^")].get_ydata()) == [110]
    assert left.yaxis_inverted() and [t.get_text() for t in left.get_legend().get_texts()] == ["Gemma", "Llama"]


def test_ablation_finals_show_each_seed_and_the_mean_and_spread_per_size():
    finals = pd.DataFrame(
        [
            {"model": model, "category": category, "data_size": size, "seed": seed, "median_rank": rank + seed * 2}
            for model, rank in (("a", 10), ("b", 30))
            for category in ("Agency", "Communion")
            for size in (8, 16)
            for seed in (0, 1)
        ]
    )
    fig = plots.ablation_finals(finals, ["a", "b"], [16, 8], {"a": "gemma", "b": "llama"}, {"a": "A", "b": "B"})
    ax = fig.axes[0]
    seeds = [line for line in ax.get_lines() if line.get_marker() == "o" and line.get_linestyle() == "None"]
    assert len(seeds) == 2 and all(len(line.get_xdata()) == 4 for line in seeds)
    means = [c for c in ax.containers]  # one errorbar per base
    assert [to_hex(c.lines[0].get_color()) for c in means] == [
        plots.FAMILY_COLOURS["gemma"],
        plots.FAMILY_COLOURS["llama"],
    ]
    assert np.allclose(means[0].lines[0].get_ydata(), [11, 11]) and np.allclose(means[1].lines[0].get_ydata(), [31, 31])
    # the bases sit side by side at each size, on a log2 axis with the grid's sizes as ticks
    assert np.allclose(means[1].lines[0].get_xdata() - means[0].lines[0].get_xdata(), 0.04)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["8", "16"] and ax.yaxis_inverted()


def test_forest_puts_the_reference_last_in_black_with_its_interval():
    estimates = pd.DataFrame(
        [
            {"structure": s, "term": term, "estimate": e, "low": e - w, "high": e + w}
            for term in ("t1", "t2")
            for s, e, w in (("m1", 1.0, 0.5), ("m2", 1.0, 1.0), ("ten", 2.0, 3.0))
        ]
    )
    fig = plots.forest(estimates, ["t1", "t2"], order=["m1", "m2", "ten"], reference="ten")
    ax = fig.axes[0]
    bars = ax.containers
    assert [to_hex(b.lines[0].get_color()) for b in bars] == ["#555555", "#555555", "#000000"]
    assert [b.lines[0].get_marker() for b in bars] == ["o", "o", "D"]
    assert [float(b.lines[0].get_ydata()[0]) for b in bars] == [2, 1, 0]  # first of `order` on top
    ends = bars[2].lines[2][0].get_segments()[0]
    assert np.allclose([ends[0][0], ends[1][0]], [-1.0, 5.0])  # low to high
    assert [t.get_text() for t in ax.get_yticklabels()] == ["m1", "m2", "ten"]


def test_noise_floor_draws_the_band_and_the_interval_of_each_effect():
    effects = pd.DataFrame(
        {
            "effect": ["frequency", "valence"],
            "rm": ["r1", "r2"],
            "n tokens": [100, 200],
            "rho": [0.3, 0.01],
            "low": [0.2, -0.02],
            "high": [0.4, 0.04],
            "noise floor": [0.05, 0.03],
        }
    )
    fig = plots.noise_floor(effects)
    ax = fig.axes[0]
    bands = [p for p in ax.patches]
    assert [(round(b.get_x(), 3), round(b.get_width(), 3)) for b in bands] == [(-0.05, 0.1), (-0.03, 0.06)]
    assert [round(float(c.lines[0].get_xdata()[0]), 3) for c in ax.containers if hasattr(c, "lines")] == [0.3, 0.01]
    assert ax.get_yticklabels()[0].get_text() == "frequency\nr1 (n = 100)"
