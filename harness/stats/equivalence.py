"""Equivalence over seeds (TOST with sign-flip tests): is the mean effect inside ±sesoi?

Two one-sided tests (Schuirmann's TOST), each an exact sign-flip test like `decide`'s:
H0₁: mean <= -sesoi, H0₂: mean >= +sesoi; the support p is the larger of the two. The
refutation test asks whether the mean is shown outside the margin on either side (p = twice the
smaller of the two one-sided p's, Bonferroni over the sides). Verdicts (`decision`): supported
(equivalent), refuted (a difference of at least the sesoi shown), inconclusive. The margin
(`sesoi`, in the effect's units) must be fixed before the data are seen.
"""

from __future__ import annotations

import numpy as np

from harness.stats.decide import N_PERM, decide
from harness.stats.decision import Decision


def decide_equivalence(effects, *, sesoi: float, alpha: float = 0.05, n_perm: int = N_PERM,
                       seed=0) -> Decision:
    """Decide "the per-run effects' mean lies within ±sesoi" from one effect per run (seed)."""
    if not (isinstance(sesoi, (int, float)) and np.isfinite(sesoi) and sesoi > 0):
        raise ValueError(f"an equivalence test needs a margin sesoi > 0 (in the effect's units), got {sesoi!r}")
    return decide(effects, direction="greater", sesoi=float(sesoi), alpha=alpha, n_perm=n_perm,
                  seed=seed, test="equivalence")
