"""Figure style shared by every chapter: one palette per concept, sizes readable in print."""

from __future__ import annotations

import matplotlib.pyplot as plt
import seaborn as sns

# Base-model families: the same colour in every chapter.
FAMILY_COLOURS = {"gemma": "#DB4437", "llama": "#0064E0", "qwen": "#7C3AED"}
# Word categories (Okabe-Ito orange and bluish green: distinct from the family colours and
# safe for colour-blind readers).
CATEGORY_COLOURS = {"Agency": "#E69F00", "Communion": "#009E73"}


def setup() -> None:
    """Apply the book's style: white grid, print-size fonts, high-resolution figures."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=1.05)
    plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200, "savefig.bbox": "tight",
                         "axes.titleweight": "bold", "figure.autolayout": False})


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
