"""Expanded percentile bootstrap confidence interval of a mean (and of a difference of means).

Resampling n values with replacement is drawn as multinomial counts W (n_boot x n), so every
bootstrap mean is a row of (W @ x) / n: one matrix product, and the same draws serve every row
of a 2-D input (one row per simulated data set). Seeded, hence deterministic.

Why *expanded*: the plain percentile interval is too narrow for small n. The bootstrap
distribution of the mean has spread s * sqrt((n-1)/n) / sqrt(n) and normal-like tails, so at
n = 8 the plain 95 % interval covers about 89 % (measured: "refuted" fired in 5.8 % of null
simulations where 2.5 % is nominal). The expanded percentile interval (Hesterberg 2015, "What
teachers should know about the bootstrap", §4) keeps the percentile method but reads the
quantiles at tail probability

    alpha' / 2 = Phi(-sqrt(n / (n - 1)) * t_{1 - alpha/2, n - 1}),

which gives the t-interval's coverage for normal data and keeps the percentile interval's
asymmetry for skewed data. n = 8, alpha = 0.05: alpha'/2 = 0.0057. For a difference of two
means the smaller group's n is used (conservative).

The interval is two-sided at level 1 - alpha (95 % for alpha = 0.05).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm, t as student_t

from harness.stats._validate import check_count


def expanded_tail(alpha: float, n: int) -> float:
    """Tail probability at which to read the bootstrap quantiles for a 1 - alpha interval."""
    if n < 2:
        return alpha / 2
    return float(norm.cdf(-np.sqrt(n / (n - 1)) * student_t.ppf(1 - alpha / 2, n - 1)))


def _means(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means, shape (rows, n_boot), for x of shape (rows, n)."""
    n = x.shape[1]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)
    return x @ counts.T / n


def _interval(boot: np.ndarray, tail: float):
    low, high = np.quantile(boot, [tail, 1 - tail], axis=1)
    return low, high


def bootstrap_ci(values, *, alpha: float = 0.05, n_boot: int = 9999, seed=0):
    """(low, high) CI of the mean; floats for 1-D input, arrays for (m, n) input."""
    check_count(n_boot, "n_boot")
    x = np.atleast_2d(np.asarray(values, dtype=float))
    boot = _means(x, n_boot, np.random.default_rng(seed))
    low, high = _interval(boot, expanded_tail(alpha, x.shape[1]))
    if np.ndim(values) == 1:
        return float(low[0]), float(high[0])
    return low, high


def bootstrap_ci_diff(a, b, *, alpha: float = 0.05, n_boot: int = 9999, seed=0):
    """(low, high) CI of mean(a) - mean(b), resampling within each group."""
    check_count(n_boot, "n_boot")
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    rng = np.random.default_rng(seed)
    boot = _means(a, n_boot, rng) - _means(b, n_boot, rng)
    low, high = _interval(boot, expanded_tail(alpha, min(a.shape[1], b.shape[1])))
    return float(low[0]), float(high[0])
