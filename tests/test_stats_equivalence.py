"""TOST equivalence decision (harness.stats.decide_equivalence): verdicts, its bounds, inputs."""

from __future__ import annotations

import numpy as np
import pytest

from harness.stats import decide_equivalence
from harness.stats.signflip import signflip_p


def test_tight_effects_inside_the_margin_are_equivalent():
    x = np.array([0.01, -0.02, 0.015, -0.005, 0.0, 0.02, -0.01, 0.005])
    d = decide_equivalence(x, sesoi=0.1)
    assert d.verdict == "supported"
    assert d.p == pytest.approx(1 / 256)  # every run inside the margin: the exact minimum
    assert d.effect == pytest.approx(x.mean())
    assert d.ci_low <= d.effect <= d.ci_high
    assert (d.test, d.sesoi, d.ci_level) == ("equivalence", 0.1, pytest.approx(0.9))
    assert -0.1 < d.ci_low and d.ci_high < 0.1 and d.decided_by == "both bounds"


def test_a_difference_beyond_the_margin_refutes_equivalence():
    x = np.linspace(0.25, 0.35, 8)
    d = decide_equivalence(x, sesoi=0.1)
    assert d.verdict == "refuted" and d.p_ref == pytest.approx(2 / 256)  # Bonferroni over the sides
    assert d.ci_low > 0.1  # the whole interval beyond +sesoi, drawn at half the refutation level


def test_a_difference_beyond_the_margin_below_refutes_too():
    d = decide_equivalence(-np.linspace(0.25, 0.35, 8), sesoi=0.1)
    assert d.verdict == "refuted" and d.ci_high < -0.1


def test_noisy_effects_are_inconclusive():
    x = np.array([0.3, -0.3, 0.25, -0.2, 0.1, -0.35, 0.2, -0.1])
    assert decide_equivalence(x, sesoi=0.1).verdict == "inconclusive"


def test_support_p_is_the_larger_one_sided_p():
    x = np.array([0.09, 0.08, 0.095, 0.07, 0.085, 0.06, 0.09, 0.05])  # all inside, near +sesoi
    assert decide_equivalence(x, sesoi=0.1).p == pytest.approx(1 / 256)
    d = decide_equivalence(x, sesoi=0.07)
    assert d.p == max(signflip_p(x + 0.07, direction="greater"), signflip_p(x - 0.07, direction="less"))
    assert d.p > 0.05  # the upper test fails once the margin is passed


def test_holm_adjustment_can_only_weaken_it():
    d = decide_equivalence(np.full(8, 0.0) + np.arange(8) * 1e-3, sesoi=0.1)
    assert d.with_p_adj(0.5).verdict == "inconclusive"
    refuted = decide_equivalence(np.linspace(0.25, 0.35, 8), sesoi=0.1)
    assert refuted.with_p_adj(1.0, 0.5).verdict == "inconclusive"


@pytest.mark.parametrize("sesoi", [0.0, -1.0, float("nan")])
def test_the_margin_must_be_positive(sesoi):
    with pytest.raises(ValueError, match="margin"):
        decide_equivalence([0.0, 0.1, 0.2], sesoi=sesoi)
