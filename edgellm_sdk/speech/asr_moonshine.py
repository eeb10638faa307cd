"""Moonshine ASR backend (``moonshine-voice==0.1.0``, MIT; English tiny model bundled in the wheel).

The wheel's ``libmoonshine.so`` (linked to its own onnxruntime copy) loads the ``.ort`` encoder /
decoder files of ``moonshine_voice/assets/tiny-en`` and runs a VAD that cuts the stream into
lines. Each call of ``Stream.update_transcription`` re-decodes the open line, which gives the
partials; a line that the VAD closes becomes a final. The tiny model ships no word-timestamp
model, so its Transcripts carry no words.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependency
from .asr import BaseTranscriber
from .errors import SpeechError
from .types import AudioChunk, Transcript, Word

ARCHES = ("tiny", "base", "tiny_streaming", "base_streaming", "small_streaming", "medium_streaming")


def _import() -> Any:
    try:
        from moonshine_voice import transcriber
    except ImportError as exc:
        raise MissingDependency("moonshine-voice", "speech") from exc
    return transcriber


def bundled_model_path() -> Path:
    """The English tiny model inside the moonshine-voice 0.1.0 wheel."""
    _import()
    from moonshine_voice.utils import get_model_path

    return Path(get_model_path("tiny-en"))


class MoonshineTranscriber(BaseTranscriber):
    """Streaming English ASR.

    ``max_utterance_s`` caps a VAD line (longer speech is cut into lines, which bounds the
    decoder's input and the cost of each update). ``partial_interval_s`` is the audio time
    between updates; each update re-decodes the open line, so the interval grows to keep updates
    under ``partial_budget`` of real time. ``partials=False`` yields finals only.
    The stream is restarted after ``restart_after_lines`` finals so that the native transcript,
    which keeps every line of a stream, stays bounded. ``language``: what the model recognizes
    (the bundled tiny model: English)."""

    sample_rate = 16000

    def __init__(
        self,
        model: str | Path | None = None,
        *,
        arch: str = "tiny",
        max_utterance_s: float = 15.0,
        partials: bool = True,
        partial_interval_s: float = 0.5,
        partial_budget: float = 0.25,
        word_timestamps: bool = False,
        restart_after_lines: int = 16,
        options: dict | None = None,
        language: str = "en",
    ):
        mod = _import()
        from moonshine_voice.moonshine_api import ModelArch

        if arch not in ARCHES:
            raise ValueError(f"arch must be one of {ARCHES}, got {arch!r}")
        if max_utterance_s < 2:
            raise ValueError(f"max_utterance_s must be >= 2, got {max_utterance_s}")
        path = Path(model) if model is not None else bundled_model_path()
        if not (path / "encoder_model.ort").is_file():
            raise SpeechError(
                f"{path} is not a Moonshine model directory (no encoder_model.ort); "
                "omit model= to use the English tiny model bundled in moonshine-voice==0.1.0"
            )
        opts = {"return_audio_data": "false", "vad_max_segment_duration": str(max_utterance_s)}
        if word_timestamps:
            opts["word_timestamps"] = "true"
        opts.update({k: str(v) for k, v in (options or {}).items()})
        try:
            self._tr = mod.Transcriber(str(path), ModelArch[arch.upper()], options=opts)
        except Exception as exc:  # MoonshineError from the native loader
            raise SpeechError(f"cannot load the Moonshine model in {path}: {exc}") from exc
        self.model_path, self.language = path, language
        self.partials, self.partial_interval_s, self.partial_budget = partials, partial_interval_s, partial_budget
        self.restart_after_lines = restart_after_lines
        self._keep = int(max_utterance_s * self.sample_rate)  # audio kept to re-feed on a restart

    def close(self) -> None:
        if getattr(self, "_tr", None) is not None:
            self._tr.close()
            self._tr = None

    def transcribe(self, chunks: Iterable[AudioChunk]) -> Iterator[Transcript]:
        if self._tr is None:
            raise SpeechError("transcriber is closed")
        sr = self.sample_rate
        run = _Run(self)
        interval = int(self.partial_interval_s * sr)
        since = 0
        for ts, x in self._samples(chunks):
            if run.t0 is None:
                run.t0 = ts
            run.feed(x)
            since += len(x)
            if since >= interval:  # updates also close lines (finals) and allow restarts
                since = 0
                start = time.perf_counter()
                yield from run.update()
                cost = time.perf_counter() - start  # re-decoding grows with the open line
                interval = max(int(self.partial_interval_s * sr), int(cost / self.partial_budget * sr))
                if run.finals >= self.restart_after_lines:
                    run.restart()
        yield from run.finish()


class _Run:
    """One ``transcribe`` call: a native stream plus the bookkeeping to turn lines into events."""

    def __init__(self, owner: MoonshineTranscriber):
        self.owner = owner
        self.t0: float | None = None
        self.tail = np.zeros(0, np.float32)  # recent audio, to re-feed after a restart
        self.fed = 0  # samples fed since the start of the call
        self._open(0)

    def _open(self, start: int) -> None:
        self.stream = self.owner._tr.create_stream(update_interval=1e9)  # we drive the updates
        self.stream.start()
        self.start, self.finals = start, 0
        self.done: set[int] = set()  # ids of the lines already given as finals
        self.last: dict[int, str] = {}  # line id -> its last partial text
        self.open_lines = False
        self.end = start  # end (in samples) of the latest closed line

    def feed(self, x: np.ndarray) -> None:
        if len(x):
            self.stream.add_audio(x.tolist(), self.owner.sample_rate)
            self.fed += len(x)
            self.tail = np.concatenate([self.tail, x])[-self.owner._keep :]

    def update(self) -> Iterator[Transcript]:
        return self._events(self.stream.update_transcription())

    def restart(self) -> None:
        """New native stream, re-fed with the audio after the last closed line (not yet a line)."""
        if self.open_lines:
            return
        self.stream.close()
        keep = self.tail[len(self.tail) - min(len(self.tail), self.fed - self.end) :]
        self.fed -= len(keep)
        self._open(self.fed)
        self.feed(keep)

    def finish(self) -> Iterator[Transcript]:
        try:
            # Trailing silence lets the VAD close the last line (speech cut off at the last sample
            # makes the tiny model hallucinate), and stop() alone drops audio no update has seen.
            self.stream.add_audio([0.0] * (self.owner.sample_rate // 2), self.owner.sample_rate)
            yield from self.update()
            yield from self._events(self.stream.stop())
        finally:
            self.stream.close()

    def _events(self, transcript: Any) -> Iterator[Transcript]:
        sr, base = self.owner.sample_rate, (self.t0 or 0.0) + self.start / self.owner.sample_rate
        self.open_lines = False
        for line in transcript.lines if transcript is not None else ():
            if line.line_id in self.done:
                continue
            text = line.text.strip()
            start_s, end_s = base + line.start_time, base + line.start_time + line.duration
            if line.is_complete:
                self.done.add(line.line_id)
                self.last.pop(line.line_id, None)
                self.end = max(self.end, self.start + int((line.start_time + line.duration) * sr))
                if text:
                    self.finals += 1
                    words = tuple(Word(w.word, base + w.start, base + w.end, w.confidence) for w in line.words or ())
                    yield Transcript(text, True, words, start_s, end_s)
            else:
                self.open_lines = True
                if self.owner.partials and text and text != self.last.get(line.line_id):
                    self.last[line.line_id] = text
                    yield Transcript(text, False, (), start_s, end_s)


def open(model: str | Path | None = None, **options: Any) -> MoonshineTranscriber:
    return MoonshineTranscriber(model, **options)
