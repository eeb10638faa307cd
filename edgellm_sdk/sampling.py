"""Sampling settings and the next-token sampler (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampling:
    """temperature 0 = greedy. top_k 0 = off. top_p 1 = off. repetition_penalty 1 = off."""

    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.temperature, (int, float)) and 0.0 <= self.temperature <= 100.0):
            raise ValueError(f"temperature must be in [0, 100] (0 = greedy), got {self.temperature!r}")
        if not (isinstance(self.top_k, int) and self.top_k >= 0):
            raise ValueError(f"top_k must be an int >= 0 (0 = off), got {self.top_k!r}")
        if not (isinstance(self.top_p, (int, float)) and 0.0 < self.top_p <= 1.0):
            raise ValueError(f"top_p must be in (0, 1] (1 = off), got {self.top_p!r}")
        if not (
            isinstance(self.repetition_penalty, (int, float))
            and 0.0 < self.repetition_penalty <= 10.0
            and math.isfinite(self.repetition_penalty)
        ):
            raise ValueError(f"repetition_penalty must be in (0, 10] (1 = off), got {self.repetition_penalty!r}")
        if self.seed is not None and not isinstance(self.seed, int):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    @property
    def deterministic(self) -> bool:
        return self.greedy or self.seed is not None


GREEDY = Sampling()


def distribution(logits: np.ndarray, sampling: Sampling, history: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """The tokens ``sample`` draws from and their probabilities, most likely first.

    Greedy: the argmax alone, with probability 1. Speculative decoding verifies drafted
    tokens against exactly this distribution."""
    logits = np.asarray(logits, dtype=np.float32).reshape(-1)
    if sampling.repetition_penalty != 1.0 and len(history):
        logits = logits.copy()
        seen = np.unique(np.asarray(history, dtype=np.int64))
        seen = seen[(seen >= 0) & (seen < logits.size)]
        vals = logits[seen]
        logits[seen] = np.where(vals > 0, vals / sampling.repetition_penalty, vals * sampling.repetition_penalty)
    if sampling.greedy:
        return np.array([int(np.argmax(logits))]), np.ones(1)
    if sampling.top_k and sampling.top_k < logits.size:
        candidates = np.argpartition(logits, -sampling.top_k)[-sampling.top_k :]
    else:
        candidates = np.arange(logits.size)
    scaled = logits[candidates].astype(np.float64) / sampling.temperature
    order = np.argsort(-scaled, kind="stable")
    candidates, scaled = candidates[order], scaled[order]
    probs = np.exp(scaled - scaled[0])
    probs /= probs.sum()
    if sampling.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), sampling.top_p) + 1)
        candidates, probs = candidates[:keep], probs[:keep] / probs[:keep].sum()
    return candidates, probs


def sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator, history: Sequence[int] = ()) -> int:
    """Pick the next token id from 1-D ``logits`` (not modified)."""
    if sampling.greedy and (sampling.repetition_penalty == 1.0 or not len(history)):
        return int(np.argmax(logits))  # the decode loop's hot path: no copies
    dist = distribution(logits, sampling, history)
    return int(dist[0][0]) if sampling.greedy else draw(dist, rng)


def draw(dist: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> int:
    """One token from a (token ids, probabilities) distribution."""
    ids, probs = dist
    return int(ids[rng.choice(len(ids), p=probs)])
