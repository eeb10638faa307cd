"""VoiceLoop: speech in -> ASR -> Engine (streamed) -> TTS per sentence -> speech out.

TTS starts on the first complete sentence while the model is still generating, so the time
from the end of speech to the first audio is ASR + prefill + one sentence + its synthesis.
Nothing heard (silence, noise) gets a spoken "did not understand", never a model call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .types import AudioChunk

if TYPE_CHECKING:
    from ..engine_api import EngineAPI
    from .asr import Transcriber
    from .tts import Synthesizer

SYSTEM = "You are a helpful voice assistant on a small robot. Answer in one or two short sentences."
NOT_UNDERSTOOD = {"en": "Sorry, I did not understand.", "zh": "对不起，我没听懂。"}


@dataclass
class VoiceTurn:
    heard: str = ""
    reply: str = ""
    audio: list[AudioChunk] = field(default_factory=list)
    asr_s: float = 0.0
    first_audio_s: float | None = None  # end of speech -> first reply audio
    total_s: float = 0.0
    finish_reason: str | None = None


class VoiceLoop:
    def __init__(
        self,
        engine: EngineAPI,
        transcriber: Transcriber,
        synthesizer: Synthesizer,
        *,
        system: str = SYSTEM,
        language: str = "en",
        max_tokens: int = 64,
        deadline_s: float | None = 15.0,
    ):
        if language not in NOT_UNDERSTOOD:
            raise ValueError(f"language must be one of {sorted(NOT_UNDERSTOOD)}, got {language!r}")
        self.engine, self.transcriber, self.synthesizer = engine, transcriber, synthesizer
        self.language, self.max_tokens, self.deadline_s = language, max_tokens, deadline_s
        self._system = {"role": "system", "content": system}
        if engine.prefix_cache is not None:
            engine.warm([self._system])

    def respond(self, speech: AudioChunk, *, cancel: threading.Event | None = None, on_audio=None) -> VoiceTurn:
        """One turn for a finished utterance; ``on_audio(chunk)`` gets reply audio as it is made."""
        turn = VoiceTurn()
        t0 = time.perf_counter()
        turn.heard = self.transcriber.transcribe_audio(speech).strip()
        turn.asr_s = time.perf_counter() - t0
        deltas = self._reply_deltas(turn, cancel)
        audio = self.synthesizer.speak_stream(deltas)
        try:
            for chunk in audio:
                if turn.first_audio_s is None:
                    turn.first_audio_s = time.perf_counter() - t0
                turn.audio.append(chunk)
                if on_audio is not None:
                    on_audio(chunk)
                if cancel is not None and cancel.is_set():
                    turn.finish_reason = "cancelled"  # barge-in: stop speaking and generating
                    break
        finally:
            audio.close()
            deltas.close()  # releases the Engine at once, even when the turn was cut short
        turn.total_s = time.perf_counter() - t0
        return turn

    def _reply_deltas(self, turn: VoiceTurn, cancel: threading.Event | None) -> Generator[str, None, None]:
        if not turn.heard:
            turn.reply, turn.finish_reason = NOT_UNDERSTOOD[self.language], "not_understood"
            yield turn.reply
            return
        messages = [self._system, {"role": "user", "content": turn.heard}]
        for token in self.engine.generate(
            messages, max_tokens=self.max_tokens, deadline_s=self.deadline_s, cancel=cancel
        ):
            turn.reply += token.text
            if token.finish_reason is not None:
                turn.finish_reason = token.finish_reason
            yield token.text
