"""BoundedQueue: the hand-off between a source's reader thread and its consumer.

A sensor never waits for its consumer: when the queue is full, a reading is dropped and
counted, by policy:

    oldest   evict the oldest queued reading, keep the new one (default: the freshest data wins)
    newest   discard the incoming reading, keep what is queued
    block    the reader waits for room (file replay: a recorded log has no deadline to miss)
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
DropPolicy = Literal["oldest", "newest", "block"]
DROP_POLICIES: tuple[str, ...] = ("oldest", "newest", "block")
_WAIT_SLICE = 0.25  # every wait is sliced so that close() is noticed quickly


class BoundedQueue(Generic[T]):
    def __init__(self, maxsize: int, drop: DropPolicy = "oldest"):
        if maxsize < 1:
            raise ValueError(f"queue size must be >= 1, got {maxsize}")
        if drop not in DROP_POLICIES:
            raise ValueError(f"drop policy must be one of {DROP_POLICIES}, got {drop!r}")
        self.maxsize, self.drop = maxsize, drop
        self.dropped = 0
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._finished = False  # no more puts: get() drains what is left, then returns None
        self._closed = False  # get() returns None at once

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> bool:
        """Queue item; True when nothing was dropped (False: a reading was dropped, or the queue is closed)."""
        with self._lock:
            if self._closed or self._finished:
                return False
            if len(self._items) >= self.maxsize:
                if self.drop == "oldest":
                    self._items.popleft()
                    self.dropped += 1
                    self._items.append(item)
                    self._not_empty.notify()
                    return False
                if self.drop == "newest":
                    self.dropped += 1
                    return False
                while len(self._items) >= self.maxsize and not self._closed:
                    self._not_full.wait(_WAIT_SLICE)
                if self._closed:
                    return False
            self._items.append(item)
            self._not_empty.notify()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The next item; None on timeout, once closed, or once finished and drained."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._items:
                if self._closed or self._finished:
                    return None
                if deadline is None:
                    self._not_empty.wait(_WAIT_SLICE)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._not_empty.wait(min(remaining, _WAIT_SLICE))
            if self._closed:
                return None
            item = self._items.popleft()
            if self.drop == "block":
                self._not_full.notify()
            return item

    @property
    def exhausted(self) -> bool:
        """True once closed, or finished and drained: get() will only return None from now on."""
        with self._lock:
            return self._closed or (self._finished and not self._items)

    def finish(self) -> None:
        """The producer is done: consumers drain the queue, then get None."""
        with self._lock:
            self._finished = True
            self._not_empty.notify_all()

    def close(self) -> None:
        """Stop now: queued items are discarded, every waiter wakes up."""
        with self._lock:
            self._closed = True
            self._items.clear()
            self._not_empty.notify_all()
            self._not_full.notify_all()
