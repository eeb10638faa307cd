"""PII redaction: names, phone numbers, e-mail, postal addresses, GPS, IP and MAC addresses, IDs (EN and ZH).

    from edgellm_sdk import privacy
    privacy.redact("Call John Smith at +1 415-555-0132")   # 'Call <PERSON> at <PHONE>'
    privacy.contains_pii("move 2 meters")                  # False

presidio's pattern recognizers (no spaCy model, nothing downloaded) plus our own for what it lacks
(patterns.py) and jieba for Chinese names and addresses. They need the privacy extra
(``pip install 'edgellm-sdk[privacy]'``, Python >= 3.11) and are imported on first use.
"""

from __future__ import annotations

from .logfilter import RedactingFilter
from .redactor import Redactor, default_redactor, privacy_available
from .spans import LANGUAGES, PLACEHOLDERS, PiiSpan

__all__ = [
    "LANGUAGES",
    "PLACEHOLDERS",
    "PiiSpan",
    "RedactingFilter",
    "Redactor",
    "contains_pii",
    "default_redactor",
    "find",
    "privacy_available",
    "redact",
]


def redact(text: str, *, language: str | None = None) -> str:
    """``text`` with PII replaced by typed placeholders (``<PHONE>``, ``<EMAIL>``, ``<PERSON>``, ...)."""
    return default_redactor().redact(text, language=language)


def find(text: str, *, language: str | None = None) -> list[PiiSpan]:
    return default_redactor().find(text, language=language)


def contains_pii(text: str, *, language: str | None = None) -> bool:
    return default_redactor().contains_pii(text, language=language)
