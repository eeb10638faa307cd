"""Prompt lookup: draft what followed the last n-gram the last time it appeared.

The index maps every n-gram (ngram_min..ngram_max tokens) of the context — the prompt
and the output so far, a list the decoder appends to — to the position where it last
ended; new tokens are indexed when the next draft is asked for, so a lookup is one dict
access per n whatever the context length. Longer n-grams are tried first.
"""

from __future__ import annotations

from collections.abc import Sequence


class PromptLookup:
    def __init__(self, context: list[int], *, ngram_min: int, ngram_max: int):
        self.context = context  # shared with the decoder, which appends to it
        self.ngram_min, self.ngram_max = ngram_min, ngram_max
        self._index: dict[tuple[int, ...], int] = {}
        self._indexed = 0  # n-grams ending before this position are in the index

    def _catch_up(self) -> None:
        toks, index = self.context, self._index
        lo, hi = self.ngram_min, self.ngram_max
        for end in range(self._indexed, len(toks) - 1):  # the last token is what gets looked up
            for n in range(lo, min(hi, end + 1) + 1):
                index[tuple(toks[end - n + 1:end + 1])] = end
        self._indexed = max(self._indexed, len(toks) - 1)

    def propose(self, limit: int, tail: Sequence[int] = ()) -> tuple[list[int], int]:
        """Up to ``limit`` tokens to follow the context (+ ``tail``, tokens already drafted),
        and the length of the n-gram that matched (0: no match)."""
        self._catch_up()
        seq = self.context[-self.ngram_max:] + list(tail)
        for n in range(min(self.ngram_max, len(seq)), self.ngram_min - 1, -1):
            end = self._index.get(tuple(seq[len(seq) - n:]))
            if end is not None:
                return self.context[end + 1:end + 1 + limit], n
        return [], 0
