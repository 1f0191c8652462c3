"""Where a run computes and in which precision: each choice checked against what this machine has.

``pick_device`` and ``autocast_dtype`` raise ``ValueError("<key>: <problem>")`` for a device that is not here or a
precision it cannot run, so the config check (:mod:`mtbert.checks`) names the params key before any work starts.
"""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """The device kinds this machine can run on, best first."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if torch.backends.mps.is_available():
        found.append("mps")
    return [*found, "cpu"]


def pick_device(name: str) -> torch.device:
    """``auto``: the best device here (cuda, then mps, then cpu); otherwise ``name``, if this machine has it."""
    available = available_devices()
    if name == "auto":
        return torch.device(available[0])
    if name not in available:
        why = "this torch has no CUDA" if name == "cuda" and torch.version.cuda is None else "none is visible"
        raise ValueError(f"device: {name!r} was asked for, but {why}; available here: auto, {', '.join(available)}")
    return torch.device(name)


def rng_state(device: torch.device) -> dict[str, torch.Tensor | None]:
    """This process's random state for a checkpoint: the CPU generator's, and the GPU's when it trains on one
    (dropout masks on a GPU are drawn there: restoring only the CPU state would draw other masks after a resume)."""
    return {"cpu": torch.get_rng_state(), "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None}


def restore_rng(state: dict[str, torch.Tensor | None] | torch.Tensor, device: torch.device) -> None:
    """Undo :func:`rng_state` (a bare tensor: a checkpoint that carried the CPU state only)."""
    if isinstance(state, torch.Tensor):
        state = {"cpu": state, "cuda": None}
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: plain fp32).

    ``auto`` is bf16 on a CUDA GPU that supports it and fp32 everywhere else: on the CPU bf16 autocast measured
    about 27x slower than fp32 for a training step, and fp16 without loss scaling can underflow the gradients.
    """
    if precision == "fp32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("precision: 'bf16' was asked for, but this GPU does not support it; use fp32 or fp16")
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    raise ValueError(f"precision: got {precision!r}, expected one of auto, fp32, bf16, fp16")
