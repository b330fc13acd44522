"""Holm adjustment: hand computation, a step-down reference, and `adjust` on Decisions."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from harness.stats import Decision, adjust, holm

PROPS = settings(derandomize=True, max_examples=80, deadline=None)
pvalues = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=12)


def test_holm_hand_computed():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


@pytest.mark.parametrize(
    "p, expected",
    [([0.5, 0.6], [1.0, 1.0]), ([0.01, 0.01], [0.02, 0.02]), ([0.2], [0.2]), ([], [])],
    ids=["capped", "ties", "single", "empty"],
)
def test_holm_edge_cases(p, expected):
    assert holm(p) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [1.2], [-0.1], [[0.1, 0.2]]])
def test_holm_rejects_bad_pvalues(bad):
    with pytest.raises(ValueError, match="p-values|flat"):
        holm(bad)


def _step_down_rejections(p, alpha):
    """Holm (1979) as published: reject in ascending order while p_(i) <= alpha / (m - i)."""
    order, m, rejected = np.argsort(p, kind="stable"), len(p), set()
    for i, j in enumerate(order):
        if p[j] > alpha / (m - i):
            break
        rejected.add(int(j))
    return rejected


@PROPS
@given(pvalues, st.sampled_from([0.01, 0.05, 0.1]))
def test_adjusted_p_reproduce_step_down_procedure(p, alpha):
    adjusted = holm(p)
    assert {i for i, q in enumerate(adjusted) if q <= alpha} == _step_down_rejections(p, alpha)


@PROPS
@given(pvalues)
def test_adjusted_bounds_and_order(p):
    q = holm(p)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p, q))
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(np.asarray(q)[order]) >= 0)


def _decision(p, effect=1.0, ci=(0.5, 1.5), **kw):
    return Decision(effect=effect, ci_low=ci[0], ci_high=ci[1], p=p, n=8, method="test",
                    direction="greater", **kw)


def test_p_adj_defaults_to_p():
    d = _decision(0.01)
    assert d.p_adj == 0.01 and d.verdict == "supported"


def test_adjust_recomputes_verdicts_from_raw_p():
    ds = [_decision(0.01), _decision(0.02), _decision(0.04), _decision(0.9, effect=-1, ci=(-2, -0.5), p_ref=0.01)]
    out = adjust(ds)
    # m = 4: 0.01*4 = 0.04, 0.02*3 = 0.06, 0.04*2 = 0.08, 0.9 -> 0.9
    assert [d.p_adj for d in out] == pytest.approx([0.04, 0.06, 0.08, 0.9])
    # the refutation p's form their own family: 0.01 is the smallest of (1, 1, 1, 0.01) -> 0.04
    assert [d.p_ref_adj for d in out] == pytest.approx([1, 1, 1, 0.04])
    assert [d.verdict for d in out] == ["supported", "inconclusive", "inconclusive", "refuted"]
    assert [d.p for d in out] == [d.p for d in ds]
    assert adjust(out) == out, "adjusting twice must change nothing (it uses raw p)"


def test_adjust_holds_each_test_to_its_own_family():
    """A refutation that passes alone fails once the family's refutation tests are counted, and a
    refutation p never enters the support family (or the reverse)."""
    ds = [_decision(0.5, p_ref=0.02), *[_decision(0.001 * (i + 1), p_ref=0.5) for i in range(4)]]
    alone = ds[0]
    assert alone.verdict == "refuted"
    out = adjust(ds)
    assert out[0].p_ref_adj == pytest.approx(0.1) and out[0].verdict == "inconclusive"
    assert [d.p_adj for d in out[1:]] == pytest.approx([0.005, 0.008, 0.009, 0.009])


def test_adjust_refuses_mixed_alpha():
    with pytest.raises(ValueError, match="one alpha"):
        adjust([_decision(0.01), _decision(0.01, alpha=0.1)])


def test_verdict_follows_p_adj_not_p():
    d = dataclasses.replace(_decision(0.01), p_adj=0.2)
    assert d.verdict == "inconclusive" and "support p_adj=0.2" in d.reason
    with pytest.raises(ValueError, match="cannot be smaller"):
        dataclasses.replace(_decision(0.2), p_adj=0.1)


def test_unmeasured_members_count_as_p_one_so_the_family_keeps_its_size():
    ds = [_decision(0.01), _decision(0.02)]
    out = adjust(ds, untested=2)
    # m = 4 as if the two unmeasured had p = 1: 0.01*4 = 0.04, 0.02*3 = 0.06
    assert [d.p_adj for d in out] == pytest.approx([0.04, 0.06])
    assert adjust(ds, untested=0) == adjust(ds)
    with pytest.raises(ValueError):
        adjust(ds, untested=-1)
