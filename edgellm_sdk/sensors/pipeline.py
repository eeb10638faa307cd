"""SensorPipeline: a source -> facts -> periodic status and immediate alerts (the `edgellm sensors` loop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from .facts import FactBook
from .narrator import Narration, Narrator


@dataclass
class PipelineStats:
    readings: int = 0
    statuses: int = 0
    alerts: int = 0
    template_fallbacks: int = 0


class SensorPipeline:
    """Feeds every Reading of ``source`` into ``facts``; narrates a status every ``every_s``
    seconds (and once at the end) and an alert as soon as an alert-severity event happens."""

    def __init__(
        self,
        source,
        narrator: Narrator,
        facts: FactBook | None = None,
        *,
        every_s: float = 60.0,
        on_status: Callable[[Narration], None] = print,
        on_alert: Callable[[Narration], None] = print,
        poll_s: float = 0.2,
    ):
        if every_s <= 0:
            raise ValueError(f"every_s must be > 0, got {every_s}")
        self.source, self.narrator, self.facts = source, narrator, facts or FactBook()
        self.every_s, self.poll_s = every_s, poll_s
        self.on_status, self.on_alert = on_status, on_alert
        self.stats = PipelineStats()

    def run(self, *, duration_s: float | None = None, cancel: threading.Event | None = None) -> PipelineStats:
        """Until the source ends or closes, ``duration_s`` passes, or ``cancel`` is set."""
        start = time.monotonic()
        next_status = start + self.every_s
        while not (cancel is not None and cancel.is_set()):
            now = time.monotonic()
            if duration_s is not None and now - start >= duration_s:
                break
            reading = self.source.get(timeout=min(self.poll_s, max(0.0, next_status - now)) or 0.01)
            if reading is None and self.source.exhausted:
                break
            events = self.facts.add(reading) if reading is not None else []
            self.stats.readings += reading is not None
            events += self.facts.check()
            alerts = tuple(e for e in events if e.severity == "alert")
            if alerts:
                self._emit(self.narrator.narrate(self.facts.facts(), events=alerts, cancel=cancel), self.on_alert)
                self.stats.alerts += 1
            if time.monotonic() >= next_status:
                self._emit(self.narrator.narrate(self.facts.facts(), cancel=cancel), self.on_status)
                self.stats.statuses += 1
                next_status = time.monotonic() + self.every_s
        if self.stats.readings:
            self._emit(self.narrator.narrate(self.facts.facts(), cancel=cancel), self.on_status)
            self.stats.statuses += 1
        return self.stats

    def _emit(self, narration: Narration, sink: Callable[[Narration], None]) -> None:
        self.stats.template_fallbacks += narration.origin == "template"
        sink(narration)
