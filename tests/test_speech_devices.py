"""Microphone / Speaker against a real PulseAudio server (tests/audio_rig.py), no sound card."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from edgellm_sdk.errors import MissingDependency, SpeechError
from edgellm_sdk.speech.types import AudioChunk

pytest.importorskip("sounddevice", exc_type=ImportError)

from audio_rig import RATE, PulseAudioRig

from edgellm_sdk.speech import devices

SKIP = PulseAudioRig.skip_reason()
needs_rig = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    if SKIP:
        pytest.skip(SKIP)
    r = PulseAudioRig(tmp_path_factory.mktemp("pulse")).start()
    yield r
    r.stop()


def tone(freq: float, seconds: float, rate: int = RATE, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def chirp_voice(seconds: float = 0.6, seed: int = 0) -> np.ndarray:
    """A voice-like test signal: a pitch glide with harmonics and a noise burst (unique lag)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 120 + 200 * t / seconds
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 6)) * np.hanning(len(t))
    x[: RATE // 20] += rng.normal(0, 0.3, RATE // 20)
    return (0.4 * x / np.abs(x).max()).astype(np.float32)


def best_lag(recorded: np.ndarray, ref: np.ndarray) -> tuple[int, float]:
    """Lag of ``ref`` inside ``recorded`` by FFT cross-correlation, and the normalized peak."""
    n = len(recorded) + len(ref)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(recorded, size) * np.conj(np.fft.rfft(ref, size)), size)[: len(recorded)]
    lag = int(np.argmax(corr))
    seg = recorded[lag : lag + len(ref)]
    if len(seg) < len(ref):
        return lag, 0.0
    return lag, float(np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-12))


def dominant_hz(x: np.ndarray, rate: int = RATE) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


# ------------------------------------------------------------------------------ no rig needed
def test_rig_skip_reason_is_clear(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    assert "root" in PulseAudioRig.skip_reason()
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr("audio_rig._which", lambda name: None)
    reason = PulseAudioRig.skip_reason()
    assert "pulseaudio" in reason and "apt-get install" in reason


def test_missing_portaudio_and_sounddevice_name_the_fix():
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        "    if name == 'sounddevice': raise {exc}\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "from edgellm_sdk.speech import devices\n"
        "try:\n    devices.list_devices()\n"
        "except Exception as e:\n    print(type(e).__name__, e)\n"
    )
    for exc, want in (
        ("OSError('PortAudio library not found')", "apt install libportaudio2"),
        ("ImportError('no module')", "pip install 'edgellm-sdk[speech]'"),
    ):
        out = subprocess.run(
            [sys.executable, "-c", code.format(exc=exc)], capture_output=True, text=True, check=False, timeout=60
        ).stdout
        assert out.startswith("MissingDependency") and want in out, out
    assert issubclass(MissingDependency, ImportError)


# ------------------------------------------------------------------------------ device selection
@needs_rig
def test_find_device_by_name(rig):
    names = [d.name for d in devices.list_devices()]
    assert "pulse" in names
    mic = devices.find_device("PULS", kind="input")
    spk = devices.find_device("pulse", kind="output")
    assert mic.name == spk.name == "pulse" and mic.max_input_channels > 0
    with pytest.raises(ValueError):
        devices.find_device("pulse", kind="sideways")


@needs_rig
def test_unknown_device_lists_the_available_ones(rig):
    with pytest.raises(SpeechError) as err:
        devices.find_device("no-such-usb-mic", kind="input")
    assert "no-such-usb-mic" in str(err.value) and "pulse" in str(err.value)
    with pytest.raises(SpeechError):
        devices.Microphone("no-such-usb-mic")


# ------------------------------------------------------------------------------ microphone
def _record(mic: devices.Microphone, seconds: float) -> np.ndarray:
    got, need = [], int(seconds * mic.sample_rate)
    while sum(len(c.samples) for c in got) < need:
        chunk = mic.read(timeout=2)
        assert chunk is not None, "microphone delivered nothing for 2 s"
        assert chunk.sample_rate == mic.sample_rate and chunk.samples.dtype == np.float32
        got.append(chunk)
    return np.concatenate([c.samples for c in got])


@needs_rig
def test_microphone_records_what_is_written_into_the_fifo(rig):
    voice = chirp_voice()
    with devices.Microphone("pulse", sample_rate=RATE) as mic:
        assert mic.device_rate == RATE
        _record(mic, 0.2)  # stream is live
        rig.say_into_mic(voice)
        rec = _record(mic, 1.5)
        assert mic.overflows == 0
    lag, peak = best_lag(rec, voice)
    assert peak > 0.99, (lag, peak)  # pulse passes 16 kHz s16le through bit-exactly
    assert np.abs(rec[lag : lag + len(voice)] - voice).max() < 2e-3
    assert mic.closed
    with pytest.raises(SpeechError, match="closed"):
        mic.read(timeout=0.1)


@needs_rig
def test_microphone_resamples_when_asked_for_another_rate(rig):
    with devices.Microphone("pulse", sample_rate=8000) as mic:
        _record(mic, 0.2)
        rig.say_into_mic(tone(440, 0.8))
        rec = _record(mic, 1.4)
    assert mic.sample_rate == 8000
    loud = rec[np.abs(rec) > 0.05]
    assert len(loud) > 0.5 * 8000
    start = int(np.argmax(np.abs(rec) > 0.2))
    assert abs(dominant_hz(rec[start + 400 : start + 4400], 8000) - 440) < 5


@needs_rig
def test_microphone_queue_is_bounded_and_counts_overflow(rig):
    with devices.Microphone("pulse", block_s=0.05, max_queue_s=0.2) as mic:
        time.sleep(0.8)  # nobody reads: the queue keeps only the newest 0.2 s
        assert mic.overflows >= 5
        n = 0
        while mic.read(timeout=0) is not None:
            n += 1
        assert n <= 4


@needs_rig
def test_iteration_ends_when_closed_from_another_thread(rig):
    mic = devices.Microphone("pulse")
    threading.Timer(0.3, mic.close).start()
    t0 = time.monotonic()
    n = sum(1 for _ in mic)
    assert n > 0 and time.monotonic() - t0 < 3


# ------------------------------------------------------------------------------ speaker
@needs_rig
def test_speaker_plays_a_tone_into_vspk(rig):
    spk = devices.Speaker("pulse")
    rig.start_recording()
    # 1 s of tone as 10 chunks, its first and last 0.2 s at their own pitch: both ends must arrive
    signal = np.concatenate([tone(500, 0.2), tone(1000, 0.6), tone(1500, 0.2)])
    chunks = [AudioChunk(seg, RATE, i * 0.1) for i, seg in enumerate(np.split(signal, 10))]
    t0 = time.monotonic()
    assert spk.play(chunks) is True
    elapsed = time.monotonic() - t0
    time.sleep(0.3)
    rec = rig.stop_recording()
    assert 1.0 < elapsed < 5, elapsed
    loud = np.flatnonzero(np.abs(rec) > 0.1)
    heard = rec[loud[0] : loud[-1] + 1]
    assert abs(len(heard) / RATE - 1.0) < 0.02, len(heard) / RATE  # all of it, no gap, nothing cut
    ends = [dominant_hz(heard[a : a + 2400]) for a in (400, len(heard) - 2800)]
    assert abs(ends[0] - 500) < 10 and abs(ends[1] - 1500) < 10, ends
    seg = heard[5000 : 5000 + 8000]
    assert abs(dominant_hz(seg) - 1000) < 5
    rms = float(np.sqrt(np.mean(seg**2)))
    assert 0.3 < rms < 0.42  # 0.5 amplitude sine: rms 0.354 (resampled 16 kHz -> device rate)


@needs_rig
def test_a_slow_source_is_played_whole(rig):
    """A source slower than real time (TTS waiting for the model): every chunk is heard in full
    and in order; the stream is fed silence while it waits. (Where the pauses land is
    this rig's business: its null sink starts consuming a new stream only after ~1.5 s, so
    early chunks queue up and play back to back.)"""
    spk = devices.Speaker("pulse")

    def slow():
        for freq in (500, 1000, 1500):
            yield AudioChunk(tone(freq, 0.3), RATE)
            time.sleep(0.6)

    rig.start_recording()
    assert spk.play(slow()) is True
    time.sleep(0.3)
    rec = rig.stop_recording()
    frames = rec[: len(rec) // 160 * 160].reshape(-1, 160)  # 10 ms frames
    sounding = frames[np.sqrt((frames**2).mean(1)) > 0.05]
    pitches = [round(dominant_hz(f) / 500) * 500 for f in sounding]
    runs = [(p, n) for p, g in itertools.groupby(pitches) if (n := sum(1 for _ in g)) > 2]  # not edge frames
    assert [p for p, _ in runs] == [500, 1000, 1500], runs
    assert all(29 <= n <= 32 for _, n in runs), runs  # 0.3 s each (+ frames straddling an edge)


@needs_rig
def test_cancel_during_playback_stops_quickly(rig):
    spk = devices.Speaker("pulse", block_s=0.05)
    cancel = threading.Event()
    long_tone = [AudioChunk(tone(600, 10.0), RATE)]
    rig.start_recording()
    cancelled_at: list[float] = []
    threading.Timer(0.5, lambda: (cancelled_at.append(time.monotonic()), cancel.set())).start()
    assert spk.play(long_tone, cancel=cancel) is False
    returned = time.monotonic() - cancelled_at[0]
    time.sleep(0.3)
    rec = rig.stop_recording()
    assert returned < 0.5, returned  # within a block + closing the stream, timed from the cancel
    assert (np.abs(rec) > 0.1).sum() < 1.5 * RATE  # did not play the 10 s
    # stop() from another thread does the same (timed from the stop: opening a PulseAudio stream
    # sometimes stalls a few hundred ms on its own)
    stopped_at: list[float] = []
    threading.Timer(0.3, lambda: (stopped_at.append(time.monotonic()), spk.stop())).start()
    assert spk.play(long_tone) is False
    assert time.monotonic() - stopped_at[0] < 0.5


# ------------------------------------------------------------------------------ device loss
@needs_rig
def test_read_raises_when_the_device_disappears(tmp_path):
    """The sound server dies under an open microphone: read() raises within seconds and close()
    returns. Run in a child process: the PortAudio call left stuck on the dead server (by design,
    in a daemon thread) would otherwise deadlock the next Pa_Terminate of this test process."""
    script = f"""
import json, os, sys, time
sys.path.insert(0, {str(Path(__file__).parent)!r})
from audio_rig import PulseAudioRig
from edgellm_sdk.errors import SpeechError
from edgellm_sdk.speech import devices
out = {{}}
own = PulseAudioRig(__import__("pathlib").Path({str(tmp_path)!r})).start()
try:
    mic = devices.Microphone("pulse", stall_s=1.0)
    out["first"] = mic.read(timeout=2) is not None
    own.kill_server()
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 10:
            mic.read(timeout=0.5)
    except SpeechError as e:
        out["error"] = str(e)
    out["raise_s"] = time.monotonic() - t0
    t0 = time.monotonic()
    mic.close(timeout=1)
    out["close_s"] = time.monotonic() - t0
finally:
    own.kill_server()
    print(json.dumps(out), flush=True)
    os._exit(0)  # skip PortAudio's atexit terminate: a call is stuck on the dead server
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["first"], out
    assert re.search("disconnected|stopped|stuck", out.get("error", "")), (out, proc.stderr[-2000:])
    assert out["raise_s"] < 5, out
    assert out["close_s"] < 1.5, out  # a dead PortAudio stream never hangs close()
