"""A claim's decision: the numbers behind it and the verdict rule (DESIGN §8), in one place.

Verdict rule, in the claimed direction (for "less" read every inequality mirrored):

- **refuted** when the 1 - alpha CI of the mean excludes every effect at least as large as the
  smallest effect of interest: ci_high < sesoi ("greater"), ci_low > -sesoi ("less"). With
  sesoi = 0 that is "the CI lies wholly on the wrong side of zero"; with sesoi > 0 it also
  covers equivalence (the whole CI inside (-sesoi, +sesoi)) and, more generally, "the effect
  is demonstrably smaller than anything we would care about".
- **supported** when not refuted, p_adj < alpha and the mean lies in the claimed direction.
- **inconclusive** otherwise.

Refuted takes precedence: an effect that is significantly non-zero but whose CI lies wholly
below sesoi is a trivially small effect, and the claim (an effect of interest) is refuted.
The CI is not widened for multiplicity; Holm adjusts only the p-value (see `holm.adjust`).

`verdict` is derived, never passed: a Decision cannot carry a verdict its numbers do not imply,
and `dataclasses.replace(d, p_adj=...)` recomputes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from harness.stats._validate import check_alpha, check_direction, check_sesoi

VERDICTS = ("supported", "refuted", "inconclusive")


def verdict_rule(p, effect, ci_low, ci_high, *, direction: str, sesoi: float, alpha: float):
    """The verdict(s) for scalars or equal-shape arrays; returns a str or an array of str."""
    sign = 1.0 if check_direction(direction) == "greater" else -1.0
    # Work in claimed-direction coordinates: a larger `upper` is better for the claim.
    upper = np.where(sign > 0, ci_high, -np.asarray(ci_low, dtype=float))
    refuted = upper < sesoi
    supported = ~refuted & (np.asarray(p) < alpha) & (sign * np.asarray(effect) > 0)
    out = np.where(refuted, "refuted", np.where(supported, "supported", "inconclusive"))
    return str(out) if out.ndim == 0 else out


def _reason(d: "Decision") -> str:
    """One line for the report: why the numbers give this verdict."""
    level = f"{100 * (1 - d.alpha):g}% CI [{d.ci_low:.4g}, {d.ci_high:.4g}]"
    greater = d.direction == "greater"
    bound = (d.sesoi if greater else -d.sesoi) + 0.0  # + 0.0 turns -0.0 into 0.0
    if d.verdict == "refuted":
        return f"{level} lies wholly {'below' if greater else 'above'} {bound:+.4g} (sesoi={d.sesoi:g})"
    if d.verdict == "supported":
        return f"p_adj={d.p_adj:.4g} < alpha={d.alpha:g} and mean {d.effect:+.4g} is {d.direction} than 0"
    return (
        f"p_adj={d.p_adj:.4g} vs alpha={d.alpha:g}, mean {d.effect:+.4g}; "
        f"{level} still reaches {'above' if greater else 'below'} {bound:+.4g}"
    )


@dataclass(frozen=True)
class Decision:
    """Seed-level (or, flagged, within-run) evidence for one claim and the verdict it implies.

    effect: mean of the per-run effects; ci_low/ci_high: two-sided 1 - alpha percentile
    bootstrap CI of that mean; p: one-sided permutation p in the claimed direction; p_adj: the
    p the verdict uses (Holm-adjusted across a report by `adjust`; equals p until then);
    n: number of training runs (the unit of replication; 1 for within-run decisions);
    values: the per-run effects the test saw (per-layer values for a one-sample within-run
    test, empty for a two-sample one); method: how all of it was computed, in words.
    """

    effect: float
    ci_low: float
    ci_high: float
    p: float
    n: int
    method: str
    direction: str
    alpha: float = 0.05
    sesoi: float = 0.0
    within_run: bool = False
    p_adj: float | None = None
    values: tuple[float, ...] = ()
    verdict: str = field(init=False)
    reason: str = field(init=False)

    def __post_init__(self) -> None:
        check_direction(self.direction)
        check_alpha(self.alpha)
        check_sesoi(self.sesoi)
        if self.p_adj is None:
            object.__setattr__(self, "p_adj", self.p)
        for name in ("p", "p_adj"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Decision.{name} must lie in [0, 1], got {value!r}")
        if self.p_adj < self.p:
            raise ValueError(f"Decision.p_adj ({self.p_adj}) cannot be smaller than p ({self.p})")
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        verdict = verdict_rule(
            self.p_adj, self.effect, self.ci_low, self.ci_high,
            direction=self.direction, sesoi=self.sesoi, alpha=self.alpha,
        )
        object.__setattr__(self, "verdict", verdict)
        object.__setattr__(self, "reason", _reason(self))

    def with_p_adj(self, p_adj: float) -> "Decision":
        """This decision judged at an adjusted p (verdict and reason recomputed)."""
        return dataclasses.replace(self, p_adj=float(p_adj))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats, ints, strs, bools, a list of per-run values)."""
        out = dataclasses.asdict(self)
        out["values"] = list(self.values)
        return out
