"""Sign-flip permutation p-values: hand-counted examples and invariances.

Hand counts: flipping a subset F of the effects changes the sum by -2 * sum(F), so for
"greater" p = #{subsets F with sum(F) <= 0} / 2^n.
"""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.stats.signflip import EXACT_MAX_N, flip_matrix, signflip_p

PROPS = settings(derandomize=True, max_examples=60, deadline=None)
effects = st.lists(
    st.floats(-1e3, 1e3, allow_nan=False).map(lambda v: round(v, 3)), min_size=1, max_size=10
)


@pytest.mark.parametrize(
    "x, expected, why",
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], 1 / 256, "only the identity reaches the all-positive sum"),
        ([1, 2, 3, -0.5], 2 / 16, "subsets with sum <= 0: {}, {-0.5}"),
        ([1, 1, -1, 1], 5 / 16, "{}, {-1} and three {1, -1} ties, which count"),
        ([0, 1, 1], 2 / 8, "flipping the zero ties with the identity"),
        ([0, 0, 0], 1.0, "all flips tie"),
        ([-1, -2, -3], 1.0, "every flip is at least as large"),
    ],
)
def test_exact_p_hand_counted(x, expected, why):
    assert signflip_p(x, direction="greater") == pytest.approx(expected, abs=1e-15), why


def test_less_mirrors_greater():
    assert signflip_p([-1, -2, -3, -4, -5], direction="less") == 1 / 32


def test_flip_matrix_enumerates_all_sign_vectors_once():
    m = flip_matrix(5)
    assert m.shape == (32, 5) and np.all(m[0] == 1)
    assert len({tuple(row) for row in m}) == 32
    assert not m.flags.writeable
    assert flip_matrix(5) is m  # cached


def test_monte_carlo_beyond_exact_uses_plus_one_correction():
    n = EXACT_MAX_N + 4
    # with 99 random flips, almost surely none reaches the all-positive sum: p = 1 / (99 + 1)
    assert signflip_p(np.arange(1.0, n + 1), direction="greater", n_perm=99, seed=3) == 0.01


def test_monte_carlo_is_seeded():
    x = np.random.default_rng(0).normal(0.3, 1, 24)
    a = signflip_p(x, direction="greater", n_perm=999, seed=1)
    assert a == signflip_p(x, direction="greater", n_perm=999, seed=1)
    assert 0 < a < 1


def test_rows_equal_single_calls():
    x = np.random.default_rng(1).normal(size=(7, 9))
    rows = signflip_p(x, direction="less")
    assert rows.tolist() == [signflip_p(r, direction="less") for r in x]


@PROPS
@given(effects)
def test_p_in_attainable_range(x):
    p = signflip_p(x, direction="greater")
    assert 2.0 ** -len(x) <= p <= 1.0


@PROPS
@given(effects)
def test_negating_effects_and_direction_keeps_p(x):
    assert signflip_p(x, direction="greater") == signflip_p(-np.asarray(x), direction="less")


@PROPS
@given(effects, st.sampled_from([0.25, 2.0, 1024.0]))
def test_p_is_scale_free(x, c):
    assert signflip_p(np.asarray(x) * c, direction="greater") == signflip_p(x, direction="greater")


@PROPS
@given(effects)
def test_both_tails_overlap_at_the_observed_sum(x):
    # P(T* >= T) + P(T* <= T) = 1 + P(T* == T) >= 1 + 2^-n (the identity ties with itself)
    total = signflip_p(x, direction="greater") + signflip_p(x, direction="less")
    assert total >= 1 + 2.0 ** -len(x) - 1e-12
