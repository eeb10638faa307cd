"""speech_node as a real process on a real PulseAudio server (tests/audio_rig.py): ~/say is played
into the virtual speaker and transcribed back, speech written into the virtual microphone comes out
on ~/transcript, ~/stop_speaking cuts playback, the wake word gates the microphone, bad parameters
and missing devices end the node with a clear message."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
import ros_rig
from audio_rig import RATE, PulseAudioRig
from ros_rig import NodeProcess, RosClient, next_domain, wait_for

SKIP = ros_rig.skip_reason() or PulseAudioRig.skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")

CONFIG = ros_rig.ROS_SOURCES / "config" / "speech.yaml"
QUESTION = Path(__file__).resolve().parents[1] / "examples" / "data" / "question.wav"
QUESTION_TEXT = "What is the capital of France?"
COMMANDS = ["Turn on the kitchen lights.", "Open the front door."]
LONG = (
    "Once upon a time a small robot lived in a quiet garden. Every morning it watered the tomatoes and counted "
    "the bees. One day a storm came over the hills, and the robot had to carry every flower pot into the shed. "
    "When the sun came back, the garden was safe, and the bees came home again."
)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if SKIP:
        pytest.skip(SKIP)
    pytest.importorskip("moonshine_voice", reason="the speech extra is not installed")
    pytest.importorskip("piper", reason="the speech extra is not installed")
    with PulseAudioRig(tmp_path_factory.mktemp("pulse")) as r:
        yield r


@pytest.fixture(scope="module")
def asr():
    from edgellm_sdk.speech.asr import open_transcriber

    with open_transcriber("moonshine") as transcriber:
        yield transcriber


@pytest.fixture(scope="module")
def question():
    from edgellm_sdk.speech.audio import read_wav, resample

    return resample(read_wav(QUESTION), RATE).samples


@pytest.fixture(scope="module")
def voice():
    """Piper speech of a text as 16 kHz samples (what a person would say into the microphone)."""
    from edgellm_sdk.speech.audio import resample
    from edgellm_sdk.speech.tts import open_synthesizer
    from edgellm_sdk.speech.types import AudioChunk

    with open_synthesizer("piper") as tts:

        def say(text: str) -> np.ndarray:
            audio = np.concatenate([c.samples for c in tts.synthesize(text)])
            return resample(AudioChunk(audio, tts.sample_rate), RATE).samples

        yield say


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.float32)


def audio_env() -> dict:
    return {"PULSE_SERVER": os.environ["PULSE_SERVER"]}  # set by the running rig


class Speech:
    """The test side of one speech_node: its topics, services and parameter services."""

    def __init__(self, node: NodeProcess, client: RosClient):
        from rcl_interfaces.srv import GetParameters, SetParameters
        from std_msgs.msg import Bool, String
        from std_srvs.srv import Trigger

        self.node, self.client = node, client
        n, ns = client.node, f"/{node.name}"
        self.transcripts = client.collect(String, f"{ns}/transcript")
        self.wakes = client.collect(String, f"{ns}/wake")
        self.speaking = client.collect(Bool, f"{ns}/speaking")
        self.say_pub = n.create_publisher(String, f"{ns}/say", 10)
        self.stop_cli = n.create_client(Trigger, f"{ns}/stop_speaking")
        self.set_cli = n.create_client(SetParameters, f"{ns}/set_parameters")
        self.get_cli = n.create_client(GetParameters, f"{ns}/get_parameters")
        self._msg = String

    def wait_ready(self, timeout: float = 60.0) -> float:
        t0 = time.monotonic()
        wait_for(
            lambda: (
                self.stop_cli.service_is_ready()
                and self.say_pub.get_subscription_count() > 0
                and self.client.node.count_publishers(f"/{self.node.name}/transcript") > 0
            ),
            timeout,
            f"{self.node.name} ready",
            self.node,
        )
        time.sleep(0.3)  # let the matched subscriptions settle
        return time.monotonic() - t0

    def say(self, text: str) -> None:
        self.say_pub.publish(self._msg(data=text))

    def call(self, cli, request, timeout: float = 5.0):
        future = cli.call_async(request)
        wait_for(future.done, timeout, f"a reply from {cli.srv_name}", self.node)
        return future.result()

    def stop_speaking(self):
        from std_srvs.srv import Trigger

        return self.call(self.stop_cli, Trigger.Request())

    def set_param(self, name: str, value):
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        return self.call(
            self.set_cli, SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        )

    def get_params(self, names: list[str]) -> list:
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        return [
            parameter_value_to_python(v) for v in self.call(self.get_cli, GetParameters.Request(names=names)).values
        ]

    def states_since(self, start: int) -> list[bool]:
        return [m.data for m in self.speaking[start:]]

    def wait_spoken(self, start: int, timeout: float) -> list[bool]:
        """Speaking states after index ``start`` once a True was followed by a False."""

        def done():
            states = self.states_since(start)
            return True in states and False in states[states.index(True) :]

        wait_for(done, timeout, "~/speaking true then false", self.node)
        return self.states_since(start)


@pytest.fixture(scope="module")
def speech(rig, tmp_path_factory):
    """One speech_node started with the shipped config/speech.yaml (default devices = the rig)."""
    domain = next_domain()
    with (
        NodeProcess(
            "speech_node", domain, tmp_path_factory.mktemp("speech"), params_file=CONFIG, env=audio_env()
        ) as node,
        RosClient(domain) as client,
    ):
        s = Speech(node, client)
        s.started_s = s.wait_ready()
        yield s


def test_yaml_config_is_accepted_and_applied(speech):
    import yaml

    values = yaml.safe_load(CONFIG.read_text())["speech_node"]["ros__parameters"]
    got = dict(zip(values, speech.get_params(list(values)), strict=True))
    assert got == values  # every key is a declared parameter (unknown keys come back as None)
    assert got["stop_words"] == ["stop", "be quiet"] and got["echo_tail_s"] == 0.4  # not the defaults
    print(f"node ready {speech.started_s:.2f} s after its process was started")


def test_say_is_spoken_in_order_through_the_speaker(speech, rig, asr):
    from edgellm_sdk.speech.asr import word_error_rate
    from edgellm_sdk.speech.types import AudioChunk

    start = len(speech.speaking)
    rig.start_recording()
    t0 = time.monotonic()
    for text in COMMANDS:
        speech.say(text)
    wait_for(lambda: True in speech.states_since(start), 10, "~/speaking true", speech.node)
    first = time.monotonic() - t0
    states = speech.wait_spoken(start, 20)
    total = time.monotonic() - t0
    time.sleep(0.3)
    heard = asr.transcribe_audio(AudioChunk(rig.stop_recording(), RATE)).lower()
    wer = word_error_rate(" ".join(COMMANDS), heard)
    print(f"speaking after {first:.2f} s, done after {total:.2f} s; heard {heard!r} (WER {wer:.0%})")
    assert states == [True, False]  # one speaking period for the two queued requests
    assert wer <= 0.25, heard
    assert -1 < heard.find("kitchen") < heard.find("door"), heard  # spoken in order


def test_speech_into_the_microphone_is_transcribed(speech, rig, question):
    from edgellm_sdk.speech.asr import word_error_rate

    start = len(speech.transcripts)
    time.sleep(0.5)  # past the echo tail of an earlier playback
    spoken = rig.say_into_mic(np.concatenate([silence(0.3), question, silence(1.5)]))
    end_of_speech = time.monotonic() + 0.3 + len(question) / RATE
    wait_for(lambda: len(speech.transcripts) > start, spoken + 10, "a ~/transcript", speech.node)
    latency = time.monotonic() - end_of_speech
    text = speech.transcripts[start].data
    print(f"transcript {text!r} {latency:.2f} s after the end of speech")
    assert word_error_rate(QUESTION_TEXT, text) <= 0.2, text
    assert latency < 3.0


def sound_in(path: Path, threshold: float = 0.02) -> bool:
    """Whether the speaker recording being written to ``path`` holds sound yet."""
    raw = path.read_bytes() if path.exists() else b""
    return bool(np.any(np.abs(np.frombuffer(raw[: len(raw) // 2 * 2], "<i2")) > threshold * 32768))


def test_stop_speaking_cuts_a_long_say_and_its_playback_is_not_transcribed(speech, rig, question, tmp_path):
    start, heard_before = len(speech.speaking), len(speech.transcripts)
    rig.start_recording(tmp_path / "story.raw")
    speech.say(LONG)
    wait_for(lambda: sound_in(tmp_path / "story.raw"), 10, "the story to reach the speaker", speech.node)
    rig.say_into_mic(np.concatenate([question, silence(0.3)]))  # talking over it: no transcript
    time.sleep(2.5)
    t_stop = time.monotonic()
    reply = speech.stop_speaking()
    replied = time.monotonic() - t_stop
    speech.wait_spoken(start, 2)
    silent = time.monotonic() - t_stop
    time.sleep(0.5)
    t_end = time.monotonic()
    rec = rig.stop_recording()
    loud = np.flatnonzero(np.abs(rec) > 0.02)
    sound_after_stop = (t_end - (len(rec) - loud[-1]) / RATE) - t_stop
    played = (loud[-1] - loud[0]) / RATE
    print(
        f"stop replied in {replied * 1000:.0f} ms, speaking=false after {silent * 1000:.0f} ms, "
        f"sound ended {sound_after_stop * 1000:.0f} ms after the call; played {played:.1f} s of the story"
    )
    assert reply.success and reply.message.startswith("stopped"), reply.message
    assert replied < 0.5 and silent < 0.5
    assert sound_after_stop < 0.5
    assert 2.0 < played < 4.0  # the whole story is ~15 s
    time.sleep(1.0)
    assert [m.data for m in speech.transcripts[heard_before:]] == []  # the question spoken over playback
    assert speech.stop_speaking().message == "was not speaking"


def test_saying_stop_while_it_speaks_barges_in(speech, rig, voice, tmp_path):
    start, heard_before = len(speech.speaking), len(speech.transcripts)
    rig.start_recording(tmp_path / "story.raw")
    speech.say(LONG)
    wait_for(lambda: sound_in(tmp_path / "story.raw"), 10, "the story to reach the speaker", speech.node)
    time.sleep(0.5)
    stop = voice("Stop.")
    t_said = time.monotonic() + rig.say_into_mic(np.concatenate([stop, silence(1.0)])) - 1.0
    speech.wait_spoken(start, 8)
    cut = time.monotonic() - t_said
    rig.stop_recording()
    print(f"playback cut {cut:.2f} s after the end of 'stop'")
    assert cut < 2.5  # VAD end of speech (min_silence_s 0.6) + ASR of a short utterance
    assert [m.data for m in speech.transcripts[heard_before:]] == []  # a barge-in is not a transcript


def test_parameters_are_validated_at_runtime(speech):
    refused = speech.set_param("wake_listen_s", 0.1).results[0]
    assert not refused.successful and "wake_listen_s" in refused.reason and "range" in refused.reason
    read_only = speech.set_param("tts_backend", "espeak").results[0]
    assert not read_only.successful and "read-only" in read_only.reason
    assert speech.set_param("listen", False).results[0].successful
    assert speech.set_param("listen", True).results[0].successful
    assert speech.get_params(["tts_backend", "wake_listen_s", "listen"]) == ["piper", 8.0, True]


def test_wake_word_gates_the_microphone_and_barges_in_and_sigint_stops_cleanly(speech, rig, question, voice, tmp_path):
    from edgellm_sdk.speech.asr import word_error_rate

    wake = voice("Okay Nabu.")
    domain = next_domain()
    params = {"wake_word": "okay_nabu", "tts_backend": "espeak"}
    with (
        NodeProcess("speech_node", domain, tmp_path, name="wake_speech", params=params, env=audio_env()) as node,
        RosClient(domain, name="wake_client") as client,
    ):
        s = Speech(node, client)
        s.wait_ready()
        time.sleep(rig.say_into_mic(np.concatenate([question, silence(0.8)])) + 1.0)
        assert s.transcripts == [] and s.wakes == []  # no wake word: not transcribed
        rig.say_into_mic(np.concatenate([wake, silence(0.5), question, silence(1.5)]))
        wait_for(lambda: s.transcripts, 15, "a transcript after the wake word", node)
        assert [w.data for w in s.wakes] == ["Okay Nabu"]
        assert word_error_rate(QUESTION_TEXT, s.transcripts[0].data) <= 0.2, s.transcripts[0].data
        start = len(s.speaking)
        s.say(LONG)
        wait_for(lambda: True in s.states_since(start), 10, "~/speaking true", node)
        time.sleep(0.5)
        rig.say_into_mic(np.concatenate([wake, silence(0.5)]))  # the wake word while it speaks: barge-in
        s.wait_spoken(start, 6)
        assert len(s.wakes) == 2 and len(s.transcripts) == 1
        t0 = time.monotonic()
        code = node.stop()
    assert code == 0 and time.monotonic() - t0 < 5, node.log()


def test_bad_parameter_value_exits_2_naming_it(rig, tmp_path):
    with NodeProcess("speech_node", next_domain(), tmp_path, params={"tts_backend": "nope"}, env=audio_env()) as node:
        wait_for(lambda: not node.alive(), 20, "speech_node to exit")
        code = node.stop()
    log = node.log()
    assert code == 2, log
    assert "tts_backend" in log and "nope" in log and "piper, espeak" in log, log


@pytest.mark.parametrize(
    ("params", "env", "expect"),
    [
        ({"input_device": "no-such-mic"}, {}, "no-such-mic"),  # the message lists the available devices
        ({}, {"PULSE_SERVER": "unix:/nonexistent/native"}, "no default audio"),  # no sound server at all
    ],
    ids=["unknown-device", "no-audio-server"],
)
def test_missing_audio_device_exits_with_a_clear_message(rig, tmp_path, params, env, expect):
    t0 = time.monotonic()
    with NodeProcess("speech_node", next_domain(), tmp_path, params=params, env=audio_env() | env) as node:
        wait_for(lambda: not node.alive(), 20, "speech_node to exit")
        code = node.stop()
    log = node.log()
    assert code == 1 and expect in log, log
    assert time.monotonic() - t0 < 15


def launch_remaps(node_name: str) -> dict[str, str]:
    """The remappings launch/edgellm.launch.xml gives ``node_name``."""
    import xml.etree.ElementTree as ET

    root = ET.parse(ros_rig.ROS_SOURCES / "launch" / "edgellm.launch.xml").getroot()
    node = next(n for n in root.iter("node") if n.get("name") == node_name)
    return {r.get("from"): r.get("to") for r in node.iter("remap")}


@pytest.mark.model
def test_the_launch_wiring_is_a_voice_assistant_over_topics(rig, asr, question, tmp_path):
    """speech_node remapped as the launch files do + llm_node: a spoken question is answered aloud."""
    from std_msgs.msg import Bool, String

    from edgellm_sdk.speech.asr import character_error_rate, word_error_rate
    from edgellm_sdk.speech.types import AudioChunk

    remaps = launch_remaps("speech_node")
    assert remaps == {"~/transcript": "/llm_node/prompt", "~/say": "/llm_node/response"}
    domain = next_domain()
    with (
        NodeProcess("llm_node", domain, tmp_path, name="llm_node", params={"max_tokens": 24}) as llm,
        NodeProcess(
            "speech_node", domain, tmp_path, name="speech_node", params_file=CONFIG, env=audio_env(), remaps=remaps
        ) as speech,
        RosClient(domain) as client,
    ):
        prompts, answers = client.collect(String, "/llm_node/prompt"), client.collect(String, "/llm_node/response")
        speaking = client.collect(Bool, "/speech_node/speaking")
        n = client.node
        wait_for(
            lambda: (
                n.count_subscribers("/llm_node/prompt") >= 2
                and n.count_publishers("/llm_node/prompt")
                and n.count_subscribers("/llm_node/response") >= 2
            ),
            60,
            "the two nodes wired",
            speech,
        )
        wait_for(lambda: "ready: mic" in speech.log(), 30, "the microphone", speech)
        time.sleep(0.3)
        rig.start_recording()
        rig.say_into_mic(np.concatenate([silence(0.3), question, silence(1.5)]))
        wait_for(lambda: answers, 40, "an answer on /llm_node/response", llm)
        wait_for(lambda: True in [m.data for m in speaking] and not speaking[-1].data, 30, "the answer spoken", speech)
        time.sleep(0.3)
        heard = asr.transcribe_audio(AudioChunk(rig.stop_recording(), RATE))
    print(f"asked {prompts[0].data!r}, answered {answers[0].data!r}, heard {heard!r}")
    assert word_error_rate(QUESTION_TEXT, prompts[0].data) <= 0.2
    assert character_error_rate(answers[0].data, heard) <= 0.3, heard  # short answers: one merged word is 30 % WER
