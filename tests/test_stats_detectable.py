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
