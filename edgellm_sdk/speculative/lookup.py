"""N-gram lookup drafts: what followed the last n tokens the last time they appeared.

``NgramIndex`` maps every n-gram (ngram_min..ngram_max tokens) of a token list to the
position where it last ended; tokens appended to the list are indexed when the next
lookup is asked for, so a lookup is one dict access per n whatever the length. Longer
n-grams are tried first. Two sources use it:

- prompt lookup (``NgramIndex`` over the request's prompt + output so far): sensor
  narrations, commands and tool results restate what they were given;
- ``AnswerHistory``: the last answers this Engine generated, so a robot narrating every
  minute drafts its usual phrasing. It lives in memory only; a draft from it is verified by
  the model like any other, so nothing of an earlier answer reaches a new one unless the
  model would have written it anyway.
"""

from __future__ import annotations

from collections.abc import Sequence


class NgramIndex:
    def __init__(self, tokens: list[int], *, ngram_min: int, ngram_max: int):
        self.tokens = tokens  # may be shared with a writer that appends to it
        self.ngram_min, self.ngram_max = ngram_min, ngram_max
        self._index: dict[tuple[int, ...], int] = {}
        self._indexed = 0  # n-grams ending before this position are in the index

    def _catch_up(self, first_since: int | None = None) -> None:
        """Index what was appended. An n-gram points to its latest occurrence, or with
        ``first_since`` to its first one at or after that position (later ones in the same
        stretch, e.g. a model repeating itself, would draft only the stretch's end)."""
        toks, index = self.tokens, self._index
        lo, hi = self.ngram_min, self.ngram_max
        for end in range(self._indexed, len(toks) - 1):  # the last token has no continuation yet
            for n in range(lo, min(hi, end + 1) + 1):
                key = tuple(toks[end - n + 1 : end + 1])
                if first_since is None or index.get(key, -1) < first_since:
                    index[key] = end
        self._indexed = max(self._indexed, len(toks) - 1)

    def continuation(
        self, key: Sequence[int], limit: int, ngram_min: int | None = None, ngram_max: int | None = None
    ) -> tuple[list[int], int]:
        """Up to ``limit`` tokens that followed the longest indexed suffix of ``key`` (of
        ngram_min..ngram_max tokens, within the indexed range), and its length (0: no match)."""
        self._catch_up()
        lo = max(self.ngram_min, ngram_min or 0)
        hi = min(self.ngram_max, ngram_max or self.ngram_max, len(key))
        for n in range(hi, lo - 1, -1):
            end = self._index.get(tuple(key[len(key) - n :]))
            if end is not None:
                return self.tokens[end + 1 : end + 1 + limit], n
        return [], 0


class AnswerHistory:
    """The most recent answers, up to ``max_tokens`` tokens in all (older ones are dropped)."""

    def __init__(self, *, max_tokens: int = 8192, ngram_min: int = 1, ngram_max: int = 8):
        self.max_tokens, self.ngram_min, self.ngram_max = max_tokens, ngram_min, ngram_max
        self.clear()

    def clear(self) -> None:
        self._index = NgramIndex([], ngram_min=self.ngram_min, ngram_max=self.ngram_max)

    def add(self, answer: Sequence[int], end: int) -> None:
        """Remember ``answer``, followed by ``end`` (an end-of-turn token) as its boundary."""
        if not answer:
            return
        tokens = self._index.tokens
        if len(tokens) + len(answer) + 1 > self.max_tokens:  # keep the newest half: re-indexing is paid rarely
            self._index = NgramIndex([], ngram_min=self.ngram_min, ngram_max=self.ngram_max)
            for kept in _answers(tokens[-self.max_tokens // 2 :], end):
                self._append(kept, end)
        self._append(list(answer), end)

    def _append(self, answer: list[int], end: int) -> None:
        start = len(self._index.tokens)
        self._index.tokens.extend([*answer, end])
        self._index._catch_up(first_since=start)

    def continuation(
        self, key: Sequence[int], limit: int, ngram_min: int | None = None, ngram_max: int | None = None
    ) -> tuple[list[int], int]:
        return self._index.continuation(key, limit, ngram_min, ngram_max)

    def __len__(self) -> int:
        return len(self._index.tokens)


def _answers(tokens: list[int], end: int) -> list[list[int]]:
    """The whole answers in ``tokens`` (each followed by ``end``); a cut-off first one is dropped."""
    out: list[list[int]] = []
    current: list[int] = []
    for t in tokens:
        if t == end:
            out.append(current)
            current = []
        else:
            current.append(t)
    return out[1:]
