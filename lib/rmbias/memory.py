"""Will the requested models fit? Checked in seconds, before any model loads.

A paper-profile chapter loads models of 1 to 70 billion parameters one after the other. Without a
check, a run on one GPU works for hours and then dies on the first model that does not fit.
:func:`check_fit` reads each model's config (for a hub model, only its ``config.json`` at the pinned
revision), builds the model on PyTorch's ``meta`` device (shapes, no memory), counts the bytes its
weights take in the dtype and quantisation asked for (:func:`rmbias.architectures.weight_bytes`), adds
a margin, and compares that with the free memory of the device it will run on. Models that do not
fit stop the chapter with one message naming them and the ways out, or, with ``skip_unfit``, are left
out and listed.

The margin is an estimate, not a measurement: for scoring and tracing, 10% of the weights plus 1 GiB
(activations of a batch, the key/value cache of the shared prompt, the CUDA context); for training,
15% plus 2 GiB (LoRA weights and their optimiser state, checkpointed activations).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import models, placement, registry

GIB = 2**30
MARGINS = {"inference": (0.10, 1 * GIB), "training": (0.15, 2 * GIB)}


@dataclass
class Fit:
    """The result of :func:`check_fit`: one row per model, and which models are kept or skipped."""

    table: pd.DataFrame
    kept: list[str]
    skipped: list[str] = field(default_factory=list)


def weight_bytes(key: str, dtype: str, quantize: str | None = None, reward: bool = False) -> int:
    """Bytes a model's weights take loaded in ``dtype`` (and ``quantize``), as a reward model with its
    own head (``reward``) or as a language model; counted on the ``meta`` device."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from . import architectures, heads

    config = models.load_config(key)
    spec = registry.spec(key)
    with torch.device("meta"):
        if reward and spec.reward in heads.CLASSES:
            model = heads.CLASSES[spec.reward](config)
        elif reward:
            config.num_labels = spec.num_labels
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForCausalLM.from_config(config)
    return architectures.weight_bytes(model, dtype, quantize)


def free_bytes(device: str) -> int:
    """Free memory where a model placed on ``device`` would live: one GPU, all GPUs together
    (``multi-gpu``), or the CPU's available memory."""
    import torch

    if device == placement.MULTI_GPU:
        return sum(torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count()))
    if device.startswith("cuda"):
        index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
        return torch.cuda.mem_get_info(index)[0]
    with open("/proc/meminfo") as handle:  # Linux (Colab, GPU servers, CI); elsewhere assume it fits
        for line in handle:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fit(
    keys: list[str] | tuple[str, ...],
    *,
    dtype: str,
    device: str,
    quantize: str | None = None,
    reward: bool = False,
    skip_unfit: bool = False,
    purpose: str = "inference",
    available: int | None = None,
) -> Fit:
    """Check that every model in ``keys`` fits ``device`` (``auto`` resolved as the chapters resolve
    it), each in its own dtype where its spec names one (the paper's reward models), else ``dtype``.

    Raises :class:`rmbias.models.ModelError` naming every model that does not fit and the fixes,
    unless ``skip_unfit``, which keeps the others and lists the rest in :attr:`Fit.skipped`.
    ``available`` overrides the measured free memory (tests). Nothing is loaded.
    """
    where = placement.resolve_device(device)
    free = free_bytes(where) if available is None else available
    share, fixed = MARGINS[purpose]
    rows = []
    for key in keys:
        own = registry.dtype_for(key, dtype)
        weights = weight_bytes(key, own, quantize, reward)
        need = weights * (1 + share) + fixed
        rows.append(
            {
                "model": registry.spec(key).label,
                "key": key,
                "dtype": own,
                "quantize": quantize or "none",
                "weights GiB": round(weights / GIB, 2),
                "needs GiB": round(need / GIB, 2),
                "free GiB": round(free / GIB, 1),
                "device": where,
                "fits": need <= free,
            }
        )
    table = pd.DataFrame(rows)
    unfit = [row["key"] for row in rows if not row["fits"]]
    if unfit and not skip_unfit:
        listing = "; ".join(f"{r['model']} needs {r['needs GiB']:.0f} GiB" for r in rows if not r["fits"])
        raise registry.ModelError(
            f"{len(unfit)} model(s) do not fit {where} ({free / GIB:.0f} GiB free): {listing}. Use a larger GPU, "
            f"DEVICE='{placement.MULTI_GPU}' to split over several GPUs, QUANTIZE='8bit' or '4bit', leave them "
            "out of the chapter's model list, or set SKIP_UNFIT=True to run the others (the skipped ones are "
            "listed); see the book's hardware page"
        )
    return Fit(table, [k for k in keys if k not in unfit], unfit)


def fit_summary(fit: Fit) -> dict[str, Any]:
    """What a chapter's ``summary.json`` records of a fit check."""
    return {
        "skipped_unfit": [registry.spec(k).label for k in fit.skipped],
        "needs_gib": dict(zip(fit.table["model"], fit.table["needs GiB"])) if len(fit.table) else {},
    }
