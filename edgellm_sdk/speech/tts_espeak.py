"""espeak-ng TTS through its command line (Debian ``espeak-ng``): robotic but tiny and fast.

Text goes in on stdin (never argv, so "-x" is spoken, not parsed), a WAV comes back on stdout.
Chinese uses ``cmn-latn-pinyin``: Debian's espeak-ng 1.51 ``cmn`` / ``zh`` voice reads many
hanzi as their pinyin spelled in English ("ni three hao three").
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from typing import Any

import numpy as np

from ..errors import MissingDependency
from .tts import SentenceSynthesizer, SynthesisError

VOICES = {"en": "en-us", "zh": "cmn-latn-pinyin", "cmn": "cmn-latn-pinyin", "yue": "yue"}


class MissingProgram(MissingDependency):
    """A system program (not a pip package) is missing; the message names the install command."""

    def __init__(self, program: str, fix: str) -> None:
        super().__init__(program, message=f"{program!r} is not installed or not on PATH; install it with: {fix}")


class EspeakSynthesizer(SentenceSynthesizer):
    """``rate``: words per minute (espeak-ng default 175, range 80-450); ``pitch``: 0-99."""

    name = "espeak"

    def __init__(
        self,
        voice: str | None = None,
        language: str = "en",
        *,
        rate: int = 175,
        pitch: int | None = None,
        timeout_s: float = 10.0,
        binary: str = "espeak-ng",
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if not 80 <= rate <= 450:
            raise ValueError(f"rate must be 80-450 words per minute, got {rate}")
        if pitch is not None and not 0 <= pitch <= 99:
            raise ValueError(f"pitch must be 0-99, got {pitch}")
        if voice is None and language not in VOICES:
            raise ValueError(f"no espeak-ng voice for language {language!r}; known: {sorted(VOICES)}, or pass voice=")
        exe = shutil.which(binary)
        if exe is None:
            raise MissingProgram(binary, "apt install espeak-ng")
        self.voice, self.language = voice or VOICES[language], language
        self.timeout_s = timeout_s
        self._cmd = [exe, "--stdout", "-b", "1", "-v", self.voice, "-s", str(rate)]
        if pitch is not None:
            self._cmd += ["-p", str(pitch)]
        self.sample_rate = 22050
        # probe: checks the voice exists and reads the real sample rate (mbrola voices use 16 kHz)
        self.sample_rate, _ = self._run("a")

    def _run(self, text: str) -> tuple[int, np.ndarray]:
        try:
            proc = subprocess.run(
                self._cmd, check=False, input=text.encode("utf-8"), capture_output=True, timeout=self.timeout_s
            )
        except subprocess.TimeoutExpired:
            raise SynthesisError(f"espeak-ng took more than {self.timeout_s} s on {text[:60]!r}") from None
        err = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or "does not exist" in err:
            raise SynthesisError(f"espeak-ng -v {self.voice} failed (exit {proc.returncode}): {err or 'no message'}")
        if not proc.stdout:
            return self.sample_rate, np.zeros(0, np.float32)
        # streamed WAV: the header's sizes are placeholders, so read frames up to the end of data
        with wave.open(io.BytesIO(proc.stdout)) as w:
            if w.getsampwidth() != 2 or w.getnchannels() != 1:
                raise SynthesisError(f"espeak-ng returned {w.getnchannels()} ch x {w.getsampwidth() * 8} bit audio")
            rate, data = w.getframerate(), w.readframes(w.getnframes())
        pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        return rate, pcm.astype(np.float32) / 32768.0

    def _render(self, text: str) -> np.ndarray:
        return self._run(text)[1]


def create(voice: str | None = None, language: str = "en", **options: Any) -> EspeakSynthesizer:
    return EspeakSynthesizer(voice, language, **options)
