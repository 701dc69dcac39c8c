"""Forward passes of many perturbed images at once: the batch size is chosen from the memory at hand.

A metric that perturbs an image step by step (deletion, insertion, ROAD) evaluates all its perturbed images in
a few large forward passes instead of one per step. How many fit in one pass follows from the bytes of every
module output of one image (measured once per model and input size, with forward hooks: an upper bound on
what an inference-mode forward keeps alive) and the memory free on the model's device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

# Share of the free memory one forward pass may take: the rest is for the caller and other processes.
MEMORY_SHARE = 0.25
# Most inputs per forward pass on a GPU. On a CPU a convolutional network is compute-bound and a batch gains
# little (paper17 at 640 px: the same time per image at batch 1, 2 and 4, slower at 8, on two cores), so
# a few inputs per pass keep the activations in cache.
MAX_BATCH = 64
MAX_BATCH_CPU = 4


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device`` in bytes (CUDA: the driver's free memory; CPU: MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30  # no /proc (macOS, Windows): assume a modest 4 GiB


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of every leaf module's output for one input ``x`` (1, 3, H, W), cached on the model per shape."""
    key = (tuple(x.shape[1:]), x.dtype)
    cache = model.__dict__.setdefault("_retinaview_activation_bytes", {})
    if key in cache:
        return cache[key]
    total = [x.numel() * x.element_size()]

    def hook(_module, _inputs, output) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * output.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(x[:1])
    finally:
        for h in handles:
            h.remove()
    cache[key] = total[0]
    return total[0]


def choose_batch(model: nn.Module, x: torch.Tensor, limit: int | None = None) -> int:
    """How many inputs like ``x`` one forward pass may take on the model's device (at least 1, at most
    ``limit``, default `MAX_BATCH` on a GPU and `MAX_BATCH_CPU` on a CPU)."""
    if limit is None:
        limit = MAX_BATCH_CPU if x.device.type == "cpu" else MAX_BATCH
    per_image = max(activation_bytes(model, x), 1)
    return max(1, min(limit, int(available_bytes(x.device) * MEMORY_SHARE) // per_image))


def batched_probs(
    model: nn.Module,
    make: Callable[[int, int], torch.Tensor],
    n: int,
    batch: int,
    classes: list[int] | None = None,
) -> torch.Tensor:
    """Softmax probabilities of ``n`` inputs built ``make(start, stop)`` a batch at a time.

    Parameters
    ----------
    model : torch.nn.Module
        The classifier (eval mode).
    make : callable
        ``make(start, stop)`` -> (stop - start, 3, H, W) inputs number start..stop-1.
    n : int
        How many inputs.
    batch : int
        Inputs per forward pass.
    classes : list of int, optional
        Keep only these columns.

    Returns
    -------
    torch.Tensor
        (n, C) or (n, len(classes)) float64 on the CPU.
    """
    out = []
    with torch.inference_mode():
        for start, stop in _spans(n, batch):
            p = torch.softmax(model(make(start, stop)).double(), dim=-1)
            out.append((p if classes is None else p[:, classes]).cpu())
    return torch.cat(out)


def _spans(n: int, batch: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, batch):
        yield start, min(n, start + batch)
