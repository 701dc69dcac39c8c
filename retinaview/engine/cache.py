"""Bounded least-recently-used cache of explanation results, capped by the bytes their arrays hold."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_BYTES = 128 * 1024 * 1024


class ResultCache(Generic[T]):
    """LRU mapping key -> value; inserting evicts the oldest entries until the total size fits ``max_bytes``.

    ``size_of(value)`` gives a value's size in bytes. A value larger than the whole cap is not stored.
    Thread-safe: the worker writes, tests and the GUI may read.
    """

    def __init__(
        self,
        max_bytes: int = DEFAULT_MAX_BYTES,
        size_of: Callable[[T], int] = len,  # type: ignore[assignment]
    ):
        self.max_bytes = int(max_bytes)
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[T, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: T) -> None:
        size = int(self._size_of(value))
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes
