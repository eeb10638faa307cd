"""Echo cancellation on real speech: piper's voice through a simulated room into the microphone,
a person saying "stop" over it, moonshine listening to what is left."""

import numpy as np
import pytest

pytest.importorskip("piper", reason="the speech extra is not installed")

from edgellm_sdk.speech.asr import open_transcriber
from edgellm_sdk.speech.audio import resample
from edgellm_sdk.speech.echo import BLOCK, EchoCanceller
from edgellm_sdk.speech.tts import open_synthesizer
from edgellm_sdk.speech.types import AudioChunk

RATE, CHUNK = 16000, 1600
STORY = (
    "Once upon a time, a brave little robot lived in a small workshop by the sea. Every morning it "
    "polished its wheels and went out to help the fishermen."
)


@pytest.fixture(scope="module")
def scene():
    """far: the assistant's voice at piper's rate; mic: its echo (120 ms of device delay, a 60 ms
    room tail) + "stop." at 4 s + noise."""
    tts = open_synthesizer("piper", noise_scale=0.0, noise_w_scale=0.0)  # no sampling: one scene every run
    far = np.concatenate([c.samples for c in tts.synthesize(STORY)]).astype(np.float32)
    far16 = resample(AudioChunk(far, tts.sample_rate), RATE).samples.astype(np.float64)
    stop = resample(
        AudioChunk(np.concatenate([c.samples for c in tts.synthesize("Stop.")]), tts.sample_rate), RATE
    ).samples.astype(np.float64)
    rng = np.random.default_rng(0)
    n_tail = int(0.06 * RATE)
    tail = rng.normal(0, 1, n_tail) * np.exp(-np.arange(n_tail) / (0.015 * RATE))
    delay = int(0.12 * RATE)
    rir = np.zeros(delay + n_tail)
    rir[delay] = 0.8
    rir[delay:] += 0.3 * tail / np.abs(tail).max()
    mic = np.convolve(far16, rir)[: len(far16)]
    at = 4 * RATE
    mic[at : at + len(stop)] += 0.5 * stop
    mic += rng.normal(0, 1e-3, len(mic))
    return far, tts.sample_rate, mic, slice(at - RATE // 2, at + len(stop) + RATE // 2)


STORY_WORDS = {w.strip(".,").lower() for w in STORY.split() if len(w.strip(".,")) > 3}


def cancel(aec, far, far_rate, mic, *, skipped_s=0.0, ahead=0):
    """Real-time order: each 100 ms the speaker writes a block, then the mic's block arrives.
    ``skipped_s``: silence the device swallowed before the audio (PulseAudio drops a stream's
    start), so the echo is heard *before* its place on the reference timeline; ``ahead``: blocks
    the speaker writes in advance (its buffer), which makes that "future" reference available."""
    step = round(CHUNK * far_rate / RATE)
    ref = np.concatenate([np.zeros(round(skipped_s * far_rate), np.float32), far])
    blocks = [ref[k * step : (k + 1) * step] for k in range(len(mic) // CHUNK + ahead + 1)]
    for block in blocks[:ahead]:
        aec.play(block, far_rate)
    out = []
    for k, i in enumerate(range(0, len(mic), CHUNK)):
        aec.play(blocks[k + ahead], far_rate)
        out.append(aec.process(AudioChunk(mic[i : i + CHUNK].astype(np.float32), RATE, i / RATE)).samples)
    clean = np.concatenate(out).astype(np.float64)
    return np.concatenate([clean[BLOCK:], np.zeros(BLOCK)])  # undo the one block of latency


def erle_db(mic, clean, lo_s, hi_s):
    s = slice(int(lo_s * RATE), int(hi_s * RATE))
    return 10 * np.log10((mic[s] @ mic[s]) / (clean[s] @ clean[s]))


def test_echo_is_removed_and_stop_is_heard_over_it(scene):
    far, far_rate, mic, stop_region = scene
    aec = EchoCanceller(tail_s=0.25)
    clean = cancel(aec, far, far_rate, mic)
    assert erle_db(mic, clean, 2.5, 4.0) > 12  # converging within ~2 s of speech
    assert erle_db(mic, clean, 5.5, len(mic) / RATE) > 20  # and kept through the double talk
    asr = open_transcriber("moonshine")
    heard_raw = asr.transcribe_audio(AudioChunk(mic[stop_region].astype(np.float32), RATE)).lower()
    heard_clean = asr.transcribe_audio(AudioChunk(clean[stop_region].astype(np.float32), RATE)).lower()
    assert heard_raw.strip(" .!") != "stop", heard_raw  # over its own voice "stop" is not what is heard...
    clean_words = set(heard_clean.replace(".", " ").replace(",", " ").split())
    assert "stop" in clean_words, heard_clean  # ...once the echo is gone it is,
    assert not clean_words & STORY_WORDS, heard_clean  # and nothing of the story is left
    assert aec.reference_dropped == 0


def test_the_bulk_delay_is_measured_either_way(scene):
    far, far_rate, mic, _ = scene
    far = resample(AudioChunk(far, far_rate), RATE).samples  # no stream resampler delay: exact lags
    far_rate = RATE
    aec = EchoCanceller(tail_s=0.128)
    clean = cancel(aec, far, far_rate, mic)
    assert abs(aec.delay_s - 0.12) < 0.005, aec.delay_s  # the scene's 120 ms, found and compensated
    assert erle_db(mic, clean, 5.5, len(mic) / RATE) > 20
    # the device swallowed 0.3 s of the stream's start: the echo comes 180 ms *before* the reference
    # position; the speaker's buffer (0.5 s ahead) holds that "future" reference
    aec = EchoCanceller(tail_s=0.128)
    clean = cancel(aec, far, far_rate, mic, skipped_s=0.3, ahead=5)
    assert abs(aec.delay_s + 0.18) < 0.005, aec.delay_s
    assert erle_db(mic, clean, 5.5, len(mic) / RATE) > 20
    assert aec.realignments == 1


def test_a_delay_beyond_max_delay_is_not_cancelled(scene):
    far, far_rate, mic, _ = scene
    aec = EchoCanceller(tail_s=0.064, max_delay_s=0.05)  # the path is 120 ms + room
    clean = cancel(aec, far, far_rate, mic)
    assert erle_db(mic, clean, 2.5, 4.0) < 3


def test_without_playback_the_microphone_passes_through():
    aec = EchoCanceller()
    x = np.random.default_rng(1).normal(0, 0.1, 5 * CHUNK + 123).astype(np.float32)
    out = [aec.process(AudioChunk(x[i : i + 700], RATE, i / RATE)) for i in range(0, len(x), 700)]
    assert [len(o.samples) for o in out] == [len(x[i : i + 700]) for i in range(0, len(x), 700)]
    y = np.concatenate([o.samples for o in out])
    np.testing.assert_allclose(y[BLOCK:], x[: len(x) - BLOCK], atol=1e-6)  # exactly one block later


def test_bad_settings_and_rates_are_refused():
    with pytest.raises(ValueError, match="tail_s"):
        EchoCanceller(tail_s=5)
    with pytest.raises(ValueError, match="step"):
        EchoCanceller(step=0)
    with pytest.raises(ValueError, match="Microphone at that rate"):
        EchoCanceller().process(AudioChunk(np.zeros(480, np.float32), 48000))


def test_reference_backlog_is_bounded():
    aec = EchoCanceller(max_reference_s=1.0, max_delay_s=0.5)
    for _ in range(30):  # 3 s played while nobody reads the microphone
        aec.play(np.ones(CHUNK, np.float32) * 0.1, RATE)
    assert aec.reference_dropped == 2 * RATE
    # the microphone's timeline is not moved by it: the next block still reads "now" (zeros: dropped)
    out = aec.process(AudioChunk(np.full(CHUNK, 0.1, np.float32), RATE))
    assert aec._ref.read_pos == CHUNK - CHUNK % BLOCK and np.allclose(out.samples[BLOCK:], 0.1)


# ------------------------------------------------------------------ on a real sound server
def test_on_a_sound_server_the_assistant_voice_is_removed_and_stop_is_heard(tmp_path):
    """Speaker -> PulseAudio -> microphone for real (the null sink's monitor is the microphone, so
    the "room" is the server's buffering, with a delay nobody told the canceller); a person says
    "stop" into the same sink 6 s in. After the canceller has found the delay and converged, the
    story is gone from what the microphone hears and "stop" is left."""
    import sys
    import threading
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from audio_rig import PulseAudioRig

    if (reason := PulseAudioRig.skip_reason()) is not None:
        pytest.skip(reason)
    pytest.importorskip("sounddevice", exc_type=ImportError)
    from edgellm_sdk.speech import devices

    tts = open_synthesizer("piper")
    story = list(tts.synthesize(STORY))
    stop = resample(
        AudioChunk(np.concatenate([c.samples for c in tts.synthesize("Stop.")]), tts.sample_rate), RATE
    ).samples
    with PulseAudioRig(tmp_path) as rig:
        rig.microphone_hears_speaker()
        keepalive = rig.play_into_speaker(None)
        time.sleep(0.5)
        aec = EchoCanceller()
        voice = devices.Speaker("pulse", on_output=aec.play)
        raw, clean = [], []
        try:
            with devices.Microphone("pulse", sample_rate=RATE, stall_s=5) as mic:
                player = threading.Thread(target=voice.play, args=(story,), daemon=True)
                player.start()
                person = rig.play_into_speaker(np.concatenate([np.zeros(6 * RATE), 0.8 * stop]))
                t0 = time.monotonic()
                while time.monotonic() - t0 < 10.5:
                    chunk = mic.read(timeout=5)
                    raw.append(chunk.samples)
                    clean.append(aec.process(chunk).samples)
                player.join(10)
                person.wait(10)
        finally:
            keepalive.terminate()
    raw, clean = np.concatenate(raw), np.concatenate(clean)
    assert aec.realignments >= 1 and abs(aec.delay_s) < 1.0  # the server's delay, measured
    late = slice(5 * RATE, None)  # converged by then
    asr = open_transcriber("moonshine")
    heard_raw = asr.transcribe_audio(AudioChunk(raw[late], RATE)).lower()
    heard_clean = asr.transcribe_audio(AudioChunk(clean[late], RATE)).lower()
    story_words = {"morning", "polished", "wheels", "wills", "fishermen", "fisherman", "help"}
    assert story_words & set(heard_raw.replace(".", " ").replace(",", " ").split()), heard_raw
    assert not story_words & set(heard_clean.replace(".", " ").replace(",", " ").split()), heard_clean
    assert "stop" in heard_clean, heard_clean
