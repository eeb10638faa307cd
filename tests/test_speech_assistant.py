"""The live assistant loop on real models: wake word -> VAD -> ASR -> LLM -> TTS, follow-up, barge-in.

The microphone is a real-time stream of synthesized speech (the PulseAudio rig in
test_speech_devices.py covers the device layer); everything after it is real.
"""

import collections
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pymicro_wakeword", reason="the speech extra is not installed")
pytest.importorskip("piper", reason="the speech extra is not installed")

from edgellm_sdk.speech.asr import open_transcriber
from edgellm_sdk.speech.assistant import VoiceAssistant
from edgellm_sdk.speech.audio import resample
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk
from edgellm_sdk.speech.vad import VoiceActivityDetector
from edgellm_sdk.speech.voice import VoiceLoop
from edgellm_sdk.speech.wakeword import WakeWordDetector

RATE, BLOCK = 16000, 1600


class RecordingSpeaker:
    """Takes ``pace`` x each chunk's duration to "play" it (1.0 = real time), like a device;
    cut at once by ``cancel`` or ``stop()``."""

    def __init__(self, pace: float = 0.1):
        self.played, self.stops, self.pace, self.calls = [], 0, pace, 0
        self._stop = threading.Event()

    def play(self, chunks, cancel=None):
        self.calls += 1
        self._stop.clear()
        for c in chunks:
            self.played.append(c)
            if self._stop.wait(c.duration_s * self.pace) or (cancel is not None and cancel.is_set()):
                return False
        return True

    def stop(self):
        self.stops += 1
        self._stop.set()


@pytest.fixture(scope="module")
def stack():
    tts = open_synthesizer("piper", noise_scale=0.0, noise_w_scale=0.0)  # the same speech on every run

    def say(text):
        audio = AudioChunk(np.concatenate([c.samples for c in tts.synthesize(text)]), tts.sample_rate)
        return resample(audio, RATE).samples

    yield tts, open_transcriber("moonshine"), say


def realtime_mic(parts, stop: threading.Event | None = None, speed=2.0):
    audio = np.concatenate(parts).astype(np.float32)
    for i in range(0, len(audio), BLOCK):
        if stop is not None and stop.is_set():
            return
        yield AudioChunk(audio[i : i + BLOCK], RATE, i / RATE)
        time.sleep(BLOCK / RATE / speed)


def silence(seconds):
    return np.zeros(int(seconds * RATE), np.float32)


def test_wake_word_then_question_is_answered_and_follow_up_needs_no_wake_word(engine, stack):
    tts, asr, say = stack
    assistant = VoiceAssistant(
        VoiceLoop(engine, asr, tts), VoiceActivityDetector(), WakeWordDetector("okay_nabu"), follow_up_s=8.0
    )
    speaker = RecordingSpeaker()
    mic = realtime_mic(
        [
            silence(1),
            say("Okay Nabu."),
            silence(0.6),
            say("What is the capital of France?"),
            silence(9),
            say("How many legs does a spider have?"),
            silence(3),
        ]
    )
    events = assistant.run(mic, speaker, max_turns=2)
    kinds = [e.kind for e in events]
    assert kinds[:3] == ["wake", "utterance", "answer"] and kinds.count("answer") == 2, kinds
    assert speaker.calls == 2  # each reply is one stream, however many sentences it has
    answers = [e.turn for e in events if e.kind == "answer"]
    assert "capital of france" in answers[0].heard.lower() and "paris" in answers[0].reply.lower()
    assert "spider" in answers[1].heard.lower()
    assert speaker.played and sum(c.duration_s for c in speaker.played) > 1


def test_speech_without_the_wake_word_is_ignored(engine, stack):
    tts, asr, say = stack
    assistant = VoiceAssistant(VoiceLoop(engine, asr, tts), VoiceActivityDetector(), WakeWordDetector("okay_nabu"))
    events = assistant.run(
        realtime_mic([silence(0.5), say("What is the capital of France?"), silence(1)], speed=8), RecordingSpeaker()
    )
    assert events == []


def test_wake_word_while_speaking_barges_in(engine, stack):
    tts, asr, say = stack
    assistant = VoiceAssistant(
        VoiceLoop(engine, asr, tts, max_tokens=200),
        VoiceActivityDetector(),
        WakeWordDetector("okay_nabu", refractory_s=1.0),
    )
    speaker = RecordingSpeaker(pace=1.0)
    mic = realtime_mic(
        [
            silence(0.5),
            say("Okay Nabu."),
            silence(0.6),
            say("Tell me a long story about a brave little robot."),
            silence(2.5),
            say("Okay Nabu."),
            silence(3),
        ],
        speed=1.0,
    )
    events = assistant.run(mic, speaker)
    kinds = [e.kind for e in events]
    assert "barge_in" in kinds and speaker.stops == 1, kinds
    answer = next(e.turn for e in events if e.kind == "answer")
    assert answer.finish_reason == "cancelled"


def test_live_cli_hears_the_virtual_microphone_and_speaks(default_store, stack, tmp_path):
    """`edgellm voice` live, on a real PulseAudio server: question into the mic FIFO, answer out of the sink."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from audio_rig import PulseAudioRig

    if (reason := PulseAudioRig.skip_reason()) is not None:
        pytest.skip(reason)
    _, _, say = stack
    with PulseAudioRig(tmp_path) as rig:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgellm_sdk.cli",
                "voice",
                "--wake",
                "none",
                "--mic",
                "pulse",
                "--speaker",
                "pulse",
                "--tts",
                "espeak",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        try:
            assert "listening" in proc.stdout.readline()
            time.sleep(1.0)
            rig.start_recording()
            rig.say_into_mic(np.concatenate([say("What is the capital of France?"), silence(1.5)]))
            lines = [proc.stdout.readline() for _ in range(3)]  # (thinking), you: ..., assistant: ...
            time.sleep(2.0)
            played = rig.stop_recording()
        finally:
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGINT)
            proc.wait(20)
    assert "capital of france" in lines[1].lower() and lines[2].startswith("assistant:"), (lines, proc.stderr.read())
    assert np.sqrt(np.mean(np.square(played.astype(np.float64)))) > 0.005  # the answer reached the speaker


def test_saying_stop_while_it_speaks_barges_in(engine, stack):
    tts, asr, say = stack
    assistant = VoiceAssistant(
        VoiceLoop(engine, asr, tts, max_tokens=200),
        VoiceActivityDetector(min_silence_s=0.3),
        WakeWordDetector("okay_nabu"),
    )
    # the person says "stop" once it has spoken 2 s (a fixed 4 s wait was too early on a loaded machine)
    room = Room(
        np.concatenate(
            [silence(0.5), say("Okay Nabu."), silence(0.6), say("Tell me a long story about a brave little robot.")]
        ),
        np.concatenate([say("Stop."), silence(3)]),
        wait_played_s=2.0,
        gain=0.0,
    )
    events = assistant.run(room.mic(), room)
    kinds = [e.kind for e in events]
    assert ("barge_in", "stop") in [(e.kind, e.text) for e in events] and room.stops == 1, kinds
    assert next(e.turn for e in events if e.kind == "answer").finish_reason == "cancelled"


class Room:
    """A speaker whose sound reaches the microphone, on the microphone's clock (one device, as
    in a full-duplex sound card): each microphone block also plays the next block of what
    ``play`` has queued (silence when the queue ran dry, as a device's buffer underruns) and
    hears it ``delay_s`` later at ``gain``; ``on_output`` sees every block played during a reply,
    as a Speaker's tap does. The person says ``before``, waits until the assistant has spoken
    ``wait_played_s`` seconds (so a loaded machine cannot make them speak too early), then says
    ``after``."""

    def __init__(self, before, after, wait_played_s=3.0, gain=0.8, delay_s=0.12, on_output=None):
        self.before, self.after, self.wait_played_s = before, after, wait_played_s
        self.echo = np.zeros(180 * RATE, np.float32)
        self.gain, self.delay, self.on_output = gain, int(delay_s * RATE), on_output
        self.pos, self.played_s = 0, 0.0  # microphone samples delivered, seconds of speech played
        self.stops, self._stop, self._lock = 0, threading.Event(), threading.Lock()
        self._queued: collections.deque[np.ndarray] = collections.deque()  # the device's buffer
        self._replying = False

    def play(self, chunks, cancel=None):
        self._stop.clear()
        self._replying = True
        try:
            for c in chunks:
                with self._lock:
                    self._queued.append(resample(c, RATE).samples.astype(np.float32))
                if self._interrupted(cancel):
                    return False
            while self._queued:  # until the device has played it all
                if self._stop.wait(0.01) or self._interrupted(cancel):
                    return False
            return True
        finally:
            with self._lock:
                self._queued.clear()
                self._replying = False

    def _interrupted(self, cancel):
        return self._stop.is_set() or (cancel is not None and cancel.is_set())

    def stop(self):
        self.stops += 1
        self._stop.set()

    def _speaker_block(self, n):
        """The next ``n`` samples the speaker plays, or None while no reply is playing."""
        with self._lock:
            if not self._replying:
                return None
            out, got = np.zeros(n, np.float32), 0
            while got < n and self._queued:
                head = self._queued[0]
                k = min(n - got, len(head))
                out[got : got + k], got = head[:k], got + k
                if k == len(head):
                    self._queued.popleft()
                else:
                    self._queued[0] = head[k:]
            self.played_s += got / RATE
        return out

    def _person(self):
        yield from (self.before[i : i + BLOCK] for i in range(0, len(self.before), BLOCK))
        deadline = time.monotonic() + 60
        while self.played_s < self.wait_played_s and time.monotonic() < deadline:
            yield np.zeros(BLOCK, np.float32)
        yield from (self.after[i : i + BLOCK] for i in range(0, len(self.after), BLOCK))

    def mic(self):
        try:
            for part in self._person():
                n = len(part)
                played = self._speaker_block(n)
                if played is not None:
                    if self.on_output is not None:
                        self.on_output(played, RATE)
                    self.echo[self.pos + self.delay : self.pos + self.delay + n] += self.gain * played
                block = part + self.echo[self.pos : self.pos + n]
                t, self.pos = self.pos / RATE, self.pos + n
                yield AudioChunk(block.astype(np.float32), RATE, t)
                time.sleep(n / RATE)
        finally:
            self._stop.set()  # the device closed: a reply still playing ends


@pytest.mark.parametrize("cancel_echo", [True, False], ids=["echo-cancelled", "no-echo-cancellation"])
def test_stop_is_heard_over_its_own_voice_only_with_echo_cancellation(engine, stack, cancel_echo):
    from edgellm_sdk.speech.echo import EchoCanceller

    tts, asr, say = stack
    echo = EchoCanceller() if cancel_echo else None
    before = np.concatenate(
        [silence(0.5), say("Okay Nabu."), silence(0.6), say("Tell me a long story about a brave little robot.")]
    )
    # "stop" once it has spoken 6 s (the canceller converges within ~3 s of speech), and once more
    # if it talks on, as people do (ERLE fell to ~16 dB in 1 of 10 runs on a loaded machine)
    room = Room(
        before,
        np.concatenate([say("Stop."), silence(2), say("Stop."), silence(3)]),
        wait_played_s=6.0,
        on_output=echo.play if echo else None,
    )
    assistant = VoiceAssistant(
        VoiceLoop(engine, asr, tts, max_tokens=200),
        VoiceActivityDetector(min_silence_s=0.3),
        WakeWordDetector("okay_nabu"),
        echo=echo,
    )
    events = assistant.run(room.mic(), room)
    stopped = ("barge_in", "stop") in [(e.kind, e.text) for e in events]
    state = echo and (round(echo.erle_db, 1), echo.delay_s, echo.realignments)
    assert stopped is cancel_echo, ([(e.kind, e.text) for e in events], state)
