"""Acoustic echo cancellation: remove what the speaker plays from what the microphone hears.

    aec = EchoCanceller()                  # 16 kHz, echo paths up to tail_s long
    speaker = Speaker(on_output=aec.play)  # the reference: every sample written to the device
    clean = aec.process(mic_chunk)         # the microphone with the speaker's echo subtracted

The speaker's and microphone's buffers put the echo an unknown time after (or, with a deep
output buffer, before) the moment the reference is read; that bulk delay is measured from the
signals themselves (GCC-PHAT over the last second, ``echo_reference.py``, up to ``max_delay_s``
either way) and the reference read with that offset. A partitioned-block frequency-domain
adaptive filter (overlap-save, 16 ms blocks, per-bin normalized step) then models the room, up
to ``tail_s``. Two filters guard against double talk: a background filter adapts on every
block; the foreground filter, whose output is used, takes the background's weights only while
they cancel better, so a person talking over the speaker does not make it diverge (the
background is reset from the foreground when it drifts off). numpy only; a few percent of one
core. Linear echo only: no residual-echo suppression; clock drift is tracked by adaptation.
"""

from __future__ import annotations

import collections

import numpy as np

from .audio import StreamResampler, to_mono
from .echo_reference import ReferenceTimeline, estimate_lag
from .types import AudioChunk

BLOCK = 256  # samples per block at 16 kHz (16 ms)
ESTIMATE_WINDOW = 16000  # microphone samples per delay measurement (1 s at 16 kHz)
ESTIMATE_EVERY = 32  # blocks between measurements (~0.5 s)
MIN_PROMINENCE = 8.0  # correlation peak / its standard deviation to trust a measurement
ROOM = 1024  # filter taps wanted after the direct echo for the room's reflections (64 ms)


class EchoCanceller:
    def __init__(
        self,
        sample_rate: int = 16000,
        tail_s: float = 0.25,
        step: float = 0.8,
        max_delay_s: float = 1.0,
        max_reference_s: float = 5.0,
    ):
        if not 0 < step <= 1:
            raise ValueError(f"step must be in (0, 1], got {step}")
        if not 0.016 <= tail_s <= 2.0:
            raise ValueError(f"tail_s must be between 0.016 and 2 s, got {tail_s}")
        if not 0 <= max_delay_s <= max_reference_s / 2:
            raise ValueError(f"max_delay_s must be between 0 and max_reference_s / 2, got {max_delay_s}")
        self.sample_rate, self.step = int(sample_rate), float(step)
        self.partitions = max(1, round(tail_s * sample_rate / BLOCK))
        self.max_delay = int(max_delay_s * sample_rate)
        self.margin = min(2 * BLOCK, self.partitions * BLOCK // 4)  # taps kept before the main echo
        self.shift = 0  # reference read offset (samples): margin - measured echo delay
        self._pending_shift: int | None = None
        self._lag: int | None = None  # the last trusted delay measurement (samples)
        self._mic_hist = np.zeros(0)
        bins = BLOCK + 1
        self._x_hist = np.zeros((self.partitions, bins), np.complex128)  # reference spectra, newest first
        self._w_fg = np.zeros((self.partitions, bins), np.complex128)
        self._w_bg = np.zeros((self.partitions, bins), np.complex128)
        self._x_last = np.zeros(BLOCK)
        self._power = np.full(bins, 1e-6)
        self._mic = np.zeros(0)
        self._out = collections.deque([np.zeros(BLOCK)])  # one block of latency: output = input length
        self._ref = ReferenceTimeline(int(max_reference_s * sample_rate))
        self._ref_resampler: tuple[int, StreamResampler] | None = None
        self.blocks = self.fg_updates = self.realignments = 0
        self.erle_db = 0.0  # smoothed echo return loss enhancement of the last echo blocks

    # ------------------------------------------------------------------------ reference side
    def play(self, samples: np.ndarray | AudioChunk, sample_rate: int | None = None) -> None:
        """Record audio as it goes to the speaker (any rate). Call it for every sample written,
        silence included, so the reference keeps the device's timeline."""
        if isinstance(samples, AudioChunk):
            sample_rate = samples.sample_rate
            samples = samples.samples
        x = np.asarray(to_mono(np.asarray(samples, np.float32)), np.float64)
        rate = int(sample_rate or self.sample_rate)
        if rate != self.sample_rate:
            if self._ref_resampler is None or self._ref_resampler[0] != rate:
                self._ref_resampler = (rate, StreamResampler(rate, self.sample_rate))
            x = np.asarray(self._ref_resampler[1].process(x.astype(np.float32)), np.float64)
        self._ref.write(x)

    @property
    def reference_dropped(self) -> int:
        """Reference samples dropped because the microphone side fell behind."""
        return self._ref.dropped

    @property
    def delay_s(self) -> float | None:
        """The echo's delay after the reference is read (negative: before), as last measured."""
        return None if self._lag is None else self._lag / self.sample_rate

    # ------------------------------------------------------------------------ microphone side
    def process(self, chunk: AudioChunk) -> AudioChunk:
        """``chunk`` (at ``sample_rate``) with the echo removed; same length, 16 ms later."""
        if chunk.sample_rate != self.sample_rate:
            raise ValueError(
                f"EchoCanceller runs at {self.sample_rate} Hz, got a {chunk.sample_rate} Hz chunk "
                "(open the Microphone at that rate)"
            )
        self._mic = np.concatenate([self._mic, np.asarray(to_mono(chunk.samples), np.float64)])
        while len(self._mic) >= BLOCK:
            block, self._mic = self._mic[:BLOCK], self._mic[BLOCK:]
            self._mic_hist = np.concatenate([self._mic_hist, block])[-ESTIMATE_WINDOW:]
            if self.blocks % ESTIMATE_EVERY == 0:
                self._realign()
            self._out.append(self._cancel(block, self._ref.advance(BLOCK, self.shift)))
        n = len(chunk.samples)
        parts, got = [], 0
        while got < n:
            head = self._out[0]
            k = min(n - got, len(head))
            parts.append(head[:k])
            got += k
            if k == len(head):
                self._out.popleft()
            else:
                self._out[0] = head[k:]
        return AudioChunk(np.concatenate(parts).astype(np.float32), self.sample_rate, chunk.timestamp)

    def _cancel(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        self.blocks += 1
        spectrum = np.fft.rfft(np.concatenate([self._x_last, ref]))
        self._x_last = ref
        self._x_hist = np.roll(self._x_hist, 1, axis=0)
        self._x_hist[0] = spectrum
        if not np.any(self._x_hist):  # nothing played within the tail: nothing to cancel
            return mic
        e_fg = mic - np.fft.irfft((self._w_fg * self._x_hist).sum(0))[BLOCK:]
        e_bg = mic - np.fft.irfft((self._w_bg * self._x_hist).sum(0))[BLOCK:]
        en_mic, en_fg, en_bg = (float(v @ v) + 1e-12 for v in (mic, e_fg, e_bg))
        # adapt the background filter (normalized per bin by the smoothed reference power)
        self._power = 0.9 * self._power + 0.1 * (np.abs(self._x_hist) ** 2).sum(0)
        grad = np.fft.rfft(np.concatenate([np.zeros(BLOCK), e_bg]))
        self._w_bg += self.step * np.conj(self._x_hist) * grad / (self._power + 1e-6 * BLOCK)
        # constrain to a causal filter of BLOCK taps per partition (overlap-save gradient constraint)
        taps = np.fft.irfft(self._w_bg, axis=1)
        taps[:, BLOCK:] = 0
        self._w_bg = np.fft.rfft(taps, axis=1)
        if en_bg < 0.7 * en_fg and en_bg < en_mic:  # the background cancels better: take it
            self._w_fg = self._w_bg.copy()
            self.fg_updates += 1
            e_out, en_out = e_bg, en_bg
        else:
            if en_bg > 4.0 * en_fg and en_bg > en_mic:  # the background drifted off (double talk)
                self._w_bg = self._w_fg.copy()
            e_out, en_out = e_fg, en_fg
        ref_energy = float(ref @ ref)
        if ref_energy > BLOCK * 1e-6:  # the speaker played something: track how much echo was removed
            self.erle_db = 0.9 * self.erle_db + 0.1 * 10 * np.log10(en_mic / en_out)
        return e_out

    def _realign(self) -> None:
        """Measure the bulk delay on the last second; move the read offset when two measurements
        agree on a new one (the filter then starts over: its taps no longer line up)."""
        if len(self._mic_hist) < ESTIMATE_WINDOW:
            return
        now = self._ref.read_pos + BLOCK  # the history ends with the block about to be read
        lead = self.max_delay
        ref = self._ref.segment(now - ESTIMATE_WINDOW - self.max_delay, now + lead)
        if float(np.sqrt(np.mean(ref**2))) < 1e-3 or float(np.sqrt(np.mean(self._mic_hist**2))) < 1e-4:
            return  # nothing played (or heard): nothing to measure
        lag, prominence = estimate_lag(self._mic_hist, ref, self.max_delay, lead)
        if prominence < MIN_PROMINENCE:
            return
        self._lag = lag
        shift = self.margin - lag
        main_tap = self.shift + lag  # where the echo sits in the filter now
        if self.margin // 2 <= main_tap <= self.partitions * BLOCK - ROOM:  # covered, with room after it
            self._pending_shift = None
        elif self._pending_shift is not None and abs(shift - self._pending_shift) <= BLOCK // 8:
            self.shift, self._pending_shift = shift, None
            self.realignments += 1
            self._reset_filter()
        else:
            self._pending_shift = shift

    def _reset_filter(self) -> None:
        self._x_hist[:] = 0
        self._w_fg[:] = 0
        self._w_bg[:] = 0
        self._x_last[:] = 0

    def reset(self) -> None:
        """Forget the echo path (e.g. after moving the device) and the pending reference."""
        self._ref.clear()
        self._reset_filter()
        self.shift, self._pending_shift, self._lag = 0, None, None
