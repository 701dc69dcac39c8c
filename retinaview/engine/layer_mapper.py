"""The layer inspector's own worker thread: maps layers to input space, lazily, off the GUI thread, cached.

The engine's thread may be busy explaining the next image for seconds; mapping one layer takes tens of
milliseconds, so it gets a thread of its own and never waits behind an explanation. Like the engine it does
not queue stale work: the GUI names the one layer it wants now (newest wins) plus the layers worth mapping
ahead (the walk-through's neighbours), and replaces both whenever it asks again. Exports run here too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from retinaview.engine.cache import ResultCache
from retinaview.engine.layers import LayerMaps, map_layer
from retinaview.engine.worker import Engine

DEFAULT_CACHE_BYTES = 160 * 1024 * 1024

# (anything identifying the explanation, ..., layer number, space, feature): the last three name the maps.
Key = tuple[Hashable, ...]


class _Inbox:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted: tuple[Key, Any] | None = None
        self.ahead: deque[tuple[Key, Any]] = deque()
        self.jobs: deque[tuple[object, Callable[[], Any]]] = deque()
        self.closing = False


class _MapWorker(QObject):
    mapped = Signal(object, object)  # key, LayerMaps
    failed = Signal(object, str)
    jobDone = Signal(object, object, object)  # tag, value, error message or None

    def __init__(self, inbox: _Inbox, cache: ResultCache[LayerMaps]) -> None:
        super().__init__()
        self._inbox = inbox
        self._cache = cache

    @Slot()
    def pump(self) -> None:
        while True:
            with self._inbox.lock:
                if self._inbox.closing:
                    return
                if self._inbox.wanted is not None:
                    item, self._inbox.wanted = self._inbox.wanted, None
                    kind = "wanted"
                elif self._inbox.jobs:
                    item, kind = self._inbox.jobs.popleft(), "job"
                elif self._inbox.ahead:
                    item, kind = self._inbox.ahead.popleft(), "ahead"
                else:
                    return
            if kind == "job":
                tag, fn = item
                try:
                    value, error = fn(), None
                except Exception as exc:  # an export's failure is a message for the user
                    value, error = None, f"{type(exc).__name__}: {exc}"
                self.jobDone.emit(tag, value, error)
                continue
            key, ex = item
            maps = self._cache.get(key)
            if maps is None:
                try:
                    maps = map_layer(ex, *key[-3:])
                except Exception as exc:
                    if kind == "wanted":
                        self.failed.emit(key, f"{type(exc).__name__}: {exc}")
                    continue
                self._cache.put(key, maps)
            if kind == "wanted":
                self.mapped.emit(key, maps)


class LayerMapper(QObject):
    """GUI-thread handle. ``mapped(key, LayerMaps)`` answers `want`; ``jobDone(tag, value, error)`` answers
    `submit`. Keys end with (layer number, space, feature); what comes before identifies the explanation."""

    mapped = Signal(object, object)
    failed = Signal(object, str)
    jobDone = Signal(object, object, object)
    _poke = Signal()

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES, parent: QObject | None = None):
        super().__init__(parent)
        self.cache: ResultCache[LayerMaps] = ResultCache(cache_bytes, size_of=LayerMaps.nbytes)
        self._inbox = _Inbox()
        self._thread = QThread()
        self._thread.setObjectName("retinaview-layer-mapper")
        self._worker = _MapWorker(self._inbox, self.cache)
        self._worker.moveToThread(self._thread)
        self._poke.connect(self._worker.pump)
        self._worker.mapped.connect(self.mapped)
        self._worker.failed.connect(self.failed)
        self._worker.jobDone.connect(self.jobDone)
        self._thread.finished.connect(self._worker.deleteLater)
        self._thread.start()
        # The tests' leak check counts the engine's threads; this one must be closed just the same.
        Engine._running.add(self._thread)

    def get(self, key: Key) -> LayerMaps | None:
        """The cached maps of ``key``, or None (then ask with `want`)."""
        return self.cache.get(key)

    def want(self, key: Key, ex: Any, ahead: list[tuple[Key, Any]] = ()) -> LayerMaps | None:
        """Cached maps at once, or None and a `mapped` signal later. ``ahead``: keys to map afterwards
        (replacing the previous ones), unless already cached."""
        hit = self.cache.get(key)
        with self._inbox.lock:
            self._inbox.wanted = None if hit is not None else (key, ex)
            self._inbox.ahead = deque(item for item in ahead if item[0] not in self.cache)
        self._poke.emit()
        return hit

    def submit(self, tag: object, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` in the mapping thread; `jobDone` carries its value or its error."""
        with self._inbox.lock:
            self._inbox.jobs.append((tag, fn))
        self._poke.emit()

    def close(self) -> None:
        """Drop pending work, let a running mapping finish, stop the thread."""
        with self._inbox.lock:
            self._inbox.closing = True
            self._inbox.wanted = None
            self._inbox.ahead.clear()
            self._inbox.jobs.clear()
        self._thread.quit()
        self._thread.wait()
        Engine._running.discard(self._thread)
