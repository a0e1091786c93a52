"""Short, stable names for cached and written things: a content fingerprint and a file-safe slug.

Every cache folder and results file that stands for a computation is named by what went into it
(:func:`fingerprint`), so a changed input lands in a new folder instead of reusing a stale one,
and a model id becomes a folder name with :func:`slug`. Both live here once, so that every module
names things the same way.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def fingerprint(value: Any, length: int = 10) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``value`` as canonical JSON (keys sorted,
    anything JSON cannot hold written with ``str``): equal inputs give equal names on every machine."""
    blob = json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def slug(text: str) -> str:
    """``text`` as a file or folder name: letters, digits, ``-``, ``.`` and ``_`` kept, anything else
    (the ``/`` of a Hugging Face id) replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in text)
