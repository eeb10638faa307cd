"""Source: a stream of Readings filled by a background reader, read by get() or iteration.

Every line (or MQTT message) a source receives ends up counted in exactly one place of
SourceStats: a reading, a skipped line (blank, a CSV header, an NMEA sentence without a
position) or malformed[reason]. Readings the bounded queue had to discard are counted in
`dropped` (so a consumer receives readings - dropped of them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..reading import Reading
from .parsing import LineParser, Malformed, ParsedLine
from .queue import BoundedQueue, DropPolicy

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger("edgellm_sdk.sensors")

DEFAULT_QUEUE_SIZE = 1024
SourceT = TypeVar("SourceT", bound="Source")


@dataclass(frozen=True)
class SourceStats:
    lines: int = 0  # lines (serial, file) or messages (MQTT) received
    readings: int = 0  # Readings produced (queued, or dropped later by the queue policy)
    skipped: int = 0  # lines that carry no reading on purpose: blank, CSV header, NMEA GSV...
    dropped: int = 0  # Readings discarded because the queue was full
    reconnects: int = 0  # device re-opened / broker re-connected after a loss
    malformed: dict[str, int] = field(default_factory=dict)  # reason -> lines thrown away

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


class Source:
    """Base of every sensor source. Subclasses implement _run() (a reader thread is started for
    it) or override _start()/_stop() when a library owns the thread (paho-mqtt)."""

    kind = "source"

    def __init__(self, name: str, *, url: str = "", queue_size: int = DEFAULT_QUEUE_SIZE, drop: DropPolicy = "oldest"):
        self.name, self.url = name, url
        self.error: BaseException | None = None  # what stopped the reader, if it crashed
        self._queue: BoundedQueue[Reading] = BoundedQueue(queue_size, drop)
        self._closed = threading.Event()
        self._close_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lines = self._readings = self._skipped = self._reconnects = 0
        self._malformed: dict[str, int] = {}

    # ---- consumer side --------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> Reading | None:
        """The next Reading; None on timeout, after close(), or when a file replay has ended.
        timeout=None waits until one of those."""
        return self._queue.get(timeout)

    def __iter__(self) -> Iterator[Reading]:
        while (reading := self._queue.get()) is not None:
            yield reading

    @property
    def stats(self) -> SourceStats:
        with self._counts_lock:
            return SourceStats(
                self._lines, self._readings, self._skipped, self._queue.dropped, self._reconnects, dict(self._malformed)
            )

    @property
    def exhausted(self) -> bool:
        """True when no Reading will come any more (closed, or a replay or reader has ended)."""
        return self._queue.exhausted

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the reader (joined for at most `timeout` s) and wake any consumer. Idempotent; a
        second caller returns once the first one is done."""
        with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.close()
            self._stop(timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.url!r}{' closed' if self.closed else ''}>"

    # ---- reader side ----------------------------------------------------------------------

    def start(self) -> Self:
        self._start()
        return self

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._guarded_run, name=f"edgellm-{self.kind}-{self.name}", daemon=True)
        self._thread.start()

    def _stop(self, timeout: float) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: reader thread still running %.1f s after close()", self.name, timeout)

    def _run(self) -> None:
        raise NotImplementedError

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug must end the stream visibly, not hang the consumer
            self.error = exc
            log.exception("%s: reader stopped", self.name)
        finally:
            self._queue.finish()

    def _parse_line(self, raw: bytes, parser: LineParser) -> ParsedLine | None:
        """Count one raw line and parse it; None when it is blank, skipped or malformed."""
        with self._counts_lock:
            self._lines += 1
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self._count_malformed("not_utf8")
            return None
        try:
            parsed = parser.parse(line) if line else None
        except Malformed as bad:
            self._count_malformed(bad.reason)
            return None
        except Exception:  # a parser bug on odd input: count it, keep reading
            log.debug("%s: parser failed on %r", self.name, line[:80], exc_info=True)
            self._count_malformed("parser_error")
            return None
        if parsed is None:
            with self._counts_lock:
                self._skipped += 1
        return parsed

    def _count_line(self) -> None:
        with self._counts_lock:
            self._lines += 1

    def _count_malformed(self, reason: str, count: int = 1) -> None:
        with self._counts_lock:
            self._malformed[reason] = self._malformed.get(reason, 0) + count

    def _count_reconnect(self) -> None:
        with self._counts_lock:
            self._reconnects += 1

    def _emit(self, parsed: ParsedLine, *, timestamp: float | None = None, source: str | None = None) -> None:
        """Queue a Reading: the line's own timestamp, else `timestamp`, else now."""
        if parsed.timestamp is not None:
            timestamp = parsed.timestamp
        reading = Reading(
            source or self.name,
            parsed.values,
            time.time() if timestamp is None else timestamp,
            dict(parsed.unit) if parsed.unit else {},
        )
        with self._counts_lock:
            self._readings += 1
        self._queue.put(reading)
