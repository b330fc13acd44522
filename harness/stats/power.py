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


def power(
    effect_size: float, n: int, *, alpha: float = 0.05, n_sim: int = 2000, seed: int = 0,
    direction: str = "greater", sesoi: float = 0.0, n_boot: int = 999,
) -> Power:
    """P(verdict == "supported") at a standardised effect in the claimed direction.

    effect_size >= 0 is measured in the claimed direction (for "less" the simulated mean is
    -effect_size). n_boot only affects the CI, which matters only through refutation (sesoi).
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
        data, direction=direction, sesoi=sesoi, alpha=alpha, n_boot=n_boot, seed=decide_seed
    ).verdict
    rate = float(np.mean(verdicts == "supported"))
    return Power(rate, float(np.sqrt(rate * (1 - rate) / n_sim)), float(effect_size), n, alpha, n_sim)
