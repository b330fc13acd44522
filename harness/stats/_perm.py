"""Permutation p-values from a null distribution: exact enumeration or Monte-Carlo with +1.

Every permutation test in this package (sign flips, label shuffles, rank shuffles, boundary
positions) ends here, so the counting rule lives in one place:

- **exact**: the null statistics are *all* rearrangements, the observed one among them, and
  p = #{T* >= T} / #rearrangements. The smallest attainable p is 1 / #rearrangements.
- **Monte-Carlo**: B random rearrangements, and p = (1 + #{T* >= T}) / (B + 1), the +1 counting
  the observed arrangement itself (Phipson & Smyth 2010). This keeps P(p <= a) <= a under H0 and
  never returns p = 0.

Ties: rearrangements whose statistic equals the observed one up to floating-point rounding
count as "at least as extreme" (tolerance relative to the statistic's scale), so e.g. an effect
with a zero entry does not gain a spurious advantage from summation order.
"""

from __future__ import annotations

import numpy as np

REL_TOL = 1e-10


def p_greater(observed, null, *, exact: bool, scale=None) -> np.ndarray:
    """One-sided p for "observed is large": `observed` shape (...), `null` shape (..., R).

    `scale` (broadcastable to `observed`) sets the tie tolerance; default |observed|.
    """
    observed = np.asarray(observed, dtype=float)
    null = np.asarray(null, dtype=float)
    scale = np.abs(observed) if scale is None else np.asarray(scale, dtype=float)
    tol = REL_TOL * scale
    hits = np.count_nonzero(null >= (observed - tol)[..., None], axis=-1)
    n_null = null.shape[-1]
    if exact:
        return hits / n_null
    return (1.0 + hits) / (n_null + 1.0)


def describe(exact: bool, count: int, unit: str) -> str:
    """Method text: 'exact, all 256 sign flips' or 'Monte-Carlo, 9999 random sign flips, +1 correction'."""
    if exact:
        return f"exact, all {count} {unit}"
    return f"Monte-Carlo, {count} random {unit}, +1 correction"
