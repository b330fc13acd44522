"""A claim's decision: the numbers behind it and the verdict rule (DESIGN §8), in one place.

Two one-sided tests per claim (Lakens' equivalence-and-superiority scheme), each with its own p
and each Holm-adjusted across the family of primaries (`holm.adjust`):

- the **support** test (p, p_adj): superiority, H0 "mean <= 0" in the claimed direction;
  non-inferiority, H0 "mean <= -sesoi" (worse by the margin); equivalence, TOST (H0 "|mean| >=
  sesoi");
- the **refutation** test (p_ref, p_ref_adj): superiority, H0 "mean >= sesoi" (an effect of
  interest); non-inferiority, H0 "mean >= -sesoi"; equivalence, H0 "|mean| < sesoi" (both sides,
  Bonferroni over the two: p_ref = 2 min(p_above, p_below)).

Verdicts, with S = p_adj < alpha and R = p_ref_adj < alpha:

- superiority: **supported** S and not R (an effect in the claimed direction, not shown smaller
  than the sesoi); **smaller** S and R ("real but smaller than the effect of interest": its own
  label and pytest outcome, never supported or refuted); **refuted** R and not S (shown below
  the sesoi: no effect of interest, or the opposite direction); **inconclusive** neither;
- non-inferiority and equivalence: **supported** S, **refuted** R, **inconclusive** neither (S
  and R together cannot happen at alpha < 0.5 with these tests; it would read inconclusive).

The verdict depends on the adjusted p-values alone. The bounds say the same thing: ci_low and
ci_high are the inversions of the two tests (`bounds`), each at the level its adjusted test was
judged at, alpha * p / p_adj (Holm's level for this claim; alpha before adjustment): the
support-side bound excludes the null exactly when S, the refutation-side bound exactly when R.
For equivalence both bounds are drawn at the support level (TOST's interval), or at half the
refutation level when refuted. `decided_by` names the bound(s) that decided.

`verdict` is derived, never passed: a Decision cannot carry a verdict its numbers do not imply,
and `with_p_adj` recomputes it with the bounds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from harness.stats._validate import check_alpha, check_direction, check_sesoi
from harness.stats.bounds import decision_bounds

VERDICTS = ("supported", "smaller", "refuted", "inconclusive")
TESTS = ("superiority", "non-inferiority", "equivalence")
# What each verdict means, for reports and messages
LABELS = {"supported": "supported", "smaller": "real but smaller than the effect of interest",
          "refuted": "refuted", "inconclusive": "inconclusive"}


def check_test(test: str) -> str:
    if test not in TESTS:
        raise ValueError(f"test must be one of {', '.join(TESTS)}, got {test!r}")
    return test


def verdict_rule(p_adj, p_ref_adj, *, alpha: float, test: str = "superiority"):
    """The verdict(s) from the two adjusted p-values (scalars or equal-shape arrays)."""
    check_test(test)
    shown = np.asarray(p_adj, dtype=float) < alpha
    against = np.asarray(p_ref_adj, dtype=float) < alpha
    if test == "superiority":
        out = np.where(shown & against, "smaller", np.where(shown, "supported",
                       np.where(against, "refuted", "inconclusive")))
    else:
        out = np.where(shown & ~against, "supported", np.where(against & ~shown, "refuted", "inconclusive"))
    return str(out) if out.ndim == 0 else out


def _level(alpha: float, p: float, p_adj: float) -> float:
    """The level at which a Holm-adjusted test was judged: p < level exactly when p_adj < alpha."""
    return alpha if p_adj <= 0 else alpha * p / p_adj


def _g(x: float) -> str:
    return "none" if not np.isfinite(x) else f"{x:+.4g}"


@dataclass(frozen=True)
class Decision:
    """Seed-level (or, flagged, within-run) evidence for one claim and the verdict it implies.

    effect: mean of the per-run effects (or mean(a) - mean(b) for a two-sample within-run test);
    p / p_adj: the support test's p, raw and Holm-adjusted; p_ref / p_ref_adj: the refutation
    test's; ci_low / ci_high: the one-sided bounds of the effect by test inversion, at
    level_low / level_high (see the module doc), recomputed from `values` (one sample) or
    `groups` (two samples) whenever those are given; n: training runs (1 for within-run);
    values: the per-run effects the test saw; method: how all of it was computed, in words.
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
    p_ref: float = 1.0
    p_ref_adj: float | None = None
    groups: tuple[tuple[float, ...], ...] = ()  # two-sample within-run: (a, b)
    verdict: str = field(init=False)
    reason: str = field(init=False)
    level_low: float = field(init=False)
    level_high: float = field(init=False)
    decided_by: str = field(init=False)

    @property
    def bound(self) -> float:
        """The support-side bound (lower for "greater")."""
        return self.ci_low if self.direction == "greater" else self.ci_high

    @property
    def ref_bound(self) -> float:
        """The refutation-side bound (upper for "greater")."""
        return self.ci_high if self.direction == "greater" else self.ci_low

    @property
    def ci_level(self) -> float:
        """Two-sided coverage of [ci_low, ci_high] when both bounds are at one level."""
        return 1.0 - self.level_low - self.level_high

    def __post_init__(self) -> None:
        check_direction(self.direction)
        check_test(self.test)
        check_alpha(self.alpha)
        check_sesoi(self.sesoi)
        for name in ("p_adj", "p_ref_adj"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(self, name.removesuffix("_adj")))
        for name in ("p", "p_adj", "p_ref", "p_ref_adj"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Decision.{name} must lie in [0, 1], got {value!r}")
        if self.p_adj < self.p or self.p_ref_adj < self.p_ref:
            raise ValueError(f"an adjusted p cannot be smaller than its raw p ({self.p_adj} < {self.p} "
                             f"or {self.p_ref_adj} < {self.p_ref})")
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        object.__setattr__(self, "groups", tuple(tuple(float(v) for v in g) for g in self.groups))
        verdict = verdict_rule(self.p_adj, self.p_ref_adj, alpha=self.alpha, test=self.test)
        object.__setattr__(self, "verdict", verdict)
        support = _level(self.alpha, self.p, self.p_adj)
        against = _level(self.alpha, self.p_ref, self.p_ref_adj)
        if self.test == "equivalence":
            low = high = against / 2 if verdict == "refuted" else support
        elif self.direction == "greater":
            low, high = support, against
        else:
            low, high = against, support
        object.__setattr__(self, "level_low", float(low))
        object.__setattr__(self, "level_high", float(high))
        if self.values or self.groups:
            ci_low, ci_high = decision_bounds(self.values, self.groups, low, high)
            object.__setattr__(self, "ci_low", ci_low)
            object.__setattr__(self, "ci_high", ci_high)
        object.__setattr__(self, "decided_by", self._decided_by())
        object.__setattr__(self, "reason", self._reason())

    def _decided_by(self) -> str:
        side = {"greater": ("lower", "upper"), "less": ("upper", "lower")}[self.direction]
        if self.test == "equivalence":
            return "both bounds" if self.verdict in ("supported", "refuted") else "neither bound"
        return {"supported": f"{side[0]} bound", "refuted": f"{side[1]} bound",
                "smaller": "both bounds", "inconclusive": "neither bound"}[self.verdict]

    def _reason(self) -> str:
        """One line for the report: why the numbers give this verdict."""
        low = f"lower bound {_g(self.ci_low)} (one-sided {100 * (1 - self.level_low):.4g}%)"
        high = f"upper bound {_g(self.ci_high)} (one-sided {100 * (1 - self.level_high):.4g}%)"
        tests = f"support p_adj={self.p_adj:.4g}, refutation p_adj={self.p_ref_adj:.4g}, alpha={self.alpha:g}"
        if self.test == "equivalence":
            what = {"supported": f"both bounds inside ±{self.sesoi:g}: equivalent",
                    "refuted": f"the interval lies outside ±{self.sesoi:g}: a difference of at least the sesoi",
                    "inconclusive": f"the interval reaches beyond ±{self.sesoi:g}"}[self.verdict]
            return f"{what}; {low}, {high}; {tests}"
        greater = self.direction == "greater"
        null = 0.0 if self.test == "superiority" else -self.sesoi
        target = self.sesoi if self.test == "superiority" else -self.sesoi
        sgn = 1 if greater else -1
        support_bound, ref_bound = (low, high) if greater else (high, low)
        shown = f"{support_bound} excludes {sgn * null + 0.0:+.4g}"
        below = f"{ref_bound} excludes {sgn * target + 0.0:+.4g}"
        if self.verdict == "supported":
            return f"{shown}; {tests}"
        if self.verdict == "smaller":
            return f"real but smaller than the sesoi {self.sesoi:g}: {shown} and {below}; {tests}"
        if self.verdict == "refuted":
            return f"{self.refutation}: {below}; {tests}"
        return f"neither test decides: {support_bound}, {ref_bound}; {tests}"

    @property
    def refutation(self) -> str:
        """What a refutation says: the opposite direction, or no effect of interest."""
        if self.verdict != "refuted":
            return ""
        if self.test == "equivalence":
            return "a difference of at least the sesoi"
        if self.test == "non-inferiority":
            return f"worse than the margin {self.sesoi:g}"
        opposite = self.ci_high < 0 if self.direction == "greater" else self.ci_low > 0
        return "opposite direction" if opposite else f"no effect of interest (below the sesoi {self.sesoi:g})"

    def with_p_adj(self, p_adj: float, p_ref_adj: float | None = None) -> "Decision":
        """This decision judged at adjusted p-values (verdict, bounds and reason recomputed)."""
        return dataclasses.replace(self, p_adj=float(p_adj),
                                   p_ref_adj=float(self.p_ref if p_ref_adj is None else p_ref_adj))

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats, ints, strs, bools, lists); infinite bounds as None."""
        out = dataclasses.asdict(self)
        out["values"] = list(self.values)
        out["groups"] = [list(g) for g in self.groups]
        for name in ("ci_low", "ci_high"):
            if not np.isfinite(out[name]):
                out[name] = None
        out["ci_level"] = self.ci_level
        out["bound"] = out["ci_low"] if self.direction == "greater" else out["ci_high"]
        out["ref_bound"] = out["ci_high"] if self.direction == "greater" else out["ci_low"]
        out["label"] = LABELS[self.verdict]
        out["refutation"] = self.refutation
        return out
