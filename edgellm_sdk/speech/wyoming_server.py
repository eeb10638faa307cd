"""Wyoming server: the device's ASR, TTS and LLM "handle" services for Home Assistant / satellites.

One connection = one handler. Blocking work (ASR, TTS, generation) runs in threads; generated
text streams back as handled-start / handled-chunk / handled-stop, synthesized audio as
audio-start / audio-chunk / audio-stop (sentence by sentence, also for streamed synthesis).
``describe`` advertises what is loaded: the engine's model, the ASR's and the voice's languages.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

import numpy as np

from ..errors import MissingDependency
from .sentences import SentenceSplitter
from .types import AudioChunk
from .voice import SYSTEM

if TYPE_CHECKING:
    from wyoming.info import Info

    from ..engine_api import EngineAPI
    from .asr import Transcriber
    from .tts import Synthesizer

SAMPLES_PER_CHUNK = 1024


def _require_wyoming() -> None:
    try:
        import wyoming  # noqa: F401
    except ImportError:
        raise MissingDependency(
            "wyoming",
            "speech",
            message="the Wyoming server needs the wyoming package; install it with: pip install 'edgellm-sdk[speech]'",
        ) from None


def _languages(part: Transcriber | Synthesizer) -> list[str]:
    return [part.language] if part.language else []


def build_info(engine: EngineAPI, transcriber: Transcriber, synthesizer: Synthesizer) -> Info:
    """The ``info`` event's content. The handle model is named by the engine's ``model_id``
    ("name:variant:digest": the name, with the rest as its version); it is asked in the ASR's language."""
    from wyoming.info import AsrModel, AsrProgram, Attribution, HandleModel, HandleProgram, Info, TtsProgram, TtsVoice

    ours = Attribution(name="EdgeLLM SDK", url="https://pypi.org/project/edgellm-sdk/")
    model, _, version = engine.model_id.partition(":")
    asr_languages = _languages(transcriber)
    return Info(
        asr=[
            AsrProgram(
                name="edgellm-asr",
                attribution=ours,
                installed=True,
                description="on-device ASR",
                version=None,
                models=[
                    AsrModel(
                        name=type(transcriber).__name__,
                        attribution=ours,
                        installed=True,
                        description=None,
                        version=None,
                        languages=asr_languages,
                    )
                ],
            )
        ],
        tts=[
            TtsProgram(
                name="edgellm-tts",
                attribution=ours,
                installed=True,
                description="on-device TTS",
                version=None,
                supports_synthesize_streaming=True,
                voices=[
                    TtsVoice(
                        name=synthesizer.name,
                        attribution=ours,
                        installed=True,
                        description=None,
                        version=None,
                        languages=_languages(synthesizer),
                    )
                ],
            )
        ],
        handle=[
            HandleProgram(
                name="edgellm-llm",
                attribution=ours,
                installed=True,
                description="on-device LLM",
                version=None,
                supports_handled_streaming=True,
                models=[
                    HandleModel(
                        name=model,
                        attribution=ours,
                        installed=True,
                        description=None,
                        version=version or None,
                        languages=asr_languages,
                    )
                ],
            )
        ],
    )


def make_handler_class():
    _require_wyoming()
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk as WyChunk
    from wyoming.audio import AudioStart, AudioStop
    from wyoming.handle import HandledChunk, HandledStart, HandledStop
    from wyoming.info import Describe
    from wyoming.server import AsyncEventHandler
    from wyoming.tts import Synthesize, SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeStopped

    class Handler(AsyncEventHandler):
        def __init__(
            self,
            engine: EngineAPI,
            transcriber: Transcriber,
            synthesizer: Synthesizer,
            system: str,
            max_tokens: int,
            *args,
            **kwargs,
        ):
            super().__init__(*args, **kwargs)
            self.engine, self.transcriber, self.synthesizer = engine, transcriber, synthesizer
            self.system, self.max_tokens = system, max_tokens
            self._audio: list[np.ndarray] = []
            self._rate = 16000
            self._splitter: SentenceSplitter | None = None
            self._cancel = threading.Event()

        async def handle_event(self, event) -> bool:
            if Describe.is_type(event.type):
                await self.write_event(build_info(self.engine, self.transcriber, self.synthesizer).event())
            elif Transcribe.is_type(event.type) or AudioStart.is_type(event.type):
                self._audio = []
            elif WyChunk.is_type(event.type):
                chunk = WyChunk.from_event(event)
                self._rate = chunk.rate
                pcm = np.frombuffer(chunk.audio, dtype=np.int16).astype(np.float32) / 32768.0
                self._audio.append(pcm.reshape(-1, chunk.channels).mean(axis=1))
            elif AudioStop.is_type(event.type):
                samples = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
                text = await asyncio.to_thread(self.transcriber.transcribe_audio, AudioChunk(samples, self._rate))
                await self.write_event(Transcript(text=text.strip()).event())
            elif Transcript.is_type(event.type):  # a handle request: the user's words
                await self._handle(Transcript.from_event(event).text)
            elif Synthesize.is_type(event.type) and self._splitter is None:
                await self._speak([Synthesize.from_event(event).text], start=True, stop=True)
            elif SynthesizeStart.is_type(event.type):
                self._splitter = SentenceSplitter()
                await self._speak([], start=True, stop=False)
            elif SynthesizeChunk.is_type(event.type) and self._splitter is not None:
                await self._speak(self._splitter.feed(SynthesizeChunk.from_event(event).text), start=False, stop=False)
            elif SynthesizeStop.is_type(event.type) and self._splitter is not None:
                await self._speak(self._splitter.flush(), start=False, stop=True)
                self._splitter = None
                await self.write_event(SynthesizeStopped().event())
            return True

        async def _speak(self, sentences: list[str], *, start: bool, stop: bool) -> None:
            rate = self.synthesizer.sample_rate
            if start:
                await self.write_event(AudioStart(rate=rate, width=2, channels=1).event())
            for sentence in sentences:
                chunks = await asyncio.to_thread(list, self.synthesizer.synthesize(sentence))  # lazy: runs there
                for c in chunks:
                    pcm = (np.clip(c.samples, -1, 1) * 32767).astype("<i2")
                    for i in range(0, len(pcm), SAMPLES_PER_CHUNK):
                        await self.write_event(
                            WyChunk(
                                rate=rate, width=2, channels=1, audio=pcm[i : i + SAMPLES_PER_CHUNK].tobytes()
                            ).event()
                        )
            if stop:
                await self.write_event(AudioStop().event())

        async def _handle(self, text: str) -> None:
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue[str | None] = asyncio.Queue()
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": text}]

            def generate() -> None:
                try:
                    for token in self.engine.generate(messages, max_tokens=self.max_tokens, cancel=self._cancel):
                        if token.text:
                            loop.call_soon_threadsafe(queue.put_nowait, token.text)
                finally:
                    loop.call_soon_threadsafe(queue.put_nowait, None)

            await self.write_event(HandledStart().event())
            worker = loop.run_in_executor(None, generate)
            while (delta := await queue.get()) is not None:
                await self.write_event(HandledChunk(text=delta).event())
            await worker
            await self.write_event(HandledStop().event())

        async def disconnect(self) -> None:
            self._cancel.set()  # the client left: stop generating for it
            await super().disconnect()

    return Handler


async def serve(
    uri: str,
    engine: EngineAPI,
    transcriber: Transcriber,
    synthesizer: Synthesizer,
    *,
    system: str = SYSTEM,
    max_tokens: int = 96,
    ready: threading.Event | None = None,
) -> None:
    """Serve until cancelled (or SIGINT/SIGTERM)."""
    _require_wyoming()
    from functools import partial

    from wyoming.server import AsyncServer

    handler = make_handler_class()
    server = AsyncServer.from_uri(uri)
    await server.start(partial(handler, engine, transcriber, synthesizer, system, max_tokens))
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
