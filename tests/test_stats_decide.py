"""`decide` / `decide_paired`: the four verdicts on hand-made effects, bounds that agree with the
tests, determinism, bad input."""

import json

import numpy as np
import pytest

from harness.stats import Decision, decide, decide_paired, decide_rows

CLEAR = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]


def test_clear_positive_is_supported():
    d = decide(CLEAR, direction="greater")
    assert (d.verdict, d.p, d.n, d.effect) == ("supported", 1 / 256, 8, 4.5)
    assert d.ci_low < 4.5 < d.ci_high and d.ci_low > 0
    assert not d.within_run and "sign-flip" in d.method and "exact, all 256" in d.method
    assert d.values == tuple(CLEAR)


def test_effect_is_the_mean_of_the_runs():
    d = decide([0.0, 0.0, 0.0, 4.0], direction="greater")
    # mean, not median (0); the 8 flips that leave the 4 alone tie with the observed sum
    assert d.effect == 1.0 and d.p == 8 / 16


def test_clear_negative_refutes_a_greater_claim():
    d = decide(-np.asarray(CLEAR), direction="greater")
    assert d.verdict == "refuted" and d.p == 1.0 and d.p_ref == 1 / 256 and d.ci_high < 0
    assert d.refutation == "opposite direction" and d.decided_by == "upper bound"


def test_direction_less_supports_negative_effects():
    d = decide(-np.asarray(CLEAR), direction="less")
    assert (d.verdict, d.p) == ("supported", 1 / 256)
    assert decide(CLEAR, direction="less").verdict == "refuted"


def test_null_effects_are_inconclusive():
    x = 3 * np.array([0.3, -0.5, 1.1, -0.9, 0.2, -0.1, 0.6, -0.7])
    d = decide(x, direction="greater", sesoi=1.0)
    assert d.verdict == "inconclusive" and d.p > 0.3 and d.ci_low < 0 and d.ci_high > 1.0


def test_shown_below_the_sesoi_without_an_effect_refutes():
    d = decide([0.03, -0.05, 0.11, -0.09, 0.02, -0.01, 0.06, -0.07], direction="greater", sesoi=1.0)
    assert d.ci_high < 1.0 and d.ci_low < 0 and d.p_ref < d.alpha <= d.p
    assert d.verdict == "refuted" and d.refutation.startswith("no effect of interest")


def test_real_but_smaller_than_the_sesoi_has_its_own_verdict():
    tiny = np.asarray(CLEAR) / 100  # shown > 0 (p = 1/256) and shown < 0.5
    d = decide(tiny, direction="greater", sesoi=0.5)
    assert d.p < d.alpha and d.p_ref < d.alpha
    assert d.verdict == "smaller" and d.decided_by == "both bounds"
    assert 0 < d.ci_low and d.ci_high < 0.5


def test_bound_crossing_sesoi_is_supported():
    d = decide(np.asarray(CLEAR) / 10, direction="greater", sesoi=0.5)  # upper bound above 0.5
    assert d.ci_low > 0 and d.ci_high > 0.5 and d.verdict == "supported"


@pytest.mark.parametrize("sesoi", [0.05, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("direction", ["greater", "less"])
def test_bounds_agree_with_the_tests_at_every_level(sesoi, direction):
    """The support bound excludes the null exactly when the support test rejects, the refutation
    bound excludes the sesoi exactly when the refutation test rejects, before and after Holm."""
    rng = np.random.default_rng(11)
    for _ in range(40):
        x = rng.normal(rng.uniform(-1, 1), 0.5, 10)
        d = decide(x, direction=direction, sesoi=sesoi)
        for q, r in ((d.p, d.p_ref), (min(1, 7 * d.p), min(1, 3 * d.p_ref))):
            a = d.with_p_adj(q, r)
            sign = 1 if direction == "greater" else -1
            support, against = (a.ci_low, a.ci_high) if sign > 0 else (-a.ci_high, -a.ci_low)
            assert (support > 0) == (a.p_adj < a.alpha), (x, a)
            assert (against < sesoi) == (a.p_ref_adj < a.alpha), (x, a)


def test_same_seed_same_decision_and_p_does_not_depend_on_seed():
    x = np.random.default_rng(5).normal(0.4, 1, 10)
    assert decide(x, direction="greater", seed=1) == decide(x, direction="greater", seed=1)
    other = decide(x, direction="greater", seed=2)
    assert other.p == decide(x, direction="greater", seed=1).p


def test_rows_match_single_decisions():
    x = np.random.default_rng(2).normal(0.5, 1, size=(5, 8))
    rows = decide_rows(x, direction="greater", sesoi=0.3, seed=4)
    for i, row in enumerate(x):
        d = decide(row, direction="greater", sesoi=0.3, seed=4)
        assert (d.verdict, d.p, d.p_ref) == (rows.verdict[i], rows.p[i], rows.p_ref[i])


def test_paired_is_decide_on_differences():
    rng = np.random.default_rng(3)
    b = rng.normal(size=9)
    a = b + rng.normal(0.8, 0.5, size=9)
    d = decide_paired(a, b, direction="greater")
    ref = decide(a - b, direction="greater")
    assert (d.p, d.effect, d.ci_low, d.ci_high, d.verdict) == (
        ref.p, ref.effect, ref.ci_low, ref.ci_high, ref.verdict)
    assert d.method.startswith("paired") and d.verdict == "supported"


def test_to_dict_is_json_ready():
    out = decide(CLEAR, direction="greater").to_dict()
    assert json.loads(json.dumps(out)) == out
    assert {"verdict", "effect", "ci_low", "ci_high", "p", "p_adj", "p_ref", "p_ref_adj", "n", "method",
            "within_run", "direction", "sesoi", "alpha", "values", "reason", "level_low", "level_high",
            "decided_by", "label", "refutation"} <= out.keys()


def test_decision_cannot_carry_a_verdict_its_numbers_do_not_imply():
    with pytest.raises(TypeError):
        Decision(effect=1, ci_low=0.5, ci_high=2, p=0.01, n=8, method="m",
                 direction="greater", verdict="refuted")


@pytest.mark.parametrize(
    "effects, kw, message",
    [
        ([], {}, "at least 2 values, got 0"),
        ([1.0], {}, "within_run"),
        ([1.0, float("nan"), 2.0], {}, r"non-finite .* positions \[1\]"),
        ([1.0, float("inf")], {}, "non-finite"),
        ([[1.0, 2.0]], {}, "1-D"),
        (["a", "b"], {}, "sequence of numbers"),
        (CLEAR, {"direction": "two-sided"}, "'greater' or 'less'"),
        (CLEAR, {"alpha": 1.5}, "alpha"),
        (CLEAR, {"sesoi": -0.1}, "sesoi"),
        (CLEAR, {"n_perm": 0}, "n_perm"),
    ],
    ids=["empty", "single-run", "nan", "inf", "2-d", "strings", "direction", "alpha", "sesoi", "n_perm"],
)
def test_bad_input_raises_clear_value_error(effects, kw, message):
    kw = {"direction": "greater", **kw}
    with pytest.raises(ValueError, match=message):
        decide(effects, **kw)


def test_paired_length_mismatch():
    with pytest.raises(ValueError, match="one value per shared seed.*8 and 7"):
        decide_paired(CLEAR, CLEAR[:-1], direction="greater")


def test_non_inferiority_is_tested_against_the_margin():
    """Effects scattered around 0 are not superior, but are non-inferior within a 0.1 margin."""
    x = np.array([0.01, -0.02, 0.015, -0.005, 0.0, 0.02, -0.01, 0.005, -0.015, 0.01])
    assert decide(x, direction="greater", sesoi=0.1).verdict == "refuted"  # no effect of interest
    d = decide(x, direction="greater", sesoi=0.1, test="non-inferiority")
    assert d.verdict == "supported" and d.p == pytest.approx(1 / 1024)
    assert d.effect == pytest.approx(x.mean())  # the raw mean, not the shifted one
    mirrored = decide(-x, direction="less", sesoi=0.1, test="non-inferiority")
    assert mirrored.verdict == "supported"


def test_non_inferiority_refuted_beyond_the_margin():
    x = np.linspace(-0.35, -0.25, 8)
    d = decide(x, direction="greater", sesoi=0.1, test="non-inferiority")
    assert d.verdict == "refuted" and d.ci_high < -0.1


def test_non_inferiority_needs_a_margin():
    with pytest.raises(ValueError, match="margin"):
        decide([0.1, 0.2, 0.3], direction="greater", sesoi=0.0, test="non-inferiority")


def test_bounds_are_one_sided_at_alpha_before_adjustment_and_tighter_after():
    d = decide(np.linspace(0.1, 0.5, 10), direction="greater", sesoi=0.2)
    assert (d.level_low, d.level_high) == (0.05, 0.05) and d.bound == d.ci_low
    assert decide(-np.linspace(0.1, 0.5, 10), direction="less").bound < 0
    adjusted = d.with_p_adj(21 * d.p, min(1.0, 21 * d.p_ref))
    assert adjusted.level_low == pytest.approx(0.05 / 21)
    assert adjusted.ci_low < d.ci_low  # a stricter level draws a wider bound


def test_an_unattainable_level_gives_an_infinite_bound():
    d = decide([1.0, 2.0, 3.0], direction="greater").with_p_adj(1.0)  # level 0.05/8 < 2^-3
    assert d.ci_low == float("-inf") and d.to_dict()["ci_low"] is None
