"""`robust_z`: median/MAD z-scores, hand-computed."""

import numpy as np
import pytest

from harness.stats import robust_z


def test_hand_computed():
    # median 3, MAD = median(2, 1, 0, 1, 97) = 1, scale 1.4826
    z = robust_z([1.0, 2.0, 3.0, 4.0, 100.0])
    assert z == pytest.approx(np.array([-2, -1, 0, 1, 97]) / 1.4826)


def test_reference_sets_centre_and_scale():
    # layers 0-1 against the rest: median 3, MAD 1
    assert robust_z([10.0, -4.0], reference=[1, 2, 3, 4, 5]) == pytest.approx([7 / 1.4826, -7 / 1.4826])


def test_mad_zero_falls_back_to_mean_absolute_deviation():
    # median 0, MAD 0; mean |x - 0| = 1, scale 1.2533
    assert robust_z([0.0, 0, 0, 0, 5]) == pytest.approx([0, 0, 0, 0, 5 / 1.2533])


def test_all_equal_gives_zeros():
    assert robust_z([2.0, 2.0, 2.0]).tolist() == [0.0, 0.0, 0.0]


def test_matches_standard_z_for_normal_data():
    x = np.random.default_rng(0).normal(3, 2, 4000)
    assert np.std(robust_z(x)) == pytest.approx(1.0, abs=0.05)


def test_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        robust_z([1.0, np.nan])
