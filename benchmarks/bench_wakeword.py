"""CPU cost of the wake-word detector and the Silero VAD per second of audio.

Feeds 30 s of audio (synthesized speech + silence + low noise, 16 kHz) in 100 ms chunks, as a
microphone would, and measures process CPU time (time.process_time). Reports % of one core
(CPU seconds per audio second x 100; target for the wake word: <= 5 %).
Run: .venv/bin/python benchmarks/bench_wakeword.py
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from machine import describe, machine

from edgellm_sdk.errors import EdgeLLMError
from edgellm_sdk.speech.audio import chunks, resample
from edgellm_sdk.speech.types import AudioChunk

OUT = Path(__file__).resolve().parent / "results" / "bench_wakeword.json"
SECONDS = 30.0
TARGET_WAKE_PCT = 5.0


def _audio() -> AudioChunk:
    rng = np.random.default_rng(0)
    n = int(SECONDS * 16000)
    x = (rng.standard_normal(n) * 0.003).astype(np.float32)
    try:
        from edgellm_sdk.speech.tts import open_synthesizer

        with open_synthesizer("piper") as tts:
            parts = list(tts.synthesize("Okay Nabu. Turn left at the next corridor, then stop near the charging dock."))
        speech = resample(AudioChunk(np.concatenate([p.samples for p in parts]), parts[0].sample_rate), 16000).samples
        for at in range(16000, n - len(speech), len(speech) + 3 * 16000):
            x[at : at + len(speech)] += speech
    except (ImportError, OSError, EdgeLLMError) as e:  # benchmark still runs on noise only
        print(f"(no piper speech: {e})")
    return AudioChunk(np.clip(x, -1, 1), 16000)


def _cpu(fn, audio: AudioChunk, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        fn(audio)
        best = min(best, time.process_time() - t)
    return best


def main() -> dict:
    from edgellm_sdk.speech.vad import VoiceActivityDetector
    from edgellm_sdk.speech.wakeword import WakeWordDetector

    audio = _audio()
    results: dict = {
        "audio_s": SECONDS,
        "chunk_s": 0.1,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "wake_word": {},
        "vad": {},
    }
    for model in ("okay_nabu", "hey_jarvis"):
        det = WakeWordDetector(model)

        def run(a, det=det):
            det.reset()
            for c in chunks(a, 0.1):
                det.process(c)

        cpu = _cpu(run, audio)
        results["wake_word"][model] = {
            "cpu_s": round(cpu, 4),
            "pct_of_core": round(100 * cpu / SECONDS, 2),
            "detections": len(det.detections),
            "target_pct": TARGET_WAKE_PCT,
            "meets_target": 100 * cpu / SECONDS <= TARGET_WAKE_PCT,
        }
        det.close()
    for rate in (16000, 48000):
        a = audio if rate == 16000 else resample(audio, rate)
        vad = VoiceActivityDetector()
        found: list = []

        def run(a, vad=vad, found=found):
            vad.reset()
            found.clear()
            for c in chunks(a, 0.1):
                found.extend(vad.process(c))
            found.extend(vad.flush())

        cpu = _cpu(run, a)
        results["vad"][f"{rate}Hz_input"] = {
            "cpu_s": round(cpu, 4),
            "pct_of_core": round(100 * cpu / SECONDS, 2),
            "utterances": len(found),
        }
    OUT.parent.mkdir(exist_ok=True)
    results["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(results["machine"]))
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
