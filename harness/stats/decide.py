"""Seed-level decisions: one effect per training run -> mean, two one-sided sign-flip tests,
bounds by test inversion, verdict.

The support test is one-sided in the claimed direction (H0 "mean <= 0" for superiority, "mean
<= -sesoi" for non-inferiority); the refutation test asks whether the mean is shown below the
sesoi (`pvalues`, `decision`). Both are exact sign-flip tests of the shifted effects (H0: the
shifted effects are symmetric about 0). The bounds are the inversions of the same tests
(`bounds`), so they agree with the p-values at every level, the Holm-adjusted one included.
`decide_paired` is `decide` on the per-seed differences of two conditions that share seeds.

Known limitation: the sign-flip test's H0 is *symmetry* about the null value, which implies the
mean but is not implied by it. A per-run effect with the null mean but a skewed distribution
can be "supported" well above alpha (measured: 13 % at n = 8 for a centred, left-skewed
exponential); `tests/test_stats_calibration.py` keeps that as a strict xfail. Prefer effects
that are roughly symmetric under the null (differences of paired conditions, log ratios).

Randomness: for n > 16 the Monte-Carlo sign flips draw from a generator spawned from `seed`, so
equal inputs and seed give identical Decisions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from harness.stats._validate import (
    as_values, check_alpha, check_count, check_direction, check_sesoi, spawn,
)
from harness.stats.decision import Decision, check_test, verdict_rule
from harness.stats.pvalues import support_and_refutation
from harness.stats.signflip import signflip_method, signflip_p

N_PERM = 9999  # Monte-Carlo sign flips, used only when n > signflip.EXACT_MAX_N


class Batch(NamedTuple):
    """Column-wise results for many data sets at once (rows of a 2-D array), unadjusted."""

    effect: np.ndarray
    p: np.ndarray
    p_ref: np.ndarray
    verdict: np.ndarray


def decide_rows(samples, *, direction, sesoi=0.0, alpha=0.05, n_perm=N_PERM, seed=0,
                test="superiority") -> Batch:
    """Both tests for every row of a finite (m, n) array at once; the code path `decide` uses.

    All rows share the same sign flips, so row i's p-values equal `decide(samples[i], ...)`'s.
    Calibration and power simulations call this directly (and Holm-adjust families of rows).
    """
    x = np.atleast_2d(np.asarray(samples, dtype=float))
    check_test(test)
    (flip_seed,) = spawn(seed, 1)

    def p_at(shift, side):
        return np.atleast_1d(signflip_p(x - shift, direction=side, n_perm=n_perm, seed=flip_seed))

    p, p_ref = support_and_refutation(p_at, direction=direction, test=test, sesoi=sesoi)
    verdict = verdict_rule(p, p_ref, alpha=alpha, test=test)
    return Batch(x.mean(axis=1), p, p_ref, np.atleast_1d(verdict))


def _method(kind: str, n: int, direction: str, alpha: float, n_perm: int, test: str, sesoi: float) -> str:
    flips = signflip_method(n, n_perm)
    if test == "equivalence":
        return (f"TOST equivalence within ±{sesoi:g}: two one-sided {flips} (H0: mean <= -{sesoi:g}; "
                f"H0: mean >= +{sesoi:g}), support p = the larger; refutation: one-sided tests of "
                f"mean > +{sesoi:g} and mean < -{sesoi:g}, p = 2 x the smaller; over {n} runs; "
                "bounds by inverting the same tests")
    null = "0" if test == "superiority" else f"{'-' if direction == 'greater' else '+'}{sesoi:g} (margin)"
    ref = (f"the mean is shown {'below +' if direction == 'greater' else 'above -'}{sesoi:g} (sesoi)"
           if test == "superiority" else f"the mean is shown beyond the margin")
    return (f"{kind} {flips}, one-sided ({direction}) against {null}, over {n} runs; refutation "
            f"test: {ref}; one-sided bounds by inverting the same tests, each at the level its "
            f"(Holm-adjusted) test is judged at (alpha {alpha:g} before adjustment)")


def _decide(effects, kind, *, direction, sesoi, alpha, n_perm, seed, test="superiority") -> Decision:
    check_direction(direction)
    alpha, sesoi = check_alpha(alpha), check_sesoi(sesoi)
    if alpha >= 0.5:
        raise ValueError(f"alpha must be below 0.5, got {alpha!r}")
    if check_test(test) != "superiority" and sesoi <= 0:
        raise ValueError(f"a {test} test needs a margin sesoi > 0 in the effect's units")
    check_count(n_perm, "n_perm")
    x = as_values(
        effects, "effects", min_n=2,
        hint="with a single run use harness.stats.within_run (tests over layers)",
    )
    row = decide_rows(x[None, :], direction=direction, sesoi=sesoi, alpha=alpha, n_perm=n_perm,
                      seed=seed, test=test)
    return Decision(
        effect=float(row.effect[0]), ci_low=-np.inf, ci_high=np.inf, p=float(row.p[0]),
        p_ref=float(row.p_ref[0]), n=int(x.size),
        method=_method(kind, x.size, direction, alpha, n_perm, test, sesoi),
        direction=direction, alpha=alpha, sesoi=sesoi, within_run=False, values=tuple(x), test=test,
    )


def decide(effects, *, direction, sesoi=0.0, alpha=0.05, n_perm=N_PERM, seed=0,
           test="superiority") -> Decision:
    """Decide a claim from one effect per training run (seed).

    effects: >= 2 finite values (a single run has no seed-level test: use `within_run`).
    direction: "greater" (claim: effect > 0) or "less" (claim: effect < 0).
    sesoi: smallest effect size of interest (> 0 for a refutation test to exist; 0 means only
    the opposite direction can refute), in the effect's units; the margin for non-inferiority
    and equivalence.
    test: "superiority", "non-inferiority" or "equivalence" (`decide_equivalence` is this).
    """
    return _decide(effects, "one-sample", direction=direction, sesoi=sesoi, alpha=alpha,
                   n_perm=n_perm, seed=seed, test=test)


def decide_paired(a, b, *, direction, sesoi=0.0, alpha=0.05, n_perm=N_PERM, seed=0) -> Decision:
    """Decide a claim about condition a minus condition b, where a[i] and b[i] share seed i.

    The effect per seed is a[i] - b[i]; then exactly as `decide` (direction refers to a - b).
    """
    a = as_values(a, "a (condition a, one value per seed)", min_n=1)
    b = as_values(b, "b (condition b, one value per seed)", min_n=1)
    if a.shape != b.shape:
        raise ValueError(
            f"paired conditions need one value per shared seed in each: got {a.size} and {b.size}"
        )
    return _decide(a - b, "paired (a - b per shared seed)", direction=direction, sesoi=sesoi,
                   alpha=alpha, n_perm=n_perm, seed=seed)
