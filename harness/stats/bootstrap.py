"""Percentile bootstrap confidence interval of a mean (and of a difference of two means).

Resampling n values with replacement is drawn as multinomial counts W (n_boot x n), so every
bootstrap mean is a row of (W @ x) / n: one matrix product, and the same draws serve every row
of a 2-D input (one row per simulated data set). Seeded, hence deterministic.

The interval is the two-sided 1 - alpha percentile interval (alpha = 0.05: the 2.5 % and
97.5 % quantiles of the bootstrap means). Known weakness, stated here because the verdicts use
it: for small n the percentile interval is too narrow (at n = 8 under normal errors it covers
about 90 % rather than 95 %, like a z-interval with a sqrt((n-1)/n) scale), so "refuted"
verdicts at small n are somewhat eager; the calibration tests measure and bound the rate.
"""

from __future__ import annotations

import numpy as np

from harness.stats._validate import check_count


def _means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means, shape (rows, n_boot), for x of shape (rows, n)."""
    n = x.shape[1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    return x @ counts.T / n


def bootstrap_ci(values, *, alpha: float = 0.05, n_boot: int = 9999, seed: int = 0):
    """(low, high) percentile CI of the mean; floats for 1-D input, arrays for (m, n) input."""
    check_count(n_boot, "n_boot")
    x = np.asarray(values, dtype=float)
    one = x.ndim == 1
    means = _means(np.atleast_2d(x), n_boot, np.random.default_rng(seed))
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2], axis=1)
    return (float(low[0]), float(high[0])) if one else (low, high)


def bootstrap_ci_diff(a, b, *, alpha: float = 0.05, n_boot: int = 9999, seed: int = 0):
    """(low, high) percentile CI of mean(a) - mean(b), resampling within each group."""
    check_count(n_boot, "n_boot")
    rng = np.random.default_rng(seed)
    ma = _means(np.atleast_2d(np.asarray(a, dtype=float)), n_boot, rng)
    mb = _means(np.atleast_2d(np.asarray(b, dtype=float)), n_boot, rng)
    low, high = np.quantile(ma - mb, [alpha / 2, 1 - alpha / 2], axis=1)
    return float(low[0]), float(high[0])
