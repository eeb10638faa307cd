"""TTS latency: time to first chunk (TTFC) and real-time factor per backend.

For each backend, 12 typical assistant replies (one or two sentences) are synthesized, --repeat
times, after a warm-up; TTFC = synthesize() call -> first AudioChunk (target median <= 0.25 s),
RTF = synthesis time / audio duration. Piper runs with and without ``fast_start`` (first clause
as its own chunk). Also: speak_stream on a simulated LLM (one word every 10 ms): the delta
that lets the first phrase / sentence go -> its audio. Configurations run interleaved.

    .venv/bin/python benchmarks/bench_tts.py [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from machine import describe, machine

from edgellm_sdk.speech.tts import open_synthesizer

OUT = Path(__file__).resolve().parent / "results" / "bench_tts.json"
EN = [
    "The kitchen is clear.",
    "Turn left at the next corridor, then stop near the charging dock.",
    "The battery is at eighty percent, so I can keep working for two more hours.",
    "I found three red boxes on the second shelf.",
    "Sorry, I did not understand that.",
    "The temperature in greenhouse two is rising quickly. Should I open the vent?",
    "Okay, I am on my way.",
    "The front door is locked and the lights are off.",
    "My left wheel motor is drawing more current than usual, please check it soon.",
    "It is three thirty in the afternoon.",
    "I can pick up the cup, but the table is too far away for my arm.",
    "Hello! How can I help you today?",
]
ZH = [
    "厨房里没有人。",
    "在下一个走廊左转，然后停在充电桩旁边。",
    "电池电量是百分之八十，我还可以工作两个小时。",
    "我在第二层架子上找到了三个红盒子。",
    "对不起，我没听懂。",
    "二号温室的温度上升得很快，要打开通风口吗？",
    "好的，我马上过去。",
    "前门锁好了，灯也关了。",
    "左轮电机的电流比平时大，请尽快检查。",
    "现在是下午三点半。",
    "我能拿起杯子，但是桌子离我的手臂太远了。",
    "你好！今天我能帮你做什么？",
]


def synth_once(tts, text: str) -> tuple[float, float, float]:
    """(time to first chunk, total synthesis time, audio seconds) for one text."""
    t0 = time.perf_counter()
    first, audio = None, 0.0
    for chunk in tts.synthesize(text):
        first = first if first is not None else time.perf_counter() - t0
        audio += chunk.duration_s
    return first, time.perf_counter() - t0, audio


def summarize(samples: list[tuple[float, float, float]]) -> dict:
    ttfc = [s[0] for s in samples]
    return {
        "n": len(samples),
        "ttfc_median_s": round(statistics.median(ttfc), 4),
        "ttfc_p90_s": round(statistics.quantiles(ttfc, n=10)[-1], 4),
        "ttfc_max_s": round(max(ttfc), 4),
        "rtf_median": round(statistics.median(s[1] / s[2] for s in samples), 4),
        "rtf_overall": round(sum(s[1] for s in samples) / sum(s[2] for s in samples), 4),
        "audio_s_per_pass": round(sum(s[2] for s in samples) / (len(samples) / 12), 2),
        "meets_ttfc_target": statistics.median(ttfc) <= 0.25,
    }


def stream_latency(tts, text: str, word_s: float = 0.01) -> float:
    """Simulated LLM: seconds from the delta that ends the first sentence (or clause) to audio."""
    marks: list[float] = []

    def llm():
        for word in text.split(" "):
            time.sleep(word_s)
            marks.append(time.perf_counter())
            yield word + " "

    next(iter(tts.speak_stream(llm())))
    return time.perf_counter() - marks[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    configs = [
        ("piper", "en", {"fast_start": True}, EN),
        ("piper", "en", {"fast_start": False}, EN),
        ("espeak", "en", {}, EN),
        ("espeak", "zh", {}, ZH),
    ]
    rows, engines = [], []
    for name, language, options, sentences in configs:
        row = {"backend": name, "language": language, "options": options}
        t = time.perf_counter()
        try:
            tts = open_synthesizer(name, language=language, **options)
        except Exception as e:  # noqa: BLE001  # a backend not installed is reported, not fatal
            rows.append(row | {"error": str(e)})
            continue
        row["open_s"] = round(time.perf_counter() - t, 3)
        synth_once(tts, sentences[0])  # warm-up
        rows.append(row)
        engines.append((row, tts, sentences, [], []))
    # interleaved (sentence by sentence across backends) so that load from other processes on
    # this shared machine hits every configuration alike
    for _ in range(args.repeat):
        for i in range(len(EN)):
            for _row, tts, sentences, samples, stream in engines:
                samples.append(synth_once(tts, sentences[i]))
                stream.append(stream_latency(tts, sentences[i]))
    for row, tts, _sentences, samples, stream in engines:
        row |= summarize(samples)
        row["stream_first_audio_median_s"] = round(statistics.median(stream), 4)
        tts.close()
        print(json.dumps(row, ensure_ascii=False))
    results = rows
    OUT.parent.mkdir(exist_ok=True)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg": os.getloadavg()},
        "target_ttfc_median_s": 0.25,
        "results": results,
    }
    report["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(report["machine"]))
    OUT.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
