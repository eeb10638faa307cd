"""FileSource: replay a recorded log (CSV with a timestamp column, or JSON / key=value lines
with a timestamp field) with its recorded timestamps.

rate=1 replays at the recorded speed, rate=N N times faster, rate=0 as fast as the consumer
takes readings. The queue blocks by default here (drop=block): a log has no deadline to miss,
so dropping recorded readings would only lose data. Iteration ends with the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .base import Source
from .parsing import MAX_LINE_BYTES, LineParser


class FileSource(Source):
    kind = "file"

    def __init__(
        self, path: str | Path, parser: LineParser, *, rate: float = 1.0, name: str | None = None, **queue_options: Any
    ):
        self.path = Path(path)
        super().__init__(name or self.path.stem, **queue_options)
        self.parser, self.rate = parser, rate

    def _run(self) -> None:
        first_recorded: float | None = None  # the first timestamp of the log, and when it was replayed
        first_wall = 0.0
        with open(self.path, "rb") as log_file:
            while not self._closed.is_set():
                raw = log_file.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    return
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    while raw and not raw.endswith(b"\n"):  # skip the rest of the over-long line
                        raw = log_file.readline(MAX_LINE_BYTES + 1)
                    self._count_line()
                    self._count_malformed("line_too_long")
                    continue
                parsed = self._parse_line(raw, self.parser)
                if parsed is None:
                    continue
                recorded = parsed.timestamp
                if self.rate > 0 and recorded is not None:
                    if first_recorded is None:
                        first_recorded, first_wall = recorded, time.monotonic()
                    delay = first_wall + (recorded - first_recorded) / self.rate - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        return
                self._emit(parsed)
