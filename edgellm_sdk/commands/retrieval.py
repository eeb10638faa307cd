"""Similarity of a request to labelled texts: sentence embeddings, or character bigrams
(for Chinese, or without an embedder)."""

from __future__ import annotations

import numpy as np


def has_cjk(text: str) -> bool:
    return any("\u3000" <= ch <= "\u9fff" for ch in text)


def bigrams(text: str) -> set[str]:
    squeezed = "".join(text.lower().split())
    return {squeezed[i : i + 2] for i in range(len(squeezed) - 1)} or {squeezed}


class ExampleIndex:
    """Nearest labelled examples of a request. ``examples`` are (text, label) pairs."""

    def __init__(self, examples, embedder=None):
        self.examples = list(examples)
        self.embedder = embedder
        texts = [t for t, _ in self.examples]
        self._vectors = embedder.embed(texts) if embedder is not None and texts else None
        self._bigrams = [bigrams(t) for t in texts]

    def subset(self, keep) -> ExampleIndex:
        """The examples whose label ``keep(label)`` accepts, without embedding them again."""
        rows = [i for i, (_, label) in enumerate(self.examples) if keep(label)]
        part = ExampleIndex([], self.embedder)
        part.examples = [self.examples[i] for i in rows]
        part._vectors = self._vectors[rows] if self._vectors is not None and rows else None
        part._bigrams = [self._bigrams[i] for i in rows]
        return part

    def similarities(self, text: str, query_vector=None) -> tuple[np.ndarray, bool]:
        """One score per example, and whether they are embedding cosines (else bigram Dice).
        ``query_vector`` reuses an embedding of ``text`` already computed."""
        if not self.examples:
            return np.zeros(0), False
        if self._vectors is not None and not has_cjk(text):
            vector = self.embedder.embed(text) if query_vector is None else query_vector
            return self._vectors @ vector, True
        grams = bigrams(text)
        return np.array([2 * len(grams & g) / (len(grams) + len(g)) for g in self._bigrams]), False

    def nearest(self, text: str, k: int, query_vector=None) -> tuple[list[tuple[int, float]], bool]:
        """(index, score) best first, and whether the scores are embedding cosines."""
        if not self.examples or k <= 0:
            return [], False
        scores, semantic = self.similarities(text, query_vector)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order], semantic
