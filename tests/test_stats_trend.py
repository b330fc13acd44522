"""`trend`: Spearman rho against scipy, exact p hand-counted, Monte-Carlo p with +1."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from harness.stats import trend


def test_exact_p_hand_counted():
    # rho = 1 - sum d^2 / 20 for n = 5; rho >= 0.8 <=> sum d^2 <= 4: the identity, 4 adjacent
    # swaps and 3 pairs of disjoint adjacent swaps -> 8 of 120 orderings
    t = trend(range(5), [1, 3, 2, 5, 4])
    assert t.rho == pytest.approx(0.8) and t.p == pytest.approx(8 / 120)
    assert "exact, all 120" in t.method


@pytest.mark.parametrize("seed", [0, 1])
def test_rho_matches_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 4, 15), rng.integers(0, 5, 15)
    assert trend(x, y).rho == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_monte_carlo_p_has_plus_one_correction():
    t = trend(np.arange(10), np.arange(10) ** 2, n_perm=99, seed=0)
    assert t.rho == 1.0 and t.p == pytest.approx(1 / 100)
    assert "Monte-Carlo, 99" in t.method


def test_direction_less():
    x = np.arange(12)
    y = -x + np.random.default_rng(0).normal(0, 2, 12)
    assert trend(x, y, direction="less").p < 0.01
    assert trend(x, y, direction="greater").p > 0.9


def test_noise_gives_large_p():
    assert trend(np.arange(30), np.random.default_rng(4).normal(size=30)).p > 0.1


@pytest.mark.parametrize(
    "x, y, message",
    [([1, 2, 3, 4], [1, 2, 3], "same length"), ([1, 2, 3], [5, 5, 5], "y is constant"),
     ([1, 2], [1, 2], "at least 3"), ([1, 2, np.nan], [1, 2, 3], "non-finite")],
)
def test_bad_input(x, y, message):
    with pytest.raises(ValueError, match=message):
        trend(x, y)
