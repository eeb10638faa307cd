"""Redactor: finds personal data in a string and replaces it with typed placeholders.

The analyzer (presidio + jieba, the privacy extra) is built on first use, once per Redactor, and is
safe to share between threads. ``default_redactor()`` is the shared one behind ``privacy.redact``.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterable
from typing import Any

from ..errors import MissingDependency
from .spans import LANGUAGES, PLACEHOLDERS, PRESIDIO_TYPES, PiiSpan, languages_of, replace, resolve, trim

INSTALL = "pip install 'edgellm-sdk[privacy]'"


class Redactor:
    """``find(text)`` -> the PII spans; ``redact(text)`` -> the text with each span replaced by its placeholder.

    ``entities`` limits what is looked for (default: every type in PLACEHOLDERS); ``min_score`` drops weaker
    hits. ``language`` "en" or "zh" forces the recognizers; None detects them per string (mixed text gets both).
    """

    def __init__(self, *, entities: Iterable[str] | None = None, min_score: float = 0.0):
        wanted = tuple(entities) if entities is not None else tuple(PLACEHOLDERS)
        unknown = sorted(set(wanted) - set(PLACEHOLDERS))
        if unknown:
            raise ValueError(f"unknown entity types {unknown}; choose from {sorted(PLACEHOLDERS)}")
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score!r}")
        self.entities, self.min_score = frozenset(wanted), min_score
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def load(self) -> Redactor:
        """Build the analyzer now (about 1-3 s: presidio import, jieba dictionary) instead of on first use."""
        with self._lock:
            if self._analyzer is None:
                self._analyzer = _build()
        return self

    def find(self, text: str, *, language: str | None = None) -> list[PiiSpan]:
        """The non-overlapping PII spans of ``text``, in order."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        languages = languages_of(text, language)
        if not text.strip():
            return []
        analyzer = self._analyzer or self.load()._analyzer
        candidates = []
        for lang in languages:
            for r in analyzer.analyze(text, language=lang):
                kind = PRESIDIO_TYPES.get(r.entity_type, r.entity_type)
                if kind in self.entities and r.score >= self.min_score and r.end > r.start:
                    candidates.append(trim(text, PiiSpan(kind, r.start, r.end, float(r.score))))
        return resolve(candidates)

    def redact(self, text: str, *, language: str | None = None) -> str:
        """``text`` with every PII span replaced by its placeholder (``<PHONE>``, ``<PERSON>``, ...)."""
        return replace(text, self.find(text, language=language))

    def contains_pii(self, text: str, *, language: str | None = None) -> bool:
        return bool(self.find(text, language=language))


def privacy_available() -> bool:
    """True if the privacy extra is installed (checked without importing it)."""
    return all(importlib.util.find_spec(name) is not None for name in ("presidio_analyzer", "jieba"))


def _build() -> Any:
    try:
        from .recognizers import build_analyzer
    except ImportError as e:
        needs = (
            "" if sys.version_info >= (3, 11) else f" (presidio needs Python >= 3.11; this is {sys.version.split()[0]})"
        )
        raise MissingDependency(
            e.name or "presidio-analyzer",
            "privacy",
            f"PII redaction needs presidio-analyzer and jieba ({e}); install them with: {INSTALL}{needs}",
        ) from e
    return build_analyzer(LANGUAGES)


_default: Redactor | None = None
_default_lock = threading.Lock()


def default_redactor() -> Redactor:
    """The process-wide Redactor behind ``privacy.redact`` (built once, on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Redactor()
        return _default
