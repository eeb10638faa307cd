"""First come, first served access to the one Engine a node holds: one request runs, at most
``max_queue`` wait, the rest are refused at once (a robot must not pile up stale requests).

An action goal is accepted in one callback (which does not know the goal's UUID yet) and handed
over in the next: its place is *held* in the first (``Turns.hold``, so the order of arrival is
kept) and kept under the goal's UUID in the second (``GoalPlaces``) until the goal ends. A held
place that is never claimed lapses, so a goal that never runs cannot block the line.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

HOLD_S = 2.0  # a held place not claimed by then leaves the line (the goal was never handed over)


class Turns:
    def __init__(self, max_queue: int, *, hold_s: float = HOLD_S):
        self.max_queue, self.hold_s = max_queue, hold_s
        self._cond = threading.Condition()
        self._tickets = itertools.count()
        self._line: list[int] = []  # tickets in order; the first one runs
        self._unclaimed: dict[int, float] = {}  # held tickets -> when they lapse (time.monotonic)

    def take(self) -> Turn | None:
        """A place in line, or None when the line is full (running + max_queue waiting)."""
        return self._enter(None)

    def hold(self) -> Turn | None:
        """A place in line for a request that is not handed over yet: it leaves the line unless
        ``Turn.claim()`` is called within ``hold_s``. None when the line is full."""
        return self._enter(time.monotonic() + self.hold_s)

    @property
    def waiting(self) -> int:
        with self._cond:
            self._prune()
            return max(0, len(self._line) - 1)

    @property
    def busy(self) -> bool:
        with self._cond:
            self._prune()
            return bool(self._line)

    def wake(self) -> None:
        """Re-check cancel flags of waiting turns (call after setting one)."""
        with self._cond:
            self._cond.notify_all()

    def _enter(self, lapse_at: float | None) -> Turn | None:
        with self._cond:
            self._prune()
            if len(self._line) > self.max_queue:
                return None
            ticket = next(self._tickets)
            self._line.append(ticket)
            if lapse_at is not None:
                self._unclaimed[ticket] = lapse_at
            return Turn(self, ticket)

    def _prune(self) -> None:
        """Drop held places that lapsed (caller holds the lock)."""
        now = time.monotonic()
        lapsed = [ticket for ticket, at in self._unclaimed.items() if at <= now]
        for ticket in lapsed:
            del self._unclaimed[ticket]
            self._line.remove(ticket)
        if lapsed:
            self._cond.notify_all()

    def _claim(self, ticket: int) -> bool:
        with self._cond:
            self._prune()
            self._unclaimed.pop(ticket, None)
            return ticket in self._line

    def _in_line(self, ticket: int) -> bool:
        with self._cond:
            self._prune()
            return ticket in self._line

    def _wait(self, ticket: int, cancel: threading.Event | None, timeout: float | None) -> bool:
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._prune()
                if self._line and self._line[0] == ticket:
                    return True
                if (cancel is not None and cancel.is_set()) or ticket not in self._line:
                    return False
                now = time.monotonic()
                if end is not None and now >= end:
                    return False
                # wake up when asked to, at the timeout, or when a held place ahead may lapse
                limits = [at - now for at in self._unclaimed.values()] + ([end - now] if end is not None else [])
                self._cond.wait(min(limits) if limits else None)

    def _leave(self, ticket: int) -> None:
        with self._cond:
            self._unclaimed.pop(ticket, None)
            if ticket in self._line:
                self._line.remove(ticket)
                self._cond.notify_all()


class Turn:
    def __init__(self, turns: Turns, ticket: int):
        self._turns, self.ticket = turns, ticket

    def wait(self, cancel: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Block until it is this turn (True), or ``cancel`` is set / ``timeout`` passes (False)."""
        return self._turns._wait(self.ticket, cancel, timeout)

    def claim(self) -> bool:
        """Keep a held place for good: True, or False when it already lapsed (the place is gone)."""
        return self._turns._claim(self.ticket)

    @property
    def in_line(self) -> bool:
        """Still in line: not done, and not a held place that lapsed."""
        return self._turns._in_line(self.ticket)

    def done(self) -> None:
        """Leave the line (idempotent)."""
        self._turns._leave(self.ticket)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.done()


class GoalPlaces:
    """The cancel flag and place in line of each accepted action goal, keyed by its UUID (object
    ids are reused), from acceptance until the goal ends. Every path gives the place back: the
    run releases it, a cancel before the run or ``cancel_all`` releases it at once, and a held
    place whose goal is never handed over lapses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offered: list[tuple[object, Turn]] = []  # (goal request, held place) until its goal is accepted
        self._cancels: dict[bytes, threading.Event] = {}
        self._places: dict[bytes, Turn] = {}  # goals accepted but not started yet
        self._running: set[bytes] = set()

    def offer(self, request: object, turn: Turn) -> None:
        """The server is accepting the goal ``request`` with the held place ``turn`` (the goal
        callback, which has no UUID)."""
        with self._lock:
            self._offered = [(r, t) for r, t in self._offered if t.in_line] + [(request, turn)]

    def accept(self, goal_id: bytes, request: object) -> None:
        """The goal was accepted as ``goal_id``: its held place (found by the very ``request``
        object offered) is kept under that UUID. A goal without one gets a place when it runs."""
        with self._lock:
            index = next((i for i, (r, _) in enumerate(self._offered) if r is request), None)
            turn = self._offered.pop(index)[1] if index is not None else None
            cancel = self._cancels.setdefault(goal_id, threading.Event())
            if turn is not None and not cancel.is_set() and turn.claim():
                self._places[goal_id], turn = turn, None
        if turn is not None:
            turn.done()  # lapsed, or cancelled before it was accepted

    def start(self, goal_id: bytes) -> tuple[threading.Event, Turn | None]:
        """The goal's cancel flag and its place, which the caller now owns (and must release)."""
        with self._lock:
            self._running.add(goal_id)
            return self._cancels.setdefault(goal_id, threading.Event()), self._places.pop(goal_id, None)

    def cancel(self, goal_id: bytes) -> None:
        """Set the goal's cancel flag and give back its place if it has not started."""
        with self._lock:
            self._cancels.setdefault(goal_id, threading.Event()).set()
            turn = self._places.pop(goal_id, None)
        if turn is not None:
            turn.done()

    def end(self, goal_id: bytes) -> None:
        """Forget a goal that reached its final state."""
        with self._lock:
            self._cancels.pop(goal_id, None)
            self._running.discard(goal_id)
            turn = self._places.pop(goal_id, None)
        if turn is not None:
            turn.done()

    def cancel_all(self) -> None:
        """Cancel every goal; those that have not started are forgotten with their places."""
        with self._lock:
            for cancel in self._cancels.values():
                cancel.set()
            turns = list(self._places.values()) + [t for _, t in self._offered]
            self._places.clear()
            self._offered.clear()
            self._cancels = {k: v for k, v in self._cancels.items() if k in self._running}
        for turn in turns:
            turn.done()

    def __len__(self) -> int:
        """Goals accepted and not ended yet."""
        with self._lock:
            return len(self._cancels)
