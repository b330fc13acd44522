"""Monotone trend: Spearman's rho with a permutation p-value.

rho is the Pearson correlation of the (average-tie) ranks of x and y. H0: y's order is
unrelated to x's (all n! pairings equally likely); the null shuffles y's ranks. Exact (all n!
orderings) when n! <= n_perm, otherwise n_perm seeded shuffles with the +1 correction.
One-sided: "greater" tests rho > 0 (e.g. change grows with depth), "less" rho < 0.

Within one run the points (layers, snapshots) are not independent replicates; use rho as the
per-run effect and `decide` across seeds for the claim, the p here as a within-run description.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from math import factorial

import numpy as np
from scipy.stats import rankdata

from harness.stats._perm import describe, p_greater
from harness.stats._validate import as_values, check_count, check_direction


@dataclass(frozen=True)
class Trend:
    rho: float
    p: float
    n: int
    direction: str
    method: str


def trend(x, y, *, direction: str = "greater", n_perm: int = 9999, seed: int = 0) -> Trend:
    """Spearman rho of y against x and its one-sided permutation p."""
    check_direction(direction)
    check_count(n_perm, "n_perm")
    x = as_values(x, "x", min_n=3)
    y = as_values(y, "y", min_n=3)
    if x.size != y.size:
        raise ValueError(f"x and y need the same length, got {x.size} and {y.size}")
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = np.sqrt((rx @ rx) * (ry @ ry))
    if norm == 0:
        which = "x" if rx @ rx == 0 else "y"
        raise ValueError(f"{which} is constant, so Spearman's rho is undefined")
    rho = float(rx @ ry / norm)
    n = x.size
    exact = factorial(n) <= n_perm
    if exact:
        shuffled = ry[np.array(list(permutations(range(n))))]
    else:
        rng = np.random.default_rng(seed)
        shuffled = rng.permuted(np.tile(ry, (n_perm, 1)), axis=1)
    null = shuffled @ rx / norm
    sign = 1.0 if direction == "greater" else -1.0
    p = float(p_greater(sign * rho, sign * null, exact=exact, scale=1.0))
    count = factorial(n) if exact else n_perm
    how = describe(exact, count, "orderings")
    method = f"Spearman rho, permutation test ({how}), one-sided ({direction})"
    return Trend(rho=rho, p=p, n=n, direction=direction, method=method)
