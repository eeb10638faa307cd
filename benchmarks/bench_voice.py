"""Voice assistant latency and speech round-trip quality on the default model.

1. End of speech -> first reply audio: 12 spoken questions (piper voice) through VoiceLoop
   (moonshine ASR, default model q4, piper TTS), median and p90.
2. TTS -> ASR word error rate on 30 robot commands from benchmarks/data/commands_dev.jsonl,
   per TTS backend (piper, espeak-ng), transcribed by moonshine.

    .venv/bin/python benchmarks/bench_voice.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
from machine import describe, machine

from edgellm_sdk import Engine
from edgellm_sdk.speech.asr import open_transcriber, word_error_rate
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk
from edgellm_sdk.speech.voice import VoiceLoop

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What is the capital of France?",
    "How many legs does a spider have?",
    "What color is the sky?",
    "Name a planet in our solar system.",
    "What do robots use to see?",
    "How many days are in a week?",
    "What is two plus three?",
    "Which animal says moo?",
    "What is the boiling point of water?",
    "Say hello to my friend.",
    "What is the largest ocean?",
    "What language is spoken in Spain?",
]


def speak(tts, text: str) -> AudioChunk:
    return AudioChunk(np.concatenate([c.samples for c in tts.synthesize(text)]), tts.sample_rate)


def main() -> None:
    commands = [
        json.loads(line)["text"] for line in (ROOT / "benchmarks/data/commands_dev.jsonl").read_text().splitlines()
    ]
    commands = [c for c in commands if c.isascii()][::5][:30]
    asr, piper, espeak = open_transcriber("moonshine"), open_synthesizer("piper"), open_synthesizer("espeak")
    report = {"date": time.strftime("%Y-%m-%d"), "latency": {}, "round_trip_wer": {}}
    with Engine.load("smollm2-135m", threads=2) as engine:
        loop = VoiceLoop(engine, asr, piper)
        turns = []
        for q in QUESTIONS:
            t = loop.respond(speak(piper, q))
            turns.append(
                {
                    "question": q,
                    "heard": t.heard,
                    "reply": t.reply,
                    "asr_s": t.asr_s,
                    "first_audio_s": t.first_audio_s,
                    "total_s": t.total_s,
                }
            )
        first = sorted(t["first_audio_s"] for t in turns)
        report["latency"] = {
            "n": len(turns),
            "first_audio_s_median": statistics.median(first),
            "first_audio_s_p90": first[int(0.9 * (len(first) - 1))],
            "asr_s_median": statistics.median(t["asr_s"] for t in turns),
            "turns": turns,
        }
    for name, tts in (("piper", piper), ("espeak-ng", espeak)):
        rows = []
        for text in commands:
            audio = speak(tts, text)
            t = time.perf_counter()
            heard = asr.transcribe_audio(audio)
            rows.append(
                {
                    "text": text,
                    "heard": heard,
                    "wer": word_error_rate(text, heard),
                    "asr_rtf": (time.perf_counter() - t) / audio.duration_s,
                }
            )
        report["round_trip_wer"][f"{name} -> moonshine"] = {
            "n": len(rows),
            "wer_mean": sum(r["wer"] for r in rows) / len(rows),
            "asr_rtf_median": statistics.median(r["asr_rtf"] for r in rows),
            "rows": rows,
        }
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    (ROOT / "benchmarks/results/bench_voice.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print({k: v for k, v in report["latency"].items() if k != "turns"})
    for k, v in report["round_trip_wer"].items():
        print(k, {a: b for a, b in v.items() if a != "rows"})


if __name__ == "__main__":
    main()
