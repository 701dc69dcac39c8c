"""Device choice: CUDA when present, CPU otherwise."""

from __future__ import annotations

import torch

from retinaview.core.common.errors import RetinaviewError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` -> CUDA if available else CPU; ``"cuda"`` without a GPU is a one-line error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RetinaviewError("--device cuda: no CUDA GPU is available on this machine")
    return dev


def describe_device(device: torch.device) -> str:
    """A short human label, e.g. 'CPU (2 threads)' or 'CUDA: NVIDIA H100'."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"
