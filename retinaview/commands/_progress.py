"""The one progress display of the command line: a line on stderr rewritten in place, only on a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_S = 0.25  # redraw at most four times a second: a terminal write per image slows small jobs


class Progress:
    """A ``[####----] done/total elapsed eta`` bar that other messages can interleave with.

    Parameters
    ----------
    total : int
        Number of steps.
    label : str
        Shown before the bar.
    enabled : bool, optional
        Draw the bar; default when there is more than one step (or ``total`` is 0, not known yet) and
        ``stream`` is a terminal (a log file or a pipe gets only the messages).
    stream : TextIO, optional
        Default ``sys.stderr``.
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        self.total = total
        self.label = label
        self.start = time.perf_counter()
        self.enabled = total != 1 and _is_terminal(self.stream) if enabled is None else enabled
        self.done = 0
        self._drawn_at = -REDRAW_S

    def update(self, done: int | None = None, extra: str = "") -> None:
        """Record progress (one more step, or ``done`` steps) and redraw the bar when it is due.

        Parameters
        ----------
        done : int, optional
            Steps done so far; default one more than before.
        extra : str
            Shown after the bar (e.g. the current file).
        """
        self.done = self.done + 1 if done is None else done
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._drawn_at < REDRAW_S and self.done < self.total:
            return
        self._drawn_at = now
        width = 24
        frac = min(self.done / max(self.total, 1), 1.0)
        bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
        elapsed = now - self.start
        eta = elapsed / max(self.done, 1) * max(self.total - self.done, 0)
        self.stream.write(
            f"\r{self.label} [{bar}] {self.done}/{self.total} {elapsed:5.1f}s eta {eta:5.1f}s {extra}\033[K"
        )
        self.stream.flush()

    def callback(self, done: int, total: int) -> None:
        """``progress(done, total)`` for the library functions that report that way."""
        self.total = total
        self.update(done)

    def message(self, text: str) -> None:
        """Print one line without breaking the bar."""
        if self.enabled:
            self.stream.write("\r\033[K")
        print(text, file=self.stream, flush=True)
        if self.enabled and self.done:
            self._drawn_at = -REDRAW_S
            self.update(self.done)

    def close(self) -> None:
        """End the bar's line, so that what follows starts on its own line."""
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
            self.enabled = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
