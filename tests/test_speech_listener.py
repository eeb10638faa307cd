"""The Listener on real audio: piper speech into the silero VAD, the okay_nabu wake word and moonshine
(stop words), chunk by chunk on the stream's clock; echo cancellation on a simulated speaker-to-mic
path. A last seam test drives the state machine with scripted detectors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pymicro_wakeword", reason="the speech extra is not installed")
pytest.importorskip("piper", reason="the speech extra is not installed")
pytest.importorskip("moonshine_voice", reason="the speech extra is not installed")

from edgellm_sdk.speech.asr import open_transcriber, word_error_rate
from edgellm_sdk.speech.audio import resample
from edgellm_sdk.speech.listener import Heard, Listener
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk
from edgellm_sdk.speech.vad import VoiceActivityDetector
from edgellm_sdk.speech.wakeword import WakeWordDetector

RATE, BLOCK = 16000, 1600
QUESTION = "What is the capital of France?"
OTHER = "How many legs does a spider have?"
STORY = (
    "Once upon a time a small robot lived in a quiet garden. Every morning it watered the tomatoes and counted "
    "the bees. One day a storm came over the hills, and the robot had to carry every flower pot into the shed."
)


@pytest.fixture(scope="module")
def asr():
    with open_transcriber("moonshine") as transcriber:
        yield transcriber


@pytest.fixture(scope="module")
def say():
    """Piper speech of a text as 16 kHz samples (cached: the tests reuse the same phrases). Without
    piper's noise the speech is the same on every run, so the tests are reproducible."""
    spoken: dict[str, np.ndarray] = {}
    with open_synthesizer("piper", noise_scale=0.0, noise_w_scale=0.0) as tts:

        def speech(text: str) -> np.ndarray:
            if text not in spoken:
                audio = np.concatenate([c.samples for c in tts.synthesize(text)])
                spoken[text] = resample(AudioChunk(audio, tts.sample_rate), RATE).samples
            return spoken[text]

        yield speech


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


class Mic:
    """Feeds audio to a listener in 0.1 s chunks on one continuous stream clock."""

    def __init__(self, listener: Listener):
        self.listener, self.pos = listener, 0

    @property
    def now(self) -> float:
        return self.pos / RATE

    def feed(self, *parts: np.ndarray, **state: bool) -> list[Heard]:
        audio = np.concatenate(parts).astype(np.float32)
        heard = []
        for i in range(0, len(audio), BLOCK):
            block = audio[i : i + BLOCK]
            heard += self.listener.hear(AudioChunk(block, RATE, self.now), **state)
            self.pos += len(block)
        return heard


def kinds(heard: list[Heard]) -> list[tuple[str, bool]]:
    return [(h.kind, h.barge_in) for h in heard]


def listener(asr, wake: bool = True, **options) -> Listener:
    return Listener(
        VoiceActivityDetector(min_silence_s=0.3),
        WakeWordDetector("okay_nabu") if wake else None,
        transcribe=asr.transcribe_audio,
        **options,
    )


def test_without_a_wake_word_every_utterance_is_heard_with_its_audio(asr, say):
    mic = Mic(listener(asr, wake=False))
    assert mic.listener.awake
    heard = mic.feed(silence(0.5), say(QUESTION), silence(1.0), say(OTHER), silence(1.0))
    assert kinds(heard) == [("utterance", False)] * 2
    first, second = heard
    assert word_error_rate(QUESTION, asr.transcribe_audio(first.audio)) <= 0.2
    assert word_error_rate(OTHER, asr.transcribe_audio(second.audio)) <= 0.2
    # on the stream's clock: the first utterance starts after the 0.5 s of silence, ends before the second
    assert 0.2 < first.audio.timestamp < 0.7 < first.time_s < second.audio.timestamp


@pytest.mark.parametrize("one_per_wake", [False, True], ids=["window-stays-open", "one-utterance-per-wake"])
def test_the_wake_word_opens_a_window(asr, say, one_per_wake):
    mic = Mic(listener(asr, one_utterance_per_wake=one_per_wake))
    assert mic.feed(silence(0.3), say(QUESTION), silence(1.0)) == []  # asleep: not heard
    assert not mic.listener.awake
    heard = mic.feed(say("Okay Nabu."), silence(0.5), say(QUESTION), silence(0.8), say(OTHER), silence(1.0))
    expected = [("wake", False), ("utterance", False)] + ([] if one_per_wake else [("utterance", False)])
    assert kinds(heard) == expected
    assert heard[0].text == "Okay Nabu"
    assert word_error_rate(QUESTION, asr.transcribe_audio(heard[1].audio)) <= 0.2


def test_an_utterance_must_start_within_listen_s_of_the_wake_word(asr, say):
    mic = Mic(listener(asr, listen_s=1.0))
    assert kinds(mic.feed(say("Okay Nabu."), silence(2.0), say(QUESTION), silence(1.0))) == [("wake", False)]


def test_while_speaking_only_a_stop_word_or_the_wake_word_is_heard_and_both_barge_in(asr, say):
    mic = Mic(listener(asr, stop_words=["STOP!", "be quiet"]))  # normalized like what the ASR hears
    heard = mic.feed(
        silence(0.3),
        say(QUESTION),
        silence(0.8),
        say("Hello."),
        silence(0.8),
        say("Stop."),
        silence(0.8),
        say("Be quiet!"),
        silence(0.8),
        say("Okay Nabu."),
        silence(0.5),
        speaking=True,
    )
    assert kinds(heard) == [("stop", True), ("stop", True), ("wake", True)], heard
    assert [h.text for h in heard] == ["Stop.", "Be quiet.", "Okay Nabu"]
    assert heard[0].audio.duration_s <= mic.listener.max_stop_s
    assert mic.listener.stop_words == {"stop", "be quiet"}


def test_without_barge_in_stop_words_are_not_listened_for_and_the_wake_word_cuts_nothing(asr, say):
    mic = Mic(listener(asr, barge_in=False))
    heard = mic.feed(silence(0.3), say("Stop."), silence(0.8), say("Okay Nabu."), silence(0.5), speaking=True)
    assert kinds(heard) == [("wake", False)]


def test_busy_hears_only_the_wake_word(asr, say):
    mic = Mic(listener(asr, wake=False))
    assert mic.feed(silence(0.3), say(QUESTION), silence(0.8), say("Stop."), silence(0.8), busy=True) == []
    mic = Mic(listener(asr))
    heard = mic.feed(silence(0.3), say("Okay Nabu."), silence(0.3), say(QUESTION), silence(0.8), busy=True)
    assert kinds(heard) == [("wake", True)]


@pytest.mark.parametrize("tail_s", [2.0, 0.0])
def test_the_echo_tail_ignores_the_microphone_after_speaking(asr, say, tail_s):
    mic = Mic(listener(asr, wake=False, echo_tail_s=tail_s))
    mic.feed(silence(1.0), speaking=True)
    end_of_speaking = mic.now
    command = say("Turn on the lights.")
    assert command.size / RATE < 1.5
    heard = mic.feed(silence(0.2), command, silence(0.6))
    if not tail_s:
        assert kinds(heard) == [("utterance", False)]
        return
    assert heard == []  # said within the tail: taken for its own echo
    heard = mic.feed(silence(1.0), command, silence(0.8))
    assert kinds(heard) == [("utterance", False)] and heard[0].audio.timestamp > end_of_speaking + 2.0


def test_after_a_reply_it_listens_follow_up_s_without_the_wake_word(asr, say):
    mic = Mic(listener(asr, listen_s=1.0))
    heard = mic.feed(say("Okay Nabu."), silence(0.4), say(QUESTION), silence(0.8))
    assert kinds(heard) == [("wake", False), ("utterance", False)]
    assert mic.feed(silence(3.0), busy=True) == []  # answering
    mic.listener.reply_ended(mic.now, follow_up_s=3.0)
    assert mic.listener.awake
    assert kinds(mic.feed(silence(0.5), say(OTHER), silence(0.8))) == [("utterance", False)]
    assert mic.feed(silence(3.0), say(QUESTION), silence(0.8)) == []  # the follow-up window is over


def test_reset_starts_a_new_stream_with_the_window_closed(asr, say):
    mic = Mic(listener(asr))
    assert kinds(mic.feed(say("Okay Nabu."), silence(0.3))) == [("wake", False)]
    assert mic.listener.awake
    mic.listener.reset()
    mic.pos = 0  # the new microphone's clock starts over
    assert not mic.listener.awake
    assert mic.feed(silence(0.3), say(QUESTION), silence(0.8)) == []


@pytest.mark.parametrize("cancel_echo", [True, False], ids=["echo-cancelled", "no-echo-cancellation"])
def test_stop_is_heard_over_its_own_voice_only_on_echo_cancelled_input(asr, say, cancel_echo):
    """The speaker's story reaches the microphone 0.12 s later at 0.8x, and the person says "stop"
    over it twice; the canceller gets every block played as its reference."""
    from edgellm_sdk.speech.echo import EchoCanceller

    story, stop = say(STORY), say("Stop.")
    person = np.zeros_like(story)
    for at_s in (6.0, 9.0):  # after the canceller's ~3 s to converge
        person[int(at_s * RATE) : int(at_s * RATE) + len(stop)] += stop
    delay = int(0.12 * RATE)
    mic_audio = person.copy()
    mic_audio[delay:] += 0.8 * story[:-delay]
    echo = EchoCanceller() if cancel_echo else None
    mic = Mic(listener(asr, wake=False, echo=echo))
    heard = []
    for i in range(0, len(story), BLOCK):
        if echo is not None:
            echo.play(story[i : i + BLOCK], RATE)
        heard += mic.feed(mic_audio[i : i + BLOCK], speaking=True)
    if cancel_echo:
        assert kinds(heard) == [("stop", True), ("stop", True)], (heard, echo.erle_db)
        assert 6.0 < heard[0].time_s < 8.0 and 9.0 < heard[1].time_s < 11.0
    else:
        assert heard == []  # "stop" drowns in the story


# --- seam: scripted detectors ---------------------------------------------------------------
class ScriptedVAD:
    """Returns one utterance at the chunk indexes given; counts resets."""

    def __init__(self, at: set[int]):
        self.at, self.calls, self.resets, self.in_speech = at, 0, 0, False

    def process(self, chunk):
        self.calls += 1
        return [AudioChunk(chunk.samples, RATE, chunk.timestamp)] if self.calls in self.at else []

    def reset(self):
        self.resets += 1


class ScriptedWake:
    wake_word = "Okay Nabu"

    def __init__(self, at: set[int]):
        self.at, self.calls = at, 0

    def process(self, chunk):
        self.calls += 1
        return self.calls in self.at

    def reset(self):
        pass


def test_seam_the_vad_starts_over_at_every_change_of_state():
    vad = ScriptedVAD(at=set())
    mic = Mic(Listener(vad, transcribe=lambda audio: "stop"))
    quiet = silence(0.1)
    for state in ({}, {"busy": True}, {"busy": True}, {"speaking": True}, {}, {}):
        mic.feed(quiet, **state)
    assert vad.resets == 3  # quiet -> busy -> speaking -> quiet
    assert vad.calls == 4  # fed while quiet and while speaking (for stop words), not while busy


def test_seam_stop_words_need_a_short_utterance_and_bad_settings_are_refused():
    vad, wake = ScriptedVAD(at={1, 2}), ScriptedWake(at=set())
    said = []
    mic = Mic(Listener(vad, wake, transcribe=lambda audio: said.append(audio) or "Stop!", max_stop_s=0.05))
    assert mic.feed(silence(0.1), silence(0.1), speaking=True) == []  # 0.1 s utterances: too long to be a stop
    assert said == []
    assert Listener(vad, stop_words=["Stop!", "停。"]).is_stop_word("停")
    with pytest.raises(TypeError, match="list of words"):
        Listener(vad, stop_words="stop")
    with pytest.raises(ValueError, match="max_stop_s"):
        Listener(vad, max_stop_s=0)
