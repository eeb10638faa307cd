"""Microphone: a PortAudio input stream as a bounded queue of mono AudioChunks (``sounddevice``).

Every wait on the driver has a timeout: a stuck or unplugged device raises ``SpeechError``
instead of hanging the reader.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edgellm_sdk.errors import SpeechError
from edgellm_sdk.speech.audio import StreamResampler, to_mono
from edgellm_sdk.speech.portaudio import AudioDevice, import_sounddevice, resolve_device, run_with_timeout
from edgellm_sdk.speech.types import AudioChunk


class Microphone:
    """Records mono float32 AudioChunks at ``sample_rate`` from an input device.

    A PortAudio callback pushes blocks of ``block_s`` seconds into a queue holding at most
    ``max_queue_s`` seconds; when the reader falls behind the oldest blocks are dropped and
    counted in ``overflows``. If the device cannot run at ``sample_rate`` it is opened at its
    default rate and the audio is resampled. ``read`` raises SpeechError when the device stops
    delivering audio (unplugged, driver error) for ``stall_s`` seconds, so it never hangs."""

    def __init__(
        self,
        device: str | int | AudioDevice | None = None,
        sample_rate: int = 16000,
        block_s: float = 0.05,
        max_queue_s: float = 10.0,
        stall_s: float = 2.0,
        close_timeout_s: float = 2.0,
    ):
        if sample_rate <= 0 or block_s <= 0 or max_queue_s <= 0 or stall_s <= 0:
            raise ValueError("sample_rate, block_s, max_queue_s and stall_s must be > 0")
        sd = import_sounddevice()
        self.device = resolve_device(device, "input")
        self.sample_rate = int(sample_rate)
        self.block_s = float(block_s)
        self.stall_s = max(float(stall_s), 4 * self.block_s)
        self.close_timeout_s = float(close_timeout_s)
        self.overflows = 0  # blocks dropped from the queue + PortAudio input overflows
        self._queue: collections.deque[tuple[np.ndarray, int]] = collections.deque(maxlen=None)
        self._max_blocks = max(1, math.ceil(max_queue_s / block_s))
        self._cond = threading.Condition()
        self._frames = 0  # device frames delivered so far
        self._last_callback = time.monotonic()
        self._finished = False  # PortAudio ended the stream by itself
        self._closed = False
        self._error: str | None = None

        channels = 1 if self.device.max_input_channels >= 1 else 0
        if channels == 0:
            raise SpeechError(f"audio device {self.device} has no input channels")
        self.device_rate = self.sample_rate
        try:
            sd.check_input_settings(
                device=self.device.index, samplerate=self.sample_rate, channels=channels, dtype="float32"
            )
        except Exception:  # noqa: BLE001 - any rejection: fall back to the device rate
            self.device_rate = round(self.device.default_samplerate)
        try:
            self._stream = self._open(sd, channels)
        except sd.PortAudioError as first:
            if self.device_rate == round(self.device.default_samplerate):
                raise SpeechError(f"cannot open audio input {self.device}: {first}") from first
            self.device_rate = round(self.device.default_samplerate)
            try:
                self._stream = self._open(sd, channels)
            except sd.PortAudioError as exc:
                raise SpeechError(f"cannot open audio input {self.device}: {exc}") from exc
        self._resampler = (
            StreamResampler(self.device_rate, self.sample_rate) if self.device_rate != self.sample_rate else None
        )
        self._out_frames = 0
        try:
            self._stream.start()
        except sd.PortAudioError as exc:
            self.close()
            raise SpeechError(f"cannot start audio input {self.device}: {exc}") from exc
        self._last_callback = time.monotonic()

    def _open(self, sd: Any, channels: int) -> Any:
        return sd.InputStream(
            device=self.device.index,
            samplerate=self.device_rate,
            channels=channels,
            dtype="float32",
            blocksize=max(1, round(self.block_s * self.device_rate)),
            callback=self._callback,
            finished_callback=self._on_finished,
        )

    # PortAudio's thread ------------------------------------------------------------------
    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        mono = to_mono(indata).astype(np.float32, copy=True)
        with self._cond:
            if status and getattr(status, "input_overflow", False):
                self.overflows += 1
            self._queue.append((mono, self._frames))
            self._frames += frames
            while len(self._queue) > self._max_blocks:
                self._queue.popleft()
                self.overflows += 1
            self._last_callback = time.monotonic()
            self._cond.notify_all()

    def _on_finished(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    # reader side -------------------------------------------------------------------------
    def _device_lost(self) -> str | None:
        if self._finished:
            return f"audio input device {self.device.name!r} stopped (disconnected or driver error)"
        if time.monotonic() - self._last_callback > self.stall_s:
            return (
                f"audio input device {self.device.name!r} delivered no audio for "
                f"{self.stall_s:g} s (disconnected or stuck)"
            )
        return None

    def _pop(self, timeout: float | None) -> AudioChunk | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._queue:
                    block, start = self._queue.popleft()
                    break
                if self._closed:
                    return None
                if self._error is None:
                    self._error = self._device_lost()
                if self._error is not None:
                    raise SpeechError(self._error)
                wait = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
                if wait <= 0:
                    return None
                self._cond.wait(wait)
        if self._resampler is None:
            return AudioChunk(block, self.sample_rate, start / self.device_rate)
        out = self._resampler.process(block)
        chunk = AudioChunk(out, self.sample_rate, self._out_frames / self.sample_rate)
        self._out_frames += len(out)
        return chunk

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        """The next chunk; None if none arrived within ``timeout`` seconds (None: wait).
        SpeechError if the device is gone or the microphone is closed and drained."""
        chunk = self._pop(timeout)
        if chunk is None and self._closed:
            raise SpeechError("the Microphone is closed")
        return chunk

    def __iter__(self) -> Iterator[AudioChunk]:
        """Chunks until close() (from another thread); SpeechError if the device is lost."""
        while True:
            chunk = self._pop(None)
            if chunk is None:
                return
            yield chunk

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self, timeout: float | None = None) -> bool:
        """Stop recording. True if PortAudio let go within ``timeout`` (default
        ``close_timeout_s``); a stuck driver is abandoned in a daemon thread."""
        with self._cond:
            if self._closed:
                return True
            self._closed = True
            self._cond.notify_all()
        stream = getattr(self, "_stream", None)
        if stream is None:
            return True

        def shutdown() -> None:
            try:
                stream.abort()
            finally:
                stream.close()

        return run_with_timeout(shutdown, self.close_timeout_s if timeout is None else timeout)

    def __enter__(self) -> Microphone:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Microphone({self.device.name!r}, {self.sample_rate} Hz, device at {self.device_rate} Hz)"
