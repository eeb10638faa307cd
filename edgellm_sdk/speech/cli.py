"""`edgellm voice`: the voice assistant, live (microphone, wake word, speaker) or headless (WAV in, WAV out);
`edgellm serve-wyoming`: the same ASR, TTS and model as Wyoming services."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cli.common import add_model_args, cancel_on_sigint, engine_from_args
from ..errors import SpeechError


def add_parser(sub) -> None:
    p = sub.add_parser(
        "voice",
        help="voice assistant: live (microphone, wake word, speaker), or headless "
        "with --input question.wav --output answer.wav (or directories)",
    )
    p.add_argument("--input", help="headless: a WAV file, or a directory of WAV files")
    p.add_argument("--output", help="headless: the answer WAV file, or a directory (one answer per input)")
    p.add_argument("--wake", default="okay_nabu", help="live: wake word model, or 'none' to always listen")
    p.add_argument("--mic", help="live: input device name (default: the system default)")
    p.add_argument("--speaker", help="live: output device name (default: the system default)")
    p.add_argument("--follow-up", type=float, default=5.0, help="live: seconds to listen after an answer")
    p.add_argument(
        "--echo-tail",
        type=float,
        default=0.25,
        help="live: echo cancellation covers speaker-to-microphone paths (device buffers + room) up to "
        "this many seconds; 0 turns it off (headphones)",
    )
    p.add_argument("--language", default="en", choices=("en", "zh"))
    _add_speech_args(p, max_tokens=64)
    p.set_defaults(func=cmd_voice)


def _add_speech_args(p, *, max_tokens: int) -> None:
    p.add_argument("--asr", default="moonshine", choices=("moonshine", "vosk"))
    p.add_argument("--asr-model", help="vosk model directory (or an installed model package name)")
    p.add_argument("--tts", default="piper", choices=("piper", "espeak"))
    p.add_argument("--system", help="system prompt")
    p.add_argument("--max-tokens", type=int, default=max_tokens)
    add_model_args(p)


def _engine(args):
    from ..cache.response import ResponseCache

    return engine_from_args(args, response_cache=ResponseCache())  # repeated questions


def _transcriber(args):
    from .asr import open_transcriber

    return open_transcriber(args.asr, **({"model": args.asr_model} if args.asr_model else {}))


def _pairs(source: Path, target: Path) -> list[tuple[Path, Path]]:
    if source.is_dir():
        inputs = sorted(source.glob("*.wav"))
        if not inputs:
            raise SpeechError(f"no .wav files in {source}")
        target.mkdir(parents=True, exist_ok=True)
        return [(i, target / f"{i.stem}.answer.wav") for i in inputs]
    if not source.is_file():
        raise SpeechError(f"{source} not found: give a WAV file or a directory of WAV files")
    if target.is_dir():
        return [(source, target / f"{source.stem}.answer.wav")]
    return [(source, target)]


def cmd_voice(args) -> int:
    import numpy as np

    from .audio import read_wav, write_wav
    from .tts import open_synthesizer
    from .types import AudioChunk
    from .voice import SYSTEM, VoiceLoop

    if (args.input is None) != (args.output is None):
        raise SpeechError("headless mode needs both --input and --output; give neither for the live assistant")
    if args.input is None:
        return _live(args)
    pairs = _pairs(Path(args.input), Path(args.output))
    cancel = cancel_on_sigint()
    with _engine(args) as engine:
        transcriber = _transcriber(args)
        synthesizer = open_synthesizer(args.tts, language=args.language)
        loop = VoiceLoop(
            engine,
            transcriber,
            synthesizer,
            system=args.system or SYSTEM,
            language=args.language,
            max_tokens=args.max_tokens,
        )
        for question, answer in pairs:
            turn = loop.respond(read_wav(question), cancel=cancel)
            audio = np.concatenate([c.samples for c in turn.audio]) if turn.audio else np.zeros(0, np.float32)
            write_wav(answer, AudioChunk(audio, synthesizer.sample_rate))
            print(f"{question.name}: heard {turn.heard!r} -> {turn.reply.strip()!r} -> {answer}")
            first = f"{turn.first_audio_s:.2f}" if turn.first_audio_s is not None else "-"
            print(
                f"  asr {turn.asr_s:.2f} s, first audio {first} s after end of speech, total {turn.total_s:.2f} s",
                file=sys.stderr,
            )
        transcriber.close()
        synthesizer.close()
    return 0


def _live(args) -> int:
    from .assistant import VoiceAssistant
    from .devices import Microphone, Speaker
    from .echo import EchoCanceller
    from .tts import open_synthesizer
    from .vad import VoiceActivityDetector
    from .voice import SYSTEM, VoiceLoop
    from .wakeword import WakeWordDetector

    wake = None if args.wake == "none" else WakeWordDetector(args.wake)
    cancel = cancel_on_sigint()

    def show(event) -> None:
        line = {"wake": "(listening)", "utterance": "(thinking)", "barge_in": "(interrupted)"}.get(event.kind)
        if event.kind == "answer":
            line = f"you: {event.turn.heard}\nassistant: {event.turn.reply.strip()}"
        print(line, flush=True)

    echo = EchoCanceller(tail_s=args.echo_tail) if args.echo_tail > 0 else None
    tap = echo.play if echo is not None else None
    with _engine(args) as engine, Microphone(args.mic) as mic, Speaker(args.speaker, on_output=tap) as speaker:
        loop = VoiceLoop(
            engine,
            _transcriber(args),
            open_synthesizer(args.tts, language=args.language),
            system=args.system or SYSTEM,
            language=args.language,
            max_tokens=args.max_tokens,
        )
        print(f"say {args.wake!r} and ask (Ctrl-C to stop)" if wake else "listening (Ctrl-C to stop)", flush=True)
        VoiceAssistant(loop, VoiceActivityDetector(), wake, follow_up_s=args.follow_up, on_event=show, echo=echo).run(
            mic, speaker, cancel=cancel
        )
    return 0


def add_wyoming_parser(sub) -> None:
    p = sub.add_parser("serve-wyoming", help="serve ASR, TTS and the LLM to Home Assistant / Wyoming satellites")
    p.add_argument("--uri", default="tcp://127.0.0.1:10700", help="tcp://HOST:PORT or unix://PATH")
    _add_speech_args(p, max_tokens=96)
    p.set_defaults(func=cmd_serve_wyoming)


def cmd_serve_wyoming(args) -> int:
    import asyncio

    from .tts import open_synthesizer
    from .voice import SYSTEM
    from .wyoming_server import serve

    if not args.uri.startswith(("tcp://", "unix://")):
        raise SpeechError(f"--uri must be tcp://HOST:PORT or unix://PATH, got {args.uri!r}")
    with _engine(args) as engine:
        transcriber = _transcriber(args)
        synthesizer = open_synthesizer(args.tts)
        print(f"serving Wyoming ASR/TTS/handle on {args.uri}", file=sys.stderr, flush=True)
        try:
            asyncio.run(
                serve(
                    args.uri, engine, transcriber, synthesizer, system=args.system or SYSTEM, max_tokens=args.max_tokens
                )
            )
        except KeyboardInterrupt:
            pass
    return 0
