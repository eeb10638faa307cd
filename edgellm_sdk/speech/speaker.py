"""Speaker: blocking, cancellable playback of AudioChunks over PortAudio (``sounddevice``).

One play() is one output stream. The chunks are pulled by a helper thread, so a slow source
(TTS waiting for the model's next sentence) never starves the device: while nothing is ready
the stream is kept fed with silence instead of underrunning, and every sample of the source is
played. Stream start-up and shut-down are framed with silence (see ``Speaker``).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import numpy as np

from edgellm_sdk.errors import SpeechError
from edgellm_sdk.speech.audio import StreamResampler
from edgellm_sdk.speech.portaudio import AudioDevice, import_sounddevice, resolve_device, run_with_timeout
from edgellm_sdk.speech.types import AudioChunk

_END = object()


class _Prefetch:
    """Iterates ``blocks`` in a daemon thread into a small queue; errors are re-raised by ``get``."""

    def __init__(self, blocks: Iterator[np.ndarray], depth: int = 8):
        self._queue: queue.Queue = queue.Queue(depth)
        self._quit = threading.Event()
        threading.Thread(target=self._run, args=(blocks,), name="edgellm-speaker-source", daemon=True).start()

    def _run(self, blocks: Iterator[np.ndarray]) -> None:
        try:
            for block in blocks:
                if not self._put(block):
                    return
            self._put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the playing thread
            self._put(exc)

    def _put(self, item: object) -> bool:
        while not self._quit.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def get(self, timeout: float) -> object | None:
        """The next block, ``_END``, or None when nothing is ready within ``timeout``."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._quit.set()


class Speaker:
    """Plays AudioChunks on an output device, resampled to the device rate (``sample_rate``, by
    default the device's default rate). ``play`` blocks until the audio has been played, or
    returns early (False) within one block when ``cancel`` is set or ``stop()`` is called.

    Silence frames each stream: ``lead_in_s`` before the audio (a starting PulseAudio / ALSA-plugin
    stream can drop its first ~0.1 s) and ``tail_s`` after it (stopping returns once PortAudio's
    own buffer is out while the sound server still holds up to ~0.2 s, which closing discards).
    Play a whole reply in one call — a generator is fine — to pay for this once.

    ``on_output(samples, sample_rate)`` sees every block as it is written to the device, silence
    included (the echo canceller's reference: ``Speaker(on_output=aec.play)``)."""

    def __init__(
        self,
        device: str | int | AudioDevice | None = None,
        sample_rate: int | None = None,
        block_s: float = 0.05,
        timeout_s: float = 2.0,
        lead_in_s: float = 0.1,
        tail_s: float = 0.25,
        on_output: Callable[[np.ndarray, int], None] | None = None,
    ):
        if block_s <= 0 or timeout_s <= 0:
            raise ValueError("block_s and timeout_s must be > 0")
        if lead_in_s < 0 or tail_s < 0:
            raise ValueError("lead_in_s and tail_s must be >= 0")
        self._sd = import_sounddevice()
        self.device = resolve_device(device, "output")
        if self.device.max_output_channels < 1:
            raise SpeechError(f"audio device {self.device} has no output channels")
        self.sample_rate = int(sample_rate or round(self.device.default_samplerate))
        self.block_s = float(block_s)
        self.timeout_s = float(timeout_s)
        self.lead_in_s, self.tail_s = float(lead_in_s), float(tail_s)
        self.on_output = on_output
        self.underruns_filled = 0  # blocks of silence written because the source was late
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one play() at a time

    def _open(self) -> Any:
        sd = self._sd
        try:
            stream = sd.OutputStream(
                device=self.device.index,
                samplerate=self.sample_rate,
                channels=1,
                dtype="float32",
                blocksize=max(1, round(self.block_s * self.sample_rate)),
            )
            stream.start()
        except sd.PortAudioError as exc:
            raise SpeechError(f"cannot open audio output {self.device} at {self.sample_rate} Hz: {exc}") from exc
        return stream

    def _silence(self, seconds: float) -> np.ndarray:
        return np.zeros(round(seconds * self.sample_rate), np.float32)

    def _blocks(self, chunks: Iterable[AudioChunk]) -> Iterator[np.ndarray]:
        resampler: StreamResampler | None = None
        rate = None
        yield self._silence(self.lead_in_s)
        for chunk in chunks:
            if chunk.sample_rate != rate:
                if resampler is not None:
                    yield resampler.process(np.zeros(0, np.float32), final=True)
                rate = chunk.sample_rate
                resampler = StreamResampler(rate, self.sample_rate) if rate != self.sample_rate else None
            samples = np.asarray(chunk.samples, np.float32)
            yield resampler.process(samples) if resampler is not None else samples
        if resampler is not None:
            yield resampler.process(np.zeros(0, np.float32), final=True)
        yield self._silence(self.tail_s)

    def play(self, chunks: Iterable[AudioChunk], cancel: threading.Event | None = None) -> bool:
        """Play ``chunks`` to the end (True) or until ``cancel`` / ``stop()`` (False).
        SpeechError if the device stops accepting audio for ``timeout_s`` seconds."""
        with self._lock:
            self._stop.clear()
            stream = self._open()
            source = _Prefetch(self._blocks(chunks))
            completed = False
            try:
                completed = self._feed(stream, source, cancel)
                if completed:  # the tail silence is queued; let PortAudio's buffer play out
                    drain = stream.latency + self.block_s + self.timeout_s
                    if not run_with_timeout(stream.stop, drain):
                        raise SpeechError(
                            f"audio output {self.device.name!r} did not finish playing "
                            f"within {drain:.1f} s (device stuck)"
                        )
                return completed
            finally:
                source.close()

                def shutdown() -> None:
                    try:
                        if not completed:
                            stream.abort()
                    finally:
                        stream.close()

                run_with_timeout(shutdown, self.timeout_s)

    def _feed(self, stream: Any, source: _Prefetch, cancel: threading.Event | None) -> bool:
        block = max(1, round(self.block_s * self.sample_rate))
        poll = min(0.01, self.block_s / 4)
        capacity = 0  # the most frames the device buffer was ever able to take (= its size)
        stalled_since: float | None = None
        samples: np.ndarray | None = None
        pos = 0

        def cancelled() -> bool:
            return self._stop.is_set() or (cancel is not None and cancel.is_set())

        while not cancelled():
            try:
                free = stream.write_available
            except self._sd.PortAudioError as exc:
                raise SpeechError(f"audio output device {self.device.name!r} failed: {exc}") from exc
            if not stream.active:
                raise SpeechError(f"audio output device {self.device.name!r} stopped (disconnected or driver error)")
            capacity = max(capacity, free)
            if samples is None:
                item = source.get(poll)
                if item is _END:
                    return True
                if item is None:  # the source is late: keep the device fed rather than underrun
                    if free > 0 and capacity - free < block:
                        self._write(stream, np.zeros(min(free, block), np.float32))
                        self.underruns_filled += 1
                    continue
                samples, pos = cast(np.ndarray, item), 0
            if free <= 0:
                now = time.monotonic()
                stalled_since = stalled_since or now
                if now - stalled_since > self.timeout_s:
                    raise SpeechError(
                        f"audio output device {self.device.name!r} accepted no audio "
                        f"for {self.timeout_s:g} s (disconnected or stuck)"
                    )
                (cancel or self._stop).wait(poll)
                continue
            stalled_since = None
            n = min(free, block, len(samples) - pos)
            self._write(stream, samples[pos : pos + n])
            pos += n
            if pos >= len(samples):
                samples = None
        return False

    def _write(self, stream: Any, samples: np.ndarray) -> None:
        try:
            stream.write(np.ascontiguousarray(samples))
        except self._sd.PortAudioError as exc:
            raise SpeechError(f"audio output device {self.device.name!r} failed: {exc}") from exc
        if self.on_output is not None:
            self.on_output(samples, self.sample_rate)

    def stop(self) -> None:
        """Make a running play() return within one block (from any thread)."""
        self._stop.set()

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Speaker:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Speaker({self.device.name!r}, {self.sample_rate} Hz)"
