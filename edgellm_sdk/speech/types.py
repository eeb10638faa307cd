"""Speech data types shared by ASR, TTS, VAD and audio I/O (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class AudioChunk:
    """Mono audio: float32 samples in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int
    timestamp: float = 0.0  # seconds from the start of the stream

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be > 0, got {self.sample_rate}")
        if self.samples.ndim != 1:
            raise ValueError(f"AudioChunk holds mono samples (1-D); got shape {self.samples.shape}")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float | None = None


@dataclass(frozen=True)
class Transcript:
    text: str
    final: bool  # False: a partial result that may still change
    words: tuple[Word, ...] = field(default_factory=tuple)
    start_s: float = 0.0
    end_s: float = 0.0
