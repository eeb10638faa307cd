"""Cut streamed text (LLM deltas) into sentences as soon as each one ends.

A sentence ends at ``. ! ?`` followed by whitespace, at ``。！？`` (no space needed), or at a
newline. Closing quotes / brackets stay with their sentence. No cut inside "3.5", after
abbreviations ("e.g.", "Dr.", "U.S."), single initials ("J. Smith") or list numbers ("1. ").
An ASCII terminator at the very end of the buffer waits for the next delta, which decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

ASCII_TERMS = ".!?…"
CJK_TERMS = "。！？"
CLOSERS = "\"')]}”’」』）】》"
OPENERS = "\"'([{“‘「『（【《"
CLAUSE_MARKS = ",;:，、；：—"
ABBREVIATIONS = frozenset(
    ("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "approx", "fig", "vol", "dept", "mt", "ft")
    + ("gen", "col", "lt", "sgt", "capt", "rev", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep")
    + ("sept", "oct", "nov", "dec")
)


BREAK_WORDS = frozenset(
    ("and", "but", "or", "so", "then", "because", "while", "when", "which", "that", "where", "if", "than")
    + ("with", "on", "in", "near", "from", "for", "after", "before", "until")
)
_WORD = re.compile(r"\S+")


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3000 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFF00 <= o <= 0xFFEF


class SentenceSplitter:
    """``feed(delta)`` returns the sentences completed so far; ``flush()`` returns the rest.

    ``max_chars`` bounds a run-on "sentence": past it the text is cut at the last clause mark
    (``, ; :`` ...) or space before the limit, so a TTS engine never gets an unbounded input.
    """

    def __init__(self, max_chars: int = 300) -> None:
        if max_chars < 20:
            raise ValueError(f"max_chars must be >= 20, got {max_chars}")
        self.max_chars = max_chars
        self._buf = ""

    def feed(self, delta: str) -> list[str]:
        if not isinstance(delta, str):
            raise ValueError(f"SentenceSplitter.feed takes str, got {type(delta).__name__}")  # noqa: TRY004
        self._buf += delta
        return self._drain(final=False)

    def flush(self) -> list[str]:
        out = self._drain(final=True)
        self._buf = ""
        return out

    def take_phrase(self, min_words: int = 3, max_words: int = 6) -> str | None:
        """Release the pending text's first phrase (see ``first_phrase``) as soon as it is known,
        so a TTS can start speaking before the sentence ends; None while there is none yet."""
        end = _phrase_end(self._buf, min_words, max_words, final=False)
        if end is None:
            return None
        head, self._buf = self._buf[:end].strip(), self._buf[end:].lstrip()
        return head

    @property
    def pending(self) -> str:
        """Text received but not yet released as a sentence."""
        return self._buf

    def _drain(self, final: bool) -> list[str]:
        out: list[str] = []
        while True:
            end = _boundary(self._buf, final)
            if end is None or end > self.max_chars:
                if len(self._buf) <= self.max_chars:
                    break
                end = _forced_cut(self._buf, self.max_chars)
            sentence, self._buf = self._buf[:end].strip(), self._buf[end:].lstrip()
            if sentence:
                out.append(sentence)
            if not self._buf:
                break
        return out


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """All sentences of a complete text."""
    splitter = SentenceSplitter(max_chars)
    return splitter.feed(text) + splitter.flush()


def iter_sentences(deltas: Iterable[str], max_chars: int = 300) -> Iterable[str]:
    """Sentences from a stream of deltas, each yielded as soon as it is complete."""
    splitter = SentenceSplitter(max_chars)
    for delta in deltas:
        yield from splitter.feed(delta)
    yield from splitter.flush()


def word_count(text: str) -> int:
    """Words, counting two CJK characters as one word."""
    cjk = sum(_is_cjk(c) for c in text)
    return len("".join(" " if _is_cjk(c) else c for c in text).split()) + cjk // 2


def first_phrase(sentence: str, min_words: int = 3, max_words: int = 6) -> tuple[str, str]:
    """Split a short first phrase off ``sentence`` so a TTS can start sooner: after a clause mark
    or before a conjunction / preposition ("and", "but", "on" ...), the head having ``min_words``
    to ``max_words`` words (a later clause mark is the fallback) and the tail >= ``min_words``.
    ``(sentence, "")`` when there is no such place or the sentence is only ``max_words`` long."""
    end = _phrase_end(sentence, min_words, max_words, final=True)
    return (sentence, "") if end is None else (sentence[:end].strip(), sentence[end:].strip())


def _phrase_end(text: str, min_words: int, max_words: int, final: bool) -> int | None:
    if word_count(text) <= max_words:  # short: not worth a cut (streamed: wait for more words)
        return None
    clause = _clause_end(text, min_words, need_tail=final)
    if clause is not None and word_count(text[:clause]) <= max_words:
        return clause
    words = list(_WORD.finditer(text))
    for k in range(min_words, min(max_words, len(words) - 1) + 1):  # head = words[:k]
        nxt = words[k]
        if not final and nxt.end() == len(text):  # that word may still grow: "an" -> "and"
            break
        if nxt.group().lower() in BREAK_WORDS and (not final or len(words) - k >= min_words):
            return words[k - 1].end()
    return clause


def _clause_end(text: str, min_words: int, need_tail: bool) -> int | None:
    for i, ch in enumerate(text[:-1]):
        nxt = text[i + 1]
        if ch not in CLAUSE_MARKS or not (nxt.isspace() or _is_cjk(ch) or _is_cjk(nxt)):  # "1,000"
            continue
        if word_count(text[: i + 1]) >= min_words and (not need_tail or word_count(text[i + 1 :]) >= min_words):
            return i + 1
    return None


def _boundary(buf: str, final: bool) -> int | None:
    """End index (exclusive) of the first complete sentence in ``buf``, or None to wait."""
    n, i = len(buf), 0
    while i < n:
        ch = buf[i]
        if ch == "\n":
            return i + 1
        if ch in ASCII_TERMS or ch in CJK_TERMS:
            j = i
            while j < n and (buf[j] in ASCII_TERMS or buf[j] in CJK_TERMS):
                j += 1
            run_end = j
            while j < n and buf[j] in CLOSERS:
                j += 1
            if j == n:  # nothing after the terminator yet: the next delta decides
                return n if final else None
            nxt = buf[j]
            cjk = any(c in CJK_TERMS for c in buf[i:run_end])
            ends = cjk or nxt.isspace() or _is_cjk(nxt)
            if ends and not (buf[i:run_end] == "." and _is_abbreviation(buf, i)):
                return j
            i = j
            continue
        i += 1
    return n if final and buf.strip() else None


def _is_abbreviation(buf: str, dot: int) -> bool:
    """True when the '.' at ``dot`` closes an abbreviation, an initial or a list number."""
    k = dot
    while k > 0 and not buf[k - 1].isspace():
        k -= 1
    token = buf[k:dot].lstrip(OPENERS)
    low = token.lower()
    if low in ABBREVIATIONS or "." in low:  # "dr", "e.g", "u.s", "a.m"
        return bool(low)
    if len(token) == 1 and token.isupper():  # initial: "J. Smith"
        return True
    return token.isdigit() and not buf[:k].strip()  # list item "1. "


def _forced_cut(buf: str, limit: int) -> int:
    """Where to cut a run-on text longer than ``limit``: clause mark, else space, else hard."""
    head = buf[:limit]
    for marks in (CLAUSE_MARKS, " \t"):
        pos = max(head.rfind(m) for m in marks)
        if pos >= limit // 3:
            return pos + 1
    return limit
