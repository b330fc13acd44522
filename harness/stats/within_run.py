"""Within-run fallback for a single training run: permutation tests over layers.

With one run (real checkpoints trained elsewhere) there is no seed-level replication, so the
only test left treats layers as exchangeable units. They are not independent replicates
(neighbouring layers share inputs, gradients and training history), so the p-value describes
this one run, not the population of runs a seed-level claim is about; every Decision made here
carries `within_run=True`, n = 1 (runs) and a method string that says so, and the report must
show it.

- one sample (`values_b=None`): per-layer effects, sign-flip test of H0 "symmetric about 0"
  (exact up to 16 layers), bootstrap CI of the mean over layers.
- two samples: e.g. duplicate-layer values vs original-layer values; label permutation test of
  the difference of means (exact when C(n_a + n_b, n_a) <= n_perm, else Monte-Carlo with the +1
  correction), bootstrap CI of the difference resampling within each group.
Both one-sided in the claimed direction; the verdict rule is the seed-level one. A
non-inferiority claim shifts group a (or the one sample) by the margin before the test, as the
seed-level test does; the reported effect and interval stay unshifted. Copies of one source layer
are not independent either: callers average them into one unit first (`harness.claims.units`).
"""

from __future__ import annotations

import numpy as np

from harness.stats._perm import describe, p_greater, subsets
from harness.stats._validate import (
    as_values, check_alpha, check_count, check_direction, check_sesoi, spawn,
)
from harness.stats.bootstrap import bootstrap_ci, bootstrap_ci_diff
from harness.stats.decision import Decision
from harness.stats.signflip import signflip_method, signflip_p

CAVEAT = "within-run: units (source layers) are not independent replicates"


def _label_null(a: np.ndarray, b: np.ndarray, n_perm: int, seed) -> tuple[np.ndarray, bool, int]:
    """Null differences of means over relabellings of the pooled layers, exact if few enough."""
    pooled = np.concatenate([a, b])
    member, exact = subsets(pooled.size, a.size, n_perm, seed)
    sum_a = member @ pooled
    null = sum_a / a.size - (pooled.sum() - sum_a) / b.size
    return null, exact, member.shape[0]


def within_run(
    values_a, values_b=None, *, direction, sesoi=0.0, alpha=0.05,
    n_perm=9999, n_boot=9999, seed=0, test="superiority",
) -> Decision:
    """Decide a claim from the layers of a single run (see module doc for the caveat).

    values_a: per-layer values (one sample: per-layer effects; two samples: group a, e.g. the
    duplicates). values_b: group b (e.g. the originals) or None. direction refers to the mean
    (one sample) or mean(a) - mean(b) (two samples).
    """
    check_direction(direction)
    alpha, sesoi = check_alpha(alpha), check_sesoi(sesoi)
    check_count(n_perm, "n_perm")
    check_count(n_boot, "n_boot")
    if test not in ("superiority", "non-inferiority"):
        raise ValueError(f"a within-run test is superiority or non-inferiority, got {test!r}")
    shift = 0.0 if test == "superiority" else (sesoi if direction == "greater" else -sesoi)
    perm_seed, boot_seed = spawn(seed, 2)
    if values_b is None:
        x = as_values(values_a, "values_a (per-layer effects)", min_n=2)
        p = signflip_p(x + shift, direction=direction, n_perm=n_perm, seed=perm_seed)
        low, high = bootstrap_ci(x, alpha=2 * alpha, n_boot=n_boot, seed=boot_seed)
        effect, values = float(x.mean()), tuple(x)
        how = f"one-sample {signflip_method(x.size, n_perm)} over {x.size} layers"
    else:
        a = as_values(values_a, "values_a (group a layers)", min_n=1)
        b = as_values(values_b, "values_b (group b layers)", min_n=1)
        if a.size + b.size < 3:
            raise ValueError("a two-sample within-run test needs at least 3 layers in all")
        sign = 1.0 if direction == "greater" else -1.0
        effect = float(a.mean() - b.mean())
        null, exact, count = _label_null(a + shift, b, n_perm, perm_seed)
        scale = np.abs(np.concatenate([a, b])).mean()
        p = float(p_greater(sign * (effect + shift), sign * null, exact=exact, scale=scale))
        low, high = bootstrap_ci_diff(a, b, alpha=2 * alpha, n_boot=n_boot, seed=boot_seed)
        values = ()
        how = (
            f"two-sample label permutation test of mean(a) - mean(b) over "
            f"{a.size} + {b.size} layers ({describe(exact, count, 'relabellings')})"
        )
    method = (
        f"{CAVEAT}; single run (n = 1); {how}, one-sided ({direction}); "
        f"{100 * (1 - 2 * alpha):g}% percentile bootstrap interval over units ({n_boot} resamples)"
    )
    return Decision(
        effect=effect, ci_low=low, ci_high=high, p=float(p), n=1, method=method,
        direction=direction, alpha=alpha, sesoi=sesoi, within_run=True, values=values, test=test,
    )
