"""Two-sample label-permutation test of mean(a) - mean(b): the within-run test of a claim that
compares two groups of layers (`within_run`), and the p(shift) its bounds invert (`bounds`).

Exact over all relabellings when there are few enough, else Monte-Carlo with the +1 correction
(`_perm`). Kept apart from `within_run` so that the bounds need no Decision.
"""

from __future__ import annotations

import numpy as np

from harness.stats._perm import p_greater, subsets
from harness.stats._validate import spawn


def label_null(a: np.ndarray, b: np.ndarray, n_perm: int, seed) -> tuple[np.ndarray, bool, int]:
    """Null differences of means over relabellings of the pooled layers, exact if few enough."""
    pooled = np.concatenate([a, b])
    member, exact = subsets(pooled.size, a.size, n_perm, seed)
    sum_a = member @ pooled
    null = sum_a / a.size - (pooled.sum() - sum_a) / b.size
    return null, exact, member.shape[0]


def two_sample_p(a: np.ndarray, b: np.ndarray, direction: str, *, n_perm: int = 9999, seed=0) -> float:
    """One-sided label-permutation p of mean(a) - mean(b) in `direction` (the seed is spawned as
    `within_run` spawns it, so the same relabellings are used)."""
    (perm_seed,) = spawn(seed, 1)
    sign = 1.0 if direction == "greater" else -1.0
    null, exact, _ = label_null(a, b, n_perm, perm_seed)
    scale = np.abs(np.concatenate([a, b])).mean()
    return float(p_greater(sign * float(a.mean() - b.mean()), sign * null, exact=exact, scale=scale))
