"""Voice activity detection with Silero VAD run by onnxruntime (no torch).

The ONNX model ships inside the PyPI wheel ``silero-vad``, whose Python package needs torch.
:func:`ensure_silero_vad` therefore fetches only the wheel (``pip download --no-deps``),
extracts ``silero_vad/data/silero_vad.onnx`` into ``$EDGELLM_HOME/models/silero-vad/`` and checks
its pinned sha256; nothing of the package is installed.

:class:`SileroVAD` gives one speech probability per 512-sample window at 16 kHz (32 ms), keeping
the recurrent state and the 64-sample context the model expects between windows.
:class:`VoiceActivityDetector` consumes :class:`AudioChunk` of any rate and returns each utterance
(16 kHz AudioChunk, timestamped on the input stream's clock) once the speaker has stopped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import MissingDependency, ModelNotFound, SpeechError
from .audio import StreamResampler
from .types import AudioChunk

SILERO_PACKAGE = "silero-vad"
SILERO_VERSION = "6.2.3"
SILERO_MEMBER = "silero_vad/data/silero_vad.onnx"
SILERO_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
SILERO_DIR = "silero-vad"
SILERO_FILE = "silero_vad.onnx"

SAMPLE_RATE = 16000
WINDOW = 512  # samples per model call at 16 kHz (32 ms)
CONTEXT = 64  # trailing samples of the previous window the model sees in front of each window
PIP_TIMEOUT_S = 300

_FIX = (
    f"connect to the network once (it runs: pip download --no-deps {SILERO_PACKAGE}=={SILERO_VERSION}), "
    f"or put {SILERO_FILE} from that wheel ({SILERO_MEMBER}) into {{dir}}"
)


def _home() -> Path:
    from ..models.store import ModelStore

    return Path(ModelStore().home)


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def ensure_silero_vad(home: str | Path | None = None, progress: Callable[[str], None] = lambda msg: None) -> Path:
    """Path of the Silero VAD ONNX model, fetching it from the PyPI wheel on first use.

    Raises ModelNotFound (saying how to fix it) when the model is absent and cannot be fetched."""
    target_dir = (Path(home) if home else _home()) / "models" / SILERO_DIR
    target = target_dir / SILERO_FILE
    if target.is_file():
        return target
    fix = _FIX.format(dir=target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".download-") as dl:
        progress(f"downloading {SILERO_PACKAGE}=={SILERO_VERSION} from PyPI (model only, no torch)")
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "-d",
            dl,
            f"{SILERO_PACKAGE}=={SILERO_VERSION}",
        ]
        try:
            run = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except (subprocess.TimeoutExpired, OSError) as e:
            raise ModelNotFound(f"Silero VAD model is not in {target_dir} and pip download failed ({e}); {fix}") from e
        wheels = list(Path(dl).glob("*.whl"))
        if run.returncode != 0 or not wheels:
            tail = " | ".join((run.stderr or run.stdout).strip().splitlines()[-2:])
            raise ModelNotFound(f"Silero VAD model is not in {target_dir} and pip download failed: {tail}; {fix}")
        tmp = Path(dl) / SILERO_FILE
        try:
            with zipfile.ZipFile(wheels[0]) as zf, zf.open(SILERO_MEMBER) as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        except (KeyError, zipfile.BadZipFile) as e:
            raise ModelNotFound(f"{wheels[0].name} does not contain {SILERO_MEMBER}: {e}; {fix}") from e
        if _sha256(tmp) != SILERO_SHA256:
            raise ModelNotFound(f"{SILERO_MEMBER} from {wheels[0].name} does not match its pinned sha256; {fix}")
        os.replace(tmp, target)  # atomic: a half-written file never sits at `target`
    return target


class SileroVAD:
    """Streaming Silero VAD (v5/v6 ONNX): speech probability of each 512-sample 16 kHz window."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise MissingDependency("onnxruntime", "speech") from exc
        path = Path(model_path) if model_path else ensure_silero_vad()
        if not path.is_file():
            raise ModelNotFound(
                f"Silero VAD model {str(path)!r} does not exist; "
                "pass model_path=None to fetch it with ensure_silero_vad()"
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise SpeechError(f"cannot load Silero VAD model {path}: {e}") from e
        names = {i.name for i in self._session.get_inputs()}
        if names != {"input", "state", "sr"}:
            raise SpeechError(
                f"{path} is not a Silero VAD v5+ model (inputs {sorted(names)}; expected input, state, sr)"
            )
        self.model_path = path
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Forget the stream (recurrent state and context)."""
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, CONTEXT), np.float32)
        self._pending = np.zeros(0, np.float32)

    def window_probability(self, window: np.ndarray) -> float:
        """Speech probability of the next 512 samples (16 kHz float32) of the stream."""
        if len(window) != WINDOW:
            raise ValueError(f"Silero VAD takes {WINDOW}-sample windows at 16 kHz, got {len(window)}")
        x = np.concatenate([self._context, np.asarray(window, np.float32).reshape(1, WINDOW)], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -CONTEXT:]
        return float(out[0, 0])

    def process(self, samples: np.ndarray) -> list[float]:
        """Probabilities of every whole window completed by ``samples`` (16 kHz); the rest waits."""
        buf = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = len(buf) // WINDOW
        probs = [self.window_probability(buf[i * WINDOW : (i + 1) * WINDOW]) for i in range(n)]
        self._pending = buf[n * WINDOW :]
        return probs


class VoiceActivityDetector:
    """Cuts a stream into utterances: feed :meth:`process` chunks, get each finished utterance.

    A window is speech when its probability is >= ``threshold``; speech ends after
    ``min_silence_s`` of windows below ``threshold - 0.15`` (Silero's hysteresis). Utterances
    shorter than ``min_speech_s`` are dropped, longer than ``max_utterance_s`` are cut into pieces
    of at most that length. Each utterance gets ``pad_s`` of audio either side. Output is 16 kHz
    mono; ``timestamp`` is on the clock of the input chunks."""

    def __init__(
        self,
        threshold: float = 0.5,
        min_silence_s: float = 0.5,
        min_speech_s: float = 0.25,
        max_utterance_s: float = 15.0,
        pad_s: float = 0.1,
        model_path: str | Path | None = None,
        vad: SileroVAD | None = None,
    ):
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        if max_utterance_s <= min_speech_s:
            raise ValueError("max_utterance_s must be longer than min_speech_s")
        self.threshold = threshold
        self.neg_threshold = max(threshold - 0.15, 0.01)
        self.min_silence = round(min_silence_s * SAMPLE_RATE)
        self.min_speech = round(min_speech_s * SAMPLE_RATE)
        self.max_utterance = round(max_utterance_s * SAMPLE_RATE)
        self.pad = round(pad_s * SAMPLE_RATE)
        self.vad = vad or SileroVAD(model_path)
        self.reset()

    def reset(self) -> None:
        self.vad.reset()
        self._resampler: StreamResampler | None = None
        self._rate: int | None = None
        self._t0: float | None = None
        self._pos = 0  # 16 kHz samples of the stream run through the model
        self._history: deque[np.ndarray] = deque()  # recent windows (pre-roll when idle, utterance when in speech)
        self._history_start = 0  # stream sample index of the first window in _history
        self._start: int | None = None  # utterance start (stream samples) while in speech
        self._last_speech = 0  # end of the last window at/above threshold
        self._silence_from: int | None = None
        self.last_probability = 0.0

    @property
    def in_speech(self) -> bool:
        return self._start is not None

    def process(self, chunk: AudioChunk) -> list[AudioChunk]:
        """Feed audio; returns the utterances that ended within it (usually none)."""
        if self._t0 is None:
            self._t0 = chunk.timestamp
        if chunk.sample_rate != self._rate:
            self._rate = chunk.sample_rate
            self._resampler = (
                None if chunk.sample_rate == SAMPLE_RATE else StreamResampler(chunk.sample_rate, SAMPLE_RATE)
            )
        x = chunk.samples if self._resampler is None else self._resampler.process(chunk.samples)
        out: list[AudioChunk] = []
        buf = np.concatenate([self.vad._pending, np.asarray(x, np.float32)])
        n = len(buf) // WINDOW
        for i in range(n):
            window = buf[i * WINDOW : (i + 1) * WINDOW]
            p = self.vad.window_probability(window)
            self.last_probability = p
            utterance = self._step(window, p)
            if utterance is not None:
                out.append(utterance)
        self.vad._pending = buf[n * WINDOW :]
        return out

    def flush(self) -> list[AudioChunk]:
        """End of stream: the utterance in progress (if long enough), then a fresh state."""
        out = []
        if self._start is not None:
            u = self._emit(self._last_speech + self.pad)
            if u is not None:
                out.append(u)
        t0 = self._t0
        self.reset()
        self._t0 = t0
        return out

    # --- internals -----------------------------------------------------------------------
    def _step(self, window: np.ndarray, p: float) -> AudioChunk | None:
        start, end = self._pos, self._pos + WINDOW
        self._pos = end
        self._history.append(window)
        if self._start is None:
            if p >= self.threshold:
                self._start = max(start - self.pad, 0)
                self._last_speech, self._silence_from = end, None
            keep_from = self._start if self._start is not None else end - self.pad - WINDOW
            while self._history and self._history_start + WINDOW <= keep_from:  # idle: keep the pre-roll only
                self._history.popleft()
                self._history_start += WINDOW
            return None
        if p >= self.threshold:
            self._last_speech, self._silence_from = end, None
        elif p < self.neg_threshold and self._silence_from is None:
            self._silence_from = end - WINDOW
        if self._silence_from is not None and end - self._silence_from >= self.min_silence:
            return self._emit(self._last_speech + self.pad)
        if end - self._start >= self.max_utterance:
            return self._emit(end, keep_going=True)
        return None

    def _emit(self, stop: int, keep_going: bool = False) -> AudioChunk | None:
        assert self._start is not None
        audio = np.concatenate(self._history) if self._history else np.zeros(0, np.float32)
        lo = self._start - self._history_start
        hi = min(stop - self._history_start, len(audio))
        samples = audio[max(lo, 0) : hi]
        speech = self._last_speech - self._start - self.pad
        t = (self._t0 or 0.0) + self._start / SAMPLE_RATE
        if keep_going:  # cut at max_utterance_s; the speech continues in a new segment
            self._history.clear()
            self._history_start = self._pos
            self._start = self._pos
            self._last_speech, self._silence_from = self._pos, None
        else:
            self._start, self._silence_from = None, None
            # drop the emitted audio, keep up to pad of trailing audio as the next pre-roll
            while self._history and self._history_start + WINDOW <= self._pos - self.pad - WINDOW:
                self._history.popleft()
                self._history_start += WINDOW
        if speech < self.min_speech and not keep_going:
            return None
        return AudioChunk(samples.copy(), SAMPLE_RATE, t)


EndOfSpeech = VoiceActivityDetector
