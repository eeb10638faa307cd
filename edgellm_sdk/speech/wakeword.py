"""Wake-word detection with microWakeWord models (``pymicro-wakeword``: TFLite, no TensorFlow).

Shipped models: okay_nabu, hey_jarvis, hey_mycroft, alexa (or a path to a microWakeWord JSON
config). Audio of any rate is resampled to 16 kHz and converted to 16-bit PCM; features come in
10 ms steps and the model runs every ``stride`` (3) steps, averaging its last
``sliding_window_size`` probabilities against the model's ``probability_cutoff``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import MissingDependency, SpeechError
from .audio import StreamResampler
from .types import AudioChunk

if TYPE_CHECKING:
    from typing_extensions import Self

SAMPLE_RATE = 16000
STEP_S = 0.01  # one feature frame


def _import() -> Any:
    try:
        import pymicro_wakeword
    except ImportError as exc:
        raise MissingDependency("pymicro-wakeword", "speech") from exc
    return pymicro_wakeword


def available_models() -> list[str]:
    """Names of the wake-word models shipped with pymicro-wakeword."""
    return [m.value for m in _import().Model]


class WakeWordDetector:
    """Streaming wake-word detector: :meth:`process` returns True once per spoken wake word.

    ``refractory_s``: after a detection, further detections are ignored for this much audio
    (and the probability window is cleared), so one utterance triggers once.
    ``threshold``: overrides the model's own probability cutoff (0-1)."""

    def __init__(self, model: str = "okay_nabu", refractory_s: float = 2.0, threshold: float | None = None):
        mww = _import()
        names = [m.value for m in mww.Model]
        try:
            if model in names:
                self._model = mww.MicroWakeWord.from_builtin(mww.Model(model))
            elif model.endswith(".json") and Path(model).is_file():
                self._model = mww.MicroWakeWord.from_config(model)
            else:
                raise SpeechError(
                    f"unknown wake-word model {model!r}; shipped models: {', '.join(names)} "
                    "(or pass the path of a microWakeWord .json config)"
                )
        except SpeechError:
            raise
        except Exception as e:  # bad config / tflite / missing native library
            raise SpeechError(f"cannot load wake-word model {model!r}: {e}") from e
        if threshold is not None:
            if not 0.0 < threshold < 1.0:
                raise ValueError(f"threshold must be in (0, 1), got {threshold}")
            self._model.probability_cutoff = threshold
        self._features = mww.MicroWakeWordFeatures()
        self.model = model
        self.wake_word: str = self._model.wake_word
        self.threshold: float = self._model.probability_cutoff
        self.refractory_s = refractory_s
        self._rate: int | None = None
        self._resampler: StreamResampler | None = None
        self._t0: float | None = None
        self._steps = 0  # feature frames seen (10 ms each)
        self._quiet_until = -1  # no detections before this frame
        self.last_probability = 0.0
        self.detections: list[float] = []  # stream times (s) of the detections since reset()

    def process(self, chunk: AudioChunk) -> bool:
        """Feed audio; True when the wake word was detected in it."""
        if self._t0 is None:
            self._t0 = chunk.timestamp
        if chunk.sample_rate != self._rate:
            self._rate = chunk.sample_rate
            self._resampler = (
                None if chunk.sample_rate == SAMPLE_RATE else StreamResampler(chunk.sample_rate, SAMPLE_RATE)
            )
        x = chunk.samples if self._resampler is None else self._resampler.process(chunk.samples)
        pcm = (np.clip(np.asarray(x, np.float32), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
        fired = False
        for features in self._features.process_streaming(pcm):
            self._steps += 1
            p = self._model.process_streaming_prob(features)
            if p is None:
                continue
            self.last_probability = p
            if p > self.threshold and self._steps >= self._quiet_until:
                fired = True
                self.detections.append(self._t0 + self._steps * STEP_S)
                self._quiet_until = self._steps + round(self.refractory_s / STEP_S)
                self._model._probabilities.clear()  # a fresh window: the same word cannot re-trigger
        return fired

    def reset(self) -> None:
        """Forget the stream (reloads the model's internal streaming state)."""
        self._model.reset()
        self._features.reset()
        self._rate, self._resampler, self._t0 = None, None, None
        self._steps, self._quiet_until = 0, -1
        self.last_probability = 0.0
        self.detections = []

    def close(self) -> None:
        self._model.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WakeWordDetector(model={self.model!r}, wake_word={self.wake_word!r}, threshold={self.threshold})"
