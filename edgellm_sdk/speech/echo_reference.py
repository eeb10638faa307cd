"""The echo canceller's reference: what was played, on the microphone's sample timeline.

``ReferenceTimeline`` holds the last few seconds of speaker audio by absolute sample index. The
microphone side reads one block per microphone block; audio written while the speaker was idle
lands at the reader's position ("now"). How far the speaker's buffers put the echo behind (or,
with a deep output buffer, ahead of) that position is measured by ``estimate_lag`` (GCC-PHAT
cross-correlation of microphone and reference) and applied as a read offset.
"""

from __future__ import annotations

import threading

import numpy as np


class ReferenceTimeline:
    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self._ring = np.zeros(self.capacity)
        self.written = 0  # absolute index one past the newest sample
        self.read_pos = 0  # absolute index of the microphone's "now"
        self.dropped = 0  # samples overwritten before the microphone side got to them
        self._lock = threading.Lock()

    def write(self, x: np.ndarray) -> None:
        with self._lock:
            self.written = max(self.written, self.read_pos)  # after idling, new audio starts "now"
            floor = self.written - self.capacity  # oldest sample held before this write
            x = x[-self.capacity :]
            idx = (self.written + np.arange(len(x))) % self.capacity
            self._ring[idx] = x
            self.written += len(x)
            # the writer ran more than the capacity ahead: unread samples fell off (they read as
            # zeros; the reader's position stays on the microphone's timeline)
            self.dropped += max(0, self.written - self.capacity - max(floor, self.read_pos))

    def segment(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) by absolute index; zeros where nothing (still) is held."""
        out = np.zeros(stop - start)
        with self._lock:
            lo, hi = max(start, self.written - self.capacity, 0), min(stop, self.written)
            if hi > lo:
                out[lo - start : hi - start] = self._ring[np.arange(lo, hi) % self.capacity]
        return out

    def advance(self, n: int, shift: int) -> np.ndarray:
        """The block the microphone's next ``n`` samples can hear (offset by ``shift``), and step on."""
        block = self.segment(self.read_pos + shift, self.read_pos + shift + n)
        with self._lock:
            self.read_pos += n
        return block

    def clear(self) -> None:
        with self._lock:
            self._ring[:] = 0
            self.written = self.read_pos


def estimate_lag(mic: np.ndarray, ref: np.ndarray, max_delay: int, max_lead: int) -> tuple[int, float]:
    """How many samples after the reader's position the echo of the reference arrives (negative:
    before it), and the correlation peak's prominence (peak / standard deviation).

    ``mic`` is a window of M microphone samples; ``ref`` the reference around it, from
    ``max_delay`` samples before the window to ``max_lead`` after it (M + max_delay + max_lead long).
    """
    n, m = len(ref), len(mic)
    if n != m + max_delay + max_lead:
        raise ValueError("ref must cover the microphone window -max_delay .. +max_lead")
    size = 1 << (n + m).bit_length()
    cross = np.fft.rfft(mic, size) * np.conj(np.fft.rfft(ref, size))
    corr = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)  # PHAT weighting: a sharp peak for speech
    # corr[-c] = sum_j mic[j] ref[j + c]; the echo of a lag t sits at c = max_delay - t
    valid = np.concatenate([corr[size - (n - m) :], corr[:1]])  # c = n - m .. 0
    best = int(np.argmax(valid))
    return best - max_lead, float(valid[best] / (np.std(valid) + 1e-12))
