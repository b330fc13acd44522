"""A break in a depth profile at given slice starts, against the profile's other steps.

For a profile v over layers 0..L-1, the step into layer i is |v[i] - v[i-1]| (i = 1..L-1). A
boundary at slice start s is the step into s (from the layer before the slice), so boundaries
must lie in 1..L-1. The statistic is

    mean step at the boundaries - mean step elsewhere        (in the profile's units),

also given as the ratio of the two means. H0: the boundary positions are no different from
any other k step positions; the null draws k positions out of the L-1 (exact over all
C(L-1, k) choices when that is <= n_perm, else n_perm seeded draws with the +1 correction).
One-sided: the boundaries have larger steps.

Steps of one profile are not independent (a smooth trend makes them similar, noise makes
neighbours anti-correlated), so p describes this profile; for a claim, use `statistic` as
the per-run effect and `decide` across seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from harness.stats._perm import describe, p_greater, subsets
from harness.stats._validate import as_values, check_count


@dataclass(frozen=True)
class Break:
    statistic: float  # mean |step| at boundaries - mean |step| elsewhere
    ratio: float  # mean |step| at boundaries / mean |step| elsewhere (inf if those are all 0)
    p: float
    boundaries: tuple[int, ...]
    n_steps: int
    method: str


def break_at_boundaries(profile, boundaries, *, n_perm: int = 9999, seed: int = 0) -> Break:
    """Test whether the profile jumps more at the slice starts `boundaries` than elsewhere."""
    check_count(n_perm, "n_perm")
    v = as_values(profile, "profile", min_n=3)
    steps = np.abs(np.diff(v))
    n_steps = steps.size
    try:
        starts = sorted({int(b) for b in boundaries})
    except (TypeError, ValueError):
        raise ValueError(f"boundaries must be layer indices (ints), got {boundaries!r}") from None
    if len(starts) != len(list(boundaries)):
        raise ValueError(f"boundaries repeat a layer: {list(boundaries)}")
    if not starts or starts[0] < 1 or starts[-1] > n_steps:
        raise ValueError(
            f"boundaries must be slice starts in 1..{n_steps} (a start at 0 has no step into it), "
            f"got {list(boundaries)}"
        )
    k = len(starts)
    if k == n_steps:
        raise ValueError("every step is a boundary: nothing left to compare against")
    at = np.zeros(n_steps, dtype=bool)
    at[np.array(starts) - 1] = True
    inside, outside = steps[at].mean(), steps[~at].mean()
    statistic = float(inside - outside)
    ratio = float(inside / outside) if outside > 0 else (np.inf if inside > 0 else np.nan)

    member, exact = subsets(n_steps, k, n_perm, seed)
    sum_in = member @ steps
    null = sum_in / k - (steps.sum() - sum_in) / (n_steps - k)
    p = float(p_greater(statistic, null, exact=exact, scale=steps.mean()))
    count = member.shape[0]
    method = (
        f"mean |step| at {k} slice starts - elsewhere over {n_steps} steps; permutation of "
        f"boundary positions ({describe(exact, count, 'position sets')}), "
        "one-sided (larger at boundaries)"
    )
    return Break(statistic, ratio, p, tuple(starts), n_steps, method)
