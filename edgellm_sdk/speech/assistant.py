"""VoiceAssistant: the live loop — wake word, listen until end of speech, answer aloud, barge-in.

    mic chunks -> wake word? -> VAD utterance -> VoiceLoop (ASR -> Engine -> TTS) -> speaker

While it speaks it keeps listening for the wake word: hearing it cuts playback and generation
(barge-in) and listens again. After an answer it listens for ``follow_up_s`` without the wake
word. It does not listen to speech while speaking (no echo cancellation here).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .types import AudioChunk
from .voice import VoiceLoop, VoiceTurn


@dataclass(frozen=True)
class AssistantEvent:
    kind: str  # wake | utterance | answer | barge_in
    time_s: float  # on the microphone stream's clock
    text: str = ""
    turn: VoiceTurn | None = None


class VoiceAssistant:
    def __init__(self, voice: VoiceLoop, vad, wake=None, *, listen_s: float = 8.0, follow_up_s: float = 5.0,
                 on_event: Callable[[AssistantEvent], None] | None = None):
        self.voice, self.vad, self.wake = voice, vad, wake
        self.listen_s, self.follow_up_s = listen_s, follow_up_s
        self.on_event = on_event or (lambda event: None)
        self.events: list[AssistantEvent] = []

    def _event(self, kind: str, time_s: float, text: str = "", turn: VoiceTurn | None = None) -> None:
        event = AssistantEvent(kind, time_s, text, turn)
        self.events.append(event)
        self.on_event(event)

    def run(self, mic: Iterable[AudioChunk], speaker, *, cancel: threading.Event | None = None,
            max_turns: int | None = None, join_timeout_s: float = 30.0) -> list[AssistantEvent]:
        """Until ``mic`` ends, ``cancel`` is set, or ``max_turns`` answers were given."""
        awake_until = float("inf") if self.wake is None else float("-inf")
        responder: threading.Thread | None = None
        reply_cancel = threading.Event()
        answered = 0
        for chunk in mic:
            if cancel is not None and cancel.is_set():
                break
            now = chunk.timestamp + chunk.duration_s
            if responder is not None and not responder.is_alive():
                responder, answered = None, answered + 1
                awake_until = max(awake_until, now + self.follow_up_s) if self.wake is not None else awake_until
                if max_turns is not None and answered >= max_turns:
                    break
            if self.wake is not None and self.wake.process(chunk):
                self._event("wake", now)
                if responder is not None:
                    reply_cancel.set()
                    speaker.stop()
                    self._event("barge_in", now)
                awake_until = now + self.listen_s
                self.vad.reset()
                continue
            if responder is not None or (now > awake_until and not self.vad.in_speech):
                continue  # speaking, or asleep (an utterance begun while awake is heard to its end)
            for utterance in self.vad.process(chunk):
                self._event("utterance", now)
                reply_cancel = threading.Event()
                responder = threading.Thread(target=self._answer, args=(utterance, speaker, reply_cancel, now),
                                             name="edgellm-voice-reply", daemon=True)
                responder.start()
                break
        if responder is not None:
            responder.join(join_timeout_s)
        return self.events

    def _answer(self, utterance: AudioChunk, speaker, cancel: threading.Event, now: float) -> None:
        turn = self.voice.respond(utterance, cancel=cancel, on_audio=lambda c: speaker.play([c], cancel=cancel))
        self._event("answer", now, turn.reply, turn)
