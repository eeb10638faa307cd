"""First come, first served access to the one Engine a node holds: one request runs, at most
``max_queue`` wait, the rest are refused at once (a robot must not pile up stale requests)."""

from __future__ import annotations

import itertools
import threading

from typing_extensions import Self


class Turns:
    def __init__(self, max_queue: int):
        self.max_queue = max_queue
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._line: list[int] = []  # tickets in order; the first one runs

    def take(self) -> Turn | None:
        """A place in line, or None when the line is full (running + max_queue waiting)."""
        with self._cond:
            if len(self._line) > self.max_queue:
                return None
            ticket = next(self._tickets)
            self._line.append(ticket)
            return Turn(self, ticket)

    @property
    def waiting(self) -> int:
        with self._cond:
            return max(0, len(self._line) - 1)

    @property
    def busy(self) -> bool:
        with self._cond:
            return bool(self._line)

    def _wait(self, ticket: int, cancel: threading.Event | None, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: self._line[0] == ticket or (cancel is not None and cancel.is_set()), timeout
            ) and self._line[0] == ticket

    def _leave(self, ticket: int) -> None:
        with self._cond:
            if ticket in self._line:
                self._line.remove(ticket)
                self._cond.notify_all()

    def wake(self) -> None:
        """Re-check cancel flags of waiting turns (call after setting one)."""
        with self._cond:
            self._cond.notify_all()


class Turn:
    def __init__(self, turns: Turns, ticket: int):
        self._turns, self.ticket = turns, ticket

    def wait(self, cancel: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Block until it is this turn (True), or ``cancel`` is set / ``timeout`` passes (False)."""
        return self._turns._wait(self.ticket, cancel, timeout)

    def done(self) -> None:
        self._turns._leave(self.ticket)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.done()
