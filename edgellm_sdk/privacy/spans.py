"""PiiSpan, the placeholder of each entity type, overlap resolution and the language of a string.

Standard library only: the rest of the SDK can import this without the privacy extra.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# Entity type -> the placeholder that replaces it. Presidio's own names map onto ours.
PLACEHOLDERS: dict[str, str] = {
    "PERSON": "<PERSON>",
    "PHONE": "<PHONE>",
    "EMAIL": "<EMAIL>",
    "ADDRESS": "<ADDRESS>",
    "GPS": "<GPS>",
    "IP": "<IP>",
    "MAC": "<MAC>",
    "ID": "<ID>",
}
PRESIDIO_TYPES = {
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IP_ADDRESS": "IP",
    "MAC_ADDRESS": "MAC",
    "CREDIT_CARD": "ID",
    "US_SSN": "ID",
    "IBAN_CODE": "ID",
}
LANGUAGES = ("en", "zh")

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class PiiSpan:
    """``text[start:end]`` is an entity of ``type`` (a key of PLACEHOLDERS), found with ``score`` in [0, 1]."""

    type: str
    start: int
    end: int
    score: float

    @property
    def placeholder(self) -> str:
        return PLACEHOLDERS[self.type]


def languages_of(text: str, language: str | None = None) -> tuple[str, ...]:
    """The recognizer languages to run: ``language`` if given, else zh for CJK text, en for Latin, both if mixed."""
    if language is not None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES} or None (detect), got {language!r}")
        return (language,)
    has_cjk, has_latin = bool(_CJK.search(text)), bool(_LATIN.search(text))
    if has_cjk and has_latin:
        return LANGUAGES
    return ("zh",) if has_cjk else ("en",)


def trim(text: str, span: PiiSpan) -> PiiSpan:
    """Drop CJK characters from the ends of an e-mail span (presidio's pattern takes 邮箱 as part of the address)."""
    if span.type != "EMAIL":
        return span
    start, end = span.start, span.end
    while start < end and _CJK.match(text, start):
        start += 1
    while end > start and _CJK.match(text, end - 1):
        end -= 1
    return PiiSpan(span.type, start, end, span.score)


def resolve(spans: Iterable[PiiSpan]) -> list[PiiSpan]:
    """Non-overlapping spans in text order: of overlapping candidates the higher score wins, then the longer.

    Same-type candidates that overlap are merged into one span first (two recognizers on one number).
    """
    merged: list[PiiSpan] = []
    for s in sorted(spans, key=lambda s: (s.type, s.start)):
        last = merged[-1] if merged else None
        if last is not None and last.type == s.type and s.start < last.end:
            merged[-1] = PiiSpan(s.type, last.start, max(last.end, s.end), max(last.score, s.score))
        else:
            merged.append(s)
    kept: list[PiiSpan] = []
    for s in sorted(merged, key=lambda s: (-s.score, -(s.end - s.start), s.start)):
        if all(s.end <= k.start or s.start >= k.end for k in kept):
            kept.append(s)
    return sorted(kept, key=lambda s: s.start)


def replace(text: str, spans: Sequence[PiiSpan]) -> str:
    """``text`` with each (non-overlapping) span replaced by its placeholder; adjacent same-type spans join."""
    out: list[str] = []
    pos, last_type = 0, None
    for s in sorted(spans, key=lambda s: s.start):
        gap = text[pos : s.start]
        if not (last_type == s.type and not gap.strip()):  # "<PERSON> <PERSON>" stays one "<PERSON>"
            out += [gap, s.placeholder]
        pos, last_type = s.end, s.type
    out.append(text[pos:])
    return "".join(out)
