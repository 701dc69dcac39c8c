"""A one-line progress bar on stderr (no dependency), silent when stderr is not a terminal and quiet."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str = "", enabled: bool | None = None) -> None:
        self.total = total
        self.label = label
        self.start = time.perf_counter()
        self.enabled = total > 1 if enabled is None else enabled
        self.done = 0

    def update(self, done: int | None = None, extra: str = "") -> None:
        self.done = self.done + 1 if done is None else done
        if not self.enabled:
            return
        width = 24
        frac = self.done / max(self.total, 1)
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = time.perf_counter() - self.start
        eta = elapsed / max(self.done, 1) * (self.total - self.done)
        sys.stderr.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {extra}\033[K"
        )
        sys.stderr.flush()

    def message(self, text: str) -> None:
        """Print one line without breaking the bar."""
        if self.enabled:
            sys.stderr.write("\r\033[K")
        print(text, file=sys.stderr, flush=True)
        if self.enabled and self.done:
            self.update(self.done)

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
