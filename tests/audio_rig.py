"""A real sound server without a sound card, for the audio device tests.

PulseAudioRig starts Debian ``pulseaudio`` (as root, as a child process we own by pid) with
  * ``vspk``: a null sink (the speaker); ``parec`` records its ``.monitor`` into a file;
  * ``vmic``: a ``module-pipe-source`` reading a FIFO as 16 kHz s16le mono (the microphone).
A thread keeps writing real-time paced silence into the FIFO (a pipe source with no data
makes stopping a PortAudio stream hang); ``say_into_mic`` queues real audio in its place.
PortAudio reaches the server through the ALSA ``pulse`` plugin (Debian libasound2-plugins),
told where the server is by ``PULSE_SERVER``; vmic / vspk are made the server defaults.

Needs: apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins libportaudio2
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

RATE = 16000
BLOCK = 320  # 20 ms of 16 kHz mono
SBIN_PATH = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin" + os.pathsep + "/sbin"


def _which(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def alsa_pulse_plugin() -> bool:
    return any(
        Path(d).glob("libasound_module_pcm_pulse.so")
        for d in ("/usr/lib/x86_64-linux-gnu/alsa-lib", "/usr/lib/aarch64-linux-gnu/alsa-lib", "/usr/lib/alsa-lib")
    )


class PulseAudioRig:
    """``rig = PulseAudioRig(tmp_path); rig.start() ... rig.stop()`` (or a context manager).
    ``PulseAudioRig.skip_reason()`` says why the rig cannot run here (None when it can)."""

    def __init__(self, workdir: Path):
        self.dir = Path(workdir)
        self.fifo = self.dir / "vmic.fifo"
        self.socket = self.dir / "run" / "native"
        self.server: subprocess.Popen | None = None
        self._recorder: subprocess.Popen | None = None
        self._record_path: Path | None = None
        self._pending: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._quit = threading.Event()
        self._writer: threading.Thread | None = None
        self._fd: int | None = None
        self._saved_env: dict[str, str | None] = {}
        self.log = self.dir / "pulseaudio.log"

    @staticmethod
    def skip_reason() -> str | None:
        if os.geteuid() != 0:
            return "the PulseAudio rig starts a sound server as root; run the tests as root"
        missing = [b for b in ("pulseaudio", "pactl", "parec") if _which(b) is None]
        if missing:
            return (
                f"{', '.join(missing)} not found; install Debian packages: "
                "apt-get install -y pulseaudio pulseaudio-utils libasound2-plugins"
            )
        if not alsa_pulse_plugin():
            return "the ALSA pulse plugin is missing; apt-get install -y libasound2-plugins"
        return None

    # lifecycle -------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.dir / "home"),
            XDG_RUNTIME_DIR=str(self.dir / "run"),
            XDG_CONFIG_HOME=str(self.dir / "home" / ".config"),
            PULSE_SERVER=f"unix:{self.socket}",
        )
        return env

    def pactl(self, *args: str) -> str:
        out = subprocess.run(
            [_which("pactl") or "pactl", *args],
            env=self._env(),
            capture_output=True,
            check=False,
            text=True,
            timeout=10,
        )
        if out.returncode != 0:
            raise RuntimeError(f"pactl {' '.join(args)} failed: {out.stderr.strip()} (log: {self.log})")
        return out.stdout

    def start(self) -> PulseAudioRig:
        reason = self.skip_reason()
        if reason:
            raise RuntimeError(reason)
        for sub in ("home", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fifo.unlink(missing_ok=True)  # module-pipe-source creates the FIFO itself
        self.server = subprocess.Popen(
            [
                _which("pulseaudio"),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=false",
                "--disallow-exit",
                "-n",
                "--use-pid-file=no",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                "--load=module-always-sink",
                f"--log-target=file:{self.log}",
            ],
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                if self.server.poll() is not None:
                    raise RuntimeError(f"pulseaudio exited with {self.server.returncode}; see {self.log}")
                if (
                    self.socket.exists()
                    and subprocess.run(
                        [_which("pactl"), "info"], env=self._env(), check=False, capture_output=True, timeout=5
                    ).returncode
                    == 0
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"pulseaudio did not come up within 10 s; see {self.log}")
                time.sleep(0.05)
            self.pactl("load-module", "module-null-sink", "sink_name=vspk")
            self.pactl(
                "load-module",
                "module-pipe-source",
                "source_name=vmic",
                f"file={self.fifo}",
                "format=s16le",
                f"rate={RATE}",
                "channels=1",
            )
            self.pactl("set-default-sink", "vspk")
            self.pactl("set-default-source", "vmic")
            self._fd = os.open(self.fifo, os.O_WRONLY)
            self._quit.clear()
            self._writer = threading.Thread(target=self._write_loop, daemon=True, name="vmic-writer")
            self._writer.start()
            self._set_client_env()
        except BaseException:
            self.stop()
            raise
        return self

    def _set_client_env(self) -> None:
        """Point this process's PortAudio (ALSA pulse plugin) at the rig, re-scanning devices."""
        for key, value in (("PULSE_SERVER", f"unix:{self.socket}"),):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        self._rescan()

    @staticmethod
    def _rescan() -> None:
        try:
            import sounddevice as sd
        except (ImportError, OSError):
            return
        sd._terminate()
        sd._initialize()

    def stop(self) -> None:
        self._quit.set()
        if self._writer is not None:
            self._writer.join(timeout=3)
            self._writer = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.stop_recording()
        self.kill_server()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self._saved_env:
            self._saved_env = {}
            self._rescan()

    def kill_server(self) -> None:
        """Stop pulseaudio by pid (SIGTERM, then SIGKILL): every device vanishes."""
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(timeout=5)
        self.server = None

    def __enter__(self) -> PulseAudioRig:  # noqa: PYI034
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # the microphone FIFO ----------------------------------------------------------------
    def _write_loop(self) -> None:
        """Real-time paced 20 ms blocks: queued audio first, silence otherwise."""
        silence = bytes(2 * BLOCK)
        start, n = time.monotonic(), 0
        while not self._quit.is_set():
            with self._lock:
                data = self._pending.popleft() if self._pending else silence
            try:
                os.write(self._fd, data)
            except OSError:
                return
            n += 1
            delay = start + n * BLOCK / RATE - time.monotonic()
            if delay > 0:
                self._quit.wait(delay)
            elif delay < -0.5:  # fell far behind (paused): resynchronise instead of bursting
                start, n = time.monotonic(), 0

    def say_into_mic(self, samples: np.ndarray) -> float:
        """Queue float32 mono 16 kHz audio for the microphone; returns its duration in seconds."""
        pcm = (np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2")
        pcm = np.pad(pcm, (0, -len(pcm) % BLOCK))
        with self._lock:
            for i in range(0, len(pcm), BLOCK):
                self._pending.append(pcm[i : i + BLOCK].tobytes())
        return len(pcm) / RATE

    def mic_idle(self) -> bool:
        with self._lock:
            return not self._pending

    # the speaker monitor ----------------------------------------------------------------
    def start_recording(self, path: Path | None = None) -> None:
        """Record vspk.monitor (what was played) as 16 kHz s16le mono into ``path``."""
        self.stop_recording()
        self._record_path = Path(path or self.dir / "vspk.raw")
        with open(self._record_path, "wb") as out:
            self._recorder = subprocess.Popen(
                [
                    _which("parec"),
                    "-d",
                    "vspk.monitor",
                    "--raw",
                    "--format=s16le",
                    f"--rate={RATE}",
                    "--channels=1",
                    "--latency-msec=20",
                ],
                env=self._env(),
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
        time.sleep(0.2)  # let parec connect before the test plays anything

    def stop_recording(self) -> np.ndarray:
        """Stop parec (by pid) and return what it recorded as float32 samples at 16 kHz."""
        if self._recorder is not None:
            self._recorder.terminate()
            try:
                self._recorder.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._recorder.kill()
                self._recorder.wait(timeout=5)
            self._recorder = None
        if self._record_path is None or not self._record_path.exists():
            return np.zeros(0, np.float32)
        raw = self._record_path.read_bytes()
        return np.frombuffer(raw[: len(raw) // 2 * 2], "<i2").astype(np.float32) / 32768

    # a room: the speaker heard by the microphone -----------------------------------------
    def play_into_speaker(self, samples: np.ndarray | None) -> subprocess.Popen:
        """Another client (pacat) playing 16 kHz mono audio into vspk, mixed with whatever else
        plays there; ``None`` plays silence until killed. Stop it with ``.terminate()``."""
        cmd = [
            _which("pacat") or "pacat",
            "-p",
            "--raw",
            "--format=s16le",
            f"--rate={RATE}",
            "--channels=1",
            "-d",
            "vspk",
        ]
        if samples is None:
            with open("/dev/zero", "rb") as zeros:
                return subprocess.Popen(cmd, env=self._env(), stdin=zeros, stderr=subprocess.DEVNULL)
        path = self.dir / f"pacat-{time.monotonic_ns()}.raw"
        path.write_bytes((np.clip(np.asarray(samples, np.float32), -1, 1) * 32767).astype("<i2").tobytes())
        return subprocess.Popen([*cmd, str(path)], env=self._env(), stderr=subprocess.DEVNULL)

    def microphone_hears_speaker(self, on: bool = True) -> None:
        """Make vspk's monitor the default input (the microphone hears exactly what is played), or
        give vmic back. Keep something playing (``play_into_speaker(None)``): an idle null sink's
        monitor delivers nothing, where a real microphone keeps delivering."""
        self.pactl("set-default-source", "vspk.monitor" if on else "vmic")
