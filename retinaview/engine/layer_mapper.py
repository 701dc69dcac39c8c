"""The layer inspector's own worker thread: maps layers to input space, lazily, off the GUI thread, cached.

The engine's thread may be busy explaining the next image for seconds; mapping one layer takes tens of
milliseconds, so it gets a thread of its own and never waits behind an explanation. Like the engine it does
not queue stale work (the same `retinaview.engine.inbox` pattern): the GUI names the one layer it wants now
(newest wins) plus the layers worth mapping ahead (the walk-through's neighbours), and replaces both whenever
it asks again. Exports run here too.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from retinaview.engine.cache import ResultCache
from retinaview.engine.inbox import Inbox, WorkerThread
from retinaview.engine.layers import LayerMaps, map_layer

DEFAULT_CACHE_BYTES = 160 * 1024 * 1024

# (anything identifying the explanation, ..., layer number, space, feature): the last three name the maps.
LayerKey = tuple[Hashable, ...]

# The inbox: the layer on screen (newest wins), then exports (in order), then the layers mapped ahead.
WANTED, JOBS, AHEAD = "wanted", "jobs", "ahead"


class _MapWorker(QObject):
    mapped = Signal(object, object)  # key, LayerMaps
    failed = Signal(object, str)
    jobDone = Signal(object, object, object)  # tag, value, error message or None

    def __init__(self, inbox: Inbox, cache: ResultCache[LayerMaps]) -> None:
        super().__init__()
        self._inbox = inbox
        self._cache = cache

    def _take(self) -> tuple[str, Any] | None:
        inbox = self._inbox
        with inbox.lock:
            if inbox.closing:
                return None
            item = inbox.take(WANTED)
            if item is not None:
                return WANTED, item[1]
            for queue in (JOBS, AHEAD):
                if inbox.queued(queue):
                    return queue, inbox.pop(queue)
        return None

    @Slot()
    def pump(self) -> None:
        """Map or run what is pending, the layer on screen first, then return to the event loop."""
        while (task := self._take()) is not None:
            kind, item = task
            if kind == JOBS:
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
                    if kind == WANTED:
                        self.failed.emit(key, f"{type(exc).__name__}: {exc}")
                    continue
                self._cache.put(key, maps)
            if kind == WANTED:
                self.mapped.emit(key, maps)


class LayerMapper(QObject):
    """GUI-thread handle. ``mapped(key, LayerMaps)`` answers `want`; ``jobDone(tag, value, error)`` answers
    `submit`. Keys end with (layer number, space, feature); what comes before identifies the explanation.

    Parameters
    ----------
    cache_bytes : int
        Cap of the cache of mapped layers.
    parent : QObject, optional
    """

    mapped = Signal(object, object)
    failed = Signal(object, str)
    jobDone = Signal(object, object, object)

    def __init__(self, cache_bytes: int = DEFAULT_CACHE_BYTES, parent: QObject | None = None):
        super().__init__(parent)
        self.cache: ResultCache[LayerMaps] = ResultCache(cache_bytes, size_of=LayerMaps.nbytes)
        self._inbox = Inbox(slots=(WANTED,), queues=(JOBS, AHEAD))
        self._worker = _MapWorker(self._inbox, self.cache)
        self._thread = WorkerThread(self._worker, "retinaview-layer-mapper", self._inbox, self)
        self._worker.mapped.connect(self.mapped)
        self._worker.failed.connect(self.failed)
        self._worker.jobDone.connect(self.jobDone)
        self._thread.start()

    def get(self, key: LayerKey) -> LayerMaps | None:
        """The cached maps of ``key``, or None (then ask with `want`)."""
        return self.cache.get(key)

    def want(
        self, key: LayerKey, ex: Any, ahead: Iterable[tuple[LayerKey, Any]] = ()
    ) -> LayerMaps | None:
        """Cached maps at once, or None and a `mapped` signal later. ``ahead``: keys to map afterwards
        (replacing the previous ones), unless already cached."""
        hit = self.cache.get(key)
        with self._inbox.lock:
            self._inbox.drain(WANTED)
            if hit is None:
                self._inbox.put(WANTED, (key, ex))
            self._inbox.replace(AHEAD, (item for item in ahead if item[0] not in self.cache))
        self._thread.poke()
        return hit

    def submit(self, tag: object, fn: Callable[[], Any]) -> None:
        """Run ``fn()`` in the mapping thread; `jobDone` carries its value or its error."""
        self._inbox.append(JOBS, (tag, fn))
        self._thread.poke()

    def close(self) -> None:
        """Drop pending work, let a running mapping finish, stop the thread."""
        self._thread.close()
