"""The 54 prompts of the study: a full factorial of adjective x frame x concision.

Keys follow the authors' release (``greatest_ever_one``, ``good_world_please``, ...), in the
same order as the columns of their score files: adjective, then frame, then concision.
"""

from __future__ import annotations

import pandas as pd

# adjective key -> words used in the question; the first three frame the question positively
ADJECTIVES: dict[str, str] = {
    "best": "best",
    "greatest": "greatest",
    "good": "most good",
    "worst": "worst",
    "bad": "most bad",
    "terrible": "most terrible",
}
POSITIVE_ADJECTIVES = ("best", "greatest", "good")

# frame key -> how the question ends
FRAMES: dict[str, str] = {"ever": "thing ever", "world": "thing in the world", "time": "thing of all time"}

# concision key -> question template; {subject} is e.g. "greatest thing ever"
CONCISION: dict[str, str] = {
    "one": "What, in one word, is the {subject}?",
    "single": "What, in a single word, is the {subject}?",
    "please": "What is the {subject}? Please answer in one word only.",
}

HEADLINE = "greatest_ever_one"


def prompt_text(adjective: str, frame: str, concision: str) -> str:
    """The question for one cell of the factorial, e.g. ``("greatest", "ever", "one")``."""
    for value, table, name in (
        (adjective, ADJECTIVES, "adjective"),
        (frame, FRAMES, "frame"),
        (concision, CONCISION, "concision"),
    ):
        if value not in table:
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(table)}")
    return CONCISION[concision].format(subject=f"{ADJECTIVES[adjective]} {FRAMES[frame]}")


def all_prompts() -> pd.DataFrame:
    """All 54 prompts, one row each: key, adjective, frame, concision, framing, text."""
    rows = [
        {
            "key": f"{adj}_{frame}_{conc}",
            "adjective": adj,
            "frame": frame,
            "concision": conc,
            "framing": "positive" if adj in POSITIVE_ADJECTIVES else "negative",
            "text": prompt_text(adj, frame, conc),
        }
        for adj in ADJECTIVES
        for frame in FRAMES
        for conc in CONCISION
    ]
    return pd.DataFrame(rows)


def select(keys: list[str] | tuple[str, ...] | None = None) -> pd.DataFrame:
    """The prompts with the given keys (all 54 when ``keys`` is None), in the order given."""
    table = all_prompts().set_index("key", drop=False)
    if keys is None:
        return table.reset_index(drop=True)
    unknown = [k for k in keys if k not in table.index]
    if unknown:
        raise ValueError(
            f"unknown prompt keys {unknown}; keys look like {HEADLINE!r} "
            f"(adjective_frame_concision, see rmbias.prompts)"
        )
    return table.loc[list(keys)].reset_index(drop=True)
