"""Equivalence over seeds (TOST with sign-flip tests): is the mean effect inside ±sesoi?

Two one-sided tests (Schuirmann's TOST), each an exact sign-flip test like `decide`'s:
H0₁: mean <= -sesoi (tested on effect + sesoi, "greater"), H0₂: mean >= +sesoi (tested on
effect - sesoi, "less"). p = max(p₁, p₂); equivalence is shown when p < alpha.

The result is a `Decision` with test "equivalence": effect = the mean, CI = the 90 % (1 - 2
alpha) percentile bootstrap interval of the mean (TOST's matching interval), sesoi = the margin.
Then:

- **supported** (equivalent): TOST p < alpha and the mean lies inside (-sesoi, +sesoi);
- **refuted** (not equivalent): the whole CI of the mean lies outside the margin on one side,
  i.e. a difference at least as large as the sesoi is demonstrated;
- **inconclusive** otherwise (too few or too noisy runs to tell).

The margin itself (`sesoi`, in the effect's units) must be fixed before the data are seen and
stated with its reason by the caller. Deterministic given `seed`.
"""

from __future__ import annotations

import numpy as np

from harness.stats._validate import as_values, check_alpha, check_count, spawn
from harness.stats.bootstrap import bootstrap_ci
from harness.stats.decision import Decision
from harness.stats.signflip import signflip_method, signflip_p

N_BOOT = 9999
N_PERM = 9999


def tost_p(effects, sesoi: float, *, n_perm: int = N_PERM, seed=0) -> float:
    """max of the two one-sided sign-flip p-values against mean <= -sesoi and mean >= +sesoi."""
    x = as_values(effects, "effects", min_n=2)
    lo_seed, hi_seed = spawn(seed, 2)
    p_low = float(signflip_p(x + sesoi, direction="greater", n_perm=n_perm, seed=lo_seed))
    p_high = float(signflip_p(x - sesoi, direction="less", n_perm=n_perm, seed=hi_seed))
    return max(p_low, p_high)


def decide_equivalence(effects, *, sesoi: float, alpha: float = 0.05, n_boot: int = N_BOOT,
                       n_perm: int = N_PERM, seed=0) -> Decision:
    """Decide "the per-run effects' mean lies within ±sesoi" from one effect per run (seed).

    effects: >= 2 finite values (e.g. per-seed differences of two paired conditions);
    sesoi: the equivalence margin (> 0), fixed in advance. See the module docstring for how
    the returned Decision encodes the verdict.
    """
    alpha = check_alpha(alpha)
    check_count(n_boot, "n_boot")
    check_count(n_perm, "n_perm")
    if not (isinstance(sesoi, (int, float)) and np.isfinite(sesoi) and sesoi > 0):
        raise ValueError(f"an equivalence test needs a margin sesoi > 0 (in the effect's units), got {sesoi!r}")
    x = as_values(effects, "effects", min_n=2,
                  hint="equivalence needs one effect per run from at least two runs")
    boot_seed, flip_seed = spawn(seed, 2)
    if alpha >= 0.5:
        raise ValueError(f"alpha must be below 0.5 (the interval is 1 - 2 alpha), got {alpha!r}")
    low, high = bootstrap_ci(x, alpha=2 * alpha, n_boot=n_boot, seed=boot_seed)
    method = (
        f"TOST equivalence within ±{sesoi:g}: two one-sided {signflip_method(x.size, n_perm)} "
        f"(H0: mean <= -{sesoi:g}; H0: mean >= +{sesoi:g}), p = max of the two, over {x.size} runs; "
        f"{100 * (1 - 2 * alpha):g}% percentile bootstrap interval of the mean ({n_boot} resamples)"
    )
    return Decision(
        effect=float(x.mean()), ci_low=float(low), ci_high=float(high),
        p=tost_p(x, float(sesoi), n_perm=n_perm, seed=flip_seed), n=int(x.size), method=method,
        direction="greater", alpha=alpha, sesoi=float(sesoi), within_run=False, values=tuple(x),
        test="equivalence",
    )
