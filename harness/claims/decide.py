"""Decide one measured case by its registered protocol: the test kind picks the statistics.

Seeds are the units (`decide`, or `decide_equivalence` for TOST). With one run trained elsewhere
the claim's within-run form decides instead, over units that are independent source layers, and
the Decision says so (`within_run`, n = 1 run).
"""

from __future__ import annotations

from harness.claims import NotApplicable
from harness.claims.measured import Measured
from harness.claims.registry import Case
from harness.stats import Decision, decide, decide_equivalence, within_run
from harness.stats.power import detectable


def decide_case(case: Case, measured: Measured, *, alpha: float, single_run: bool = False) -> Decision:
    """The unadjusted decision of `measured` under `case`'s protocol."""
    if single_run:
        if measured.within is None:
            raise NotApplicable("this claim has no within-run form (its effect needs runs across "
                                "seeds); --checkpoints gives one run trained elsewhere")
        if case.test == "equivalence":
            raise NotApplicable("an equivalence claim needs runs across seeds")
        return within_run(*measured.within.groups, direction=case.direction, sesoi=case.sesoi,
                          alpha=alpha, test=case.test)
    if case.test == "equivalence":
        return decide_equivalence(measured.effects, sesoi=case.sesoi, alpha=alpha)
    return decide(measured.effects, direction=case.direction, sesoi=case.sesoi, alpha=alpha,
                  test=case.test)


def detectability(case: Case, decision: Decision, *, alpha: float) -> dict | None:
    """For an inconclusive seed-level result: its minimum detectable effect at the observed spread
    and its power at the sesoi, at level `alpha` (for a primary: alpha / family size, the level
    Holm's first step needs). None where it does not apply."""
    if decision.verdict != "inconclusive" or decision.within_run or len(decision.values) < 2:
        return None
    d = detectable(decision.values, test=case.test, sesoi=case.sesoi, alpha=alpha)
    return {"mde": d.mde, "power_at_sesoi": d.power_at_sesoi, "sd": d.sd, "n": d.n,
            "alpha": d.alpha, "target_power": d.target, "unit": case.unit}
