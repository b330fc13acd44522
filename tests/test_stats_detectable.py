"""Power at the sesoi and minimum detectable effect (harness.stats.power.detectable)."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats.power import detectable


@pytest.mark.parametrize("test", ["superiority", "non-inferiority", "equivalence"])
def test_more_runs_detect_smaller_effects(test):
    rng = np.random.default_rng(1)
    few, many = rng.normal(0, 1, 6), rng.normal(0, 1, 14)
    few, many = few / few.std(ddof=1), many / many.std(ddof=1)  # same observed spread
    a = detectable(few, test=test, sesoi=0.5, alpha=0.05)
    b = detectable(many, test=test, sesoi=0.5, alpha=0.05)
    assert b.mde < a.mde and b.power_at_sesoi > a.power_at_sesoi


def test_the_mde_has_the_target_power_and_scales_with_the_spread():
    x = np.random.default_rng(2).normal(0, 1, 12)
    d = detectable(x, test="superiority", sesoi=1.0, alpha=0.05)
    wide = detectable(10 * x, test="superiority", sesoi=10.0, alpha=0.05)
    assert wide.mde == pytest.approx(10 * d.mde, rel=0.02)  # units follow the effect's
    at_mde = detectable(x, test="superiority", sesoi=d.mde, alpha=0.05)
    assert at_mde.power_at_sesoi == pytest.approx(0.8, abs=0.04)


def test_a_stricter_alpha_needs_a_larger_effect():
    x = np.random.default_rng(3).normal(0, 1, 12)
    assert (detectable(x, test="superiority", sesoi=1, alpha=0.05 / 21).mde
            > detectable(x, test="superiority", sesoi=1, alpha=0.05).mde)


def test_least_runs_is_where_one_contrary_run_still_passes_holms_first_step():
    from fixtures.options import DEFAULT_SEEDS, SEEDS_BY_SCALE
    from harness.claims.registry import load
    from harness.stats import signflip
    from harness.stats.power import least_runs

    assert least_runs(21) == 10 and least_runs(10) == 9 and least_runs(1) == 6
    for m in (1, 10, 21):
        n = least_runs(m)
        one_contrary = [1.0] * (n - 1) + [-0.5]
        assert m * signflip.signflip_p(one_contrary, direction="greater") <= 0.05
        assert m * signflip.signflip_p(one_contrary[1:], direction="greater") > 0.05  # one run fewer: not
    registry = load()
    assert SEEDS_BY_SCALE["real"] == least_runs(len(registry.primaries("real")))
    assert DEFAULT_SEEDS >= least_runs(len(registry.primaries("tiny")))
    with pytest.raises(ValueError):
        least_runs(0)
