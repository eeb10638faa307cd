"""SerialSource: lines from a serial port (USB Arduino, GPS module) or any pyserial URL (loop://).

The first open happens in start(), so a wrong path fails at once with a SensorError. After
that a lost device (read error, hang-up, its /dev path gone) is re-opened with exponential
backoff, 0.1 s doubling up to `reconnect_max`; each re-open counts in stats.reconnects. The
partial line cut by the loss is counted malformed ("partial_line").
"""

from __future__ import annotations

import logging
import os
import threading
import time
from types import ModuleType
from typing import Any

from ...errors import MissingDependency, SensorError
from .base import Source
from .parsing import CsvParser, LineFramer, LineParser

log = logging.getLogger("edgellm_sdk.sensors")

READ_TIMEOUT_S = 0.1  # every read returns at least this often, so close() is seen quickly
PATH_CHECK_S = 0.5  # how often the reader checks that the device path still exists
FIRST_BACKOFF_S = 0.1


def import_pyserial() -> ModuleType:
    try:
        import serial
    except ImportError:
        raise MissingDependency("pyserial", "serial") from None
    return serial


class SerialSource(Source):
    kind = "serial"

    def __init__(
        self,
        port: str,
        parser: LineParser,
        *,
        baud: int = 115200,
        name: str | None = None,
        reconnect_max: float = 5.0,
        **queue_options: Any,
    ):
        self._serial = import_pyserial()
        super().__init__(name or os.path.basename(port.rstrip("/")) or port, **queue_options)
        self.port, self.baud, self.parser, self.reconnect_max = port, baud, parser, reconnect_max
        self._device: Any = None  # the open serial.Serial, owned by the reader thread
        self._device_lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._device is not None

    def write(self, data: bytes) -> None:
        """Send bytes to the device (a command to the Arduino; on loop:// they come back as lines)."""
        with self._device_lock:
            if self._device is None:
                raise SensorError(f"serial port {self.port!r} is not connected (closed, or waiting for the device)")
            self._device.write(data)

    def _open(self) -> Any:
        return self._serial.serial_for_url(self.port, baudrate=self.baud, timeout=READ_TIMEOUT_S, write_timeout=1.0)

    def _start(self) -> None:
        try:
            self._device = self._open()
        except (self._serial.SerialException, OSError, ValueError) as exc:
            raise SensorError(
                f"cannot open serial port {self.port!r}: {exc}; check that the device is plugged in "
                "(ls /dev/ttyUSB* /dev/ttyACM*), the path and the baud rate, and that your user may open it "
                "(sudo usermod -aG dialout $USER)"
            ) from exc
        super()._start()

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while not self._closed.is_set():
            if self._device is None:
                try:
                    device = self._open()
                except (self._serial.SerialException, OSError, ValueError):
                    if self._closed.wait(backoff):
                        break
                    backoff = min(backoff * 2, self.reconnect_max)
                    continue
                with self._device_lock:
                    self._device = device
                backoff = FIRST_BACKOFF_S
                self._count_reconnect()
                if isinstance(self.parser, CsvParser):
                    self.parser.expect_header()
                log.info("%s: reconnected to %s", self.name, self.port)
            try:
                self._read_lines(self._device)
            except (self._serial.SerialException, OSError) as exc:
                log.info("%s: lost %s (%s); reconnecting", self.name, self.port, exc)
            finally:
                with self._device_lock:
                    device, self._device = self._device, None
                _close_quietly(device)

    def _read_lines(self, device: Any) -> None:
        """Read until close() or the device is lost (raises)."""
        framer = LineFramer()
        next_path_check = time.monotonic() + PATH_CHECK_S
        try:
            while not self._closed.is_set():
                data = device.read(device.in_waiting or 1)
                if data:
                    now = time.time()
                    lines, too_long = framer.feed(data)
                    if too_long:
                        self._count_line_too_long(too_long)
                    for raw in lines:
                        parsed = self._parse_line(raw, self.parser)
                        if parsed is not None:
                            self._emit(parsed, timestamp=now)
                if time.monotonic() > next_path_check:
                    next_path_check = time.monotonic() + PATH_CHECK_S
                    if self.port.startswith("/") and not os.path.exists(self.port):
                        raise self._serial.SerialException(f"{self.port} vanished")
        finally:
            if framer.reset().strip():
                self._count_line()
                self._count_malformed("partial_line")

    def _count_line_too_long(self, count: int) -> None:
        for _ in range(count):
            self._count_line()
        self._count_malformed("line_too_long", count)

    def _stop(self, timeout: float) -> None:
        super()._stop(timeout)
        if self._thread is None or not self._thread.is_alive():
            with self._device_lock:
                device, self._device = self._device, None
            _close_quietly(device)


def _close_quietly(device: Any) -> None:
    if device is not None:
        try:
            device.close()
        except Exception as exc:  # noqa: BLE001 - closing a vanished device may fail; nothing left to do
            log.debug("closing %s failed: %s", getattr(device, "port", device), exc)
