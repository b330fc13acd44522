"""Within-run fallback for a single training run: permutation tests over layers.

With one run (real checkpoints trained elsewhere) there is no seed-level replication, so the
only test left treats layers as exchangeable units. They are not independent replicates
(neighbouring layers share inputs, gradients and training history), so the p-value describes
this one run, not the population of runs a seed-level claim is about; every Decision made here
carries `within_run=True`, n = 1 (runs) and a method string that says so, and the report must
show it.

- one sample (`values_b=None`): per-layer effects, sign-flip test of H0 "symmetric about 0"
  (exact up to 16 layers).
- two samples: e.g. duplicate-layer values vs original-layer values; label permutation test of
  the difference of means (exact when C(n_a + n_b, n_a) <= n_perm, else Monte-Carlo with the +1
  correction).
Both tests of the seed-level rule (support and refutation, `pvalues`), and bounds by inverting
them (`bounds`); the verdict rule is the seed-level one. A
non-inferiority claim shifts group a (or the one sample) by the margin before the test, as the
seed-level test does; the reported effect and interval stay unshifted. Copies of one source layer
are not independent either: callers average them into one unit first (`harness.claims.units`).
"""

from __future__ import annotations

import numpy as np

from harness.stats._perm import describe
from harness.stats._validate import (
    as_values, check_alpha, check_count, check_direction, check_sesoi, spawn,
)
from harness.stats.decision import Decision
from harness.stats.labels import label_null, two_sample_p
from harness.stats.pvalues import support_and_refutation
from harness.stats.signflip import signflip_method, signflip_p

CAVEAT = "within-run: units (layers, slices or fine-tunes of one manifest) are not independent replicates"


def within_run(
    values_a, values_b=None, *, direction, sesoi=0.0, alpha=0.05, n_perm=9999, seed=0,
    test="superiority",
) -> Decision:
    """Decide a claim from the layers of a single run (see module doc for the caveat).

    values_a: per-layer values (one sample: per-layer effects; two samples: group a, e.g. the
    duplicates). values_b: group b (e.g. the originals) or None. direction refers to the mean
    (one sample) or mean(a) - mean(b) (two samples). Both one-sided tests and the bounds as at
    seed level (`decision`), over units instead of runs.
    """
    check_direction(direction)
    alpha, sesoi = check_alpha(alpha), check_sesoi(sesoi)
    check_count(n_perm, "n_perm")
    if test not in ("superiority", "non-inferiority"):
        raise ValueError(f"a within-run test is superiority or non-inferiority, got {test!r}")
    if test == "non-inferiority" and sesoi <= 0:
        raise ValueError("a non-inferiority test needs a margin sesoi > 0 in the effect's units")
    (perm_seed,) = spawn(seed, 1)
    if values_b is None:
        x = as_values(values_a, "values_a (per-layer effects)", min_n=2)

        def p_at(shift, side):
            return float(signflip_p(x - shift, direction=side, n_perm=n_perm, seed=perm_seed))

        effect, values, groups = float(x.mean()), tuple(x), ()
        how = f"one-sample {signflip_method(x.size, n_perm)} over {x.size} layers"
    else:
        a = as_values(values_a, "values_a (group a layers)", min_n=1)
        b = as_values(values_b, "values_b (group b layers)", min_n=1)
        if a.size + b.size < 3:
            raise ValueError("a two-sample within-run test needs at least 3 layers in all")

        def p_at(shift, side):
            return two_sample_p(a - shift, b, side, n_perm=n_perm, seed=seed)

        effect, values, groups = float(a.mean() - b.mean()), (), (tuple(a), tuple(b))
        _, exact, count = label_null(a, b, n_perm, perm_seed)
        how = (f"two-sample label permutation test of mean(a) - mean(b) over {a.size} + {b.size} "
               f"layers ({describe(exact, count, 'relabellings')})")
    p, p_ref = support_and_refutation(p_at, direction=direction, test=test, sesoi=sesoi)
    method = (f"{CAVEAT}; single run (n = 1); {how}, one-sided ({direction}), and the refutation "
              "test against the sesoi; bounds by inverting the same tests")
    return Decision(
        effect=effect, ci_low=-np.inf, ci_high=np.inf, p=float(p), p_ref=float(p_ref), n=1,
        method=method, direction=direction, alpha=alpha, sesoi=sesoi, within_run=True,
        values=values, groups=groups, test=test,
    )
