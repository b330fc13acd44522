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

from itertools import combinations
from math import comb

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
    """Method text, e.g. 'exact, all 256 sign flips' or
    'Monte-Carlo, 9999 random sign flips, +1 correction'."""
    if exact:
        return f"exact, all {count} {unit}"
    return f"Monte-Carlo, {count} random {unit}, +1 correction"


def subsets(total: int, k: int, n_perm: int, seed) -> tuple[np.ndarray, bool]:
    """0/1 membership rows choosing k of `total` units: all C(total, k) of them when that is
    <= n_perm (exact, includes the observed choice), else n_perm seeded random choices."""
    if comb(total, k) <= n_perm:
        member = np.zeros((comb(total, k), total))
        for row, idx in enumerate(combinations(range(total), k)):
            member[row, list(idx)] = 1.0
        return member, True
    rng = np.random.default_rng(seed)
    order = rng.permuted(np.tile(np.arange(total), (n_perm, 1)), axis=1)
    return (order < k).astype(float), False  # the units landing in the first k places
