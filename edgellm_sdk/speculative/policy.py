"""How many tokens to draft: the length that maximizes expected tokens per second.

Both inputs are measured, not assumed: ``ForwardCosts`` times the target's forwards per
batch size on this machine (AVX2 and AVX-512 hosts differ), and ``DraftPolicy`` keeps the
acceptance rate of a draft source. With per-token acceptance ``a``, drafting ``k`` tokens
yields ``1 + a + ... + a^k`` tokens for the cost of a forward of ``k + 1`` (plus what the
drafts cost to make); the best ``k`` may be 0, and after a round in which nothing was
accepted the source sits out ``cooldown`` steps (doubling on repeated misses, up to 16×).
"""

from __future__ import annotations

PRIOR_PER_TOKEN = 0.12  # until measured: each extra token in a batch costs 12 % of a 1-token forward
PRIOR_STEP_S = 0.01  # until measured: a 1-token forward takes 10 ms
EMA = 0.2
MAX_BACKOFF = 16


class ForwardCosts:
    """Seconds per target forward, by batch size (exponential moving averages)."""

    def __init__(self) -> None:
        self._seconds: dict[int, float] = {}

    def observe(self, size: int, seconds: float) -> None:
        old = self._seconds.get(size)
        self._seconds[size] = seconds if old is None else old + EMA * (seconds - old)

    def estimate(self, size: int) -> float:
        """Measured when seen, else scaled from the nearest smaller measured size by the prior."""
        if size in self._seconds:
            return self._seconds[size]
        known = [s for s in self._seconds if s < size]
        base = max(known) if known else None
        if base is None:
            return PRIOR_STEP_S * (1.0 + PRIOR_PER_TOKEN * (size - 1))
        ratio = (1.0 + PRIOR_PER_TOKEN * (size - 1)) / (1.0 + PRIOR_PER_TOKEN * (base - 1))
        return self._seconds[base] * ratio


class DraftPolicy:
    """Acceptance statistics and the draft length of one draft source."""

    def __init__(self, costs: ForwardCosts, *, max_draft: int, cooldown: int, adaptive: bool = True,
                 prior: float = 0.6):
        self.costs, self.max_draft, self.cooldown, self.adaptive = costs, max_draft, cooldown, adaptive
        self._acceptance: dict[int, float] = {}  # per kind of draft (e.g. n-gram length) -> P(next accepted)
        self.prior = prior
        self._skip = 0
        self._misses = 0

    def ready(self) -> bool:
        """False while cooling down after a round with nothing accepted (counts the step)."""
        if self._skip > 0:
            self._skip -= 1
            return False
        return True

    def acceptance(self, kind: int = 0) -> float:
        return self._acceptance.get(kind, self.prior)

    def length(self, available: int, kind: int = 0, per_draft_s: float = 0.0) -> int:
        """The best number of tokens to draft, at most ``available`` (0 = do not draft)."""
        if not self.adaptive:
            return min(available, self.max_draft)
        a = self.acceptance(kind)
        best_k, best_rate = 0, 1.0 / self.costs.estimate(1)
        expected = 1.0
        for k in range(1, min(available, self.max_draft) + 1):
            expected += a ** k
            rate = expected / (self.costs.estimate(k + 1) + k * per_draft_s)
            if rate > best_rate:
                best_k, best_rate = k, rate
        return best_k

    def feedback(self, drafted: int, accepted: int, kind: int = 0) -> None:
        if drafted <= 0:
            return
        trials = accepted + (accepted < drafted)  # each accepted token, and the first rejected one
        rate = accepted / trials
        old = self._acceptance.get(kind, self.prior)
        self._acceptance[kind] = old + EMA * (rate - old) * min(1.0, trials / 2)
        if accepted == 0 and self.adaptive:
            self._misses += 1
            self._skip = self.cooldown * min(MAX_BACKOFF, 2 ** (self._misses - 1))
        else:
            self._misses = 0
