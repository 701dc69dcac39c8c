"""The worker-thread pattern the engine and the layer mapper share: an inbox that does not queue stale work,
and a thread that sleeps until poked.

The GUI thread writes what it wants into an `Inbox` under its lock and pokes the worker (a queued signal); the
worker's ``pump`` slot takes work until the inbox is empty and returns to its thread's event loop. An inbox
has *slots*, which hold the newest item per key (asking again replaces what was not started yet: flipping
through 50 images runs at most two explanations), and *queues*, which keep every item in order (background
jobs such as scoring a folder). Which item the worker takes next is its own policy, written with the inbox's
primitives inside one ``with inbox.lock:`` block.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

# Threads started by a `WorkerThread` and not yet closed, in this process (the tests' leak check).
_RUNNING: set[QThread] = set()


class Inbox:
    """Work handed from the GUI thread to one worker thread: newest-wins slots and FIFO queues.

    Parameters
    ----------
    slots : iterable of str
        Names of the newest-wins slots (e.g. ``"model"``, ``"explain"``).
    queues : iterable of str
        Names of the FIFO queues (e.g. ``"scores"``).

    Notes
    -----
    Every method takes the (re-entrant) lock, so a worker can make one decision over several slots inside
    ``with inbox.lock:``. ``closing`` set means: take nothing more.
    """

    def __init__(self, slots: Iterable[str] = (), queues: Iterable[str] = ()) -> None:
        self.lock = threading.RLock()
        self.closing = False
        self._slots: dict[str, OrderedDict[Hashable, Any]] = {n: OrderedDict() for n in slots}
        self._queues: dict[str, deque[Any]] = {n: deque() for n in queues}

    def put(self, slot: str, item: Any, key: Hashable = None) -> None:
        """Put ``item`` into ``slot`` under ``key``, replacing the item of that key not taken yet."""
        with self.lock:
            self._slots[slot][key] = item

    def take(self, slot: str, prefer: Hashable = None) -> tuple[Hashable, Any] | None:
        """Remove and return ``(key, item)`` from ``slot``: ``prefer``'s item if there, else the oldest key's."""
        with self.lock:
            items = self._slots[slot]
            if not items:
                return None
            key = prefer if prefer in items else next(iter(items))
            return key, items.pop(key)

    def waiting(self, slot: str, key: Hashable = ...) -> bool:
        """Whether ``slot`` holds an item (of ``key``, when given)."""
        with self.lock:
            items = self._slots[slot]
            return bool(items) if key is ... else key in items

    def drain(self, slot: str) -> list[tuple[Hashable, Any]]:
        """Remove and return every ``(key, item)`` of ``slot``."""
        with self.lock:
            items = list(self._slots[slot].items())
            self._slots[slot].clear()
            return items

    def replace(self, queue: str, items: Iterable[Any]) -> None:
        """Replace the whole queue (a new job cancels the old one's pending items)."""
        with self.lock:
            self._queues[queue] = deque(items)

    def append(self, queue: str, item: Any) -> None:
        """Append one item to ``queue``."""
        with self.lock:
            self._queues[queue].append(item)

    def pop(self, queue: str) -> Any:
        """Remove and return the queue's first item, or None when it is empty."""
        with self.lock:
            q = self._queues[queue]
            return q.popleft() if q else None

    def queued(self, queue: str) -> int:
        """How many items ``queue`` holds."""
        with self.lock:
            return len(self._queues[queue])

    def clear(self) -> None:
        """Drop every slot's and every queue's items."""
        with self.lock:
            for items in self._slots.values():
                items.clear()
            for q in self._queues.values():
                q.clear()

    def close(self) -> None:
        """Drop all pending work and tell the worker to take nothing more."""
        with self.lock:
            self.closing = True
            self.clear()


class WorkerThread(QObject):
    """A QThread that owns ``worker`` (a QObject with a ``pump`` slot) and pokes it when there is work.

    Parameters
    ----------
    worker : QObject
        Moved to the new thread; its ``pump()`` slot runs there for every `poke`. Deleted with the thread.
    name : str
        The thread's name (shown by debuggers and profilers).
    inbox : Inbox
        The inbox the worker reads; `close` closes it first.
    parent : QObject, optional
    """

    _poke = Signal()

    def __init__(
        self, worker: QObject, name: str, inbox: Inbox, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.inbox = inbox
        self._thread = QThread()
        self._thread.setObjectName(name)
        worker.moveToThread(self._thread)
        self._poke.connect(worker.pump)  # type: ignore[attr-defined]
        self._thread.finished.connect(worker.deleteLater)

    def start(self) -> None:
        """Start the thread (the worker waits for a `poke`)."""
        self._thread.start()
        _RUNNING.add(self._thread)

    def poke(self) -> None:
        """Wake the worker: it takes work until its inbox is empty."""
        self._poke.emit()

    def close(self) -> None:
        """Drop pending work, let the running task finish, and stop the thread."""
        self.inbox.close()
        self._thread.quit()
        self._thread.wait()
        _RUNNING.discard(self._thread)


def running_threads() -> int:
    """Worker threads started and not yet closed, in this process (the tests' leak check)."""
    return sum(t.isRunning() for t in _RUNNING)
