"""The two one-sided tests of every claim, from one function p_at(shift, direction).

`p_at(m, "greater")` is the p of "mean - m > 0" (H0: mean <= m), `p_at(m, "less")` of
"mean - m < 0". For the per-run effects that is a sign-flip test of x - m; within one run a
label-permutation test of mean(a) - mean(b) - m. Here each test kind and claimed direction
picks its support and refutation test (see `decision` for the verdict rule). Works on scalars
and on arrays of rows alike (calibration runs thousands of families at once).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def support_and_refutation(p_at: Callable, *, direction: str, test: str, sesoi: float):
    """(support p, refutation p) for a claim of `test` kind in `direction` with margin `sesoi`."""
    greater = direction == "greater"
    claimed, other = ("greater", "less") if greater else ("less", "greater")
    if test == "superiority":
        return p_at(0.0, claimed), p_at(sesoi if greater else -sesoi, other)
    if test == "non-inferiority":
        margin = -sesoi if greater else sesoi
        return p_at(margin, claimed), p_at(margin, other)
    support = np.maximum(p_at(-sesoi, "greater"), p_at(sesoi, "less"))
    against = np.minimum(1.0, 2.0 * np.minimum(p_at(sesoi, "greater"), p_at(-sesoi, "less")))
    return support, against
