"""The seam between the Engine and an inference runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Backend(Protocol):
    """A causal LM with its own KV cache.

    ``forward`` appends ``ids`` to the cache and returns float32 logits
    [k, vocab] for the last k positions: k = 1, or ``last``, or len(ids) with ``all_logits``.
    The array may be a reused buffer, valid until the next call.
    """

    vocab_size: int
    max_context: int

    @property
    def position(self) -> int:
        """Tokens currently held in the KV cache."""

    def forward(self, ids: Sequence[int], *, all_logits: bool = False, last: int | None = None) -> np.ndarray: ...

    def truncate(self, length: int) -> None:
        """Drop cached tokens after ``length`` (0 = empty cache)."""

    def snapshot(self, length: int) -> list[np.ndarray]:
        """Copies of the KV tensors for the first ``length`` tokens."""

    def restore(self, arrays: list[np.ndarray], length: int) -> None:
        """Make the first ``length`` tokens of a snapshot the cache contents."""

    def close(self) -> None: ...
