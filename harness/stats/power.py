"""Monte-Carlo power of `decide`: how often a real effect of a given size is "supported".

Data: n per-run effects ~ Normal(effect_size, 1), so effect_size is the standardised effect
(mean / sd, Cohen's d for one sample). Each of n_sim simulated claims goes through the same
vectorised code path as `decide` (`decide_rows`), and power is the fraction whose verdict is
"supported" (no multiplicity correction: divide alpha by the family size for a Bonferroni
bound on Holm's power). Its Monte-Carlo standard error is sqrt(power (1 - power) / n_sim).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.stats._validate import check_alpha, check_count, check_direction, check_sesoi, spawn
from harness.stats.decide import decide_rows


@dataclass(frozen=True)
class Power:
    power: float
    se: float
    effect_size: float
    n: int
    alpha: float
    n_sim: int


def least_runs(m: int, alpha: float = 0.05) -> int:
    """The fewest runs n with which a claim can pass Holm's first step across m primaries even
    with one run on the other side: that outcome's exact one-sided sign-flip p is 2 x 2^-n (the
    observed signs and all-positive), so m x 2^(1-n) <= alpha. With every run on its side the
    bound is one run fewer, a verdict one contrary seed overturns."""
    if m < 1 or not 0 < alpha < 1:
        raise ValueError(f"least_runs needs m >= 1 and 0 < alpha < 1, got m={m}, alpha={alpha}")
    n = 2
    while m * 2.0 ** (1 - n) > alpha:
        n += 1
    return n


def power(
    effect_size: float, n: int, *, alpha: float = 0.05, n_sim: int = 2000, seed: int = 0,
    direction: str = "greater", sesoi: float = 0.0,
) -> Power:
    """P(verdict == "supported") at a standardised effect in the claimed direction.

    effect_size >= 0 is measured in the claimed direction (for "less" the simulated mean is
    -effect_size).
    """
    check_direction(direction)
    alpha, sesoi = check_alpha(alpha), check_sesoi(sesoi)
    check_count(n, "n", minimum=2)
    check_count(n_sim, "n_sim")
    if not np.isfinite(effect_size):
        raise ValueError(f"effect_size must be finite, got {effect_size!r}")
    sim_seed, decide_seed = spawn(seed, 2)
    sign = 1.0 if direction == "greater" else -1.0
    data = np.random.default_rng(sim_seed).normal(sign * effect_size, 1.0, size=(n_sim, n))
    verdicts = decide_rows(
        data, direction=direction, sesoi=sesoi, alpha=alpha, seed=decide_seed
    ).verdict
    rate = float(np.mean(np.isin(verdicts, ("supported", "smaller"))))  # the effect shown > 0
    return Power(rate, float(np.sqrt(rate * (1 - rate) / n_sim)), float(effect_size), n, alpha, n_sim)


@dataclass(frozen=True)
class Detectable:
    """What a set of runs could have shown: power at the sesoi and the minimum detectable effect.

    Both at the observed spread (sd of the per-run effects), n runs and level `alpha`, by
    simulation (normal per-run effects, the same sign-flip test). For superiority the effect is
    the true mean in the claimed direction; for non-inferiority the distance of the true mean
    above the margin (so "at the sesoi" is a true difference of 0); for equivalence the margin
    that TOST could show at a true mean of 0. `mde` is the smallest such value with power >=
    `target` (inf when even 20 sd would not do).
    """

    power_at_sesoi: float
    mde: float
    sd: float
    n: int
    alpha: float
    target: float


def _support_rate(distance: float, sd: float, n: int, *, test: str, alpha: float, n_sim: int,
                  seed: int) -> float:
    from harness.stats.signflip import signflip_p

    rng = np.random.default_rng(seed)
    if test == "equivalence":
        x = rng.normal(0.0, sd, size=(n_sim, n))
        p = np.maximum(signflip_p(x + distance, direction="greater"),
                       signflip_p(x - distance, direction="less"))
        return float(np.mean((p < alpha) & (np.abs(x.mean(axis=1)) < distance)))
    x = rng.normal(distance, sd, size=(n_sim, n))  # claimed-direction coordinates, H0 at 0
    return float(np.mean((signflip_p(x, direction="greater") < alpha) & (x.mean(axis=1) > 0)))


def detectable(values, *, test: str, sesoi: float, alpha: float = 0.05, target: float = 0.8,
               n_sim: int = 1000, seed: int = 0) -> Detectable:
    """Power at the sesoi and the minimum detectable effect of a claim decided on `values`."""
    from harness.stats._validate import as_values

    x = as_values(values, "values (one effect per run)", min_n=2)
    alpha = check_alpha(alpha)
    sd = float(x.std(ddof=1)) or 1e-12
    rate = lambda d: _support_rate(d, sd, x.size, test=test, alpha=alpha, n_sim=n_sim, seed=seed)  # noqa: E731
    at_sesoi = rate(float(sesoi))
    low, high = 0.0, 20.0 * sd
    if rate(high) < target:
        return Detectable(at_sesoi, float("inf"), sd, x.size, alpha, target)
    for _ in range(12):  # bisection to ~2.5e-4 of the bracket
        mid = (low + high) / 2
        low, high = (low, mid) if rate(mid) >= target else (mid, high)
    return Detectable(at_sesoi, high, sd, x.size, alpha, target)
