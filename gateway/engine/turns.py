"""Serving accounts in turn: work queued per account, taken one account at a time, each account's oldest first.

A burst from one account then delays another's next item by one item at most, where a single queue in arrival
order would make it wait for the whole burst (the SFTP hand-off to intake, the zone watcher's takes).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Turns(Generic[T]):
    """Items per key, taken in turn: the oldest item of the key that waited longest since its last turn."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[T]] = {}  # in turn order: a key served goes to the back
        self._changed = threading.Condition()
        self._closed = False

    def put(self, key: str, item: T) -> None:
        with self._changed:
            self._waiting.setdefault(key, deque()).append(item)
            self._changed.notify()

    def get(self, block: bool = True) -> tuple[str, T] | None:
        """The next (key, item); None when none waits and block is False, or once closed and emptied."""
        with self._changed:
            while not self._waiting:
                if self._closed or not block:
                    return None
                self._changed.wait()
            key = next(iter(self._waiting))
            items = self._waiting.pop(key)
            item = items.popleft()
            if items:
                self._waiting[key] = items
            return key, item

    def close(self) -> None:
        """No more items: get() returns what waits, then None."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
