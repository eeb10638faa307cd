"""The voice loop end to end on real components: piper/espeak speech -> moonshine -> default model -> TTS."""

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("moonshine_voice", reason="the speech extra is not installed")
pytest.importorskip("piper", reason="the speech extra is not installed")

from edgellm_sdk.speech.asr import normalize_text, open_transcriber
from edgellm_sdk.speech.audio import read_wav
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk
from edgellm_sdk.speech.voice import NOT_UNDERSTOOD, VoiceLoop

QUESTION = Path(__file__).resolve().parents[1] / "examples" / "data" / "question.wav"


@pytest.fixture(scope="module")
def speech_stack():
    asr, tts = open_transcriber("moonshine"), open_synthesizer("piper")
    yield asr, tts
    asr.close()
    tts.close()


def test_a_spoken_question_gets_a_spoken_answer(engine, speech_stack):
    asr, tts = speech_stack
    loop = VoiceLoop(engine, asr, tts)
    streamed = []
    turn = loop.respond(read_wav(QUESTION), on_audio=streamed.append)
    assert "capital of france" in normalize_text(turn.heard)
    assert "paris" in turn.reply.lower() and turn.finish_reason == "stop"
    assert streamed == turn.audio and sum(c.duration_s for c in turn.audio) > 1.0
    assert 0 < turn.asr_s < turn.first_audio_s <= turn.total_s
    answer = AudioChunk(np.concatenate([c.samples for c in turn.audio]), tts.sample_rate)
    assert "capital of france" in normalize_text(asr.transcribe_audio(answer))  # the answer is intelligible


def test_silence_is_answered_with_did_not_understand(engine, speech_stack):
    asr, _ = speech_stack
    loop = VoiceLoop(engine, asr, open_synthesizer("espeak", language="zh"), language="zh")
    turn = loop.respond(AudioChunk(np.zeros(16000, np.float32), 16000))
    assert turn.heard == "" and turn.reply == NOT_UNDERSTOOD["zh"] and turn.audio
    with pytest.raises(ValueError, match="language"):
        VoiceLoop(engine, asr, open_synthesizer("espeak"), language="fr")


def test_barge_in_cancel_stops_generation_and_speech(engine, speech_stack):
    asr, tts = speech_stack
    story = np.concatenate([c.samples for c in tts.synthesize("Tell me a long story about a brave little robot.")])
    cancel = threading.Event()
    loop = VoiceLoop(engine, asr, tts, max_tokens=200)
    turn = loop.respond(AudioChunk(story, tts.sample_rate), cancel=cancel, on_audio=lambda chunk: cancel.set())
    assert len(turn.audio) == 1 and turn.finish_reason == "cancelled"
    assert len(engine.tokenizer.encode(turn.reply)) < 150  # generation stopped early, not run to the end
    assert engine.complete("Hi", max_tokens=2).text  # the engine is free again at once


def test_voice_cli_headless_directory(default_store, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "q1.wav").write_bytes(QUESTION.read_bytes())
    import wave

    with wave.open(str(inputs / "silence.wav"), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000), w.writeframes(b"\0\0" * 16000)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgellm_sdk.cli",
            "voice",
            "--input",
            str(inputs),
            "--output",
            str(tmp_path / "out"),
            "--tts",
            "espeak",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["q1.answer.wav", "silence.answer.wav"]
    assert "Sorry, I did not understand." in r.stdout and "first audio" in r.stderr
    assert read_wav(tmp_path / "out" / "q1.answer.wav").duration_s > 0.5
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "edgellm_sdk.cli",
            "voice",
            "--input",
            str(tmp_path / "nope.wav"),
            "--output",
            str(tmp_path / "a.wav"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "not found" in bad.stderr
