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


def family_palette(labels_to_family: dict[str, str]) -> dict[str, str]:
    """Map each label (a model or tokenizer name) to its family's colour."""
    return {label: FAMILY_COLOURS[family] for label, family in labels_to_family.items()}
