"""Check a drafted token against the target model's distribution at its position.

Greedy: the draft stands when it is the target's argmax. Sampling: speculative (rejection)
sampling — accept with probability min(1, p(x) / q(x)), else draw from the normalized
residual max(p - q, 0) — so every emitted token is distributed exactly as the target's
``p`` (Leviathan et al. 2023; Chen et al. 2023). A prompt-lookup draft is deterministic:
q is a point mass on it, so it is accepted with probability p(x) and the residual is p
without x.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..sampling import Sampling, distribution, draw, sample

Distribution = tuple[np.ndarray, np.ndarray]  # (token ids, probabilities)


def verify(
    logits: np.ndarray,
    drafted: int,
    sampling: Sampling,
    rng: np.random.Generator,
    history: Sequence[int] = (),
    q: Distribution | None = None,
) -> tuple[bool, int]:
    """(accepted, token): ``token`` is ``drafted`` when accepted, else the replacement to emit."""
    if sampling.greedy:
        token = sample(logits, sampling, rng, history)
        return token == drafted, token
    ids, p = distribution(logits, sampling, history)
    p_x = float(p[ids == drafted].sum())
    q_x = 1.0 if q is None else float(q[1][q[0] == drafted].sum())
    if q_x > 0 and rng.random() < min(1.0, p_x / q_x):
        return True, drafted
    residual = _residual(ids, p, drafted, q)
    return False, draw(residual if residual is not None else (ids, p), rng)  # None: p == q, any draw from p


def _residual(ids: np.ndarray, p: np.ndarray, drafted: int, q: Distribution | None) -> Distribution | None:
    if q is None:
        r = np.where(ids == drafted, 0.0, p)
        out_ids = ids
    else:
        out_ids = np.union1d(ids, q[0])
        dense_p = np.zeros(len(out_ids))
        dense_p[np.searchsorted(out_ids, ids)] = p
        dense_q = np.zeros(len(out_ids))
        dense_q[np.searchsorted(out_ids, q[0])] = q[1]
        r = np.maximum(dense_p - dense_q, 0.0)
    total = r.sum()
    if total <= 1e-12:
        return None
    return out_ids, r / total
