"""Sign-flip permutation test of H0: the effects are symmetric about 0 (so their mean is 0).

Under H0 every effect is as likely to be +e as -e, so the sum of the effects is compared with
the sums of all 2^n sign-flipped copies. The test is **one-sided in the claimed direction**:
for "greater", p = P(sum of flipped >= observed sum); "less" is the same test on the negated
effects, so `p(x, "less") == p(-x, "greater")` exactly.

Sidedness matters for small n: the smallest attainable p is 2^-n. With n = 5, one-sided
p >= 1/32 = 0.031 (it can reach 0.05 only if every run agrees), two-sided p >= 0.0625 (never);
after a Holm correction over m claims, the smallest adjusted p is m * 2^-n, hence n >= 8 seeds
(2^-8 = 0.0039) per claim at `tiny`.

n <= EXACT_MAX_N: exact, all 2^n flips (the ±1 matrix is built once per n and cached).
Larger n: `n_perm` random flips from a seeded generator, with the +1 correction (see `_perm`).
Both accept a 2-D array (one row per simulated data set) so calibration runs are vectorised.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from harness.stats._perm import describe, p_greater
from harness.stats._validate import check_count, check_direction

EXACT_MAX_N = 16
_MAX_BLOCK = 1 << 22  # null statistics per chunk (32 MB of float64)


@lru_cache(maxsize=EXACT_MAX_N + 1)
def flip_matrix(n: int) -> np.ndarray:
    """All 2^n sign vectors as a read-only (2^n, n) float array; row 0 is all +1 (identity)."""
    codes = np.arange(1 << n, dtype=np.int64)[:, None]
    bits = (codes >> np.arange(n, dtype=np.int64)) & 1
    signs = 1.0 - 2.0 * bits
    signs.flags.writeable = False
    return signs


def is_exact(n: int) -> bool:
    return n <= EXACT_MAX_N


def signflip_p(
    effects, *, direction: str, n_perm: int = 9999, seed: int = 0
) -> np.ndarray | float:
    """One-sided sign-flip p-value(s) for H0: symmetric about 0.

    `effects`: shape (n,) -> float, or (m, n) -> array of m p-values (one per row, each row
    tested against the same flips). Inputs are assumed finite (callers validate).
    """
    check_direction(direction)
    x = np.asarray(effects, dtype=float)
    one = x.ndim == 1
    x = np.atleast_2d(x)
    if direction == "less":
        x = -x
    n = x.shape[1]
    if is_exact(n):
        signs = flip_matrix(n)
    else:
        check_count(n_perm, "n_perm")
        rng = np.random.default_rng(seed)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, n))
    observed = x.sum(axis=1)
    scale = np.abs(x).sum(axis=1)
    rows = max(1, _MAX_BLOCK // signs.shape[0])
    p = np.empty(x.shape[0])
    for start in range(0, x.shape[0], rows):
        block = slice(start, start + rows)
        null = x[block] @ signs.T
        p[block] = p_greater(observed[block], null, exact=is_exact(n), scale=scale[block])
    return float(p[0]) if one else p


def signflip_method(n: int, n_perm: int) -> str:
    """How the p-value for n effects is computed, for a Decision's method string."""
    if is_exact(n):
        return "sign-flip permutation test (" + describe(True, 1 << n, "sign flips") + ")"
    return "sign-flip permutation test (" + describe(False, n_perm, "sign flips") + ")"
