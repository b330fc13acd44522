"""`saturation`: saturating vs linear fits on known curves."""

import numpy as np
import pytest

from harness.stats import saturation

T = np.arange(0.0, 12.0)


def noise(scale, seed=0):
    return np.random.default_rng(seed).normal(0, scale, T.size)


def test_saturating_data_prefers_saturating_fit():
    y = 2.0 * (1 - np.exp(-T / 3.0)) + noise(0.02)
    s = saturation(T, y)
    assert s.delta_aic > 10, s
    assert s.growth_ratio < 0.5, s
    assert s.tau == pytest.approx(3.0, rel=0.15) and s.ceiling == pytest.approx(2.0, rel=0.05)
    assert not s.tau_at_bound


def test_decreasing_saturation_also_counts():
    s = saturation(T, 5.0 * np.exp(-T / 2.0) + noise(0.02, 1))
    assert s.delta_aic > 10 and 0 < s.growth_ratio < 0.5


def test_linear_data_does_not_prefer_saturating_fit():
    s = saturation(T, 0.5 + 0.3 * T + noise(0.05, 2))
    assert s.delta_aic < 2, s
    assert s.growth_ratio == pytest.approx(1.0, abs=0.3)
    assert s.slope == pytest.approx(0.3, rel=0.05)


def test_exact_line_is_the_degenerate_limit():
    # nested models: equal SSE, so the extra parameter's AIC penalty of 2 decides
    s = saturation(T, 1.0 + 2.0 * T)
    assert s.tau_at_bound and s.tau == np.inf and np.isnan(s.ceiling)
    assert s.delta_aic == pytest.approx(-2.0) and s.growth_ratio == pytest.approx(1.0)


def test_accelerating_data_is_not_saturating():
    s = saturation(T, 0.05 * T**2)  # convex: no tau > 0 beats the line
    assert s.delta_aic == pytest.approx(-2.0) and s.growth_ratio > 1


def test_uneven_unsorted_times():
    t = np.array([8.0, 0.0, 1.0, 0.5, 3.0, 20.0, 2.0])
    s = saturation(t, 1 - np.exp(-t / 2))
    assert s.delta_aic > 10 and s.growth_ratio < 0.2 and s.n == 7


@pytest.mark.parametrize(
    "t, y, message",
    [(T[:3], T[:3], "at least 4"), (T, T[:-1], "same length"),
     ([0, 0, 1, 1], [0, 1, 2, 3], "3 distinct"), (T, np.r_[T[:-1], np.nan], "non-finite")],
)
def test_bad_input(t, y, message):
    with pytest.raises(ValueError, match=message):
        saturation(t, y)
