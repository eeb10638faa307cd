"""Speech recognition: a stream of AudioChunks in, partial then final Transcripts out.

    from edgellm_sdk.speech.asr import open_transcriber
    with open_transcriber("moonshine") as asr:            # English tiny model bundled in the wheel
        print(asr.transcribe_file("command.wav"))
        for t in asr.transcribe(mic_chunks):               # AudioChunks at any sample rate
            print("final" if t.final else "partial", t.text)

    asr = open_transcriber("vosk", model="/models/vosk-model-small-en-us-0.15",
                           grammar=["turn on the light", "turn off the light"])

Backends live in their own modules and import their package only when opened
(``pip install 'edgellm-sdk[speech]'``).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .audio import StreamResampler, chunks, read_wav, to_mono
from .types import AudioChunk, Transcript

BACKENDS = {"moonshine": "asr_moonshine", "vosk": "asr_vosk"}


@runtime_checkable
class Transcriber(Protocol):
    sample_rate: int  # the rate the model runs at; other rates are resampled
    language: str  # what the model recognizes, a language code ("en", "ko"); "" = not known

    def transcribe(self, chunks: Iterable[AudioChunk]) -> Iterator[Transcript]: ...

    def transcribe_audio(self, audio: AudioChunk) -> str: ...

    def transcribe_file(self, path: str | Path) -> str: ...

    def close(self) -> None: ...


class BaseTranscriber:
    """Shared plumbing: mono/resample of incoming chunks and the one-shot conveniences."""

    sample_rate = 16000
    language = ""
    chunk_s = 0.1  # how the one-shot helpers feed audio to ``transcribe``

    def transcribe(self, chunks: Iterable[AudioChunk]) -> Iterator[Transcript]:
        raise NotImplementedError

    def transcribe_audio(self, audio: AudioChunk) -> str:
        """Text of all final transcripts of one recording, joined by spaces."""
        finals = [t.text for t in self.transcribe(chunks(audio, self.chunk_s)) if t.final and t.text]
        return " ".join(finals)

    def transcribe_file(self, path: str | Path) -> str:
        return self.transcribe_audio(read_wav(path))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _samples(self, stream: Iterable[AudioChunk]) -> Iterator[tuple[float, np.ndarray]]:
        """(chunk timestamp, mono float32 samples at ``self.sample_rate``) per chunk; a stateful
        resampler follows the chunks' rate (a rate change restarts it)."""
        resampler: StreamResampler | None = None
        rate, ts = None, 0.0
        for chunk in stream:
            ts = chunk.timestamp
            samples = chunk.samples if chunk.samples.ndim == 1 else to_mono(chunk.samples)
            if chunk.sample_rate != rate:
                if resampler is not None:
                    yield ts, resampler.process(np.zeros(0, np.float32), final=True)
                rate = chunk.sample_rate
                resampler = StreamResampler(rate, self.sample_rate) if rate != self.sample_rate else None
            yield chunk.timestamp, (resampler.process(samples) if resampler else samples.astype(np.float32))
        if resampler is not None:
            yield ts, resampler.process(np.zeros(0, np.float32), final=True)


def open_transcriber(name: str = "moonshine", model: str | Path | None = None, **options: Any) -> Transcriber:
    """A Transcriber backend by name: "moonshine" (English, bundled tiny model) or "vosk" (needs a
    model directory). ``options`` go to the backend (e.g. ``max_utterance_s``, vosk ``grammar``)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown ASR backend {name!r}; choose one of {sorted(BACKENDS)}")
    module = importlib.import_module(f".{BACKENDS[name]}", __package__)
    return module.open(model, **options)


def _edit_distance(ref: list, hyp: list) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word edit distance / reference words, after lower-casing and dropping punctuation."""
    ref = normalize_text(reference).split()
    return _edit_distance(ref, normalize_text(hypothesis).split()) / max(1, len(ref))


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character edit distance / reference characters, spaces ignored (fairer than WER for Korean)."""
    ref = list(normalize_text(reference).replace(" ", ""))
    return _edit_distance(ref, list(normalize_text(hypothesis).replace(" ", ""))) / max(1, len(ref))


def normalize_text(text: str) -> str:
    keep = "".join(c if c.isalnum() or c.isspace() or c == "'" else " " for c in text.lower())
    return " ".join(keep.split())
