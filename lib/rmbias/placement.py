"""Where a model's weights go: one device, several GPUs, or fewer bits per weight.

The paper profile's largest models do not fit an ordinary GPU: a 27B reward model takes 51 GiB in
bfloat16 and a 70B language model 131 GiB (the book's hardware page lists every model). Every
loader of :mod:`rmbias.models` takes a ``device`` and a ``quantize`` setting, turned here into the
arguments of transformers' ``from_pretrained``:

``device="cpu"``
    Loaded, then moved; the demo and tiny profiles, unchanged.
``device="cuda"`` (or ``"cuda:1"``)
    The weights are loaded straight onto that GPU, never staged in CPU memory first (a Colab
    machine has far less CPU memory than a 27B model needs).
``device="multi-gpu"``
    accelerate splits the layers over every visible GPU (``device_map="auto"``) and passes the
    activations from one to the next, so a 70B model runs on two 80 GB GPUs. Nothing is placed in
    CPU memory or on disk, where a forward pass would take minutes: a model that does not fit on
    the GPUs together is refused with an error that says so.
an accelerate device map (a dict of module name to device)
    A split of one's own; modules mapped to ``"disk"`` are offloaded to a folder in the cache.
``quantize="8bit"`` or ``"4bit"``
    bitsandbytes stores the linear layers in 8 bits (LLM.int8) or 4 bits (NF4, computing in the
    model's dtype): a half or a quarter of the bfloat16 memory. Quantised scores are close to the
    paper's but not equal to them, so results record the quantisation and are keyed to it: a
    quantised run never reuses, or is reused as, a full-precision one.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

MULTI_GPU = "multi-gpu"
QUANTIZATIONS = ("8bit", "4bit")
BITSANDBYTES = "bitsandbytes==0.50.2"  # the pinned version (constraints.txt; a test keeps them equal)
_OFF_GPU = {"cpu", "disk", "meta"}


class PlacementError(ValueError):
    """A device or quantisation setting that cannot be honoured; the message says what to do."""


def resolve_device(device: str) -> str:
    """``auto`` means CUDA when available, else CPU; any other setting (``cuda:1``, ``multi-gpu``:
    :mod:`rmbias.placement`) is kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def is_oom(err: BaseException) -> bool:
    """Whether an exception is an out-of-memory error (CUDA's, or the CPU allocator's)."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    return isinstance(err, oom) or "out of memory" in str(err).lower()


def check_quantize(quantize: str | None) -> None:
    """Refuse an unknown quantisation, or one whose library is missing, before anything loads."""
    if quantize is None:
        return
    if quantize not in QUANTIZATIONS:
        raise PlacementError(
            f"unknown quantisation {quantize!r}: use one of {', '.join(QUANTIZATIONS)}, "
            "or None for the model's own dtype"
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise PlacementError(
            f"quantize={quantize!r} needs bitsandbytes: `pip install {BITSANDBYTES}` "
            "(make env, and on Colab a chapter's first cell, install it)"
        )


def result_key(quantize: str | None) -> dict[str, str]:
    """What a placement adds to the request a cached result is keyed to: the quantisation, which
    changes the numbers (nothing for full precision, so full-precision keys stay as they were;
    devices and splits do not change the numbers)."""
    return {"quantize": quantize} if quantize else {}


def _quantization_config(quantize: str, dtype: str):
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    compute = torch.bfloat16 if dtype == "auto" else getattr(torch, dtype)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)


def _gpu_memory() -> dict[int, int]:
    """Free bytes on each visible GPU, less a tenth for activations and the CUDA context."""
    return {i: int(torch.cuda.mem_get_info(i)[0] * 0.9) for i in range(torch.cuda.device_count())}


def load_arguments(
    device: str | dict[str, Any], dtype: str, quantize: str | None = None, offload_folder: Path | None = None
) -> dict[str, Any]:
    """The ``from_pretrained`` arguments that put the weights where they will run.

    Empty for a plain CPU load (the caller moves the model with ``.to``); otherwise a
    ``device_map`` (and ``max_memory``, ``quantization_config`` or ``offload_folder``), after which
    the model must not be moved again.
    """
    check_quantize(quantize)
    out: dict[str, Any] = {}
    if quantize is not None:
        out["quantization_config"] = _quantization_config(quantize, dtype)
    if isinstance(device, dict):
        out["device_map"] = dict(device)
        if "disk" in device.values():
            if offload_folder is None:
                raise PlacementError("a device map with 'disk' entries needs an offload folder")
            out["offload_folder"] = str(offload_folder)
    elif device == MULTI_GPU:
        if not torch.cuda.is_available():
            raise PlacementError(
                f"device={MULTI_GPU!r} splits a model over GPUs, and none is visible here; "
                "use device='cpu', or run on a machine with CUDA GPUs"
            )
        out["device_map"] = "auto"
        out["max_memory"] = _gpu_memory()  # GPUs only: no layer is left in CPU memory or on disk
    elif device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PlacementError(
                f"device={device!r} asks for a GPU and none is visible here; use device='cpu' "
                "(or PROFILE='demo'), or a GPU runtime on Colab"
            )
        out["device_map"] = device
    elif device != "cpu":
        raise PlacementError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N', {MULTI_GPU!r} or 'auto'")
    elif quantize is not None:
        out["device_map"] = "cpu"  # a quantised model cannot be moved after loading
    return out


def from_pretrained(
    auto,
    where: str | Path,
    device: str | dict[str, Any],
    dtype: str,
    quantize: str | None = None,
    offload_folder: Path | None = None,
    **kwargs: Any,
):
    """``auto.from_pretrained(where, ...)`` placed by ``device`` and ``quantize``, in eval mode.

    ``auto`` is a transformers auto class; ``dtype`` a torch dtype name, or ``"auto"`` for the
    dtype the checkpoint was saved in; ``kwargs`` go to ``from_pretrained``. With
    ``output_loading_info=True`` it returns ``(model, info)``, as transformers does: the checkpoint
    weights left unused and the model weights left uninitialised.
    """
    place = load_arguments(device, dtype, quantize, offload_folder)
    loaded = auto.from_pretrained(where, dtype=dtype if dtype == "auto" else getattr(torch, dtype), **place, **kwargs)
    model, info = loaded if kwargs.get("output_loading_info") else (loaded, None)
    if "device_map" not in place:
        model = model.to(device)
    _check_placed(model, device)
    return (model.eval(), info) if info is not None else model.eval()


def _check_placed(model, device: str | dict[str, Any]) -> None:
    """After a ``multi-gpu`` load: refuse a model that accelerate had to put partly off the GPUs."""
    if device != MULTI_GPU:
        return
    placed = getattr(model, "hf_device_map", {}) or {}
    off = sorted(name for name, where in placed.items() if str(where) in _OFF_GPU)
    if off:
        raise PlacementError(
            f"the model does not fit on the {torch.cuda.device_count()} visible GPU(s): "
            f"{len(off)} module(s) would run from CPU memory or disk ({', '.join(off[:3])}...). "
            "Use more or larger GPUs, or quantize='8bit' / '4bit'"
        )


def input_device(model) -> torch.device:
    """The device a model's input ids must be on: that of its input embedding (the first GPU of a
    split model; the execution device where accelerate offloads the embedding itself)."""
    try:
        embedding = model.get_input_embeddings()
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device
    hook = getattr(embedding, "_hf_hook", None)
    if getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    return embedding.weight.device


def describe(model, device: str | dict[str, Any], quantize: str | None) -> dict[str, Any]:
    """Where a loaded model's weights are, for provenance records: the device asked for, the
    quantisation, and how many top-level modules went to each device of a split model."""
    placed = getattr(model, "hf_device_map", None) or {}
    counts: dict[str, int] = {}
    for where in placed.values():
        counts[str(where)] = counts.get(str(where), 0) + 1
    return {
        "device": device if isinstance(device, str) else "device map",
        "quantize": quantize,
        "device_map": counts or None,
    }
