"""Echo canceller: CPU per second of audio and echo return loss enhancement (ERLE) on real speech.

The assistant's voice (piper, 20 s of a story) goes through a simulated room (bulk delay
``--delay`` s: device buffers, then a 60 ms reverberant tail) into the microphone with low noise;
from 8 s on a person talks over it (double talk). Fed in 100 ms chunks as a microphone would,
speaker tap first. Reports CPU % of one core (time.process_time), ERLE per second, the time to
15 dB, ERLE during the double talk, and the delay the canceller measured.
Run: .venv/bin/python benchmarks/bench_echo.py [--delay 0.12]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from machine import describe, machine

from edgellm_sdk.speech.audio import resample
from edgellm_sdk.speech.echo import EchoCanceller
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk

OUT = Path(__file__).resolve().parent / "results" / "bench_echo.json"
RATE, CHUNK = 16000, 1600
STORY = (
    "Once upon a time, a brave little robot lived in a small workshop by the sea. Every morning it polished "
    "its wheels and went out to help the fishermen pull their nets. One stormy night the lighthouse went dark, "
    "and the little robot climbed the long stairs with a lamp on its head."
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--delay", type=float, default=0.12, help="bulk delay of the echo path (s)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    tts = open_synthesizer("piper")
    far_native = np.concatenate([c.samples for c in tts.synthesize(STORY)]).astype(np.float32)
    far = resample(AudioChunk(far_native, tts.sample_rate), RATE).samples.astype(np.float64)
    near = resample(
        AudioChunk(
            np.concatenate([c.samples for c in tts.synthesize("Hey, stop for a moment. What time is it?")]),
            tts.sample_rate,
        ),
        RATE,
    ).samples.astype(np.float64)
    rng = np.random.default_rng(0)
    n_tail, delay = int(0.06 * RATE), int(args.delay * RATE)
    tail = rng.normal(0, 1, n_tail) * np.exp(-np.arange(n_tail) / (0.015 * RATE))
    rir = np.zeros(delay + n_tail)
    rir[delay] = 0.8
    rir[delay:] += 0.3 * tail / np.abs(tail).max()
    echo = np.convolve(far, rir)[: len(far)]
    talk = slice(8 * RATE, 8 * RATE + len(near))
    person = np.zeros(len(echo))
    person[talk] = 0.5 * near
    mic = echo + person
    mic += rng.normal(0, 1e-3, len(mic))

    aec = EchoCanceller()
    out = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i in range(0, len(mic), CHUNK):
        aec.play(far[i : i + CHUNK].astype(np.float32), RATE)
        out.append(aec.process(AudioChunk(mic[i : i + CHUNK].astype(np.float32), RATE, i / RATE)).samples)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    clean = np.concatenate(out).astype(np.float64)
    clean = np.concatenate([clean[256:], np.zeros(256)])  # the canceller's one block of latency

    def erle(lo: int, hi: int) -> float:
        m, c = mic[lo:hi], clean[lo:hi]
        return round(float(10 * np.log10((m @ m) / (c @ c + 1e-12))), 1)

    def snr(x: np.ndarray, part: slice) -> float:
        p, rest = person[part], x[part] - person[part]
        return round(float(10 * np.log10((p @ p) / (rest @ rest + 1e-12))), 1)

    per_s = [erle(s * RATE, (s + 1) * RATE) for s in range(len(mic) // RATE)]
    to_15 = next((s + 1 for s, v in enumerate(per_s) if v >= 15 and s * RATE >= RATE), None)
    echo_only = [v for s, v in enumerate(per_s) if not (talk.start // RATE - 1 <= s <= talk.stop // RATE)]
    seconds = len(mic) / RATE
    report = {
        "host": {"machine": platform.machine(), "cores": os.cpu_count(), "python": platform.python_version()},
        "audio_s": round(seconds, 1),
        "delay_s": args.delay,
        "measured_delay_s": round(aec.delay_s, 4),
        "cpu_pct_one_core": round(100 * cpu / seconds, 2),
        "realtime_factor": round(wall / seconds, 4),
        "erle_db_per_s": per_s,
        "seconds_to_15db": to_15,
        "erle_db_echo_only_after_convergence_median": float(np.median(echo_only[3:])) if len(echo_only) > 3 else None,
        "double_talk_person_to_echo_db": {"microphone": snr(mic, talk), "cancelled": snr(clean, talk)},
        "note": "double_talk_person_to_echo_db: the person's voice vs everything else in the signal while they "
        "talk over the speaker, before and after cancellation",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
