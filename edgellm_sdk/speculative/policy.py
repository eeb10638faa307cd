"""How many tokens to draft: the length that maximizes expected tokens per forward cost.

With per-token acceptance ``a``, drafting ``k`` tokens yields ``1 + a + ... + a^k`` tokens for
the cost of a forward of ``k + 1`` tokens (plus what the drafts cost to make). Batched and
one-token forwards round activations differently, so how a request is batched can change a
near-tied greedy token: for the same request to give the same answer every time, in every
process, the decision uses only the request itself — a fixed cost model and the acceptance
seen so far in this request — never timings or earlier requests. After a round in which
nothing was accepted the source sits out ``cooldown`` steps (doubling on repeated misses, up
to 16×).
"""

from __future__ import annotations

# Each extra token in a batched forward costs this fraction of a one-token forward. Measured (ORT
# q4, 2 threads): 0.18-0.2 on a 2-core Xeon (AVX-512), 0.05-0.14 reported on the AMD EPYC machines;
# the higher one is used, so drafting pays on both.
EXTRA_TOKEN_COST = 0.2
EMA = 0.3
MAX_BACKOFF = 16


def prior(kind: int) -> float:
    """Acceptance expected before any is seen: a longer n-gram match is likelier to continue
    (kind = n-gram length; 0 = a draft model)."""
    return 0.5 if kind == 0 else min(0.7, 0.25 + 0.1 * kind)


def batch_cost(size: int) -> float:
    """A forward of ``size`` tokens, in one-token forwards."""
    return 1.0 + EXTRA_TOKEN_COST * (size - 1)


class DraftPolicy:
    """Acceptance statistics and the draft length of one draft source, for one request."""

    def __init__(self, *, max_draft: int, cooldown: int, adaptive: bool = True):
        self.max_draft, self.cooldown, self.adaptive = max_draft, cooldown, adaptive
        self._acceptance: dict[int, float] = {}  # per kind of draft (e.g. n-gram length) -> P(next accepted)
        self._skip = 0
        self._misses = 0

    def ready(self) -> bool:
        """False while cooling down after a round with nothing accepted (counts the step)."""
        if self._skip > 0:
            self._skip -= 1
            return False
        return True

    def acceptance(self, kind: int = 0) -> float:
        return self._acceptance.get(kind, prior(kind))

    def length(self, available: int, kind: int = 0, draft_cost: float = 0.0) -> int:
        """The best number of tokens to draft, at most ``available`` (0 = do not draft);
        ``draft_cost``: what making one drafted token costs, in target one-token forwards."""
        if not self.adaptive:
            return min(available, self.max_draft)
        a = self.acceptance(kind)
        best_k, best_rate, expected = 0, 1.0, 1.0
        for k in range(1, min(available, self.max_draft) + 1):
            expected += a**k
            rate = expected / (batch_cost(k + 1) + k * draft_cost)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def feedback(self, drafted: int, accepted: int, kind: int = 0) -> None:
        if drafted <= 0:
            return
        trials = accepted + (accepted < drafted)  # each accepted token, and the first rejected one
        old = self._acceptance.get(kind, prior(kind))
        self._acceptance[kind] = old + EMA * (accepted / trials - old) * min(1.0, trials / 2)
        if accepted == 0 and self.adaptive:
            self._misses += 1
            self._skip = self.cooldown * min(MAX_BACKOFF, 2 ** (self._misses - 1))
        else:
            self._misses = 0
