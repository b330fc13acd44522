"""Confidence bounds that agree with the tests: the inversion of the permutation test that gives p.

A one-sided (1 - a) lower bound of the mean is the largest shift mu0 that the test of
"mean <= mu0" still rejects at level a: L = sup{mu0 : p_greater(x - mu0) < a}. So "the bound
excludes 0" and "the test rejects at level a" are one statement, and a bound drawn at a
Holm-adjusted level says exactly what the adjusted test decided. (A bootstrap interval beside a
sign-flip p could disagree with it; this one cannot, up to the bisection's 1e-12 of the span.)

The p-value of a sign-flip (or label-permutation) test of the shifted effects is nondecreasing
in the shift mu0: flipping signs of x - mu0 moves each flipped sum by at most the observed one's
change, so the set of rejected shifts is a half-line and bisection finds its end. A level at or
below the smallest attainable p (2^-n for n runs) rejects no shift: the bound is infinite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from harness.stats.labels import two_sample_p
from harness.stats.signflip import signflip_p

_ITERATIONS = 80


def _edge(p_at: Callable[[float], float], level: float, lo: float, hi: float) -> float:
    """The shift where p_at (nondecreasing) crosses `level`: rejects below, keeps above."""
    if p_at(lo) >= level:
        return -np.inf
    if p_at(hi) < level:
        return np.inf
    for _ in range(_ITERATIONS):
        mid = (lo + hi) / 2
        if p_at(mid) < level:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * max(1.0, abs(lo), abs(hi)):
            break
    return (lo + hi) / 2


def _bracket(x: np.ndarray) -> tuple[float, float]:
    span = float(x.max() - x.min()) + float(np.abs(x).max()) + 1.0
    return float(x.min()) - span, float(x.max()) + span


def signflip_bounds(values, level_low: float, level_high: float, *, n_perm: int = 9999,
                    seed=0) -> tuple[float, float]:
    """(lower bound at one-sided level `level_low`, upper bound at `level_high`) of the mean,
    by inverting the one-sample sign-flip test (the same flips `signflip_p` uses)."""
    x = np.asarray(values, dtype=float)
    lo, hi = _bracket(x)
    low = _edge(lambda m: signflip_p(x - m, direction="greater", n_perm=n_perm, seed=seed),
                level_low, lo, hi)
    # the upper bound: shifts above it are rejected by the "less" test; mirror to reuse _edge
    high = -_edge(lambda m: signflip_p(-x - m, direction="greater", n_perm=n_perm, seed=seed),
                  level_high, -hi, -lo)
    return float(low), float(high)


def shifted_bounds(p_greater_at: Callable[[float], float], p_less_at: Callable[[float], float],
                   lo: float, hi: float, level_low: float, level_high: float) -> tuple[float, float]:
    """Bounds for any test given as p(shift) in both directions (e.g. a two-sample permutation
    test of mean(a) - mean(b) - shift); [lo, hi] must bracket both crossings."""
    low = _edge(p_greater_at, level_low, lo, hi)
    high = -_edge(lambda m: p_less_at(-m), level_high, -hi, -lo)
    return float(low), float(high)


def decision_bounds(values, groups, level_low: float, level_high: float) -> tuple[float, float]:
    """A Decision's bounds: one sample (`values`, sign flips) or two (`groups` = (a, b), label
    permutations of mean(a) - mean(b), as `within_run` tests them)."""
    if not groups:
        return signflip_bounds(values, level_low, level_high)
    a, b = (np.asarray(g, dtype=float) for g in groups)
    pooled = np.concatenate([a, b])
    span = float(np.ptp(pooled)) * 2 + float(np.abs(pooled).max()) + 1.0
    effect = float(a.mean() - b.mean())
    return shifted_bounds(lambda m: two_sample_p(a - m, b, "greater"),
                          lambda m: two_sample_p(a - m, b, "less"),
                          effect - span, effect + span, level_low, level_high)
