"""Listener: what the microphone heard, for an assistant that also speaks (wake word, VAD, barge-in).

    listener = Listener(VoiceActivityDetector(), WakeWordDetector("okay_nabu"),
                        transcribe=asr.transcribe_audio, echo=EchoCanceller())
    for chunk in mic:
        for heard in listener.hear(chunk, speaking=playing.is_set()):
            ...  # heard.kind: "wake" | "utterance" | "stop"; heard.barge_in: cut the reply

One state machine, fed each microphone chunk and what the assistant is doing at that moment
(cleaned of the speaker's sound first when an ``echo`` canceller is given):

    quiet     the wake word -> ``wake`` (opens a ``listen_s`` window); while awake, the VAD's end
              of speech -> ``utterance`` with its audio (one begun while awake is heard to its end)
    busy      a reply is under way but not audible (thinking), or the ``echo_tail_s`` after
              speaking: only the wake word is heard (a barge-in)
    speaking  the wake word, or a short utterance (<= ``max_stop_s``) transcribed as one of
              ``stop_words`` -> ``stop``: both barge in. Nothing else said over its own voice is
              acted on, so that voice reaching the microphone is never taken for a question.

The VAD starts over whenever the state changes, so nothing heard across a start or an end of
speaking carries over. Stop words are compared after ``normalize_text`` (lower case, punctuation
dropped: "Stop!" is "stop"). Times are on the microphone stream's clock (chunk timestamps).
Used by ``VoiceAssistant`` and by the ROS ``speech_node``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .asr import normalize_text
from .types import AudioChunk

if TYPE_CHECKING:
    from .echo import EchoCanceller
    from .vad import VoiceActivityDetector
    from .wakeword import WakeWordDetector


@dataclass(frozen=True)
class Heard:
    kind: str  # wake | utterance | stop
    time_s: float  # end of the chunk it was heard in, on the microphone stream's clock
    audio: AudioChunk | None = None  # utterance / stop: what was said (16 kHz)
    text: str = ""  # wake: the wake word; stop: the words heard
    barge_in: bool = False  # it cuts what the assistant is saying or preparing


class Listener:
    """``transcribe(audio) -> str`` checks a short utterance said while speaking for a stop word
    (None, no ``stop_words`` or ``barge_in=False``: it is not checked). ``one_utterance_per_wake``:
    an utterance closes the wake word's window (else it stays open for ``listen_s``).
    ``barge_in=False``: the wake word never cuts a reply and stop words are not listened for.
    ``listen_s``, ``stop_words``, ``barge_in`` and ``echo_tail_s`` may be changed between chunks."""

    def __init__(
        self,
        vad: VoiceActivityDetector,
        wake: WakeWordDetector | None = None,
        *,
        transcribe: Callable[[AudioChunk], str] | None = None,
        echo: EchoCanceller | None = None,
        stop_words: Iterable[str] = ("stop",),
        max_stop_s: float = 1.5,
        listen_s: float = 8.0,
        one_utterance_per_wake: bool = False,
        barge_in: bool = True,
        echo_tail_s: float = 0.0,
    ):
        if max_stop_s <= 0 or listen_s <= 0 or echo_tail_s < 0:
            raise ValueError(
                "max_stop_s and listen_s must be > 0 and echo_tail_s >= 0, got "
                f"{max_stop_s}, {listen_s} and {echo_tail_s}"
            )
        self.vad, self.wake, self.echo, self.transcribe = vad, wake, echo, transcribe
        self.stop_words = stop_words
        self.max_stop_s, self.listen_s, self.echo_tail_s = max_stop_s, listen_s, echo_tail_s
        self.one_utterance_per_wake, self.barge_in = one_utterance_per_wake, barge_in
        self._start()

    @property
    def stop_words(self) -> frozenset[str]:
        return self._stop_words

    @stop_words.setter
    def stop_words(self, words: Iterable[str]) -> None:
        if isinstance(words, str):
            raise TypeError(f"stop_words is a list of words, got the string {words!r}")
        self._stop_words = frozenset(w for w in map(normalize_text, words) if w)

    def is_stop_word(self, text: str) -> bool:
        return normalize_text(text) in self._stop_words

    @property
    def awake(self) -> bool:
        """Whether an utterance starting now would be heard (always, without a wake word)."""
        return self._now <= self._awake_until

    def _start(self) -> None:
        self._awake_until = math.inf if self.wake is None else -math.inf
        self._tail_until = -math.inf  # the echo tail after speaking ends, on the stream clock
        self._state = "quiet"
        self._now = 0.0

    def reset(self) -> None:
        """A new microphone stream (its clock starts over): forget everything heard, close the window."""
        self.vad.reset()
        if self.wake is not None:
            self.wake.reset()
        if self.echo is not None:
            self.echo.reset()
        self._start()

    def reply_ended(self, now: float, follow_up_s: float = 0.0) -> None:
        """A reply finished or was cut: forget what the VAD heard meanwhile and, with a wake word,
        keep listening ``follow_up_s`` after ``now`` without it (a follow-up question)."""
        self.vad.reset()
        if self.wake is not None:
            self._awake_until = max(self._awake_until, now + follow_up_s)

    def hear(self, chunk: AudioChunk, *, speaking: bool = False, busy: bool = False) -> list[Heard]:
        """What ``chunk`` completed (usually nothing). ``speaking``: the assistant's voice is playing;
        ``busy``: a reply is under way but not audible yet."""
        if self.echo is not None:
            chunk = self.echo.process(chunk)
        now = self._now = chunk.timestamp + chunk.duration_s
        if speaking:
            self._tail_until = now + self.echo_tail_s
        state = "speaking" if speaking else "busy" if busy or now < self._tail_until else "quiet"
        if state != self._state:  # nothing heard across a start / end of speaking carries over
            self._state = state
            self.vad.reset()
        if self.wake is not None and self.wake.process(chunk):
            self._awake_until = now + self.listen_s
            self.vad.reset()
            return [Heard("wake", now, text=self.wake.wake_word, barge_in=self.barge_in and state != "quiet")]
        if state == "speaking":
            return self._stop_heard(chunk, now)
        if state == "busy" or (now > self._awake_until and not self.vad.in_speech):
            return []  # busy, or asleep (an utterance begun while awake is heard to its end)
        heard = []
        for utterance in self.vad.process(chunk):
            if self.wake is not None and self.one_utterance_per_wake:
                self._awake_until = -math.inf
            heard.append(Heard("utterance", now, utterance))
        return heard

    def _stop_heard(self, chunk: AudioChunk, now: float) -> list[Heard]:
        if not (self.barge_in and self._stop_words and self.transcribe is not None):
            return []
        for utterance in self.vad.process(chunk):
            if utterance.duration_s <= self.max_stop_s:
                text = self.transcribe(utterance)
                if self.is_stop_word(text):
                    return [Heard("stop", now, utterance, text.strip(), barge_in=True)]
        return []
