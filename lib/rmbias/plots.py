"""Figure style shared by every chapter: one palette per concept, sizes readable in print."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

# Base-model families: the same colour in every chapter.
FAMILY_COLOURS = {"gemma": "#DB4437", "llama": "#0064E0", "qwen": "#7C3AED"}
# Word categories (Okabe-Ito orange and bluish green: distinct from the family colours and
# safe for colour-blind readers).
CATEGORY_COLOURS = {"Agency": "#E69F00", "Communion": "#009E73"}


def setup() -> None:
    """Apply the book's style: white grid, print-size fonts, high-resolution figures, and an opaque
    white background (a transparent figure would lose its black axes on the book's dark theme)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.05)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 200,
            "savefig.bbox": "tight",
            "axes.titleweight": "bold",
            "figure.autolayout": False,
            "figure.facecolor": "white",
            "savefig.facecolor": "white",
            "savefig.transparent": False,
        }
    )


def model_palette(labels_to_family: dict[str, str]) -> dict[str, str]:
    """A colour per label in its family's hue: the first label of a family gets the family colour,
    later ones lighter shades of it, so several models of one family stay distinguishable."""
    import numpy as np
    from matplotlib.colors import to_hex, to_rgb

    out: dict[str, str] = {}
    for family in dict.fromkeys(labels_to_family.values()):
        members = [label for label, fam in labels_to_family.items() if fam == family]
        base = np.array(to_rgb(FAMILY_COLOURS[family]))
        for i, label in enumerate(members):
            mix = 0.55 * i / max(len(members) - 1, 1)
            out[label] = to_hex(base + (1 - base) * mix)
    return out


def rank_panels(
    per_model,
    family_means=None,
    categories=None,
    framings=("positive", "negative"),
    value_label: str = "mean median rank over prompts",
    title: str | None = None,
):
    """Figure 1 style panels: one panel per framing, categories on the x axis, one point per model
    (mean over prompts of its median rank, with standard-error bars) in its family's colour, and
    the family means as short horizontal bars.

    ``per_model`` is :func:`rmbias.ranks.panel_means` output (columns ``rm``, ``family``,
    ``category``, ``framing``, ``mean``, ``sem``); ``family_means`` the same at family level. The
    y axis is inverted: rank 1 (most preferred) is at the top. Returns the figure.
    """
    import numpy as np

    categories = list(categories or dict.fromkeys(per_model["category"]))
    framings = [f for f in framings if f in set(per_model["framing"])]
    models = list(dict.fromkeys(per_model["rm"]))
    fig, axes = plt.subplots(1, len(framings), figsize=(4.2 * len(framings) + 0.8, 4.2), sharey=True, squeeze=False)
    offsets = np.linspace(-0.28, 0.28, len(models)) if len(models) > 1 else np.zeros(1)
    for ax, framing in zip(axes[0], framings):
        panel = per_model[per_model["framing"] == framing]
        for offset, rm in zip(offsets, models):
            rows = panel[panel["rm"] == rm].set_index("category").reindex(categories)
            family = rows["family"].dropna().iloc[0]
            ax.errorbar(
                np.arange(len(categories)) + offset,
                rows["mean"],
                yerr=rows["sem"],
                fmt="o",
                ms=4.5,
                color=FAMILY_COLOURS[family],
                alpha=0.8,
                capsize=2,
                lw=1,
            )
        if family_means is not None:
            fam = family_means[family_means["framing"] == framing]
            for family, rows in fam.groupby("family"):
                rows = rows.set_index("category").reindex(categories)
                for x, y in enumerate(rows["mean"]):
                    ax.hlines(y, x - 0.36, x + 0.36, color=FAMILY_COLOURS[family], lw=2.6)
        ax.set_xticks(range(len(categories)), categories, rotation=30 if len(categories) > 3 else 0)
        ax.set_xlim(-0.5, len(categories) - 0.5)
        ax.set_title(f"{framing} prompts")
        ax.set_xlabel("")
    axes[0][0].set_ylabel(f"{value_label}\n(1 = most preferred; lower is better)")
    axes[0][0].invert_yaxis()
    handles = [
        plt.Line2D([], [], color=FAMILY_COLOURS[f], marker="o", lw=2.6, label=f"{f.capitalize()}-based")
        for f in dict.fromkeys(per_model["family"])
    ]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, 1.02))
    if title:
        fig.suptitle(title, y=1.08, fontweight="bold")
    fig.tight_layout()
    return fig


def rank_change_bars(
    ax,
    moves,
    n: int = 10,
    value: str = "rank_change",
    error: str | None = None,
    word: str = "word",
    category: str = "category",
) -> dict[str, list[str]]:
    """Figure 5's panel on ``ax``: the ``n`` words that rose most and the ``n`` that fell most,
    one horizontal bar each, coloured by category (whiskers from ``error`` where given). Returns
    the words shown, ``{"up": [...], "down": [...]}``."""
    rows = moves.sort_values(value, ascending=False)
    shown = pd.concat([rows.head(n), rows.tail(n)]) if len(rows) > 2 * n else rows
    ax.barh(
        range(len(shown)),
        shown[value],
        xerr=None if error is None else shown[error],
        color=[CATEGORY_COLOURS[c] for c in shown[category]],
        ecolor="#555555",
        capsize=2,
    )
    ax.set_yticks(range(len(shown)), shown[word])
    ax.invert_yaxis()
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("rank change (positive: preferred more by the end)")
    return {"up": rows.head(n)[word].tolist(), "down": rows.tail(n)[word].tolist()}


def category_legend(ax, categories=("Agency", "Communion"), **kwargs) -> None:
    """A legend of the category colours (:data:`CATEGORY_COLOURS`)."""
    ax.legend(
        handles=[plt.Rectangle((0, 0), 1, 1, color=CATEGORY_COLOURS[c], label=c) for c in categories],
        frameon=False,
        **kwargs,
    )


def split_violins(
    medians,
    order,
    value: str = "median_rank",
    marks=None,
    framings=("positive", "negative"),
    categories=("Agency", "Communion"),
    families=None,
):
    """Figure 2 style: per framing (one panel each), the median ranks of each category as split
    violins, one half per model, with the prompts as dots; the y axis inverted (rank 1 at the top).

    ``medians`` has columns ``model``, ``category``, ``framing`` and ``value``; ``order`` is the two
    model labels; ``families`` maps each label to its family (for the colours); ``marks`` maps
    (category, framing) to a text such as ``***`` printed above the pair. Returns the figure.
    """
    families = families or {}
    palette = [FAMILY_COLOURS.get(families.get(m, ""), c) for m, c in zip(order, ("#DB4437", "#0064E0"))]
    fig, axes = plt.subplots(len(framings), 1, figsize=(6.4, 3.0 * len(framings) + 0.6), sharex=True, squeeze=False)
    for ax, framing in zip(axes[:, 0], framings):
        panel = medians[medians["framing"] == framing]
        sns.violinplot(
            data=panel,
            x="category",
            y=value,
            hue="model",
            hue_order=list(order),
            order=list(categories),
            split=True,
            inner=None,
            palette=palette,
            alpha=0.45,
            ax=ax,
            legend=False,
            cut=0,
        )
        sns.stripplot(
            data=panel,
            x="category",
            y=value,
            hue="model",
            hue_order=list(order),
            order=list(categories),
            dodge=True,
            palette=palette,
            size=3.5,
            alpha=0.8,
            ax=ax,
            legend=False,
        )
        low, high = panel[value].min(), panel[value].max()
        span = max(high - low, 1.0)
        ax.set_ylim(high + 0.06 * span, low - 0.22 * span)  # inverted: rank 1 at the top, room for the marks
        ax.set_ylabel(f"median rank\n({framing} prompts)")
        ax.set_xlabel("")
        if marks:
            for x, category in enumerate(categories):
                ax.text(x, low - 0.11 * span, marks.get((category, framing), ""), ha="center", va="center", fontsize=12)
    axes[-1, 0].set_xlabel("Big Two category")
    handles = [plt.Line2D([], [], color=c, marker="s", lw=0, ms=9, label=m) for m, c in zip(order, palette)]
    fig.legend(handles=handles, loc="upper center", ncol=2, frameon=False, bbox_to_anchor=(0.5, 1.04))
    fig.tight_layout()
    return fig


# The cells of the multiverse grid by state, in the order of their codes 0-3.
MULTIVERSE_STATES = {
    "not significant": "#E8E8E8",
    "same direction, not significant": "#9CC3E6",
    "survives (same direction, p < .05)": "#1F4E79",
    "direction flips": "#F4B183",
}


def multiverse_grid(table, analyses=("Big Two", "moral foundations")):
    """The multiverse as one heatmap per analysis: a row per claim, a column per branch (summary
    statistic, Sanctity_Vice route where there is one, unit of inference), each cell coloured by
    its state (:data:`MULTIVERSE_STATES`) and labelled with its p-value. ``table`` is
    :func:`rmbias.multiverse.judge`'s output. Returns the figure."""
    import numpy as np
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(list(MULTIVERSE_STATES.values()))
    panels = {}
    for analysis in analyses:
        rows = table[table["analysis"] == analysis].copy()
        route = rows["Sanctity_Vice"].map(
            {"n/a": "", "dropped": "\nSanctity_Vice dropped", "kept": "\nSanctity_Vice kept"}
        )
        rows["branch"] = rows["summary"] + " rank" + route + "\n" + rows["unit"]
        rows["state"] = np.select([~rows["same_direction"], rows["survives"], rows["same_direction"]], [3, 2, 1], 0)
        panels[analysis] = (
            rows.pivot_table(index="claim", columns="branch", values="state", sort=False),
            rows.pivot_table(index="claim", columns="branch", values="p", sort=False),
        )
    widths = [states.shape[1] for states, _ in panels.values()]  # one column per branch
    fig, axes = plt.subplots(1, len(analyses), figsize=(12, 5.2), gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, (analysis, (states, pvals)) in zip(axes[0], panels.items()):
        codes = states.to_numpy()
        ax.imshow(codes, cmap=colours, vmin=-0.5, vmax=3.5, aspect="auto")
        for (i, j), p in np.ndenumerate(pvals.to_numpy()):
            ax.text(
                j, i, f"{p:.2g}", ha="center", va="center", fontsize=7, color="white" if codes[i, j] == 2 else "black"
            )
        ax.set_xticks(range(states.shape[1]), states.columns, fontsize=7, rotation=90)
        ax.set_yticks(range(states.shape[0]), states.index, fontsize=8)
        ax.set_title(analysis)
        ax.grid(False)
    legend = ("survives (same direction, p < .05)", "same direction, not significant", "direction flips")
    handles = [plt.Rectangle((0, 0), 1, 1, color=MULTIVERSE_STATES[label]) for label in legend]
    fig.legend(handles, legend, loc="upper center", ncol=3, frameon=False, bbox_to_anchor=(0.5, 1.03))
    fig.tight_layout()
    return fig


def released_ablation(final, categories=("Agency", "Communion"), families=("gemma", "llama", "qwen")):
    """Figure 4b from the authors' released rank tables: per category (one panel each), each family's
    median rank at the last checkpoint against the preference pairs trained on: Bradley-Terry runs on
    Unified-Feedback as a line, on Skywork as triangles, the off-the-shelf GRM as diamonds at the
    right; the y axis inverted (rank 1 at the top). ``final`` has the columns of
    :func:`rmbias.ablation.released_rank_tables`, one row per file, family and category. Returns the figure."""
    fig, axes = plt.subplots(1, len(categories), figsize=(10, 3.8), sharey=True, squeeze=False)
    for ax, category in zip(axes[0], categories):
        part = final[final["category"] == category]
        for family in families:
            alpha = 1 if family != "qwen" else 0.6
            rows = part[(part["family"] == family) & (part["method"] == "BT")].sort_values("data_size")
            uf = rows[rows["data_source"] == "Unified-Feedback"]
            ax.plot(
                uf["data_size"],
                uf["median_rank"],
                "o-",
                color=FAMILY_COLOURS[family],
                label=family.title(),
                alpha=alpha,
            )
            sky = rows[rows["data_source"] == "Skywork"]
            ax.plot(sky["data_size"], sky["median_rank"], "^", color=FAMILY_COLOURS[family], ms=9, alpha=alpha)
            grm = part[(part["family"] == family) & (part["method"] == "GRM")]
            ax.plot([140] * len(grm), grm["median_rank"], "D", color=FAMILY_COLOURS[family], ms=8)
        ax.set_xticks([27, 53, 77, 106, 140], ["27k", "53k", "77k\n(Skywork)", "106k", "GRM\n(550k+)"])
        ax.set_title(category)
        ax.set_xlabel("preference pairs")
    axes[0, 0].invert_yaxis()
    axes[0, 0].set_ylabel("median rank of the category's tokens\n(1 = best)")
    axes[0, 0].legend(frameon=False, loc="best")
    return fig


def ablation_finals(finals, bases, sizes, families, labels, categories=("Agency", "Communion")):
    """Figure 4b from the book's own runs: per category (one panel each), every seed's median rank at
    its last step (small dots) and each base's mean with one standard deviation (squares and bars)
    against the training pairs on a log axis, bases side by side; the y axis inverted. ``finals`` has
    ``model``, ``data_size``, ``category`` and ``median_rank`` (:func:`rmbias.ablation.final_steps`);
    ``sizes`` are the grid's (the x ticks); ``families`` and ``labels`` map each base to its family (the
    colour) and its legend label. Returns the figure."""
    import numpy as np

    sizes = sorted(sizes)
    fig, axes = plt.subplots(1, len(categories), figsize=(10, 3.8), sharey=True, squeeze=False)
    for ax, category in zip(axes[0], categories):
        part = finals[finals["category"] == category]
        for i, base in enumerate(bases):
            rows = part[part["model"] == base]
            colour = FAMILY_COLOURS[families[base]]
            jitter = (i - (len(bases) - 1) / 2) * 0.04
            x = np.log2(rows["data_size"].to_numpy()) + jitter
            ax.plot(x, rows["median_rank"], "o", color=colour, alpha=0.45, ms=5)
            mean = rows.groupby("data_size")["median_rank"].agg(["mean", "std"])
            ax.errorbar(
                np.log2(mean.index.to_numpy()) + jitter,
                mean["mean"],
                yerr=mean["std"],
                fmt="s-",
                color=colour,
                capsize=3,
                lw=2,
                label=labels[base],
            )
        ax.set_xticks(np.log2(sizes), [str(s) for s in sizes])
        ax.set_title(category)
        ax.set_xlabel("training pairs")
    axes[0, 0].invert_yaxis()
    axes[0, 0].set_ylabel("median rank at the last step\n(1 = best)")
    axes[0, 0].legend(frameon=False, fontsize=9)
    return fig


def dose_panels(points, means, colour: str, ylabel: str, panels=("planted", "untouched"), panel: str = "list"):
    """A dose-response figure, one panel per value of ``panel`` (the planted and the untouched
    words): every unit's value (``points``: ``signed_dose`` and ``gap``, small dots, jittered) and
    each condition's mean with its interval (``means`` of :func:`rmbias.planting.dose_response`:
    squares and bars), against the dose towards agency (negative: towards communion). A dashed line
    marks no gap. Returns the figure."""
    import numpy as np

    fig, axes = plt.subplots(1, len(panels), figsize=(10, 3.8), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes[0], panels):
        part = points[points[panel] == name]
        jitter = rng.uniform(-0.03, 0.03, len(part))
        ax.plot(part["signed_dose"] + jitter, part["gap"], "o", color=colour, alpha=0.45, ms=5)
        mean = means[means[panel] == name].sort_values("signed_dose")
        ax.errorbar(
            mean["signed_dose"],
            mean["mean"],
            yerr=[mean["mean"] - mean["ci_low"], mean["ci_high"] - mean["mean"]],
            fmt="s-",
            color=colour,
            capsize=3,
            lw=2,
        )
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(f"{name} words")
        ax.set_xlabel("dose towards agency\n(negative: towards communion; 0: control)")
    axes[0, 0].set_ylabel(ylabel)
    return fig


def forest(estimates, terms, order, reference: str):
    """A forest plot per term (one panel each): a row per entry of ``order`` (top to bottom), its
    estimate with the interval from ``low`` to ``high``; the ``reference`` row (the ten models' own
    contrast, say) drawn in black with a diamond, the others in grey dots; a dashed line at zero.
    ``estimates`` has ``structure``, ``term``, ``estimate``, ``low`` and ``high``. Returns the figure."""
    import numpy as np

    fig, axes = plt.subplots(1, len(terms), figsize=(4 * len(terms), 3.4), sharey=True, squeeze=False)
    y = np.arange(len(order))[::-1]
    for ax, term in zip(axes[0], terms):
        rows = estimates[estimates["term"] == term].set_index("structure").loc[list(order)]
        for yi, (name, row) in zip(y, rows.iterrows()):
            mine = name == reference
            ax.errorbar(
                row["estimate"],
                yi,
                xerr=[[row["estimate"] - row["low"]], [row["high"] - row["estimate"]]],
                fmt="D" if mine else "o",
                color="#000000" if mine else "#555555",
                capsize=3,
            )
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("estimate (ranks), 95% CI")
    axes[0, 0].set_yticks(y, list(order))
    fig.tight_layout()
    return fig


def noise_floor(effects):
    """Effects against their noise floor: a row per effect (top to bottom), its Spearman rho with the
    interval from ``low`` to ``high``, over a grey band of +/- its ``noise floor``; labelled by
    ``effect``, ``rm`` and ``n tokens``. An effect is clear of the floor when its whole interval lies
    outside the band. Returns the figure."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(8, 0.55 * len(effects) + 1.4))
    y = np.arange(len(effects))[::-1]
    for yi, (_, row) in zip(y, effects.iterrows()):
        ax.barh(yi, 2 * row["noise floor"], left=-row["noise floor"], height=0.6, color="#DDDDDD")
        ax.errorbar(
            row["rho"],
            yi,
            xerr=[[row["rho"] - row["low"]], [row["high"] - row["rho"]]],
            fmt="o",
            color="black",
            capsize=3,
        )
    ax.set_yticks(y, [f"{r['effect']}\n{r['rm']} (n = {r['n tokens']})" for _, r in effects.iterrows()], fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("Spearman rho with 95% interval; grey: +/- noise floor")
    fig.tight_layout()
    return fig


def interactive_scatter(
    frame,
    x: str,
    y: str,
    word: str,
    colour: str | None = None,
    palette: dict[str, str] | None = None,
    hover: list[str] | None = None,
    labels: dict[str, str] | None = None,
    title: str = "",
):
    """A plotly scatter in which a reader can look a word up: hovering a point shows ``word`` and
    the ``x``, ``y`` and ``hover`` columns. One trace per ``colour`` value, coloured by ``palette``
    (the book's family colours); clicking a legend entry hides it. SVG rendering (not WebGL), so it
    draws in any browser, and a white background, so it reads in the theme's dark mode. Keep it to
    a few thousand points: every point is written into the page."""
    import plotly.express as px

    figure = px.scatter(
        frame,
        x=x,
        y=y,
        color=colour,
        color_discrete_map=palette or {},
        hover_name=word,
        hover_data={column: True for column in hover or []},
        labels=labels or {},
        title=title,
        render_mode="svg",
        template="plotly_white",
    )
    figure.update_traces(marker={"size": 5, "opacity": 0.55})
    figure.update_layout(
        paper_bgcolor="white",
        plot_bgcolor="white",
        height=460,
        margin={"l": 60, "r": 20, "t": 50 if title else 20, "b": 50},
        legend={"title": None, "orientation": "h", "y": -0.18},
    )
    return figure


def as_html(figure):
    """An interactive figure as one self-contained HTML output (plotly.js included, so the page needs
    no network and no require.js, which Jupyter Book's pages lack); shown the same way in Jupyter and
    Colab. :func:`interactive_scatter`'s static twin stays in the chapter for print."""
    from IPython.display import HTML

    return HTML(figure.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False}))
