"""`break_at_boundaries`: jumps at slice starts against the other steps of a depth profile."""

import numpy as np
import pytest

from harness.stats import break_at_boundaries

# three slices of 6 layers, each rising 0 -> 1 (its own gradient), resetting at 6 and 12
SAWTOOTH = np.tile(np.linspace(0, 1, 6), 3)


def test_clear_jumps_at_boundaries():
    b = break_at_boundaries(SAWTOOTH, [6, 12])
    # steps: 0.2 within slices, 1.0 at the two starts; only the true pair of the C(17, 2) = 136
    # position pairs reaches the observed statistic
    assert b.statistic == pytest.approx(1.0 - 0.2)
    assert b.ratio == pytest.approx(5.0)
    assert b.p == pytest.approx(1 / 136)
    assert b.boundaries == (6, 12) and b.n_steps == 17


def test_smooth_profile_has_no_break():
    b = break_at_boundaries(np.sin(np.linspace(0, 3, 18)), [6, 12])
    assert b.p > 0.5 and b.statistic < 0


def test_noisy_break_detected_monte_carlo():
    rng = np.random.default_rng(0)
    profile = np.tile(np.linspace(0, 1, 10), 4) + rng.normal(0, 0.05, 40)
    b = break_at_boundaries(profile, [10, 20, 30], n_perm=999, seed=1)
    assert "Monte-Carlo, 999" in b.method  # C(39, 3) = 9139 > 999
    assert b.p == pytest.approx(1 / 1000)


def test_wrong_boundaries_flagged():
    assert break_at_boundaries(SAWTOOTH, [3, 9]).p > 0.5


@pytest.mark.parametrize(
    "boundaries, message",
    [([0, 6], "1..17"), ([6, 18], "1..17"), ([6, 6], "repeat"), ([], "1..17"),
     (list(range(1, 18)), "nothing left"), (["x"], "ints")],
)
def test_bad_boundaries(boundaries, message):
    with pytest.raises(ValueError, match=message):
        break_at_boundaries(SAWTOOTH, boundaries)
