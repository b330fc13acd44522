"""`within_run`: the single-run fallback over layers, flagged as such."""

import numpy as np
import pytest

from harness.stats import adjust, decide, within_run
from harness.stats.within_run import CAVEAT


def test_two_sample_exact_p_hand_counted():
    # C(5, 2) = 10 ways to pick group a; only the observed (the two largest) reaches 3.5 - 1
    d = within_run([3.0, 4.0], [0.0, 1.0, 2.0], direction="greater")
    assert d.p == pytest.approx(1 / 10) and d.effect == pytest.approx(2.5)
    assert within_run([3.0, 4.0], [0.0, 1.0, 2.0], direction="less").p == 1.0


def test_flags_and_method_say_within_run():
    rng = np.random.default_rng(0)
    d = within_run(rng.normal(1, 1, 12), rng.normal(0, 1, 28), direction="greater")
    assert d.within_run is True and d.n == 1 and d.verdict == "supported"
    assert d.method.startswith(CAVEAT) and "12 + 28 layers" in d.method
    assert "Monte-Carlo" in d.method
    assert d.ci_low < d.effect < d.ci_high


def test_one_sample_uses_sign_flip_over_layers():
    x = np.random.default_rng(1).normal(0.2, 1, 10)
    d = within_run(x, direction="greater")
    assert d.within_run and d.p == decide(x, direction="greater").p
    assert "over 10 layers" in d.method and CAVEAT in d.method


def test_deterministic_and_joins_a_holm_family():
    a, b = [1.0, 1.2, 0.9, 1.4], [0.1, 0.3, -0.2, 0.0, 0.2]
    d = within_run(a, b, direction="greater", seed=3)
    assert d == within_run(a, b, direction="greater", seed=3)
    out = adjust([d, decide([1, 2, 3, 4, 5, 6, 7, 8.0], direction="greater")])
    # Holm, m = 2: 1/256 * 2 = 0.0078 first, then max(0.0078, 1/126 * 1) = 1/126
    assert out[0].within_run and out[0].p_adj == pytest.approx(1 / 126) == d.p
    assert out[1].p_adj == pytest.approx(2 / 256)


@pytest.mark.parametrize(
    "a, b, message",
    [([], None, "at least 2"), ([1.0], [], "at least 1"), ([1.0], [2.0], "at least 3 layers"),
     ([1.0, np.nan], [2.0, 3.0], "non-finite")],
)
def test_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        within_run(a, b, direction="greater")
