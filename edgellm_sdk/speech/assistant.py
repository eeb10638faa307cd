"""VoiceAssistant: the live loop — wake word, listen until end of speech, answer aloud, barge-in.

    mic chunks -> Listener (wake word, VAD, stop words) -> VoiceLoop (ASR -> Engine -> TTS) -> speaker

While it speaks it keeps listening: the wake word, or a short utterance that is one of
``stop_words`` ("stop"), cuts playback and generation (barge-in). After an answer it listens
for ``follow_up_s`` without the wake word. While speaking only those two things are acted on, so
its own voice reaching the microphone is never taken for a question. With an ``echo`` canceller
(``EchoCanceller``, fed by ``Speaker(on_output=echo.play)``) the microphone is cleaned of the
speaker's sound first, so "stop" and the wake word are heard over the assistant's own voice.
What is heard when is the ``Listener``'s (listener.py); this module answers and plays.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgellm_sdk.errors import SpeechError

from .listener import Listener
from .types import AudioChunk
from .voice import VoiceLoop, VoiceTurn

if TYPE_CHECKING:
    from .echo import EchoCanceller
    from .vad import VoiceActivityDetector
    from .wakeword import WakeWordDetector


@dataclass(frozen=True)
class AssistantEvent:
    kind: str  # wake | utterance | answer | barge_in
    time_s: float  # on the microphone stream's clock
    text: str = ""
    turn: VoiceTurn | None = None


class VoiceAssistant:
    def __init__(
        self,
        voice: VoiceLoop,
        vad: VoiceActivityDetector,
        wake: WakeWordDetector | None = None,
        *,
        listen_s: float = 8.0,
        follow_up_s: float = 5.0,
        stop_words: tuple[str, ...] = ("stop", "停", "停下"),
        max_stop_s: float = 1.5,
        on_event: Callable[[AssistantEvent], None] | None = None,
        playback_timeout_s: float = 10.0,
        echo: EchoCanceller | None = None,
    ):
        self.voice = voice
        # the transcriber checks "stop" only while the reply is audible: answering has finished with it then
        self.listener = Listener(
            vad,
            wake,
            transcribe=voice.transcriber.transcribe_audio,
            echo=echo,
            stop_words=stop_words,
            max_stop_s=max_stop_s,
            listen_s=listen_s,
        )
        self.playback_timeout_s, self.follow_up_s = playback_timeout_s, follow_up_s
        self._speaking = threading.Event()  # set once the reply's first audio is out
        self.on_event = on_event or (lambda event: None)
        self.events: list[AssistantEvent] = []

    def _event(self, kind: str, time_s: float, text: str = "", turn: VoiceTurn | None = None) -> None:
        event = AssistantEvent(kind, time_s, text, turn)
        self.events.append(event)
        self.on_event(event)

    def run(
        self,
        mic: Iterable[AudioChunk],
        speaker,
        *,
        cancel: threading.Event | None = None,
        max_turns: int | None = None,
        join_timeout_s: float = 30.0,
    ) -> list[AssistantEvent]:
        """Until ``mic`` ends, ``cancel`` is set, or ``max_turns`` answers were given."""
        responder: threading.Thread | None = None
        reply_cancel = threading.Event()
        answered = 0
        for chunk in mic:
            if cancel is not None and cancel.is_set():
                break
            now = chunk.timestamp + chunk.duration_s
            if responder is not None and not responder.is_alive():
                responder, answered = None, answered + 1
                self.listener.reply_ended(now, self.follow_up_s)
                if max_turns is not None and answered >= max_turns:
                    break
            for heard in self.listener.hear(chunk, speaking=self._speaking.is_set(), busy=responder is not None):
                if heard.kind == "wake":
                    self._event("wake", now)
                if heard.barge_in:
                    reply_cancel.set()
                    speaker.stop()
                    self._event("barge_in", now, "stop" if heard.kind == "stop" else "")
                elif heard.kind == "utterance" and responder is None:
                    self._event("utterance", now)
                    reply_cancel = threading.Event()
                    responder = threading.Thread(
                        target=self._answer,
                        args=(heard.audio, speaker, reply_cancel, now),
                        name="edgellm-voice-reply",
                        daemon=True,
                    )
                    self._speaking.clear()
                    responder.start()
        if responder is not None:
            responder.join(join_timeout_s)
        return self.events

    def _answer(self, utterance: AudioChunk, speaker, cancel: threading.Event, now: float) -> None:
        """Answer on this thread while a player thread speaks the reply as one stream (one
        ``speaker.play``: the device starts once per answer, sentences follow without gaps)."""
        audio: queue.Queue = queue.Queue()
        failure: list[BaseException] = []

        def reply_audio() -> Iterator[AudioChunk]:
            while not cancel.is_set():
                try:
                    chunk = audio.get(timeout=0.05)
                except queue.Empty:
                    continue
                if chunk is None:
                    return
                yield chunk

        def play() -> None:
            try:
                speaker.play(reply_audio(), cancel=cancel)
            except BaseException as exc:  # noqa: BLE001 - re-raised on the answering thread
                failure.append(exc)
                cancel.set()  # the device is gone: stop generating too

        def on_audio(chunk: AudioChunk) -> None:
            self._speaking.set()  # from here on the transcriber is free for "stop"
            audio.put(chunk)

        player = threading.Thread(target=play, name="edgellm-voice-player", daemon=True)
        player.start()
        try:
            turn = self.voice.respond(utterance, cancel=cancel, on_audio=on_audio)
            audio.put(None)  # the end of the reply: the player plays out what is queued
            player.join(sum(c.duration_s for c in turn.audio) + self.playback_timeout_s)
            if failure:
                raise failure[0]
            if player.is_alive():
                cancel.set()
                raise SpeechError(
                    f"the speaker did not finish the reply within {self.playback_timeout_s:g} s "
                    "of its length (device stuck)"
                )
            if cancel.is_set():  # barge-in, possibly after the text was complete: not all of it was said
                turn.finish_reason = "cancelled"
            self._event("answer", now, turn.reply, turn)
        finally:
            audio.put(None)  # also when respond() failed: the player must not wait for more
            self._speaking.clear()
