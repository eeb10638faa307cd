"""SemanticCache: answers found by meaning ("what's the temperature?" ~ "how warm is it?").

An entry is (scope, question, embedding, answer). ``scope`` is an exact key of everything
except the wording of the last question: the weights, the earlier messages, sampling,
limits and the caller's context digest, so a cached "it is 21 °C" is never served after
the reading changed. A lookup embeds the question and takes the most similar entry of the
same scope, if it passes two checks:

1. cosine similarity >= ``threshold``;
2. a slot guard: the numbers must be the same, and two questions that differ by one or
   two words ("front door" / "back door", "ten" / "twenty minutes", "open" / "closed")
   are different questions. Sentence embeddings place such pairs very close together
   (0.9+), so similarity alone cannot reach the precision a robot needs.

The default threshold comes from ``benchmarks/calibrate_semantic.py`` on the paraphrase /
hard-negative set in ``tests/data/paraphrases.jsonl`` (results in benchmarks/results/).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .response import CachedResponse
from .stats import CacheStats

DEFAULT_THRESHOLD = 0.85
_FILLER = frozenset("a an the please can could would you me tell just right now currently".split())  # noqa: SIM905
_WORD = re.compile(r"[a-z0-9']+")


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _FILLER]


def _edit_distance(a: list[str], b: list[str]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[:], i
        for j, y in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y))
    return row[-1]


def same_slots(a: str, b: str) -> bool:
    """False when ``a`` and ``b`` name different numbers or differ by a one- or two-word swap."""
    wa, wb = _words(a), _words(b)
    numbers = lambda ws: {w for w in ws if any(c.isdigit() for c in w)}
    if numbers(wa) != numbers(wb):
        return False
    return wa == wb or _edit_distance(wa, wb) > 2


@dataclass
class SemanticHit:
    response: CachedResponse
    similarity: float
    question: str  # the cached question that matched


class SemanticCache:
    def __init__(self, embedder, *, threshold: float = DEFAULT_THRESHOLD, max_entries: int = 1024):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be an int >= 1, got {max_entries!r}")
        self.embedder, self.threshold, self.max_entries = embedder, threshold, max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[np.ndarray, CachedResponse]] = OrderedDict()
        self._hits = self._misses = self._evictions = 0
        self._lock = threading.Lock()

    def lookup(self, scope: str, question: str) -> SemanticHit | None:
        with self._lock:
            candidates = [(k[1], v) for k, v in self._entries.items() if k[0] == scope]
        best = None
        if candidates:
            query = self.embedder.embed(question)
            for cached_question, (vector, response) in candidates:
                sim = float(vector @ query)
                if (
                    sim >= self.threshold
                    and (best is None or sim > best.similarity)
                    and same_slots(question, cached_question)
                ):
                    best = SemanticHit(response, sim, cached_question)
        with self._lock:
            if best is None:
                self._misses += 1
            else:
                self._hits += 1
                if (scope, best.question) in self._entries:
                    self._entries.move_to_end((scope, best.question))
        return best

    def put(self, scope: str, question: str, response: CachedResponse) -> None:
        vector = self.embedder.embed(question)
        with self._lock:
            self._entries[(scope, question)] = (vector, response)
            self._entries.move_to_end((scope, question))
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
                self._evictions += 1

    def invalidate(self) -> None:
        with self._lock:
            self._entries.clear()

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            size = sum(v.nbytes + len(r.to_json()) for v, r in self._entries.values())
            return CacheStats(self._hits, self._misses, len(self._entries), size, -1, self._evictions)
