"""Holm's step-down correction across the claims of one report.

The family is whatever the caller passes: for uplab, every decision of one claim report
(all claims x scales that report decides), within-run decisions included. Including them is
the conservative choice: leaving a test out of the family would let it escape the correction,
while counting it only makes the others' adjusted p larger.

Holm controls the family-wise error rate at alpha for any dependence between the tests, and
is uniformly more powerful than Bonferroni. Adjusted p-values (Wright 1992): sort the m raw
p-values ascending, p_(1) <= ... <= p_(m); then

    p_adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j)),

returned in the input order. A claim is rejected by Holm at level alpha exactly when
p_adj < alpha, so a verdict can use p_adj in place of p.

Both tests of every claim are adjusted, each across the family on its own: the support p's
(so that a wrong "supported" anywhere in the family has probability <= alpha) and the refutation
p's (likewise for a wrong "refuted"). The bounds follow the adjusted levels (`decision`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.stats.decision import Decision


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values in input order: each >= its raw p, capped at 1, monotone in raw p."""
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm needs a flat sequence of p-values, got shape {p.shape}")
    if p.size and not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError(f"p-values must lie in [0, 1] (no NaN); got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def adjust(decisions: Sequence[Decision], untested: int = 0) -> list[Decision]:
    """The decisions of one family with Holm-adjusted `p_adj` and `p_ref_adj` (each test across
    the family on its own) and verdicts and bounds recomputed.

    Uses each decision's raw p's (never a previous adjustment), so adjusting twice changes
    nothing. All decisions must share one alpha: Holm's guarantee is for a common level.
    `untested`: members of the family left unmeasured, counted as p = 1 (never rejected), so the
    family's size does not shrink with them.
    """
    decisions = list(decisions)
    if untested < 0:
        raise ValueError(f"untested must be >= 0, got {untested}")
    alphas = sorted({d.alpha for d in decisions})
    if len(alphas) > 1:
        raise ValueError(
            f"Holm needs one alpha for the whole family; these decisions use {alphas}: "
            "decide them at a common alpha"
        )
    pad, k = [1.0] * untested, len(decisions)
    support = holm([d.p for d in decisions] + pad)[:k]
    against = holm([d.p_ref for d in decisions] + pad)[:k]
    return [d.with_p_adj(q, r) for d, q, r in zip(decisions, support, against)]
