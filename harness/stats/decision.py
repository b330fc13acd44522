"""A claim's decision: the numbers behind it and the verdict rule (DESIGN §8), in one place.

The interval matches the test: ci_low/ci_high are the two one-sided (1 - alpha) bounds of the
mean, i.e. the two-sided 1 - 2 alpha interval (90 % at alpha = 0.05). A one-sided claim is
decided by the bound on its side (the claimed-direction bound for support, the other for
refutation); TOST uses both. Verdict rule per test kind, in the claimed direction (for "less"
read every inequality mirrored; `upper` is the bound that the claim needs to be large):

- superiority (effect > 0 claimed): **refuted** when upper < sesoi: every effect at least as
  large as the smallest effect of interest is excluded (the interval wholly on the wrong side,
  or inside ±sesoi: "no effect of interest"); **supported** when not refuted, p_adj < alpha and
  the mean lies in the claimed direction.
- non-inferiority (effect > -sesoi claimed; p tests H0: effect <= -sesoi): **refuted** when
  upper < -sesoi (demonstrably worse by the margin); **supported** when not refuted and
  p_adj < alpha.
- equivalence (|effect| < sesoi claimed; p = TOST): **refuted** when the interval lies wholly
  outside ±sesoi on one side; **supported** when not refuted, p_adj < alpha and |mean| < sesoi.
- **inconclusive** otherwise.

Refuted takes precedence. The interval is not widened for multiplicity; Holm adjusts only the
p-value (see `holm.adjust`).

`verdict` is derived, never passed: a Decision cannot carry a verdict its numbers do not imply,
and `dataclasses.replace(d, p_adj=...)` recomputes it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from harness.stats._validate import check_alpha, check_direction, check_sesoi

VERDICTS = ("supported", "refuted", "inconclusive")
TESTS = ("superiority", "non-inferiority", "equivalence")


def check_test(test: str) -> str:
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    return test


def verdict_rule(p, effect, ci_low, ci_high, *, direction: str, sesoi: float, alpha: float,
                 test: str = "superiority"):
    """The verdict(s) for scalars or equal-shape arrays; returns a str or an array of str."""
    sign = 1.0 if check_direction(direction) == "greater" else -1.0
    low, high = np.asarray(ci_low, dtype=float), np.asarray(ci_high, dtype=float)
    effect, significant = np.asarray(effect, dtype=float), np.asarray(p) < alpha
    if check_test(test) == "equivalence":
        refuted = (low > sesoi) | (high < -sesoi)
        supported = ~refuted & significant & (np.abs(effect) < sesoi)
    else:
        # Claimed-direction coordinates: a larger `upper` is better for the claim.
        upper = high if sign > 0 else -low
        floor = sesoi if test == "superiority" else -sesoi
        refuted = upper < floor
        in_direction = sign * effect > (0.0 if test == "superiority" else -sesoi)
        supported = ~refuted & significant & in_direction
    out = np.where(refuted, "refuted", np.where(supported, "supported", "inconclusive"))
    return str(out) if out.ndim == 0 else out


def _reason(d: "Decision") -> str:
    """One line for the report: why the numbers give this verdict."""
    level = f"{100 * d.ci_level:g}% CI [{d.ci_low:.4g}, {d.ci_high:.4g}]"
    if d.test == "equivalence":
        if d.verdict == "refuted":
            return f"{level} lies wholly outside ±{d.sesoi:g}: a difference of at least the sesoi"
        if d.verdict == "supported":
            return f"TOST p_adj={d.p_adj:.4g} < alpha={d.alpha:g}: the mean lies within ±{d.sesoi:g}"
        return f"TOST p_adj={d.p_adj:.4g} vs alpha={d.alpha:g}; {level} reaches beyond ±{d.sesoi:g}"
    greater = d.direction == "greater"
    sesoi = d.sesoi if d.test == "superiority" else -d.sesoi
    bound = (sesoi if greater else -sesoi) + 0.0  # + 0.0 turns -0.0 into 0.0
    side = "below" if greater else "above"
    if d.verdict == "refuted":
        inside = d.test == "superiority" and d.ci_low > -d.sesoi and d.ci_high < d.sesoi
        what = "no effect of interest: inside ±sesoi" if inside else f"wholly {side} {bound:+.4g}"
        return f"{level}: {what} (sesoi={d.sesoi:g}, {d.test})"
    if d.verdict == "supported":
        return (f"p_adj={d.p_adj:.4g} < alpha={d.alpha:g} ({d.test}), mean {d.effect:+.4g}")
    return (
        f"p_adj={d.p_adj:.4g} vs alpha={d.alpha:g}, mean {d.effect:+.4g}; "
        f"{level} still reaches {'above' if greater else 'below'} {bound:+.4g}"
    )


@dataclass(frozen=True)
class Decision:
    """Seed-level (or, flagged, within-run) evidence for one claim and the verdict it implies.

    effect: mean of the per-run effects; ci_low/ci_high: the two one-sided 1 - alpha percentile
    bootstrap bounds of that mean (the two-sided 1 - 2 alpha interval, `ci_level`); p: one-sided permutation p in the claimed direction; p_adj: the
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
    test: str = "superiority"
    values: tuple[float, ...] = ()
    verdict: str = field(init=False)
    reason: str = field(init=False)

    @property
    def ci_level(self) -> float:
        """Two-sided coverage of [ci_low, ci_high]; each bound alone is one-sided 1 - alpha."""
        return 1.0 - 2.0 * self.alpha

    @property
    def bound(self) -> float:
        """The one-sided (1 - alpha) bound on the side the claim needs (lower for "greater")."""
        return self.ci_low if self.direction == "greater" else self.ci_high

    def __post_init__(self) -> None:
        check_direction(self.direction)
        check_test(self.test)
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
            direction=self.direction, sesoi=self.sesoi, alpha=self.alpha, test=self.test,
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
        out["ci_level"] = self.ci_level
        out["bound"] = self.bound
        return out
