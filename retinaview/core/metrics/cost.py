"""What a method costs: wall time and peak memory of one call.

On a GPU the peak is the allocator's own high-water mark above what was allocated before the call. On a CPU
torch's allocations are not visible to ``tracemalloc``, so a thread samples the process's resident memory
every ``interval`` seconds and the peak is the highest sample above the resident memory at the start (a
lower bound: a spike shorter than the interval can be missed).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

SAMPLE_INTERVAL = 0.005


@dataclass
class Cost:
    """``seconds`` of wall time and ``peak_bytes`` of memory above the start of one call."""

    seconds: float
    peak_bytes: int


def resident_bytes() -> int:
    """The process's resident set size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def measure(
    fn: Callable[[], Any], device: torch.device | None = None, interval: float = SAMPLE_INTERVAL
) -> tuple[Any, Cost]:
    """Call ``fn()`` and return its result with its `Cost` on ``device`` (default CPU)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)
        start_bytes = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        return out, Cost(seconds, int(torch.cuda.max_memory_allocated(device) - start_bytes))
    start = resident_bytes()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    try:
        out = fn()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    peak[0] = max(peak[0], resident_bytes())
    return out, Cost(seconds, max(0, peak[0] - start))
