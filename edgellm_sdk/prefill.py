"""Where prefill splits a prompt, so that cached KV is exactly what a fresh prefill computes.

Quantized kernels round a token's activations depending on the batch it is computed in,
so a prefix's KV is only reusable when every request computes it in the same pieces. The
pieces end at fixed boundaries that depend only on the tokens: every multiple of
``PREFILL_CHUNK`` (absolute positions) and the end of the first turn (the first
end-of-turn token: the system prompt). A request sharing a prefix with a cached one then
splits it identically, and a whole system prompt is reusable, not just its aligned part.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

PREFILL_CHUNK = 32


def common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    """How many leading tokens ``a`` and ``b`` share, at most ``limit``: the KV that can be reused."""
    n = 0
    while n < limit and a[n] == b[n]:
        n += 1
    return n


def turn_end(ids: Sequence[int], end_ids) -> int | None:
    """The position just after the first end-of-turn token of ``ids``, or None."""
    return next((i + 1 for i, t in enumerate(ids) if t in end_ids), None)


def boundary_at_or_before(n: int, turn: int | None) -> int:
    """The largest boundary <= ``n``."""
    aligned = n - n % PREFILL_CHUNK
    return turn if turn is not None and aligned < turn <= n else aligned


def is_boundary(n: int, turn: int | None) -> bool:
    return n % PREFILL_CHUNK == 0 or n == turn


def feed(backend, ids: Sequence[int], end_ids):
    """Run ``ids`` through an empty ``backend`` in the pieces the Engine's prefill uses (so the KV
    and logits are what a cold request computes); the logits after the last token."""
    logits = None
    for start, end in chunks(0, len(ids), turn_end(ids, end_ids)):
        logits = backend.forward(list(ids[start:end]))
    return logits


def chunks(start: int, stop: int, turn: int | None) -> Iterator[tuple[int, int]]:
    """(start, end) pieces covering [start, stop), each ending at the next boundary or at stop."""
    while start < stop:
        end = (start // PREFILL_CHUNK + 1) * PREFILL_CHUNK
        if turn is not None and start < turn < end:
            end = turn
        end = min(end, stop)
        yield start, end
        start = end
