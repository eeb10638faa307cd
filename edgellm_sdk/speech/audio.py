"""Audio helpers (numpy + stdlib only): WAV read/write, mono, resampling, chunking, PCM16.

chunk = read_wav("command.wav")               # any rate, mono or stereo, PCM or float
chunk = resample(chunk, 16000)                # windowed-sinc, good enough for speech
for piece in chunks(chunk, seconds=0.1):      # a stream of AudioChunks
    ...
"""

from __future__ import annotations

import struct
import wave
from collections.abc import Iterator
from math import gcd
from pathlib import Path

import numpy as np

from .errors import SpeechError
from .types import AudioChunk

_WAVE_FORMAT_PCM, _WAVE_FORMAT_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 1, 3, 0xFFFE


def to_mono(samples: np.ndarray) -> np.ndarray:
    """float32 1-D samples from a 1-D array or a 2-D (frames, channels) / (channels, frames) one
    (channels are averaged). Integer arrays are scaled from their full range to [-1, 1]."""
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.integer):
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float32) - (info.min + info.max + 1) / 2) / ((info.max - info.min + 1) / 2)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 1:
        return x
    if x.ndim == 2 and min(x.shape) <= 8:
        return x.mean(axis=int(np.argmin(x.shape))).astype(np.float32)
    raise SpeechError(f"expected mono (n,) or multi-channel (n, channels) audio, got shape {x.shape}")


def as_chunk(samples: np.ndarray, sample_rate: int, timestamp: float = 0.0) -> AudioChunk:
    """An AudioChunk from any numpy audio array (stereo is averaged to mono, ints are scaled)."""
    return AudioChunk(to_mono(samples), int(sample_rate), timestamp)


def to_pcm16(samples: np.ndarray) -> bytes:
    """Little-endian signed 16-bit PCM bytes from float samples in [-1, 1] (clipped)."""
    x = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(x * 32767.0).astype("<i2").tobytes()


def read_wav(path: str | Path) -> AudioChunk:
    """Read a PCM (8/16/24/32-bit) or IEEE-float WAV file as mono float32."""
    path = Path(path)
    if not path.is_file():
        raise SpeechError(f"audio file not found: {path}")
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw, fmt = w.readframes(w.getnframes()), _WAVE_FORMAT_PCM
    except (wave.Error, EOFError) as exc:
        if "unknown format" not in str(exc):  # python < 3.12's wave reads PCM only
            raise SpeechError(f"{path} is not a WAV file ({exc}); convert it to 16-bit PCM WAV") from exc
        channels, width, rate, raw, fmt = _read_riff(path)
    x = _decode(raw, fmt, width, path)
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1)
    return AudioChunk(x.astype(np.float32), rate)


def write_wav(path: str | Path, chunk: AudioChunk) -> None:
    """Write a mono 16-bit PCM WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(chunk.sample_rate)
        w.writeframes(to_pcm16(chunk.samples))


def _read_riff(path: Path) -> tuple[int, int, int, bytes, int]:
    """(channels, sample width, rate, data, format tag) of a float / extensible WAV file."""
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError(f"{path} is not a WAV file")
    pos, fmt, raw = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # first field of the sub-format GUID
            fmt = (channels, bits // 8, rate, tag)
        elif cid == b"data":
            raw = body
        pos += 8 + size + (size & 1)
    if fmt is None or raw is None:
        raise SpeechError(f"{path}: WAV file without a fmt or data chunk")
    channels, width, rate, tag = fmt
    return channels, width, rate, raw, tag


def _decode(raw: bytes, fmt: int, width: int, path: Path) -> np.ndarray:
    if fmt == _WAVE_FORMAT_FLOAT and width in (4, 8):
        return np.frombuffer(raw[: len(raw) - len(raw) % width], dtype=f"<f{width}").astype(np.float32)
    if fmt != _WAVE_FORMAT_PCM or width not in (1, 2, 3, 4):
        raise SpeechError(
            f"{path}: unsupported WAV encoding (format {fmt}, {8 * width}-bit); use 16-bit PCM or 32-bit float"
        )
    raw = raw[: len(raw) - len(raw) % width]
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
    if width == 3:  # 24-bit: widen to int32 keeping the sign in the top byte
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3)
        x = (b[:, 0].astype(np.int32) << 8) | (b[:, 1].astype(np.int32) << 16) | (b[:, 2].astype(np.int32) << 24)
        return x.astype(np.float32) / 2**31
    return np.frombuffer(raw, f"<i{width}").astype(np.float32) / 2 ** (8 * width - 1)


class StreamResampler:
    """Windowed-sinc resampler that keeps state across chunks (no seams between them).

    Output sample n sits at input position n * src / dst (exact integer arithmetic); each is a
    Hann-windowed sinc over ``half_width`` input samples either side, low-passed at the lower
    Nyquist. Memory is bounded by the kernel width, whatever the stream length."""

    def __init__(self, src_rate: int, dst_rate: int, half_width: int = 16):
        g = gcd(int(src_rate), int(dst_rate))
        self.src, self.dst = int(src_rate) // g, int(dst_rate) // g
        self.cutoff = min(1.0, self.dst / self.src)
        self.width = int(np.ceil(half_width / self.cutoff))  # input samples each side
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # absolute input index of _buf[0]
        self._next = 0  # next output index

    def process(self, samples: np.ndarray, final: bool = False) -> np.ndarray:
        if self.src == self.dst:
            return np.asarray(samples, dtype=np.float32)
        buf = np.concatenate([self._buf, np.asarray(samples, dtype=np.float32)])
        end = self._buf_start + len(buf)  # one past the last input sample seen
        limit = end if final else end - self.width  # outputs need `width` samples of look-ahead
        n_stop = max(self._next, -(-limit * self.dst // self.src))  # outputs n with n*src/dst < limit
        out = np.empty(n_stop - self._next, np.float32)
        offs = np.arange(-self.width + 1, self.width + 1)
        for lo in range(self._next, n_stop, 4096):  # blocks bound the (n, taps) temporary
            n = np.arange(lo, min(lo + 4096, n_stop), dtype=np.int64)
            base, frac = (n * self.src) // self.dst, (n * self.src) % self.dst / self.dst
            idx = base[:, None] + offs[None, :]
            d = (frac[:, None] - offs[None, :]).astype(np.float64)
            k = self.cutoff * np.sinc(self.cutoff * d) * (0.5 + 0.5 * np.cos(np.pi * d / (self.width + 1)))
            rel = idx - self._buf_start
            ok = (rel >= 0) & (rel < len(buf))
            out[lo - self._next : lo - self._next + len(n)] = (
                np.where(ok, buf[np.clip(rel, 0, len(buf) - 1)], 0) * k
            ).sum(1)
        self._next = n_stop
        keep_from = (self._next * self.src) // self.dst - self.width + 1  # first input still needed
        drop = min(max(0, keep_from - self._buf_start), len(buf))
        self._buf, self._buf_start = buf[drop:], self._buf_start + drop
        return out


def resample(chunk: AudioChunk, rate: int) -> AudioChunk:
    """The chunk at ``rate`` Hz (returned unchanged when it already is)."""
    if chunk.sample_rate == rate:
        return chunk
    out = StreamResampler(chunk.sample_rate, rate).process(chunk.samples, final=True)
    return AudioChunk(out, rate, chunk.timestamp)


def chunks(audio: AudioChunk, seconds: float = 0.1) -> Iterator[AudioChunk]:
    """Split an AudioChunk into consecutive chunks of ``seconds`` (the last may be shorter)."""
    if seconds <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    step = max(1, round(seconds * audio.sample_rate))
    for i in range(0, len(audio.samples), step):
        yield AudioChunk(audio.samples[i : i + step], audio.sample_rate, audio.timestamp + i / audio.sample_rate)
