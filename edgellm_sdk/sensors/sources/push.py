"""PushSource: a Source the caller feeds (a ROS 2 callback, a BLE handler, a test) instead of a reader thread.

    source = PushSource("robot")
    source.put("greenhouse", {"temp_c": 24.1}, unit={"temp_c": "°C"})   # from any thread
    SensorPipeline(source, narrator).run()                               # the consumer, as for any source

Every put() is counted like a received line: a reading, skipped (no values at all), or
malformed["not_finite"] (only NaN / inf values). NaN / inf values are never queued: a put with
some finite values queues those and drops the others. The queue's drop policy applies
(default oldest; block makes put() wait for room). close() ends every consumer; a put()
after close() raises SensorError.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from ...errors import SensorError
from ..reading import Reading
from .base import DEFAULT_QUEUE_SIZE, Source
from .queue import DropPolicy


class PushSource(Source):
    kind = "push"

    def __init__(
        self, name: str = "push", *, url: str = "", queue_size: int = DEFAULT_QUEUE_SIZE, drop: DropPolicy = "oldest"
    ):
        super().__init__(name, url=url, queue_size=queue_size, drop=drop)

    def put(
        self,
        source: str,
        values: Mapping[str, float],
        *,
        timestamp: float | None = None,
        unit: Mapping[str, str] | None = None,
    ) -> bool:
        """Queue a Reading of ``source`` (timestamp: epoch seconds, default now). True when it was
        queued and the queue dropped nothing; False when it carried no finite value or a reading was dropped."""
        if self.closed:
            raise SensorError(f"push source {self.name!r} is closed: put() after close()")
        if not isinstance(source, str) or not source:
            raise SensorError(
                f"push source {self.name!r}: the reading's source must be a non-empty name, got {source!r}"
            )
        if not isinstance(values, Mapping):
            raise SensorError(
                f"push source {self.name!r}: values must be a mapping channel -> number, got {type(values).__name__}"
            )
        if timestamp is not None and not math.isfinite(timestamp):
            raise SensorError(f"push source {self.name!r}: timestamp {timestamp!r} is not a finite number")
        finite = {}
        for channel, value in values.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SensorError(f"push source {self.name!r}: {source}/{channel} = {value!r} is not a number")
            if math.isfinite(value):
                finite[str(channel)] = float(value)
        self._count_line()
        if not finite:
            if values:
                self._count_malformed("not_finite")
            else:
                with self._counts_lock:
                    self._skipped += 1
            return False
        units = {c: u for c, u in (unit or {}).items() if c in finite and u}
        reading = Reading(source, finite, time.time() if timestamp is None else float(timestamp), units)
        with self._counts_lock:
            self._readings += 1
        return self._queue.put(reading)

    def _start(self) -> None:  # no reader thread: callers put()
        pass
